//! tvr1's derivations (SPEC §7f.2). Every label is dated; changing one is a new protocol.
//!
//! ```text
//! a     = Argon2id(password, salt = SHA-256(SALT ‖ repo_id ‖ slot_id ‖ v), cost from the slot)   32 B
//! y     = VOPRF-Evaluate(k, a)                     (RFC 9497 ristretto255-SHA512, 64 B)
//! prk   = HKDF-Extract(salt = v, ikm = y)          (HKDF-SHA256)
//! C     = HKDF-Expand(prk, COMMITMENT, 32)         stored in the slot
//! U     = HKDF-Expand(prk, UNLOCK, 32)             never stored, never sent
//! S     = HKDF-Expand(prk, SECRET, 32)             the slot's protector secret (SPEC §2)
//! tag_i = HMAC-SHA-256(U, TAG ‖ realm_id_i ‖ bytes16(account) ‖ v)   held by realm i
//! ```

use crate::params::Argon2Cost;
use crate::TvrError;
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sealback_core::codec::Writer;
use sealback_core::keyslot::SlotId;
use sealback_core::vault::VaultId;
use sealback_core::{ProtectorSecret, RepoId};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The Argon2id salt's label.
pub const SALT: &[u8] = b"sealback 2026-12-02 tvr1 salt";
/// `C`'s HKDF info.
pub const COMMITMENT: &[u8] = b"sealback 2026-12-02 tvr1 commitment";
/// `U`'s HKDF info.
pub const UNLOCK: &[u8] = b"sealback 2026-12-02 tvr1 unlock";
/// `S`'s HKDF info.
pub const SECRET: &[u8] = b"sealback 2026-12-02 tvr1 protector secret";
/// The unlock tags' label.
pub const TAG: &[u8] = b"sealback 2026-12-02 tvr1 tag";
/// The HPKE info label of a sealed key share.
pub const SHARE: &[u8] = b"sealback 2026-12-02 tvr1 share";
/// The label of the key a realm answers unknown accounts with.
pub const UNKNOWN_ACCOUNT: &[u8] = b"sealback 2026-12-02 tvr1 unknown account";

/// The stretched password `a`, the VOPRF input.
pub type Stretched = Zeroizing<[u8; 32]>;

/// `a = Argon2id(password, salt(repo_id, slot_id, v))`. The salt binds the repository and slot:
/// even `t` colluding realms need this keys file to start guessing.
pub fn stretch(
    password: &[u8],
    repo: RepoId,
    slot: SlotId,
    version: &[u8; 16],
    cost: Argon2Cost,
) -> Result<Stretched, TvrError> {
    let salt = Sha256::new()
        .chain_update(SALT)
        .chain_update(repo.0)
        .chain_update(slot.0)
        .chain_update(version)
        .finalize();
    let params = argon2::Params::new(
        cost.memory_kib,
        cost.passes,
        u32::from(cost.lanes),
        Some(32),
    )
    .map_err(|_| TvrError::Invalid("Argon2 parameters"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, &salt, &mut out[..])
        .map_err(|_| TvrError::Invalid("Argon2 input"))?;
    Ok(out)
}

/// What the OPRF output yields.
pub struct Derived {
    /// `C`.
    pub commitment: [u8; 32],
    /// `U`.
    pub unlock: Zeroizing<[u8; 32]>,
    /// `S`.
    pub secret: ProtectorSecret,
}

/// `C`, `U` and `S` from the OPRF output `y`.
pub fn from_output(y: &[u8], version: &[u8; 16]) -> Derived {
    let hk = Hkdf::<Sha256>::new(Some(version), y);
    let expand = |info: &[u8]| {
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(info, &mut out[..])
            .expect("32 bytes is a valid HKDF length");
        out
    };
    Derived {
        commitment: *expand(COMMITMENT),
        unlock: expand(UNLOCK),
        secret: ProtectorSecret::new(expand(SECRET).to_vec()),
    }
}

/// Realm `realm`'s unlock tag.
pub fn tag(
    unlock: &[u8; 32],
    realm: VaultId,
    account: &str,
    version: &[u8; 16],
) -> Zeroizing<[u8; 32]> {
    let mut w = Writer::new();
    w.bytes(TAG)
        .bytes(&realm.0)
        .bytes_u16(account.as_bytes())
        .bytes(version);
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(unlock).expect("any key length");
    m.update(&w.into_inner());
    Zeroizing::new(m.finalize().into_bytes().into())
}
