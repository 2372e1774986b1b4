//! Golden tests: every `tests/data/**/NAME.cfg` is parsed and the result compared,
//! byte for byte, with files next to it:
//!
//! - `NAME.json`: the configuration as libxl-shaped JSON (what `xl create -n` prints before
//!   rxen's own adjustments);
//! - `NAME.diag`: warnings and ignored keys, one per line (absent when there are none);
//! - for configurations under `errors/`, `NAME.err`: the warnings and the error instead.
//!
//! Run with `RXEN_BLESS=1` to rewrite the files from the current output (then review the
//! diff). A fixed host layout is used: 8 CPUs in two NUMA nodes (0-3, 4-7).

use std::fs;
use std::path::{Path, PathBuf};

use xl_config::{Bitmap, ConfigSource, CpuTopology, parse_domain_config};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn topology() -> CpuTopology {
    CpuTopology {
        nr_cpus: 8,
        nodes: vec![Bitmap((0..4).collect()), Bitmap((4..8).collect())],
    }
}

fn configs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            configs(&p, out);
        } else if p.extension().is_some_and(|x| x == "cfg") {
            out.push(p);
        }
    }
    out.sort();
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// What a configuration produces: (extension, contents) pairs.
fn outputs(path: &Path) -> Vec<(&'static str, String)> {
    let text = fs::read_to_string(path).unwrap();
    let rel = path.strip_prefix(data_dir()).unwrap().display().to_string();
    let mut warnings = Vec::new();
    let result = parse_domain_config(
        &[ConfigSource {
            name: &rel,
            text: &text,
        }],
        &topology(),
        &mut warnings,
    );
    let mut diag: String = warnings.iter().map(|w| format!("{w}\n")).collect();
    match result {
        Ok(parsed) => {
            for i in &parsed.ignored {
                diag.push_str(&format!("{}: ignored: {} ({})\n", i.at, i.key, i.feature));
            }
            let mut out = vec![("json", parsed.config.to_json())];
            if !diag.is_empty() {
                out.push(("diag", diag));
            }
            out
        }
        Err(e) => {
            diag.push_str(&error_chain(&e));
            diag.push('\n');
            vec![("err", diag)]
        }
    }
}

#[test]
fn golden_outputs() {
    let bless = std::env::var_os("RXEN_BLESS").is_some();
    let mut paths = Vec::new();
    configs(&data_dir(), &mut paths);
    assert!(paths.len() > 40, "test data missing: {paths:?}");
    let mut failures = Vec::new();
    for path in &paths {
        let in_errors = path.parent().unwrap().ends_with("errors");
        let outs = outputs(path);
        let produced: Vec<&str> = outs.iter().map(|(ext, _)| *ext).collect();
        if in_errors != produced.contains(&"err") {
            failures.push(format!(
                "{}: expected {}, got {produced:?}",
                path.display(),
                if in_errors { "an error" } else { "success" }
            ));
        }
        for ext in ["json", "diag", "err"] {
            let golden = path.with_extension(ext);
            let got = outs
                .iter()
                .find(|(e, _)| *e == ext)
                .map(|(_, s)| s.as_str());
            if bless {
                match got {
                    Some(s) => fs::write(&golden, s).unwrap(),
                    None => {
                        let _ = fs::remove_file(&golden);
                    }
                }
                continue;
            }
            let want = fs::read_to_string(&golden).ok();
            if want.as_deref() != got {
                failures.push(format!(
                    "{}: differs\n--- expected\n{}\n--- got\n{}",
                    golden.display(),
                    want.unwrap_or_else(|| "<no file>".into()),
                    got.unwrap_or("<nothing>")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every key that rxen reads is exercised by some golden configuration, and so is every
/// key it knows but does not model.
#[test]
fn golden_configs_cover_every_key() {
    let mut paths = Vec::new();
    configs(&data_dir(), &mut paths);
    let mut set = std::collections::BTreeSet::new();
    for p in &paths {
        let mut s = xl_config::Settings::new();
        if s.parse("x", &fs::read_to_string(p).unwrap()).is_ok() {
            set.extend(s.names().into_iter().map(str::to_owned));
        }
    }
    let missing: Vec<_> = xl_config::keys::all()
        .filter(|k| !set.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "keys without a golden test: {missing:?}"
    );
}

/// The JSON reads back into the same configuration (it is how the toolstack hands a
/// configuration to the domain process).
#[test]
fn json_round_trips() {
    let mut paths = Vec::new();
    configs(&data_dir(), &mut paths);
    for path in paths {
        let text = fs::read_to_string(&path).unwrap();
        let mut w = Vec::new();
        let Ok(parsed) = parse_domain_config(
            &[ConfigSource {
                name: "x",
                text: &text,
            }],
            &topology(),
            &mut w,
        ) else {
            continue;
        };
        let json = parsed.config.to_json();
        let back = xl_config::DomainConfig::from_json(&json)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(back, parsed.config, "{}", path.display());
    }
}
