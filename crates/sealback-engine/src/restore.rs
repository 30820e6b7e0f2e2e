//! Restore: write a snapshot's files into a target folder.
//!
//! Every blob is authenticated and its id recomputed before a byte of it is written, and each
//! file is written to a temporary name and renamed into place only when complete and of the
//! recorded size. A failure removes the partial file, so a restore never leaves a wrong file
//! under a real name.

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::lock::RepoLock;
use sealback_core::lock::LockKind;
use crate::repo::Repository;
use sealback_core::chunker::ChunkerParams;
use sealback_core::object::ObjectType;
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
    progress.start("restore", Some(snapshot.summary.bytes_read));
    let mut report = RestoreReport::default();
    restore_tree(repo, &root, target, progress, &mut report).await?;
    progress.finish();
    Ok(report)
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

fn restore_tree<'a>(
    repo: &'a Repository,
    tree: &'a Tree,
    dir: &'a Path,
    progress: &'a dyn Progress,
    report: &'a mut RestoreReport,
) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        for node in &tree.nodes {
            let path = dir.join(OsStr::from_bytes(&node.name));
            match &node.kind {
                NodeKind::Dir { subtree } => {
                    let sub = repo.load_tree(subtree).await?;
                    std::fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
                    report.dirs += 1;
                    restore_tree(repo, &sub, &path, progress, report).await?;
                    set_meta(&path, node)?;
                }
                NodeKind::File { size, content, .. } => {
                    restore_file(repo, node, *size, content, &path, progress).await?;
                    report.files += 1;
                    report.bytes += size;
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

async fn restore_file(
    repo: &Repository,
    node: &Node,
    size: u64,
    content: &Content,
    path: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let dir = path.parent().expect("a restored file has a parent");
    let mut tmp = tempfile::Builder::new()
        .prefix(".sealback-partial-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let mut written = 0u64;
    let ids = data_ids(repo, content).await?;
    let mut i = 0;
    while i < ids.len() && written <= size {
        // Blobs that lie back to back in one pack (as a backup writes them) are read with one
        // request and opened on the worker threads.
        let run = contiguous_run(repo, &ids[i..]);
        let plains = if run <= 1 {
            vec![
                repo.read_blob(ObjectType::Data, &ids[i], ChunkerParams::V1.max)
                    .await?,
            ]
        } else {
            read_run(repo, &ids[i..i + run]).await?
        };
        i += run.max(1);
        for plain in plains {
            written += plain.len() as u64;
            if written > size {
                break;
            }
            tmp.write_all(&plain).map_err(|e| Error::io(path, e))?;
            progress.advance(plain.len() as u64);
        }
    }
    if written != size {
        // `tmp` is deleted when dropped.
        return Err(Error::Integrity(format!(
            "{} should be {size} bytes but its content adds up to {written}",
            path.display()
        )));
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    let file: PathBuf = path.to_path_buf();
    tmp.persist_noclobber(&file)
        .map_err(|e| Error::io(&file, e.error))?;
    set_meta(&file, node)
}

/// Most bytes read in one request when blobs are contiguous.
const RUN_MAX_BYTES: u64 = 16 << 20;

/// How many of `ids`, from the first, are Data blobs stored back to back in one pack.
fn contiguous_run(repo: &Repository, ids: &[BlobId]) -> usize {
    let Some(first) = repo.lookup(&ids[0]) else {
        return 0;
    };
    if first.entry.ty != ObjectType::Data {
        return 0;
    }
    let start = u64::from(first.entry.offset);
    let mut end = start + u64::from(first.entry.length);
    let mut n = 1;
    for id in &ids[1..] {
        match repo.lookup(id) {
            Some(l)
                if l.pack == first.pack
                    && l.entry.ty == ObjectType::Data
                    && u64::from(l.entry.offset) == end
                    && end + u64::from(l.entry.length) - start <= RUN_MAX_BYTES =>
            {
                end += u64::from(l.entry.length);
                n += 1;
            }
            _ => break,
        }
    }
    n
}

/// Reads a contiguous run of blobs with one request and opens them (decrypt, decompress,
/// verify the id) on the worker threads.
async fn read_run(repo: &Repository, ids: &[BlobId]) -> Result<Vec<Vec<u8>>> {
    let locs: Vec<_> = ids
        .iter()
        .map(|id| repo.lookup(id).expect("contiguous_run checked"))
        .collect();
    let start = u64::from(locs[0].entry.offset);
    let last = locs.last().expect("a run is not empty");
    let end = u64::from(last.entry.offset) + u64::from(last.entry.length);
    let path = crate::layout::pack(&locs[0].pack);
    let bytes = repo
        .store()
        .read_range(&path, start, end - start)
        .await
        .map_err(Error::referenced)?;
    let parts: Vec<(&BlobId, &[u8])> = ids
        .iter()
        .zip(&locs)
        .map(|(id, l)| {
            let from = (u64::from(l.entry.offset) - start) as usize;
            (id, &bytes[from..from + l.entry.length as usize])
        })
        .collect();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let per = parts.len().div_ceil(workers);
    let path = &path;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .chunks(per)
            .map(|group| {
                scope.spawn(move || {
                    group
                        .iter()
                        .map(|(id, sealed)| {
                            repo.open_blob(
                                ObjectType::Data,
                                id,
                                sealed,
                                ChunkerParams::V1.max,
                                path,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a restore thread panicked"))
            .collect()
    })
}

fn set_meta(path: &Path, node: &Node) -> Result<()> {
    let mtime = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::new(
            node.mtime_s.max(0) as u64,
            node.mtime_ns,
        ))
        .unwrap_or(std::time::UNIX_EPOCH);
    let f = std::fs::File::options()
        .read(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.set_modified(mtime).map_err(|e| Error::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode & 0o7777))
        .map_err(|e| Error::io(path, e))
}
