//! The local index cache (SPEC §10a): the repository's index, sorted by blob id, in a file on
//! this device, so that a lookup reads a few hundred bytes instead of holding every blob in
//! memory.
//!
//! ```text
//! cache file = head ‖ record* ‖ fanout ‖ tail ‖ mac
//! head       = "SBIX" ‖ version(1)=1 ‖ repo id(16)
//!              ‖ pack count(u32) ‖ pack id(32)*            (records name packs by number)
//!              ‖ covered count(u32) ‖ index file id(32)*   (the index files it holds, sorted)
//! record     = blob id(32) ‖ type(1) ‖ has epoch(1) ‖ 00 00 ‖ pack number(u32) ‖ epoch(u32)
//!              ‖ offset(u32) ‖ length(u32) ‖ raw length(u32)          (56 bytes, ids ascending)
//! fanout     = u32 × 2^bits: fanout[b] = records whose id's first `bits` bits are <= b
//! tail       = bits(1) ‖ record count(u64)
//! mac        = BLAKE3-keyed(HKDF(K_0, salt = repo id, "sealback 2026-12-02 index cache mac"),
//!              everything before it)
//! ```
//! Integers are big-endian, as everywhere in the format. The file is not stored in the
//! repository and never leaves the device; the index files in storage stay the source of truth.
//! It carries a MAC anyway: whoever can write the cache folder could otherwise list a blob as
//! stored that is not, and a backup would then leave that blob out (data loss found only at
//! restore time). With the MAC a changed, truncated or foreign file is refused and rebuilt
//! from the index files.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::{BlobId, Id, RepoId};
use crate::keys::{hkdf_subkey, Keyring};
use crate::labels;
use crate::object::ObjectType;
use crate::pack::BlobEntry;
use crate::secret::SubKey;

/// Magic bytes at the start of a cache file.
pub const MAGIC: &[u8; 4] = b"SBIX";
/// The cache layout this implementation writes and reads (another is rebuilt, never read).
pub const VERSION: u8 = 1;
/// Encoded size of one record.
pub const RECORD_LEN: usize = 56;
/// Encoded size of the tail.
pub const TAIL_LEN: usize = 9;
/// Size of the MAC.
pub const MAC_LEN: usize = 32;
/// Most fanout bits (a fanout of 256 KiB).
pub const MAX_FANOUT_BITS: u8 = 16;
/// Bytes of the head before its two lists.
const HEAD_FIXED_LEN: usize = 4 + 1 + 16;

/// The head of a cache file: whose it is, its packs, and which index files it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The repository.
    pub repo_id: RepoId,
    /// Packs, numbered by position.
    pub packs: Vec<Id>,
    /// The index files whose entries the records hold, sorted.
    pub covered: Vec<Id>,
}

impl Head {
    /// Encodes the head.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            HEAD_FIXED_LEN + 8 + 32 * (self.packs.len() + self.covered.len()),
        );
        w.bytes(MAGIC).u8(VERSION).bytes(&self.repo_id.0);
        w.u32(self.packs.len() as u32);
        for p in &self.packs {
            w.bytes(&p.0);
        }
        w.u32(self.covered.len() as u32);
        for c in &self.covered {
            w.bytes(&c.0);
        }
        w.into_inner()
    }

    /// Decodes a head that is exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, "index cache");
        r.magic(MAGIC)?;
        r.version_u8(VERSION)?;
        let repo_id = RepoId(r.array()?);
        let n = r.u32()?;
        let n = r.count(n.into(), 32)?;
        let packs = (0..n)
            .map(|_| r.array().map(Id))
            .collect::<Result<_, _>>()?;
        let n = r.u32()?;
        let n = r.count(n.into(), 32)?;
        let covered: Vec<Id> = (0..n)
            .map(|_| r.array().map(Id))
            .collect::<Result<_, _>>()?;
        if covered.windows(2).any(|w| w[0] >= w[1]) {
            return Err(FormatError::invalid(
                "index cache",
                "covered index files not sorted",
            ));
        }
        r.finish()?;
        Ok(Self {
            repo_id,
            packs,
            covered,
        })
    }
}

/// The tail: how the rest of the file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    /// Fanout bits.
    pub bits: u8,
    /// Records.
    pub records: u64,
}

impl Tail {
    /// Encodes the tail.
    pub fn encode(&self) -> [u8; TAIL_LEN] {
        let mut out = [0u8; TAIL_LEN];
        out[0] = self.bits;
        out[1..].copy_from_slice(&self.records.to_be_bytes());
        out
    }

