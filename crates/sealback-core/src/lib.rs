//! # sealback-core: the format, the keys and the crypto, with no I/O
//!
//! This crate owns everything that decides what bytes sealback writes: secret types, the key
//! hierarchy, keyslots and the [`Protector`](protector::Protector) extension point, object
//! encryption, the keyed chunker, and the codecs of every stored structure (repository config,
//! keyslot file, pack, index, snapshot, tree). It is the executable form of `docs/SPEC.md`.
//!
//! It must not touch a file system, a network, a clock or the OS random number generator:
//! callers pass bytes, times and a [`rand_core::CryptoRng`]. That keeps every derivation
//! reproducible in test vectors and lets a fuzzer reach every parser.
//!
//! ## Key hierarchy
//!
//! ```text
//!  protector secret (64-digit recovery key | passkey PRF output | vault export key)
//!        │ HKDF-SHA256(salt = slot salt, info = "sealback 2026-12-02 slot x-wing keys")
//!        ├──────────────► X-Wing key pair (X25519 + ML-KEM-768, DeriveKeyPair) ── public key
//!        │                stored in the slot (record version 2; version 1, X25519 with info
//!        │                "sealback 2026-11-25 slot keys", is read and upgraded on unlock)
//!        └──────────────► slot attestation MAC key (HMAC-SHA-256)
//!
//!  keyslot entry = HPKE-Base-Seal(slot public key, K_e)          one per slot and epoch
//!  keys file MAC = HMAC(HKDF(K_current, salt = repo id, "sealback 2026-12-02 keys file mac"),
//!                       header ‖ SHA-256 of every vouched slot record ‖ keyring)   (vouch.rs)
//!
//!  K_e   root key of epoch e (256 bits, CSPRNG; e = 0 at init, +1 at every rotation)
//!    ├─ HKDF(K_e, salt = repo id, "sealback 2026-11-25 data key")     → data blob encryption
//!    └─ HKDF(K_e, salt = repo id, "sealback 2026-11-25 metadata key") → pack headers, index,
//!                                                                         snapshots, keyring
//!  K_0   genesis root key (carried forward in the keyring after a rotation)
//!    ├─ HKDF(K_0, salt = repo id, "sealback 2026-11-25 content id key") → keyed BLAKE3 blob ids
//!    ├─ HKDF(K_0, salt = repo id, "sealback 2026-11-25 chunker key")    → gear table of the CDC
//!    └─ HKDF(K_0, salt = repo id, "sealback 2026-12-02 index cache mac") → keyed BLAKE3 MAC of
//!                                                    this device's local index cache (never stored)
//!
//!  object key = HKDF(subkey, salt = 32-byte random seed, "sealback 2026-11-25 object key")
//!  object     = AES-256-GCM(object key, nonce = 0^96, aad = header ‖ object id)
//!  blob in a pack = seed ‖ AES-256-GCM(…, aad = version 2 header ‖ blob id), padded (Padmé):
//!                   no clear header, type and epoch listed in the pack's encrypted header
//! ```
//!
//! Every object gets its own key, so nonce reuse cannot happen however many objects a
//! repository holds (see SPEC §5).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chunker;
pub mod codec;
pub mod config;
pub mod id;
pub mod index;
pub mod index_cache;
pub mod keys;
pub mod keyslot;
pub mod lock;
pub mod object;
pub mod pack;
pub mod passkey;
pub mod protector;
pub mod recovery;
pub mod secret;
pub mod snapshot;
pub mod vault;
pub mod vouch;

pub use codec::FormatError;
pub use id::{BlobId, Id, RepoId};
pub use keys::Keyring;
pub use object::{ObjectError, ObjectType};
pub use secret::{ProtectorSecret, RootKey};

/// Derivation labels. Dated so that a future change of any derivation gets a new label
/// instead of silently changing the meaning of an old one (as libsignal does).
pub mod labels {
    /// HKDF info for the data subkey.
    pub const DATA_KEY: &[u8] = b"sealback 2026-11-25 data key";
    /// HKDF info for the metadata subkey.
    pub const METADATA_KEY: &[u8] = b"sealback 2026-11-25 metadata key";
    /// HKDF info for the content-id (keyed BLAKE3) key.
    pub const CONTENT_ID_KEY: &[u8] = b"sealback 2026-11-25 content id key";
    /// HKDF info for the chunker key.
    pub const CHUNKER_KEY: &[u8] = b"sealback 2026-11-25 chunker key";
    /// HKDF info expanding the chunker key into the gear table.
    pub const GEAR_TABLE: &[u8] = b"sealback 2026-11-25 gear table";
    /// HKDF info for a per-object AES-256-GCM key.
    pub const OBJECT_KEY: &[u8] = b"sealback 2026-11-25 object key";
    /// HKDF info for a slot's key pair seed and attestation key.
    pub const SLOT_KEYS: &[u8] = b"sealback 2026-11-25 slot keys";
    /// HKDF info for an X-Wing slot's key pair seed and attestation key (slot record 2).
    pub const SLOT_KEYS_XWING: &[u8] = b"sealback 2026-12-02 slot x-wing keys";
    /// HPKE info prefix for a sealed root key.
    pub const SLOT_ROOT_KEY: &[u8] = b"sealback 2026-11-25 root key";
    /// HMAC prefix of a slot attestation.
    pub const SLOT_ATTESTATION: &[u8] = b"sealback 2026-11-25 slot attestation";
    /// HKDF info combining a vault-passkey keyslot's two shares into its secret.
    pub const VAULT_PASSKEY_SECRET: &[u8] = b"sealback 2026-11-26 vault passkey";
    /// SHA-256 prefix of a key vault's id (its OPAQUE public key's fingerprint).
    pub const VAULT_ID: &[u8] = b"sealback 2026-12-02 vault id";
    /// HKDF info of the keys file's MAC key (from the current root key), and the MAC's prefix.
    pub const KEYS_FILE_MAC: &[u8] = b"sealback 2026-12-02 keys file mac";
    /// MAC of this device's local index cache (never stored in the repository).
    pub const INDEX_CACHE_MAC: &[u8] = b"sealback 2026-12-02 index cache mac";
    /// AAD prefix of every encrypted object.
    pub const OBJECT_AAD: &[u8] = b"sealback object v1";
}
