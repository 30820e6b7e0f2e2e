//! Sealing: what the vault stores is encrypted under a key the database does not hold.
//!
//! The reference deployment uses a key that never leaves a PKCS#11 token (an HSM); this version
//! also ships the software key file, which is weaker: whoever copies both the database and the key
//! file can run offline guesses against the OPAQUE records.
//!
//! # Formats (docs/VAULT-PROTOCOL.md, "Sealed values")
//! - **Version 2** (written since issue 14): `0x02 ‖ salt (32 random bytes) ‖ AES-256-GCM
//!   ciphertext ‖ tag`. The value's own key is HKDF-Expand (RFC 5869, one block) with the
//!   sealer's PRF key as the pseudorandom key and `label ‖ salt ‖ aad` as the info: computed by
//!   the token ([`Sealer::prf`], HMAC-SHA-256 inside the HSM) or from the key file. Every value
//!   has its own key, used once, so the nonce is fixed at zero and a nonce can never repeat
//!   under one key (the long-lived key with random 96-bit nonces reached 2^32 messages in weeks).
//! - **Version 1** (read only): `nonce (12 random bytes) ‖ ciphertext ‖ tag`, AES-256-GCM under
//!   the long-lived key. It has no version byte; a value is read as version 2 when it starts with
//!   `0x02` and opens as one, and as version 1 otherwise (both are authenticated: trying both
//!   lets nobody forge either).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The version byte of a value sealed under its own key.
pub const SEALED_V2: u8 = 2;

/// The length of a version-2 value's random salt.
const SALT_LEN: usize = 32;

/// The HKDF info label of a version-2 value's key.
const VALUE_KEY_LABEL: &[u8] = b"sealback vault 2026-12-02 sealed value key";

/// Seals and opens small secrets, binding each to a context (`aad`), and computes a keyed PRF
/// for integrity tags. Implementors provide the PRF (the key stays where it is kept) and the
/// version-1 opening; sealing and opening are the same for every key store.
pub trait Sealer: Send + Sync {
    /// HMAC-SHA-256 under the sealer's PRF key (in the token, or derived from the key file).
    fn prf(&self, input: &[u8]) -> [u8; 32];
    /// Decrypts a version-1 value (AES-256-GCM under the long-lived key, random nonce).
    fn open_v1(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>>;
    /// A name for logs ("software key file", "PKCS#11 token X").
    fn describe(&self) -> String;

    /// Encrypts (version 2: under a key of this value's own).
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut salt = [0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .expect("system randomness");
        let key = value_key(self, &salt, aad);
        let mut buf = plaintext.to_vec();
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(aad),
                &mut buf,
            )
            .expect("small message");
        let mut out = Vec::with_capacity(1 + SALT_LEN + buf.len() + 16);
        out.push(SEALED_V2);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        zeroize::Zeroize::zeroize(&mut buf);
        out
    }

    /// Decrypts; `None` when the ciphertext or its context was altered.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        open_v2(self, aad, sealed).or_else(|| self.open_v1(aad, sealed))
    }
}

/// The key of one version-2 value: HKDF-Expand(PRK = the sealer's PRF key, info = label ‖ salt ‖
/// aad, 32 bytes), i.e. one HMAC block computed where the PRF key lives.
fn value_key<S: Sealer + ?Sized>(sealer: &S, salt: &[u8], aad: &[u8]) -> LessSafeKey {
    let info = [VALUE_KEY_LABEL, salt, aad, &[1u8]].concat();
    let key = zeroize::Zeroizing::new(sealer.prf(&info));
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.as_slice()).expect("32 bytes"))
}

fn open_v2<S: Sealer + ?Sized>(sealer: &S, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let rest = sealed.strip_prefix(&[SEALED_V2])?;
    if rest.len() < SALT_LEN + 16 {
        return None;
    }
    let (salt, ciphertext) = rest.split_at(SALT_LEN);
    open_with(&value_key(sealer, salt, aad), [0; 12], aad, ciphertext)
}

/// AES-256-GCM decryption of `ciphertext ‖ tag`; `None` when it or its context was altered.
fn open_with(key: &LessSafeKey, nonce: [u8; 12], aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    let mut buf = ciphertext.to_vec();
    let n = key
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

/// AES-256-GCM under a key kept in a file (mode 0600).
pub struct SoftwareSealer {
    /// The long-lived AES-256-GCM key (version-1 values only).
    key: LessSafeKey,
    /// The PRF key, derived from the file's key (HKDF-Extract under its own label).
    prf_key: ring::hmac::Key,
    path: String,
}

/// The HKDF-Extract salt that derives the software sealer's PRF key from its key file.
const SOFTWARE_PRF_LABEL: &[u8] = b"sealback vault 2026-12-02 software sealer prf key";

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
        let prf_key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SOFTWARE_PRF_LABEL),
                &key,
            )
            .as_ref(),
        );
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32 bytes")),
            prf_key,
            path: path.display().to_string(),
        })
    }
}

