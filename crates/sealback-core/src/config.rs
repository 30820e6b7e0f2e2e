//! The repository config (SPEC §4): the one plaintext object, naming the format version and the
//! repository id.
//!
//! ```text
//! config = "SEALBACK" ‖ format version(u16)=1 ‖ repo id(16)
//! ```
//! It is not secret. It is not separately authenticated either: the repo id is bound into every
//! keyslot, so a changed id makes unlocking fail as tampered.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::RepoId;

/// Magic bytes.
pub const MAGIC: &[u8; 8] = b"SEALBACK";
/// The repository format this implementation reads and writes.
pub const FORMAT_VERSION: u16 = 1;

/// The decoded config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoConfig {
    /// The repository id.
    pub repo_id: RepoId,
}

impl RepoConfig {
    /// Encodes the config.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(MAGIC).u16(FORMAT_VERSION).bytes(&self.repo_id.0);
        w.into_inner()
    }

    /// Decodes the config.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, "repository config");
        r.magic(MAGIC)?;
        let v = r.u16()?;
        if v != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "repository config",
                found: v.into(),
                supported: FORMAT_VERSION.into(),
            });
        }
        let repo_id = RepoId(r.array()?);
        r.finish()?;
        Ok(Self { repo_id })
    }
}
