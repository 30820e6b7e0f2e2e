//! A repository: its storage, its unlocked keys and its index.

use crate::error::{Error, Result};
use crate::index::Index;
use crate::layout;
use crate::seen;
use crate::{os_rng, Clock};
use sealback_core::config::RepoConfig;
use sealback_core::index::IndexFile;
use sealback_core::keyslot::UnlockError;
use sealback_core::keyslot::{
    ChangeError, KeySlot, KeySlotFile, ProtectorType, SlotId, SlotKem, SlotSummary, SlotTemplate,
};
use sealback_core::object::{self, Compression, ObjectType};
use sealback_core::pack::{self, BlobEntry};
use sealback_core::protector::Protector;
use sealback_core::snapshot::{Snapshot, Tree};
use sealback_core::{BlobId, Id, Keyring, ProtectorSecret, RepoId, RootKey};
use sealback_store::{Store, StoreError};
use std::path::Path;
use std::sync::Arc;

/// Largest tree, content list, index or snapshot body accepted.
pub const MAX_METADATA_LEN: usize = 256 << 20;

pub use crate::index::BlobLocation;

/// What removing a keyslot did.
#[derive(Clone, Debug)]
pub struct RemovedSlot {
    /// The new key epoch, when the root key was rotated.
    pub new_epoch: Option<u32>,
    /// Slots of an unknown layout that a rotation could not reseal and dropped.
    pub dropped_foreign_slots: usize,
}

/// An unlocked repository.
pub struct Repository {
    store: Store,
    config: RepoConfig,
    keyslots: KeySlotFile,
    /// Shared with restore's blocking threads; zeroized when the last holder drops it.
    keyring: Arc<Keyring>,
    slot_id: SlotId,
    /// Shared with restore's tasks; changed through [`Arc::make_mut`] (a copy only while a
    /// cancelled restore thread still holds the old one).
    index: Arc<Index>,
    clock: Clock,
    upgraded: Option<Vec<SlotSummary>>,
    unvouched: Vec<SlotSummary>,
    /// Slots this session removed, for this device's record of the keys file.
    removed: Vec<SlotId>,
}

/// A refused keyslot change: a file that does not verify is an integrity failure (through
/// [`Error::Unlock`]), a broken limit a bad request.
pub(crate) fn change_error(e: ChangeError) -> Error {
    match e {
        ChangeError::Unverified(e) => Error::Unlock(e),
        other => Error::Invalid(other.to_string()),
    }
}

impl core::fmt::Debug for Repository {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Repository({})", self.store.location())
    }
}

impl Repository {
    /// Creates a repository with a fresh root key and one keyslot. The config is written last,
    /// so an interrupted init leaves no repository behind.
    pub async fn init(store: Store, first: SlotTemplate, secret: &ProtectorSecret) -> Result<Self> {
        if store.exists(layout::CONFIG).await? {
            return Err(Error::AlreadyExists(store.location().to_string()));
        }
        let mut rng = os_rng();
        let repo_id = RepoId::random(&mut rng);
        let keyring = Keyring::new(repo_id, vec![RootKey::random(&mut rng)]);
        let slot = KeySlot::enroll(&keyring, first, secret, &mut rng)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let slot_id = slot.id;
        let mut keyslots = KeySlotFile::new(&keyring);
        keyslots.add(&keyring, slot).map_err(change_error)?;
        store.write(layout::KEYS, keyslots.encode()).await?;
        let config = RepoConfig { repo_id };
        store.write(layout::CONFIG, config.encode()).await?;
        write_reserve(&store).await?;
        Ok(Self {
            store,
            config,
            keyslots,
            index: Arc::new(new_index(&keyring)),
            keyring: Arc::new(keyring),
            slot_id,
            clock: Clock::system(),
            upgraded: None,
            unvouched: vec![],
            removed: vec![],
        })
    }

    /// Whether a repository exists at the location.
    pub async fn exists(store: &Store) -> Result<bool> {
        Ok(store.exists(layout::CONFIG).await?)
    }

