//! # sealback-tvr: threshold vault realms ("tvr1")
//!
//! This crate owns the threshold-password protector (keyslot type 5, SPEC §7f) as a pure
//! protocol: no I/O, no clock. The HTTP routes live in `sealback-vault` (a realm is the vault
//! in realm mode) and the network client in `sealback-vault-client`.
//!
//! ## Key hierarchy
//!
//! ```text
//! password ──Argon2id(salt = H(repo_id ‖ slot_id ‖ v))──▶ a
//! k (random, client-dealt) ──Shamir t-of-n──▶ k_1 … k_n        realm i holds k_i (sealed)
//! y = VOPRF-Evaluate(k, a) = Finalize(a, Σ λ_i · k_i·B / r)    B = r·H(a), blinded
//! y ──HKDF(salt = v)──▶ C (in the slot) · U (tags) · S (the slot's protector secret, SPEC §2)
//! U ──HMAC──▶ tag_i (realm i resets its count only for it)
//! ```
//!
//! Fewer than `t` realms know nothing of `k` and cannot evaluate it, so they cannot test
//! passwords; every test needs `t` evaluations, each counted by the realm before it answers
//! (SPEC §7f.4 proves the bound `⌊(n − m)·L / (t − m)⌋` with `m` cheating realms).
//!
//! Sessions consume themselves: [`Registration::finish`] releases the secret once, and only
//! when every realm acknowledged; [`Recovery::finish`] combines only answers whose DLEQ proof
//! verified against the realm's `P_i`, so a commitment mismatch means a wrong password and a
//! lying realm never receives a tag.

pub mod derive;
pub mod params;
pub mod protocol;
pub mod shamir;

pub use params::{Argon2Cost, SlotRealm, TvrParams};
pub use protocol::{
    evaluate_unknown, Dealing, Evaluation, NewSlot, Outcome, Realm, RealmKey, RealmRecord,
    Recovery, Registration, ShareRequest, DEFAULT_LIMIT, DEFAULT_THRESHOLD,
};

use sealback_core::keyslot::ProtectorType;
use sealback_core::vault::VaultId;

/// The keyslot protector type of a threshold-password slot.
pub const PROTECTOR_TYPE: ProtectorType = ProtectorType::THRESHOLD_PASSWORD;

/// The protocol's name in a realm's `/v1/info`.
pub const PROTOCOL: &str = "tvr1";

/// Why a tvr1 step failed. Messages never carry secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TvrError {
    /// Parameters or a message break a rule of SPEC §7f.
    #[error("invalid threshold-password data: {0}")]
    Invalid(&'static str),
    /// Registration: these realms did not acknowledge their share; nothing may be written.
    #[error("{} realm(s) did not store their share; the password was not added", missing.len())]
    NotAllAcknowledged {
        /// The realms that did not acknowledge.
        missing: Vec<VaultId>,
    },
    /// A realm's evaluation proof did not verify against the slot: that realm is excluded.
    #[error("realm {realm} answered with an evaluation it could not prove; it is no longer asked")]
    BadProof {
        /// The realm.
        realm: VaultId,
    },
    /// Fewer than `t` of the slot's realms are in this client's configuration.
    #[error("only {configured} of the {needed} realms this password needs are configured on this device")]
    NotEnoughConfigured {
        /// Usable realms.
        configured: usize,
        /// `t`.
        needed: usize,
    },
    /// A sealed share did not open (realm side).
    #[error("the key share does not open with this realm's key")]
    BadShare,
    /// A group operation failed (an input hashing to the identity; negligible).
    #[error("a group operation failed")]
    Crypto,
}
