//! Keyslots: the root key sealed to each enrolled protector (SPEC §6).
//!
//! Like LUKS keyslots, every protector wraps the same root key, so adding or removing one never
//! re-encrypts data. Unlike LUKS, a slot is a public key: the root key is sealed to it with HPKE
//! (RFC 9180, base mode, HKDF-SHA256, AES-256-GCM). That lets a rotation seal a new root key to
//! every remaining protector without any of them being present.
//!
//! The KEM is the slot record's version ([`SlotKem`]): version 2, written for every new slot, is
//! X-Wing (X25519 + ML-KEM-768, hybrid post-quantum), so a keys file copied today does not open
//! to a quantum computer later. Version 1 is DHKEM(X25519, HKDF-SHA256): still opened, sealed
//! to by rotations, and moved to X-Wing the next time its own protector unlocks it (only the
//! protector's secret yields the new key pair): [`Unlocked::reattested`] carries the upgraded
//! slot.
//!
//! Because anyone can seal to a public key, each slot also carries an *attestation*: an
//! HMAC under a key only the protector's secret yields, over the slot and one sealed entry.
//! Unlocking verifies it, so a storage operator cannot slip in a root key of its choosing.
//!
//! An attestation can only be checked by its own slot's owner, so it says nothing about the
//! *set* of slots. Format 2 of the file adds a MAC under a key derived from the current root
//! key over the whole file (see [`crate::vouch`]): unlocking verifies it before returning any
//! key, and rotation and enrolment seal only to slots it covers. A slot it does not cover was
//! not written by a device of this repository; it is reported by name and never sealed to.
//! Format-1 files are read, and upgraded by [`KeySlotFile::upgrade`] after an unlock.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::{Id, RepoId};
use crate::keys::Keyring;
use crate::labels;
use crate::object::{self, Compression, ObjectType};
use crate::protector::{Protector, ProtectorError};
use crate::secret::{ProtectorSecret, RootKey, SubKey};
use crate::vouch;
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::{X25519HkdfSha256, XWing};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Magic bytes of the keyslot file.
pub const MAGIC: &[u8; 6] = b"SBKEYS";
/// Version of the keyslot file layout written: 2 carries the MAC that vouches for the slots.
pub const FILE_VERSION: u8 = 2;
/// The first layout, without a MAC: read, and upgraded on the next unlock.
pub const FILE_VERSION_1: u8 = 1;
/// Format 3: format 2 with the names the person gave slots later ([`SlotLabel`]), covered by
/// the MAC. Written only while a slot has such a name; otherwise the file stays format 2.
pub const FILE_VERSION_LABELS: u8 = 3;
/// Version of the slot record layout written: 2 is an X-Wing slot. Records of a version other
/// than 1 or 2 are kept but not used.
pub const SLOT_VERSION: u8 = 2;
/// The first slot record layout, DHKEM(X25519): read, sealed to, upgraded on its next unlock.
pub const SLOT_VERSION_X25519: u8 = 1;
/// Length of an X-Wing public (encapsulation) key: ML-KEM-768's 1184 bytes ‖ X25519's 32.
pub const XWING_PUBLIC_KEY_LEN: usize = 1216;
/// Length of an X-Wing `enc` (ciphertext): ML-KEM-768's 1088 bytes ‖ X25519's 32.
pub const XWING_ENC_LEN: usize = 1120;
/// Longest slot name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Characters no name may be given and that are escaped wherever a name is shown: controls
/// (terminal escapes, new lines), bidi embeddings, overrides, isolates and marks (they show
/// "enohp tsol" as "lost phone"), and invisible spaces. Any of them lets one key's name pass
/// for another's where the person chooses which key to remove. U+200D (zero-width joiner) is
/// allowed: emoji sequences need it.
pub fn is_deceptive_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{2060}' | '\u{feff}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `name` as people may see it: each character of [`is_deceptive_in_name`] as `\u{..}`.
pub fn printable_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(is_deceptive_in_name) {
        return name.into();
    }
    name.chars()
        .map(|c| {
            if is_deceptive_in_name(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Largest protector parameter block.
pub const MAX_PARAMS_LEN: usize = 64 * 1024;
/// Largest slot record.
const MAX_SLOT_LEN: usize = 128 * 1024;
/// Most slots in one file.
pub const MAX_SLOTS: usize = 256;
/// Length of a sealed root key (32-byte key + 16-byte tag).
const SEALED_LEN: usize = 48;
/// Largest keyring object (4,000 epochs).
const MAX_KEYRING_LEN: usize = 256 * 1024;

/// The KEM a slot's root keys are sealed with; it is the slot record's version (SPEC §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKem {
    /// DHKEM(X25519, HKDF-SHA256): record version 1, not post-quantum.
    X25519,
    /// X-Wing (X25519 + ML-KEM-768, draft-connolly-cfrg-xwing-kem): record version 2.
    XWing,
}

impl SlotKem {
    /// The slot record version that holds a key of this KEM.
    pub fn record_version(self) -> u8 {
        match self {
            Self::X25519 => SLOT_VERSION_X25519,
            Self::XWing => SLOT_VERSION,
        }
    }

    fn from_record_version(version: u8) -> Option<Self> {
        match version {
            SLOT_VERSION_X25519 => Some(Self::X25519),
            SLOT_VERSION => Some(Self::XWing),
            _ => None,
        }
    }

    /// Length of a public key.
    pub fn public_key_len(self) -> usize {
        match self {
            Self::X25519 => 32,
            Self::XWing => XWING_PUBLIC_KEY_LEN,
        }
    }

    /// Length of an encapsulated key (`enc`).
    pub fn enc_len(self) -> usize {
        match self {
            Self::X25519 => 32,
            Self::XWing => XWING_ENC_LEN,
        }
    }

    /// The HKDF info that derives the slot's key pair seed and attestation key.
    fn keys_label(self) -> &'static [u8] {
        match self {
            Self::X25519 => labels::SLOT_KEYS,
            Self::XWing => labels::SLOT_KEYS_XWING,
        }
    }
}

/// The kind of protector a slot belongs to. Unknown values are kept and skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtectorType(pub u16);

impl ProtectorType {
    /// The 64-digit recovery key.
    pub const RECOVERY_KEY: Self = Self(1);
    /// A passkey with the WebAuthn PRF extension.
    pub const PASSKEY_PRF: Self = Self(2);
    /// A password checked by the key vault (OPAQUE).
    pub const VAULT_PASSWORD: Self = Self(3);
    /// A passkey checked by the key vault (no PRF).
    pub const VAULT_PASSKEY: Self = Self(4);
    /// A password checked by t of n vault realms (threshold VOPRF, SPEC §7f).
    pub const THRESHOLD_PASSWORD: Self = Self(5);

    /// A name for people.
    pub fn name(self) -> String {
        match self {
            Self::RECOVERY_KEY => "recovery-key".into(),
            Self::PASSKEY_PRF => "passkey".into(),
            Self::VAULT_PASSWORD => "vault-password".into(),
            Self::VAULT_PASSKEY => "vault-passkey".into(),
            Self::THRESHOLD_PASSWORD => "realm-password".into(),
            Self(other) => format!("unknown-{other}"),
        }
    }
}

/// A random 128-bit slot identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId(pub [u8; 16]);

impl SlotId {
    /// Lower-case hex, as shown by `key list`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl core::fmt::Debug for SlotId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SlotId({})", self.to_hex())
    }
}

