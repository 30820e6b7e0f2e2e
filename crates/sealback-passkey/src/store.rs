//! The software passkey store file: the credentials of the software provider, encrypted at rest.
//!
//! A credential holds a private key and its hmac-secret (PRF) secrets in clear, so the file is
//! sealed with AES-256-GCM under Argon2id(PIN) (SPEC §7a.4). The PIN is also the provider's user
//! verification: a wrong PIN opens nothing. Copying the file to another machine stands for a
//! synced password manager.

use crate::PasskeyError;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand_core::CryptoRng;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sealback_core::passkey::{KdfParams, StoreEnvelope};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The PIN or passphrase that protects the store and verifies the user.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Pin(String);

impl Pin {
    /// Wraps a PIN. Leading and trailing white space is part of it.
    pub fn new(pin: String) -> Self {
        Self(pin)
    }
}

impl core::fmt::Debug for Pin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// One stored credential. Secret fields are base64url strings inside the encrypted body.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct CredentialRecord {
    /// Credential id.
    pub credential_id: String,
    /// Relying party id.
    pub rp_id: String,
    /// WebAuthn user handle.
    pub user_handle: Option<String>,
    /// User name.
    pub username: Option<String>,
    /// The private key as a COSE key (CBOR).
    pub cose_key: String,
    /// Signature counter.
    pub counter: Option<u32>,
    /// hmac-secret CredRandom used with user verification.
    pub hmac_with_uv: Option<String>,
    /// hmac-secret CredRandom used without user verification.
    pub hmac_without_uv: Option<String>,
    /// When it was created, Unix seconds.
    pub created_unix: u64,
}

/// The decrypted store.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct StoreContents {
    /// Body version.
    pub version: u32,
    /// Whether this provider offers PRF (a store made with PRF off stands for a provider that
    /// lacks it).
    pub prf: bool,
    /// Credentials.
    pub credentials: Vec<CredentialRecord>,
}

impl core::fmt::Debug for StoreContents {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "StoreContents {{ prf: {}, credentials: {} }}",
            self.prf,
            self.credentials.len()
        )
    }
}

/// Encodes bytes as the store's base64url.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes the store's base64url.
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    B64.decode(s).ok()
}

fn derive_key(pin: &Pin, salt: &[u8; 16], kdf: KdfParams) -> Result<LessSafeKey, PasskeyError> {
    let params = Params::new(kdf.memory_kib, kdf.passes, kdf.lanes, Some(32))
        .map_err(|e| PasskeyError::Provider(format!("Argon2id parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pin.0.as_bytes(), salt, &mut key[..])
        .map_err(|e| PasskeyError::Provider(format!("Argon2id: {e}")))?;
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key[..]).expect("32-byte key"),
    ))
}

/// Reads and decrypts a store file.
pub fn load(path: &Path, pin: &Pin) -> Result<StoreContents, PasskeyError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| PasskeyError::Store {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    let env = StoreEnvelope::decode(&bytes).map_err(|e| PasskeyError::Store {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    let key = derive_key(pin, &env.salt, env.kdf)?;
    let mut buf = Zeroizing::new(env.ciphertext.clone());
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(env.nonce),
            Aad::from(env.header()),
            &mut buf[..],
        )
        .map_err(|_| PasskeyError::WrongPin(shown.clone()))?;
    serde_json::from_slice(plain).map_err(|e| PasskeyError::Store {
        path: shown,
        detail: format!("decrypted but malformed: {e}"),
    })
}

/// Encrypts and writes a store file atomically (temporary file, then rename), mode 0600.
pub fn save(
    path: &Path,
    pin: &Pin,
    contents: &StoreContents,
    kdf: KdfParams,
    rng: &mut impl CryptoRng,
) -> Result<(), PasskeyError> {
    let io = |e: std::io::Error| PasskeyError::Store {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let key = derive_key(pin, &salt, kdf)?;
    let mut env = StoreEnvelope {
        kdf,
        salt,
        nonce,
        ciphertext: vec![],
    };
    let mut body = Zeroizing::new(serde_json::to_vec(contents).expect("serialisable"));
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(env.header()),
            &mut body[..],
        )
        .expect("small message");
    env.ciphertext = body.to_vec();
    env.ciphertext.extend_from_slice(tag.as_ref());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp: PathBuf = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(&env.encode())
        .and_then(|_| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A store's KDF parameters as stored (to keep them on rewrite).
pub fn kdf_of(path: &Path) -> Option<KdfParams> {
    std::fs::read(path)
        .ok()
        .and_then(|b| StoreEnvelope::decode(&b).ok())
        .map(|e| e.kdf)
}
