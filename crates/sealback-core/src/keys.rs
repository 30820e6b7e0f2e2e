//! The unlocked key hierarchy of one repository (see the crate docs for the drawing).

use crate::id::{BlobId, Id, RepoId};
use crate::labels;
use crate::object::ObjectType;
use crate::secret::{RootKey, SubKey};
use hkdf::Hkdf;
use sha2::Sha256;

/// HKDF-SHA256 to one 32-byte subkey.
pub fn hkdf_subkey(ikm: &[u8], salt: &[u8], info: &[u8]) -> SubKey {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SubKey::from_bytes(out)
}

/// The keyed-BLAKE3 key that names blobs. Keyed so that the storage operator cannot confirm
/// that a known file is in a backup by computing its chunk ids.
pub struct ContentIdKey(SubKey);

impl ContentIdKey {
    /// The id of a blob of type `ty` with this plaintext:
    /// `BLAKE3-keyed(content id key, type byte ‖ plaintext)`.
    pub fn blob_id(&self, ty: ObjectType, plaintext: &[u8]) -> BlobId {
        let mut h = blake3::Hasher::new_keyed(self.0.expose_secret());
        h.update(&[ty as u8]);
        h.update(plaintext);
        Id(*h.finalize().as_bytes())
    }
}

/// The data and metadata subkeys of one key epoch.
struct EpochKeys {
    data: SubKey,
    metadata: SubKey,
}

/// Every key of an unlocked repository: the root keys of all epochs up to the current one and
/// everything derived from them. Dropping it zeroizes all of them.
pub struct Keyring {
    repo_id: RepoId,
    roots: Vec<RootKey>,
    epochs: Vec<EpochKeys>,
    content_id: ContentIdKey,
    chunker: SubKey,
}

impl Keyring {
    /// Builds the hierarchy from the root keys `K_0 ..= K_current`, in epoch order.
    ///
    /// # Panics
    /// If `roots` is empty.
    pub fn new(repo_id: RepoId, roots: Vec<RootKey>) -> Self {
        assert!(
            !roots.is_empty(),
            "a keyring needs at least the genesis root key"
        );
        let salt = &repo_id.0[..];
        let epochs = roots
            .iter()
            .map(|k| EpochKeys {
                data: hkdf_subkey(k.expose_secret(), salt, labels::DATA_KEY),
                metadata: hkdf_subkey(k.expose_secret(), salt, labels::METADATA_KEY),
            })
            .collect();
        let genesis = roots[0].expose_secret();
        let content_id = ContentIdKey(hkdf_subkey(genesis, salt, labels::CONTENT_ID_KEY));
        let chunker = hkdf_subkey(genesis, salt, labels::CHUNKER_KEY);
        Self {
            repo_id,
            roots,
            epochs,
            content_id,
            chunker,
        }
    }

    /// The repository this keyring belongs to.
    pub fn repo_id(&self) -> RepoId {
        self.repo_id
    }

    /// The epoch new objects are written in.
    pub fn current_epoch(&self) -> u32 {
        (self.roots.len() - 1) as u32
    }

    /// The current root key.
    pub fn current_root(&self) -> &RootKey {
        self.roots.last().expect("non-empty")
    }

    /// All root keys, epoch 0 first.
    pub fn roots(&self) -> &[RootKey] {
        &self.roots
    }

    /// The subkey that encrypts objects of type `ty` written in `epoch`.
    pub fn object_key(&self, ty: ObjectType, epoch: u32) -> Option<&SubKey> {
        let keys = self.epochs.get(epoch as usize)?;
        Some(if ty.is_data() {
            &keys.data
        } else {
            &keys.metadata
        })
    }

    /// The key that names blobs.
    pub fn content_id(&self) -> &ContentIdKey {
        &self.content_id
    }

    /// The key the chunker's gear table is expanded from.
    pub fn chunker_key(&self) -> &SubKey {
        &self.chunker
    }
}

impl core::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Keyring {{ repo: {:?}, epoch: {}, keys: <redacted> }}",
            self.repo_id,
            self.current_epoch()
        )
    }
}