    /// Reads the config and keyslot file without unlocking (for `key list`).
    pub async fn read_keyslots(store: &Store) -> Result<(RepoConfig, KeySlotFile)> {
        let config = match store.read(layout::CONFIG).await {
            Ok(b) => RepoConfig::decode(&b).map_err(|e| Error::format("config", e))?,
            Err(StoreError::NotFound { .. }) => {
                return Err(Error::NotARepository(store.location().to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        let keys = store.read(layout::KEYS).await.map_err(Error::referenced)?;
        let keyslots = KeySlotFile::decode(&keys).map_err(|e| Error::format("keys", e))?;
        if keyslots.repo_id != config.repo_id {
            return Err(Error::Integrity(
                "the keyslot file belongs to another repository than the config".into(),
            ));
        }
        Ok((config, keyslots))
    }

    /// Opens a repository by unlocking one of its keyslots with `protector`, and loads its index.
    ///
    /// The keys file must verify under the root key that opened (SPEC §6.4): a slot it does not
    /// vouch for is an integrity failure naming the slot, and nothing else is done. A format-1
    /// file is upgraded here, vouching for the slots it holds now; they are logged and kept for
    /// [`Repository::upgraded_slots`].
    pub async fn open(store: Store, protector: &mut dyn Protector) -> Result<Self> {
        Self::open_inner(store, protector, false, None).await
    }

    /// [`Repository::open`] (or, with `allow_unvouched`,
    /// [`Repository::open_to_remove_unvouched`]) guarded by this device's record of the keys
    /// file (`keys_record`, see [`crate::seen::key_epoch_path`]): the keys file this open
    /// unlocks is refused when it is older than the record (a lower key epoch, or format 1
    /// after format 2), before anything is unlocked or written, and the record then moves up
    /// to it. The check is made here, on the bytes that are unlocked, because a cloud drive
    /// can serve a caller's earlier read of the keys file and this open's read differently.
    pub async fn open_guarded(
        store: Store,
        protector: &mut dyn Protector,
        keys_record: &Path,
        allow_unvouched: bool,
    ) -> Result<Self> {
        Self::open_inner(store, protector, allow_unvouched, Some(keys_record)).await
    }

    /// [`Repository::open`] that lets slots the keys file does not vouch for through, listed
    /// in [`Repository::unvouched_slots`], so that they can be removed with
    /// [`Repository::remove_slot`]. Nothing is ever sealed to them: adding a key or rotating
    /// is refused while one is there.
    pub async fn open_to_remove_unvouched(
        store: Store,
        protector: &mut dyn Protector,
    ) -> Result<Self> {
        Self::open_inner(store, protector, true, None).await
    }

    async fn open_inner(
        store: Store,
        protector: &mut dyn Protector,
        allow_unvouched: bool,
        keys_record: Option<&Path>,
    ) -> Result<Self> {
        let (config, keyslots) = Self::read_keyslots(&store).await?;
        if let Some(record) = keys_record {
            seen::check_keys_file(record, &keyslots)?;
        }
        let unlocked = keyslots.unlock_and_upgrade(protector, &mut os_rng())?;
        tracing::debug!(slot = %unlocked.slot_id.to_hex(), "unlocked");
        if !unlocked.unvouched.is_empty() && !allow_unvouched {
            return Err(Error::Unlock(UnlockError::Unvouched {
                slots: unlocked.unvouched,
            }));
        }
        for slot in &unlocked.unvouched {
            tracing::warn!(%slot, "keyslot not vouched for by the keys file");
        }
        let needs_upgrade = unlocked.needs_upgrade;
        let reattested = unlocked.reattested;
        let mut repo = Self {
            store,
            config,
            keyslots,
            index: Arc::new(new_index(&unlocked.keyring)),
            keyring: Arc::new(unlocked.keyring),
            slot_id: unlocked.slot_id,
            clock: Clock::system(),
            upgraded: None,
            unvouched: unlocked.unvouched,
            removed: vec![],
        };
        if needs_upgrade {
            // Not fatal: a format-1 repository on read-only storage must still restore. It
            // stays format 1 (and refuses key changes) until an upgrade can be written.
            if let Err(e) = repo.upgrade_keyslots().await {
                tracing::warn!(error = %e, "could not upgrade the keys file to format 2");
            }
        }
        if let Some(slot) = reattested.filter(|_| repo.unvouched.is_empty()) {
            // A rotation happened since this protector was last used, or its slot is X25519:
            // record that it has now confirmed the current root key (SPEC §6.5) and move it to
            // X-Wing (§6.5a). Both are SHOULDs: storage that refuses the write (read-only
            // media) must still restore, so only a file that reads back altered is fatal.
            let moves_to_xwing = slot.kem == SlotKem::XWing
                && repo
                    .keyslots
                    .slots
                    .iter()
                    .any(|s| s.id == slot.id && s.kem == SlotKem::X25519);
            let mut next = repo.keyslots.clone();
            next.replace_slot(&repo.keyring, slot)?;
            // The move to X-Wing is also a rotation: the key epoch goes up, so a device that saw
            // it refuses the keys file from before (where this slot was X25519, SPEC §12), and
            // the new root key was never sealed to this slot's X25519 key.
            let rotated = if moves_to_xwing {
                Some(next.rotate(&repo.keyring, None, &mut os_rng())?.0)
            } else {
                None
            };
            match repo.write_keyslots(next).await {
                Ok(()) => {
                    if let Some(keyring) = rotated {
                        repo.keyring = Arc::new(keyring);
                    }
                    tracing::info!("keyslot re-attested at the current key epoch (X-Wing)")
                }
                Err(e @ Error::Integrity(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "could not write the re-attested keyslot back")
                }
            }
        }
        if let Some(record) = keys_record {
            repo.remember_keys_file(record);
        }
        repo.load_index().await?;
        Ok(repo)
    }

    /// Moves this device's record (`keys_record`) up to the keys file now in hand: after an
    /// unlock verified it, and after every change this device made (a rotation raises the
    /// epoch; a removed slot is remembered, so that the file from before cannot be put back).
    /// Best effort: a record that cannot be written loses the protection, never data.
    pub fn remember_keys_file(&self, keys_record: &Path) {
        if let Err(e) = seen::record_keys_file(keys_record, &self.keyslots, &self.removed) {
            tracing::warn!(error = %e, "cannot keep this device's record of the keys file");
        }
    }

    /// Upgrades a format-1 keys file to format 2: the MAC now vouches for every slot the file
    /// holds, so each is listed (a slot someone slipped into a format-1 file is vouched for
    /// from now on; the list lets the person see it).
    async fn upgrade_keyslots(&mut self) -> Result<()> {
        let mut next = self.keyslots.clone();
        let Some(vouched) = next.upgrade(&self.keyring) else {
            return Ok(());
        };
        for slot in &vouched {
            tracing::warn!(%slot, "keys file upgraded to format 2: vouching for this slot");
        }
        self.write_keyslots(next).await?;
        self.upgraded = Some(vouched);
        Ok(())
    }

    /// The slots this session vouched for when it upgraded a format-1 keys file (for the
    /// person to check that each is theirs); `None` if no upgrade happened.
    pub fn upgraded_slots(&self) -> Option<&[SlotSummary]> {
        self.upgraded.as_deref()
    }

    /// Slots the keys file does not vouch for (only [`Repository::open_to_remove_unvouched`]
    /// opens with any).
    pub fn unvouched_slots(&self) -> &[SlotSummary] {
        &self.unvouched
    }

    /// Removes a keyslot. With `rotate`, also replaces the root key: new objects are written
    /// under a key sealed only to the remaining slots (SPEC §6.5). The last slot cannot be
    /// removed: nothing could open the backup afterwards.
    pub async fn remove_slot(&mut self, id: SlotId, rotate: bool) -> Result<RemovedSlot> {
        if !self.keyslots.slots.iter().any(|s| s.id == id) {
            return Err(Error::Invalid(format!(
                "no keyslot {} (see `sealback key list`)",
                id.to_hex()
            )));
        }
        if self.keyslots.slots.len() == 1 {
            return Err(Error::Invalid(
                "this is the only key that opens the backup; add another key first".into(),
            ));
        }
        let mut next = self.keyslots.clone();
        let outcome = if rotate {
            let (keyring, dropped) = next.rotate(&self.keyring, Some(id), &mut os_rng())?;
            self.write_keyslots(next).await?;
            self.keyring = Arc::new(keyring);
            RemovedSlot {
                new_epoch: Some(self.keyring.current_epoch()),
                dropped_foreign_slots: dropped,
            }
        } else {
            next.remove(&self.keyring, id)?;
            self.write_keyslots(next).await?;
            RemovedSlot {
                new_epoch: None,
                dropped_foreign_slots: 0,
            }
        };
        self.removed.push(id);
        Ok(outcome)
    }

    /// The storage.
    pub fn store(&self) -> &Store {
        &self.store
    }
    /// The config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }
    /// The keyslots.
    pub fn keyslots(&self) -> &KeySlotFile {
        &self.keyslots
    }
    /// The keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }
    /// The keys, to share with threads that outlive a borrow of the repository.
    pub(crate) fn keyring_shared(&self) -> Arc<Keyring> {
        self.keyring.clone()
    }
    /// The time source (the system clock unless a test set another).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
    /// Sets the time source.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }
    /// The slot that unlocked this session.
    pub fn unlocked_slot(&self) -> SlotId {
        self.slot_id
    }

    /// Enrolls another protector. The keyslot file is re-read after writing to confirm the new
    /// slot is there. A second password is refused (change the one there instead:
    /// [`Repository::change_key`]).
    pub async fn add_slot(
        &mut self,
        template: SlotTemplate,
        secret: &ProtectorSecret,
    ) -> Result<SlotId> {
        if template.protector_type == ProtectorType::VAULT_PASSWORD {
            crate::keychange::refuse_second_password(&self.keyslots)?;
        }
        self.add_slot_unchecked(template, secret).await
    }

    /// Writes a new keyslot file and verifies it reads back identical.
    pub async fn write_keyslots(&mut self, next: KeySlotFile) -> Result<()> {
        let bytes = next.encode();
        self.store.write(layout::KEYS, bytes.clone()).await?;
        let back = self.store.read(layout::KEYS).await?;
        if back != bytes {
            return Err(Error::Integrity(
                "the keyslot file read back differs from what was written (a concurrent change?); run `sealback key list` and retry".into(),
            ));
        }
        self.unvouched
            .retain(|u| next.slots.iter().any(|s| s.id.to_hex() == u.id));
        self.keyslots = next;
        Ok(())
    }

    /// Loads the index: this device's cache of it when that verifies and predates no prune,
    /// then every index file it does not hold yet, one file at a time; then writes the cache
    /// back when anything was added.
    pub async fn load_index(&mut self) -> Result<()> {
        let stored = self.stored_index_files().await?;
        let index = Arc::make_mut(&mut self.index);
        index.clear();
        let from_cache = index.load_cache(&stored);
        self.add_index_files(&stored, !from_cache).await
    }

    /// The ids of the index files in storage.
    async fn stored_index_files(&self) -> Result<Vec<Id>> {
        let mut out = vec![];
        for path in self.store.list(layout::INDEX).await? {
            match layout::id_of(&path) {
                Some(id) => out.push(id),
                None => tracing::warn!(%path, "ignoring a file that is not an index file"),
            }
        }
        Ok(out)
    }

    /// Reads the index files of `stored` that the index does not hold yet into it; writes the
    /// cache when any was read (or `changed` says the cache must be written anyway).
    async fn add_index_files(&mut self, stored: &[Id], mut changed: bool) -> Result<()> {
        let have: std::collections::HashSet<Id> = self.index.covered().iter().copied().collect();
        for id in stored.iter().filter(|id| !have.contains(id)) {
            let file = self.read_index_file(id).await?;
            let index = Arc::make_mut(&mut self.index);
            index
                .add_file(*id, &file.packs)
                .map_err(|e| self.index_error(e))?;
            changed = true;
        }
        if changed {
            self.save_index_cache();
        }
        Ok(())
    }

    /// Writes the index into this device's cache (merging its layers into one file). Best
    /// effort: without it the next session reads the index files again.
    pub fn save_index_cache(&mut self) {
        if let Err(e) = Arc::make_mut(&mut self.index).persist() {
            tracing::warn!(error = %e, "cannot write the index cache; the next run reads the index files again");
        }
    }

    fn index_error(&self, e: std::io::Error) -> Error {
        Error::io(self.index.error_path(), e)
    }

    async fn read_index_file(&self, id: &Id) -> Result<IndexFile> {
        let path = layout::index(id);
        let body = self
            .read_metadata(&path, ObjectType::Index, id, &format!("index file {path}"))
            .await?;
        IndexFile::decode(&body).map_err(|e| Error::format(format!("index file {path}"), e))
    }

    /// Reads and opens a metadata object stored under its own name (index file, snapshot); a
    /// missing or damaged one is an integrity failure naming `what`.
    async fn read_metadata(
        &self,
        path: &str,
        ty: ObjectType,
        id: &Id,
        what: &str,
    ) -> Result<Vec<u8>> {
        let bytes = self.store.read(path).await.map_err(Error::referenced)?;
        object::open(&self.keyring, ty, id, &bytes, MAX_METADATA_LEN)
            .map_err(|e| Error::object(what, e))
    }

    /// Brings the index up to the index files in storage (another backup or a prune ran since):
    /// new files are added; when one it holds is gone (a prune), it is loaded again. Called
    /// under a lock, before relying on the index.
    pub async fn refresh_index(&mut self) -> Result<()> {
        let stored = self.stored_index_files().await?;
        let set: std::collections::HashSet<&Id> = stored.iter().collect();
        if self.index.covered().iter().all(|id| set.contains(id)) {
            self.add_index_files(&stored, false).await
        } else {
            tracing::debug!("index files were replaced in storage; reloading the index");
            self.load_index().await
        }
    }

    /// Reads every index file as stored: pack by pack, with duplicates (for `prune`).
    pub async fn read_index_files(&self) -> Result<Vec<(Id, IndexFile)>> {
        let mut out = vec![];
        for path in self.store.list(layout::INDEX).await? {
            if let Some(id) = layout::id_of(&path) {
                out.push((id, self.read_index_file(&id).await?));
            }
        }
        Ok(out)
    }

    /// The ids of the packs in storage.
    pub async fn stored_packs(&self) -> Result<std::collections::HashSet<Id>> {
        Ok(self
            .store
            .list(layout::PACKS)
            .await?
            .iter()
            .filter_map(|p| layout::id_of(p))
            .collect())
    }

    /// Where a blob is, if the index knows it.
    pub fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        self.index.lookup(id).map_err(|e| self.index_error(e))
    }

    /// Whether the index knows a blob.
    pub fn is_indexed(&self, id: &BlobId) -> Result<bool> {
        self.index.contains(id).map_err(|e| self.index_error(e))
    }

    /// How many blobs the index knows (reads the whole index).
    pub fn index_len(&self) -> Result<usize> {
        self.index.len().map_err(|e| self.index_error(e))
    }

    /// Every indexed blob, one location each (reads the whole index into memory: for tests).
    pub fn index_entries(&self) -> Result<Vec<BlobLocation>> {
        self.index.all().map_err(|e| self.index_error(e))
    }

    /// This device's cache file of the index (SPEC §10a), if it keeps one.
    pub fn index_cache_path(&self) -> Option<&Path> {
        self.index.cache_path()
    }

    /// Ids of the index files the index holds.
    pub fn index_files(&self) -> &[Id] {
        self.index.covered()
    }

    /// The index, to share with tasks that outlive a borrow of the repository.
    pub(crate) fn index_shared(&self) -> Arc<Index> {
        self.index.clone()
    }

    /// Reads, decrypts and verifies one blob.
    pub async fn read_blob(&self, ty: ObjectType, id: &BlobId, max_len: usize) -> Result<Vec<u8>> {
        read_blob(&self.store, &self.keyring, &self.index, ty, id, max_len).await
    }

    /// Decrypts the sealed bytes of the blob `entry` describes and checks the plaintext hashes
    /// to its id.
    pub fn open_blob(
        &self,
        entry: &BlobEntry,
        sealed: &[u8],
        max_len: usize,
        pack_path: &str,
    ) -> Result<Vec<u8>> {
        open_blob(&self.keyring, entry, sealed, max_len, pack_path)
    }

    /// Writes an index file and adds its entries to the in-memory index.
    pub async fn save_index(&mut self, file: IndexFile) -> Result<Option<Id>> {
        if file.packs.is_empty() {
            return Ok(None);
        }
        let mut rng = os_rng();
        let id = Id::random(&mut rng);
        let sealed = object::seal(
            &self.keyring,
            ObjectType::Index,
            &id,
            &file.encode(),
            Compression::Zstd(3),
            &mut rng,
        );
        self.store.write(&layout::index(&id), sealed.bytes).await?;
        Arc::make_mut(&mut self.index)
            .add_file(id, &file.packs)
            .map_err(|e| self.index_error(e))?;
        Ok(Some(id))
    }

    /// Writes a snapshot manifest: the commit point of a backup.
    pub async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        let mut rng = os_rng();
        let id = Id::random(&mut rng);
        let sealed = object::seal(
            &self.keyring,
            ObjectType::Snapshot,
            &id,
            &snapshot.encode(),
            Compression::Zstd(3),
            &mut rng,
        );
        self.store
            .write(&layout::snapshot(&id), sealed.bytes)
            .await?;
        Ok(id)
    }

    /// Reads one snapshot.
    pub async fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let what = format!("snapshot {}", id.short());
        let body = self
            .read_metadata(&layout::snapshot(id), ObjectType::Snapshot, id, &what)
            .await?;
        Snapshot::decode(&body).map_err(|e| Error::format(what, e))
    }

    /// Every snapshot, oldest first.
    pub async fn list_snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let mut out = vec![];
        for path in self.store.list(layout::SNAPSHOTS).await? {
            let Some(id) = layout::id_of(&path) else {
                tracing::warn!(%path, "ignoring a file that is not a snapshot");
                continue;
            };
            out.push((id, self.load_snapshot(&id).await?));
        }
        out.sort_by_key(|(id, s)| (s.time_unix_ns, *id));
        Ok(out)
    }

