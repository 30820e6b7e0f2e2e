//! Pack files (SPEC §9): many sealed blobs followed by a sealed header that lists them.
//!
//! Version 2, which writers write, shows nothing but its total length:
//!
//! ```text
//! pack    = "SBPK" ‖ version(1)=2 ‖ blob* ‖ header ‖ trailer
//! blob    = headerless object (SPEC §5.1) of the blob's type, named by its id, Padmé-padded
//! header  = headerless object of type PackHeader named by the pack id, Padmé-padded, body:
//!           version(1)=2 ‖ count(u32) ‖ entry*
//! entry   = type(1) ‖ blob id(32) ‖ epoch(u32) ‖ offset(u32) ‖ length(u32) ‖ raw length(u32)
//! trailer = headerless object of type PackTrailer named by the pack id, not padded
//!           (always TRAILER_LEN bytes), body: header length(u32)
//! ```
//! Header and trailer are sealed in one key epoch, which a reader finds by trying the epochs of
//! its keyring, newest first: no byte of the pack says it.
//!
//! Version 1, still read (old repositories), has a clear object header before every blob and
//! the header's length in clear at the end:
//!
//! ```text
//! pack    = "SBPK" ‖ version(1)=1 ‖ blob* ‖ header object ‖ header length (u32)
//! header  = object of type PackHeader named by the pack id, body:
//!           version(1)=1 ‖ count(u32) ‖ entry*
//! entry   = type(1) ‖ blob id(32) ‖ offset(u32) ‖ length(u32) ‖ raw length(u32)
//! ```
//! Pack ids are random, so a pack's name says nothing about its content; the header is bound
//! to that name, and every blob is bound to its own id and type.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::{BlobId, Id};
use crate::keys::Keyring;
use crate::object::{self, Compression, ObjectError, ObjectType};
use rand_core::CryptoRng;

/// Magic bytes at the start of a pack.
pub const MAGIC: &[u8; 4] = b"SBPK";
/// The pack layout writers write.
pub const VERSION: u8 = 2;
/// The first pack layout, with clear object headers; read, never written.
pub const VERSION_1: u8 = 1;
/// Bytes before the first blob.
pub const PREFIX_LEN: usize = 5;
/// Encoded size of one version 1 [`BlobEntry`].
pub const ENTRY_LEN_V1: usize = 45;
/// Encoded size of one version 2 [`BlobEntry`].
pub const ENTRY_LEN: usize = 49;
/// Length of a version 2 pack's trailer.
pub const TRAILER_LEN: usize = object::HEADERLESS_OVERHEAD + 4;
/// Largest pack this implementation writes or reads.
pub const MAX_PACK_LEN: usize = 1 << 30;

/// Where a blob lives inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlobEntry {
    /// Blob type (data, tree, content list).
    pub ty: ObjectType,
    /// Keyed id of the plaintext.
    pub id: BlobId,
    /// The key epoch of a headerless blob (version 2 pack); `None` for a version 1 blob, whose
    /// clear object header says it.
    pub epoch: Option<u32>,
    /// Offset of the sealed blob in the pack.
    pub offset: u32,
    /// Length of the sealed blob (padding included).
    pub length: u32,
    /// Length of the plaintext.
    pub raw_length: u32,
}

/// The encoded size of an entry of a pack of this version.
pub fn entry_len(version: u8) -> usize {
    if version == VERSION_1 {
        ENTRY_LEN_V1
    } else {
        ENTRY_LEN
    }
}

/// The layout version of a pack whose entries these are (all of one pack agree).
pub fn version_of(entries: &[BlobEntry]) -> u8 {
    match entries.first() {
        Some(BlobEntry { epoch: None, .. }) => VERSION_1,
        _ => VERSION,
    }
}

impl BlobEntry {
    /// Encodes the entry in the layout of its pack's version: with its epoch in version 2.
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.ty as u8).bytes(&self.id.0);
        if let Some(epoch) = self.epoch {
            w.u32(epoch);
        }
        w.u32(self.offset).u32(self.length).u32(self.raw_length);
    }

    pub(crate) fn decode(r: &mut Reader<'_>, version: u8) -> Result<Self, FormatError> {
        let t = r.u8()?;
        let ty = ObjectType::from_u8(t)
            .filter(|t| t.is_blob())
            .ok_or_else(|| FormatError::invalid("blob entry", format!("not a blob type: {t}")))?;
        let id = Id(r.array()?);
        let epoch = if version == VERSION_1 {
            None
        } else {
            Some(r.u32()?)
        };
        Ok(Self {
            ty,
            id,
            epoch,
            offset: r.u32()?,
            length: r.u32()?,
            raw_length: r.u32()?,
        })
    }

    /// The least a sealed blob of this entry's layout can be.
    fn min_length(&self) -> usize {
        match self.epoch {
            None => object::OVERHEAD,
            Some(_) => object::HEADERLESS_OVERHEAD,
        }
    }
}

/// Seals a blob for a pack: a headerless object, padded to a Padmé length (SPEC §9), so neither
/// its place in the pack nor its exact size shows.
pub fn seal_blob(
    keyring: &Keyring,
    ty: ObjectType,
    id: &BlobId,
    body: &[u8],
    compression: Compression,
    rng: &mut impl CryptoRng,
) -> object::Sealed {
    debug_assert!(ty.is_blob());
    object::seal_headerless(keyring, ty, id, body, compression, true, rng)
}

