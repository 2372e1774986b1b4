//! The append-only log file of [`crate::persist`].
//!
//! An append is copied into a shared mapping of the file: once the copy is
//! done the bytes are in the kernel's page cache, where a crash or `SIGKILL`
//! of the daemon cannot lose them, exactly as after a `write(2)`, but with
//! no system call per append. The file is mapped one window at a time, and
//! each window's blocks are allocated (`fallocate`) before it is mapped, so a
//! full disk is an error returned here, never a `SIGBUS` on a later store.
//! Where the file system cannot preallocate or map, every append is one
//! `pwrite(2)` instead.
//!
//! The file's size therefore runs ahead of its records: whatever follows
//! the last record is zeros, which [`crate::persist`] tells from a torn
//! record. Nothing else may truncate the file while the daemon runs (as for
//! any state file of a running daemon).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

/// Bytes of the file mapped at a time.
const WINDOW: usize = 1 << 20;

/// One mapped window of the file.
struct Window {
    ptr: NonNull<u8>,
    /// File offset of `ptr`.
    off: u64,
    size: usize,
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`size` describe a mapping this window created and
        // owns alone; nothing refers to it after this.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.size);
        }
    }
}

// SAFETY: the mapping is owned by one `Window` (inside one `LogFile`) and
// only touched through `&mut LogFile`; moving it to another thread moves
// that exclusive ownership.
unsafe impl Send for Window {}

enum Mode {
    /// No window mapped (yet, or until the next append).
    Unmapped,
    Mapped(Window),
    /// The file system cannot preallocate or map: `pwrite` per append.
    Write,
}

/// An append-only file whose appends reach the page cache without a system
/// call in the common case.
pub(crate) struct LogFile {
    file: File,
    /// Bytes of records so far: where the next append goes.
    len: u64,
    mode: Mode,
}

impl std::fmt::Debug for LogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFile")
            .field("len", &self.len)
            .field(
                "mode",
                &match self.mode {
                    Mode::Unmapped => "unmapped",
                    Mode::Mapped(_) => "mapped",
                    Mode::Write => "write",
                },
            )
            .finish()
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

impl LogFile {
    /// A log in `file` (open for reading and writing) that holds `len`
    /// bytes of records; anything after them is overwritten.
    pub(crate) fn new(file: File, len: u64) -> LogFile {
        LogFile {
            file,
            len,
            mode: Mode::Unmapped,
        }
    }

    /// The same, always appending with `pwrite` (the fallback, for tests).
    #[cfg(test)]
    pub(crate) fn new_unmapped(file: File, len: u64) -> LogFile {
        LogFile {
            file,
            len,
            mode: Mode::Write,
        }
    }

    /// Bytes of records.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `data`; when this returns, it is in the kernel's hands.
    pub(crate) fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            let len = self.len;
            let w = match &mut self.mode {
                Mode::Write => {
                    self.file.write_all_at(rest, len)?;
                    self.len += rest.len() as u64;
                    return Ok(());
                }
                Mode::Mapped(w) if len < w.off + w.size as u64 => w,
                _ => {
                    self.map_at_end()?;
                    continue;
                }
            };
            let at = (len - w.off) as usize;
            let n = rest.len().min(w.size - at);
            // SAFETY: `at < size` and `n <= size - at`, so the destination
            // lies inside the window, a live mapping this log owns alone;
            // `rest` is ordinary memory, which cannot overlap it.
            unsafe {
                std::ptr::copy_nonoverlapping(rest.as_ptr(), w.ptr.as_ptr().add(at), n);
            }
            self.len += n as u64;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Maps a window that starts at the page holding the end of the log,
    /// allocating its blocks first; falls back to `pwrite` where that is
    /// not supported.
    fn map_at_end(&mut self) -> io::Result<()> {
        // Unmap the old window first.
        self.mode = Mode::Unmapped;
        let page = page_size();
        let off = self.len / page * page;
        let fd = self.file.as_raw_fd();
        // SAFETY: fallocate on a file descriptor this log owns; it touches
        // no memory of ours.
        let r = unsafe { libc::fallocate(fd, 0, off as libc::off_t, WINDOW as libc::off_t) };
        if r != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {
                    tracing::debug!("log: no fallocate here ({e}), appending with pwrite");
                    self.mode = Mode::Write;
                    Ok(())
                }
                _ => Err(e),
            };
        }
        // SAFETY: a new shared mapping of `WINDOW` bytes of our own file at
        // a page-aligned offset; the blocks were just allocated, so the whole
        // range lies inside the file. The result is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                WINDOW,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                off as libc::off_t,
            )
        };
        match NonNull::new(p.cast::<u8>()) {
            Some(ptr) if p != libc::MAP_FAILED => {
                self.mode = Mode::Mapped(Window {
                    ptr,
                    off,
                    size: WINDOW,
                });
            }
            _ => {
                let e = io::Error::last_os_error();
                tracing::debug!("log: cannot map ({e}), appending with pwrite");
                self.mode = Mode::Write;
            }
        }
        Ok(())
    }

    /// Makes what was appended durable on disk (`fdatasync`, which writes
    /// back pages dirtied through the mapping too).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(seed: u64, total: usize) -> Vec<Vec<u8>> {
        // Sizes from 1 byte to over a page, so appends straddle pages and
        // windows.
        let mut v = Vec::new();
        let mut x = seed;
        let mut sum = 0;
        while sum < total {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = 1 + (x >> 33) as usize % 5000;
            let b = (x >> 56) as u8 | 1;
            v.push(vec![b; n]);
            sum += n;
        }
        v
    }

    fn check(path: &std::path::Path, want: &[u8]) {
        let got = std::fs::read(path).unwrap();
        assert!(got.len() >= want.len());
        assert!(got[..want.len()] == *want, "records intact");
        assert!(got[want.len()..].iter().all(|&b| b == 0), "zeros after");
    }

    #[test]
    fn appends_across_windows_land_in_the_file() {
        for mapped in [true, false] {
            let dir =
                std::env::temp_dir().join(format!("xs-logfile-{}-{mapped}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("log");
            let open = || {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .unwrap()
            };
            let mut want = Vec::new();
            {
                let mut log = if mapped {
                    LogFile::new(open(), 0)
                } else {
                    LogFile::new_unmapped(open(), 0)
                };
                for r in records(1, 3 * WINDOW) {
                    log.append(&r).unwrap();
                    want.extend_from_slice(&r);
                }
                assert_eq!(log.len(), want.len() as u64);
                // Visible to readers of the file before any unmap or sync.
                check(&path, &want);
            }
            check(&path, &want);
            // Reopened in the middle of a page: appends continue there.
            let mut log = LogFile::new(open(), want.len() as u64);
            for r in records(2, WINDOW / 2) {
                log.append(&r).unwrap();
                want.extend_from_slice(&r);
            }
            log.sync().unwrap();
            drop(log);
            check(&path, &want);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
