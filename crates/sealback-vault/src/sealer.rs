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

/// AES-256-GCM inside a PKCS#11 token (an HSM; SoftHSM2 in tests): the key is generated in the
/// token as sensitive and non-extractable, and every seal and open is a call into the token.
pub struct Pkcs11Sealer {
    session: std::sync::Mutex<cryptoki::session::Session>,
    key: cryptoki::object::ObjectHandle,
    token: String,
    // Keeps the module loaded for as long as the session lives.
    _context: cryptoki::context::Pkcs11,
}

/// The label of the vault's key in the token.
pub const PKCS11_KEY_LABEL: &str = "sealback-vault-record-key";

impl Pkcs11Sealer {
    /// Opens the token labelled `token_label` through `module`, logs in with `pin`, and finds
    /// (or, the first time, generates) the vault's key.
    pub fn open(module: &Path, token_label: &str, pin: &str) -> Result<Self, String> {
        use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
        use cryptoki::mechanism::Mechanism;
        use cryptoki::object::{Attribute, KeyType, ObjectClass};
        use cryptoki::session::UserType;
        use cryptoki::types::AuthPin;
        let context = Pkcs11::new(module)
            .map_err(|e| format!("cannot load PKCS#11 module {}: {e}", module.display()))?;
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| format!("PKCS#11 initialize: {e}"))?;
        let slot = context
            .get_slots_with_token()
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|s| {
                context
                    .get_token_info(*s)
                    .map(|t| t.label().trim() == token_label)
                    .unwrap_or(false)
            })
            .ok_or_else(|| format!("no PKCS#11 token labelled {token_label:?}"))?;
        let session = context.open_rw_session(slot).map_err(|e| e.to_string())?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(|e| format!("PKCS#11 login to {token_label:?} failed: {e}"))?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(PKCS11_KEY_LABEL.as_bytes().to_vec()),
        ];
        let found = session.find_objects(&template).map_err(|e| e.to_string())?;
        let key = match found.first() {
            Some(k) => *k,
            None => session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::ValueLen(32.into()),
                        Attribute::Label(PKCS11_KEY_LABEL.as_bytes().to_vec()),
                    ],
                )
                .map_err(|e| format!("cannot generate the vault key in the token: {e}"))?,
        };
        Ok(Self {
            session: std::sync::Mutex::new(session),
            key,
            token: token_label.to_string(),
            _context: context,
        })
    }
}

impl Sealer for Pkcs11Sealer {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        use cryptoki::mechanism::{aead::GcmParams, Mechanism};
        let mut nonce = [0u8; 12];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("system randomness");
        let mut iv = nonce;
        let params = GcmParams::new(&mut iv, aad, 128.into()).expect("valid GCM parameters");
        let session = self.session.lock().expect("token session");
        let ct = session
            .encrypt(&Mechanism::AesGcm(params), self.key, plaintext)
            .expect("the token encrypts");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        use cryptoki::mechanism::{aead::GcmParams, Mechanism};
        if sealed.len() < 28 {
            return None;
        }
        let mut iv: [u8; 12] = sealed[..12].try_into().ok()?;
        let params = GcmParams::new(&mut iv, aad, 128.into()).ok()?;
        let session = self.session.lock().ok()?;
        // A tag failure comes back as CKR_GENERAL_ERROR from SoftHSM2: any error means "does not open".
        session
            .decrypt(&Mechanism::AesGcm(params), self.key, &sealed[12..])
            .ok()
    }

    fn describe(&self) -> String {
        format!(
            "key in PKCS#11 token {:?} (never leaves the token)",
            self.token
        )
    }
}