/// Opens a blob as its entry describes it: headerless in the entry's epoch (version 2), or a
/// version 1 object whose clear header must name the entry's type.
pub fn open_blob(
    keyring: &Keyring,
    entry: &BlobEntry,
    sealed: &[u8],
    max_len: usize,
) -> Result<Vec<u8>, ObjectError> {
    match entry.epoch {
        Some(epoch) => {
            object::open_headerless(keyring, entry.ty, epoch, &entry.id, sealed, max_len)
        }
        None => object::open(keyring, entry.ty, &entry.id, sealed, max_len),
    }
}

/// Accumulates sealed blobs into one version 2 pack, in memory.
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

    /// Appends a blob sealed by [`seal_blob`] in key epoch `epoch`.
    pub fn add(
        &mut self,
        ty: ObjectType,
        id: BlobId,
        epoch: u32,
        sealed: &[u8],
        raw_length: usize,
    ) {
        self.entries.push(BlobEntry {
            ty,
            id,
            epoch: Some(epoch),
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

    /// Appends the sealed header and trailer and returns the pack's bytes and entries.
    pub fn finish(
        mut self,
        keyring: &Keyring,
        pack_id: &Id,
        rng: &mut impl CryptoRng,
    ) -> (Vec<u8>, Vec<BlobEntry>) {
        let body = encode_header(&self.entries);
        let header = object::seal_headerless(
            keyring,
            ObjectType::PackHeader,
            pack_id,
            &body,
            Compression::Zstd(3),
            true,
            rng,
        );
        let trailer = object::seal_headerless(
            keyring,
            ObjectType::PackTrailer,
            pack_id,
            &(header.bytes.len() as u32).to_be_bytes(),
            Compression::None,
            false,
            rng,
        );
        debug_assert_eq!(trailer.bytes.len(), TRAILER_LEN);
        self.buf.extend_from_slice(&header.bytes);
        self.buf.extend_from_slice(&trailer.bytes);
        (self.buf, self.entries)
    }
}

fn encode_header(entries: &[BlobEntry]) -> Vec<u8> {
    let version = version_of(entries);
    let mut w = Writer::with_capacity(5 + entries.len() * entry_len(version));
    w.u8(version).u32(entries.len() as u32);
    for e in entries {
        e.encode(&mut w);
    }
    w.into_inner()
}

/// Parses a decrypted pack header of a pack of `version` and checks that its entries tile
/// `[PREFIX_LEN, blobs_end)`.
pub fn decode_header(
    body: &[u8],
    version: u8,
    blobs_end: usize,
) -> Result<Vec<BlobEntry>, FormatError> {
    let mut r = Reader::new(body, "pack header");
    r.version_u8(version)?;
    let n = r.u32()?;
    let n = r.count(n.into(), entry_len(version))?;
    let mut entries = Vec::with_capacity(n);
    let mut next = PREFIX_LEN;
    for _ in 0..n {
        let e = BlobEntry::decode(&mut r, version)?;
        if e.offset as usize != next || (e.length as usize) < e.min_length() {
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

/// Reads and verifies a whole pack's header, of either version.
pub fn read_header(
    keyring: &Keyring,
    pack_id: &Id,
    pack: &[u8],
) -> Result<Vec<BlobEntry>, PackError> {
    let mut r = Reader::new(pack, "pack");
    r.magic(MAGIC)?;
    match r.u8()? {
        VERSION_1 => read_header_v1(keyring, pack_id, pack),
        VERSION => read_header_v2(keyring, pack_id, pack),
        found => Err(FormatError::UnsupportedVersion {
            what: "pack",
            found: found.into(),
            supported: VERSION.into(),
        }
        .into()),
    }
}

fn read_header_v1(
    keyring: &Keyring,
    pack_id: &Id,
    pack: &[u8],
) -> Result<Vec<BlobEntry>, PackError> {
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
    Ok(decode_header(&body, VERSION_1, header_start)?)
}

fn read_header_v2(
    keyring: &Keyring,
    pack_id: &Id,
    pack: &[u8],
) -> Result<Vec<BlobEntry>, PackError> {
    if pack.len() < PREFIX_LEN + TRAILER_LEN {
        return Err(FormatError::Truncated { what: "pack" }.into());
    }
    let trailer_start = pack.len() - TRAILER_LEN;
    let (epoch, header_len) = open_trailer(keyring, pack_id, &pack[trailer_start..])?;
    if header_len > trailer_start - PREFIX_LEN {
        return Err(FormatError::invalid("pack", "header length exceeds the pack").into());
    }
    let header_start = trailer_start - header_len;
    let body = object::open_headerless(
        keyring,
        ObjectType::PackHeader,
        epoch,
        pack_id,
        &pack[header_start..trailer_start],
        MAX_PACK_LEN,
    )?;
    Ok(decode_header(&body, VERSION, header_start)?)
}

/// Opens a version 2 trailer under each epoch of the keyring, newest first (no byte of the
/// pack names its epoch); returns the epoch that opened it and the header length it holds.
fn open_trailer(
    keyring: &Keyring,
    pack_id: &Id,
    trailer: &[u8],
) -> Result<(u32, usize), PackError> {
    for epoch in (0..=keyring.current_epoch()).rev() {
        match object::open_headerless(keyring, ObjectType::PackTrailer, epoch, pack_id, trailer, 4)
        {
            Ok(body) => {
                let len: [u8; 4] = body.as_slice().try_into().map_err(|_| {
                    FormatError::invalid("pack trailer", "the header length is not 4 bytes")
                })?;
                return Ok((epoch, u32::from_be_bytes(len) as usize));
            }
            Err(ObjectError::Authentication { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ObjectError::Authentication {
        ty: ObjectType::PackTrailer.name(),
    }
    .into())
}
