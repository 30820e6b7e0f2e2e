//! Keyed content-defined chunking (SPEC §8).
//!
//! FastCDC (Xia et al., 2016/2020: gear hash, normalized chunking with two masks), with a gear
//! table expanded from the repository's secret chunker key. Unkeyed chunkers leak: the sizes of
//! the chunks of a known file fingerprint it even through encryption. Here the boundaries depend
//! on a key the storage operator does not have, and chunk sizes are further hidden inside packs.

use crate::labels;
use crate::secret::SubKey;
use hkdf::Hkdf;
use sha2::Sha256;

/// Chunk size bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkerParams {
    /// No chunk is smaller, except the last of a file.
    pub min: usize,
    /// log2 of the target average size.
    pub avg_bits: u32,
    /// No chunk is larger.
    pub max: usize,
}

impl ChunkerParams {
    /// The parameters of format version 1: 512 KiB / 1 MiB / 8 MiB.
    pub const V1: Self = Self {
        min: 512 * 1024,
        avg_bits: 20,
        max: 8 * 1024 * 1024,
    };
}

/// A keyed FastCDC chunker. Cheap to share between threads.
pub struct Chunker {
    gear: Box<[u64; 256]>,
    params: ChunkerParams,
    mask_small: u64,
    mask_large: u64,
}

fn top_bits(n: u32) -> u64 {
    u64::MAX << (64 - n)
}

impl Chunker {
    /// A chunker whose gear table is `HKDF-Expand(chunker key, "sealback 2026-11-25 gear table", 2048)`
    /// read as 256 big-endian u64.
    pub fn new(key: &SubKey, params: ChunkerParams) -> Self {
        let mut table = zeroize::Zeroizing::new([0u8; 2048]);
        Hkdf::<Sha256>::from_prk(key.expose_secret())
            .expect("a 32-byte PRK")
            .expand(labels::GEAR_TABLE, &mut table[..])
            .expect("2048 bytes is a valid HKDF-SHA256 output length");
        let mut gear = Box::new([0u64; 256]);
        for (g, b) in gear.iter_mut().zip(table.chunks_exact(8)) {
            *g = u64::from_be_bytes(b.try_into().expect("8 bytes"));
        }
        Self {
            gear,
            params,
            mask_small: top_bits(params.avg_bits + 2),
            mask_large: top_bits(params.avg_bits - 2),
        }
    }

    /// The parameters.
    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Given `buf` starting at a chunk boundary, the length of the next chunk, or `None` when
    /// more input is needed to decide (only possible when `eof` is false).
    pub fn cut(&self, buf: &[u8], eof: bool) -> Option<usize> {
        let p = &self.params;
        let len = buf.len();
        if len <= p.min {
            return (eof || len == p.max).then_some(len);
        }
        let end = len.min(p.max);
        let normal = (1usize << p.avg_bits).min(end);
        let mut hash = 0u64;
        let mut i = p.min;
        while i < normal {
            hash = (hash << 1).wrapping_add(self.gear[buf[i] as usize]);
            if hash & self.mask_small == 0 {
                return Some(i + 1);
            }
            i += 1;
        }
        while i < end {
            hash = (hash << 1).wrapping_add(self.gear[buf[i] as usize]);
            if hash & self.mask_large == 0 {
                return Some(i + 1);
            }
            i += 1;
        }
        if end == p.max || eof {
            Some(end)
        } else {
            None
        }
    }

    /// Splits a whole buffer into chunk lengths (for tests and vectors).
    pub fn split_all(&self, mut data: &[u8]) -> Vec<usize> {
        let mut out = vec![];
        while !data.is_empty() {
            let n = self.cut(data, true).expect("eof always decides");
            out.push(n);
            data = &data[n..];
        }
        out
    }
}
