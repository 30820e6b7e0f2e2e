//! Backup: read the source, chunk, deduplicate, seal, pack, upload; then write the index and,
//! last, the snapshot. Until the snapshot is written nothing refers to the new packs, so an
//! interrupted backup leaves every earlier snapshot intact.

use crate::error::{Error, Result};
use crate::lock::RepoLock;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::source;
use crate::{layout, os_rng, OsRng};
use sealback_core::chunker::{Chunker, ChunkerParams};
use sealback_core::index::IndexFile;
use sealback_core::lock::LockKind;
use sealback_core::object::{self, Compression, ObjectType};
use sealback_core::pack::{self, PackBuilder};
use sealback_core::snapshot::{
    Content, Node, NodeKind, Snapshot, Summary, Tree, FLAG_SQLITE_SNAPSHOT,
};
use sealback_core::{BlobId, Id};
use std::collections::HashSet;
use std::future::Future;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

/// Chunks hashed and sealed in one parallel batch.
const BATCH_CHUNKS: usize = 4096;
/// Packs are flushed once they reach this size.
pub const PACK_TARGET: usize = 16 << 20;
/// A file with more data blobs than this lists them in content-list blobs.
pub const DIRECT_CONTENT_MAX: usize = 16;
/// Most ids in one content-list blob.
const LIST_MAX: usize = 1024;
/// zstd level for compressible data.
pub(crate) const ZSTD_LEVEL: i32 = 3;
/// An index file is written after this many packs, so a backup that is killed leaves its
/// uploaded packs indexed and the next run does not upload them again.
pub const PACKS_PER_INDEX: usize = 4;
/// Largest SQLite page size (bytes 16..18 of the header; the value 1 means 65,536).
const MAX_SQLITE_PAGE: usize = 65_536;

/// What to record in the snapshot, and how to pack it.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The machine's name.
    pub hostname: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The snapshot time, nanoseconds since the Unix epoch (injected so tests control it).
    pub time_unix_ns: i64,
    /// Packs are closed at about this size ([`PACK_TARGET`]).
    pub pack_target: usize,
    /// An index file is written after this many packs ([`PACKS_PER_INDEX`]).
    pub packs_per_index: usize,
    /// Leave video files out ([`source::is_video`]); the snapshot lists them
    /// ([`Snapshot::left_out`]) so that a restore can say which.
    pub exclude_videos: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            hostname: String::new(),
            tags: vec![],
            time_unix_ns: 0,
            pack_target: PACK_TARGET,
            packs_per_index: PACKS_PER_INDEX,
            exclude_videos: false,
        }
    }
}

/// The outcome of a backup.
#[derive(Clone, Debug)]
pub struct BackupReport {
    /// The new snapshot.
    pub snapshot_id: Id,
    /// What it saw and stored.
    pub summary: Summary,
    /// Wall time.
    pub duration: Duration,
    /// Files left out by setting (videos).
    pub left_out: Vec<String>,
}

/// Pack uploads in flight at once (each holds one pack, ~16 MiB, in memory).
const UPLOADS_IN_FLIGHT: usize = 2;

type Upload = (
    Id,
    Vec<sealback_core::pack::BlobEntry>,
    tokio::task::JoinHandle<std::result::Result<(), sealback_store::StoreError>>,
);

struct Saver<'a> {
    repo: &'a mut Repository,
    /// The shared lock that keeps `prune` away until the snapshot is written.
    lock: RepoLock,
    /// Packs being written to storage, oldest first; indexed only once written.
    uploads: std::collections::VecDeque<Upload>,
    /// Packs written since the last index file.
    packs_since_index: usize,
    pack_target: usize,
    packs_per_index: usize,
    /// Worker threads for hashing, compressing and encrypting.
    workers: usize,
    chunker: Chunker,
    pack: PackBuilder,
    /// Blobs this run stored that are not indexed yet: those of the packs written since the
    /// last index file and of the pack being filled, so never more than about
    /// `packs_per_index + UPLOADS_IN_FLIGHT + 1` packs' worth, whatever the repository's size.
    pending: HashSet<BlobId>,
    /// The packs written since the last index file, indexed once written.
    index: IndexFile,
    summary: Summary,
    rng: OsRng,
    progress: &'a dyn Progress,
    temp_dir: PathBuf,
    /// The read buffer, reused from file to file.
    read_buf: Vec<u8>,
    exclude_videos: bool,
    /// Files left out by setting, as paths under the snapshot's root.
    left_out: Vec<String>,
    /// The path under the snapshot's root of the folder being saved.
    at: Vec<String>,
}

