//! Finding and reading a domain's configuration: the xl.cfg file, the `KEY=VALUE`
//! overrides given after it on the command line, merged as xl merges them (the overrides
//! are read after the file, so they replace its settings or, with `+=`, extend them).
//!
//! A configuration named without a directory that does not exist as given is looked up in
//! the Xen configuration directory (`/etc/xen`, or `$RXEN_CONFIG_DIR`) as `NAME` and then
//! `NAME.cfg`, so `xl create guest1` finds `/etc/xen/guest1.cfg`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;
use xl_config::{
    COMMAND_LINE, ConfigError, ConfigSource, CpuTopology, ParsedConfig, Warning,
    parse_domain_config,
};

/// Where Xen keeps domain configurations.
pub const XEN_CONFIG_DIR: &str = "/etc/xen";

/// The environment variable that overrides [`XEN_CONFIG_DIR`].
pub const CONFIG_DIR_ENV: &str = "RXEN_CONFIG_DIR";

/// The directory bare configuration names are looked up in.
pub fn config_dir() -> PathBuf {
    std::env::var_os(CONFIG_DIR_ENV).map_or_else(|| PathBuf::from(XEN_CONFIG_DIR), PathBuf::from)
}

/// A configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigFileError {
    /// The file does not exist, neither as given nor in the configuration directory.
    #[error("Failed to read config file: {name}: No such file or directory{}", tried_list(.tried))]
    Locate { name: String, tried: Vec<PathBuf> },
    /// The file exists but could not be read.
    #[error("Failed to read config file: {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{}:{line}: config file is not UTF-8 text", path.display())]
    Decode { path: PathBuf, line: usize },
    /// The configuration does not parse.
    #[error(transparent)]
    Parse(#[from] ConfigError),
}

fn tried_list(tried: &[PathBuf]) -> String {
    if tried.is_empty() {
        return String::new();
    }
    let names: Vec<_> = tried.iter().map(|p| p.display().to_string()).collect();
    format!(" (also looked for {})", names.join(" and "))
}

/// A configuration file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The path it was read from, as shown to the user.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// Finds the file `name` names: the path itself if it exists, else, for a name without
/// a `/`, `dir/name` or `dir/name.cfg`.
pub fn locate_config(name: &str, dir: &Path) -> Result<PathBuf, ConfigFileError> {
    let given = PathBuf::from(name);
    if given.exists() || name.contains('/') {
        return Ok(given);
    }
    let mut tried = vec![dir.join(name)];
    if !name.ends_with(".cfg") {
        tried.push(dir.join(format!("{name}.cfg")));
    }
    match tried.iter().find(|p| p.exists()) {
        Some(p) => Ok(p.clone()),
        None => Err(ConfigFileError::Locate {
            name: name.to_owned(),
            tried,
        }),
    }
}

/// Locates and reads the configuration file `name`.
pub fn read_config_file(name: &str, dir: &Path) -> Result<ConfigFile, ConfigFileError> {
    let path = locate_config(name, dir)?;
    let bytes = fs::read(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ConfigFileError::Locate {
            name: name.to_owned(),
            tried: Vec::new(),
        },
        _ => ConfigFileError::Read {
            path: path.clone(),
            source,
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ConfigFileError::Decode {
            path: path.clone(),
            line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
        }
    })?;
    tracing::debug!(path = %path.display(), bytes = text.len(), "read domain config");
    Ok(ConfigFile { path, text })
}

/// Parses a configuration file with its command-line overrides (each `KEY=VALUE`
/// argument is one line of a second source called `<command line>`).
pub fn parse_config(
    file: &ConfigFile,
    overrides: &[String],
    topology: &CpuTopology,
    warnings: &mut Vec<Warning>,
) -> Result<ParsedConfig, ConfigFileError> {
    let name = file.path.display().to_string();
    let extra = overrides.join("\n");
    let mut sources = vec![ConfigSource {
        name: &name,
        text: &file.text,
    }];
    if !overrides.is_empty() {
        sources.push(ConfigSource {
            name: COMMAND_LINE,
            text: &extra,
        });
    }
    Ok(parse_domain_config(&sources, topology, warnings)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "rxen-toolstack-config-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn bare_names_are_looked_up_in_the_config_dir() {
        let dir = tmpdir("lookup");
        fs::write(dir.join("guest1.cfg"), "name='guest1'\n").unwrap();
        fs::write(dir.join("plain"), "name='plain'\n").unwrap();
        assert_eq!(
            locate_config("guest1", &dir).unwrap(),
            dir.join("guest1.cfg")
        );
        assert_eq!(
            locate_config("guest1.cfg", &dir).unwrap(),
            dir.join("guest1.cfg")
        );
        assert_eq!(locate_config("plain", &dir).unwrap(), dir.join("plain"));
        let e = locate_config("nosuch", &dir).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "Failed to read config file: nosuch: No such file or directory (also looked for {} and {})",
                dir.join("nosuch").display(),
                dir.join("nosuch.cfg").display()
            )
        );
        // A path with a directory is taken as it is.
        assert_eq!(
            read_config_file("./nosuch/guest1", &dir)
                .unwrap_err()
                .to_string(),
            "Failed to read config file: ./nosuch/guest1: No such file or directory"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn non_utf8_files_are_refused_with_a_line() {
        let dir = tmpdir("utf8");
        let p = dir.join("bad.cfg");
        fs::write(&p, b"name='a'\nkernel='\xff'\n").unwrap();
        let e = read_config_file(p.to_str().unwrap(), &dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}:2: config file is not UTF-8 text", p.display())
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn overrides_come_after_the_file() {
        let file = ConfigFile {
            path: "g.cfg".into(),
            text: "name='g'\nkernel='/k'\nmemory=256\ncmdline='a'\n".into(),
        };
        let mut w = Vec::new();
        let p = parse_config(
            &file,
            &["memory=512".into(), "cmdline+=' b'; vcpus=2".into()],
            &CpuTopology::uniform(4),
            &mut w,
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(p.config.b_info.target_memkb, Some(512 * 1024));
        assert_eq!(p.config.b_info.cmdline.as_deref(), Some("a b"));
        assert_eq!(p.config.b_info.max_vcpus, 2);
        assert_eq!(p.sources.keys["memory"].to_string(), "<command line>:1");
        let e =
            parse_config(&file, &["memory=".into()], &CpuTopology::uniform(4), &mut w).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("<command line>:1:8: config parsing error")
        );
    }
}
