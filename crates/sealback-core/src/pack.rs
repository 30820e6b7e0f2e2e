//! Pack files (SPEC §9): many sealed blobs followed by a sealed header that lists them.
//!
//! ```text
//! pack    = "SBPK" ‖ version(1)=1 ‖ blob* ‖ header object ‖ header length (u32)
//! header  = object of type PackHeader named by the pack id, body:
//!           version(1)=1 ‖ count(u32) ‖ entry*
//! entry   = type(1) ‖ blob id(32) ‖ offset(u32) ‖ length(u32) ‖ raw length(u32)
//! ```
//! Pack ids are random, so a pack's name says nothing about its content; the header is bound
//! to that name, and every blob is bound to its own id.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::{BlobId, Id};
use crate::keys::Keyring;
use crate::object::{self, Compression, ObjectError, ObjectType};
use rand_core::CryptoRng;

/// Magic bytes at the start of a pack.
pub const MAGIC: &[u8; 4] = b"SBPK";
/// Pack layout version.
pub const VERSION: u8 = 1;
/// Bytes before the first blob.
pub const PREFIX_LEN: usize = 5;
/// Encoded size of one [`BlobEntry`].
pub const ENTRY_LEN: usize = 45;
/// Largest pack this implementation writes or reads.
pub const MAX_PACK_LEN: usize = 1 << 30;

/// Where a blob lives inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    /// Blob type (data, tree, content list).
    pub ty: ObjectType,
    /// Keyed id of the plaintext.
    pub id: BlobId,
    /// Offset of the sealed blob in the pack.
    pub offset: u32,
    /// Length of the sealed blob.
    pub length: u32,
    /// Length of the plaintext.
    pub raw_length: u32,
}

impl BlobEntry {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.ty as u8)
            .bytes(&self.id.0)
            .u32(self.offset)
            .u32(self.length)
            .u32(self.raw_length);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        let t = r.u8()?;
        let ty = ObjectType::from_u8(t)
            .filter(|t| t.is_blob())
            .ok_or_else(|| FormatError::invalid("blob entry", format!("not a blob type: {t}")))?;
        Ok(Self {
            ty,
            id: Id(r.array()?),
            offset: r.u32()?,
            length: r.u32()?,
            raw_length: r.u32()?,
        })
    }
}

/// Accumulates sealed blobs into one pack, in memory.
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<BlobEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackBuilder {
    /// An empty pack.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(16 << 20);
        buf.extend_from_slice(MAGIC);
        buf.push(VERSION);
        Self {
            buf,
            entries: vec![],
        }
    }

    /// Appends a sealed blob.
    pub fn add(&mut self, ty: ObjectType, id: BlobId, sealed: &[u8], raw_length: usize) {
        self.entries.push(BlobEntry {
            ty,
            id,
            offset: self.buf.len() as u32,
            length: sealed.len() as u32,
            raw_length: raw_length as u32,
        });
        self.buf.extend_from_slice(sealed);
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the sealed header and returns the pack's bytes and entries.
    pub fn finish(
        mut self,
        keyring: &Keyring,
        pack_id: &Id,
        rng: &mut impl CryptoRng,
    ) -> (Vec<u8>, Vec<BlobEntry>) {
        let header = encode_header(&self.entries);
        let sealed = object::seal(
            keyring,
            ObjectType::PackHeader,
            pack_id,
            &header,
            Compression::Zstd(3),
            rng,
        );
        self.buf.extend_from_slice(&sealed.bytes);
        self.buf
            .extend_from_slice(&(sealed.bytes.len() as u32).to_be_bytes());
        (self.buf, self.entries)
    }
}

fn encode_header(entries: &[BlobEntry]) -> Vec<u8> {
    let mut w = Writer::with_capacity(5 + entries.len() * ENTRY_LEN);
    w.u8(1).u32(entries.len() as u32);
    for e in entries {
        e.encode(&mut w);
    }
    w.into_inner()
}

/// Parses a decrypted pack header and checks that its entries tile `[PREFIX_LEN, blobs_end)`.
pub fn decode_header(body: &[u8], blobs_end: usize) -> Result<Vec<BlobEntry>, FormatError> {
    let mut r = Reader::new(body, "pack header");
    r.version_u8(1)?;
    let n = r.u32()?;
    let n = r.count(n.into(), ENTRY_LEN)?;
    let mut entries = Vec::with_capacity(n);
    let mut next = PREFIX_LEN;
    for _ in 0..n {
        let e = BlobEntry::decode(&mut r)?;
        if e.offset as usize != next || (e.length as usize) < object::OVERHEAD {
            return Err(FormatError::invalid(
                "pack header",
                "blob entries do not tile the pack",
            ));
        }
        next += e.length as usize;
        entries.push(e);
    }
    r.finish()?;
    if next != blobs_end {
        return Err(FormatError::invalid(
            "pack header",
            "blob entries do not cover the pack",
        ));
    }
    Ok(entries)
}

/// Why a pack could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// The framing is malformed (truncated, bad magic, bad trailer).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The header did not open.
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// Reads and verifies a whole pack's header.
pub fn read_header(
    keyring: &Keyring,
    pack_id: &Id,
    pack: &[u8],
) -> Result<Vec<BlobEntry>, PackError> {
    let mut r = Reader::new(pack, "pack");
    r.magic(MAGIC)?;
    r.version_u8(VERSION)?;
    if pack.len() < PREFIX_LEN + 4 {
        return Err(FormatError::Truncated { what: "pack" }.into());
    }
    let header_len =
        u32::from_be_bytes(pack[pack.len() - 4..].try_into().expect("4 bytes")) as usize;
    if header_len + 4 + PREFIX_LEN > pack.len() {
        return Err(FormatError::invalid("pack", "header length exceeds the pack").into());
    }
    let header_start = pack.len() - 4 - header_len;
    let body = object::open(
        keyring,
        ObjectType::PackHeader,
        pack_id,
        &pack[header_start..pack.len() - 4],
        MAX_PACK_LEN,
    )?;
    Ok(decode_header(&body, header_start)?)
}
