//! Keyslots: the root key sealed to each enrolled protector (SPEC §6).
//!
//! Like LUKS keyslots, every protector wraps the same root key, so adding or removing one never
//! re-encrypts data. Unlike LUKS, a slot is a public key: the root key is sealed to it with HPKE
//! (RFC 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, base mode). That lets a
//! rotation seal a new root key to every remaining protector without any of them being present.
//!
//! Because anyone can seal to a public key, each slot also carries an *attestation*: an
//! HMAC under a key only the protector's secret yields, over the slot and one sealed entry.
//! Unlocking verifies it, so a storage operator cannot slip in a root key of its choosing.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::{Id, RepoId};
use crate::keys::Keyring;
use crate::labels;
use crate::object::{self, Compression, ObjectType};
use crate::protector::{Protector, ProtectorError};
use crate::secret::{ProtectorSecret, RootKey, SubKey};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Magic bytes of the keyslot file.
pub const MAGIC: &[u8; 6] = b"SBKEYS";
/// Version of the keyslot file layout.
pub const FILE_VERSION: u8 = 1;
/// Version of the slot record layout. Records of another version are kept but not used.
pub const SLOT_VERSION: u8 = 1;
/// Longest slot name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
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

    /// A name for people.
    pub fn name(self) -> String {
        match self {
            Self::RECOVERY_KEY => "recovery-key".into(),
            Self::PASSKEY_PRF => "passkey".into(),
            Self::VAULT_PASSWORD => "vault-password".into(),
            Self::VAULT_PASSKEY => "vault-passkey".into(),
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
    /// HPKE encapsulated key.
    pub enc: [u8; 32],
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
    /// The slot's X25519 public key.
    pub public_key: [u8; 32],
    /// Sealed root keys, at most one per epoch.
    pub sealed: Vec<SealedRootKey>,
    /// The epoch whose sealed entry the attestation covers.
    pub attested_epoch: u32,
    /// HMAC-SHA-256 attestation.
    pub attestation: [u8; 32],
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
    /// dropped. The caller should write it back (SPEC §6.5).
    pub reattested: Option<KeySlot>,
}

struct SlotKeys {
    private: <X25519HkdfSha256 as Kem>::PrivateKey,
    public: [u8; 32],
    mac: SubKey,
}

fn slot_keys(secret: &ProtectorSecret, salt: &[u8; 32]) -> SlotKeys {
    let mut okm = zeroize::Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::new(Some(salt), secret.expose_secret())
        .expand(labels::SLOT_KEYS, &mut okm[..])
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    let (private, public) = X25519HkdfSha256::derive_keypair(&okm[..32]);
    let mac = SubKey::from_slice(&okm[32..]).expect("32 bytes");
    let mut pk = [0u8; 32];
    pk.copy_from_slice(&public.to_bytes());
    SlotKeys {
        private,
        public: pk,
        mac,
    }
}

/// The public key a protector secret yields for a slot salt (for test vectors).
pub fn slot_public_key(secret: &ProtectorSecret, salt: &[u8; 32]) -> [u8; 32] {
    slot_keys(secret, salt).public
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
    public_key: &[u8; 32],
    epoch: u32,
    root: &RootKey,
    rng: &mut impl CryptoRng,
) -> SealedRootKey {
    let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(public_key)
        .expect("slot public keys are validated when parsed");
    let (enc, ct) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
        &OpModeS::Base,
        &pk,
        &hpke_info(repo, slot, epoch),
        root.expose_secret(),
        &[],
        rng,
    )
    .expect("HPKE seal to a valid X25519 key cannot fail");
    SealedRootKey {
        epoch,
        enc: enc.to_bytes().into(),
        ciphertext: ct.try_into().expect("48 bytes"),
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
        let keys = slot_keys(secret, &salt);
        let epoch = keyring.current_epoch();
        let repo = keyring.repo_id();
        let entry = seal_root(&repo, &id, &keys.public, epoch, keyring.current_root(), rng);
        let mut slot = KeySlot {
            id,
            protector_type: template.protector_type,
            name: template.name,
            created_unix: template.created_unix,
            params: template.params,
            salt,
            public_key: keys.public,
            sealed: vec![],
            attested_epoch: epoch,
            attestation: [0; 32],
        };
        slot.attestation = attestation(&repo, &slot, &entry, &keys.mac);
        slot.sealed.push(entry);
        Ok(slot)
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
        let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&entry.enc)
            .map_err(|_| tampered("invalid encapsulated key"))?;
        let plain = zeroize::Zeroizing::new(
            hpke::single_shot_open::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
                &OpModeR::Base,
                &keys.private,
                &enc,
                &hpke_info(repo, &self.id, entry.epoch),
                &entry.ciphertext,
                &[],
            )
            .map_err(|_| tampered("sealed root key does not open"))?,
        );
        RootKey::from_slice(&plain).ok_or_else(|| tampered("sealed root key has the wrong length"))
    }
}

impl KeySlotFile {
    /// A keyslot file for a new repository at epoch 0 with no slots yet.
    pub fn new(repo_id: RepoId) -> Self {
        Self {
            repo_id,
            current_epoch: 0,
            slots: vec![],
            foreign_slots: vec![],
            keyring: vec![],
        }
    }

