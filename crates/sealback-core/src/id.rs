//! Identifiers: 256-bit object ids, 128-bit repository ids, and keyed blob ids.

use crate::codec::FormatError;
use rand_core::CryptoRng;

/// A 256-bit identifier of a stored object (pack, index file, snapshot) or of a blob.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub [u8; 32]);

/// A blob's id: keyed BLAKE3 of its plaintext (see [`crate::keys::ContentIdKey`]).
pub type BlobId = Id;

impl Id {
    /// A fresh random id.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Id(b)
    }
    /// Lower-case hex, 64 characters: the object's name in storage.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, FormatError> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b)
            .map_err(|_| FormatError::invalid("id", format!("{s:?} is not 64 hex digits")))?;
        Ok(Id(b))
    }
    /// The first 8 hex digits, as shown to people.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl core::fmt::Debug for Id {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl core::fmt::Display for Id {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A repository's random 128-bit id: HKDF salt of every subkey, and bound into keyslots.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RepoId(pub [u8; 16]);

impl RepoId {
    /// A fresh random repository id.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        RepoId(b)
    }
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl core::fmt::Debug for RepoId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RepoId({})", self.to_hex())
    }
}
