//! The `xenstore-read`, `-write`, `-ls`, `-list`, `-rm`, `-exists`, `-chmod`
//! and `-watch` tools, with Xen's flags, output formats and exit codes
//! (`docs/man/xenstore-*.1.pod`). One entry point serves them all: the mode
//! comes from the program name (`xenstore-read ...`) or the first argument
//! (`xenstore read ...`).

use crate::client::{Client, ClientError, Transaction};
use crate::perms::{Access, Perm, Perms};
use crate::wire::Errno;
use std::ffi::OsString;
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Chmod,
    Exists,
    List,
    Ls,
    Read,
    Rm,
    Write,
    Watch,
}

fn lookup_mode(m: &str) -> Option<Mode> {
    Some(match m {
        "read" => Mode::Read,
        "chmod" => Mode::Chmod,
        "exists" => Mode::Exists,
        "list" => Mode::List,
        "ls" => Mode::Ls,
        "rm" => Mode::Rm,
        "write" => Mode::Write,
        "watch" => Mode::Watch,
        _ => return None,
    })
}

/// Quotes a value for printing as Xen's tools do: printable ASCII as is,
/// `\t \n \r \\` escaped, other bytes as `\ooo` (below 8) or `\xhh`.
pub fn sanitise(v: &[u8]) -> String {
    let mut s = String::with_capacity(v.len());
    for &c in v {
        match c {
            b'\\' => s.push_str("\\\\"),
            b' '..=b'~' => s.push(c as char),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c < 0o10 => s.push_str(&format!("\\{c:03o}")),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// The inverse of [`sanitise`], with the quirks of Xen's parser: `\x` takes
/// up to two hex digits, `\0`..`\7` up to three octal digits, any other
/// escaped character stands for itself, and a trailing `\` is a NUL byte.
pub fn unsanitise(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = s.get(i) else {
            out.push(0);
            break;
        };
        i += 1;
        let b = match e {
            b't' => b'\t',
            b'n' => b'\n',
            b'r' => b'\r',
            b'\\' => b'\\',
            b'x' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 2 && i < s.len() && s[i].is_ascii_hexdigit() {
                    v = v * 16 + (s[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if n == 0 { b'x' } else { v as u8 }
            }
            b'0'..=b'7' => {
                i -= 1;
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 3 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                    v = v * 8 + (s[i] - b'0') as u32;
                    i += 1;
                    n += 1;
                }
                v as u8
            }
            other => other,
        };
        out.push(b);
    }
    out
}

struct Opts {
    prefix: bool,
    tidy: bool,
    upto: bool,
    recurse: bool,
    nr_watches: i64,
    raw: bool,
    depth: Option<u32>,
    flat: bool,
}

/// The tool's process: program name for messages, output buffer.
struct Tool {
    prog: String,
    incl_mode: bool,
    out: Vec<u8>,
}

/// What ends a run early: an exit code (message already printed).
struct Exit(i32);

fn strerror(e: &ClientError) -> String {
    let raw = match e {
        ClientError::Daemon { errno, .. } => match errno {
            // libxenstore does not know EQUOTA and reports EINVAL.
            Errno::EQUOTA => libc::EINVAL,
            e => e.raw(),
        },
        ClientError::Connect(_, io) | ClientError::Io(io) => io.raw_os_error().unwrap_or(libc::EIO),
        _ => libc::EIO,
    };
    std::io::Error::from_raw_os_error(raw)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or("")
        .to_string()
}

impl Tool {
    fn warnx(&self, msg: &str) {
        eprintln!("{}: {}", self.prog, msg);
    }

    fn errx(&self, code: i32, msg: &str) -> Exit {
        self.warnx(msg);
        Exit(code)
    }

    fn err(&self, code: i32, msg: &str, e: &ClientError) -> Exit {
        eprintln!("{}: {}: {}", self.prog, msg, strerror(e));
        Exit(code)
    }

    fn usage(&self, code: i32, mode: Option<Mode>) -> Exit {
        let m = |name: &str| {
            if self.incl_mode {
                format!("{name} ")
            } else {
                String::new()
            }
        };
        let p = &self.prog;
        let msg = match mode {
            None => format!("Usage: {p} <mode> [-h] [...]"),
            Some(Mode::Read) => format!("Usage: {p} {}[-h] [-p] [-R] key [...]", m("read")),
            Some(Mode::Write) => format!("Usage: {p} {}[-h] [-R] key value [...]", m("write")),
            Some(Mode::Rm) => format!("Usage: {p} {}[-h] [-t] key [...]", m("rm")),
            Some(Mode::Exists) => format!("Usage: {p} {}[-h] key", m("exists")),
            Some(Mode::List) => format!("Usage: {p} {}[-h] [-p] key [...]", m("list")),
            Some(Mode::Ls) => format!("Usage: {p} {}[-h] [-f] [-p] [path]", m("ls")),
            Some(Mode::Chmod) => {
                format!(
                    "Usage: {p} {}[-h] [-u] [-r] key <mode [modes...]>",
                    m("chmod")
                )
            }
            Some(Mode::Watch) => format!("Usage: {p} {}[-h] [-n NR] [-d DEPTH] key", m("watch")),
        };
        self.errx(code, &msg)
    }
}

fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, d) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n: i64 = d.bytes().take_while(u8::is_ascii_digit).fold(0i64, |a, b| {
        a.saturating_mul(10).saturating_add((b - b'0') as i64)
    });
    if neg { -n } else { n }
}

/// Runs the tool with `args` (including `argv[0]`); returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = args.first().cloned().unwrap_or_else(|| "xenstore".into());
    let prog = argv0.rsplit('/').next().unwrap_or(&argv0).to_string();
    let mut tool = Tool {
        prog: prog.clone(),
        incl_mode: false,
        out: Vec::new(),
    };
    let (mode_name, rest) = if let Some(m) = prog.strip_prefix("xenstore-") {
        (m.to_string(), &args[1..])
    } else if args.len() < 2 {
        return tool.usage(1, None).0;
    } else {
        tool.incl_mode = true;
        (args[1].clone(), &args[2..])
    };
    let Some(mode) = lookup_mode(&mode_name) else {
        return tool.errx(1, &format!("unknown mode {mode_name}\n")).0;
    };
    match run_mode(&mut tool, mode, rest) {
        Ok(code) => code,
        Err(Exit(code)) => code,
    }
}