    /// Decodes the tail.
    pub fn decode(bytes: &[u8; TAIL_LEN]) -> Result<Self, FormatError> {
        let bits = bytes[0];
        if bits > MAX_FANOUT_BITS {
            return Err(FormatError::invalid(
                "index cache",
                format!("{bits} fanout bits"),
            ));
        }
        let records = u64::from_be_bytes(bytes[1..].try_into().expect("8 bytes"));
        Ok(Self { bits, records })
    }

    /// Where the parts of a file of `file_len` bytes with this tail lie: (head length, records
    /// offset, fanout offset), or an error when they do not add up to the file's length.
    pub fn layout(&self, file_len: u64) -> Result<Layout, FormatError> {
        let bad = || FormatError::invalid("index cache", "parts do not add up to the file length");
        let fanout_len = 4u64 << self.bits;
        let records_len = self
            .records
            .checked_mul(RECORD_LEN as u64)
            .ok_or_else(bad)?;
        let head_len = file_len
            .checked_sub((TAIL_LEN + MAC_LEN) as u64)
            .and_then(|n| n.checked_sub(fanout_len))
            .and_then(|n| n.checked_sub(records_len))
            .ok_or_else(bad)?;
        if head_len < (HEAD_FIXED_LEN + 8) as u64 {
            return Err(bad());
        }
        Ok(Layout {
            head_len,
            records_at: head_len,
            fanout_at: head_len + records_len,
        })
    }
}

/// Where the parts of a cache file lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Length of the head (it starts the file).
    pub head_len: u64,
    /// Offset of the first record.
    pub records_at: u64,
    /// Offset of the fanout.
    pub fanout_at: u64,
}

/// The fanout bits for a file of `records` records: about eight records a bucket, so that a
/// lookup reads one bucket of ~450 bytes.
pub fn fanout_bits(records: u64) -> u8 {
    let buckets = (records / 8).max(1);
    (63 - buckets.leading_zeros() as u8).min(MAX_FANOUT_BITS)
}

/// The bucket of `id` under `bits` fanout bits: its first `bits` bits.
pub fn bucket(id: &BlobId, bits: u8) -> usize {
    if bits == 0 {
        return 0;
    }
    let top = u32::from_be_bytes(id.0[..4].try_into().expect("4 bytes"));
    (top >> (32 - u32::from(bits))) as usize
}

/// Decodes a fanout of `bits` bits for `records` records: cumulative, never decreasing, and
/// ending at `records`.
pub fn decode_fanout(bytes: &[u8], bits: u8, records: u64) -> Result<Vec<u32>, FormatError> {
    if bytes.len() != 4 << bits {
        return Err(FormatError::invalid("index cache", "fanout length"));
    }
    let fanout: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if fanout.windows(2).any(|w| w[0] > w[1])
        || fanout.last().map(|&n| u64::from(n)) != Some(records)
    {
        return Err(FormatError::invalid("index cache", "fanout out of order"));
    }
    Ok(fanout)
}

/// Encodes a fanout.
pub fn encode_fanout(fanout: &[u32]) -> Vec<u8> {
    fanout.iter().flat_map(|n| n.to_be_bytes()).collect()
}

/// One record: a blob and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Number of its pack in the head's list.
    pub pack: u32,
    /// Its entry.
    pub entry: BlobEntry,
}

impl Record {
    /// Encodes the record.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let e = &self.entry;
        let mut w = Writer::with_capacity(RECORD_LEN);
        w.bytes(&e.id.0)
            .u8(e.ty as u8)
            .u8(e.epoch.is_some().into())
            .u16(0)
            .u32(self.pack)
            .u32(e.epoch.unwrap_or(0))
            .u32(e.offset)
            .u32(e.length)
            .u32(e.raw_length);
        w.into_inner().try_into().expect("56 bytes")
    }

    /// Decodes a record of a file with `packs` packs.
    pub fn decode(bytes: &[u8; RECORD_LEN], packs: usize) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, "index cache record");
        let id = Id(r.array()?);
        let t = r.u8()?;
        let ty = ObjectType::from_u8(t)
            .filter(|t| t.is_blob())
            .ok_or_else(|| FormatError::invalid("index cache record", "not a blob type"))?;
        let has_epoch = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(FormatError::invalid("index cache record", "epoch flag")),
        };
        if r.u16()? != 0 {
            return Err(FormatError::invalid("index cache record", "reserved bytes"));
        }
        let pack = r.u32()?;
        if pack as usize >= packs {
            return Err(FormatError::invalid("index cache record", "no such pack"));
        }
        let epoch = r.u32()?;
        let entry = BlobEntry {
            ty,
            id,
            epoch: has_epoch.then_some(epoch),
            offset: r.u32()?,
            length: r.u32()?,
            raw_length: r.u32()?,
        };
        r.finish()?;
        Ok(Self { pack, entry })
    }
}

