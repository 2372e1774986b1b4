//! `xl console` (Xen's `tools/xl/xl_console.c`).

use std::time::Duration;

use toolstack::console::{self, DEFAULT_ESCAPE, parse_escape};
use toolstack::error_chain;
use toolstack::paths::domain_files;

use crate::getopt::{HELP, OptSpec};
use crate::{Globals, find_domain, open_toolstack, parse_args};

/// `xl console`'s options.
pub const CONSOLE_OPTIONS: &[OptSpec] = &[
    OptSpec {
        short: Some('t'),
        long: None,
        arg: Some("TYPE"),
        help: "The console: pv (rxen guests have only that one), serial or vuart.",
    },
    OptSpec {
        short: Some('n'),
        long: None,
        arg: Some("NUM"),
        help: "The console's number (0: the only one).",
    },
    OptSpec {
        short: Some('e'),
        long: None,
        arg: Some("ESC"),
        help: "The character that detaches, like ^] (the default) or ^a.",
    },
    HELP,
];

/// `xl console [-t pv|serial|vuart] [-n NUM] [-e ESC] <Domain>`.
pub fn main_console(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("console", argv, CONSOLE_OPTIONS, 1) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let mut escape = DEFAULT_ESCAPE;
    let mut kind = "pv";
    let mut num = 0i64;
    for (spec, value) in &m.options {
        let v = value.as_deref().unwrap_or("");
        match spec.short {
            Some('t') => match v {
                "pv" | "serial" | "vuart" => kind = if v == "pv" { "pv" } else { v },
                _ => {
                    eprintln!("console type supported are: pv, serial, vuart");
                    return 1;
                }
            },
            // atoi
            Some('n') => {
                num = v
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '-')
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            }
            Some('e') => match parse_escape(v) {
                Some(c) => escape = c,
                None => {
                    eprintln!("xl: invalid escape character {v:?}: give one character or ^X");
                    return 1;
                }
            },
            _ => {}
        }
    }
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let domid = match find_domain(&mut ts, &m.operands[0]) {
        Ok(d) => d,
        Err(rc) => return rc,
    };
    if domid == 0 {
        eprintln!("xl: domain 0 is the host: use its own terminal");
        eprintln!("Unable to attach console");
        return 1;
    }
    if kind != "pv" || num != 0 {
        eprintln!(
            "xl: domain {domid} has no {kind} console {num}: rxen guests have one console, the PV console (-t pv -n 0)"
        );
        eprintln!("Unable to attach console");
        return 1;
    }
    if !ts.exists(domid) {
        eprintln!("xl: domain {domid} does not exist");
        eprintln!("Unable to attach console");
        return 1;
    }
    let socket = ts.paths.domain_dir(domid).join(domain_files::CONSOLE);
    let stream = match console::connect(&socket, Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            eprintln!("Unable to attach console");
            return 1;
        }
    };
    match console::attach(stream, escape) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            1
        }
    }
}
