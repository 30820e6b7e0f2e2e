//! Backup: read the source, chunk, deduplicate, seal, pack, upload; then write the index and,
//! last, the snapshot. Until the snapshot is written nothing refers to the new packs, so an
//! interrupted backup leaves every earlier snapshot intact.

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::source;
use crate::{layout, os_rng, OsRng};
use sealback_core::chunker::{Chunker, ChunkerParams};
use sealback_core::index::IndexFile;
use sealback_core::object::{self, Compression, ObjectType};
use sealback_core::pack::PackBuilder;
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

/// Packs are flushed once they reach this size.
pub const PACK_TARGET: usize = 16 << 20;
/// A file with more data blobs than this lists them in content-list blobs.
pub const DIRECT_CONTENT_MAX: usize = 16;
/// Most ids in one content-list blob.
const LIST_MAX: usize = 1024;
/// zstd level for compressible data.
const ZSTD_LEVEL: i32 = 3;

/// What to record in the snapshot.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The machine's name.
    pub hostname: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The snapshot time, nanoseconds since the Unix epoch (injected so tests control it).
    pub time_unix_ns: i64,
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
}

struct Saver<'a> {
    repo: &'a Repository,
    chunker: Chunker,
    pack: PackBuilder,
    pending: HashSet<BlobId>,
    index: IndexFile,
    summary: Summary,
    rng: OsRng,
    progress: &'a dyn Progress,
    temp_dir: PathBuf,
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
    let total: u64 = paths.iter().map(|p| du(p)).sum();
    progress.start("backup", Some(total));
    let parent = repo.list_snapshots().await?.pop().map(|(id, _)| id);

    let mut saver = Saver {
        repo,
        chunker: Chunker::new(repo.keyring().chunker_key(), ChunkerParams::V1),
        pack: PackBuilder::new(),
        pending: HashSet::new(),
        index: IndexFile::default(),
        summary: Summary::default(),
        rng: os_rng(),
        progress,
        temp_dir: source::temp_dir(),
    };
    let mut root = Tree::default();
    let mut sorted: Vec<&PathBuf> = paths.iter().collect();
    sorted.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    for p in sorted {
        let meta = std::fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
        let name = p.file_name().expect("checked above").as_bytes().to_vec();
        root.nodes.push(saver.save_node(p, name, &meta).await?);
    }
    let tree_id = saver.save_tree(&root).await?;
    saver.flush().await?;
    let Saver { index, summary, .. } = saver;
    repo.save_index(index).await?;
    let snapshot = Snapshot {
        time_unix_ns: opts.time_unix_ns,
        hostname: opts.hostname.clone(),
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        tree: tree_id,
        parent,
        tags: opts.tags.clone(),
        summary: summary.clone(),
    };
    let snapshot_id = repo.save_snapshot(&snapshot).await?;
    progress.finish();
    Ok(BackupReport {
        snapshot_id,
        summary,
        duration: started.elapsed(),
    })
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
    ) -> BoxFuture<'s, Result<Node>> {
        Box::pin(async move {
            let kind = if meta.is_dir() {
                NodeKind::Dir {
                    subtree: self.save_dir(path).await?,
                }
            } else if meta.is_file() {
                self.summary.files += 1;
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

    async fn save_dir(&mut self, dir: &Path) -> Result<Id> {
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
            tree.nodes.push(self.save_node(&path, name, &meta).await?);
        }
        self.save_tree(&tree).await
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
        let max = self.chunker.params().max;
        let mut buf: Vec<u8> = Vec::with_capacity(max * 2);
        let mut start = 0usize;
        let mut eof = false;
        let mut ids = vec![];
        let mut size = 0u64;
        // The first chunk decides whether compressing this file pays.
        let mut compression = Compression::Zstd(ZSTD_LEVEL);
        loop {
            if !eof && buf.len() - start < max {
                buf.drain(..start);
                start = 0;
                let want = max * 2;
                let old = buf.len();
                buf.resize(want, 0);
                let mut filled = old;
                while filled < want {
                    match file.read(&mut buf[filled..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(Error::io(path, e)),
                    }
                }
                buf.truncate(filled);
                self.summary.bytes_read += (filled - old) as u64;
                self.progress.advance((filled - old) as u64);
            }
            if start == buf.len() {
                break;
            }
            let n = self
                .chunker
                .cut(&buf[start..], eof)
                .expect("the buffer holds a full chunk or the rest of the file");
            let chunk = &buf[start..start + n];
            let (id, compressed) = self.save_blob(ObjectType::Data, chunk, compression).await?;
            if ids.is_empty() && !compressed && matches!(compression, Compression::Zstd(_)) {
                compression = Compression::None;
            }
            ids.push(id);
            size += n as u64;
            start += n;
        }
        let content = if ids.len() <= DIRECT_CONTENT_MAX {
            Content::Blobs(ids)
        } else {
            let mut lists = vec![];
            for group in split_content_list(&ids) {
                let body: Vec<u8> = group.iter().flat_map(|id| id.0).collect();
                lists.push(
                    self.save_blob(ObjectType::ContentList, &body, Compression::None)
                        .await?
                        .0,
                );
            }
            Content::Lists(lists)
        };
        Ok((size, flags, content))
    }

    /// Stores a blob unless the repository or this run already has it. Returns its id and
    /// whether the stored form is compressed (false also when deduplicated).
    async fn save_blob(
        &mut self,
        ty: ObjectType,
        data: &[u8],
        compression: Compression,
    ) -> Result<(BlobId, bool)> {
        let id = self.repo.keyring().content_id().blob_id(ty, data);
        if self.repo.lookup(&id).is_some() || self.pending.contains(&id) {
            return Ok((id, !matches!(compression, Compression::None)));
        }
        let sealed = object::seal(
            self.repo.keyring(),
            ty,
            &id,
            data,
            compression,
            &mut self.rng,
        );
        self.pack.add(ty, id, &sealed.bytes, data.len());
        self.pending.insert(id);
        self.summary.blobs_added += 1;
        if self.pack.len() >= PACK_TARGET {
            self.flush().await?;
        }
        Ok((id, sealed.compressed))
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pack.is_empty() {
            return Ok(());
        }
        let pack = std::mem::take(&mut self.pack);
        let pack_id = Id::random(&mut self.rng);
        let (bytes, entries) = pack.finish(self.repo.keyring(), &pack_id, &mut self.rng);
        self.summary.bytes_added += bytes.len() as u64;
        self.repo
            .store()
            .write(&layout::pack(&pack_id), bytes)
            .await?;
        self.index.packs.push((pack_id, entries));
        Ok(())
    }
}

/// Splits a long id list at content-defined points (after an id whose last byte is 0, about
/// every 256 ids, at most [`LIST_MAX`]), so an edit in the middle of a large file changes only the
/// list blobs around it.
pub fn split_content_list(ids: &[BlobId]) -> Vec<&[BlobId]> {
    let mut out = vec![];
    let mut start = 0;
    for (i, id) in ids.iter().enumerate() {
        if id.0[31] == 0 || i + 1 - start == LIST_MAX {
            out.push(&ids[start..=i]);
            start = i + 1;
        }
    }
    if start < ids.len() {
        out.push(&ids[start..]);
    }
    out
}