    /// Finds a snapshot by `latest` or by a unique prefix of its id.
    pub async fn find_snapshot(&self, query: &str) -> Result<(Id, Snapshot)> {
        pick_snapshot(&self.list_snapshots().await?, query)
    }

    /// Reads one tree.
    pub async fn load_tree(&self, id: &Id) -> Result<Tree> {
        let body = self
            .read_blob(ObjectType::Tree, id, MAX_METADATA_LEN)
            .await?;
        Tree::decode(&body).map_err(|e| Error::format(format!("tree {}", id.short()), e))
    }
}

/// Reads, decrypts and verifies one blob, located through `index`.
pub(crate) async fn read_blob(
    store: &Store,
    keyring: &Keyring,
    index: &Index,
    ty: ObjectType,
    id: &BlobId,
    max_len: usize,
) -> Result<Vec<u8>> {
    let loc = index
        .lookup(id)
        .map_err(|e| Error::io(index.error_path(), e))?
        .ok_or_else(|| {
            Error::Integrity(format!(
                "{} {} is referenced but not in the index",
                ty.name(),
                id.short()
            ))
        })?;
    if loc.entry.ty != ty {
        return Err(Error::Integrity(format!(
            "{} is indexed as a {}, expected a {}",
            id.short(),
            loc.entry.ty.name(),
            ty.name()
        )));
    }
    let path = layout::pack(&loc.pack);
    let bytes = store
        .read_range(&path, loc.entry.offset.into(), loc.entry.length.into())
        .await
        .map_err(Error::referenced)?;
    open_blob(keyring, &loc.entry, &bytes, max_len, &path)
}