fn run_mode(tool: &mut Tool, mode: Mode, rest: &[String]) -> Result<i32, Exit> {
    let mut o = Opts {
        prefix: false,
        tidy: false,
        upto: false,
        recurse: false,
        nr_watches: -1,
        raw: false,
        depth: None,
        flat: false,
    };
    // GNU getopt_long: options may follow operands; "--" ends options.
    let mut pos: Vec<String> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        i += 1;
        if a == "--" {
            pos.extend(rest[i..].iter().cloned());
            break;
        }
        let mut shorts: Vec<(char, Option<String>)> = Vec::new();
        if let Some(long) = a.strip_prefix("--") {
            let (name, val) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let c = match name {
                "help" => 'h',
                "flat" => 'f',
                "prefix" => 'p',
                "tidy" => 't',
                "upto" => 'u',
                "recurse" => 'r',
                "number" => 'n',
                "raw" => 'R',
                "depth" => 'd',
                _ => {
                    tool.warnx(&format!("unrecognized option '{a}'"));
                    continue;
                }
            };
            let val = if matches!(c, 'n' | 'd') && val.is_none() {
                let v = rest.get(i).cloned();
                i += 1;
                match v {
                    Some(v) => Some(v),
                    None => {
                        tool.warnx(&format!("option '{a}' requires an argument"));
                        continue;
                    }
                }
            } else {
                val
            };
            shorts.push((c, val));
        } else if a.len() > 1 && a.starts_with('-') {
            let cs: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < cs.len() {
                let c = cs[j];
                j += 1;
                if matches!(c, 'n' | 'd') {
                    let v: String = cs[j..].iter().collect();
                    let v = if v.is_empty() {
                        let v = rest.get(i).cloned();
                        i += 1;
                        match v {
                            Some(v) => v,
                            None => {
                                tool.warnx(&format!("option requires an argument -- '{c}'"));
                                break;
                            }
                        }
                    } else {
                        v
                    };
                    shorts.push((c, Some(v)));
                    break;
                }
                shorts.push((c, None));
            }
        } else {
            pos.push(a.clone());
            continue;
        }
        for (c, v) in shorts {
            match c {
                'h' => return Err(tool.usage(0, Some(mode))),
                'f' if mode == Mode::Ls => o.flat = true,
                'p' if matches!(mode, Mode::Read | Mode::List | Mode::Ls) => o.prefix = true,
                't' if mode == Mode::Rm => o.tidy = true,
                'u' if mode == Mode::Chmod => o.upto = true,
                'r' if mode == Mode::Chmod => o.recurse = true,
                'n' if mode == Mode::Watch => o.nr_watches = atoi(&v.unwrap_or_default()),
                'R' if matches!(mode, Mode::Read | Mode::Write) => o.raw = true,
                'd' if mode == Mode::Watch => {
                    let d = atoi(&v.unwrap_or_default());
                    o.depth = u32::try_from(d).ok();
                }
                's' => {} // accepted and ignored, as in Xen 4.17
                'f' | 'p' | 't' | 'u' | 'r' | 'n' | 'R' | 'd' => {
                    return Err(tool.usage(1, Some(mode)));
                }
                other => {
                    tool.warnx(&format!("invalid option -- '{other}'"));
                }
            }
        }
    }

    match mode {
        Mode::Ls => {}
        Mode::Write if pos.len() % 2 == 1 => return Err(tool.usage(1, Some(mode))),
        _ if pos.is_empty() => return Err(tool.usage(1, Some(mode))),
        _ => {}
    }
    let transaction = match mode {
        Mode::Read => pos.len() > 1,
        Mode::Write => pos.len() > 2,
        Mode::Ls | Mode::Watch => false,
        _ => true,
    };
    let mut max_width: i64 = 80;
    if o.flat {
        max_width = i32::MAX as i64 / 2;
    }
    if mode == Mode::Ls {
        if let Some(cols) = terminal_columns() {
            max_width = cols as i64 - 2;
        }
    }
    let mut xs = Client::connect().map_err(|e| tool.err(1, "xs_open", &e))?;
    loop {
        tool.out.clear();
        let ret;
        if transaction {
            let mut tx = xs
                .transaction_start()
                .map_err(|_| tool.errx(1, "couldn't start transaction"))?;
            ret = perform(tool, mode, &pos, &o, &mut Ops::Tx(&mut tx), max_width)?;
            let end = if ret == 0 { tx.commit() } else { tx.abort() };
            match end {
                Ok(()) => {}
                Err(e) if ret == 0 && e.errno() == Some(Errno::EAGAIN) => continue,
                Err(_) => return Err(tool.errx(1, "couldn't end transaction")),
            }
        } else {
            ret = perform(tool, mode, &pos, &o, &mut Ops::Plain(&mut xs), max_width)?;
        }
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(&tool.out);
        let _ = so.flush();
        return Ok(ret);
    }
}

