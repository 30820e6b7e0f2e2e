//! The keys file's MAC (format 2, SPEC §6.2a): what vouches for the set of keyslots, and in
//! format 3 also for the names given to slots later (their labels).
//!
//! A slot's attestation can only be checked by the owner of that slot, so nothing in format 1
//! stopped whoever writes to the storage from adding a slot for a secret it holds: the next
//! rotation sealed the new root key to it. Format 2 closes that: every slot record that a
//! device holding the current root key wrote is listed by its SHA-256 digest, and an
//! HMAC-SHA-256 under a key derived from the current root key covers that list, the header and
//! the keyring. A record whose digest is not in the list was not written by one of the
//! repository's devices: it is reported, never sealed to and never vouched for.
//!
//! The digest covers the whole record (id, type, name, parameters, salt, public key, sealed
//! entries, attestation) and the raw bytes of records of an unknown layout.

use crate::codec::Writer;
use crate::id::RepoId;
use crate::keys::hkdf_subkey;
use crate::labels;
use crate::secret::RootKey;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of a record digest and of the MAC.
pub const LEN: usize = 32;

/// The SHA-256 digest that names a slot record in the vouched list.
pub fn record_digest(record: &[u8]) -> [u8; LEN] {
    Sha256::digest(record).into()
}

/// What the MAC covers besides the digests: everything else in the file.
pub struct Covered<'a> {
    /// The file's format version (2).
    pub version: u8,
    /// The repository.
    pub repo_id: &'a RepoId,
    /// The current key epoch.
    pub epoch: u32,
    /// Digests of the vouched slot records, in file order.
    pub digests: &'a [[u8; LEN]],
    /// The sealed keyring object.
    pub keyring: &'a [u8],
    /// Format 3's labels section as encoded (empty for format 2, where it is not covered).
    pub labels: &'a [u8],
}

/// `HMAC-SHA-256(HKDF(K_current, repo_id, "sealback 2026-12-02 keys file mac"), message)`.
pub fn mac(current_root: &RootKey, covered: &Covered<'_>) -> [u8; LEN] {
    let key = hkdf_subkey(
        current_root.expose_secret(),
        &covered.repo_id.0,
        labels::KEYS_FILE_MAC,
    );
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose_secret())
        .expect("HMAC takes any key length");
    m.update(&message(covered));
    m.finalize().into_bytes().into()
}

/// Whether `tag` is the MAC of `covered`, compared in constant time.
pub fn verify(current_root: &RootKey, covered: &Covered<'_>, tag: &[u8; LEN]) -> bool {
    bool::from(mac(current_root, covered).ct_eq(tag))
}

fn message(c: &Covered<'_>) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(labels::KEYS_FILE_MAC)
        .bytes(crate::keyslot::MAGIC)
        .u8(c.version)
        .bytes(&c.repo_id.0)
        .u32(c.epoch)
        .u16(c.digests.len() as u16);
    for d in c.digests {
        w.bytes(d);
    }
    w.bytes_u32(c.keyring);
    if c.version >= crate::keyslot::FILE_VERSION_LABELS {
        w.bytes_u32(c.labels);
    }
    w.into_inner()
}