    /// Tries every slot of the protector's type and returns the keyring of the first that
    /// opens and verifies.
    pub fn unlock(&self, protector: &mut dyn Protector) -> Result<Unlocked, UnlockError> {
        let ty = protector.protector_type();
        let mut saw_slot = false;
        for slot in self.slots.iter().filter(|s| s.protector_type == ty) {
            saw_slot = true;
            let Some(secret) = protector.secret_for(slot)? else {
                continue;
            };
            let keys = slot_keys(&secret, &slot.salt);
            if !bool::from(keys.public.ct_eq(&slot.public_key)) {
                continue;
            }
            let keyring = self.open_slot(slot, &keys)?;
            let reattested = (slot.attested_epoch != self.current_epoch).then(|| {
                let mut updated = slot.clone();
                let entry = slot
                    .entry(self.current_epoch)
                    .cloned()
                    .expect("open_slot checked the current entry");
                updated.attested_epoch = self.current_epoch;
                updated.attestation = attestation(&self.repo_id, &updated, &entry, &keys.mac);
                updated.sealed = vec![entry];
                updated
            });
            return Ok(Unlocked {
                keyring,
                slot_id: slot.id,
                reattested,
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

    /// Adds a slot. Fails if the file is full.
    pub fn add(&mut self, slot: KeySlot) -> Result<(), FormatError> {
        if self.slots.len() + self.foreign_slots.len() >= MAX_SLOTS {
            return Err(FormatError::invalid(
                "keyslot file",
                format!("at most {MAX_SLOTS} keyslots"),
            ));
        }
        self.slots.push(slot);
        Ok(())
    }

    /// Replaces the root key: seals a fresh `K_{e+1}` to every slot except `remove`, drops
    /// `remove`, and stores `K_0 ..= K_e` in a keyring sealed under `K_{e+1}`. Needs only the
    /// unlocked keyring, not the other protectors. Returns the new keyring.
    ///
    /// Slots of an unknown layout cannot be resealed and are dropped; their count is returned.
    pub fn rotate(
        &mut self,
        keyring: &Keyring,
        remove: Option<SlotId>,
        rng: &mut impl CryptoRng,
    ) -> (Keyring, usize) {
        let new_epoch = self.current_epoch + 1;
        let new_root = RootKey::random(rng);
        if let Some(id) = remove {
            self.slots.retain(|s| s.id != id);
        }
        let dropped = self.foreign_slots.len();
        self.foreign_slots.clear();
        for slot in &mut self.slots {
            let entry = seal_root(
                &self.repo_id,
                &slot.id,
                &slot.public_key,
                new_epoch,
                &new_root,
                rng,
            );
            slot.sealed.retain(|e| e.epoch == slot.attested_epoch);
            slot.sealed.push(entry);
        }
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
        (Keyring::new(self.repo_id, roots), dropped)
    }

    /// Replaces a slot by its re-attested form from [`Unlocked::reattested`].
    pub fn replace_slot(&mut self, slot: KeySlot) -> bool {
        match self.slots.iter_mut().find(|s| s.id == slot.id) {
            Some(existing) => {
                *existing = slot;
                true
            }
            None => false,
        }
    }

    /// Removes a slot; false if there is no such slot.
    pub fn remove(&mut self, id: SlotId) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| s.id != id);
        self.slots.len() != before
    }

    /// Encodes the file (SPEC §6.2).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(MAGIC)
            .u8(FILE_VERSION)
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
        w.into_inner()
    }

    /// Decodes and validates the file.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, "keyslot file");
        r.magic(MAGIC)?;
        r.version_u8(FILE_VERSION)?;
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
            match raw.first() {
                Some(&SLOT_VERSION) => slots.push(decode_slot(raw)?),
                Some(_) => foreign_slots.push(raw.to_vec()),
                None => return Err(FormatError::invalid("keyslot file", "empty slot record")),
            }
        }
        let keyring = r.bytes_u32(MAX_KEYRING_LEN)?.to_vec();
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
        })
    }
}

fn encode_slot(s: &KeySlot) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(SLOT_VERSION)
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

fn decode_slot(raw: &[u8]) -> Result<KeySlot, FormatError> {
    let mut r = Reader::new(raw, "keyslot");
    r.version_u8(SLOT_VERSION)?;
    let id = SlotId(r.array()?);
    let protector_type = ProtectorType(r.u16()?);
    let name = r.string_u16(MAX_NAME_LEN)?;
    let created_unix = r.u64()?;
    let params = r.bytes_u32(MAX_PARAMS_LEN)?.to_vec();
    let salt = r.array()?;
    let public_key: [u8; 32] = r.array()?;
    <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&public_key)
        .map_err(|_| FormatError::invalid("keyslot", "invalid public key"))?;
    let n = r.u8()? as usize;
    if n == 0 {
        return Err(FormatError::invalid("keyslot", "no sealed root key"));
    }
    let n = r.count(n as u64, 4 + 32 + SEALED_LEN)?;
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
            enc: r.array()?,
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
        public_key,
        sealed,
        attested_epoch,
        attestation,
    })
}