/// The root key of one epoch, sealed to a slot's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedRootKey {
    /// Key epoch.
    pub epoch: u32,
    /// HPKE encapsulated key (32 bytes for X25519, 1120 for X-Wing).
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the 32-byte root key.
    pub ciphertext: [u8; SEALED_LEN],
}

/// One protector's keyslot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySlot {
    /// Random id.
    pub id: SlotId,
    /// Protector kind.
    pub protector_type: ProtectorType,
    /// A name the person chose ("Pixel 9", "paper copy").
    pub name: String,
    /// Seconds since the Unix epoch when the slot was made.
    pub created_unix: u64,
    /// Protector-specific parameters (a passkey's credential id, rp id and PRF salt; a vault's
    /// URL and pinned key). Opaque to the core.
    pub params: Vec<u8>,
    /// HKDF salt for this slot's keys.
    pub salt: [u8; 32],
    /// The KEM of the public key (the record version).
    pub kem: SlotKem,
    /// The slot's public key (32 bytes for X25519, 1216 for X-Wing).
    pub public_key: Vec<u8>,
    /// Sealed root keys, at most one per epoch.
    pub sealed: Vec<SealedRootKey>,
    /// The epoch whose sealed entry the attestation covers.
    pub attested_epoch: u32,
    /// HMAC-SHA-256 attestation.
    pub attestation: [u8; 32],
}

/// The MAC part of a format-2 file: the digests of the slot records a device holding the
/// current root key wrote, and the MAC over them, the header and the keyring (SPEC §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vouch {
    /// SHA-256 of each vouched slot record, in file order.
    pub digests: Vec<[u8; 32]>,
    /// HMAC-SHA-256 under the keys-file MAC key of the current epoch.
    pub mac: [u8; 32],
}

/// A name the person gave a slot after it was made (`key rename`). The slot's own `name` is
/// covered by its attestation, which only that slot's protector can redo, so a rename is kept
/// beside the slots and covered by the keys file's MAC instead (format 3, SPEC §6.2): only a
/// device holding the backup key can write one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotLabel {
    /// The slot.
    pub slot: SlotId,
    /// Its name now.
    pub label: String,
}

/// A slot as people see it in a report: id, type and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSummary {
    /// Slot id, hex (for a record of an unknown layout, the bytes where the id would be).
    pub id: String,
    /// Protector type name.
    pub protector: String,
    /// The name it carries.
    pub name: String,
}

impl core::fmt::Display for SlotSummary {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({} {:?})", self.id, self.protector, self.name)
    }
}

fn summaries(slots: &[SlotSummary]) -> String {
    let shown: Vec<String> = slots.iter().map(|s| s.to_string()).collect();
    shown.join(", ")
}

/// The whole keyslot file (`keys` in the repository).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySlotFile {
    /// The repository these slots belong to.
    pub repo_id: RepoId,
    /// The epoch of the current root key.
    pub current_epoch: u32,
    /// Usable slots.
    pub slots: Vec<KeySlot>,
    /// Records of an unknown slot layout version, kept byte for byte.
    pub foreign_slots: Vec<Vec<u8>>,
    /// The sealed keyring holding `K_0 .. K_{current-1}`; empty at epoch 0.
    pub keyring: Vec<u8>,
    /// The MAC of format 2; `None` for a format-1 file (which is encoded as format 1).
    pub vouch: Option<Vouch>,
    /// Names given to slots later, at most one per slot, in slot order (format 3).
    pub labels: Vec<SlotLabel>,
}

/// Why unlocking failed. Every authentication failure of the person is `WrongSecret`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockError {
    /// No slot of this protector type exists.
    #[error("this backup has no {protector} keyslot")]
    NoSlot {
        /// Protector type name.
        protector: String,
    },
    /// Slots of this type exist, but the secret opens none of them.
    #[error("the {protector} does not match any keyslot of this backup")]
    WrongSecret {
        /// Protector type name.
        protector: String,
    },
    /// The protector could not produce a secret.
    #[error(transparent)]
    Protector(#[from] ProtectorError),
    /// The secret matched a slot but the slot's contents failed verification: the keyslot file
    /// was altered.
    #[error("keyslot {slot} failed verification ({detail}): the keyslot file was altered")]
    Tampered {
        /// Slot id.
        slot: String,
        /// What failed.
        detail: &'static str,
    },
    /// The keys file as a whole failed verification under the root key that opened.
    #[error("the keys file failed verification ({detail}): it was altered or belongs to another state of the backup")]
    KeysFile {
        /// What failed.
        detail: &'static str,
    },
    /// Slots that the keys file's MAC does not cover: written by someone who does not hold the
    /// root key (whoever can write to the storage), not by a device of this backup.
    #[error("keyslot(s) {} are in the keys file but not vouched for by it: they were added or changed by someone with write access to the storage, not by one of your devices. Nothing was sealed to them", summaries(.slots))]
    Unvouched {
        /// The slots.
        slots: Vec<SlotSummary>,
    },
}

