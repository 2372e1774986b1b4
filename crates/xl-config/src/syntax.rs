//! The xl.cfg file syntax: lexer, grammar and the store of settings.
//!
//! Follows Xen's `tools/libs/util/libxlu_cfg_l.l` (lexer), `libxlu_cfg_y.y` (grammar) and
//! `libxlu_cfg.c` (dequoting, `+=`):
//!
//! - a file is a series of `KEY = VALUE` or `KEY += VALUE` statements, each ended by a
//!   newline or `;`; the last one may end at the end of the file;
//! - a key is `[a-z][._0-9a-z]*` (lowercase only);
//! - a value is a string in single or double quotes (C-like backslash escapes, no line
//!   breaks), a number token `[0-9][0-9a-fx]*` (kept as text and interpreted by whoever
//!   reads the key, as xl does), or a list `[ VALUE, VALUE, ... ]` which may span lines,
//!   nest and end with a trailing comma;
//! - `#` starts a comment that runs to the end of the line;
//! - when a key is set twice the last setting wins; `+=` appends to the previous setting
//!   of the same key (string to string, list to list).
//!
//! Deviations from Xen, both lenient: a comment may end at the end of the file without a
//! newline (xl reports a lexical error there), and parsing stops at the first error
//! instead of trying to report several.

use thiserror::Error;

use crate::location::Location;

/// An error in the syntax of a configuration source.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// A character sequence that is no token of the xl.cfg language.
    #[error("{at}: config parsing error near `{near}': lexical error: {detail}{}", python_hint(*.likely_python))]
    Lex {
        at: Location,
        near: String,
        detail: String,
        likely_python: bool,
    },
    /// A quoted string that is not closed on its line.
    #[error(
        "{at}: config parsing error near `{near}': unterminated string: a quoted string must end with {quote} on the same line"
    )]
    Unterminated {
        at: Location,
        near: String,
        quote: char,
    },
    /// A backslash escape that xl does not know.
    #[error("{at}: config parsing error near `{near}': {detail}")]
    Escape {
        at: Location,
        near: String,
        detail: String,
    },
    /// Tokens in an order the grammar does not allow.
    #[error(
        "{at}: config parsing error near {near}: syntax error, unexpected {unexpected}, expecting {expected}"
    )]
    Grammar {
        at: Location,
        near: Near,
        unexpected: &'static str,
        expected: &'static str,
    },
    /// `KEY += VALUE` where the earlier value of KEY has the other type.
    #[error(
        "{at}: config parsing error: can't add [list] to \"string\" or vice versa (parameter `{key}')"
    )]
    Append { at: Location, key: String },
}

impl SyntaxError {
    /// Where the error is.
    pub fn location(&self) -> &Location {
        match self {
            SyntaxError::Lex { at, .. }
            | SyntaxError::Unterminated { at, .. }
            | SyntaxError::Escape { at, .. }
            | SyntaxError::Grammar { at, .. }
            | SyntaxError::Append { at, .. } => at,
        }
    }
}

fn python_hint(likely: bool) -> &'static str {
    if likely {
        "\nwarning: Config file looks like it contains Python code.\n\
         warning:  Arbitrary Python is no longer supported.\n\
         warning:  See https://wiki.xen.org/wiki/PythonInXlConfig"
    } else {
        ""
    }
}

/// The text an error is "near", as xl prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Near {
    /// A token, printed in `quotes'.
    Text(String),
    /// The end of a line.
    Newline,
    /// The end of the source.
    EndOfFile,
}

impl std::fmt::Display for Near {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Near::Text(t) => write!(f, "`{t}'"),
            Near::Newline => f.write_str("<newline>"),
            Near::EndOfFile => f.write_str("<end of file>"),
        }
    }
}

/// `=` or `+=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `KEY = VALUE`
    Assign,
    /// `KEY += VALUE`
    Append,
}

/// A single value: a quoted string or a number token, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    /// The value, escapes resolved.
    pub text: String,
    /// Where the value starts (its opening quote, for strings).
    pub at: Location,
    /// True for a quoted string, false for a number token.
    pub quoted: bool,
    /// True when `text` is exactly what is written in the source between the quotes (no
    /// escapes, no `+=` concatenation), so that offsets into it map to columns.
    pub verbatim: bool,
}

