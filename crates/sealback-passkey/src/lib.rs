//! # sealback-passkey: unlocking backups with a passkey
//!
//! This crate owns the passkey protector (SPEC §7a): the [`PrfAuthenticator`] interface that
//! any passkey provider implements (this crate's software provider, the web UI's browser bridge,
//! a hardware key later), the [`software`] provider built on 1Password's passkey-rs with its
//! encrypted store file, and [`PasskeyProtector`], which feeds a PRF output to the core's
//! keyslot machinery.
//!
//! It must not touch the backup repository or its storage, and a PRF output must never leave
//! the process except into a keyslot derivation: not to a log, a file or a server.

pub mod protector;
pub mod software;
pub mod store;

pub use protector::{enroll_template, passkey_slots, passkey_template, PasskeyProtector};
pub use software::SoftwareAuthenticator;
pub use url::Url;

use sealback_core::ProtectorSecret;

/// Why a passkey operation failed. Each variant is something the person can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// The provider cannot evaluate the PRF extension.
    #[error("this passkey provider does not support the PRF extension, so a passkey from it cannot protect the backup key by itself; use the recovery key instead (or, where available, the key vault's passkey mode)")]
    NoPrf,
    /// None of the offered credentials is in this provider.
    #[error("no passkey in this passkey store belongs to this backup (was the store copied from the device that enrolled it?)")]
    NoCredential,
    /// User verification failed: the PIN is wrong.
    #[error("wrong PIN for the passkey store {0}")]
    WrongPin(String),
    /// The person cancelled.
    #[error("passkey verification was cancelled")]
    Cancelled,
    /// The store file is malformed.
    #[error("the passkey store {path} cannot be read: {detail}")]
    Store {
        /// Store file.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// The provider failed.
    #[error("the passkey provider failed: {0}")]
    Provider(String),
}

impl From<PasskeyError> for sealback_core::protector::ProtectorError {
    fn from(e: PasskeyError) -> Self {
        use sealback_core::protector::ProtectorError as P;
        match e {
            PasskeyError::Cancelled => P::Cancelled(e.to_string()),
            PasskeyError::WrongPin(_) => P::VerificationFailed(e.to_string()),
            other => P::Unavailable(other.to_string()),
        }
    }
}

/// A new passkey.
pub struct CreatedPasskey {
    /// Its credential id.
    pub credential_id: Vec<u8>,
    /// The PRF output for the salt given at creation.
    pub prf_output: ProtectorSecret,
}

/// The outcome of one assertion with PRF.
pub struct PrfAssertion {
    /// The credential the provider used.
    pub credential_id: Vec<u8>,
    /// Its PRF output for that credential's salt.
    pub prf_output: ProtectorSecret,
}

/// A passkey provider driven by a relying party's own WebAuthn options (the key vault's passkey
/// ceremonies), as `navigator.credentials.create()` / `.get()` are. Nothing is asked of the PRF
/// extension, and a PRF result, should a provider add one, is removed from what is returned: the
/// JSON goes to a server.
#[allow(async_fn_in_trait)]
pub trait WebAuthnClient {
    /// Creates a credential for `options` (`{"publicKey": …}`) as a client at `origin`, with
    /// user verification; returns the `PublicKeyCredential` JSON.
    async fn create_credential(
        &mut self,
        origin: &url::Url,
        options: &serde_json::Value,
    ) -> Result<serde_json::Value, PasskeyError>;

    /// Makes an assertion for `options` as a client at `origin`, with user verification;
    /// returns the `PublicKeyCredential` JSON.
    async fn get_assertion(
        &mut self,
        origin: &url::Url,
        options: &serde_json::Value,
    ) -> Result<serde_json::Value, PasskeyError>;
}

/// Removes any PRF result from a credential's JSON before it is sent anywhere.
pub fn strip_prf(credential: &mut serde_json::Value) {
    for key in ["clientExtensionResults", "client_extension_results"] {
        if let Some(ext) = credential.get_mut(key).and_then(|e| e.as_object_mut()) {
            ext.remove("prf");
        }
    }
}

/// A passkey provider that can evaluate the WebAuthn PRF extension with user verification.
///
/// Implementations: [`SoftwareAuthenticator`]; the web UI's browser bridge; a CTAP2 security key.
#[allow(async_fn_in_trait)]
pub trait PrfAuthenticator {
    /// Creates a passkey for `rp_id` with user verification, and returns the PRF output for
    /// `prf_salt` (evaluating it in a second ceremony when the provider does not do so at
    /// creation). Fails with [`PasskeyError::NoPrf`] when the provider has no PRF.
    async fn create(
        &mut self,
        rp_id: &str,
        user_name: &str,
        prf_salt: &[u8; 32],
    ) -> Result<CreatedPasskey, PasskeyError>;

    /// One assertion with user verification, offering every `(credential id, PRF salt)`; the
    /// provider picks a credential it holds and returns its PRF output.
    async fn get_prf(
        &mut self,
        rp_id: &str,
        offered: &[(Vec<u8>, [u8; 32])],
    ) -> Result<PrfAssertion, PasskeyError>;
}
