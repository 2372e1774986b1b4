//! The operating-system edges of the lifecycle: watching a domain process end (a pidfd,
//! so a process that is not our child can be waited for too), signals, the allocation
//! lock and daemonising the monitor. Every `unsafe` block of the toolstack's lifecycle
//! is here.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use thiserror::Error;

/// A process step failed.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// `pidfd_open` failed (the process is already gone: `ESRCH`).
    #[error("cannot watch process {pid}")]
    PidfdOpen {
        pid: i32,
        #[source]
        source: io::Error,
    },
    /// `poll` failed.
    #[error("waiting for process {pid}")]
    Poll {
        pid: i32,
        #[source]
        source: io::Error,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}", path.display())]
    Lock {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    /// `fork` or `setsid` failed.
    #[error("cannot daemonise")]
    Daemonise(#[source] io::Error),
}

/// A handle on a running process that tells when it has ended.
#[derive(Debug)]
pub struct ProcessHandle {
    pid: i32,
    pidfd: OwnedFd,
    /// Set when the process is our child, so it can be reaped.
    child: Option<Child>,
}

impl ProcessHandle {
    /// Watches process `pid` (any process, child or not).
    pub fn open(pid: i32) -> Result<ProcessHandle, ProcessError> {
        Ok(ProcessHandle {
            pid,
            pidfd: pidfd_open(pid)?,
            child: None,
        })
    }

    /// Watches a child we started; it is reaped once it ends.
    pub fn from_child(child: Child) -> Result<ProcessHandle, ProcessError> {
        let pid = i32::try_from(child.id()).expect("pids fit in i32");
        Ok(ProcessHandle {
            pid,
            pidfd: pidfd_open(pid)?,
            child: Some(child),
        })
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits until the process has ended, or `timeout` has passed (`None`: no limit).
    /// Returns whether it has ended.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, ProcessError> {
        let ms = timeout.map_or(-1, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX));
        let mut pfd = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: `pfd` is one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ProcessError::Poll {
                    pid: self.pid,
                    source: e,
                });
            }
            if r == 0 {
                return Ok(false);
            }
            if let Some(c) = &mut self.child {
                let _ = c.wait();
            }
            return Ok(true);
        }
    }

    /// Whether the process has ended, without waiting.
    pub fn has_ended(&mut self) -> Result<bool, ProcessError> {
        self.wait(Some(Duration::ZERO))
    }

    /// The exit status, for a child that has ended.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Stops treating the process as our child (after a fork, it is the parent's).
    pub fn forget_child(&mut self) {
        self.child = None;
    }

    /// Sends SIGKILL.
    pub fn kill(&self) {
        kill(self.pid, libc::SIGKILL);
    }
}

fn pidfd_open(pid: i32) -> Result<OwnedFd, ProcessError> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(ProcessError::PidfdOpen {
            pid,
            source: io::Error::last_os_error(),
        });
    }
    let fd = i32::try_from(fd).expect("descriptors fit in i32");
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `signal` to `pid`; whether it was delivered.
pub fn kill(pid: i32, signal: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill takes two integers; pid > 0 names a single process.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether process `pid` exists (a zombie counts as ended).
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// An exclusive lock on a file, held until dropped (`flock`).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits for and takes the lock on `path`, creating the file.
    pub fn acquire(path: &Path) -> Result<FileLock, ProcessError> {
        let err = |source| ProcessError::Lock {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(err)?;
        loop {
            // SAFETY: flock on a descriptor we own.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(FileLock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(err(e));
            }
        }
    }
}

/// Which side of [`daemonise`] we are on.
#[derive(Debug, PartialEq, Eq)]
pub enum Side {
    /// The calling process, which goes on.
    Parent,
    /// The daemon: a new session, stdin on /dev/null, stdout and stderr on the log.
    Daemon,
}

/// Forks a daemon the way xl's `do_daemonize` does: the daemon runs in its own session,
/// detached from the terminal, with output appended to `log`.
///
/// Must be called while the process has a single thread.
pub fn daemonise(log: &Path) -> Result<Side, ProcessError> {
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let logfile = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(ProcessError::Daemonise)?;
    let null = File::open("/dev/null").map_err(ProcessError::Daemonise)?;
    // SAFETY: the caller guarantees a single thread, so the child is a complete copy
    // of this process; it only goes on running our own code.
    match unsafe { libc::fork() } {
        -1 => return Err(ProcessError::Daemonise(io::Error::last_os_error())),
        0 => {}
        child => {
            // Reap the intermediate child, which exits at once.
            let mut status = 0;
            // SAFETY: waiting for our own child; `status` outlives the call.
            unsafe { libc::waitpid(child, &mut status, 0) };
            return Ok(Side::Parent);
        }
    }
    // SAFETY: plain syscall without pointers, in the child.
    if unsafe { libc::setsid() } == -1 {
        exit_now(1);
    }
    // SAFETY: as above: still single-threaded.
    match unsafe { libc::fork() } {
        -1 => exit_now(1),
        0 => {}
        _ => exit_now(0),
    }
    for (src, dst) in [
        (null.as_raw_fd(), 0),
        (logfile.as_raw_fd(), 1),
        (logfile.as_raw_fd(), 2),
    ] {
        // SAFETY: both descriptors are open; dup2 replaces a standard one.
        if unsafe { libc::dup2(src, dst) } == -1 {
            exit_now(1);
        }
    }
    let _ = std::env::set_current_dir("/");
    Ok(Side::Daemon)
}

/// Ends a forked intermediate process without running exit handlers or flushing
/// buffers it shares with its parent.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; nothing is touched afterwards.
    unsafe { libc::_exit(code) }
}

/// `CLOCK_MONOTONIC` in nanoseconds (comparable across processes, for benchmarks).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_BOOTTIME` in nanoseconds: time since the host booted (`xl dmesg` stamps).
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
