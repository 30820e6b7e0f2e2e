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

/// File name extensions of video files (lower case).
const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "3gp", "3g2", "mkv", "webm", "avi", "mpg", "mpeg", "wmv", "flv",
];

/// ISO base media (MP4, QuickTime, 3GP) brands of video files. Audio (`M4A `) and image
/// (`heic`, `mif1`, `avif`) brands share the container and are not videos.
const VIDEO_BRANDS: &[&[u8; 4]] = &[
    b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"qt  ", b"M4V ", b"3gp4", b"3gp5", b"3gp6",
    b"3g2a", b"dash",
];

/// Whether `path` is a video, by its extension or, for a file named otherwise (chat apps
/// store media under opaque names), by its first bytes: an ISO base media file with a video
/// brand, Matroska/WebM, AVI, or an MPEG program stream.
pub fn is_video(path: &Path) -> bool {
    let by_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    by_name || sniff_video(path)
}

fn sniff_video(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 12];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if file.read_exact(&mut head).is_err() {
        return false;
    }
    is_video_header(&head)
}

/// The sniffing rule of [`is_video`] on a file's first 12 bytes.
pub fn is_video_header(head: &[u8; 12]) -> bool {
    let iso_video = &head[4..8] == b"ftyp" && VIDEO_BRANDS.iter().any(|b| &head[8..12] == *b);
    let matroska = head[..4] == [0x1a, 0x45, 0xdf, 0xa3];
    let avi = &head[..4] == b"RIFF" && &head[8..12] == b"AVI ";
    let mpeg_ps = head[..4] == [0x00, 0x00, 0x01, 0xba];
    iso_video || matroska || avi || mpeg_ps
}
