//! The vault keyslots' parameters: the vault-password slot (SPEC §7b: where the Backup Key
//! Vault is, which account, and the vault's OPAQUE public key pinned at registration) and the
//! vault-passkey slot (SPEC §7c: the vault, the account, the relying party and the storage
//! share), and how a vault-passkey slot's secret is made from its two shares. The protocols
//! live in `sealback-vault-client`; this is only the stored format and the derivation.

use crate::codec::{FormatError, Reader, Writer};
use crate::secret::ProtectorSecret;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// What a vault-password keyslot stores in its `params` (SPEC §7b):
/// `u8(1) ‖ bytes16(vault URL) ‖ bytes16(account) ‖ bytes16(pinned OPAQUE server public key)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultParams {
    /// The vault's base URL.
    pub url: String,
    /// The account at the vault.
    pub account: String,
    /// The vault's OPAQUE public key, pinned at registration.
    pub server_public_key: Vec<u8>,
}

impl VaultParams {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(1)
            .bytes_u16(self.url.as_bytes())
            .bytes_u16(self.account.as_bytes())
            .bytes_u16(&self.server_public_key);
        w.into_inner()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(b, "vault keyslot parameters");
        r.version_u8(1)?;
        let url = r.string_u16(2048)?;
        let account = r.string_u16(256)?;
        let server_public_key = r.bytes_u16(256)?.to_vec();
        r.finish()?;
        Ok(Self {
            url,
            account,
            server_public_key,
        })
    }
}

/// What a vault-passkey keyslot stores in its `params` (SPEC §7c):
/// `u8(1) ‖ bytes16(vault URL) ‖ bytes16(account) ‖ bytes16(rp id) ‖ storage share(32)`.
///
/// The storage share is one half of the slot's secret; the vault holds the other half (the
/// vault share) and releases it only to a verified passkey assertion. See
/// [`vault_passkey_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct VaultPasskeyParams {
    /// The vault's base URL.
    pub url: String,
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
            .field("url", &self.url)
            .field("account", &self.account)
            .field("rp_id", &self.rp_id)
            .field("storage_share", &"<redacted>")
            .finish()
    }
}

impl VaultPasskeyParams {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(1)
            .bytes_u16(self.url.as_bytes())
            .bytes_u16(self.account.as_bytes())
            .bytes_u16(self.rp_id.as_bytes())
            .bytes(&self.storage_share[..]);
        w.into_inner()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(b, "vault passkey keyslot parameters");
        r.version_u8(1)?;
        let url = r.string_u16(2048)?;
        let account = r.string_u16(256)?;
        let rp_id = r.string_u16(crate::passkey::MAX_RP_ID_LEN)?;
        let storage_share = Zeroizing::new(r.array()?);
        r.finish()?;
        Ok(Self {
            url,
            account,
            rp_id,
            storage_share,
        })
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