impl SoftwareSealer {
    /// Seals in the old version-1 form. Nothing in the vault writes it any more; it exists so
    /// that tests can make the values an older vault left behind.
    pub fn seal_v1(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
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
}

impl Sealer for SoftwareSealer {
    fn prf(&self, input: &[u8]) -> [u8; 32] {
        ring::hmac::sign(&self.prf_key, input)
            .as_ref()
            .try_into()
            .expect("32 bytes")
    }

    fn open_v1(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 28 {
            return None;
        }
        let nonce: [u8; 12] = sealed[..12].try_into().ok()?;
        open_with(&self.key, nonce, aad, &sealed[12..])
    }

    fn describe(&self) -> String {
        format!(
            "software key file {} (weaker than an HSM: see docs)",
            self.path
        )
    }
}

/// Keys inside a PKCS#11 token (an HSM; SoftHSM2 in tests), generated in the token as
/// sensitive and non-extractable: an HMAC-SHA-256 key whose PRF derives every sealed value's
/// own key and the counters' tags (one token call per seal, open or tag), and the AES-256 key
/// of version-1 values (read only).
pub struct Pkcs11Sealer {
    session: std::sync::Mutex<cryptoki::session::Session>,
    key: cryptoki::object::ObjectHandle,
    prf_key: cryptoki::object::ObjectHandle,
    token: String,
    // Keeps the module loaded for as long as the session lives.
    _context: cryptoki::context::Pkcs11,
}

/// The label of the vault's AES key (version-1 values) in the token.
pub const PKCS11_KEY_LABEL: &str = "sealback-vault-record-key";

/// The label of the vault's HMAC-SHA-256 PRF key in the token.
pub const PKCS11_PRF_KEY_LABEL: &str = "sealback-vault-prf-key";

impl Pkcs11Sealer {
    /// Opens the token labelled `token_label` through `module`, logs in with `pin`, and finds
    /// (or, the first time, generates) the vault's key.
    pub fn open(module: &Path, token_label: &str, pin: &str) -> Result<Self, String> {
        use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
        use cryptoki::mechanism::Mechanism;
        use cryptoki::object::{Attribute, KeyType};
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
        let key = find_or_generate(
            &session,
            PKCS11_KEY_LABEL,
            KeyType::AES,
            &Mechanism::AesKeyGen,
            &[Attribute::Encrypt(true), Attribute::Decrypt(true)],
        )?;
        let prf_key = find_or_generate(
            &session,
            PKCS11_PRF_KEY_LABEL,
            KeyType::GENERIC_SECRET,
            &Mechanism::GenericSecretKeyGen,
            &[Attribute::Sign(true), Attribute::Verify(true)],
        )?;
        Ok(Self {
            session: std::sync::Mutex::new(session),
            key,
            prf_key,
            token: token_label.to_string(),
            _context: context,
        })
    }
}

/// The token's 32-byte secret key labelled `label`, generated (sensitive, non-extractable, with
/// the `usage` attributes) the first time.
fn find_or_generate(
    session: &cryptoki::session::Session,
    label: &str,
    key_type: cryptoki::object::KeyType,
    generate: &cryptoki::mechanism::Mechanism,
    usage: &[cryptoki::object::Attribute],
) -> Result<cryptoki::object::ObjectHandle, String> {
    use cryptoki::object::{Attribute, ObjectClass};
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let found = session.find_objects(&template).map_err(|e| e.to_string())?;
    if let Some(key) = found.first() {
        return Ok(*key);
    }
    let mut attributes = vec![
        Attribute::Token(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::ValueLen(32.into()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    attributes.extend_from_slice(usage);
    session
        .generate_key(generate, &attributes)
        .map_err(|e| format!("cannot generate the vault key {label:?} in the token: {e}"))
}

impl Sealer for Pkcs11Sealer {
    fn prf(&self, input: &[u8]) -> [u8; 32] {
        let session = self.session.lock().expect("token session");
        session
            .sign(
                &cryptoki::mechanism::Mechanism::Sha256Hmac,
                self.prf_key,
                input,
            )
            .expect("the token computes HMAC-SHA-256")
            .try_into()
            .expect("32 bytes")
    }

    fn open_v1(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
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
