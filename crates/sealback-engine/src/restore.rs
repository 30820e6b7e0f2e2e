//! Restore: write a snapshot's files into a target folder.
//!
//! Every blob is authenticated and its id recomputed before a byte of it is written, and each
//! file is written to a temporary name and renamed into place only when complete and of the
//! recorded size. A failure removes the partial file, so a restore never leaves a wrong file
//! under a real name.

use crate::error::{Error, Result};
use crate::lock::RepoLock;
use crate::progress::Progress;
use crate::repo::Repository;
use sealback_core::chunker::ChunkerParams;
use sealback_core::lock::LockKind;
use sealback_core::object::ObjectType;
use sealback_core::pack::BlobEntry;
use sealback_core::snapshot::{decode_content_list, Content, Node, NodeKind, Tree};
use sealback_core::{BlobId, Id};
use std::ffi::OsStr;
use std::future::Future;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;

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
    // Plan first: folders and symlinks are made, every file's blobs are located. A blob that
    // the index does not know stops the restore before any file is written.
    let mut plan = Plan::default();
    plan_tree(repo, &root, target, &mut plan).await?;
    progress.start("restore", Some(snapshot.summary.bytes_read));
    let mut report = RestoreReport {
        dirs: plan.dirs.len() as u64,
        left_out: snapshot.left_out.clone(),
        ..Default::default()
    };
    write_files(repo, &plan.files, progress, &mut report).await?;
    // Folder times last: creating their files changed them.
    for (path, node) in plan.dirs.iter().rev() {
        set_meta(path, node)?;
    }
    progress.finish();
    Ok(report)
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Reads of up to [`RUN_MAX_BYTES`] in flight ahead of the writer (bounds memory to about
/// `READS_AHEAD` × 16 MiB while hiding storage latency).
const READS_AHEAD: usize = 4;
/// Most bytes read in one request when blobs are contiguous.
const RUN_MAX_BYTES: u64 = 4 << 20;

/// What a restore will do.
#[derive(Default)]
struct Plan {
    files: Vec<FileJob>,
    /// Folders made, parents before children.
    dirs: Vec<(PathBuf, Node)>,
}

struct FileJob {
    path: PathBuf,
    node: Node,
    size: u64,
    runs: Vec<Run>,
}

/// Blobs that lie back to back in one pack (as a backup writes them): one ranged read.
struct Run {
    pack: Id,
    start: u64,
    len: u64,
    /// Each blob and where it starts in the run.
    blobs: Vec<(BlobEntry, usize)>,
}

fn plan_tree<'a>(
    repo: &'a Repository,
    tree: &'a Tree,
    dir: &'a Path,
    plan: &'a mut Plan,
) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
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
                    let ids = data_ids(repo, content).await?;
                    plan.files.push(FileJob {
                        runs: runs(repo, &ids)?,
                        path,
                        node: node.clone(),
                        size: *size,
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

/// The data blob ids of a file, resolving content lists.
pub async fn data_ids(repo: &Repository, content: &Content) -> Result<Vec<BlobId>> {
    Ok(match content {
        Content::Blobs(ids) => ids.clone(),
        Content::Lists(lists) => {
            let mut ids = vec![];
            for l in lists {
                let body = repo
                    .read_blob(ObjectType::ContentList, l, crate::repo::MAX_METADATA_LEN)
                    .await?;
                ids.extend(
                    decode_content_list(&body)
                        .map_err(|e| Error::format(format!("content list {}", l.short()), e))?,
                );
            }
            ids
        }
    })
}

/// Groups a file's blobs into runs of contiguous blobs in one pack.
fn runs(repo: &Repository, ids: &[BlobId]) -> Result<Vec<Run>> {
    let mut out: Vec<Run> = vec![];
    for id in ids {
        let loc = repo.lookup(id).ok_or_else(|| {
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
        let offset = u64::from(loc.entry.offset);
        let length = u64::from(loc.entry.length);
        match out.last_mut() {
            Some(run)
                if run.pack == loc.pack
                    && run.start + run.len == offset
                    && run.len + length <= RUN_MAX_BYTES =>
            {
                run.blobs.push((loc.entry, run.len as usize));
                run.len += length;
            }
            _ => out.push(Run {
                pack: loc.pack,
                start: offset,
                len: length,
                blobs: vec![(loc.entry, 0)],
            }),
        }
    }
    Ok(out)
}

/// A file written to its temporary name, to be synced and renamed into place.
type Finished = (tempfile::NamedTempFile, PathBuf, Node);

/// Writes every file: reads run ahead as tokio tasks, blobs are opened on worker threads, and
/// each complete file is synced and renamed into place by a finisher thread, so storage
/// latency, decryption, writing and `fsync` overlap.
async fn write_files(
    repo: &Repository,
    files: &[FileJob],
    progress: &dyn Progress,
    report: &mut RestoreReport,
) -> Result<()> {
    let (to_finisher, finished) = std::sync::mpsc::sync_channel::<Finished>(64);
    let finisher = std::thread::spawn(move || -> Result<()> {
        for (tmp, path, node) in finished {
            tmp.as_file().sync_all().map_err(|e| Error::io(&path, e))?;
            tmp.persist_noclobber(&path)
                .map_err(|e| Error::io(&path, e.error))?;
            set_meta(&path, &node)?;
        }
        Ok(())
    });
    let written = write_files_into(repo, files, progress, report, &to_finisher).await;
    drop(to_finisher);
    let finished = finisher.join().unwrap_or_else(|_| {
        Err(Error::Invalid(
            "the restore finisher thread panicked".into(),
        ))
    });
    // The writer's error first: a finisher that stopped early is usually its consequence.
    written.and(finished)
}

async fn write_files_into(
    repo: &Repository,
    files: &[FileJob],
    progress: &dyn Progress,
    report: &mut RestoreReport,
    to_finisher: &std::sync::mpsc::SyncSender<Finished>,
) -> Result<()> {
    let mut pending = files.iter().flat_map(|f| f.runs.iter());
    let mut in_flight = std::collections::VecDeque::new();
    let mut start_read = |in_flight: &mut std::collections::VecDeque<_>| {
        if let Some(run) = pending.next() {
            let store = repo.store().clone();
            let path = crate::layout::pack(&run.pack);
            let (start, len) = (run.start, run.len);
            in_flight.push_back(tokio::spawn(async move {
                store.read_range(&path, start, len).await
            }));
        }
    };
    for _ in 0..READS_AHEAD {
        start_read(&mut in_flight);
    }
    for file in files {
        let dir = file.path.parent().expect("a restored file has a parent");
        // Deleted when dropped, so a failure leaves no partial file behind.
        let mut tmp = tempfile::Builder::new()
            .prefix(".sealback-partial-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let mut written = 0u64;
        for run in &file.runs {
            let read = in_flight.pop_front().expect("a read per run");
            start_read(&mut in_flight);
            let bytes = read
                .await
                .map_err(|e| Error::Invalid(format!("a restore read task failed: {e}")))?
                .map_err(Error::referenced)?;
            for plain in open_run(repo, run, &bytes)? {
                written += plain.len() as u64;
                if written > file.size {
                    break;
                }
                tmp.write_all(&plain)
                    .map_err(|e| Error::io(&file.path, e))?;
                progress.advance(plain.len() as u64);
            }
        }
        if written != file.size {
            return Err(Error::Integrity(format!(
                "{} should be {} bytes but its content adds up to {written}",
                file.path.display(),
                file.size
            )));
        }
        if to_finisher
            .send((tmp, file.path.clone(), file.node.clone()))
            .is_err()
        {
            // The finisher stopped on an error, which `write_files` reports.
            return Ok(());
        }
        report.files += 1;
        report.bytes += file.size;
    }
    Ok(())
}

/// Opens (decrypts, decompresses, re-hashes) the blobs of a run on the worker threads.
fn open_run(repo: &Repository, run: &Run, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let path = crate::layout::pack(&run.pack);
    if bytes.len() as u64 != run.len {
        return Err(Error::Integrity(format!("{path} is truncated")));
    }
    let open = |(entry, from): &(BlobEntry, usize)| {
        let sealed = &bytes[*from..from + entry.length as usize];
        repo.open_blob(entry, sealed, ChunkerParams::V1.max, &path)
    };
    if run.blobs.len() == 1 {
        return Ok(vec![open(&run.blobs[0])?]);
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let per = run.blobs.len().div_ceil(workers);
    let open = &open;
    std::thread::scope(|scope| {
        let handles: Vec<_> = run
            .blobs
            .chunks(per)
            .map(|group| scope.spawn(move || group.iter().map(open).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a restore thread panicked"))
            .collect()
    })
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