/// The key of the cache's MAC: `HKDF(K_0, salt = repo id, "sealback 2026-12-02 index cache mac")`.
pub fn cache_key(keyring: &Keyring) -> SubKey {
    let genesis = keyring.roots()[0].expose_secret();
    hkdf_subkey(genesis, &keyring.repo_id().0, labels::INDEX_CACHE_MAC)
}

/// The MAC of a cache file, computed as it is written or read.
pub struct CacheMac(blake3::Hasher);

impl CacheMac {
    /// A MAC under the cache key of `keyring`'s repository.
    pub fn new(keyring: &Keyring) -> Self {
        Self::with_key(&cache_key(keyring))
    }

    /// A MAC under `key` (from [`cache_key`]).
    pub fn with_key(key: &SubKey) -> Self {
        Self(blake3::Hasher::new_keyed(key.expose_secret()))
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The MAC of everything added.
    pub fn finish(&self) -> [u8; MAC_LEN] {
        *self.0.finalize().as_bytes()
    }

    /// Whether `mac` is the MAC of everything added (in constant time).
    pub fn verify(&self, mac: &[u8; MAC_LEN]) -> bool {
        self.0.finalize() == blake3::Hash::from_bytes(*mac)
    }
}

/// A whole cache file, decoded (for tests and the fuzzer; the engine reads files piece by
/// piece). Checks the layout and, with `mac`, the MAC.
pub fn decode(
    bytes: &[u8],
    mac: Option<CacheMac>,
) -> Result<(Head, Vec<u32>, Vec<Record>), FormatError> {
    let len = bytes.len();
    if len < TAIL_LEN + MAC_LEN {
        return Err(FormatError::invalid("index cache", "too short"));
    }
    let tail_at = len - TAIL_LEN - MAC_LEN;
    let tail = Tail::decode(bytes[tail_at..tail_at + TAIL_LEN].try_into().expect("9"))?;
    let layout = tail.layout(len as u64)?;
    if let Some(mut m) = mac {
        m.update(&bytes[..len - MAC_LEN]);
        if !m.verify(bytes[len - MAC_LEN..].try_into().expect("32")) {
            return Err(FormatError::invalid("index cache", "MAC does not verify"));
        }
    }
    let head = Head::decode(&bytes[..layout.head_len as usize])?;
    let fanout = decode_fanout(
        &bytes[layout.fanout_at as usize..tail_at],
        tail.bits,
        tail.records,
    )?;
    let records_bytes = &bytes[layout.records_at as usize..layout.fanout_at as usize];
    let mut records: Vec<Record> = Vec::with_capacity(tail.records as usize);
    for (i, chunk) in records_bytes.chunks_exact(RECORD_LEN).enumerate() {
        let r = Record::decode(chunk.try_into().expect("56"), head.packs.len())?;
        if records.last().is_some_and(|p| p.entry.id >= r.entry.id)
            || i >= fanout[bucket(&r.entry.id, tail.bits)] as usize
            || bucket(&r.entry.id, tail.bits)
                .checked_sub(1)
                .is_some_and(|b| i < fanout[b] as usize)
        {
            return Err(FormatError::invalid("index cache", "record out of place"));
        }
        records.push(r);
    }
    Ok((head, fanout, records))
}

/// Encodes a whole cache file from records sorted by id (for tests and the fuzzer's seeds;
/// the engine streams its files out).
pub fn encode(keyring: &Keyring, head: &Head, records: &[Record]) -> Vec<u8> {
    let bits = fanout_bits(records.len() as u64);
    let mut counts = vec![0u32; 1 << bits];
    let mut out = head.encode();
    for r in records {
        counts[bucket(&r.entry.id, bits)] += 1;
        out.extend_from_slice(&r.encode());
    }
    let mut sum = 0;
    for c in counts.iter_mut() {
        sum += *c;
        *c = sum;
    }
    out.extend(encode_fanout(&counts));
    out.extend(
        Tail {
            bits,
            records: records.len() as u64,
        }
        .encode(),
    );
    let mut mac = CacheMac::new(keyring);
    mac.update(&out);
    out.extend(mac.finish());
    out
}
