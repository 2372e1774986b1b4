//! `xl console`: an interactive attachment to a domain's PV console through its
//! `console` socket (`docs/domain-process.md`), like Xen's `xenconsole` client.
//!
//! The terminal (when stdin is one) is put in raw mode for the attachment and restored
//! after it. Bytes typed go to the guest; the escape character (`Ctrl-]` unless told
//! otherwise) detaches. The attachment also ends when the domain closes the console
//! (it shut down or was destroyed). With stdin at its end (not a terminal), output keeps
//! flowing until then.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

/// `Ctrl-]`, xenconsole's escape character.
pub const DEFAULT_ESCAPE: u8 = 0x1d;

/// The console attachment failed.
#[derive(Debug, Error)]
pub enum ConsoleError {
    /// The console socket did not accept a connection.
    #[error("cannot connect to the console at {}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Terminal settings.
    #[error("cannot set up the terminal")]
    Terminal(#[source] io::Error),
    /// Relaying bytes.
    #[error("console I/O")]
    Io(#[source] io::Error),
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// The escape character was typed.
    Escape,
    /// The domain closed its console.
    Closed,
}

/// Parses xenconsole's `-e` argument: `^X` (control character) or a single character.
pub fn parse_escape(s: &str) -> Option<u8> {
    let b = s.as_bytes();
    match b {
        [c] => Some(*c),
        [b'^', c] if c.is_ascii_alphabetic() || b"[\\]^_@".contains(c) => {
            Some(c.to_ascii_uppercase() & 0x1f)
        }
        _ => None,
    }
}

/// Connects to a console socket, retrying for `wait` while it is not there yet (the domain
/// is still starting).
pub fn connect(socket: &Path, wait: Duration) -> Result<UnixStream, ConsoleError> {
    let deadline = Instant::now() + wait;
    loop {
        match UnixStream::connect(socket) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "console not there yet");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(ConsoleError::Connect {
                    path: socket.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Restores the terminal's settings when dropped.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Raw mode on `fd` if it is a terminal; `None` otherwise.
    fn enter(fd: RawFd) -> Result<Option<RawMode>, ConsoleError> {
        // SAFETY: isatty takes a descriptor and only inspects it.
        if unsafe { libc::isatty(fd) } != 1 {
            return Ok(None);
        }
        // SAFETY: an all-zero termios is a valid value for tcgetattr to overwrite.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a valid termios for the call to fill.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(ConsoleError::Terminal(io::Error::last_os_error()));
        }
        let mut raw = saved;
        // SAFETY: `raw` is a valid termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios; fd is a terminal.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(ConsoleError::Terminal(io::Error::last_os_error()));
        }
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring settings read from the same terminal.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Relays stdin and stdout to the console until the escape character or the console's
/// end.
pub fn attach(stream: UnixStream, escape: u8) -> Result<Detach, ConsoleError> {
    let stdin = io::stdin();
    let stdin_fd = stdin.as_raw_fd();
    let _raw = RawMode::enter(stdin_fd)?;
    relay(stream, stdin_fd, escape)
}

fn relay(mut stream: UnixStream, input: RawFd, escape: u8) -> Result<Detach, ConsoleError> {
    let mut out = io::stdout().lock();
    let mut input_open = true;
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: stream.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if input_open { input } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is an array of two valid pollfds for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(ConsoleError::Io(e));
        }
        if fds[0].revents != 0 {
            match stream.read(&mut buf) {
                Ok(0) => return Ok(Detach::Closed),
                Ok(n) => {
                    out.write_all(&buf[..n]).map_err(ConsoleError::Io)?;
                    out.flush().map_err(ConsoleError::Io)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Ok(Detach::Closed);
                }
                Err(e) => return Err(ConsoleError::Io(e)),
            }
        }
        if input_open && fds[1].revents != 0 {
            // SAFETY: reading into our buffer from a descriptor we were given.
            let n = unsafe { libc::read(input, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EIO) {
                    // The terminal went away.
                    input_open = false;
                } else if e.kind() != io::ErrorKind::Interrupted {
                    return Err(ConsoleError::Io(e));
                }
                continue;
            }
            let n = n as usize;
            if n == 0 {
                input_open = false;
                continue;
            }
            let data = &buf[..n];
            if let Some(pos) = data.iter().position(|b| *b == escape) {
                stream.write_all(&data[..pos]).map_err(ConsoleError::Io)?;
                return Ok(Detach::Escape);
            }
            if let Err(e) = stream.write_all(data) {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Ok(Detach::Closed);
                }
                return Err(ConsoleError::Io(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(parse_escape("^]"), Some(0x1d));
        assert_eq!(parse_escape("^a"), Some(0x01));
        assert_eq!(parse_escape("~"), Some(b'~'));
        assert_eq!(parse_escape("^1"), None);
        assert_eq!(parse_escape("ab"), None);
    }
}
