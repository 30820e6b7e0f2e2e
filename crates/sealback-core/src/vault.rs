//! The vault-password keyslot's parameters (SPEC §7b): where the Backup Key Vault is, which
//! account, and the vault's OPAQUE public key pinned at registration. The protocol itself lives
//! in `sealback-vault-client`; this is only the stored format.

use crate::codec::{FormatError, Reader, Writer};

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
