//! # sealback-vault: the Backup Key Vault as a library
//!
//! This crate owns the vault's side of the password protector: OPAQUE registration and login
//! (the vault never sees the password), the guess limit (each login attempt is counted durably
//! before the vault answers; at the limit the record is destroyed for good), records and the
//! OPAQUE server secret sealed by a key the database does not hold ([`sealer`]), the audit
//! trail, staged rollout of protectors to clients ([`rollout`]), and an axum
//! [`Router`](axum::Router) ([`http::router`]).
//!
//! It must not link the backup engine or know what the wrapped key opens, and it must never log
//! or store a password, an OPAQUE export key or a wrapped key in clear.

pub mod db;
pub mod http;
mod keyed;
pub mod limits;
pub mod metrics;
pub mod monitor;
pub mod pg;
pub mod rollout;
pub mod sealer;
pub mod service;

pub use service::{Clock, SystemClock, Vault, VaultError, VaultOptions};
