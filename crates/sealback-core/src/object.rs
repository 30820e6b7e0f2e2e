//! Object encryption: every blob, pack header, index file, snapshot and keyring is one sealed
//! object (SPEC §5).
//!
//! ```text
//! object  = version(1)=1 ‖ type(1) ‖ epoch(u32) ‖ seed(32) ‖ AES-256-GCM ciphertext ‖ tag(16)
//! key     = HKDF-SHA256(ikm = subkey(type, epoch), salt = seed, info = "sealback 2026-11-25 object key")
//! nonce   = 96 zero bits (each key encrypts exactly one message)
//! aad     = "sealback object v1" ‖ header(38) ‖ object id(32)
//! payload = encoding(1) ‖ body          encoding 0 = stored, 1 = zstd
//! ```
//! Binding the header and the object id into the AAD means a renamed, swapped or re-typed object
//! fails authentication like a flipped bit or a truncation does.
//!
//! Blobs inside version 2 packs (and those packs' headers) are *headerless* objects, which store
//! nothing a reader without the key could recognise or measure (SPEC §5.1):
//!
//! ```text
//! headerless = seed(32) ‖ AES-256-GCM ciphertext ‖ tag(16)
//! key, nonce = as above
//! aad        = "sealback object v1" ‖ 02 ‖ type(1) ‖ epoch(u32) ‖ seed(32) ‖ object id(32)
//! payload    = encoding(1) ‖ length(u32) ‖ stored body ‖ zero padding
//! ```
//! The type and epoch come from the (encrypted) pack header that lists the object, and the
//! padding makes the whole sealed length a Padmé length ([`padme`]).

use crate::codec::FormatError;
use crate::id::Id;
use crate::keys::{hkdf_subkey, Keyring};
use crate::labels;
use crate::secret::SubKey;
use rand_core::CryptoRng;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

/// Format version of sealed objects.
pub const OBJECT_VERSION: u8 = 1;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 38;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object adds to its body (header, encoding byte, tag).
pub const OVERHEAD: usize = HEADER_LEN + 1 + TAG_LEN;

/// Version byte of headerless objects. It is never stored: it is part of their AAD only, which
/// keeps their authentication apart from that of version 1 objects.
pub const HEADERLESS_VERSION: u8 = 2;
/// Length of the random seed that starts a headerless object.
pub const SEED_LEN: usize = 32;
/// Bytes a headerless object adds to its stored body before padding: seed, encoding byte,
/// body length, tag.
pub const HEADERLESS_OVERHEAD: usize = SEED_LEN + 1 + 4 + TAG_LEN;

const ENCODING_STORED: u8 = 0;
const ENCODING_ZSTD: u8 = 1;
/// The magic number that starts a zstd frame (RFC 8878 §3.1.1, little-endian).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What an object is. The type is authenticated, so an object cannot be read as another type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ObjectType {
    /// A chunk of file content.
    Data = 1,
    /// A directory listing.
    Tree = 2,
    /// A list of blob ids making up a large file's content.
    ContentList = 3,
    /// The header at the end of a pack.
    PackHeader = 0x10,
    /// An index file.
    Index = 0x11,
    /// A snapshot manifest.
    Snapshot = 0x12,
    /// The keyring of older root keys.
    Keyring = 0x13,
    /// A repository lock.
    Lock = 0x14,
    /// The fixed-size trailer of a version 2 pack, which says how long its header is.
    PackTrailer = 0x15,
}

impl ObjectType {
    /// Parses the type byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Data,
            2 => Self::Tree,
            3 => Self::ContentList,
            0x10 => Self::PackHeader,
            0x11 => Self::Index,
            0x12 => Self::Snapshot,
            0x13 => Self::Keyring,
            0x14 => Self::Lock,
            0x15 => Self::PackTrailer,
            _ => return None,
        })
    }
    /// Whether objects of this type are encrypted with the data subkey.
    pub fn is_data(self) -> bool {
        matches!(self, Self::Data)
    }
    /// Whether this type is stored as a blob inside packs.
    pub fn is_blob(self) -> bool {
        matches!(self, Self::Data | Self::Tree | Self::ContentList)
    }
    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Data => "data blob",
            Self::Tree => "tree blob",
            Self::ContentList => "content list blob",
            Self::PackHeader => "pack header",
            Self::Index => "index",
            Self::Snapshot => "snapshot",
            Self::Keyring => "keyring",
            Self::Lock => "lock",
            Self::PackTrailer => "pack trailer",
        }
    }
}