/// Backs up `paths` (files or folders) into a new snapshot. Each path becomes an entry of the
/// snapshot's root named by its last component.
pub async fn backup(
    repo: &mut Repository,
    paths: &[PathBuf],
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport> {
    let started = Instant::now();
    if paths.is_empty() {
        return Err(Error::Invalid(
            "nothing to back up: give at least one path".into(),
        ));
    }
    let mut names = HashSet::new();
    for p in paths {
        let name = p.file_name().ok_or_else(|| {
            Error::Invalid(format!("{} has no name to store it under", p.display()))
        })?;
        if !names.insert(name.to_owned()) {
            return Err(Error::Invalid(format!(
                "two paths end in {:?}; back them up separately",
                name
            )));
        }
    }
    let lock = RepoLock::acquire(repo, LockKind::Shared, "backup").await?;
    // The index loaded when the repository was opened may predate another backup or a prune.
    if let Err(e) = repo.refresh_index().await {
        lock.release().await;
        return Err(e);
    }
    repo.remove_stale_temp_files();
    repo.restore_reserve().await;
    let total: u64 = paths.iter().map(|p| du(p)).sum();
    progress.start("backup", Some(total));
    let path_names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    // The parent: the latest snapshot of the same paths. Its files that did not change (same
    // size and modification time) are taken over without reading them again.
    let snapshots = match repo.list_snapshots().await {
        Ok(s) => s,
        Err(e) => {
            lock.release().await;
            return Err(e);
        }
    };
    let parent = snapshots
        .into_iter()
        .rev()
        .find(|(_, s)| s.paths == path_names);
    let parent_root = match &parent {
        Some((_, s)) => match repo.load_tree(&s.tree).await {
            Ok(tree) => Some(tree),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the parent snapshot's tree; reading every file");
                None
            }
        },
        None => None,
    };
    let parent = parent.map(|(id, _)| id);

    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunker = Chunker::new(repo.keyring().chunker_key(), ChunkerParams::V1);
    let mut saver = Saver {
        repo,
        lock,
        uploads: Default::default(),
        packs_since_index: 0,
        pack_target: opts.pack_target.max(1),
        packs_per_index: opts.packs_per_index.max(1),
        workers,
        chunker,
        pack: PackBuilder::new(),
        pending: HashSet::new(),
        index: IndexFile::default(),
        summary: Summary::default(),
        rng: os_rng(),
        progress,
        temp_dir: source::temp_dir(),
        read_buf: Vec::new(),
        exclude_videos: opts.exclude_videos,
        left_out: Vec::new(),
        at: Vec::new(),
    };
    let saved = async {
        let mut root = Tree::default();
        let mut sorted: Vec<&PathBuf> = paths.iter().collect();
        sorted.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        for p in sorted {
            let meta = std::fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
            let name = p.file_name().expect("checked above").as_bytes().to_vec();
            let before = parent_root
                .as_ref()
                .and_then(|t| t.nodes.iter().find(|n| n.name == name));
            root.nodes
                .push(saver.save_node(p, name, &meta, before).await?);
        }
        let tree_id = saver.save_tree(&root).await?;
        saver.finish_uploads().await?;
        Ok::<_, Error>(tree_id)
    }
    .await;
    let tree_id = match saved {
        Ok(id) => id,
        Err(e) => {
            // Index the packs that reached storage, so the next run does not upload them again,
            // and leave no write running behind the caller's back.
            saver.salvage().await;
            saver.lock.release().await;
            return Err(e);
        }
    };
    let Saver {
        index,
        summary,
        repo,
        mut lock,
        left_out,
        ..
    } = saver;
    let committed = async {
        lock.confirm(repo).await?;
        if let Err(e) = repo.save_index(index.clone()).await {
            delete_if_surely_unindexed(repo, &index, &e).await;
            return Err(e);
        }
        let snapshot = Snapshot {
            time_unix_ns: opts.time_unix_ns,
            hostname: opts.hostname.clone(),
            paths: path_names,
            tree: tree_id,
            parent,
            tags: opts.tags.clone(),
            summary: summary.clone(),
            left_out: left_out.clone(),
        };
        lock.confirm(repo).await?;
        repo.save_snapshot(&snapshot).await
    }
    .await;
    lock.release().await;
    let snapshot_id = committed?;
    // The next run opens the index from this device's cache instead of the index files.
    repo.save_index_cache();
    progress.finish();
    Ok(BackupReport {
        snapshot_id,
        summary,
        duration: started.elapsed(),
        left_out,
    })
}