/// The index of a repository being opened: its cache file in this device's cache folder
/// ([`crate::index::cache_dir`]), its segments in the temporary folder.
fn new_index(keyring: &Keyring) -> Index {
    let repo_id = keyring.repo_id();
    Index::new(
        repo_id,
        sealback_core::index_cache::cache_key(keyring),
        crate::source::temp_dir(),
        crate::index::cache_dir().map(|d| d.join(repo_id.to_hex()).join("index")),
    )
}

/// Decrypts the sealed bytes of the blob `entry` describes and checks the plaintext hashes to
/// its id.
pub(crate) fn open_blob(
    keyring: &Keyring,
    entry: &BlobEntry,
    sealed: &[u8],
    max_len: usize,
    pack_path: &str,
) -> Result<Vec<u8>> {
    let (ty, id) = (entry.ty, &entry.id);
    let plain = pack::open_blob(keyring, entry, sealed, max_len)
        .map_err(|e| Error::object(format!("{} {} in {pack_path}", ty.name(), id.short()), e))?;
    if keyring.content_id().blob_id(ty, &plain) != *id {
        return Err(Error::Integrity(format!(
            "{} {} in {pack_path} does not match its id",
            ty.name(),
            id.short()
        )));
    }
    Ok(plain)
}

/// Writes [`layout::RESERVE`]: random bytes, so that no compressing file system or drive makes
/// it smaller than the room it is there to keep.
async fn write_reserve(store: &Store) -> Result<()> {
    let mut bytes = vec![0u8; layout::RESERVE_LEN];
    rand_core::Rng::fill_bytes(&mut os_rng(), &mut bytes);
    store.write(layout::RESERVE, bytes).await?;
    Ok(())
}

