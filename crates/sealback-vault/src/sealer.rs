//! Sealing: what the vault stores is encrypted under a key the database does not hold.
//!
//! The reference deployment uses a key that never leaves a PKCS#11 token (an HSM); this version
//! ships the software key file, which is weaker: whoever copies both the database and the key
//! file can run offline guesses against the OPAQUE records.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Seals and opens small secrets, binding each to a context (`aad`).
pub trait Sealer: Send + Sync {
    /// Encrypts.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8>;
    /// Decrypts; `None` when the ciphertext or its context was altered.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>>;
    /// A name for logs ("software key file", "PKCS#11 token X").
    fn describe(&self) -> String;
}

/// AES-256-GCM under a key kept in a file (mode 0600).
pub struct SoftwareSealer {
    key: LessSafeKey,
    path: String,
}

impl SoftwareSealer {
    /// Loads the key file, or creates it with a fresh key.
    pub fn open_or_create(path: &Path) -> std::io::Result<Self> {
        let key = match std::fs::read(path) {
            Ok(k) if k.len() == 32 => zeroize::Zeroizing::new(k),
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a 32-byte vault key file", path.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = zeroize::Zeroizing::new(vec![0u8; 32]);
                SystemRandom::new()
                    .fill(&mut k)
                    .map_err(|_| std::io::Error::other("no system randomness"))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                f.write_all(&k)?;
                f.sync_all()?;
                k
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32 bytes")),
            path: path.display().to_string(),
        })
    }
}

impl Sealer for SoftwareSealer {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("system randomness");
        let mut buf = plaintext.to_vec();
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .expect("small message");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        zeroize::Zeroize::zeroize(&mut buf);
        out
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 28 {
            return None;
        }
        let nonce: [u8; 12] = sealed[..12].try_into().ok()?;
        let mut buf = sealed[12..].to_vec();
        let n = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .ok()?
            .len();
        buf.truncate(n);
        Some(buf)
    }

    fn describe(&self) -> String {
        format!(
            "software key file {} (weaker than an HSM: see docs)",
            self.path
        )
    }
}