/// The page size of a SQLite database file (header bytes 16..18), or `None` when the header
/// does not hold a valid one (the file is then chunked by content like any other).
fn sqlite_page_size(path: &Path) -> Result<Option<usize>> {
    let mut head = [0u8; 18];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if f.read_exact(&mut head).is_err() {
        return Ok(None);
    }
    let raw = u16::from_be_bytes([head[16], head[17]]);
    let size = if raw == 1 {
        MAX_SQLITE_PAGE
    } else {
        usize::from(raw)
    };
    Ok((size.is_power_of_two() && (512..=MAX_SQLITE_PAGE).contains(&size)).then_some(size))
}

/// Bytes under a path, for the progress bar (errors count as 0: the walk reports them).
fn du(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| du(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

impl<'a> Saver<'a> {
    fn save_node<'s>(
        &'s mut self,
        path: &'s Path,
        name: Vec<u8>,
        meta: &'s std::fs::Metadata,
        before: Option<&'s Node>,
    ) -> BoxFuture<'s, Result<Node>> {
        Box::pin(async move {
            let kind = if meta.is_dir() {
                let before = match before.map(|n| &n.kind) {
                    Some(NodeKind::Dir { subtree }) => match self.repo.load_tree(subtree).await {
                        Ok(t) => Some(t),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read a parent tree; reading its files");
                            None
                        }
                    },
                    _ => None,
                };
                self.at.push(String::from_utf8_lossy(&name).into_owned());
                let subtree = self.save_dir(path, before.as_ref()).await;
                self.at.pop();
                NodeKind::Dir { subtree: subtree? }
            } else if meta.is_file() {
                self.summary.files += 1;
                if let Some(kind) = self.unchanged(meta, before) {
                    return Ok(Node {
                        name,
                        mode: meta.mode() & 0o7777,
                        mtime_s: meta.mtime(),
                        mtime_ns: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
                        kind,
                    });
                }
                let (size, flags, content) = self.save_file(path).await?;
                NodeKind::File {
                    size,
                    flags,
                    content,
                }
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(path).map_err(|e| Error::io(path, e))?;
                NodeKind::Symlink {
                    target: target.as_os_str().as_bytes().to_vec(),
                }
            } else {
                return Err(Error::Invalid(format!(
                    "{} is not a file, folder or symlink",
                    path.display()
                )));
            };
            Ok(Node {
                name,
                mode: meta.mode() & 0o7777,
                mtime_s: meta.mtime(),
                mtime_ns: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
                kind,
            })
        })
    }

    /// The parent's file node, when the file did not change since (same size and modification
    /// time; databases are always copied again) and everything it refers to is indexed.
    fn unchanged(&mut self, meta: &std::fs::Metadata, before: Option<&Node>) -> Option<NodeKind> {
        let before = before?;
        let NodeKind::File {
            size,
            flags,
            content,
        } = &before.kind
        else {
            return None;
        };
        let same = *flags & FLAG_SQLITE_SNAPSHOT == 0
            && *size == meta.len()
            && before.mtime_s == meta.mtime()
            && i64::from(before.mtime_ns) == meta.mtime_nsec();
        let ids = match content {
            Content::Blobs(ids) | Content::Lists(ids) => ids,
        };
        if !same {
            return None;
        }
        for id in ids {
            match self.repo.is_indexed(id) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the index; reading the file again");
                    return None;
                }
            }
        }
        self.summary.bytes_read += size;
        self.progress.advance(*size);
        Some(before.kind.clone())
    }

    async fn save_dir(&mut self, dir: &Path, before: Option<&Tree>) -> Result<Id> {
        self.summary.dirs += 1;
        let mut entries: Vec<(Vec<u8>, PathBuf)> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .map(|e| {
                e.map(|e| (e.file_name().as_bytes().to_vec(), e.path()))
                    .map_err(|err| Error::io(dir, err))
            })
            .collect::<Result<_>>()?;
        entries.sort();
        // A database's -wal/-shm/-journal files are covered by its consistent copy.
        let mut databases = HashSet::new();
        for (name, path) in &entries {
            if std::fs::metadata(path)
                .map(|m| m.is_file())
                .unwrap_or(false)
                && source::is_sqlite(path)?
            {
                databases.insert(name.clone());
            }
        }
        let mut tree = Tree::default();
        for (name, path) in entries {
            if let Some(db) = std::str::from_utf8(&name).ok().and_then(source::sidecar_of) {
                if databases.contains(db.as_bytes()) {
                    continue;
                }
            }
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Deleted between listing and reading: the app removed it; not an error.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&path, e)),
            };
            if self.exclude_videos && meta.is_file() && source::is_video(&path) {
                self.left_out.push(self.path_of(&name));
                continue;
            }
            let old = before.and_then(|t| t.nodes.iter().find(|n| n.name == name));
            tree.nodes
                .push(self.save_node(&path, name, &meta, old).await?);
        }
        self.save_tree(&tree).await
    }

    /// The path under the snapshot's root of `name` in the folder being saved.
    fn path_of(&self, name: &[u8]) -> String {
        let mut parts = self.at.clone();
        parts.push(String::from_utf8_lossy(name).into_owned());
        parts.join("/")
    }

    async fn save_tree(&mut self, tree: &Tree) -> Result<Id> {
        let body = tree.encode();
        self.save_blob(ObjectType::Tree, &body, Compression::Zstd(ZSTD_LEVEL))
            .await
            .map(|(id, _)| id)
    }

    /// Returns (size, flags, content).
    async fn save_file(&mut self, path: &Path) -> Result<(u64, u8, Content)> {
        let (copy, flags) = if source::is_sqlite(path)? {
            (
                Some(source::sqlite_snapshot(path, &self.temp_dir)?),
                FLAG_SQLITE_SNAPSHOT,
            )
        } else {
            (None, 0)
        };
        let read_path = copy.as_ref().map(|t| t.path()).unwrap_or(path);
        let mut file = std::fs::File::open(read_path).map_err(|e| Error::io(path, e))?;
        // A database copy is cut at its page boundaries: the pages that changed since the last
        // backup are new blobs, every other page is already stored (SPEC §8).
        let page = match &copy {
            Some(_) => sqlite_page_size(read_path)?,
            None => None,
        };
        let max = self.chunker.params().max.max(MAX_SQLITE_PAGE);
        // `buf[..len]` holds unread input from `start`. One buffer serves every file of the
        // backup: zeroing 16 MiB per file cost a fifth of a full backup's CPU time.
        let mut buf = std::mem::take(&mut self.read_buf);
        if buf.len() != max * 2 {
            buf = vec![0u8; max * 2];
        }
        let mut len = 0usize;
        let mut start = 0usize;
        let mut eof = false;
        let mut content = ContentBuilder::default();
        let mut size = 0u64;
        // The first chunk decides whether compressing this file pays (pages always try).
        let mut compression = page.map(|_| Compression::Zstd(ZSTD_LEVEL));
        loop {
            if !eof && len - start < max {
                buf.copy_within(start..len, 0);
                len -= start;
                start = 0;
                let old = len;
                while len < buf.len() {
                    match file.read(&mut buf[len..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => len += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(Error::io(path, e)),
                    }
                }
                self.summary.bytes_read += (len - old) as u64;
                self.progress.advance((len - old) as u64);
            }
            if start == len {
                break;
            }
            // Every chunk the buffer holds in full (a content-defined cut needs `max` bytes of
            // look-ahead, or the end of the file).
            let mut cuts = vec![];
            while start < len && (eof || len - start >= max) {
                let n = match page {
                    Some(p) => p.min(len - start),
                    None => self
                        .chunker
                        .cut(&buf[start..len], eof)
                        .expect("the buffer holds a full chunk or the rest of the file"),
                };
                cuts.push(&buf[start..start + n]);
                start += n;
                size += n as u64;
            }
            let mut rest = &cuts[..];
            let compression = match compression {
                Some(c) => c,
                None => {
                    // (A chunk that is already stored says nothing: it counts as compressible.)
                    let (id, pays) = self
                        .save_blob(ObjectType::Data, rest[0], Compression::Zstd(ZSTD_LEVEL))
                        .await?;
                    content.push(self, id).await?;
                    rest = &rest[1..];
                    let c = if pays {
                        Compression::Zstd(ZSTD_LEVEL)
                    } else {
                        Compression::None
                    };
                    compression = Some(c);
                    c
                }
            };
            // Bounded batches: sealed copies of at most ~16 MiB are held at once.
            for batch in rest.chunks(BATCH_CHUNKS.max(1)) {
                let prepared = self.prepare(ObjectType::Data, batch, compression)?;
                for ((id, sealed), chunk) in prepared.into_iter().zip(batch) {
                    self.commit(ObjectType::Data, id, sealed, chunk.len())
                        .await?;
                    content.push(self, id).await?;
                }
            }
        }
        // (After a failure the buffer is dropped with the backup.)
        self.read_buf = buf;
        let content = content.finish(self).await?;
        Ok((size, flags, content))
    }

    /// Hashes `chunks` and seals those that are not stored yet, on the worker threads. The
    /// answer is in the same order; `None` where the blob is already stored.
    fn prepare(
        &self,
        ty: ObjectType,
        chunks: &[&[u8]],
        compression: Compression,
    ) -> Result<Vec<(BlobId, Option<object::Sealed>)>> {
        let repo: &Repository = self.repo;
        let pending = &self.pending;
        let one = |chunk: &[u8], rng: &mut OsRng| -> Result<_> {
            let id = repo.keyring().content_id().blob_id(ty, chunk);
            Ok(if pending.contains(&id) || repo.is_indexed(&id)? {
                (id, None)
            } else {
                let sealed = pack::seal_blob(repo.keyring(), ty, &id, chunk, compression, rng);
                (id, Some(sealed))
            })
        };
        if self.workers == 1 || chunks.len() == 1 {
            let mut rng = os_rng();
            return chunks.iter().map(|c| one(c, &mut rng)).collect();
        }
        let per = chunks.len().div_ceil(self.workers);
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .chunks(per)
                .map(|part| {
                    scope.spawn(move || {
                        let mut rng = os_rng();
                        part.iter()
                            .map(|c| one(c, &mut rng))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(chunks.len());
            for h in handles {
                out.extend(h.join().expect("a sealing thread panicked")?);
            }
            Ok(out)
        })
    }

    /// Adds one prepared blob to the pack (unless it was already stored, or this run stored
    /// the same blob meanwhile), closing the pack when it is full.
    async fn commit(
        &mut self,
        ty: ObjectType,
        id: BlobId,
        sealed: Option<object::Sealed>,
        raw_len: usize,
    ) -> Result<()> {
        let Some(sealed) = sealed else {
            return Ok(());
        };
        if !self.pending.insert(id) {
            return Ok(());
        }
        self.pack.add(ty, id, sealed.epoch, &sealed.bytes, raw_len);
        self.summary.blobs_added += 1;
        if self.pack.len() >= self.pack_target {
            self.flush().await?;
        }
        Ok(())
    }

    /// Stores a blob unless the repository or this run already has it. Returns its id and
    /// whether the stored form is compressed (true also when deduplicated).
    async fn save_blob(
        &mut self,
        ty: ObjectType,
        data: &[u8],
        compression: Compression,
    ) -> Result<(BlobId, bool)> {
        let (id, sealed) = self
            .prepare(ty, &[data], compression)?
            .pop()
            .expect("one blob in, one out");
        let compressed = sealed.as_ref().is_none_or(|s| s.compressed);
        self.commit(ty, id, sealed, data.len()).await?;
        Ok((id, compressed))
    }

    /// Closes the current pack and starts writing it; waits when too many writes are running.
    async fn flush(&mut self) -> Result<()> {
        if self.pack.is_empty() {
            return Ok(());
        }
        let pack = std::mem::take(&mut self.pack);
        let pack_id = Id::random(&mut self.rng);
        let (bytes, entries) = pack.finish(self.repo.keyring(), &pack_id, &mut self.rng);
        self.summary.bytes_added += bytes.len() as u64;
        let store = self.repo.store().clone();
        let path = layout::pack(&pack_id);
        let upload = tokio::spawn(async move { store.write(&path, bytes).await });
        self.uploads.push_back((pack_id, entries, upload));
        while self.uploads.len() > UPLOADS_IN_FLIGHT {
            self.finish_oldest_upload().await?;
        }
        Ok(())
    }

    /// Waits for the oldest pack write; indexes the pack once it is stored.
    async fn finish_oldest_upload(&mut self) -> Result<()> {
        let Some((pack_id, entries, upload)) = self.uploads.pop_front() else {
            return Ok(());
        };
        upload
            .await
            .map_err(|e| Error::Invalid(format!("a pack upload task failed: {e}")))??;
        self.index.packs.push((pack_id, entries));
        self.packs_since_index += 1;
        self.lock.refresh_if_due(self.repo).await?;
        if self.packs_since_index >= self.packs_per_index {
            // Index what reached storage, so an interrupted backup is resumed, not repeated.
            // Never after losing the lock: a prune may have deleted these packs.
            self.lock.confirm(self.repo).await?;
            // Kept until written: after a failure, `salvage` indexes or deletes these packs.
            self.repo.save_index(self.index.clone()).await?;
            let index = std::mem::take(&mut self.index);
            // Indexed blobs are found through the repository's index from now on.
            for (_, entries) in &index.packs {
                for e in entries {
                    self.pending.remove(&e.id);
                }
            }
            self.packs_since_index = 0;
        }
        Ok(())
    }

    /// After a failure: waits for the pack writes in flight and indexes the packs that were
    /// stored, so the next run does not upload them again. When they cannot be indexed (a full
    /// drive, a lost lock) they are deleted instead: no index names them, so nothing else can
    /// use them, and left behind they would only take space. Best effort: the backup's own
    /// error is what the caller hears about.
    async fn salvage(&mut self) {
        while let Some((pack_id, entries, upload)) = self.uploads.pop_front() {
            if let Ok(Ok(())) = upload.await {
                self.index.packs.push((pack_id, entries));
            }
        }
        let index = std::mem::take(&mut self.index);
        if index.packs.is_empty() {
            return;
        }
        if let Err(e) = self.lock.confirm(self.repo).await {
            // A prune may have deleted some of these packs: indexing them would name missing
            // data. Unindexed, nothing knows them.
            tracing::warn!(error = %e, "not indexing the packs of the interrupted backup");
            delete_unindexed(self.repo, &index).await;
            return;
        }
        if let Err(e) = self.repo.save_index(index.clone()).await {
            tracing::warn!(error = %e, "cannot index the packs of the interrupted backup");
            delete_if_surely_unindexed(self.repo, &index, &e).await;
        }
    }

    /// Closes the last pack and waits until every pack is stored and indexed in memory.
    async fn finish_uploads(&mut self) -> Result<()> {
        self.flush().await?;
        while !self.uploads.is_empty() {
            self.finish_oldest_upload().await?;
        }
        Ok(())
    }
}

/// After writing `index` failed with `e`: deletes its packs when the write surely did not land
/// (a full drive refuses the whole object). After another failure (a timeout, say) the index
/// may be stored after all, and a backup may come to rely on its packs: they stay.
async fn delete_if_surely_unindexed(repo: &Repository, index: &IndexFile, e: &Error) {
    if matches!(e, Error::DriveFull { .. }) {
        delete_unindexed(repo, index).await;
    }
}

/// Deletes the packs of this run that `index` names and that no index names: nothing else
/// knows them, and left behind they would only take space (best effort).
async fn delete_unindexed(repo: &Repository, index: &IndexFile) {
    for (pack_id, _) in &index.packs {
        if let Err(e) = repo.store().delete(&layout::pack(pack_id)).await {
            tracing::warn!(error = %e, "cannot delete a pack of the interrupted backup");
        }
    }
}

/// A file's content as its blob ids come: up to [`DIRECT_CONTENT_MAX`] ids are listed in the
/// node; beyond that, each content-list blob is saved as soon as [`ListCut`] closes its group,
/// so that a large file's ids (a database's pages) are never all held.
#[derive(Default)]
struct ContentBuilder {
    /// The ids while the file has at most [`DIRECT_CONTENT_MAX`] blobs.
    direct: Vec<BlobId>,
    /// The ids not in a saved list yet, once it has more.
    cut: ListCut,
    /// Saved content lists, once it has more.
    lists: Option<Vec<BlobId>>,
}

impl ContentBuilder {
    async fn push(&mut self, saver: &mut Saver<'_>, id: BlobId) -> Result<()> {
        if self.lists.is_some() {
            return self.cut_and_save(saver, id).await;
        }
        self.direct.push(id);
        if self.direct.len() > DIRECT_CONTENT_MAX {
            self.lists = Some(vec![]);
            for id in std::mem::take(&mut self.direct) {
                self.cut_and_save(saver, id).await?;
            }
        }
        Ok(())
    }

    async fn cut_and_save(&mut self, saver: &mut Saver<'_>, id: BlobId) -> Result<()> {
        match self.cut.push(id) {
            Some(group) => self.save_list(saver, &group).await,
            None => Ok(()),
        }
    }

    async fn save_list(&mut self, saver: &mut Saver<'_>, group: &[BlobId]) -> Result<()> {
        let body: Vec<u8> = group.iter().flat_map(|id| id.0).collect();
        let (id, _) = saver
            .save_blob(ObjectType::ContentList, &body, Compression::None)
            .await?;
        self.lists.get_or_insert_with(Vec::new).push(id);
        Ok(())
    }

    async fn finish(mut self, saver: &mut Saver<'_>) -> Result<Content> {
        if self.lists.is_none() {
            return Ok(Content::Blobs(self.direct));
        }
        let rest = std::mem::take(&mut self.cut).rest();
        if !rest.is_empty() {
            self.save_list(saver, &rest).await?;
        }
        Ok(Content::Lists(self.lists.unwrap_or_default()))
    }
}

/// The content-list cut (SPEC §11), one id at a time: a group closes after an id whose last
/// byte is 0 (about every 256 ids) or at [`LIST_MAX`] ids, so an edit in the middle of a large
/// file changes only the list blobs around it.
#[derive(Default)]
struct ListCut {
    open: Vec<BlobId>,
}

impl ListCut {
    /// Adds `id`; returns the group it closes.
    fn push(&mut self, id: BlobId) -> Option<Vec<BlobId>> {
        self.open.push(id);
        (id.0[31] == 0 || self.open.len() == LIST_MAX).then(|| std::mem::take(&mut self.open))
    }

    /// The ids of the group still open (the last list's).
    fn rest(self) -> Vec<BlobId> {
        self.open
    }
}

/// Splits a long id list into content lists with the cut a backup makes ([`ListCut`]; checked
/// against the known-answer vector).
pub fn split_content_list(ids: &[BlobId]) -> Vec<Vec<BlobId>> {
    let mut cut = ListCut::default();
    let mut out: Vec<Vec<BlobId>> = ids.iter().filter_map(|id| cut.push(*id)).collect();
    let rest = cut.rest();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}