/// Why a change to the keyslot file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// The file does not verify under the keys in hand, or holds slots it does not vouch for.
    #[error(transparent)]
    Unverified(#[from] UnlockError),
    /// The change breaks a limit of the format.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// What a successful unlock yields.
#[derive(Debug)]
pub struct Unlocked {
    /// The repository's keys.
    pub keyring: Keyring,
    /// The slot that opened.
    pub slot_id: SlotId,
    /// When the slot was attested at an older epoch (a rotation happened since this protector
    /// was last used): the same slot re-attested at the current epoch, with its older entries
    /// dropped. From [`KeySlotFile::unlock_and_upgrade`], also for any X25519 slot: the slot
    /// moved to X-Wing (SPEC §6.5a). The caller should write it back with
    /// [`KeySlotFile::replace_slot`].
    pub reattested: Option<KeySlot>,
    /// Slots the file's MAC does not cover (format 2). The caller must not go on as if the
    /// file were sound: report them (SPEC §6.4).
    pub unvouched: Vec<SlotSummary>,
    /// The file is of format 1: nothing vouches for its slots yet. The caller should
    /// [`KeySlotFile::upgrade`] it and write it back.
    pub needs_upgrade: bool,
}

/// A slot's private key, of the slot's KEM.
enum SlotPrivateKey {
    X25519(<X25519HkdfSha256 as Kem>::PrivateKey),
    // Boxed: X-Wing's decapsulation key carries its expanded ML-KEM key (about 1.6 KiB).
    XWing(Box<<XWing as Kem>::PrivateKey>),
}

struct SlotKeys {
    private: SlotPrivateKey,
    public: Vec<u8>,
    mac: SubKey,
}

/// HKDF-SHA256(salt, secret, the KEM's label) → 32-byte key pair seed ‖ 32-byte MAC key; the
/// seed goes through the KEM's own DeriveKeyPair (RFC 9180 §7.1.3, or X-Wing's).
fn slot_keys(kem: SlotKem, secret: &ProtectorSecret, salt: &[u8; 32]) -> SlotKeys {
    let mut okm = zeroize::Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::new(Some(salt), secret.expose_secret())
        .expand(kem.keys_label(), &mut okm[..])
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    let (private, public) = match kem {
        SlotKem::X25519 => {
            let (sk, pk) = X25519HkdfSha256::derive_keypair(&okm[..32]);
            (SlotPrivateKey::X25519(sk), pk.to_bytes().to_vec())
        }
        SlotKem::XWing => {
            let (sk, pk) = XWing::derive_keypair(&okm[..32]);
            (SlotPrivateKey::XWing(Box::new(sk)), pk.to_bytes().to_vec())
        }
    };
    let mac = SubKey::from_slice(&okm[32..]).expect("32 bytes");
    SlotKeys {
        private,
        public,
        mac,
    }
}

/// The X25519 public key a protector secret yields for a slot salt (for test vectors).
pub fn slot_public_key(secret: &ProtectorSecret, salt: &[u8; 32]) -> [u8; 32] {
    slot_keys(SlotKem::X25519, secret, salt)
        .public
        .try_into()
        .expect("an X25519 public key is 32 bytes")
}

/// The public key of `kem` a protector secret yields for a slot salt (for test vectors).
pub fn slot_public_key_of(kem: SlotKem, secret: &ProtectorSecret, salt: &[u8; 32]) -> Vec<u8> {
    slot_keys(kem, secret, salt).public
}

fn hpke_info(repo: &RepoId, slot: &SlotId, epoch: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(labels::SLOT_ROOT_KEY)
        .bytes(&repo.0)
        .bytes(&slot.0)
        .u32(epoch);
    w.into_inner()
}

fn seal_root(
    repo: &RepoId,
    slot: &SlotId,
    kem: SlotKem,
    public_key: &[u8],
    epoch: u32,
    root: &RootKey,
    rng: &mut impl CryptoRng,
) -> Result<SealedRootKey, hpke::HpkeError> {
    let info = hpke_info(repo, slot, epoch);
    let (enc, ct) = match kem {
        SlotKem::X25519 => seal_to::<X25519HkdfSha256>(public_key, &info, root, rng)?,
        SlotKem::XWing => seal_to::<XWing>(public_key, &info, root, rng)?,
    };
    Ok(SealedRootKey {
        epoch,
        enc,
        ciphertext: ct.try_into().expect("48 bytes"),
    })
}

/// HPKE SealBase of the root key to `public_key` under KEM `K`: (enc, ciphertext).
fn seal_to<K: Kem>(
    public_key: &[u8],
    info: &[u8],
    root: &RootKey,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Vec<u8>), hpke::HpkeError> {
    let pk = K::PublicKey::from_bytes(public_key)?;
    let (enc, ct) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, K>(
        &OpModeS::Base,
        &pk,
        info,
        root.expose_secret(),
        &[],
        rng,
    )?;
    Ok((enc.to_bytes().to_vec(), ct))
}

/// HPKE OpenBase of a sealed root key under KEM `K`.
fn open_from<K: Kem>(
    private: &K::PrivateKey,
    enc: &[u8],
    info: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, hpke::HpkeError> {
    let enc = K::EncappedKey::from_bytes(enc)?;
    hpke::single_shot_open::<AesGcm256, HkdfSha256, K>(
        &OpModeR::Base,
        private,
        &enc,
        info,
        ciphertext,
        &[],
    )
}

/// Refuses a public key that is not a usable X25519 key: one of low order (the all-zero key
/// among them) makes every Diffie-Hellman output zero, which HPKE rejects. The check is HPKE's
/// own: an encapsulation to the key, with a fixed ephemeral key that is thrown away.
fn check_x25519_public_key(public_key: &[u8]) -> Result<(), FormatError> {
    let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(public_key).map_err(invalid_key)?;
    X25519HkdfSha256::encap_with_rng(&pk, None, &mut ChaCha20Rng::from_seed([0; 32]))
        .map_err(invalid_key)?;
    Ok(())
}

fn invalid_key(_: hpke::HpkeError) -> FormatError {
    FormatError::invalid("keyslot", "invalid public key (low order or malformed)")
}

/// Refuses a public key that is not a usable key of `kem`. An X-Wing key is ML-KEM-768's
/// encapsulation key ‖ an X25519 key: the first must pass FIPS 203's modulus check (done by
/// the `ml-kem` crate when the key is parsed), the second the X25519 check above. X-Wing
/// itself does not refuse a low-order X25519 part; a slot with one would rest on ML-KEM alone.
fn check_public_key(kem: SlotKem, public_key: &[u8]) -> Result<(), FormatError> {
    match kem {
        SlotKem::X25519 => check_x25519_public_key(public_key),
        SlotKem::XWing => {
            <XWing as Kem>::PublicKey::from_bytes(public_key).map_err(invalid_key)?;
            let x25519_part = &public_key[XWING_PUBLIC_KEY_LEN - 32..];
            check_x25519_public_key(x25519_part)
        }
    }
}

fn attestation(repo: &RepoId, slot: &KeySlot, entry: &SealedRootKey, mac_key: &SubKey) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(mac_key.expose_secret())
        .expect("HMAC takes any key length");
    let mut w = Writer::new();
    w.bytes(labels::SLOT_ATTESTATION)
        .bytes(&repo.0)
        .bytes(&slot.id.0)
        .u16(slot.protector_type.0)
        .bytes_u16(slot.name.as_bytes())
        .u64(slot.created_unix)
        .bytes_u32(&slot.params)
        .bytes(&slot.salt)
        .bytes(&slot.public_key)
        .u32(entry.epoch)
        .bytes(&entry.enc)
        .bytes(&entry.ciphertext);
    m.update(&w.into_inner());
    m.finalize().into_bytes().into()
}

/// What a new slot should hold, apart from its keys.
pub struct SlotTemplate {
    /// Protector kind.
    pub protector_type: ProtectorType,
    /// A name for people (at most 256 bytes).
    pub name: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
    /// Protector parameters.
    pub params: Vec<u8>,
}

impl KeySlot {
    /// Makes a slot that seals the keyring's current root key to `secret`.
    pub fn enroll(
        keyring: &Keyring,
        template: SlotTemplate,
        secret: &ProtectorSecret,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, FormatError> {
        let mut salt = [0u8; 32];
        rng.fill_bytes(&mut salt);
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        Self::enroll_with(keyring, template, secret, SlotId(id), salt, rng)
    }

    /// [`KeySlot::enroll`] with explicit id and salt: for test vectors.
    pub fn enroll_with(
        keyring: &Keyring,
        template: SlotTemplate,
        secret: &ProtectorSecret,
        id: SlotId,
        salt: [u8; 32],
        rng: &mut impl CryptoRng,
    ) -> Result<Self, FormatError> {
        Self::unsealed(template, id, salt)?.seal_and_attest(SlotKem::XWing, keyring, secret, rng)
    }

    /// [`KeySlot::enroll_with`] for the version-1 layout, DHKEM(X25519), which is no longer
    /// written for new slots: for test vectors and tests of older keys files.
    pub fn enroll_x25519_with(
        keyring: &Keyring,
        template: SlotTemplate,
        secret: &ProtectorSecret,
        id: SlotId,
        salt: [u8; 32],
        rng: &mut impl CryptoRng,
    ) -> Result<Self, FormatError> {
        Self::unsealed(template, id, salt)?.seal_and_attest(SlotKem::X25519, keyring, secret, rng)
    }

    /// A slot with the template's fields and no key yet; refuses a template over the limits.
    fn unsealed(template: SlotTemplate, id: SlotId, salt: [u8; 32]) -> Result<Self, FormatError> {
        if template.name.len() > MAX_NAME_LEN {
            return Err(FormatError::invalid(
                "keyslot",
                format!("a slot name is at most {MAX_NAME_LEN} bytes"),
            ));
        }
        if template.params.len() > MAX_PARAMS_LEN {
            return Err(FormatError::invalid(
                "keyslot",
                "protector parameters too large",
            ));
        }
        Ok(KeySlot {
            id,
            protector_type: template.protector_type,
            name: template.name,
            created_unix: template.created_unix,
            params: template.params,
            salt,
            kem: SlotKem::XWing,
            public_key: vec![],
            sealed: vec![],
            attested_epoch: 0,
            attestation: [0; 32],
        })
    }

    /// Makes this slot a `kem` slot under keys derived from `secret` and the slot's salt, with
    /// the keyring's current root key sealed to it and attested as its only entry. Used to
    /// enrol and to move an X25519 slot to X-Wing.
    fn seal_and_attest(
        mut self,
        kem: SlotKem,
        keyring: &Keyring,
        secret: &ProtectorSecret,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, FormatError> {
        let keys = slot_keys(kem, secret, &self.salt);
        let epoch = keyring.current_epoch();
        let repo = keyring.repo_id();
        let root = keyring.current_root();
        let entry = seal_root(&repo, &self.id, kem, &keys.public, epoch, root, rng)
            .map_err(|_| FormatError::invalid("keyslot", "the derived public key is unusable"))?;
        self.kem = kem;
        self.public_key = keys.public;
        self.attested_epoch = epoch;
        self.attestation = attestation(&repo, &self, &entry, &keys.mac);
        self.sealed = vec![entry];
        Ok(self)
    }

    fn entry(&self, epoch: u32) -> Option<&SealedRootKey> {
        self.sealed.iter().find(|e| e.epoch == epoch)
    }

    fn open_entry(
        &self,
        repo: &RepoId,
        keys: &SlotKeys,
        entry: &SealedRootKey,
    ) -> Result<RootKey, UnlockError> {
        let tampered = |detail| UnlockError::Tampered {
            slot: self.id.to_hex(),
            detail,
        };
        let info = hpke_info(repo, &self.id, entry.epoch);
        let opened = match &keys.private {
            SlotPrivateKey::X25519(sk) => {
                open_from::<X25519HkdfSha256>(sk, &entry.enc, &info, &entry.ciphertext)
            }
            SlotPrivateKey::XWing(sk) => {
                open_from::<XWing>(sk, &entry.enc, &info, &entry.ciphertext)
            }
        };
        // Invalid `enc` lengths are refused when parsed; X-Wing decapsulation never fails
        // (implicit rejection), so a damaged `enc` shows as a ciphertext that does not open.
        let plain =
            zeroize::Zeroizing::new(opened.map_err(|_| tampered("sealed root key does not open"))?);
        RootKey::from_slice(&plain).ok_or_else(|| tampered("sealed root key has the wrong length"))
    }
}

impl KeySlotFile {
    /// A keyslot file for a new repository at epoch 0 with no slots yet, vouched for by the
    /// genesis root key of `keyring`.
    ///
    /// # Panics
    /// If `keyring` is past epoch 0 (a new repository has no keyring object).
    pub fn new(keyring: &Keyring) -> Self {
        assert_eq!(
            keyring.current_epoch(),
            0,
            "a new repository starts at epoch 0"
        );
        let mut file = Self {
            repo_id: keyring.repo_id(),
            current_epoch: 0,
            slots: vec![],
            foreign_slots: vec![],
            keyring: vec![],
            vouch: None,
            labels: vec![],
        };
        file.revouch(keyring);
        file
    }

    /// The format this file is written in: 1 until something vouches for it, 3 while a slot
    /// has a label, 2 otherwise.
    pub fn format_version(&self) -> u8 {
        match (&self.vouch, self.labels.is_empty()) {
            (None, _) => FILE_VERSION_1,
            (Some(_), true) => FILE_VERSION,
            (Some(_), false) => FILE_VERSION_LABELS,
        }
    }

    /// The name people see for `slot`: its label if it was renamed, else the name it was
    /// made with; characters that could make it pass for another name escaped
    /// ([`printable_name`]).
    pub fn display_name<'a>(&'a self, slot: &'a KeySlot) -> std::borrow::Cow<'a, str> {
        printable_name(
            self.labels
                .iter()
                .find(|l| l.slot == slot.id)
                .map_or(slot.name.as_str(), |l| l.label.as_str()),
        )
    }

    /// Renames a slot: sets its label (a label equal to the name it was made with is dropped).
    /// The file must verify under `keyring` and vouch for every slot, like any change.
    pub fn rename(
        &mut self,
        keyring: &Keyring,
        id: SlotId,
        label: &str,
    ) -> Result<(), ChangeError> {
        self.require_vouched(keyring, None)?;
        let label = label.trim();
        if label.is_empty() || label.len() > MAX_NAME_LEN {
            return Err(FormatError::invalid(
                "key name",
                format!("a name has 1 to {MAX_NAME_LEN} bytes"),
            )
            .into());
        }
        if label.chars().any(is_deceptive_in_name) {
            return Err(FormatError::invalid(
                "key name",
                "a name cannot hold control characters, text direction marks or invisible spaces; type it again with letters, digits and punctuation",
            )
            .into());
        }
        let Some(slot) = self.slots.iter().find(|s| s.id == id) else {
            return Err(FormatError::invalid("key name", "no such key").into());
        };
        let original = slot.name == label;
        self.labels.retain(|l| l.slot != id);
        if !original {
            self.labels.push(SlotLabel {
                slot: id,
                label: label.to_string(),
            });
        }
        self.sort_labels();
        self.revouch(keyring);
        Ok(())
    }

    /// Labels in slot order, and none for a slot that is gone.
    fn sort_labels(&mut self) {
        let order = |id: &SlotId| self.slots.iter().position(|s| s.id == *id);
        let mut labels: Vec<(usize, SlotLabel)> = self
            .labels
            .drain(..)
            .filter_map(|l| order(&l.slot).map(|i| (i, l)))
            .collect();
        labels.sort_by_key(|(i, _)| *i);
        self.labels = labels.into_iter().map(|(_, l)| l).collect();
    }

    /// The labels as the MAC and the file carry them (format 3; empty otherwise).
    fn encoded_labels(&self) -> Vec<u8> {
        let mut w = Writer::new();
        if !self.labels.is_empty() {
            w.u16(self.labels.len() as u16);
            for l in &self.labels {
                w.bytes(&l.slot.0).bytes_u16(l.label.as_bytes());
            }
        }
        w.into_inner()
    }

    /// Every slot record as encoded, in file order, with what people see of it.
    fn records(&self) -> Vec<(Vec<u8>, SlotSummary)> {
        let known = self.slots.iter().map(|s| {
            let summary = SlotSummary {
                id: s.id.to_hex(),
                protector: s.protector_type.name(),
                name: self.display_name(s).to_string(),
            };
            (encode_slot(s), summary)
        });
        let foreign = self.foreign_slots.iter().map(|raw| {
            let summary = SlotSummary {
                id: hex::encode(raw.get(1..17).unwrap_or(&raw[..])),
                protector: format!(
                    "record of unknown layout {}",
                    raw.first().copied().unwrap_or(0)
                ),
                name: String::new(),
            };
            (raw.clone(), summary)
        });
        known.chain(foreign).collect()
    }

    /// Vouches for every slot now in the file under `keyring`'s current root key. Only callers
    /// that verified the file first (or made every slot themselves) may do this.
    fn revouch(&mut self, keyring: &Keyring) {
        debug_assert_eq!(keyring.current_epoch(), self.current_epoch);
        let digests: Vec<[u8; 32]> = self
            .records()
            .iter()
            .map(|(raw, _)| vouch::record_digest(raw))
            .collect();
        let labels = self.encoded_labels();
        let mac = vouch::mac(
            keyring.current_root(),
            &vouch::Covered {
                version: if labels.is_empty() {
                    FILE_VERSION
                } else {
                    FILE_VERSION_LABELS
                },
                repo_id: &self.repo_id,
                epoch: self.current_epoch,
                digests: &digests,
                keyring: &self.keyring,
                labels: &labels,
            },
        );
        self.vouch = Some(Vouch { digests, mac });
    }

    /// Verifies the MAC under `keyring` and returns the slots it does not cover; `None` for a
    /// format-1 file, which has no MAC. A MAC that does not verify, or a vouched slot that is
    /// gone, is an error: the file was altered or is from another epoch.
    pub fn unvouched(&self, keyring: &Keyring) -> Result<Option<Vec<SlotSummary>>, UnlockError> {
        let Some(v) = &self.vouch else {
            return Ok(None);
        };
        let failed = |detail| UnlockError::KeysFile { detail };
        if keyring.repo_id() != self.repo_id || keyring.current_epoch() != self.current_epoch {
            return Err(failed(
                "the keys in hand are of another repository or epoch",
            ));
        }
        let labels = self.encoded_labels();
        let covered = vouch::Covered {
            version: self.format_version(),
            repo_id: &self.repo_id,
            epoch: self.current_epoch,
            digests: &v.digests,
            keyring: &self.keyring,
            labels: &labels,
        };
        if !vouch::verify(keyring.current_root(), &covered, &v.mac) {
            return Err(failed("its MAC does not verify"));
        }
        let records = self.records();
        let digests: Vec<[u8; 32]> = records
            .iter()
            .map(|(raw, _)| vouch::record_digest(raw))
            .collect();
        if v.digests.iter().any(|d| !digests.contains(d)) {
            return Err(failed("a slot it vouches for is missing"));
        }
        Ok(Some(
            records
                .into_iter()
                .zip(digests)
                .filter(|(_, d)| !v.digests.contains(d))
                .map(|((_, summary), _)| summary)
                .collect(),
        ))
    }

    /// Fails unless the file verifies under `keyring` and vouches for every slot (except
    /// `allow`, the one about to be removed). Every change calls this before sealing anything.
    fn require_vouched(&self, keyring: &Keyring, allow: Option<SlotId>) -> Result<(), UnlockError> {
        let unvouched = self.unvouched(keyring)?.ok_or(UnlockError::KeysFile {
            detail: "a format-1 file must be upgraded (by an unlock) before it is changed",
        })?;
        // Only a slot this version knows can be removed; a record of an unknown layout that
        // merely carries the id is never let through (it would be vouched for after).
        let allowed = allow
            .filter(|id| self.slots.iter().any(|s| s.id == *id))
            .map(|id| id.to_hex());
        let unvouched: Vec<_> = unvouched
            .into_iter()
            .filter(|s| Some(&s.id) != allowed.as_ref())
            .collect();
        if unvouched.is_empty() {
            Ok(())
        } else {
            Err(UnlockError::Unvouched { slots: unvouched })
        }
    }

    /// Upgrades a format-1 file to format 2: vouches for every slot it holds now under the
    /// keyring an unlock of this file returned. Returns the slots it vouched for (for the
    /// person to review), or `None` when the file already is of format 2.
    pub fn upgrade(&mut self, keyring: &Keyring) -> Option<Vec<SlotSummary>> {
        if self.vouch.is_some() {
            return None;
        }
        let vouched = self.records().into_iter().map(|(_, s)| s).collect();
        self.revouch(keyring);
        Some(vouched)
    }

    /// Tries every slot of the protector's type and returns the keyring of the first that
    /// opens and verifies, once the file's MAC (format 2) verified under its current root key;
    /// slots the MAC does not cover are returned in [`Unlocked::unvouched`].
    ///
    /// Without a random number generator an X25519 slot cannot be moved to X-Wing: it is only
    /// re-attested when a rotation happened since. [`KeySlotFile::unlock_and_upgrade`] does both.
    pub fn unlock(&self, protector: &mut dyn Protector) -> Result<Unlocked, UnlockError> {
        self.unlock_inner(protector, None::<&mut ChaCha20Rng>)
    }

    /// [`KeySlotFile::unlock`], and when the slot that opened is an X25519 slot, the same slot
    /// moved to X-Wing (new key pair from the same secret and salt, the current root key sealed
    /// to it, attested) in [`Unlocked::reattested`]: only now, with the protector's secret in
    /// hand, can that be done (SPEC §6.5a).
    pub fn unlock_and_upgrade(
        &self,
        protector: &mut dyn Protector,
        rng: &mut impl CryptoRng,
    ) -> Result<Unlocked, UnlockError> {
        self.unlock_inner(protector, Some(rng))
    }

    fn unlock_inner<R: CryptoRng>(
        &self,
        protector: &mut dyn Protector,
        rng: Option<&mut R>,
    ) -> Result<Unlocked, UnlockError> {
        let ty = protector.protector_type();
        let mut saw_slot = false;
        for slot in self.slots.iter().filter(|s| s.protector_type == ty) {
            saw_slot = true;
            let Some(secret) = protector.secret_for(slot)? else {
                continue;
            };
            let keys = slot_keys(slot.kem, &secret, &slot.salt);
            if !bool::from(keys.public.as_slice().ct_eq(&slot.public_key)) {
                continue;
            }
            let keyring = self.open_slot(slot, &keys)?;
            // Before anything from the file is used: does the root key vouch for it?
            let unvouched = self.unvouched(&keyring)?;
            let reattested = match rng {
                Some(rng) if slot.kem == SlotKem::X25519 => {
                    Some(self.upgraded(slot, &keyring, &secret, rng)?)
                }
                _ => (slot.attested_epoch != self.current_epoch)
                    .then(|| self.reattested(slot, &keys)),
            };
            return Ok(Unlocked {
                keyring,
                slot_id: slot.id,
                reattested,
                needs_upgrade: unvouched.is_none(),
                unvouched: unvouched.unwrap_or_default(),
            });
        }
        Err(if saw_slot {
            UnlockError::WrongSecret {
                protector: ty.name(),
            }
        } else {
            UnlockError::NoSlot {
                protector: ty.name(),
            }
        })
    }

    /// `slot` (which opened and verified) re-attested at the current epoch, older entries gone.
    fn reattested(&self, slot: &KeySlot, keys: &SlotKeys) -> KeySlot {
        let mut updated = slot.clone();
        let entry = slot
            .entry(self.current_epoch)
            .cloned()
            .expect("open_slot checked the current entry");
        updated.attested_epoch = self.current_epoch;
        updated.attestation = attestation(&self.repo_id, &updated, &entry, &keys.mac);
        updated.sealed = vec![entry];
        updated
    }

    /// `slot` (an X25519 slot that opened and verified) moved to X-Wing: same id, type, name,
    /// parameters and salt; the X-Wing key pair of the same secret; the current root key sealed
    /// to it and attested.
    fn upgraded(
        &self,
        slot: &KeySlot,
        keyring: &Keyring,
        secret: &ProtectorSecret,
        rng: &mut impl CryptoRng,
    ) -> Result<KeySlot, UnlockError> {
        slot.clone()
            .seal_and_attest(SlotKem::XWing, keyring, secret, rng)
            .map_err(|_| UnlockError::Tampered {
                slot: slot.id.to_hex(),
                detail: "its X-Wing key pair is unusable",
            })
    }

    fn open_slot(&self, slot: &KeySlot, keys: &SlotKeys) -> Result<Keyring, UnlockError> {
        let tampered = |detail| UnlockError::Tampered {
            slot: slot.id.to_hex(),
            detail,
        };
        let attested = slot
            .entry(slot.attested_epoch)
            .ok_or_else(|| tampered("attested entry missing"))?;
        let expected = attestation(&self.repo_id, slot, attested, &keys.mac);
        if !bool::from(expected.ct_eq(&slot.attestation)) {
            return Err(tampered("attestation does not verify"));
        }
        let attested_root = slot.open_entry(&self.repo_id, keys, attested)?;
        if slot.attested_epoch == self.current_epoch {
            if self.current_epoch != 0 {
                // The keyring of older epochs must still open under the current key.
                let older = self.open_keyring(&attested_root, slot)?;
                let mut roots = older;
                roots.push(attested_root);
                return Ok(Keyring::new(self.repo_id, roots));
            }
            return Ok(Keyring::new(self.repo_id, vec![attested_root]));
        }
        if slot.attested_epoch > self.current_epoch {
            return Err(tampered("attested epoch is newer than the file's epoch"));
        }
        // A rotation happened since this protector last attested: accept the new root key only
        // if its keyring holds the root key this protector attested.
        let current = slot
            .entry(self.current_epoch)
            .ok_or_else(|| tampered("no entry for the current epoch"))?;
        let current_root = slot.open_entry(&self.repo_id, keys, current)?;
        let mut roots = self.open_keyring(&current_root, slot)?;
        let matches = roots
            .get(slot.attested_epoch as usize)
            .map(|k| bool::from(k.ct_eq(&attested_root)))
            .unwrap_or(false);
        if !matches {
            return Err(tampered(
                "the rotated root key does not carry this protector's attested key",
            ));
        }
        roots.push(current_root);
        Ok(Keyring::new(self.repo_id, roots))
    }

    fn keyring_id(&self) -> Id {
        let mut id = [0u8; 32];
        id[..16].copy_from_slice(&self.repo_id.0);
        id[16..20].copy_from_slice(&self.current_epoch.to_be_bytes());
        Id(id)
    }

    fn open_keyring(&self, current: &RootKey, slot: &KeySlot) -> Result<Vec<RootKey>, UnlockError> {
        let tampered = |detail| UnlockError::Tampered {
            slot: slot.id.to_hex(),
            detail,
        };
        let probe = Keyring::new(self.repo_id, vec![current.duplicate()]);
        let key = probe
            .object_key(ObjectType::Keyring, 0)
            .expect("epoch 0 of a one-key keyring");
        let body = zeroize::Zeroizing::new(
            object::open_with_key(
                key,
                ObjectType::Keyring,
                &self.keyring_id(),
                &self.keyring,
                MAX_KEYRING_LEN,
            )
            .map_err(|_| tampered("keyring does not open"))?,
        );
        let mut r = Reader::new(&body, "keyring");
        let parsed = (|| -> Result<Vec<RootKey>, FormatError> {
            r.version_u8(1)?;
            let n = r.u32()?;
            if n != self.current_epoch {
                return Err(FormatError::invalid("keyring", "epoch count mismatch"));
            }
            let n = r.count(n.into(), 32)?;
            let mut roots = Vec::with_capacity(n);
            for _ in 0..n {
                roots.push(RootKey::from_slice(r.bytes(32)?).expect("32 bytes"));
            }
            Ok(roots)
        })()
        .map_err(|_| tampered("keyring is malformed"))?;
        r.finish().map_err(|_| tampered("keyring is malformed"))?;
        Ok(parsed)
    }

    /// Adds a slot enrolled under `keyring`. Fails if the file does not verify under it, holds
    /// a slot it does not vouch for, or is full.
    pub fn add(&mut self, keyring: &Keyring, slot: KeySlot) -> Result<(), ChangeError> {
        self.require_vouched(keyring, None)?;
        if self.slots.len() + self.foreign_slots.len() >= MAX_SLOTS {
            return Err(FormatError::invalid(
                "keyslot file",
                format!("at most {MAX_SLOTS} keyslots"),
            )
            .into());
        }
        self.slots.push(slot);
        self.revouch(keyring);
        Ok(())
    }

    /// Replaces the root key: seals a fresh `K_{e+1}` to every slot except `remove`, drops
    /// `remove`, and stores `K_0 ..= K_e` in a keyring sealed under `K_{e+1}`. Needs only the
    /// unlocked keyring, not the other protectors. Returns the new keyring.
    ///
    /// Slots of an unknown layout cannot be resealed and are dropped; their count is returned.
    ///
    /// The file must verify under `keyring` and vouch for every slot but `remove`: the new root
    /// key is sealed only to slots a device of this repository wrote. On an error the file is
    /// unchanged.
    pub fn rotate(
        &mut self,
        keyring: &Keyring,
        remove: Option<SlotId>,
        rng: &mut impl CryptoRng,
    ) -> Result<(Keyring, usize), UnlockError> {
        self.require_vouched(keyring, remove)?;
        let new_epoch = self.current_epoch + 1;
        let new_root = RootKey::random(rng);
        let mut slots = self.slots.clone();
        if let Some(id) = remove {
            slots.retain(|s| s.id != id);
        }
        for slot in &mut slots {
            let entry = seal_root(
                &self.repo_id,
                &slot.id,
                slot.kem,
                &slot.public_key,
                new_epoch,
                &new_root,
                rng,
            )
            .map_err(|_| UnlockError::Tampered {
                slot: slot.id.to_hex(),
                detail: "its public key is unusable",
            })?;
            slot.sealed.retain(|e| e.epoch == slot.attested_epoch);
            slot.sealed.push(entry);
        }
        self.slots = slots;
        self.sort_labels();
        let dropped = self.foreign_slots.len();
        self.foreign_slots.clear();
        self.current_epoch = new_epoch;
        let mut w = Writer::new();
        w.u8(1).u32(new_epoch);
        for k in keyring.roots() {
            w.bytes(k.expose_secret());
        }
        let body = zeroize::Zeroizing::new(w.into_inner());
        let probe = Keyring::new(self.repo_id, vec![new_root.duplicate()]);
        self.keyring = object::seal(
            &probe,
            ObjectType::Keyring,
            &self.keyring_id(),
            &body,
            Compression::None,
            rng,
        )
        .bytes;
        let mut roots: Vec<RootKey> = keyring.roots().iter().map(|k| k.duplicate()).collect();
        roots.push(new_root);
        let rotated = Keyring::new(self.repo_id, roots);
        self.revouch(&rotated);
        Ok((rotated, dropped))
    }

    /// Replaces a slot by its re-attested form from [`Unlocked::reattested`].
    pub fn replace_slot(&mut self, keyring: &Keyring, slot: KeySlot) -> Result<bool, UnlockError> {
        self.require_vouched(keyring, None)?;
        let Some(existing) = self.slots.iter_mut().find(|s| s.id == slot.id) else {
            return Ok(false);
        };
        *existing = slot;
        self.revouch(keyring);
        Ok(true)
    }

    /// Removes a slot; false if there is no such slot. The slot removed may be one the file
    /// does not vouch for (that is how such a slot is cleared); every other must be vouched.
    pub fn remove(&mut self, keyring: &Keyring, id: SlotId) -> Result<bool, UnlockError> {
        self.require_vouched(keyring, Some(id))?;
        let before = self.slots.len();
        self.slots.retain(|s| s.id != id);
        let removed = self.slots.len() != before;
        self.sort_labels();
        self.revouch(keyring);
        Ok(removed)
    }

    /// Encodes the file (SPEC §6.2): format 2 with its MAC, or format 1 when nothing vouches
    /// for it yet.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let version = self.format_version();
        w.bytes(MAGIC)
            .u8(version)
            .bytes(&self.repo_id.0)
            .u32(self.current_epoch)
            .u16((self.slots.len() + self.foreign_slots.len()) as u16);
        for slot in &self.slots {
            w.bytes_u32(&encode_slot(slot));
        }
        for raw in &self.foreign_slots {
            w.bytes_u32(raw);
        }
        w.bytes_u32(&self.keyring);
        if version == FILE_VERSION_LABELS {
            w.bytes(&self.encoded_labels());
        }
        if let Some(v) = &self.vouch {
            w.u16(v.digests.len() as u16);
            for d in &v.digests {
                w.bytes(d);
            }
            w.bytes(&v.mac);
        }
        w.into_inner()
    }

    /// Decodes and validates the file.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, "keyslot file");
        r.magic(MAGIC)?;
        let version = r.u8()?;
        if ![FILE_VERSION_1, FILE_VERSION, FILE_VERSION_LABELS].contains(&version) {
            return Err(FormatError::UnsupportedVersion {
                what: "keyslot file",
                found: version.into(),
                supported: FILE_VERSION_LABELS.into(),
            });
        }
        let repo_id = RepoId(r.array()?);
        let current_epoch = r.u32()?;
        let n = r.u16()? as usize;
        if n > MAX_SLOTS {
            return Err(FormatError::invalid("keyslot file", "too many slots"));
        }
        let n = r.count(n as u64, 4)?;
        let mut slots = Vec::with_capacity(n);
        let mut foreign_slots = Vec::new();
        for _ in 0..n {
            let raw = r.bytes_u32(MAX_SLOT_LEN)?;
            match raw.first().map(|&v| SlotKem::from_record_version(v)) {
                Some(Some(kem)) => slots.push(decode_slot(kem, raw)?),
                Some(None) => foreign_slots.push(raw.to_vec()),
                None => return Err(FormatError::invalid("keyslot file", "empty slot record")),
            }
        }
        refuse_shared_ids(&slots, &foreign_slots)?;
        let keyring = r.bytes_u32(MAX_KEYRING_LEN)?.to_vec();
        let labels = if version == FILE_VERSION_LABELS {
            decode_labels(&mut r, &slots)?
        } else {
            vec![]
        };
        let vouch = (version != FILE_VERSION_1)
            .then(|| decode_vouch(&mut r))
            .transpose()?;
        r.finish()?;
        if (current_epoch == 0) != keyring.is_empty() {
            return Err(FormatError::invalid(
                "keyslot file",
                "a keyring must be present exactly when the epoch is above 0",
            ));
        }
        Ok(Self {
            repo_id,
            current_epoch,
            slots,
            foreign_slots,
            keyring,
            vouch,
            labels,
        })
    }
}

/// Refuses two slot records with one id (a record of an unknown layout has its id where every
/// layout has it, after the version byte). People and every change (removal, re-attestation)
/// name a slot by its id, so a record slipped in under the id of one of the person's keys
/// would make removing it, as the refusal of an unvouched slot advises, remove the person's
/// key instead or as well, and vouch for the intruder.
fn refuse_shared_ids(slots: &[KeySlot], foreign_slots: &[Vec<u8>]) -> Result<(), FormatError> {
    let known = slots.iter().map(|s| s.id.0.as_slice());
    let foreign = foreign_slots.iter().filter_map(|raw| raw.get(1..17));
    let mut seen = std::collections::HashSet::with_capacity(slots.len() + foreign_slots.len());
    match known.chain(foreign).find(|id| !seen.insert(*id)) {
        Some(id) => Err(FormatError::invalid(
            "keyslot file",
            format!(
                "two keys carry the same id {}: the keys file was altered",
                hex::encode(id)
            ),
        )),
        None => Ok(()),
    }
}

/// Format 3's labels: `u16(n ≥ 1) ‖ n × (slot id(16) ‖ bytes16(label))`, each for a slot of the
/// file, in slot order, at most one per slot (so that the file re-encodes to the same bytes).
fn decode_labels(r: &mut Reader<'_>, slots: &[KeySlot]) -> Result<Vec<SlotLabel>, FormatError> {
    let invalid = |why| FormatError::invalid("keyslot file labels", why);
    let n = r.u16()? as usize;
    if n == 0 || n > slots.len() {
        return Err(invalid("a format-3 file has 1 label per renamed slot"));
    }
    let mut labels = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let slot = SlotId(r.array()?);
        let label = r.string_u16(MAX_NAME_LEN)?;
        let position = slots.iter().position(|s| s.id == slot);
        match (position, last) {
            (None, _) => return Err(invalid("a label for a slot that is not in the file")),
            (Some(p), Some(l)) if p <= l => {
                return Err(invalid("labels out of slot order, or two for one slot"))
            }
            _ => {}
        }
        last = position;
        if label.is_empty() {
            return Err(invalid("an empty label"));
        }
        if label.chars().any(is_deceptive_in_name) {
            return Err(invalid(
                "a label with control characters, text direction marks or invisible spaces",
            ));
        }
        labels.push(SlotLabel { slot, label });
    }
    Ok(labels)
}