/// Why an object could not be opened. Every variant means the stored bytes are not what this
/// repository's owner wrote, so callers report all of them as integrity failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The tag did not verify: the object was altered, truncated, swapped with another object,
    /// or written under other keys.
    #[error("authentication failed (the {ty} was modified, truncated, swapped or written under other keys)")]
    Authentication {
        /// The type that was expected.
        ty: &'static str,
    },
    /// The object is of another type than expected.
    #[error("expected a {expected}, found a {found}")]
    WrongType {
        /// Type expected.
        expected: &'static str,
        /// Type found.
        found: String,
    },
    /// The object names a key epoch this keyring does not have.
    #[error("the {ty} was written in key epoch {epoch}, which this keyring does not hold")]
    UnknownEpoch {
        /// Type of the object.
        ty: &'static str,
        /// Epoch found.
        epoch: u32,
    },
    /// The framing is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The decrypted body does not decompress within the allowed size.
    #[error("the {ty} does not decompress within {limit} bytes: {detail}")]
    Decompression {
        /// Type of the object.
        ty: &'static str,
        /// The size limit.
        limit: usize,
        /// What zstd said.
        detail: String,
    },
}

/// How the body should be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is (incompressible media).
    None,
    /// zstd at this level, kept only if it saves at least 1/16 of the size.
    Zstd(i32),
}

/// A sealed object and whether its body was compressed.
pub struct Sealed {
    /// The bytes to store.
    pub bytes: Vec<u8>,
    /// Whether compression paid and was kept.
    pub compressed: bool,
    /// The key epoch it was sealed in (a headerless object does not say; its pack header does).
    pub epoch: u32,
}

fn object_aead_key(subkey: &SubKey, seed: &[u8; 32]) -> LessSafeKey {
    let k = hkdf_subkey(subkey.expose_secret(), seed, labels::OBJECT_KEY);
    let unbound =
        UnboundKey::new(&aead::AES_256_GCM, k.expose_secret()).expect("32 bytes is an AES-256 key");
    LessSafeKey::new(unbound)
}

fn aad(header: &[u8], id: &Id) -> Vec<u8> {
    let mut a = Vec::with_capacity(labels::OBJECT_AAD.len() + HEADER_LEN + 32);
    a.extend_from_slice(labels::OBJECT_AAD);
    a.extend_from_slice(header);
    a.extend_from_slice(&id.0);
    a
}

/// Seals `body` as an object of type `ty` named `id`, in the keyring's current epoch.
pub fn seal(
    keyring: &Keyring,
    ty: ObjectType,
    id: &Id,
    body: &[u8],
    compression: Compression,
    rng: &mut impl CryptoRng,
) -> Sealed {
    let (subkey, epoch, seed) = current_key_and_seed(keyring, ty, rng);
    seal_with_seed(subkey, epoch, ty, id, body, compression, seed)
}

/// What every new object is sealed with: the current epoch's subkey for its type, and a fresh
/// random seed (from which its one-time AEAD key is derived).
fn current_key_and_seed<'k>(
    keyring: &'k Keyring,
    ty: ObjectType,
    rng: &mut impl CryptoRng,
) -> (&'k SubKey, u32, [u8; 32]) {
    let epoch = keyring.current_epoch();
    let subkey = keyring
        .object_key(ty, epoch)
        .expect("the current epoch always has keys");
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    (subkey, epoch, seed)
}

thread_local! {
    /// One zstd context per thread and level: creating one per object (a SQLite page is an
    /// object) costs more than compressing it.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

fn compress(body: &[u8], level: i32) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, c) = slot.as_mut().expect("set above");
        c.compress(body).ok()
    })
}

