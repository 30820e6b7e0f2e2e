//! Restore: write a snapshot's files into a target folder.
//!
//! Every blob is authenticated and its id recomputed before a byte of it is written, and each
//! file is written to a temporary name and renamed into place only when complete and of the
//! recorded size. A failure removes the partial file, so a restore never leaves a wrong file
//! under a real name.
//!
//! Files are restored several at a time ([`files_in_flight`]), each reading its next run while
//! the current one is decrypted and written. Nothing is synced file by file: when the restore
//! reports success, one `syncfs` of the target's file system has made every file, folder and
//! rename durable (ARCHITECTURE, "Restore and durability"). A power cut before that may leave
//! files with incomplete content under their names; the target was empty, so the restore is
//! simply run again into an empty folder.

use crate::error::{Error, Result};
use crate::index::Index;
use crate::lock::RepoLock;
use crate::progress::Progress;
use crate::repo::Repository;
use sealback_core::chunker::ChunkerParams;
use sealback_core::lock::LockKind;
use sealback_core::object::ObjectType;
use sealback_core::pack::BlobEntry;
use sealback_core::snapshot::{decode_content_list, Content, Node, NodeKind, Tree};
use sealback_core::{BlobId, Id, Keyring};
use sealback_store::Store;
use std::ffi::OsStr;
use std::future::Future;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// What a restore wrote.
#[derive(Clone, Debug, Default)]
pub struct RestoreReport {
    /// Files written.
    pub files: u64,
    /// Folders made.
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Files the backup left out by setting (videos), so not restored: paths under the
    /// snapshot's root.
    pub left_out: Vec<String>,
}

/// Restores the snapshot `id` into `target`, which must not exist or be empty.
pub async fn restore(
    repo: &mut Repository,
    id: &Id,
    target: &Path,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    // The shared lock keeps a prune from repacking what this restore is about to read.
    let lock = RepoLock::acquire(repo, LockKind::Shared, "restore").await?;
    let result = restore_locked(repo, id, target, progress).await;
    lock.release().await;
    result
}

async fn restore_locked(
    repo: &mut Repository,
    id: &Id,
    target: &Path,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let snapshot = repo.load_snapshot(id).await?;
    repo.refresh_index().await?;
    let repo = &*repo;
    match std::fs::read_dir(target) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(Error::Invalid(format!(
                    "{} is not empty; restore into a new or empty folder so nothing is overwritten",
                    target.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(target).map_err(|e| Error::io(target, e))?;
        }
        Err(e) => return Err(Error::io(target, e)),
    }
    let root = repo.load_tree(&snapshot.tree).await?;
    // First pass: folders and symlinks are made, the files to restore listed, and every
    // file's blobs looked up in the index, keeping nothing per blob: a blob that the index does
    // not know stops the restore before any file is written.
    let mut plan = Plan::default();
    plan_tree(repo, &root, target, &mut plan).await?;
    progress.start("restore", Some(snapshot.summary.bytes_read));
    let mut report = RestoreReport {
        dirs: plan.dirs.len() as u64,
        left_out: snapshot.left_out.clone(),
        ..Default::default()
    };
    // Second pass: the files, each locating its blobs again as it goes. Memory holds the list
    // of files and the files in flight, not a plan of every blob.
    // (On an error `files` is dropped: the tasks still running are cancelled, and their
    // temporary files removed with them.)
    let mut files = Files::new(repo, progress);
    for file in plan.files {
        files.submit(file).await?;
    }
    files.finish(&mut report).await?;
    // Folder times last: creating their files changed them.
    for (path, node) in plan.dirs.iter().rev() {
        set_meta(path, node)?;
    }
    sync_target(target)?;
    progress.finish();
    Ok(report)
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Most bytes read in one request when blobs are contiguous.
const RUN_MAX_BYTES: u64 = 4 << 20;
/// A run reads over a gap of at most this many bytes between two of its blobs (a content-list
/// or tree blob that a backup stored between a file's data blobs) rather than end there.
const RUN_GAP_MAX: u64 = 64 << 10;

/// What the first pass found, so that the second reads no tree again.
#[derive(Default)]
struct Plan {
    /// Files to restore, in the order of the walk.
    files: Vec<FileJob>,
    /// Folders made, parents before children.
    dirs: Vec<(PathBuf, Node)>,
}

/// A file to restore.
struct FileJob {
    path: PathBuf,
    node: Node,
    size: u64,
    content: Content,
}

/// Blobs that lie back to back in one pack (as a backup writes them, maybe with small gaps):
/// one ranged read.
struct Run {
    pack: Id,
    start: u64,
    len: u64,
    /// Each blob and where it starts in the run.
    blobs: Vec<(BlobEntry, usize)>,
}

/// Makes the folders and symlinks under `tree`, lists its files in `plan`, and checks that the
/// index knows every data blob of them.
fn plan_tree<'a>(
    repo: &'a Repository,
    tree: &'a Tree,
    dir: &'a Path,
    plan: &'a mut Plan,
) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let index = repo.index_shared();
        for node in &tree.nodes {
            let path = dir.join(OsStr::from_bytes(&node.name));
            match &node.kind {
                NodeKind::Dir { subtree } => {
                    let sub = repo.load_tree(subtree).await?;
                    std::fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
                    plan.dirs.push((path.clone(), node.clone()));
                    plan_tree(repo, &sub, &path, plan).await?;
                }
                NodeKind::File { size, content, .. } => {
                    let mut ids = DataIds::new(content.clone());
                    while let Some(id) = ids.next(repo.store(), repo.keyring(), &index).await? {
                        locate(&index, &id)?;
                    }
                    plan.files.push(FileJob {
                        path,
                        node: node.clone(),
                        size: *size,
                        content: ids.content,
                    });
                }
                NodeKind::Symlink { target } => {
                    std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
                        .map_err(|e| Error::io(&path, e))?;
                }
            }
        }
        Ok(())
    })
}

