//! Index files (SPEC §10): which pack holds which blob.
//!
//! ```text
//! index body = version(1)=1 ‖ pack count(u32) ‖ (pack id(32) ‖ entry count(u32) ‖ entry*)*
//! ```
//! An index file is an object of type Index named by a random id, stored as `index/<id>`.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::Id;
use crate::pack::{BlobEntry, ENTRY_LEN};

/// The blobs of some packs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    /// Packs and their blob entries.
    pub packs: Vec<(Id, Vec<BlobEntry>)>,
}

impl IndexFile {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let n: usize = self.packs.iter().map(|(_, e)| e.len()).sum();
        let mut w = Writer::with_capacity(5 + self.packs.len() * 36 + n * ENTRY_LEN);
        w.u8(1).u32(self.packs.len() as u32);
        for (id, entries) in &self.packs {
            w.bytes(&id.0).u32(entries.len() as u32);
            for e in entries {
                e.encode(&mut w);
            }
        }
        w.into_inner()
    }

    /// Decodes a body.
    pub fn decode(body: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(body, "index");
        r.version_u8(1)?;
        let n = r.u32()?;
        let n = r.count(n.into(), 36)?;
        let mut packs = Vec::with_capacity(n);
        for _ in 0..n {
            let id = Id(r.array()?);
            let m = r.u32()?;
            let m = r.count(m.into(), ENTRY_LEN)?;
            let mut entries = Vec::with_capacity(m);
            for _ in 0..m {
                entries.push(BlobEntry::decode(&mut r)?);
            }
            packs.push((id, entries));
        }
        r.finish()?;
        Ok(Self { packs })
    }
}
