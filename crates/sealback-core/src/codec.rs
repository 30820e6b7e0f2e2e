//! A tiny big-endian reader and writer shared by every codec, so that each structure's layout
//! in SPEC.md maps line by line onto its `encode`/`decode` functions.
//!
//! The reader never allocates more than the input could hold: every count is checked against
//! the bytes left before a `Vec` is made, so a hostile length field cannot exhaust memory.

/// Why bytes could not be parsed. Shown to people, so each variant says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ended before the structure did.
    #[error("{what} is truncated")]
    Truncated {
        /// The structure being read.
        what: &'static str,
    },
    /// Bytes followed a complete structure.
    #[error("{what} has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// The structure being read.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// The magic bytes did not match.
    #[error("{what} does not start with the expected magic bytes: not a sealback {what}")]
    BadMagic {
        /// The structure being read.
        what: &'static str,
    },
    /// A version this implementation does not know.
    #[error("{what} has format version {found}; this sealback reads version {supported} (a newer sealback may be needed)")]
    UnsupportedVersion {
        /// The structure being read.
        what: &'static str,
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// A field held a value outside its allowed range.
    #[error("{what}: {detail}")]
    Invalid {
        /// The structure being read.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl FormatError {
    /// Shorthand for [`FormatError::Invalid`].
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        FormatError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// Reads big-endian fields from a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the structure in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn truncated(&self) -> FormatError {
        FormatError::Truncated { what: self.what }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.buf.len() < n {
            return Err(self.truncated());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }
    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// A big-endian i64.
    pub fn i64(&mut self) -> Result<i64, FormatError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Bytes prefixed by a u16 length, at most `max` long.
    pub fn bytes_u16(&mut self, max: usize) -> Result<&'a [u8], FormatError> {
        let len = self.u16()? as usize;
        self.limited(len, max)
    }

    /// Bytes prefixed by a u32 length, at most `max` long.
    pub fn bytes_u32(&mut self, max: usize) -> Result<&'a [u8], FormatError> {
        let len = self.u32()? as usize;
        self.limited(len, max)
    }

    fn limited(&mut self, len: usize, max: usize) -> Result<&'a [u8], FormatError> {
        if len > max {
            return Err(FormatError::invalid(
                self.what,
                format!("a field of {len} bytes exceeds the limit of {max}"),
            ));
        }
        self.bytes(len)
    }

    /// A UTF-8 string prefixed by a u16 length.
    pub fn string_u16(&mut self, max: usize) -> Result<String, FormatError> {
        let raw = self.bytes_u16(max)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| FormatError::invalid(self.what, "a text field is not valid UTF-8"))
    }

    /// A count of items each at least `min_item_len` bytes long, checked against the input
    /// left so that the caller may allocate `count` items safely.
    pub fn count(&mut self, count: u64, min_item_len: usize) -> Result<usize, FormatError> {
        let needed = count.saturating_mul(min_item_len.max(1) as u64);
        if needed > self.buf.len() as u64 {
            return Err(self.truncated());
        }
        Ok(count as usize)
    }

    /// Checks that the magic bytes come next.
    pub fn magic(&mut self, magic: &[u8]) -> Result<(), FormatError> {
        if self.buf.len() < magic.len() || &self.buf[..magic.len()] != magic {
            return Err(FormatError::BadMagic { what: self.what });
        }
        self.buf = &self.buf[magic.len()..];
        Ok(())
    }

    /// Checks a one-byte version field.
    pub fn version_u8(&mut self, supported: u8) -> Result<(), FormatError> {
        let found = self.u8()?;
        if found != supported {
            return Err(FormatError::UnsupportedVersion {
                what: self.what,
                found: found.into(),
                supported: supported.into(),
            });
        }
        Ok(())
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), FormatError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FormatError::TrailingBytes {
                what: self.what,
                extra: self.buf.len(),
            })
        }
    }
}

/// Writes big-endian fields into a growing buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }
    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }
    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// A big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// A big-endian i64.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// Bytes prefixed by a u16 length. Panics if longer than `u16::MAX` (a programming error:
    /// callers validate lengths when the value is created).
    pub fn bytes_u16(&mut self, b: &[u8]) -> &mut Self {
        let len = u16::try_from(b.len()).expect("field longer than u16::MAX");
        self.u16(len).bytes(b)
    }
    /// Bytes prefixed by a u32 length.
    pub fn bytes_u32(&mut self, b: &[u8]) -> &mut Self {
        let len = u32::try_from(b.len()).expect("field longer than u32::MAX");
        self.u32(len).bytes(b)
    }
    /// The bytes written.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}
