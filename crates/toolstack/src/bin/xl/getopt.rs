//! Command-line options the way xl reads them: GNU `getopt_long`, as used by xl's
//! `def_getopt` (`tools/xl/xl_utils.c`).
//!
//! Short options bundle (`-np`) and take their argument attached or as the next word
//! (`-fFILE`, `-f FILE`); long options take `--name=VALUE` or `--name VALUE` and may be
//! abbreviated to any unambiguous prefix; `--` ends the options. Options and operands may
//! be mixed (GNU permutation) except for xl's global options, which stop at the first
//! operand (the subcommand).

use thiserror::Error;

/// One option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptSpec {
    /// `-c`.
    pub short: Option<char>,
    /// `--name`.
    pub long: Option<&'static str>,
    /// The argument's name in help (`FILE`), for options that take one.
    pub arg: Option<&'static str>,
    /// One line (or more, separated by `\n`) of help.
    pub help: &'static str,
}

impl OptSpec {
    /// How the option is written in help: `-f FILE, --defconfig=FILE`.
    pub fn usage(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.short {
            parts.push(match self.arg {
                Some(a) => format!("-{c} {a}"),
                None => format!("-{c}"),
            });
        }
        if let Some(l) = self.long {
            parts.push(match self.arg {
                Some(a) => format!("--{l}={a}"),
                None => format!("--{l}"),
            });
        }
        parts.join(", ")
    }

    /// The name used in messages: `c` or `defconfig`.
    fn name(&self) -> String {
        match (self.short, self.long) {
            (Some(c), _) => c.to_string(),
            (None, Some(l)) => l.to_owned(),
            (None, None) => String::new(),
        }
    }
}

/// The help option every command has.
pub const HELP: OptSpec = OptSpec {
    short: Some('h'),
    long: Some("help"),
    arg: None,
    help: "Print this help.",
};

/// A command line that does not fit the options.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GetoptError {
    /// An option that is not in the list.
    #[error("option `{0}' not supported.")]
    Lookup(String),
    /// A long option prefix matching several options.
    #[error("option `{0}' is ambiguous.")]
    Ambiguous(String),
    /// An option given without the argument it needs.
    #[error("option `{0}' requires an argument.")]
    MissingArgument(String),
    /// `--flag=value` for an option without argument.
    #[error("option `{0}' doesn't allow an argument.")]
    UnexpectedArgument(String),
}

/// Whether operands end the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// Options may follow operands (GNU's default).
    Permute,
    /// The first operand ends the options (getopt's `+`).
    RequireOrder,
}

/// The options and operands found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matches {
    /// Options in command-line order, with their arguments.
    pub options: Vec<(OptSpec, Option<String>)>,
    /// The remaining words.
    pub operands: Vec<String>,
}

impl Matches {
    /// How many times the option with short name `c` was given.
    pub fn count(&self, c: char) -> usize {
        self.options
            .iter()
            .filter(|(o, _)| o.short == Some(c))
            .count()
    }

    /// Whether the option with short name `c` was given.
    pub fn has(&self, c: char) -> bool {
        self.count(c) > 0
    }
}

/// Splits `args` into options from `specs` and operands.
pub fn getopt(args: &[String], specs: &[OptSpec], order: Ordering) -> Result<Matches, GetoptError> {
    let mut m = Matches::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            m.operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let spec = find_long(specs, name)?;
            let value = match (spec.arg, inline) {
                (None, Some(_)) => return Err(GetoptError::UnexpectedArgument(name.to_owned())),
                (None, None) => None,
                (Some(_), Some(v)) => Some(v),
                (Some(_), None) => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| GetoptError::MissingArgument(spec.name()))?;
                    i += 1;
                    Some(v.clone())
                }
            };
            m.options.push((spec, value));
        } else if a.len() > 1 && a.starts_with('-') {
            for (pos, c) in a[1..].char_indices() {
                let spec = *specs
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| GetoptError::Lookup(c.to_string()))?;
                if spec.arg.is_some() {
                    let rest = &a[1 + pos + c.len_utf8()..];
                    let value = if !rest.is_empty() {
                        rest.to_owned()
                    } else {
                        let v = args
                            .get(i)
                            .ok_or_else(|| GetoptError::MissingArgument(c.to_string()))?;
                        i += 1;
                        v.clone()
                    };
                    m.options.push((spec, Some(value)));
                    break;
                }
                m.options.push((spec, None));
            }
        } else {
            m.operands.push(a.clone());
            if order == Ordering::RequireOrder {
                m.operands.extend(args[i..].iter().cloned());
                break;
            }
        }
    }
    Ok(m)
}