impl Repository {
    /// Removes the temporary files that a sealback killed mid-write left on a local drive
    /// (older than [`sealback_store::TEMP_STALE`]; a failed write removes its own). Best effort.
    pub fn remove_stale_temp_files(&self) {
        match self
            .store
            .remove_stale_temp_files(sealback_store::TEMP_STALE)
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "removed temporary files left by an interrupted sealback"),
            Err(e) => tracing::warn!(error = %e, "could not clean the temporary folder"),
        }
    }

    /// Puts [`layout::RESERVE`] back when it is missing (it was used by a prune or forget on a
    /// full drive, or the repository predates it). Best effort: on a drive that is still full
    /// it stays missing and is tried again next time.
    pub async fn restore_reserve(&self) {
        let missing = matches!(self.store.exists(layout::RESERVE).await, Ok(false));
        if missing {
            if let Err(e) = write_reserve(&self.store).await {
                tracing::debug!(error = %e, "could not put the space reserve back");
            }
        }
    }
}

/// Picks a snapshot from `all` (as [`Repository::list_snapshots`] returns them, oldest first)
/// by `latest` or by a unique prefix of its id, for callers that already hold the list.
pub fn pick_snapshot(all: &[(Id, Snapshot)], query: &str) -> Result<(Id, Snapshot)> {
    if query == "latest" {
        return all
            .last()
            .cloned()
            .ok_or_else(|| Error::Invalid("the repository has no snapshots yet".into()));
    }
    let q = query.to_ascii_lowercase();
    let mut hits = all.iter().filter(|(id, _)| id.to_hex().starts_with(&q));
    match (hits.next(), hits.count()) {
        (Some(hit), 0) => Ok(hit.clone()),
        (None, _) => Err(Error::Invalid(format!(
            "no snapshot matches {query:?} (see `sealback snapshots`)"
        ))),
        (Some(_), more) => Err(Error::Invalid(format!(
            "{} snapshots match {query:?}; give more digits",
            more + 1
        ))),
    }
}