/// Where a data blob is; an integrity failure when the index does not know it as one.
fn locate(index: &Index, id: &BlobId) -> Result<crate::repo::BlobLocation> {
    let loc = index
        .lookup(id)
        .map_err(|e| Error::io(index.error_path(), e))?;
    let loc = loc.ok_or_else(|| {
        Error::Integrity(format!(
            "data blob {} is referenced but not in the index",
            id.short()
        ))
    })?;
    if loc.entry.ty != ObjectType::Data {
        return Err(Error::Integrity(format!(
            "{} is indexed as a {}, expected a data blob",
            id.short(),
            loc.entry.ty.name()
        )));
    }
    Ok(loc)
}

/// A file's data blob ids, one content list at a time.
struct DataIds {
    content: Content,
    /// The next content list to read.
    next_list: usize,
    /// Ids not handed out yet, in reverse order.
    ids: Vec<BlobId>,
}

impl DataIds {
    fn new(content: Content) -> Self {
        let ids = match &content {
            Content::Blobs(ids) => ids.iter().rev().copied().collect(),
            Content::Lists(_) => vec![],
        };
        Self {
            content,
            next_list: 0,
            ids,
        }
    }

    async fn next(
        &mut self,
        store: &Store,
        keyring: &Keyring,
        index: &Index,
    ) -> Result<Option<BlobId>> {
        loop {
            if let Some(id) = self.ids.pop() {
                return Ok(Some(id));
            }
            let Content::Lists(lists) = &self.content else {
                return Ok(None);
            };
            let Some(l) = lists.get(self.next_list) else {
                return Ok(None);
            };
            self.next_list += 1;
            let body = crate::repo::read_blob(
                store,
                keyring,
                index,
                ObjectType::ContentList,
                l,
                crate::repo::MAX_METADATA_LEN,
            )
            .await?;
            let mut ids = decode_content_list(&body)
                .map_err(|e| Error::format(format!("content list {}", l.short()), e))?;
            ids.reverse();
            self.ids = ids;
        }
    }
}

/// A file's runs, formed as its blobs are looked up.
struct Runs {
    ids: DataIds,
    /// A blob looked up that did not fit the run before.
    carry: Option<crate::repo::BlobLocation>,
}

impl Runs {
    async fn next(&mut self, shared: &Shared) -> Result<Option<Run>> {
        let mut run: Option<Run> = None;
        loop {
            let loc = match self.carry.take() {
                Some(loc) => loc,
                None => match self
                    .ids
                    .next(&shared.store, &shared.keyring, &shared.index)
                    .await?
                {
                    Some(id) => locate(&shared.index, &id)?,
                    None => return Ok(run),
                },
            };
            let offset = u64::from(loc.entry.offset);
            let length = u64::from(loc.entry.length);
            match run.as_mut() {
                None => {
                    run = Some(Run {
                        pack: loc.pack,
                        start: offset,
                        len: length,
                        blobs: vec![(loc.entry, 0)],
                    })
                }
                Some(r)
                    if r.pack == loc.pack
                        && offset >= r.start + r.len
                        && offset - (r.start + r.len) <= RUN_GAP_MAX
                        && offset + length - r.start <= RUN_MAX_BYTES =>
                {
                    r.blobs.push((loc.entry, (offset - r.start) as usize));
                    r.len = offset + length - r.start;
                }
                Some(_) => {
                    self.carry = Some(loc);
                    return Ok(run);
                }
            }
        }
    }
}

