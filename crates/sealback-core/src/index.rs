//! Index files (SPEC §10): which pack holds which blob.
//!
//! ```text
//! index body v2 = version(1)=2 ‖ pack count(u32)
//!                 ‖ (pack id(32) ‖ pack version(1) ‖ entry count(u32) ‖ entry*)*
//! index body v1 = version(1)=1 ‖ pack count(u32) ‖ (pack id(32) ‖ entry count(u32) ‖ entry*)*
//! ```
//! Entries are laid out as in the header of a pack of that version (SPEC §9); version 1 index
//! files list version 1 packs only. Writers write version 2; readers read both. An index file
//! is an object of type Index named by a random id, stored as `index/<id>`.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::Id;
use crate::pack::{self, BlobEntry};

/// The index layout writers write.
pub const VERSION: u8 = 2;

/// The blobs of some packs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    /// Packs and their blob entries.
    pub packs: Vec<(Id, Vec<BlobEntry>)>,
}

impl IndexFile {
    /// Encodes the body (version 2).
    pub fn encode(&self) -> Vec<u8> {
        let n: usize = self.packs.iter().map(|(_, e)| e.len()).sum();
        let mut w = Writer::with_capacity(5 + self.packs.len() * 37 + n * pack::ENTRY_LEN);
        w.u8(VERSION).u32(self.packs.len() as u32);
        for (id, entries) in &self.packs {
            w.bytes(&id.0)
                .u8(pack::version_of(entries))
                .u32(entries.len() as u32);
            for e in entries {
                e.encode(&mut w);
            }
        }
        w.into_inner()
    }

    /// Decodes a body of either version.
    pub fn decode(body: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(body, "index");
        let version = match body.first() {
            Some(1) => 1,
            _ => VERSION,
        };
        r.version_u8(version)?;
        let n = r.u32()?;
        let n = r.count(n.into(), 36)?;
        let mut packs = Vec::with_capacity(n);
        for _ in 0..n {
            let id = Id(r.array()?);
            let pack_version = if version == 1 {
                pack::VERSION_1
            } else {
                r.u8()?
            };
            if pack_version != pack::VERSION_1 && pack_version != pack::VERSION {
                return Err(FormatError::invalid(
                    "index",
                    format!("unknown pack version {pack_version}"),
                ));
            }
            let m = r.u32()?;
            let m = r.count(m.into(), pack::entry_len(pack_version))?;
            let mut entries = Vec::with_capacity(m);
            for _ in 0..m {
                entries.push(BlobEntry::decode(&mut r, pack_version)?);
            }
            packs.push((id, entries));
        }
        r.finish()?;
        Ok(Self { packs })
    }
}
