//! # sealback-vault: the Backup Key Vault as a library
//!
//! This crate owns the vault's side of the password protector: OPAQUE registration and login
//! (the vault never sees the password), the guess limit (each login attempt is counted durably
//! before the vault answers; at the limit the record is destroyed for good), records and the
//! OPAQUE server secret sealed by a key the database does not hold ([`sealer`]), counters and
//! records a database writer cannot lower, reset or move unnoticed ([`integrity`]), the audit
//! trail, staged rollout of protectors to clients ([`rollout`]), the WebAuthn relying party
//! for passkey sign-in and the vault-passkey protector ([`passkeys`]), the threshold realm
//! mode (tvr1: one key share per account, counted the same way, [`realm`]), and an axum
//! [`Router`](axum::Router) ([`http::router`]).
//!
//! It must not link the backup engine or know what the wrapped key opens, and it must never log
//! or store a password, an OPAQUE export key, a wrapped key or a vault share in clear, and it must
//! never accept a passkey's PRF output.

pub mod db;
pub mod http;
pub mod integrity;
mod keyed;
pub mod limits;
pub mod metrics;
pub mod monitor;
pub mod passkeys;
pub mod pg;
pub mod realm;
pub mod rollout;
pub mod sealer;
pub mod service;
mod sessions;

pub use service::{Clock, SystemClock, Vault, VaultError, VaultOptions};
