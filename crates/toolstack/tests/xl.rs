//! Runs the built `xl` binary and checks what a user sees: stdout, stderr and the exit
//! status, compared byte for byte with `tests/data/xl/CASE.{stdout,stderr}`.
//!
//! Configurations come from the xl-config crate's test data (the seed configurations and
//! the error cases); `xl` runs in that directory so the paths it prints are stable. Run
//! with `RXEN_BLESS=1` to rewrite the expected files (then review the diff).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../xl-config/tests/data")
}

fn expected_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/xl")
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

fn xl(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xl"))
        .args(args)
        .current_dir(configs_dir())
        .env("RXEN_CONFIG_DIR", "seeds")
        // No xenstored here: commands that need it fail, and nothing on this host is
        // touched.
        .env("XENSTORED_PATH", "/nonexistent/rxen-test/xenstored/socket")
        .env("RXEN_RUN_DIR", "/nonexistent/rxen-test/run")
        .env("RXEN_LOG_DIR", "/nonexistent/rxen-test/log")
        .env_remove("RUST_LOG")
        .output()
        .expect("xl runs");
    Run {
        status: out.status.code().expect("xl exits, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Lines that depend on this host's CPUs (the seed config pins vCPUs to CPUs 5-8).
fn without_host_cpu_lines(s: &str) -> String {
    s.lines()
        .filter(|l| {
            !l.contains("do not exist on this host")
                && !l.starts_with("xl: dry run: rxen could not create")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    status: i32,
    /// Drop the lines about host CPUs from stderr before comparing.
    host_cpus: bool,
}

const fn case(name: &'static str, args: &'static [&'static str], status: i32) -> Case {
    Case {
        name,
        args,
        status,
        host_cpus: false,
    }
}

const CASES: &[Case] = &[
    // Every seed configuration.
    case(
        "seed-c6-hvm",
        &["create", "-n", "seeds/c6-x8664.hvm.cfg"],
        0,
    ),
    case(
        "seed-c7-hvm",
        &["create", "-n", "seeds/c7-x8664.hvm.cfg"],
        0,
    ),
    case(
        "seed-c6-pvhvm",
        &["create", "-n", "seeds/c6-x8664.pvhvm.cfg"],
        0,
    ),
    case("seed-c7-pv", &["create", "-n", "seeds/c7-x8664.pv.cfg"], 0),
    Case {
        host_cpus: true,
        ..case("seed-ubuntu", &["create", "-n", "seeds/ubuntu-xen.cfg"], 0)
    },
    case(
        "seed-xenguest1",
        &["create", "-n", "seeds/xenguest1.cfg"],
        0,
    ),
    // A bare name is looked up in the configuration directory, as NAME or NAME.cfg.
    case("bare-name", &["create", "-n", "xenguest1"], 0),
    // Keys that rxen does not act on, and devices.
    case("keys-pvh", &["create", "-n", "keys/pvh.cfg"], 0),
    case("keys-pv", &["create", "-n", "keys/pv.cfg"], 0),
    case("unmodelled", &["create", "-n", "keys/unmodelled.cfg"], 0),
    case("devices", &["create", "-n", "devices/disks.cfg"], 0),
    case("vifs", &["create", "-n", "devices/vifs.cfg"], 0),
    // KEY=VALUE overrides, ';' between several in one word, += and /dev/null.
    case(
        "overrides",
        &[
            "create",
            "-n",
            "seeds/xenguest1.cfg",
            "memory=512",
            "type=\"pvh\"; kernel=\"/boot/vmlinuz\"",
            "root+=\" console=hvc0\"",
            "disk+=['phy:/dev/vg_sys/xenguest1-data,xvdb,w']",
        ],
        0,
    ),
    case(
        "dev-null",
        &[
            "create",
            "-n",
            "/dev/null",
            "name=\"scratch\"",
            "type=\"pvh\"",
            "kernel=\"/boot/vmlinuz\"",
            "memory=256",
        ],
        0,
    ),
    case("quiet", &["create", "-nq", "seeds/c7-x8664.pv.cfg"], 0),
    // Malformed configurations: a file:line error, exit status 1, nothing on stdout.
    case("missing-file", &["create", "-n", "nosuch"], 1),
    case(
        "missing-file-path",
        &["create", "-n", "errors/nosuch.cfg"],
        1,
    ),
    case(
        "syntax-error",
        &["create", "-n", "errors/syntax-missing-equals.cfg"],
        1,
    ),
    case("python", &["create", "-n", "errors/syntax-python.cfg"], 1),
    case(
        "memory-lots",
        &["create", "-n", "errors/memory-lots.cfg"],
        1,
    ),
    case("vcpus-zero", &["create", "-n", "errors/vcpus-zero.cfg"], 1),
    case(
        "disk-format",
        &["create", "-n", "errors/disk-format.cfg"],
        1,
    ),
    case(
        "disk-not-a-list",
        &["create", "-n", "errors/disk-not-a-list.cfg"],
        1,
    ),
    case("no-name", &["create", "-n", "errors/no-name.cfg"], 1),
    case("vif-mac", &["create", "-n", "errors/vif-mac.cfg"], 1),
    case(
        "override-error",
        &["create", "-n", "seeds/xenguest1.cfg", "memory=lots"],
        1,
    ),
    case(
        "override-value-error",
        &["create", "-n", "seeds/xenguest1.cfg", "vcpus=\"0\""],
        1,
    ),
    case("no-config", &["create", "-n"], 1),
    // Without -n: rxen refuses what it cannot run, and cannot start domains yet.
    case("create-hvm", &["create", "seeds/c6-x8664.hvm.cfg"], 1),
    case(
        "create-pvh",
        &[
            "create",
            "-p",
            "-c",
            "-F",
            "/dev/null",
            "name=\"demo\"",
            "type=\"pvh\"",
            "kernel=\"/boot/vmlinuz\"",
        ],
        1,
    ),
    // The command line itself.
    case("help", &["help"], 0),
    case("help-create", &["help", "create"], 0),
    case("create-h", &["create", "-h"], 0),
    case("create-help", &["create", "--help"], 0),
    case("help-unknown", &["help", "cpupool-list"], 0),
    case("help-list", &["help", "list"], 0),
    case("no-command", &[], 1),
    case("unknown-command", &["cpupool-list"], 1),
    // Commands that need xenstored say so when it is not there.
    case("no-xenstored", &["list"], 1),
    case("unknown-global-option", &["-x", "create"], 1),
    case(
        "unknown-option",
        &["create", "-x", "seeds/xenguest1.cfg"],
        2,
    ),
    case("missing-option-argument", &["create", "-n", "-f"], 2),
    case(
        "two-config-files",
        &[
            "create",
            "-n",
            "seeds/xenguest1.cfg",
            "seeds/c7-x8664.pv.cfg",
        ],
        2,
    ),
];

#[test]
fn xl_outputs() {
    let bless = std::env::var_os("RXEN_BLESS").is_some();
    if bless {
        fs::create_dir_all(expected_dir()).unwrap();
    }
    let mut failures = Vec::new();
    for c in CASES {
        let r = xl(c.args);
        let stderr = if c.host_cpus {
            without_host_cpu_lines(&r.stderr)
        } else {
            r.stderr.clone()
        };
        if r.status != c.status {
            failures.push(format!(
                "{}: exit status {} (expected {})\nstderr:\n{}",
                c.name, r.status, c.status, r.stderr
            ));
        }
        if r.status == 1 && c.args.contains(&"create") && !r.stdout.is_empty() {
            failures.push(format!("{}: failed but wrote to stdout", c.name));
        }
        for (ext, got) in [("stdout", &r.stdout), ("stderr", &stderr)] {
            let path = expected_dir().join(format!("{}.{ext}", c.name));
            if bless {
                fs::write(&path, got).unwrap();
                continue;
            }
            let want = fs::read_to_string(&path).unwrap_or_else(|_| "<missing>".into());
            if &want != got {
                failures.push(format!(
                    "{}.{ext} differs\n--- expected\n{want}--- got\n{got}",
                    c.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_seed_config_is_accepted() {
    let mut seeds: Vec<_> = fs::read_dir(configs_dir().join("seeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cfg"))
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5);
    for p in seeds {
        let rel = p
            .strip_prefix(configs_dir())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let r = xl(&["create", "-n", &rel]);
        assert_eq!(r.status, 0, "{rel}: {}", r.stderr);
        let config: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{rel}: stdout is not JSON ({e}):\n{}", r.stdout));
        assert!(config["c_info"]["name"].is_string(), "{rel}");
        assert!(
            r.stderr
                .starts_with(&format!("Parsing config from {rel}\n")),
            "{rel}"
        );
    }
}

#[test]
fn dry_run_spellings_agree() {
    let reference = xl(&["create", "-n", "seeds/c7-x8664.pv.cfg"]);
    assert_eq!(reference.status, 0);
    for args in [
        &["-N", "create", "seeds/c7-x8664.pv.cfg"][..],
        &["create", "--dryrun", "seeds/c7-x8664.pv.cfg"],
        &["create", "--dry", "seeds/c7-x8664.pv.cfg"],
        &["create", "seeds/c7-x8664.pv.cfg", "-n"],
        &["create", "-n", "-f", "seeds/c7-x8664.pv.cfg"],
        &["create", "-n", "--defconfig=seeds/c7-x8664.pv.cfg"],
        &["create", "-nfseeds/c7-x8664.pv.cfg"],
        &["cr", "-n", "seeds/c7-x8664.pv.cfg"],
        &["-v", "create", "-n", "c7-x8664.pv"],
    ] {
        let r = xl(args);
        assert_eq!(r.status, 0, "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout, reference.stdout, "{args:?}");
    }
}

#[test]
fn debug_prints_the_configuration_on_stderr() {
    let r = xl(&[
        "create",
        "-d",
        "/dev/null",
        "name=\"d\"",
        "type=\"pvh\"",
        "kernel=\"/k\"",
    ]);
    assert_eq!(r.status, 1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("\"name\": \"d\""), "{}", r.stderr);
}
