//! The vault keyslots' parameters: the vault-password slot (SPEC §7b: which Backup Key Vault,
//! which account, and the vault's OPAQUE public key pinned at registration) and the
//! vault-passkey slot (SPEC §7e: the vault, the account, the relying party and the storage
//! share), and how a vault-passkey slot's secret is made from its two shares. The protocols
//! live in `sealback-vault-client`; this is only the stored format and the derivation.
//!
//! A slot names its vault by a [`VaultId`], never by an address: whoever controls the cloud
//! drive can rewrite a slot, so the client connects only to the vault its own configuration
//! names (the app's build, `vault_url`) and uses a slot only when that vault's id is the one
//! the slot names. Format-1 slots stored the vault's URL; it is read (so old slots still
//! parse) and never used to connect.

use crate::codec::{FormatError, Reader, Writer};
use crate::secret::ProtectorSecret;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The layout version new vault slots are written with.
pub const PARAMS_VERSION: u8 = 2;

/// Longest account name in a vault slot, in bytes.
const MAX_ACCOUNT_LEN: usize = 256;
/// Longest format-1 vault URL, in bytes.
const MAX_LEGACY_URL_LEN: usize = 2048;
/// Longest pinned OPAQUE public key, in bytes.
const MAX_SERVER_KEY_LEN: usize = 256;

/// A key vault's identity: the first 16 bytes of
/// `SHA-256("sealback 2026-12-02 vault id" ‖ the vault's OPAQUE public key)`.
///
/// The client learns the id of the vault it is configured for from that vault's `/v1/info`
/// (over TLS, at the configured address) and compares it with the slot's.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VaultId(pub [u8; 16]);

impl VaultId {
    /// The id of the vault whose OPAQUE public key is `server_public_key`.
    pub fn of_server_key(server_public_key: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(crate::labels::VAULT_ID)
            .chain_update(server_public_key)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl core::fmt::Debug for VaultId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VaultId({})", self.to_hex())
    }
}

impl core::fmt::Display for VaultId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a vault-password keyslot stores in its `params` (SPEC §7b):
/// format 2 `u8(2) ‖ bytes16(account) ‖ bytes16(pinned OPAQUE server public key)`; the vault's
/// id is the pinned key's fingerprint. Format 1 (read only) was
/// `u8(1) ‖ bytes16(vault URL) ‖ bytes16(account) ‖ bytes16(pinned key)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultParams {
    /// The account at the vault.
    pub account: String,
    /// The vault's OPAQUE public key, pinned at registration.
    pub server_public_key: Vec<u8>,
    /// A format-1 slot's stored URL: kept so the slot re-encodes unchanged, never connected to.
    pub legacy_url: Option<String>,
}

impl VaultParams {
    /// New (format 2) parameters.
    pub fn new(account: &str, server_public_key: Vec<u8>) -> Self {
        Self {
            account: account.into(),
            server_public_key,
            legacy_url: None,
        }
    }

    /// The vault that holds this slot's key.
    pub fn vault_id(&self) -> VaultId {
        VaultId::of_server_key(&self.server_public_key)
    }

    /// Encodes (format 1 for a slot read as format 1, so its bytes do not change).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match &self.legacy_url {
            Some(url) => w.u8(1).bytes_u16(url.as_bytes()),
            None => w.u8(PARAMS_VERSION),
        };
        w.bytes_u16(self.account.as_bytes())
            .bytes_u16(&self.server_public_key);
        w.into_inner()
    }

    /// Decodes format 2, or format 1.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(b, "vault keyslot parameters");
        let legacy_url = match r.u8()? {
            1 => Some(r.string_u16(MAX_LEGACY_URL_LEN)?),
            PARAMS_VERSION => None,
            found => return Err(unsupported("vault keyslot parameters", found)),
        };
        let account = r.string_u16(MAX_ACCOUNT_LEN)?;
        let server_public_key = r.bytes_u16(MAX_SERVER_KEY_LEN)?.to_vec();
        r.finish()?;
        Ok(Self {
            account,
            server_public_key,
            legacy_url,
        })
    }
}