/// The stored body: zstd-compressed when asked and when that saves at least 1/16 of the size.
fn encode_body(body: &[u8], compression: Compression) -> (u8, std::borrow::Cow<'_, [u8]>) {
    let compressed = match compression {
        Compression::None => None,
        Compression::Zstd(level) => {
            compress(body, level).filter(|c| c.len() <= body.len() - body.len() / 16)
        }
    };
    match compressed {
        Some(c) => (ENCODING_ZSTD, c.into()),
        None => (ENCODING_STORED, body.into()),
    }
}

/// Encrypts `out[plaintext_from..]` in place and appends the tag.
fn encrypt_in_place(
    subkey: &SubKey,
    seed: &[u8; 32],
    aad: Vec<u8>,
    out: &mut Vec<u8>,
    from: usize,
) {
    let key = object_aead_key(subkey, seed);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0u8; 12]),
            Aad::from(aad),
            &mut out[from..],
        )
        .expect("a sealed object is far below AES-GCM's message size limit");
    out.extend_from_slice(tag.as_ref());
}

/// [`seal`] with an explicit subkey and seed: for test vectors and other implementations.
pub fn seal_with_seed(
    subkey: &SubKey,
    epoch: u32,
    ty: ObjectType,
    id: &Id,
    body: &[u8],
    compression: Compression,
    seed: [u8; 32],
) -> Sealed {
    let (encoding, payload) = encode_body(body, compression);
    let mut out = Vec::with_capacity(OVERHEAD + payload.len());
    out.push(OBJECT_VERSION);
    out.push(ty as u8);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&seed);
    out.push(encoding);
    out.extend_from_slice(&payload);
    let aad = aad(&out[..HEADER_LEN], id);
    encrypt_in_place(subkey, &seed, aad, &mut out, HEADER_LEN);
    Sealed {
        bytes: out,
        compressed: encoding == ENCODING_ZSTD,
        epoch,
    }
}

/// The smallest Padmé length at or above `len` (Nikitin et al., "Reducing Metadata Leakage from
/// Encrypted Files and Communication with PURBs", PETS 2019): `len` rounded up so that only
/// its top `floor(log2(floor(log2 len))) + 1` bits may be set. A length of 2^E..2^(E+1) shows
/// which of at most 2^S (S = that bit count) buckets it fell in, and no more; the padding costs
/// at most 11.1 % (9 bytes to 10) and at most 6.25 % from 256 bytes on, shrinking as lengths grow.
pub fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros();
    let s = u32::BITS - e.leading_zeros();
    let mask = (1usize << (e - s)) - 1;
    (len + mask) & !mask
}

/// The AAD of a headerless object: that of a version 1 object whose header says version 2.
fn headerless_aad(ty: ObjectType, epoch: u32, seed: &[u8; 32], id: &Id) -> Vec<u8> {
    let mut header = [0u8; HEADER_LEN];
    header[0] = HEADERLESS_VERSION;
    header[1] = ty as u8;
    header[2..6].copy_from_slice(&epoch.to_be_bytes());
    header[6..].copy_from_slice(seed);
    aad(&header, id)
}

/// Seals `body` as a headerless object (SPEC §5.1) in the keyring's current epoch, padded to a
/// [`padme`] length when `pad` is set.
pub fn seal_headerless(
    keyring: &Keyring,
    ty: ObjectType,
    id: &Id,
    body: &[u8],
    compression: Compression,
    pad: bool,
    rng: &mut impl CryptoRng,
) -> Sealed {
    let (subkey, epoch, seed) = current_key_and_seed(keyring, ty, rng);
    seal_headerless_with_seed(subkey, epoch, ty, id, body, compression, pad, seed)
}

