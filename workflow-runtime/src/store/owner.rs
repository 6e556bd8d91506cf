//! Who owns a store file: an advisory lock on a file beside it, held for the
//! life of the store.
//!
//! The lock is `flock(2)` on `<file>-lock`: the operating system releases it
//! when the owning process dies, however it dies, so a store whose owner was
//! killed is taken over by the next `open` without any guess about whether a
//! process id is still alive. `flock` locks belong to an open file, not to a
//! process, so a second store in the same process is refused too. The owner
//! writes its process id and host name into the file, for the message a
//! refused `open` gets.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The lock on a store file; dropping it lets the next owner in.
#[derive(Debug)]
pub(crate) struct Owner {
    /// Held open: closing it releases the lock.
    _lock: File,
}

/// The lock file of the store file at `path`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-lock");
    PathBuf::from(name)
}

impl Owner {
    /// Takes ownership of the store file at `path` (named `name` in
    /// messages), or says who has it.
    pub(crate) fn take(path: &Path, name: &str) -> Result<Owner, StoreError> {
        let lock = lock_path(path);
        let failed = |what: &str, error: std::io::Error| {
            StoreError::Backend(format!(
                "{name}: cannot {what} the lock file {}: {error}",
                lock.display()
            ))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(|e| failed("open", e))?;
        match try_lock(&file) {
            Ok(true) => {}
            Ok(false) => {
                let mut record = String::new();
                // An owner that has just locked may not have written its
                // record yet: then it is unknown.
                let _ = file.read_to_string(&mut record);
                let mut lines = record.lines();
                let pid = lines.next().and_then(|p| p.trim().parse().ok());
                let host = lines.next().map(str::trim).filter(|h| !h.is_empty()).map(String::from);
                return Err(StoreError::InUse {
                    file: name.to_string(),
                    pid,
                    host,
                });
            }
            Err(error) => return Err(failed("lock", error)),
        }
        let record = format!("{}\n{}\n", std::process::id(), host_name());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(record.as_bytes()))
            .map_err(|e| failed("write", e))?;
        Ok(Owner { _lock: file })
    }
}

/// Takes the exclusive lock without waiting: `Ok(false)` if it is held.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this `File` owns and keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(error)
    }
}

/// Elsewhere there is no lock (see the README): every open owns the file.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// This machine's host name, or `?` if the system does not say.
#[cfg(unix)]
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "?".to_string(),
    }
}

#[cfg(not(unix))]
fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "?".to_string())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let first = Owner::take(&path, "j.db").unwrap();
        match Owner::take(&path, "j.db") {
            Err(StoreError::InUse { file, pid, host }) => {
                assert_eq!(file, "j.db");
                assert_eq!(pid, Some(std::process::id()));
                assert_eq!(host, Some(host_name()));
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        let _second = Owner::take(&path, "j.db").unwrap();
    }

    #[test]
    fn a_lock_file_that_cannot_be_opened_is_a_backend_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        std::fs::create_dir(lock_path(&path)).unwrap();
        match Owner::take(&path, "j.db") {
            Err(StoreError::Backend(message)) => {
                assert!(message.starts_with("j.db: cannot open the lock file"), "{message}")
            }
            other => panic!("expected a backend error, got {other:?}"),
        }
    }

    #[test]
    fn an_unwritten_record_names_no_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let _first = Owner::take(&path, "j.db").unwrap();
        std::fs::write(lock_path(&path), "").unwrap();
        let refused = Owner::take(&path, "j.db").unwrap_err();
        assert_eq!(
            refused,
            StoreError::InUse {
                file: "j.db".into(),
                pid: None,
                host: None
            }
        );
        assert_eq!(
            refused.to_string(),
            "j.db is in use by another process (its owner record is not readable yet): one store at a time owns a file"
        );
    }
}