fn decode_vouch(r: &mut Reader<'_>) -> Result<Vouch, FormatError> {
    let n = r.u16()? as usize;
    if n > MAX_SLOTS {
        return Err(FormatError::invalid(
            "keyslot file",
            "too many vouched slots",
        ));
    }
    let n = r.count(n as u64, vouch::LEN)?;
    let mut digests = Vec::with_capacity(n);
    for _ in 0..n {
        digests.push(r.array()?);
    }
    Ok(Vouch {
        digests,
        mac: r.array()?,
    })
}

fn encode_slot(s: &KeySlot) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(s.kem.record_version())
        .bytes(&s.id.0)
        .u16(s.protector_type.0)
        .bytes_u16(s.name.as_bytes())
        .u64(s.created_unix)
        .bytes_u32(&s.params)
        .bytes(&s.salt)
        .bytes(&s.public_key)
        .u8(s.sealed.len() as u8);
    for e in &s.sealed {
        w.u32(e.epoch).bytes(&e.enc).bytes(&e.ciphertext);
    }
    w.u32(s.attested_epoch).bytes(&s.attestation);
    w.into_inner()
}

fn decode_slot(kem: SlotKem, raw: &[u8]) -> Result<KeySlot, FormatError> {
    let mut r = Reader::new(raw, "keyslot");
    r.version_u8(kem.record_version())?;
    let id = SlotId(r.array()?);
    let protector_type = ProtectorType(r.u16()?);
    let name = r.string_u16(MAX_NAME_LEN)?;
    let created_unix = r.u64()?;
    let params = r.bytes_u32(MAX_PARAMS_LEN)?.to_vec();
    let salt = r.array()?;
    let public_key = r.bytes(kem.public_key_len())?.to_vec();
    check_public_key(kem, &public_key)?;
    let n = r.u8()? as usize;
    if n == 0 {
        return Err(FormatError::invalid("keyslot", "no sealed root key"));
    }
    let n = r.count(n as u64, 4 + kem.enc_len() + SEALED_LEN)?;
    let mut sealed = Vec::with_capacity(n);
    for _ in 0..n {
        let epoch = r.u32()?;
        if sealed.iter().any(|e: &SealedRootKey| e.epoch == epoch) {
            return Err(FormatError::invalid(
                "keyslot",
                "two sealed keys for one epoch",
            ));
        }
        sealed.push(SealedRootKey {
            epoch,
            enc: r.bytes(kem.enc_len())?.to_vec(),
            ciphertext: r.array()?,
        });
    }
    let attested_epoch = r.u32()?;
    let attestation = r.array()?;
    r.finish()?;
    Ok(KeySlot {
        id,
        protector_type,
        name,
        created_unix,
        params,
        salt,
        kem,
        public_key,
        sealed,
        attested_epoch,
        attestation,
    })
}