/// Files restored at once: each holds one run being read and one being opened and written
/// (at most about 3 × [`RUN_MAX_BYTES`]), so memory stays near 12 MiB a file.
fn files_in_flight() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(2)
        .clamp(2, 8)
}

/// Writes go through a buffer this large: a database restores as one blob per page, and a
/// write per 4 KiB page cost a system call each.
const WRITE_BUFFER: usize = 1 << 20;

/// What every file's task shares.
struct Shared {
    keyring: Arc<Keyring>,
    store: Store,
    index: Arc<Index>,
    /// Bytes written, reported to the caller's [`Progress`] by the coordinating task.
    progress: tokio::sync::mpsc::UnboundedSender<u64>,
}

/// The files being restored, [`files_in_flight`] at a time. Each file's task reads its runs
/// one ahead, opens and writes them on a blocking thread, and renames the complete file into
/// place; so storage reads, decryption and writing overlap within a file and across files.
/// Nothing is synced here: the caller syncs the file system once at the end.
struct Files<'p> {
    shared: Arc<Shared>,
    written: tokio::sync::mpsc::UnboundedReceiver<u64>,
    /// Dropped on an error: the tasks still running are cancelled, and their temporary files
    /// removed with them.
    tasks: tokio::task::JoinSet<Result<u64>>,
    limit: usize,
    progress: &'p dyn Progress,
    files: u64,
    bytes: u64,
}

impl<'p> Files<'p> {
    fn new(repo: &Repository, progress: &'p dyn Progress) -> Self {
        let (tx, written) = tokio::sync::mpsc::unbounded_channel();
        Self {
            shared: Arc::new(Shared {
                keyring: repo.keyring_shared(),
                store: repo.store().clone(),
                index: repo.index_shared(),
                progress: tx,
            }),
            written,
            tasks: tokio::task::JoinSet::new(),
            limit: files_in_flight(),
            progress,
            files: 0,
            bytes: 0,
        }
    }

    /// Starts restoring a file once fewer than the limit are in flight.
    async fn submit(&mut self, file: FileJob) -> Result<()> {
        while self.tasks.len() >= self.limit {
            self.wait_one().await?;
        }
        self.tasks.spawn(restore_file(self.shared.clone(), file));
        Ok(())
    }

    /// Waits until one file is done (reporting progress meanwhile).
    async fn wait_one(&mut self) -> Result<()> {
        loop {
            tokio::select! {
                Some(n) = self.written.recv() => self.progress.advance(n),
                done = self.tasks.join_next() => {
                    let Some(done) = done else { return Ok(()) };
                    let size = done.map_err(|e| {
                        Error::Invalid(format!("a restore task failed: {e}"))
                    })??;
                    self.files += 1;
                    self.bytes += size;
                    return Ok(());
                }
            }
        }
    }

    /// Waits for every file; counts them into `report`.
    async fn finish(mut self, report: &mut RestoreReport) -> Result<()> {
        while !self.tasks.is_empty() {
            self.wait_one().await?;
        }
        while let Ok(n) = self.written.try_recv() {
            self.progress.advance(n);
        }
        report.files = self.files;
        report.bytes = self.bytes;
        Ok(())
    }
}

/// The file being written, behind its write buffer; deleted when dropped, so a failure leaves
/// no partial file behind.
type Partial = std::io::BufWriter<tempfile::NamedTempFile>;

/// Restores one file: returns its size.
async fn restore_file(shared: Arc<Shared>, file: FileJob) -> Result<u64> {
    let FileJob {
        path,
        node,
        size,
        content,
    } = file;
    let dir = path
        .parent()
        .expect("a restored file has a parent")
        .to_owned();
    let tmp = tempfile::Builder::new()
        .prefix(".sealback-partial-")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    let mut out: Partial = std::io::BufWriter::with_capacity(WRITE_BUFFER, tmp);
    let mut written = 0u64;
    let mut runs = Runs {
        ids: DataIds::new(content),
        carry: None,
    };
    let mut next = runs
        .next(&shared)
        .await?
        .map(|run| read_run(&shared.store, run));
    while let Some((run, read)) = next.take() {
        // The next run is read while this one is opened and written.
        next = runs
            .next(&shared)
            .await?
            .map(|run| read_run(&shared.store, run));
        let bytes = read
            .await
            .map_err(|e| Error::Invalid(format!("a restore read task failed: {e}")))?
            .map_err(Error::referenced)?;
        let (shared2, path2) = (shared.clone(), path.clone());
        (out, written) = blocking(move || {
            let n = write_run(
                &shared2.keyring,
                &run,
                &bytes,
                &mut out,
                &path2,
                written,
                size,
            )?;
            let _ = shared2.progress.send(n - written);
            Ok((out, n))
        })
        .await?;
    }
    if written != size {
        return Err(Error::Integrity(format!(
            "{} should be {size} bytes but its content adds up to {written}",
            path.display()
        )));
    }
    blocking(move || {
        let tmp = out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        // Without a sync (the file system is synced once at the end of the restore, or each
        // file here where `syncfs` does not exist).
        #[cfg(not(target_os = "linux"))]
        tmp.as_file().sync_all().map_err(|e| Error::io(&path, e))?;
        tmp.persist_noclobber(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        set_meta(&path, &node)
    })
    .await?;
    Ok(size)
}

/// Starts reading a run's bytes.
fn read_run(
    store: &Store,
    run: Run,
) -> (
    Run,
    tokio::task::JoinHandle<std::result::Result<Vec<u8>, sealback_store::StoreError>>,
) {
    let store = store.clone();
    let path = crate::layout::pack(&run.pack);
    let (start, len) = (run.start, run.len);
    let read = tokio::spawn(async move { store.read_range(&path, start, len).await });
    (run, read)
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Invalid(format!("a restore thread failed: {e}")))?
}