/// What a vault-passkey keyslot stores in its `params` (SPEC §7e): format 2
/// `u8(2) ‖ vault id(16) ‖ bytes16(account) ‖ bytes16(rp id) ‖ storage share(32)`. Format 1
/// (read only) had `bytes16(vault URL)` in place of the id, and so names no vault: it is
/// used with the vault the client is configured for.
///
/// The storage share is one half of the slot's secret; the vault holds the other half (the
/// vault share) and releases it only to a verified passkey assertion. See
/// [`vault_passkey_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct VaultPasskeyParams {
    /// The vault that holds the vault share (`None` in a format-1 slot).
    pub vault_id: Option<VaultId>,
    /// A format-1 slot's stored URL: kept so the slot re-encodes unchanged, never connected to.
    pub legacy_url: Option<String>,
    /// The account at the vault.
    pub account: String,
    /// The WebAuthn relying party of the vault's passkeys.
    pub rp_id: String,
    /// This slot's half of the secret.
    pub storage_share: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for VaultPasskeyParams {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VaultPasskeyParams")
            .field("vault_id", &self.vault_id)
            .field("legacy_url", &self.legacy_url)
            .field("account", &self.account)
            .field("rp_id", &self.rp_id)
            .field("storage_share", &"<redacted>")
            .finish()
    }
}

impl VaultPasskeyParams {
    /// Encodes (format 1 for a slot read as format 1, so its bytes do not change).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match (&self.vault_id, &self.legacy_url) {
            (Some(id), None) => w.u8(PARAMS_VERSION).bytes(&id.0),
            (_, url) => w.u8(1).bytes_u16(url.as_deref().unwrap_or("").as_bytes()),
        };
        w.bytes_u16(self.account.as_bytes())
            .bytes_u16(self.rp_id.as_bytes())
            .bytes(&self.storage_share[..]);
        w.into_inner()
    }

    /// Decodes format 2, or format 1.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(b, "vault passkey keyslot parameters");
        let (vault_id, legacy_url) = match r.u8()? {
            1 => (None, Some(r.string_u16(MAX_LEGACY_URL_LEN)?)),
            PARAMS_VERSION => (Some(VaultId(r.array()?)), None),
            found => return Err(unsupported("vault passkey keyslot parameters", found)),
        };
        let account = r.string_u16(MAX_ACCOUNT_LEN)?;
        let rp_id = r.string_u16(crate::passkey::MAX_RP_ID_LEN)?;
        let storage_share = Zeroizing::new(r.array()?);
        r.finish()?;
        Ok(Self {
            vault_id,
            legacy_url,
            account,
            rp_id,
            storage_share,
        })
    }

    /// Whether this slot's vault share is held by the vault `id` (a format-1 slot names none,
    /// so it belongs to whichever vault the client is configured for).
    pub fn held_by(&self, id: VaultId) -> bool {
        self.vault_id.is_none_or(|own| own == id)
    }
}

fn unsupported(what: &'static str, found: u8) -> FormatError {
    FormatError::UnsupportedVersion {
        what,
        found: found.into(),
        supported: PARAMS_VERSION.into(),
    }
}

/// A vault-passkey slot's protector secret:
/// `HKDF-SHA256(salt = none, ikm = vault share ‖ storage share, info = "sealback 2026-11-26 vault passkey")`,
/// 32 bytes. Neither share alone says anything about it.
pub fn vault_passkey_secret(vault_share: &[u8; 32], storage_share: &[u8; 32]) -> ProtectorSecret {
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(vault_share);
    ikm[32..].copy_from_slice(storage_share);
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, &ikm[..])
        .expand(crate::labels::VAULT_PASSKEY_SECRET, &mut out[..])
        .expect("32 bytes is a valid HKDF length");
    ProtectorSecret::new(out.to_vec())
}
