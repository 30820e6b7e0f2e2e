//! Byte layouts of the passkey protector (SPEC §7a): the parameters a passkey keyslot stores,
//! the WebAuthn PRF input transform, and the envelope of the software passkey store file.

use crate::codec::{FormatError, Reader, Writer};
use sha2::{Digest, Sha256};

/// Longest credential id (WebAuthn allows 1023 bytes).
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;
/// Longest relying party id.
pub const MAX_RP_ID_LEN: usize = 253;

/// What a passkey keyslot stores in its `params`.
///
/// ```text
/// params = u8(version) ‖ bytes16(credential id) ‖ bytes16(rp id) ‖ prf_salt(32)
/// ```
/// The protector secret is the 32-byte WebAuthn PRF output for the slot's PRF input
/// ([`PasskeyParams::prf_input`]), with user verification (a credential's PRF differs with and
/// without it). The version says how the PRF input comes from `prf_salt` ([`PrfInputRule`]):
/// version 1 (read, and written for slots made that way) uses the salt itself; version 2
/// binds it to the relying party id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyParams {
    /// The credential's id.
    pub credential_id: Vec<u8>,
    /// The relying party the credential belongs to.
    pub rp_id: String,
    /// The random salt the PRF input comes from.
    pub prf_salt: [u8; 32],
    /// How the PRF input comes from `prf_salt` (the params' version).
    pub input_rule: PrfInputRule,
}

/// How a passkey slot's PRF input (WebAuthn `prf.eval.first`) comes from its salt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrfInputRule {
    /// Params version 1: the input is the salt.
    Salt,
    /// Params version 2: the input is [`bound_prf_input`] of the relying party id and the salt,
    /// so the same salt asked under another relying party is another input (the web UI's
    /// per-installation relying party, docs/THREAT_MODEL.md "Local web UI").
    BoundToRpId,
}

/// Domain label of [`bound_prf_input`].
pub const BOUND_PRF_INPUT_LABEL: &[u8] = b"sealback 2026-12-02 passkey PRF input";

/// `SHA-256(label ‖ 0x00 ‖ bytes16(rp id) ‖ salt)`: the PRF input of a version 2 passkey slot.
pub fn bound_prf_input(rp_id: &str, salt: &[u8; 32]) -> [u8; 32] {
    let mut w = Writer::new();
    w.bytes(BOUND_PRF_INPUT_LABEL)
        .u8(0)
        .bytes_u16(rp_id.as_bytes())
        .bytes(salt);
    Sha256::digest(w.into_inner()).into()
}

impl PasskeyParams {
    /// The PRF input the authenticator is asked to evaluate for this slot.
    pub fn prf_input(&self) -> [u8; 32] {
        match self.input_rule {
            PrfInputRule::Salt => self.prf_salt,
            PrfInputRule::BoundToRpId => bound_prf_input(&self.rp_id, &self.prf_salt),
        }
    }

    /// Encodes the params.
    pub fn encode(&self) -> Vec<u8> {
        let version = match self.input_rule {
            PrfInputRule::Salt => 1,
            PrfInputRule::BoundToRpId => 2,
        };
        let mut w = Writer::new();
        w.u8(version)
            .bytes_u16(&self.credential_id)
            .bytes_u16(self.rp_id.as_bytes())
            .bytes(&self.prf_salt);
        w.into_inner()
    }

    /// Decodes params (versions 1 and 2).
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        const WHAT: &str = "passkey keyslot parameters";
        let mut r = Reader::new(bytes, WHAT);
        let input_rule = match r.u8()? {
            1 => PrfInputRule::Salt,
            2 => PrfInputRule::BoundToRpId,
            found => {
                return Err(FormatError::UnsupportedVersion {
                    what: WHAT,
                    found: found.into(),
                    supported: 2,
                })
            }
        };
        let credential_id = r.bytes_u16(MAX_CREDENTIAL_ID_LEN)?.to_vec();
        if credential_id.is_empty() {
            return Err(FormatError::invalid(WHAT, "empty credential id"));
        }
        let rp_id = r.string_u16(MAX_RP_ID_LEN)?;
        let prf_salt = r.array()?;
        r.finish()?;
        Ok(Self {
            credential_id,
            rp_id,
            prf_salt,
            input_rule,
        })
    }
}