fn find_long(specs: &[OptSpec], name: &str) -> Result<OptSpec, GetoptError> {
    if let Some(s) = specs.iter().find(|s| s.long == Some(name)) {
        return Ok(*s);
    }
    let matches: Vec<_> = specs
        .iter()
        .filter(|s| !name.is_empty() && s.long.is_some_and(|l| l.starts_with(name)))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => Err(GetoptError::Lookup(format!("-{name}"))),
        _ => Err(GetoptError::Ambiguous(format!("-{name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[OptSpec] = &[
        OptSpec {
            short: Some('n'),
            long: Some("dryrun"),
            arg: None,
            help: "",
        },
        OptSpec {
            short: Some('f'),
            long: Some("defconfig"),
            arg: Some("FILE"),
            help: "",
        },
        OptSpec {
            short: Some('q'),
            long: Some("quiet"),
            arg: None,
            help: "",
        },
        OptSpec {
            short: Some('V'),
            long: Some("vncviewer"),
            arg: None,
            help: "",
        },
        OptSpec {
            short: Some('A'),
            long: Some("vncviewer-autopass"),
            arg: None,
            help: "",
        },
        HELP,
    ];

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn run(s: &[&str]) -> Result<(String, Vec<String>), GetoptError> {
        let m = getopt(&args(s), SPECS, Ordering::Permute)?;
        let opts = m
            .options
            .iter()
            .map(|(o, v)| {
                format!(
                    "{}{}",
                    o.name(),
                    v.as_deref().map(|v| format!("={v}")).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        Ok((opts, m.operands))
    }

    #[test]
    fn gnu_forms() {
        assert_eq!(
            run(&["-nq", "a.cfg", "memory=5"]).unwrap(),
            ("n q".into(), args(&["a.cfg", "memory=5"]))
        );
        assert_eq!(
            run(&["a.cfg", "-fb.cfg", "-n"]).unwrap(),
            ("f=b.cfg n".into(), args(&["a.cfg"]))
        );
        assert_eq!(
            run(&["-f", "b.cfg"]).unwrap(),
            ("f=b.cfg".into(), args(&[]))
        );
        assert_eq!(
            run(&["--defconfig=b.cfg", "--dry"]).unwrap(),
            ("f=b.cfg n".into(), args(&[]))
        );
        assert_eq!(
            run(&["--defconfig", "b.cfg"]).unwrap(),
            ("f=b.cfg".into(), args(&[]))
        );
        assert_eq!(run(&["--", "-n"]).unwrap(), ("".into(), args(&["-n"])));
        assert_eq!(run(&["-"]).unwrap(), ("".into(), args(&["-"])));
        assert_eq!(run(&["--vncviewer"]).unwrap().0, "V");
    }

    #[test]
    fn errors() {
        assert_eq!(
            run(&["-x"]).unwrap_err().to_string(),
            "option `x' not supported."
        );
        assert_eq!(
            run(&["--bogus"]).unwrap_err().to_string(),
            "option `-bogus' not supported."
        );
        assert_eq!(
            run(&["--vnc"]).unwrap_err().to_string(),
            "option `-vnc' is ambiguous."
        );
        assert_eq!(
            run(&["-f"]).unwrap_err().to_string(),
            "option `f' requires an argument."
        );
        assert_eq!(
            run(&["--quiet=1"]).unwrap_err().to_string(),
            "option `quiet' doesn't allow an argument."
        );
    }

    #[test]
    fn require_order_stops_at_the_first_operand() {
        let m = getopt(
            &args(&["-n", "create", "-q", "x"]),
            SPECS,
            Ordering::RequireOrder,
        )
        .unwrap();
        assert_eq!(m.count('n'), 1);
        assert_eq!(m.operands, args(&["create", "-q", "x"]));
    }

    #[test]
    fn usage_strings() {
        assert_eq!(SPECS[1].usage(), "-f FILE, --defconfig=FILE");
        assert_eq!(SPECS[0].usage(), "-n, --dryrun");
    }
}