impl Atom {
    /// The location of the character at byte `offset` of `text`, when it can be known.
    pub fn location_of(&self, offset: usize) -> Location {
        match (self.verbatim, self.at.column) {
            (true, Some(col)) if offset <= self.text.len() => {
                let chars = self.text[..offset].chars().count() as u32;
                self.at.at_column(col + u32::from(self.quoted) + chars)
            }
            _ => self.at.clone(),
        }
    }
}

/// A list of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The items, in order.
    pub items: Vec<Value>,
    /// Where the list starts (its `[`).
    pub at: Location,
}

/// A value on the right of `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string or number.
    Atom(Atom),
    /// A list.
    List(List),
}

impl Value {
    /// Where the value starts.
    pub fn location(&self) -> &Location {
        match self {
            Value::Atom(a) => &a.at,
            Value::List(l) => &l.at,
        }
    }
}

/// One `KEY = VALUE` statement (after `+=` merging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub name: String,
    /// Where the key is written.
    pub name_at: Location,
    /// How it was assigned.
    pub op: AssignOp,
    /// The value; for `+=`, already joined with the previous value of the key.
    pub value: Value,
}

/// All settings read from one or more sources, in the order they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    list: Vec<Setting>,
}

impl Settings {
    /// No settings.
    pub fn new() -> Self {
        Settings::default()
    }

    /// Parses `text` (named `source` in messages) and adds its settings after those
    /// already stored, so that they override them. On error nothing from `text` is kept.
    pub fn parse(&mut self, source: &str, text: &str) -> Result<(), SyntaxError> {
        let statements = Parser::new(source, text)?.file()?;
        let mut merged = self.clone();
        for s in statements {
            merged.store(s)?;
        }
        *self = merged;
        Ok(())
    }

    fn store(&mut self, mut s: Setting) -> Result<(), SyntaxError> {
        if s.op == AssignOp::Append {
            if let Some(prev) = self.get(&s.name) {
                s.value = append(&prev.value, s.value, &s.name)?;
            }
        }
        self.list.push(s);
        Ok(())
    }