/// The CTAP2 hmac-secret salt that a WebAuthn client derives from a PRF input:
/// `SHA-256("WebAuthn PRF" ‖ 0x00 ‖ input)` (WebAuthn Level 3, §10.1.4).
pub fn webauthn_prf_salt(input: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"WebAuthn PRF");
    h.update([0u8]);
    h.update(input);
    h.finalize().into()
}

/// Magic bytes of a software passkey store file.
pub const STORE_MAGIC: &[u8; 8] = b"SBPKSTOR";
/// Store file version.
pub const STORE_VERSION: u8 = 1;
/// Argon2id limits accepted from a store file, so a hostile file cannot stall the client.
pub const MAX_KDF_MEMORY_KIB: u32 = 1024 * 1024;
/// See [`MAX_KDF_MEMORY_KIB`].
pub const MAX_KDF_PASSES: u32 = 10;
/// See [`MAX_KDF_MEMORY_KIB`].
pub const MAX_KDF_LANES: u32 = 4;

/// Argon2id cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub passes: u32,
    /// Lanes.
    pub lanes: u32,
}

impl KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about 0.15 s on the reference machine.
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 1,
    };
}

/// The store file's cleartext header and its ciphertext.
///
/// ```text
/// store = "SBPKSTOR" ‖ u8(1) ‖ u32(memory KiB) ‖ u32(passes) ‖ u32(lanes) ‖ salt(16)
///         ‖ nonce(12) ‖ AES-256-GCM(Argon2id(PIN, salt), nonce, aad = the 49 header bytes, body)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreEnvelope {
    /// Argon2id cost (capped when read).
    pub kdf: KdfParams,
    /// Argon2id salt.
    pub salt: [u8; 16],
    /// AES-GCM nonce (fresh for every write).
    pub nonce: [u8; 12],
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

/// Length of the header that is authenticated as AAD.
pub const STORE_HEADER_LEN: usize = 8 + 1 + 12 + 16 + 12;

impl StoreEnvelope {
    /// The header bytes (also the AAD).
    pub fn header(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(STORE_MAGIC)
            .u8(STORE_VERSION)
            .u32(self.kdf.memory_kib)
            .u32(self.kdf.passes)
            .u32(self.kdf.lanes)
            .bytes(&self.salt)
            .bytes(&self.nonce);
        w.into_inner()
    }

    /// Encodes the file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Decodes the file, refusing KDF costs above the caps.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, "passkey store");
        r.magic(STORE_MAGIC)?;
        r.version_u8(STORE_VERSION)?;
        let kdf = KdfParams {
            memory_kib: r.u32()?,
            passes: r.u32()?,
            lanes: r.u32()?,
        };
        if kdf.memory_kib > MAX_KDF_MEMORY_KIB
            || kdf.passes > MAX_KDF_PASSES
            || kdf.lanes > MAX_KDF_LANES
            || kdf.memory_kib < 8 * kdf.lanes.max(1)
            || kdf.passes == 0
            || kdf.lanes == 0
        {
            return Err(FormatError::invalid(
                "passkey store",
                "its Argon2id cost is outside the accepted limits (at most 1 GiB, 10 passes, 4 lanes)",
            ));
        }
        let salt = r.array()?;
        let nonce = r.array()?;
        let ciphertext = r.bytes(r.remaining())?.to_vec();
        if ciphertext.len() < 16 {
            return Err(FormatError::Truncated {
                what: "passkey store",
            });
        }
        Ok(Self {
            kdf,
            salt,
            nonce,
            ciphertext,
        })
    }
}
