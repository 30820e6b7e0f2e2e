//! The protector extension point.
//!
//! A protector is anything that can produce the secret of a keyslot: the recovery key, a
//! passkey (through an authenticator), a key vault (after a password or passkey login). The
//! core never asks how; it hands each slot of the protector's type to
//! [`Protector::secret_for`] and does the rest (derive, check, open, verify) itself, so a new
//! protector is one small type in the crate that owns its I/O.

use crate::keyslot::{KeySlot, ProtectorType};
use crate::secret::ProtectorSecret;

/// Why a protector could not produce a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectorError {
    /// The person cancelled (closed the prompt, declined verification).
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// User verification failed (wrong PIN, fingerprint not recognised).
    #[error("user verification failed: {0}")]
    VerificationFailed(String),
    /// The protector cannot be used here (an authenticator without PRF, a vault that refused).
    #[error("{0}")]
    Unavailable(String),
    /// The key vault refused (locked out, rate limited).
    #[error("the key vault refused: {0}")]
    Refused(String),
}

/// Something that can unlock keyslots of one protector type.
pub trait Protector {
    /// The slot type this protector handles.
    fn protector_type(&self) -> ProtectorType;

    /// The secret for `slot`, or `None` when this protector does not hold it (for example a
    /// passkey slot made by another credential). Called once per slot of the right type.
    fn secret_for(&mut self, slot: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError>;
}