/// [`seal_headerless`] with an explicit subkey and seed: for test vectors.
#[allow(clippy::too_many_arguments)]
pub fn seal_headerless_with_seed(
    subkey: &SubKey,
    epoch: u32,
    ty: ObjectType,
    id: &Id,
    body: &[u8],
    compression: Compression,
    pad: bool,
    seed: [u8; 32],
) -> Sealed {
    let (encoding, payload) = encode_body(body, compression);
    let unpadded = HEADERLESS_OVERHEAD + payload.len();
    let total = if pad { padme(unpadded) } else { unpadded };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&seed);
    out.push(encoding);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out.resize(total - TAG_LEN, 0);
    let aad = headerless_aad(ty, epoch, &seed, id);
    encrypt_in_place(subkey, &seed, aad, &mut out, SEED_LEN);
    Sealed {
        bytes: out,
        compressed: encoding == ENCODING_ZSTD,
        epoch,
    }
}

/// Opens a headerless object of type `ty`, sealed in `epoch`, named `id` (SPEC §5.1).
pub fn open_headerless(
    keyring: &Keyring,
    ty: ObjectType,
    epoch: u32,
    id: &Id,
    bytes: &[u8],
    max_len: usize,
) -> Result<Vec<u8>, ObjectError> {
    let subkey = keyring
        .object_key(ty, epoch)
        .ok_or(ObjectError::UnknownEpoch {
            ty: ty.name(),
            epoch,
        })?;
    open_headerless_with_key(subkey, ty, epoch, id, bytes, max_len)
}

/// [`open_headerless`] with an explicit subkey: for test vectors.
pub fn open_headerless_with_key(
    subkey: &SubKey,
    ty: ObjectType,
    epoch: u32,
    id: &Id,
    bytes: &[u8],
    max_len: usize,
) -> Result<Vec<u8>, ObjectError> {
    if bytes.len() < HEADERLESS_OVERHEAD {
        return Err(FormatError::Truncated { what: "object" }.into());
    }
    let seed: [u8; 32] = bytes[..SEED_LEN].try_into().expect("32 bytes");
    let key = object_aead_key(subkey, &seed);
    let mut buf = bytes[SEED_LEN..].to_vec();
    let plain_len = key
        .open_in_place(
            Nonce::assume_unique_for_key([0u8; 12]),
            Aad::from(headerless_aad(ty, epoch, &seed, id)),
            &mut buf,
        )
        .map_err(|_| ObjectError::Authentication { ty: ty.name() })?
        .len();
    buf.truncate(plain_len);
    let len = u32::from_be_bytes(buf[1..5].try_into().expect("4 bytes")) as usize;
    let Some(padding) = buf.get(5..).and_then(|rest| rest.get(len..)) else {
        return Err(FormatError::invalid("object", "body length exceeds the object").into());
    };
    // Authenticated, so only a key holder could have put anything here; a canonical encoding
    // still leaves one way to write each object.
    if padding.iter().any(|&b| b != 0) {
        return Err(FormatError::invalid("object", "padding is not zero").into());
    }
    decode_payload(ty, buf[0], &buf[5..5 + len], max_len)
}

/// The type and key epoch an object claims, read without decrypting.
pub fn peek(bytes: &[u8]) -> Result<(ObjectType, u32), ObjectError> {
    if bytes.len() < HEADER_LEN + 1 + TAG_LEN {
        return Err(FormatError::Truncated { what: "object" }.into());
    }
    if bytes[0] != OBJECT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            what: "object",
            found: bytes[0].into(),
            supported: OBJECT_VERSION.into(),
        }
        .into());
    }
    let ty = ObjectType::from_u8(bytes[1]).ok_or_else(|| {
        FormatError::invalid("object", format!("unknown object type {:#04x}", bytes[1]))
    })?;
    let epoch = u32::from_be_bytes(bytes[2..6].try_into().expect("4 bytes"));
    Ok((ty, epoch))
}

