//! The chat source: what a backup reads.
//!
//! A messaging app keeps writing its message database while a backup runs. Copying the file's
//! bytes could capture half a transaction, so every SQLite database (recognised by its header,
//! not its name) is copied through SQLite's online backup API in a single step: the copy is one
//! consistent read transaction, and in WAL mode the app's writers are not blocked meanwhile.
//! The database's `-wal`, `-shm` and `-journal` files are skipped: their committed content is in
//! the copy. Every other file is read as it is.

use crate::error::{Error, Result};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first 16 bytes of every SQLite 3 database file.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether the file at `path` starts with the SQLite header.
pub fn is_sqlite(path: &Path) -> Result<bool> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < 16 {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(n == 16 && &head == SQLITE_HEADER)
}

/// If `name` is a `-wal`, `-shm` or `-journal` companion, the database file name it belongs to.
pub fn sidecar_of(name: &str) -> Option<&str> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
}

/// A consistent copy of a live SQLite database in a temporary file (deleted on drop). The copy
/// holds plaintext and stays on the device, beside the source it was made from.
pub fn sqlite_snapshot(path: &Path, temp_dir: &Path) -> Result<tempfile::NamedTempFile> {
    let sql_err = |e: rusqlite::Error| Error::Sqlite {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".sealback-sqlite-")
        .tempfile_in(temp_dir)
        .map_err(|e| Error::io(temp_dir, e))?;
    let src = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    src.busy_timeout(Duration::from_secs(30)).map_err(sql_err)?;
    let mut dst = Connection::open(tmp.path()).map_err(sql_err)?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(sql_err)?;
        let mut attempts = 0;
        loop {
            // One step of -1 pages copies everything inside one read transaction.
            match backup.step(-1).map_err(sql_err)? {
                StepResult::Done => break,
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked => {
                    attempts += 1;
                    if attempts > 600 {
                        return Err(Error::Sqlite {
                            path: path.to_path_buf(),
                            detail: "the database stayed locked for 60 s".into(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => continue,
            }
        }
    }
    // The copy is a rollback-journal database; make sure it is a single self-contained file.
    dst.execute_batch("PRAGMA journal_mode=DELETE;")
        .map_err(sql_err)?;
    drop(dst);
    Ok(tmp)
}

/// Where temporary SQLite copies go: `SEALBACK_TEMP_DIR` or the system temporary folder.
pub fn temp_dir() -> PathBuf {
    std::env::var_os("SEALBACK_TEMP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}