fn terminal_columns() -> Option<u16> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` to the pointer, which is valid.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(ws.ws_col)
}

/// Operations in or out of a transaction.
enum Ops<'a, 'b> {
    Plain(&'a mut Client),
    Tx(&'a mut Transaction<'b>),
}

impl Ops<'_, '_> {
    fn read(&mut self, p: &str) -> Result<Vec<u8>, ClientError> {
        match self {
            Ops::Plain(c) => c.read(p),
            Ops::Tx(t) => t.read(p),
        }
    }
    fn write(&mut self, p: &str, v: &[u8]) -> Result<(), ClientError> {
        match self {
            Ops::Plain(c) => c.write(p, v),
            Ops::Tx(t) => t.write(p, v),
        }
    }
    fn rm(&mut self, p: &str) -> Result<(), ClientError> {
        match self {
            Ops::Plain(c) => c.rm(p),
            Ops::Tx(t) => t.rm(p),
        }
    }
    fn directory(&mut self, p: &str) -> Result<Vec<String>, ClientError> {
        match self {
            Ops::Plain(c) => c.directory(p),
            Ops::Tx(t) => t.directory(p),
        }
    }
    fn get_perms(&mut self, p: &str) -> Result<Perms, ClientError> {
        match self {
            Ops::Plain(c) => c.get_perms(p),
            Ops::Tx(t) => t.get_perms(p),
        }
    }
    fn set_perms_raw(&mut self, p: &str, perms: &[Perm]) -> Result<(), ClientError> {
        // An empty list is sent as is; the daemon refuses it.
        let mut payload = p.as_bytes().to_vec();
        payload.push(0);
        for x in perms {
            payload.extend_from_slice(x.to_string().as_bytes());
            payload.push(0);
        }
        match self {
            Ops::Plain(c) => c
                .request(xen_abi::xs_wire::XS_SET_PERMS, 0, payload)
                .map(|_| ()),
            Ops::Tx(t) => match Perms::from_vec(perms.to_vec()) {
                Some(ps) => t.set_perms(p, &ps),
                None => Err(ClientError::Daemon {
                    op: "SET_PERMS",
                    errno: Errno::EINVAL,
                }),
            },
        }
    }
    fn client(&mut self) -> Option<&mut Client> {
        match self {
            Ops::Plain(c) => Some(c),
            Ops::Tx(_) => None,
        }
    }
}

fn perform(
    tool: &mut Tool,
    mode: Mode,
    pos: &[String],
    o: &Opts,
    xs: &mut Ops<'_, '_>,
    max_width: i64,
) -> Result<i32, Exit> {
    match mode {
        Mode::Read => {
            for k in pos {
                let Ok(v) = xs.read(k) else {
                    tool.warnx(&format!("couldn't read path {k}"));
                    return Ok(1);
                };
                if o.prefix {
                    tool.out.extend_from_slice(format!("{k}: ").as_bytes());
                }
                if o.raw {
                    tool.out.extend_from_slice(&v);
                } else {
                    tool.out.extend_from_slice(sanitise(&v).as_bytes());
                    tool.out.push(b'\n');
                }
            }
        }
        Mode::Write => {
            for kv in pos.chunks(2) {
                let v = if o.raw {
                    kv[1].as_bytes().to_vec()
                } else {
                    unsanitise(kv[1].as_bytes())
                };
                if xs.write(&kv[0], &v).is_err() {
                    tool.warnx(&format!("could not write path {}", kv[0]));
                    return Ok(1);
                }
            }
        }
        Mode::Rm => {
            for k in pos {
                let mut p = k.clone();
                loop {
                    if xs.rm(&p).is_err() {
                        tool.warnx(&format!("could not remove path {p}"));
                        return Ok(1);
                    }
                    if !o.tidy {
                        break;
                    }
                    let Some(slash) = p.rfind('/') else {
                        break;
                    };
                    p.truncate(slash);
                    let empty_value = xs.read(&p).is_ok_and(|v| v.is_empty());
                    if empty_value && xs.directory(&p).is_ok_and(|l| l.is_empty()) {
                        continue;
                    }
                    break;
                }
            }
        }
        Mode::Exists => {
            for k in pos {
                if xs.read(k).is_err() {
                    return Ok(1);
                }
            }
        }
        Mode::List => {
            for k in pos {
                let Ok(list) = xs.directory(k) else {
                    tool.warnx(&format!("could not list path {k}"));
                    return Ok(1);
                };
                let pref = if k == "/" { "" } else { k.as_str() };
                for name in list {
                    if o.prefix {
                        tool.out.extend_from_slice(format!("{pref}/").as_bytes());
                    }
                    tool.out.extend_from_slice(format!("{name}\n").as_bytes());
                }
            }
        }
        Mode::Ls => {
            let roots: Vec<String> = if pos.is_empty() {
                vec!["/".into()]
            } else {
                pos.to_vec()
            };
            let mut w = LsWriter {
                max_width,
                desired_width: if o.flat { 0 } else { 60 },
                flat: o.flat,
                perms: o.prefix,
                out: std::io::BufWriter::new(std::io::stdout().lock()),
            };
            for r in roots {
                w.ls(tool, xs, &r, 0)?;
            }
            let _ = w.out.flush();
        }
        Mode::Chmod => {
            let path = &pos[0];
            let mut perms = Vec::new();
            for s in &pos[1..] {
                let access = match s.as_bytes().first() {
                    Some(b'n') => Access::None,
                    Some(b'r') => Access::Read,
                    Some(b'w') => Access::Write,
                    Some(b'b') => Access::Both,
                    _ => {
                        let c = s.chars().next().unwrap_or('\0');
                        return Err(
                            tool.errx(1, &format!("Invalid permission specification: '{c}'"))
                        );
                    }
                };
                perms.push(Perm::new(atoi(&s[1..]) as u16, access));
            }
            chmod(tool, xs, path, &perms, o.upto, o.recurse)?;
        }
        Mode::Watch => {
            let Some(c) = xs.client() else {
                return Ok(1);
            };
            for k in pos {
                let r = match o.depth {
                    None => c.watch(k, k),
                    Some(d) => c.watch_depth(k, k, d),
                };
                if r.is_err() {
                    return Err(match o.depth {
                        None => tool.errx(1, &format!("Unable to add watch on {k}\n")),
                        Some(d) => {
                            tool.errx(1, &format!("Unable to add watch on {k} with depth {d}\n"))
                        }
                    });
                }
            }
            let mut count: i64 = 0;
            while o.nr_watches == -1 || count < o.nr_watches {
                match c.read_watch() {
                    Ok(ev) => {
                        let mut so = std::io::stdout().lock();
                        let _ = writeln!(so, "{}", ev.path);
                        let _ = so.flush();
                    }
                    Err(ClientError::Closed) | Err(ClientError::Io(_)) => return Ok(1),
                    Err(_) => {}
                }
                count += 1;
            }
        }
    }
    Ok(0)
}

fn chmod(
    tool: &Tool,
    xs: &mut Ops<'_, '_>,
    path: &str,
    perms: &[Perm],
    upto: bool,
    recurse: bool,
) -> Result<(), Exit> {
    if path.is_empty() {
        return Ok(());
    }
    if let Err(e) = xs.set_perms_raw(path, perms) {
        return Err(tool.err(
            1,
            &format!("Error occurred setting permissions on '{path}'"),
            &e,
        ));
    }
    if upto {
        let Some(i) = path.rfind('/') else {
            return Err(tool.errx(
                1,
                &format!("Unable to locate path separator '/' in '{path}'"),
            ));
        };
        chmod(tool, xs, &path[..i], perms, true, false)?;
    }
    if recurse {
        if let Ok(children) = xs.directory(path) {
            for c in children {
                let mut p = format!("{path}/{c}");
                // Xen's client truncates child paths to 255 bytes.
                if p.len() > 255 {
                    let mut cut = 255;
                    while !p.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    p.truncate(cut);
                }
                chmod(tool, xs, &p, perms, false, true)?;
            }
        }
    }
    Ok(())
}

/// `xenstore-ls` output, streamed to stdout like Xen's (which uses
/// `printf` directly rather than the buffered output of other modes).
struct LsWriter<W: Write> {
    max_width: i64,
    desired_width: i64,
    flat: bool,
    perms: bool,
    out: W,
}

const TAG_LEN: i64 = 8; // strlen(" = \"...\"")

fn take_chars(s: &str, n: i64) -> &str {
    if n < 0 || n as usize >= s.len() {
        return s;
    }
    let mut cut = n as usize;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

impl<W: Write> LsWriter<W> {
    fn ls(
        &mut self,
        tool: &Tool,
        xs: &mut Ops<'_, '_>,
        path: &str,
        depth: i64,
    ) -> Result<(), Exit> {
        let list = match xs.directory(path) {
            Ok(l) => l,
            Err(e) => {
                if depth > 0 && e.is_enoent() {
                    return Ok(());
                }
                let _ = self.out.flush();
                return Err(tool.err(1, &format!("xs_directory ({path})"), &e));
            }
        };
        for name in list {
            let newpath = if path.ends_with('/') {
                format!("{path}{name}")
            } else {
                format!("{path}/{name}")
            };
            let mut linewid: i64 = 0;
            let mut line = String::new();
            if self.flat {
                line.push_str(&newpath);
            } else {
                for _ in 0..depth {
                    line.push(' ');
                }
                linewid = depth;
                let shown = take_chars(&name, self.max_width - TAG_LEN - linewid);
                line.push_str(shown);
                linewid += shown.len() as i64;
            }
            let val = if newpath.len() < xen_abi::xs_wire::XENSTORE_ABS_PATH_MAX + 1024 {
                xs.read(&newpath).ok()
            } else {
                None
            };
            match val {
                None => line.push_str(":\n"),
                Some(v) => {
                    let s = sanitise(&v);
                    if self.max_width < linewid + v.len() as i64 + TAG_LEN {
                        line.push_str(&format!(
                            " = \"{}\\...\"",
                            take_chars(&s, self.max_width - TAG_LEN - linewid)
                        ));
                    } else {
                        let part = format!(" = \"{s}\"");
                        linewid += part.len() as i64;
                        line.push_str(&part);
                        if self.perms {
                            line.push(' ');
                            linewid += 1;
                            while linewid < self.desired_width.min(self.max_width) {
                                line.push(if linewid & 1 == 1 { '.' } else { ' ' });
                                linewid += 1;
                            }
                        }
                    }
                }
            }
            let _ = self.out.write_all(line.as_bytes());
            if self.perms {
                match xs.get_perms(&newpath) {
                    Ok(p) => {
                        let list: Vec<String> = p.entries().iter().map(|e| e.to_string()).collect();
                        let _ = write!(self.out, "  ({})", list.join(","));
                    }
                    Err(e) => {
                        let _ = self.out.flush();
                        eprintln!(
                            "{}: \ncould not access permissions for {}: {}",
                            tool.prog,
                            name,
                            strerror(&e)
                        );
                    }
                }
            }
            let _ = self.out.write_all(b"\n");
            self.ls(tool, xs, &newpath, depth + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitise_like_xen() {
        assert_eq!(sanitise(b"plain text~"), "plain text~");
        assert_eq!(sanitise(b"a\\b\tc\nd\re"), "a\\\\b\\tc\\nd\\re");
        assert_eq!(
            sanitise(&[0, 7, 8, 0x7f, 0xff]),
            "\\000\\007\\x08\\x7f\\xff"
        );
    }

    #[test]
    fn unsanitise_inverts_and_keeps_quirks() {
        for v in [&b"abc"[..], b"a\\b", &[0, 1, 200, b'\n', b'x']] {
            assert_eq!(unsanitise(sanitise(v).as_bytes()), v);
        }
        assert_eq!(unsanitise(b"\\xg"), b"xg");
        assert_eq!(unsanitise(b"\\q"), b"q");
        assert_eq!(unsanitise(b"ab\\"), b"ab\0");
        assert_eq!(unsanitise(b"\\1234"), b"\x534");
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi("-3"), -3);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi(""), 0);
    }
}