/// Opens an object of type `expected` named `id` and returns its body, refusing bodies larger
/// than `max_len` bytes.
pub fn open(
    keyring: &Keyring,
    expected: ObjectType,
    id: &Id,
    bytes: &[u8],
    max_len: usize,
) -> Result<Vec<u8>, ObjectError> {
    let (ty, epoch) = peek(bytes)?;
    if ty != expected {
        return Err(ObjectError::WrongType {
            expected: expected.name(),
            found: ty.name().to_string(),
        });
    }
    let subkey = keyring
        .object_key(ty, epoch)
        .ok_or(ObjectError::UnknownEpoch {
            ty: ty.name(),
            epoch,
        })?;
    open_with_key(subkey, expected, id, bytes, max_len)
}

/// [`open`] with an explicit subkey: for test vectors.
pub fn open_with_key(
    subkey: &SubKey,
    expected: ObjectType,
    id: &Id,
    bytes: &[u8],
    max_len: usize,
) -> Result<Vec<u8>, ObjectError> {
    let (ty, _) = peek(bytes)?;
    if ty != expected {
        return Err(ObjectError::WrongType {
            expected: expected.name(),
            found: ty.name().to_string(),
        });
    }
    let seed: [u8; 32] = bytes[6..HEADER_LEN].try_into().expect("32 bytes");
    let key = object_aead_key(subkey, &seed);
    let mut buf = bytes[HEADER_LEN..].to_vec();
    let plain_len = key
        .open_in_place(
            Nonce::assume_unique_for_key([0u8; 12]),
            Aad::from(aad(&bytes[..HEADER_LEN], id)),
            &mut buf,
        )
        .map_err(|_| ObjectError::Authentication { ty: ty.name() })?
        .len();
    buf.truncate(plain_len);
    decode_payload(ty, buf[0], &buf[1..], max_len)
}

/// The body from a payload's encoding byte and stored bytes (SPEC §5): stored as is, or exactly
/// one zstd frame with nothing after it, within `max_len` bytes once decompressed.
fn decode_payload(
    ty: ObjectType,
    encoding: u8,
    stored: &[u8],
    max_len: usize,
) -> Result<Vec<u8>, ObjectError> {
    let too_large = |detail: String| ObjectError::Decompression {
        ty: ty.name(),
        limit: max_len,
        detail,
    };
    match encoding {
        ENCODING_STORED if stored.len() > max_len => Err(too_large("stored body too large".into())),
        ENCODING_STORED => Ok(stored.to_vec()),
        ENCODING_ZSTD => {
            let one_frame = stored.starts_with(&ZSTD_MAGIC)
                && zstd::zstd_safe::find_frame_compressed_size(stored) == Ok(stored.len());
            if !one_frame {
                return Err(FormatError::invalid(
                    "object",
                    "the compressed body is not exactly one zstd frame",
                )
                .into());
            }
            zstd::bulk::decompress(stored, max_len).map_err(|e| too_large(e.to_string()))
        }
        other => Err(FormatError::invalid("object", format!("unknown encoding {other}")).into()),
    }
}

#[cfg(test)]
mod tests {
    //! Payloads only a key holder could write, sealed by hand: the framing rules of SPEC §5
    //! and §5.1 hold even under a valid tag.
    use super::*;

    const SEED: [u8; 32] = [9; 32];

    fn subkey() -> SubKey {
        SubKey::from_bytes([7; 32])
    }

    /// A version 1 object around an arbitrary payload.
    fn v1_with_payload(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![OBJECT_VERSION, ObjectType::Data as u8, 0, 0, 0, 0];
        out.extend_from_slice(&SEED);
        out.extend_from_slice(payload);
        let aad = aad(&out[..HEADER_LEN], &Id([1; 32]));
        encrypt_in_place(&subkey(), &SEED, aad, &mut out, HEADER_LEN);
        out
    }

    /// A headerless object around an arbitrary payload.
    fn headerless_with_payload(payload: &[u8]) -> Vec<u8> {
        let mut out = SEED.to_vec();
        out.extend_from_slice(payload);
        let aad = headerless_aad(ObjectType::Data, 0, &SEED, &Id([1; 32]));
        encrypt_in_place(&subkey(), &SEED, aad, &mut out, SEED_LEN);
        out
    }

