//! The `params` of a threshold-password keyslot (protector type 5, SPEC §7f):
//!
//! ```text
//! params = u8(1) ‖ bytes16(account) ‖ version(16) ‖ u8(t) ‖ u16(L)
//!          ‖ u32(argon2 memory KiB) ‖ u32(argon2 passes) ‖ u8(argon2 lanes)
//!          ‖ commitment C (32) ‖ u8(n) ‖ n × ( realm id (16) ‖ P_i (32) )
//! ```
//!
//! Realm `i` (1-based) is the `i`-th entry; its key share is `f(i)`. The slot names realms by
//! id only: their addresses and sealing keys come from the client's configuration, never from
//! the drive (whoever writes the drive wrote these bytes).

use crate::TvrError;
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::traits::IsIdentity;
use sealback_core::codec::{FormatError, Reader, Writer};
use sealback_core::vault::VaultId;

/// The layout version of type-5 params.
pub const PARAMS_VERSION: u8 = 1;
/// Most realms in a slot.
pub const MAX_REALMS: usize = crate::shamir::MAX_SHARES;
/// Largest per-realm evaluation limit a reader accepts.
pub const MAX_LIMIT: u16 = 100;
/// Longest account name, in bytes.
const MAX_ACCOUNT_LEN: usize = 256;
/// Argon2id caps a reader enforces (SPEC §6.2: a hostile file must not stall a client).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 1024 * 1024;
/// See [`MAX_ARGON2_MEMORY_KIB`].
pub const MAX_ARGON2_PASSES: u32 = 10;
/// See [`MAX_ARGON2_MEMORY_KIB`].
pub const MAX_ARGON2_LANES: u8 = 4;

/// Argon2id cost of the password stretch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub passes: u32,
    /// Lanes.
    pub lanes: u8,
}

impl Argon2Cost {
    /// The default: 64 MiB, 3 passes, 4 lanes (the OPAQUE slot's KSF, SPEC §7b).
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 4,
    };

    fn check(&self) -> Result<(), &'static str> {
        if self.lanes == 0 || self.lanes > MAX_ARGON2_LANES {
            return Err("Argon2 lanes must be 1 to 4");
        }
        if self.passes == 0 || self.passes > MAX_ARGON2_PASSES {
            return Err("Argon2 passes must be 1 to 10");
        }
        if self.memory_kib < 8 * u32::from(self.lanes) || self.memory_kib > MAX_ARGON2_MEMORY_KIB {
            return Err("Argon2 memory must be 8 KiB per lane to 1 GiB");
        }
        Ok(())
    }
}

/// One realm of a slot: who holds share `i`, and `P_i = k_i·G` to check its proofs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRealm {
    /// The realm's id (the audience of its account proofs).
    pub id: VaultId,
    /// The realm's public key share `P_i`, a canonical ristretto255 encoding, not the identity.
    pub public_share: [u8; 32],
}

/// A type-5 slot's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TvrParams {
    /// The account at every realm.
    pub account: String,
    /// The registration's random version `v`.
    pub version: [u8; 16],
    /// Realms needed to recover (`n/2 < t ≤ n`).
    pub threshold: u8,
    /// Evaluations each realm allows before it destroys its share (`L`).
    pub limit: u16,
    /// The password stretch.
    pub argon2: Argon2Cost,
    /// `C`: tells a wrong password from a lying realm.
    pub commitment: [u8; 32],
    /// Realm `i` is `realms[i - 1]`.
    pub realms: Vec<SlotRealm>,
}

impl TvrParams {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PARAMS_VERSION)
            .bytes_u16(self.account.as_bytes())
            .bytes(&self.version)
            .u8(self.threshold)
            .u16(self.limit)
            .u32(self.argon2.memory_kib)
            .u32(self.argon2.passes)
            .u8(self.argon2.lanes)
            .bytes(&self.commitment)
            .u8(self.realms.len() as u8);
        for r in &self.realms {
            w.bytes(&r.id.0).bytes(&r.public_share);
        }
        w.into_inner()
    }

    /// Decodes and checks every rule of SPEC §7f.1.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        const WHAT: &str = "threshold password keyslot parameters";
        let mut r = Reader::new(b, WHAT);
        let version = r.u8()?;
        if version != PARAMS_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: WHAT,
                found: version.into(),
                supported: PARAMS_VERSION.into(),
            });
        }
        let account = r.string_u16(MAX_ACCOUNT_LEN)?;
        let reg_version = r.array()?;
        let threshold = r.u8()?;
        let limit = r.u16()?;
        let argon2 = Argon2Cost {
            memory_kib: r.u32()?,
            passes: r.u32()?,
            lanes: r.u8()?,
        };
        let commitment = r.array()?;
        let n = r.u8()?;
        let mut realms = Vec::with_capacity(usize::from(n).min(MAX_REALMS));
        for _ in 0..n {
            if realms.len() == MAX_REALMS {
                return Err(FormatError::invalid(WHAT, "more than 16 realms"));
            }
            realms.push(SlotRealm {
                id: VaultId(r.array()?),
                public_share: r.array()?,
            });
        }
        r.finish()?;
        let params = Self {
            account,
            version: reg_version,
            threshold,
            limit,
            argon2,
            commitment,
            realms,
        };
        params
            .check()
            .map_err(|why| FormatError::invalid(WHAT, why))?;
        Ok(params)
    }

    /// The rules every reader and writer enforces.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        check_shape(self.realms.len(), self.threshold, self.limit, &self.account)?;
        self.argon2.check()?;
        for (n, r) in self.realms.iter().enumerate() {
            if self.realms[..n].iter().any(|o| o.id == r.id) {
                return Err("a realm is named twice");
            }
            match CompressedRistretto(r.public_share).decompress() {
                Some(p) if !p.is_identity() => {}
                _ => return Err("a realm's public share is not a valid group element"),
            }
        }
        Ok(())
    }

    /// The realm at 1-based `index`.
    pub fn realm(&self, index: u8) -> Option<&SlotRealm> {
        self.realms.get(usize::from(index).checked_sub(1)?)
    }

    /// The 1-based index of realm `id` in this slot.
    pub fn index_of(&self, id: VaultId) -> Option<u8> {
        self.realms
            .iter()
            .position(|r| r.id == id)
            .map(|p| p as u8 + 1)
    }
}

/// `n/2 < t ≤ n ≤ 16`, `1 ≤ L ≤ 100`, a non-empty account.
pub(crate) fn check_shape(n: usize, t: u8, limit: u16, account: &str) -> Result<(), &'static str> {
    if !(2..=MAX_REALMS).contains(&n) {
        return Err("a slot names 2 to 16 realms");
    }
    let t = usize::from(t);
    if t > n || 2 * t <= n {
        return Err("the threshold must be more than half the realms and at most all of them");
    }
    if limit == 0 || limit > MAX_LIMIT {
        return Err("the per-realm limit must be 1 to 100");
    }
    if account.is_empty() || account.len() > MAX_ACCOUNT_LEN {
        return Err("the account must be 1 to 256 bytes");
    }
    Ok(())
}

impl From<&'static str> for TvrError {
    fn from(why: &'static str) -> Self {
        TvrError::Invalid(why)
    }
}