    /// The effective (last) setting of `name`.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.list.iter().rev().find(|s| s.name == name)
    }

    /// Every key that is set, each once, in order of first appearance.
    pub fn names(&self) -> Vec<&str> {
        let mut seen = std::collections::BTreeSet::new();
        self.list
            .iter()
            .filter(|s| seen.insert(s.name.as_str()))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

fn append(prev: &Value, new: Value, key: &str) -> Result<Value, SyntaxError> {
    match (prev, new) {
        (Value::Atom(p), Value::Atom(n)) => Ok(Value::Atom(Atom {
            text: format!("{}{}", p.text, n.text),
            at: n.at,
            quoted: n.quoted,
            verbatim: false,
        })),
        (Value::List(p), Value::List(n)) => {
            let mut items = p.items.clone();
            items.extend(n.items);
            Ok(Value::List(List { items, at: n.at }))
        }
        (_, n) => Err(SyntaxError::Append {
            at: n.location().clone(),
            key: key.to_owned(),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Number(String),
    Str { text: String, verbatim: bool },
    Newline,
    Comma,
    LBracket,
    RBracket,
    Assign,
    AddAssign,
    Semicolon,
    Eof,
}

impl Tok {
    /// The name xl's bison grammar gives the token, used in "unexpected ..." messages.
    fn describe(&self) -> &'static str {
        match self {
            Tok::Ident(_) => "IDENT",
            Tok::Number(_) => "NUMBER",
            Tok::Str { .. } => "STRING",
            Tok::Newline => "NEWLINE",
            Tok::Comma => "','",
            Tok::LBracket => "'['",
            Tok::RBracket => "']'",
            Tok::Assign => "'='",
            Tok::AddAssign => "\"+=\"",
            Tok::Semicolon => "';'",
            Tok::Eof => "end of file",
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: Location,
    /// The token as written (for "near" in messages).
    raw: String,
}

struct Lexer<'a> {
    source: &'a str,
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    fn new(source: &'a str, text: &str) -> Self {
        Lexer {
            source,
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn here(&self) -> Location {
        Location::new(self.source, self.line, self.col)
    }

    /// The rest of the current run of non-blank characters, from the current position.
    fn run_from(&self, start: usize) -> String {
        self.chars[start..]
            .iter()
            .take_while(|c| !matches!(c, ' ' | '\t' | '\n'))
            .collect()
    }

    fn tokens(mut self) -> Result<Vec<Token>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            let at = self.here();
            let start = self.pos;
            let Some(c) = self.peek(0) else {
                out.push(Token {
                    tok: Tok::Eof,
                    at,
                    raw: String::new(),
                });
                return Ok(out);
            };
            let tok = match c {
                ' ' | '\t' => {
                    self.bump();
                    continue;
                }
                '\n' => {
                    self.bump();
                    Tok::Newline
                }
                '#' => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                    Tok::Newline
                }
                'a'..='z' => {
                    let mut s = String::new();
                    while let Some(c) = self.peek(0) {
                        if matches!(c, 'a'..='z' | '0'..='9' | '.' | '_') {
                            s.push(c);
                            self.bump();
                        } else {
                            break;
                        }
                    }
                    Tok::Ident(s)
                }
                '0'..='9' => {
                    let mut s = String::new();
                    while let Some(c) = self.peek(0) {
                        if matches!(c, '0'..='9' | 'a'..='f' | 'x') {
                            s.push(c);
                            self.bump();
                        } else {
                            break;
                        }
                    }
                    Tok::Number(s)
                }
                ',' => {
                    self.bump();
                    Tok::Comma
                }
                '[' => {
                    self.bump();
                    Tok::LBracket
                }
                ']' => {
                    self.bump();
                    Tok::RBracket
                }
                ';' => {
                    self.bump();
                    Tok::Semicolon
                }
                '=' => {
                    self.bump();
                    Tok::Assign
                }
                '+' if self.peek(1) == Some('=') => {
                    self.bump();
                    self.bump();
                    Tok::AddAssign
                }
                '\'' | '"' => self.string(c, &at)?,
                _ => return Err(self.lex_error(c, at, start)),
            };
            let raw: String = self.chars[start..self.pos].iter().collect();
            out.push(Token { tok, at, raw });
        }
    }

    fn lex_error(&self, c: char, at: Location, start: usize) -> SyntaxError {
        // Control characters are shown escaped (`\r`), not sent to the terminal.
        let near = self
            .run_from(start)
            .chars()
            .flat_map(|c| {
                let shown: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                shown
            })
            .collect();
        let (detail, likely_python) = match c {
            '\r' => (
                "carriage return (the file has DOS line endings; xl.cfg needs Unix ones)"
                    .to_owned(),
                false,
            ),
            'A'..='Z' => (
                "keys are lowercase, and string values must be quoted".to_owned(),
                false,
            ),
            '+' | '-' | '.' | '(' | ')' | ':' => (
                format!("unexpected `{c}': string values must be quoted"),
                true,
            ),
            _ if c.is_alphabetic() || c == '/' || c == '_' => (
                "unexpected character: string values must be quoted".to_owned(),
                false,
            ),
            _ => (
                format!("unexpected character `{}'", c.escape_debug()),
                false,
            ),
        };
        SyntaxError::Lex {
            at,
            near,
            detail,
            likely_python,
        }
    }

    fn string(&mut self, quote: char, at: &Location) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        self.bump();
        let mut text = String::new();
        let mut verbatim = true;
        loop {
            let esc_at = self.here();
            match self.bump() {
                None | Some('\n') => {
                    return Err(SyntaxError::Unterminated {
                        at: at.clone(),
                        near: self.chars[start..]
                            .iter()
                            .take_while(|c| **c != '\n')
                            .collect(),
                        quote,
                    });
                }
                Some(c) if c == quote => break,
                Some('\\') => {
                    verbatim = false;
                    self.escape(&mut text, esc_at)?;
                }
                Some(c) => text.push(c),
            }
        }
        Ok(Tok::Str { text, verbatim })
    }

    /// One backslash escape, the backslash already consumed (`libxlu_cfg.c` dequote).
    fn escape(&mut self, out: &mut String, at: Location) -> Result<(), SyntaxError> {
        // The escape as written: the backslash and `len` characters (within the line).
        let bad = |lexer: &Self, len: usize, detail: &str| SyntaxError::Escape {
            at: at.clone(),
            near: std::iter::once('\\')
                .chain(
                    lexer.chars[lexer.pos..]
                        .iter()
                        .copied()
                        .take_while(|c| *c != '\n')
                        .take(len),
                )
                .collect(),
            detail: detail.to_owned(),
        };
        let c = match self.peek(0) {
            None | Some('\n') => return Err(bad(self, 0, "backslash at the end of the line")),
            Some(c) => c,
        };
        let simple = match c {
            '"' | '\'' | '\\' => Some(c),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(s) = simple {
            self.bump();
            out.push(s);
            return Ok(());
        }
        let (radix, max, skip) = match c {
            'x' => (16, 2, 1),
            '0'..='7' => (8, 3, 0),
            _ => {
                return Err(bad(
                    self,
                    1,
                    "invalid character after backslash in quoted string",
                ));
            }
        };
        let digits: String = self
            .chars
            .iter()
            .skip(self.pos + skip)
            .take(max)
            .take_while(|d| d.is_digit(radix))
            .collect();
        if digits.is_empty() || (radix == 16 && digits.len() != 2) {
            let base = if radix == 16 { "hex" } else { "octal" };
            return Err(bad(
                self,
                1 + max,
                &format!(
                    "invalid digit after backslash {base} numerical character escape in quoted string"
                ),
            ));
        }
        let value = u32::from_str_radix(&digits, radix).unwrap_or(u32::MAX);
        if value == 0 || value > 0x7f {
            return Err(bad(
                self,
                skip + digits.len(),
                "numerical character escape must give an ASCII character other than NUL",
            ));
        }
        for _ in 0..skip + digits.len() {
            self.bump();
        }
        out.push(char::from(value as u8));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Parser

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

const EXPECT_VALUE: &str = "a value (a quoted string, a number or a [list])";

impl Parser {
    fn new(source: &str, text: &str) -> Result<Self, SyntaxError> {
        Ok(Parser {
            tokens: Lexer::new(source, text).tokens()?,
            pos: 0,
        })
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self, t: &Token, expected: &'static str) -> SyntaxError {
        let near = match t.tok {
            Tok::Newline => Near::Newline,
            Tok::Eof => Near::EndOfFile,
            _ => Near::Text(t.raw.clone()),
        };
        SyntaxError::Grammar {
            at: t.at.clone(),
            near,
            unexpected: t.tok.describe(),
            expected,
        }
    }

    fn file(mut self) -> Result<Vec<Setting>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => return Ok(out),
                Tok::Newline | Tok::Semicolon => {}
                Tok::Ident(name) => {
                    out.push(self.assignment(name, t.at)?);
                    let end = self.next();
                    match end.tok {
                        Tok::Newline | Tok::Semicolon => {}
                        Tok::Eof => return Ok(out),
                        _ => return Err(self.unexpected(&end, "NEWLINE or ';'")),
                    }
                }
                _ => return Err(self.unexpected(&t, "a parameter name")),
            }
        }
    }

    fn assignment(&mut self, name: String, name_at: Location) -> Result<Setting, SyntaxError> {
        let t = self.next();
        let op = match t.tok {
            Tok::Assign => AssignOp::Assign,
            Tok::AddAssign => AssignOp::Append,
            _ => return Err(self.unexpected(&t, "'=' or \"+=\"")),
        };
        let value = self.value()?;
        Ok(Setting {
            name,
            name_at,
            op,
            value,
        })
    }

    fn skip_newlines(&mut self) {
        while self.peek().tok == Tok::Newline {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, SyntaxError> {
        let t = self.next();
        match t.tok {
            Tok::Str { text, verbatim } => Ok(Value::Atom(Atom {
                text,
                at: t.at,
                quoted: true,
                verbatim,
            })),
            Tok::Number(text) => Ok(Value::Atom(Atom {
                text,
                at: t.at,
                quoted: false,
                verbatim: true,
            })),
            Tok::LBracket => self.list(t.at),
            _ => Err(self.unexpected(&t, EXPECT_VALUE)),
        }
    }

    fn list(&mut self, at: Location) -> Result<Value, SyntaxError> {
        let mut items = Vec::new();
        self.skip_newlines();
        if self.peek().tok == Tok::RBracket {
            self.pos += 1;
            return Ok(Value::List(List { items, at }));
        }
        loop {
            items.push(self.value()?);
            self.skip_newlines();
            let t = self.next();
            match t.tok {
                Tok::RBracket => break,
                Tok::Comma => {
                    self.skip_newlines();
                    if self.peek().tok == Tok::RBracket {
                        self.pos += 1;
                        break;
                    }
                }
                _ => return Err(self.unexpected(&t, "',' or ']'")),
            }
        }
        Ok(Value::List(List { items, at }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, SyntaxError> {
        let mut s = Settings::new();
        s.parse("t.cfg", text)?;
        Ok(s)
    }

    fn atom(s: &Settings, key: &str) -> String {
        match &s.get(key).unwrap().value {
            Value::Atom(a) => a.text.clone(),
            v => panic!("{key} is {v:?}"),
        }
    }

    fn list(s: &Settings, key: &str) -> Vec<String> {
        match &s.get(key).unwrap().value {
            Value::List(l) => l
                .items
                .iter()
                .map(|v| match v {
                    Value::Atom(a) => a.text.clone(),
                    Value::List(_) => "<list>".to_owned(),
                })
                .collect(),
            v => panic!("{key} is {v:?}"),
        }
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn statements_strings_numbers_and_comments() {
        let s = parse(
            "# header\nname = \"h0\"\ntype='hvm'; memory = 512 # trailing\n\nvcpus=0x10\nlast = 'no newline'",
        )
        .unwrap();
        assert_eq!(atom(&s, "name"), "h0");
        assert_eq!(atom(&s, "type"), "hvm");
        assert_eq!(atom(&s, "memory"), "512");
        assert_eq!(atom(&s, "vcpus"), "0x10");
        assert_eq!(atom(&s, "last"), "no newline");
        assert_eq!(s.names(), vec!["name", "type", "memory", "vcpus", "last"]);
    }

    #[test]
    fn comment_at_end_of_file_without_newline() {
        let s = parse("name = 'a' # the end").unwrap();
        assert_eq!(atom(&s, "name"), "a");
    }

    #[test]
    fn keys_may_hold_dots_digits_and_underscores() {
        let s = parse("device_model_args_hvm.x2 = 1\n").unwrap();
        assert_eq!(atom(&s, "device_model_args_hvm.x2"), "1");
    }

    #[test]
    fn lists_span_lines_nest_and_allow_trailing_commas() {
        let s = parse(
            "disk = [\n  'a',\n  # comment inside\n  'b',\n]\nempty = []\nnested = [ 'x', [ '1', 2 ] ]\n",
        )
        .unwrap();
        assert_eq!(list(&s, "disk"), vec!["a", "b"]);
        assert!(list(&s, "empty").is_empty());
        assert_eq!(list(&s, "nested"), vec!["x", "<list>"]);
    }

    #[test]
    fn escapes() {
        let s = parse(r#"a = "q\"s\'b\\n\nt\tx\x41o\101" "#).unwrap();
        assert_eq!(atom(&s, "a"), "q\"s'b\\n\nt\txAoA");
        let s = parse(r"b = 'it\'s'").unwrap();
        assert_eq!(atom(&s, "b"), "it's");
        assert!(err(r#"a = "\q""#).contains(
            "t.cfg:1:6: config parsing error near `\\q': invalid character after backslash"
        ));
        assert!(err(r#"a = "\xg1""#).contains("invalid digit after backslash hex"));
    }

    #[test]
    fn last_setting_wins_and_append_joins() {
        let s = parse("memory = 1\nmemory = 2\ncmdline = 'a'\ncmdline += ' b'\ndisk = ['x']\ndisk += ['y', 'z']\nvif += ['v']\n").unwrap();
        assert_eq!(atom(&s, "memory"), "2");
        assert_eq!(atom(&s, "cmdline"), "a b");
        assert_eq!(list(&s, "disk"), vec!["x", "y", "z"]);
        assert_eq!(list(&s, "vif"), vec!["v"]);
        assert_eq!(s.get("cmdline").unwrap().op, AssignOp::Append);
    }

    #[test]
    fn append_of_the_other_type_is_an_error() {
        assert_eq!(
            err("disk = ['x']\ndisk += 'y'\n"),
            "t.cfg:2:9: config parsing error: can't add [list] to \"string\" or vice versa (parameter `disk')"
        );
    }

    #[test]
    fn later_sources_override_and_append() {
        let mut s = Settings::new();
        s.parse("f.cfg", "memory = 512\ncmdline = 'console=hvc0'\n")
            .unwrap();
        s.parse("<command line>", "memory=1024\ncmdline+=\" quiet\"")
            .unwrap();
        assert_eq!(atom(&s, "memory"), "1024");
        assert_eq!(atom(&s, "cmdline"), "console=hvc0 quiet");
        assert_eq!(
            s.get("memory").unwrap().name_at.to_string(),
            "<command line>:1:1"
        );
    }

    #[test]
    fn a_failed_source_changes_nothing() {
        let mut s = Settings::new();
        s.parse("f.cfg", "memory = 512\n").unwrap();
        assert!(s.parse("g.cfg", "memory = 1\nname = \n").is_err());
        assert_eq!(atom(&s, "memory"), "512");
        assert!(s.get("name").is_none());
    }

    #[test]
    fn grammar_errors_name_what_was_expected() {
        assert_eq!(
            err("name = \"a\"\nmemory 512\n"),
            "t.cfg:2:8: config parsing error near `512': syntax error, unexpected NUMBER, expecting '=' or \"+=\""
        );
        assert_eq!(
            err("memory =\n"),
            "t.cfg:1:9: config parsing error near <newline>: syntax error, unexpected NEWLINE, expecting a value (a quoted string, a number or a [list])"
        );
        assert_eq!(
            err("name = foo\n"),
            "t.cfg:1:8: config parsing error near `foo': syntax error, unexpected IDENT, expecting a value (a quoted string, a number or a [list])"
        );
        assert_eq!(
            err("disk = [ 'a' 'b' ]\n"),
            "t.cfg:1:14: config parsing error near `'b'': syntax error, unexpected STRING, expecting ',' or ']'"
        );
        assert_eq!(
            err("disk = [ 'a',\n"),
            "t.cfg:2:1: config parsing error near <end of file>: syntax error, unexpected end of file, expecting a value (a quoted string, a number or a [list])"
        );
        assert_eq!(
            err("a = 1 b = 2\n"),
            "t.cfg:1:7: config parsing error near `b': syntax error, unexpected IDENT, expecting NEWLINE or ';'"
        );
        assert_eq!(
            err("= 1\n"),
            "t.cfg:1:1: config parsing error near `=': syntax error, unexpected '=', expecting a parameter name"
        );
    }

    #[test]
    fn lexical_errors() {
        assert_eq!(
            err("Name = 'x'\n"),
            "t.cfg:1:1: config parsing error near `Name': lexical error: keys are lowercase, and string values must be quoted"
        );
        assert_eq!(
            err("kernel = /boot/vmlinuz\n"),
            "t.cfg:1:10: config parsing error near `/boot/vmlinuz': lexical error: unexpected character: string values must be quoted"
        );
        let python = err("memory = 256 * 2\nvif = range(3)\n");
        assert!(python.starts_with("t.cfg:1:14: config parsing error near `*': lexical error"));
        let python = err("vcpus = -1\n");
        assert!(python.contains("near `-1': lexical error"));
        assert!(python.contains("warning: Config file looks like it contains Python code."));
        assert_eq!(
            err("a = 1\r\n"),
            "t.cfg:1:6: config parsing error near `\\r': lexical error: carriage return (the file has DOS line endings; xl.cfg needs Unix ones)"
        );
        assert_eq!(
            err("name = 'abc\n"),
            "t.cfg:1:8: config parsing error near `'abc': unterminated string: a quoted string must end with ' on the same line"
        );
    }

    #[test]
    fn number_tokens_stop_at_non_number_characters() {
        // `512M` is NUMBER `512` followed by `M`, which is no token.
        assert!(err("memory = 512M\n").contains("t.cfg:1:13: config parsing error near `M'"));
    }

    #[test]
    fn atom_offsets_map_to_columns_when_verbatim() {
        let s = parse("disk = [ 'phy:/dev/x,xvda,w' ]\n").unwrap();
        let Value::List(l) = &s.get("disk").unwrap().value else {
            panic!()
        };
        let Value::Atom(a) = &l.items[0] else {
            panic!()
        };
        assert_eq!(a.location_of(0).to_string(), "t.cfg:1:11");
        assert_eq!(a.location_of(11).to_string(), "t.cfg:1:22");
    }
}
