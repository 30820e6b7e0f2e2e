//! # sealback-engine: backup, restore and check
//!
//! This crate owns the repository as a whole: its layout in storage, unlocking it with a
//! protector, the in-memory index, and the operations a person runs: [`backup`](backup::backup),
//! [`restore`](restore::restore), [`check`](check::check). It also owns the chat source: reading a
//! chat store whose SQLite databases are live, copied consistently through SQLite's online
//! backup API.
//!
//! It must not talk to people (no prompts, no terminal output, no exit codes: it reports through
//! [`Progress`](progress::Progress) and typed [`Error`]s), and it must not implement a primitive
//! or a byte layout: those belong to `sealback-core`.

pub mod backup;
pub mod check;
pub mod error;
pub mod layout;
pub mod progress;
pub mod repo;
pub mod restore;
pub mod source;

pub use error::{Error, ErrorKind};
pub use repo::Repository;

/// The CSPRNG the engine uses: the operating system's.
pub type OsRng = rand_core::UnwrapErr<rand::rngs::SysRng>;

/// A fresh handle on the OS CSPRNG.
pub fn os_rng() -> OsRng {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}
