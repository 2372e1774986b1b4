//! xl.cfg domain configuration files, read the way Xen's `xl` reads them.
//!
//! This crate turns the text of an xl.cfg(5) file (plus `KEY=VALUE` overrides from the
//! command line) into a typed [`DomainConfig`] shaped like libxl's `libxl_domain_config`,
//! whose JSON form is what `xl create -n` prints. It covers the file syntax
//! ([`syntax`]: strings, numbers, lists, `+=`, comments), the meaning of each key
//! ([`domain`], after xl's `parse_config_data`), disk specs ([`disk`],
//! xl-disk-configuration(5)), vif specs ([`vif`], xl-network-configuration(5)) and CPU
//! lists ([`cpus`]). Every error names a `file:line` (and column where it means
//! something) and what was expected.
//!
//! It does not decide what rxen can do with a configuration (that is the toolstack's
//! domain model), read files, look at the host beyond the CPU layout it is given, or
//! create anything.

pub mod cpus;
pub mod disk;
pub mod domain;
pub mod keys;
pub mod location;
pub mod syntax;
pub mod types;
pub mod vif;

use thiserror::Error;

pub use cpus::CpuTopology;
pub use domain::{DomainConfigError, IgnoredKey, ParsedConfig, SourceMap, Warning};
pub use location::Location;
pub use syntax::{Settings, SyntaxError};
pub use types::*;

/// The name under which `KEY=VALUE` command-line overrides are reported.
pub const COMMAND_LINE: &str = "<command line>";

/// A configuration could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The text is not valid xl.cfg syntax.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The settings do not make a valid domain configuration.
    #[error(transparent)]
    Domain(#[from] DomainConfigError),
}

/// One piece of configuration text and the name to report it under.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSource<'a> {
    /// A file name, or [`COMMAND_LINE`].
    pub name: &'a str,
    /// Its text.
    pub text: &'a str,
}

/// Reads a domain configuration from `sources`, later ones overriding (or, with `+=`,
/// extending) earlier ones, as xl appends command-line overrides to the file.
/// Warnings are appended to `warnings`, including those found before an error.
pub fn parse_domain_config(
    sources: &[ConfigSource<'_>],
    topology: &CpuTopology,
    warnings: &mut Vec<Warning>,
) -> Result<ParsedConfig, ConfigError> {
    let mut settings = Settings::new();
    for s in sources {
        settings.parse(s.name, s.text)?;
    }
    let main = sources.first().map_or(COMMAND_LINE, |s| s.name);
    Ok(domain::build_domain_config(
        &settings, main, topology, warnings,
    )?)
}
