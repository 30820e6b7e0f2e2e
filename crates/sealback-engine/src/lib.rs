//! # sealback-engine: backup, restore and check
//!
//! This crate owns the repository as a whole: its layout in storage, unlocking it with a
//! protector, the index (sorted files on this device, [`index`]), and the operations a person runs: [`backup`](backup::backup),
//! [`restore`](restore::restore), [`check`](check::check). It also owns the chat source: reading a
//! chat store whose SQLite databases are live, copied consistently through SQLite's online
//! backup API.
//!
//! It must not talk to people (no prompts, no terminal output, no exit codes: it reports through
//! [`Progress`](progress::Progress) and typed [`Error`]s), and it must not implement a primitive
//! or a byte layout: those belong to `sealback-core`.

pub mod backup;
pub mod check;
pub mod device_settings;
pub mod error;
pub mod forget;
pub mod index;
pub mod keychange;
pub mod layout;
pub mod lock;
pub mod password_check;
pub mod progress;
pub mod prune;
pub mod repo;
pub mod restore;
pub mod schedule;
pub mod seen;
pub mod source;
pub mod turnoff;

pub use error::{Error, ErrorKind};
pub use lock::RepoLock;
pub use repo::Repository;

/// The CSPRNG the engine uses: the operating system's.
pub type OsRng = rand_core::UnwrapErr<rand::rngs::SysRng>;

/// A fresh handle on the OS CSPRNG.
pub fn os_rng() -> OsRng {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// The engine's time source, in nanoseconds since the Unix epoch. Lock staleness and the
/// `--keep-within` rule depend on it, so tests inject their own.
#[derive(Clone)]
pub struct Clock(std::sync::Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::from_fn(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        })
    }
    /// A clock that asks `now`.
    pub fn from_fn(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(now))
    }
    /// Now, in nanoseconds since the Unix epoch.
    pub fn now_unix_ns(&self) -> i64 {
        (self.0)()
    }
}

impl core::fmt::Debug for Clock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Clock")
    }
}
