//! The 64-digit recovery key (SPEC §7).
//!
//! 63 uniformly random decimal digits (log2(10^63) = 209.3 bits) followed by one Damm check
//! digit, shown as 16 groups of 4. The Damm algorithm detects every single wrong digit and
//! every swap of two neighbouring digits, the two most common transcription errors.
//! The digits themselves are the protector secret fed to the keyslot derivation.

use crate::keyslot::{KeySlot, ProtectorType};
use crate::protector::{Protector, ProtectorError};
use crate::secret::ProtectorSecret;
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Digits in a recovery key, check digit included.
pub const DIGITS: usize = 64;
/// Random digits (the rest is the check digit).
pub const RANDOM_DIGITS: usize = 63;

/// The Damm quasigroup of order 10 (totally anti-symmetric, zero diagonal).
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// The Damm interim digit of a digit sequence (values 0-9). Appending it makes the result 0.
pub fn damm(digits: &[u8]) -> u8 {
    digits
        .iter()
        .fold(0u8, |interim, &d| DAMM[interim as usize][d as usize])
}

/// Why typed-in text is not a recovery key. Says what to fix; never echoes the digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryKeyError {
    /// Wrong number of digits.
    #[error("a recovery key has 64 digits, this has {0}: check for a missing or extra group")]
    Length(usize),
    /// A character that is neither a digit nor a separator.
    #[error("a recovery key has only digits (spaces and dashes between groups are fine); found another character at position {0}")]
    Character(usize),
    /// The check digit does not match.
    #[error("the recovery key's checksum does not match: a digit is mistyped or two neighbouring digits are swapped")]
    Checksum,
}

/// A recovery key: 64 ASCII digits. Zeroized on drop; `Debug` is redacted.
#[derive(Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct RecoveryKey([u8; DIGITS]);

impl RecoveryKey {
    /// A fresh key from a CSPRNG (rejection sampling keeps every digit uniform).
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut digits = [0u8; DIGITS];
        let mut filled = 0;
        let mut buf = [0u8; 64];
        while filled < RANDOM_DIGITS {
            rng.fill_bytes(&mut buf);
            for &b in buf.iter() {
                if filled == RANDOM_DIGITS {
                    break;
                }
                if b < 250 {
                    digits[filled] = b % 10;
                    filled += 1;
                }
            }
        }
        buf.zeroize();
        digits[RANDOM_DIGITS] = damm(&digits[..RANDOM_DIGITS]);
        for d in digits.iter_mut() {
            *d += b'0';
        }
        RecoveryKey(digits)
    }

    /// Parses typed or pasted text: digits with any spaces, dashes or line breaks between them.
    pub fn parse(text: &str) -> Result<Self, RecoveryKeyError> {
        let mut digits = [0u8; DIGITS];
        let mut n = 0usize;
        for (pos, c) in text.trim().chars().enumerate() {
            match c {
                '0'..='9' => {
                    if n < DIGITS {
                        digits[n] = c as u8 - b'0';
                    }
                    n += 1;
                }
                ' ' | '-' | '\n' | '\r' | '\t' => {}
                _ => {
                    digits.zeroize();
                    return Err(RecoveryKeyError::Character(pos + 1));
                }
            }
        }
        if n != DIGITS {
            digits.zeroize();
            return Err(RecoveryKeyError::Length(n));
        }
        if damm(&digits) != 0 {
            digits.zeroize();
            return Err(RecoveryKeyError::Checksum);
        }
        for d in digits.iter_mut() {
            *d += b'0';
        }
        Ok(RecoveryKey(digits))
    }

    /// The key as shown to people: 16 groups of 4 digits separated by spaces.
    pub fn display_groups(&self) -> zeroize::Zeroizing<String> {
        let mut s = String::with_capacity(DIGITS + 15);
        for (i, chunk) in self.0.chunks(4).enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(core::str::from_utf8(chunk).expect("ASCII digits"));
        }
        zeroize::Zeroizing::new(s)
    }

    /// The protector secret: the 64 ASCII digits.
    pub fn to_secret(&self) -> ProtectorSecret {
        ProtectorSecret::new(self.0.to_vec())
    }
}

impl core::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}

/// The recovery key as a [`Protector`]: it offers its secret to every recovery-key slot.
pub struct RecoveryKeyProtector(pub RecoveryKey);

impl Protector for RecoveryKeyProtector {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::RECOVERY_KEY
    }
    fn secret_for(&mut self, _slot: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        Ok(Some(self.0.to_secret()))
    }
}
