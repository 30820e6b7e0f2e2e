//! The engine's errors, sorted into the few kinds a caller acts on.

use sealback_core::keyslot::UnlockError;
use sealback_core::{FormatError, ObjectError};
use sealback_store::StoreError;
use std::path::PathBuf;

/// What kind of failure, for exit codes and for deciding what to tell the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The protector did not unlock the backup (wrong key, passkey, password; failed or
    /// cancelled verification).
    Unlock,
    /// Stored data is corrupt, truncated, swapped, missing or tampered with.
    Integrity,
    /// The key vault refused (locked out, rate limited).
    VaultRefused,
    /// Another operation holds the repository (a prune, or a backup while pruning); nothing
    /// was changed and trying again later will work.
    Busy,
    /// The drive that holds the repository is full: nothing saved before was lost; space must
    /// be freed before trying again.
    DriveFull,
    /// Anything else: I/O, storage unreachable, bad arguments.
    Other,
}

/// An engine failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Unlocking failed.
    #[error(transparent)]
    Unlock(#[from] UnlockError),
    /// Stored data failed verification.
    #[error("integrity failure: {0}")]
    Integrity(String),
    /// No repository at the location.
    #[error("no sealback repository at {0} (run `sealback init` first, or check --repo)")]
    NotARepository(String),
    /// `init` on a location that already holds one.
    #[error("{0} already holds a sealback repository")]
    AlreadyExists(String),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A SQLite database could not be copied.
    #[error("could not copy SQLite database {}: {detail}", path.display())]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The drive that holds the repository is full. The failed write left nothing behind.
    #[error("the drive that holds {location} is full ({path} did not fit). Nothing saved before was lost and no partial file was left behind. Free space on that drive: delete files you no longer need there, or old snapshots with `sealback forget` followed by `sealback prune` (both run on a full drive); then run this again")]
    DriveFull {
        /// The repository's location.
        location: String,
        /// The object that did not fit.
        path: String,
    },
    /// Another operation holds a lock that excludes this one.
    #[error("{0}")]
    Locked(String),
    /// This operation's lock was removed while it ran (another machine judged it stale after
    /// 30 minutes without a refresh): it stopped before committing anything.
    #[error("the repository lock of this {operation} was removed while it ran (it looked abandoned to another sealback); nothing was committed: run it again")]
    LockLost {
        /// What was running.
        operation: String,
    },
    /// The request cannot be done as asked.
    #[error("{0}")]
    Invalid(String),
    /// The keys file in storage is of an older key epoch than this device has seen.
    #[error("the keys file in storage is at key epoch {found}, but this device has seen epoch {seen}: an older keys file was put back, which would undo a key removal (`key remove --rotate`) and let the removed key read new backups. Nothing was unlocked or written. If you restored the cloud drive from an old copy yourself and mean to keep it, delete {} and run the command again", record.display())]
    KeysRolledBack {
        /// The highest epoch this device has seen.
        seen: u32,
        /// The epoch of the keys file in storage.
        found: u32,
        /// The device's record.
        record: PathBuf,
    },
    /// The keys file in storage holds a key this device removed: an older keys file was put
    /// back (a removal without rotation keeps the key epoch).
    #[error("the keys file in storage holds key {slot}, which this device removed: an older keys file was put back, and the next rotation would seal the new backup key to the removed key. Nothing was unlocked or written. If you restored the cloud drive from an old copy yourself and mean to keep it, delete {} and run the command again", record.display())]
    KeysReplayed {
        /// The removed key found again (id and name).
        slot: String,
        /// The device's record.
        record: PathBuf,
    },
    /// The keys file in storage is of an older format than this device has seen (format 1,
    /// without the MAC, after format 2).
    #[error("the keys file in storage is of format {found}, but this device has seen it in format {seen}: someone removed the part that authenticates the list of keys, so that a key of their own would be vouched for by the next upgrade. Nothing was unlocked or written. If you restored the cloud drive from an old copy yourself and mean to keep it, delete {} and run the command again", record.display())]
    KeysDowngraded {
        /// The highest format this device has seen.
        seen: u8,
        /// The format of the keys file in storage.
        found: u8,
        /// The device's record.
        record: PathBuf,
    },
}

impl Error {
    /// The kind, for exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unlock(
                UnlockError::Tampered { .. }
                | UnlockError::KeysFile { .. }
                | UnlockError::Unvouched { .. },
            ) => ErrorKind::Integrity,
            Error::Unlock(UnlockError::Protector(
                sealback_core::protector::ProtectorError::Refused(_),
            )) => ErrorKind::VaultRefused,
            Error::Unlock(_) => ErrorKind::Unlock,
            Error::Integrity(_)
            | Error::KeysRolledBack { .. }
            | Error::KeysDowngraded { .. }
            | Error::KeysReplayed { .. } => ErrorKind::Integrity,
            Error::Locked(_) | Error::LockLost { .. } => ErrorKind::Busy,
            Error::DriveFull { .. } => ErrorKind::DriveFull,
            _ => ErrorKind::Other,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An object failed to open: always an integrity failure, naming the object.
    pub(crate) fn object(what: impl std::fmt::Display, e: ObjectError) -> Self {
        Error::Integrity(format!("{what}: {e}"))
    }

    pub(crate) fn format(what: impl std::fmt::Display, e: FormatError) -> Self {
        Error::Integrity(format!("{what}: {e}"))
    }

    /// A storage error while reading an object the repository refers to: a missing object is an
    /// integrity failure, anything else a storage failure.
    pub(crate) fn referenced(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { path } => {
                Error::Integrity(format!("{path} is referenced but missing from storage"))
            }
            StoreError::Truncated { path, detail } => {
                Error::Integrity(format!("{path} is truncated ({detail})"))
            }
            other => other.into(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full { location, path } => Error::DriveFull { location, path },
            other => Error::Store(other),
        }
    }
}

/// Result with the engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
