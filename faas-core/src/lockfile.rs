//! One process per data file: an exclusive advisory lock on `PATH.lock` holding the owner's pid.
//!
//! Used by the file-backed adapters (the SQLite store, the in-process bus's journal) so that a
//! second platform on the same file is refused with a clear message instead of corrupting it.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

/// Why [`lock`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; `holder` is ` (pid N)` when it wrote its pid, else empty.
    Held {
        /// ` (pid N)` or empty, ready to append to a message.
        holder: String,
    },
    /// The lock file could not be opened (`what` says which step) or locked.
    Io {
        /// The step that failed: `cannot open its lock file` or `cannot lock it`.
        what: &'static str,
        /// The operating system's error.
        error: std::io::Error,
    },
}

/// Takes `PATH.lock` exclusively (without waiting) and writes this process's pid into it. The
/// lock lasts as long as the returned file is open.
pub fn lock(path: &Path) -> Result<File, LockError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|error| LockError::Io {
            what: "cannot open its lock file",
            error,
        })?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            let holder = if pid.is_empty() {
                String::new()
            } else {
                format!(" (pid {pid})")
            };
            return Err(LockError::Held { holder });
        }
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(LockError::Io {
                what: "cannot lock it",
                error,
            });
        }
    }
    // Best effort: the pid only improves the message a second process gets.
    let _ = f
        .set_len(0)
        .and_then(|()| f.rewind())
        .and_then(|()| write!(f, "{}", std::process::id()))
        .and_then(|()| f.flush());
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_and_freed_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let first = lock(&path).unwrap();
        match lock(&path) {
            Err(LockError::Held { holder }) => {
                assert_eq!(holder, format!(" (pid {})", std::process::id()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(lock(&path).is_ok());
    }

    #[test]
    fn an_unwritable_place_is_an_io_error() {
        let e = lock(Path::new("/proc/no-such-dir/data.db")).unwrap_err();
        assert!(
            matches!(
                e,
                LockError::Io {
                    what: "cannot open its lock file",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
