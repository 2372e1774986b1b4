//! Where something was written: a source name (a file, or `<command line>`), a line and,
//! where it means something, a column.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A position in a configuration source, shown as `file:line` or `file:line:column`.
///
/// Lines and columns count from 1; columns count characters, not bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    /// The file name as the user gave it, or `<command line>` for `KEY=VALUE` overrides.
    pub source: String,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, when it points at something precise.
    pub column: Option<u32>,
}

impl Location {
    /// A location with a column.
    pub fn new(source: &str, line: u32, column: u32) -> Self {
        Location {
            source: source.to_owned(),
            line,
            column: Some(column),
        }
    }

    /// The same line, without a column.
    pub fn line_only(&self) -> Location {
        Location {
            column: None,
            ..self.clone()
        }
    }

    /// The same line, at another column.
    pub fn at_column(&self, column: u32) -> Location {
        Location {
            column: Some(column),
            ..self.clone()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}:{}:{}", self.source, self.line, c),
            None => write!(f, "{}:{}", self.source, self.line),
        }
    }
}