    fn open_v1(bytes: &[u8]) -> Result<Vec<u8>, ObjectError> {
        open_with_key(&subkey(), ObjectType::Data, &Id([1; 32]), bytes, 1 << 20)
    }

    fn open_headerless(bytes: &[u8]) -> Result<Vec<u8>, ObjectError> {
        open_headerless_with_key(&subkey(), ObjectType::Data, 0, &Id([1; 32]), bytes, 1 << 20)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(body, 3).unwrap()
    }

    fn is_format(r: Result<Vec<u8>, ObjectError>, says: &str) -> bool {
        matches!(&r, Err(ObjectError::Format(e)) if e.to_string().contains(says))
    }

    #[test]
    fn the_hand_sealed_payloads_open_when_well_formed() {
        let mut p = vec![ENCODING_ZSTD];
        p.extend_from_slice(&frame(b"hello hello hello"));
        assert_eq!(open_v1(&v1_with_payload(&p)).unwrap(), b"hello hello hello");
        assert_eq!(open_v1(&v1_with_payload(&[ENCODING_STORED])).unwrap(), b"");
    }

    #[test]
    fn an_unknown_encoding_byte_is_refused() {
        assert!(is_format(
            open_v1(&v1_with_payload(&[2, 1, 2, 3])),
            "unknown encoding 2"
        ));
        let payload = [7, 0, 0, 0, 1, 0xaa];
        assert!(is_format(
            open_headerless(&headerless_with_payload(&payload)),
            "unknown encoding 7"
        ));
    }

    #[test]
    fn zstd_must_be_exactly_one_frame_with_nothing_after_it() {
        let one = frame(b"abcabcabcabcabcabc");
        let mut two = one.clone();
        two.extend_from_slice(&frame(b"more"));
        let mut trailing = one.clone();
        trailing.push(0);
        // A skippable frame (magic 0x184D2A50, length 4): zstd would decode it to nothing.
        let skippable = [0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
        for bad in [&two[..], &trailing, &skippable, &one[..one.len() - 1], &[]] {
            let mut p = vec![ENCODING_ZSTD];
            p.extend_from_slice(bad);
            assert!(
                is_format(open_v1(&v1_with_payload(&p)), "one zstd frame"),
                "{bad:?}"
            );
            let mut p = vec![ENCODING_ZSTD];
            p.extend_from_slice(&(bad.len() as u32).to_be_bytes());
            p.extend_from_slice(bad);
            assert!(
                is_format(
                    open_headerless(&headerless_with_payload(&p)),
                    "one zstd frame"
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn headerless_padding_must_be_zero_and_the_length_must_fit() {
        let good = [ENCODING_STORED, 0, 0, 0, 2, b'h', b'i', 0, 0];
        assert_eq!(
            open_headerless(&headerless_with_payload(&good)).unwrap(),
            b"hi"
        );
        let dirty = [ENCODING_STORED, 0, 0, 0, 2, b'h', b'i', 0, 1];
        assert!(is_format(
            open_headerless(&headerless_with_payload(&dirty)),
            "padding"
        ));
        let long = [ENCODING_STORED, 0, 0, 0, 9, b'h', b'i'];
        assert!(is_format(
            open_headerless(&headerless_with_payload(&long)),
            "exceeds"
        ));
    }

    #[test]
    fn an_object_too_short_for_a_payload_is_malformed_not_empty() {
        let v1 = v1_with_payload(&[ENCODING_STORED]);
        assert!(matches!(
            open_v1(&v1[..v1.len() - 1]),
            Err(ObjectError::Format(FormatError::Truncated { .. }))
        ));
        let short = headerless_with_payload(&[ENCODING_STORED, 0, 0, 0, 0]);
        assert_eq!(short.len(), HEADERLESS_OVERHEAD);
        assert_eq!(open_headerless(&short).unwrap(), b"");
        assert!(matches!(
            open_headerless(&short[..short.len() - 1]),
            Err(ObjectError::Format(FormatError::Truncated { .. }))
        ));
    }
}