/// Opens a run's blobs and appends them to `out`, which holds `written` bytes of a file of
/// `size`. Returns the bytes written so far. Blobs are opened a few at a time (one at a time, or
/// [`OPEN_BATCH`] over several threads), so only that many plaintexts are held at once: a run
/// of compressed database pages can open to several times its 4 MiB.
fn write_run(
    keyring: &Keyring,
    run: &Run,
    bytes: &[u8],
    out: &mut Partial,
    path: &Path,
    mut written: u64,
    size: u64,
) -> Result<u64> {
    let pack_path = crate::layout::pack(&run.pack);
    if bytes.len() as u64 != run.len {
        return Err(Error::Integrity(format!("{pack_path} is truncated")));
    }
    let batch = if run.blobs.len() < PARALLEL_OPEN_MIN {
        1
    } else {
        OPEN_BATCH
    };
    for group in run.blobs.chunks(batch) {
        for plain in open_blobs(keyring, group, bytes, &pack_path)? {
            written += plain.len() as u64;
            if written > size {
                return Err(Error::Integrity(format!(
                    "{} should be {size} bytes but its content is longer",
                    path.display()
                )));
            }
            out.write_all(&plain).map_err(|e| Error::io(path, e))?;
        }
    }
    Ok(written)
}

/// Blobs opened together over several threads.
const OPEN_BATCH: usize = 512;

/// Opens (decrypts, decompresses, re-hashes) `blobs` of a run read into `bytes`, on more threads
/// when there are many (a database's pages).
fn open_blobs(
    keyring: &Keyring,
    blobs: &[(BlobEntry, usize)],
    bytes: &[u8],
    path: &str,
) -> Result<Vec<Vec<u8>>> {
    let open = |(entry, from): &(BlobEntry, usize)| {
        let sealed = &bytes[*from..from + entry.length as usize];
        crate::repo::open_blob(keyring, entry, sealed, ChunkerParams::V1.max, path)
    };
    if blobs.len() < PARALLEL_OPEN_MIN {
        return blobs.iter().map(open).collect();
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let per = blobs.len().div_ceil(workers);
    let open = &open;
    std::thread::scope(|scope| {
        let handles: Vec<_> = blobs
            .chunks(per)
            .map(|group| scope.spawn(move || group.iter().map(open).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a restore thread panicked"))
            .collect()
    })
}

/// Runs of fewer blobs are opened on the file's own thread (other files keep the other cores
/// busy); more, such as a database's pages, are spread over threads.
const PARALLEL_OPEN_MIN: usize = 64;

/// Makes everything this restore wrote durable: one `syncfs` of the target's file system
/// (Linux), which also reports any write that failed on its way to the disk. Elsewhere each file
/// was synced before its rename.
fn sync_target(target: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let dir = std::fs::File::open(target).map_err(|e| Error::io(target, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io(target, e.into()))?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = target;
    Ok(())
}

fn set_meta(path: &Path, node: &Node) -> Result<()> {
    // Before 1970 too (a restore once turned a 1960 file into 1970). A time this platform
    // cannot represent leaves the mtime of the restore, with a warning.
    match node.mtime() {
        Some(mtime) => std::fs::File::options()
            .read(true)
            .open(path)
            .and_then(|f| f.set_modified(mtime))
            .map_err(|e| Error::io(path, e))?,
        None => {
            tracing::warn!(path = %path.display(), secs = node.mtime_s, "mtime out of range; not set")
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode & 0o7777))
        .map_err(|e| Error::io(path, e))
}
