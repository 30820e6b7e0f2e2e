//! Prune: delete the data no snapshot uses any more, under an exclusive lock.
//!
//! 1. Take the exclusive lock ([`crate::lock`]): no backup, restore, check or forget runs.
//! 2. Walk every snapshot's trees and content lists: the set of blobs in use. Anything that
//!    cannot be read stops the prune before it deletes anything.
//! 3. Sort packs: fully used (kept), unused (deleted), partly used (repacked when that brings
//!    the unused share down to `max_unused_percent` of the used bytes, most wasteful first), and
//!    packs that no index names (left by interrupted backups: deleted).
//! 4. Before writing anything, delete what frees space and that nothing can refer to: packs
//!    no index names, and index files that name only packs to delete (a failed backup's). When
//!    no remaining index file names a pack to delete and nothing is repacked, the packs are
//!    deleted next and prune is done: on a full drive it needs room only for its lock, which
//!    the space reserve provides (SPEC §11a).
//! 5. Repack: read each chosen pack, authenticate every blob still in use (a damaged blob stops
//!    the prune) and copy its sealed bytes unchanged into new (version 2) packs; a blob of a
//!    version 1 pack is sealed again as a headerless, padded blob. With `upgrade_packs`, every
//!    version 1 pack in use is chosen too.
//! 6. Write the new index (every kept pack and every new pack), then delete the old index
//!    files, then the packs. Killed at any point, the repository stays whole: until the old
//!    index files go, blobs are listed twice (allowed, SPEC §10); once they are gone, nothing
//!    names a pack that is about to be deleted.

use crate::error::{Error, Result};
use crate::layout;
use crate::lock::RepoLock;
use crate::os_rng;
use crate::progress::Progress;
use crate::repo::{Repository, MAX_METADATA_LEN};
use sealback_core::chunker::ChunkerParams;
use sealback_core::index::IndexFile;
use sealback_core::lock::LockKind;
use sealback_core::object::{Compression, ObjectType};
use sealback_core::pack::{self, BlobEntry, PackBuilder};
use sealback_core::snapshot::{decode_content_list, Content, NodeKind};
use sealback_core::{BlobId, Id};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// Entries per new index file (about 8 MB each).
const INDEX_ENTRIES_MAX: usize = 100_000;

/// How to prune.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Unused bytes that may stay in partly used packs, as a percentage of the used bytes
    /// (restic's `--max-unused`). 0 repacks every partly used pack.
    pub max_unused_percent: f64,
    /// Only report what would be done.
    pub dry_run: bool,
    /// New packs are closed at about this size.
    pub pack_target: usize,
    /// Also rewrite every version 1 pack still in use (clear object headers: they show each
    /// blob's place and size, SPEC §9) as version 2, whether or not it has unused space.
    pub upgrade_packs: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            max_unused_percent: 5.0,
            dry_run: false,
            pack_target: crate::backup::PACK_TARGET,
            upgrade_packs: false,
        }
    }
}

/// What a prune did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default)]
pub struct PruneReport {
    /// Snapshots whose data was kept.
    pub snapshots: usize,
    /// Blobs in use.
    pub blobs_used: usize,
    /// Packs kept as they are.
    pub packs_kept: usize,
    /// Packs deleted because nothing in them is used.
    pub packs_deleted: usize,
    /// Packs rewritten because much of them is unused.
    pub packs_repacked: usize,
    /// New packs written by repacking.
    pub packs_written: usize,
    /// Packs that no index named (left by interrupted backups), deleted.
    pub orphan_packs_deleted: usize,
    /// Bytes of packs deleted (including repacked and orphan packs).
    pub bytes_deleted: u64,
    /// Bytes of blobs copied into new packs.
    pub bytes_repacked: u64,
    /// Unused bytes left in kept packs.
    pub bytes_unused_left: u64,
    /// Bytes of blobs in use.
    pub bytes_used: u64,
    /// Index files replaced.
    pub index_files_replaced: usize,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Wall time.
    pub duration: Duration,
}

/// Deletes unused data. See the module documentation for the steps and why an interruption
/// loses nothing.
pub async fn prune(
    repo: &mut Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    if !(0.0..=100.0).contains(&opts.max_unused_percent) {
        return Err(Error::Invalid(
            "--max-unused must be a percentage from 0 to 100".into(),
        ));
    }
    // Prune is what frees a full drive: it may take its lock from the space reserve.
    let mut lock = RepoLock::acquire_to_free_space(repo, LockKind::Exclusive, "prune").await?;
    repo.remove_stale_temp_files();
    let result = prune_locked(repo, &mut lock, opts, progress).await;
    lock.release().await;
    repo.restore_reserve().await;
    // Whatever happened, the in-memory index must describe storage again.
    let reloaded = repo.load_index().await;
    let report = result?;
    reloaded?;
    Ok(report)
}

/// A pack as the index files describe it.
#[derive(Default)]
struct PackUse {
    /// Every entry, without duplicates.
    entries: Vec<BlobEntry>,
    /// Entries whose blob is used and kept from this pack.
    used: Vec<BlobEntry>,
    used_bytes: u64,
    unused_bytes: u64,
}

async fn prune_locked(
    repo: &mut Repository,
    lock: &mut RepoLock,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let started = Instant::now();
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    repo.load_index().await?;

    // 2. What is in use.
    let snapshots = repo.list_snapshots().await?;
    report.snapshots = snapshots.len();
    let used = used_blobs(&*repo, snapshots.iter().map(|(_, s)| s.tree)).await?;
    report.blobs_used = used.len();

    // 3. Sort packs.
    let index_files = repo.read_index_files().await?;
    let mut packs: BTreeMap<Id, PackUse> = BTreeMap::new();
    for (_, file) in &index_files {
        for (pack_id, entries) in &file.packs {
            packs
                .entry(*pack_id)
                .or_default()
                .entries
                .extend_from_slice(entries);
        }
    }
    for p in packs.values_mut() {
        // A pack named by two index files (an interrupted prune) is listed once.
        p.entries.sort_by_key(|e| (e.offset, e.id));
        p.entries.dedup_by_key(|e| (e.offset, e.id));
    }
    let stored: HashSet<Id> = repo.stored_packs().await?;
    let mut found: HashSet<BlobId> = HashSet::new();
    for (pack_id, p) in packs.iter_mut() {
        if !stored.contains(pack_id) {
            // Indexed but gone: its blobs cannot be kept from here.
            continue;
        }
        for e in &p.entries {
            if used.contains(&e.id) && found.insert(e.id) {
                p.used.push(*e);
                p.used_bytes += u64::from(e.length);
            } else {
                p.unused_bytes += u64::from(e.length);
            }
        }
    }
    let missing: Vec<&BlobId> = used.iter().filter(|id| !found.contains(id)).collect();
    if !missing.is_empty() {
        return Err(Error::Integrity(format!(
            "{} blob(s) that snapshots use are not in any stored pack (first: {}); prune deleted \
             nothing. Run `sealback check --read-data` to see which snapshots are affected",
            missing.len(),
            missing[0].short()
        )));
    }
    let orphans: Vec<Id> = stored
        .iter()
        .filter(|id| !packs.contains_key(id))
        .copied()
        .collect();
    let mut delete: HashSet<Id> = HashSet::new();
    let mut partial: Vec<(Id, u64, u64)> = vec![];
    for (pack_id, p) in &packs {
        if !stored.contains(pack_id) {
            continue;
        }
        report.bytes_used += p.used_bytes;
        if p.used.is_empty() {
            delete.insert(*pack_id);
        } else if p.unused_bytes > 0 {
            partial.push((*pack_id, p.used_bytes, p.unused_bytes));
        }
    }
    // Most wasteful first, until what stays unused is within the allowance.
    partial.sort_by(|a, b| {
        let ra = a.2 as f64 / (a.1 + a.2) as f64;
        let rb = b.2 as f64 / (b.1 + b.2) as f64;
        rb.total_cmp(&ra).then(a.0.cmp(&b.0))
    });
    let allowed = (report.bytes_used as f64 * opts.max_unused_percent / 100.0) as u64;
    let mut unused_left: u64 = partial.iter().map(|p| p.2).sum();
    let mut repack: Vec<Id> = vec![];
    let mut repack_set: HashSet<Id> = HashSet::new();
    for (pack_id, _, unused) in &partial {
        if unused_left <= allowed {
            break;
        }
        repack.push(*pack_id);
        repack_set.insert(*pack_id);
        unused_left -= unused;
    }
    if opts.upgrade_packs {
        for (pack_id, p) in &packs {
            let old = pack::version_of(&p.entries) == pack::VERSION_1;
            if old
                && stored.contains(pack_id)
                && !delete.contains(pack_id)
                && repack_set.insert(*pack_id)
            {
                repack.push(*pack_id);
            }
        }
    }
    report.bytes_unused_left = unused_left;
    report.packs_deleted = delete.len();
    report.packs_repacked = repack.len();
    report.orphan_packs_deleted = orphans.len();
    let keep = |id: &Id| stored.contains(id) && !delete.contains(id) && !repack_set.contains(id);
    report.packs_kept = packs.keys().filter(|id| keep(id)).count();
    report.index_files_replaced = index_files.len();
    let pack_size = |id: &Id| -> u64 {
        packs
            .get(id)
            .map(|p| p.entries.iter().map(|e| u64::from(e.length)).sum())
            .unwrap_or(0)
    };
    report.bytes_deleted = delete.iter().chain(&repack).map(pack_size).sum();
    report.bytes_repacked = repack.iter().map(|id| packs[id].used_bytes).sum();
    if opts.dry_run {
        report.duration = started.elapsed();
        return Ok(report);
    }
    if delete.is_empty() && repack.is_empty() && orphans.is_empty() {
        report.index_files_replaced = 0;
        report.duration = started.elapsed();
        return Ok(report);
    }

    // 4. First what frees space without writing anything, so a prune runs on a full drive:
    // packs that no index names, and index files that name only packs about to be deleted
    // (those of a backup that failed). Under the exclusive lock nothing can come to refer to
    // either, and killed after this the rest of the repository is as before.
    lock.confirm(&*repo).await?;
    let (dead, live): (Vec<_>, Vec<_>) = index_files
        .iter()
        .partition(|(_, f)| f.packs.iter().all(|(p, _)| delete.contains(p)));
    for (id, _) in &dead {
        repo.store().delete(&layout::index(id)).await?;
    }
    for id in &orphans {
        repo.store().delete(&layout::pack(id)).await?;
    }
    let names_deleted = |f: &IndexFile| f.packs.iter().any(|(p, _)| delete.contains(p));
    if repack.is_empty() && !live.iter().any(|(_, f)| names_deleted(f)) {
        // No index file left names a pack to delete: the packs go without a new index.
        report.index_files_replaced = dead.len();
        for id in &delete {
            repo.store().delete(&layout::pack(id)).await?;
        }
        report.duration = started.elapsed();
        return Ok(report);
    }

    // 5. Repack.
    progress.start("prune", Some(report.bytes_repacked));
    let mut rng = os_rng();
    let mut new_packs: Vec<(Id, Vec<BlobEntry>)> = vec![];
    let mut builder = PackBuilder::new();
    for pack_id in &repack {
        let path = layout::pack(pack_id);
        let bytes = repo.store().read(&path).await.map_err(Error::referenced)?;
        let header = pack::read_header(repo.keyring(), pack_id, &bytes)
            .map_err(|e| Error::Integrity(format!("{path}: {e}")))?;
        for e in &packs[pack_id].used {
            if !header.contains(e) {
                return Err(Error::Integrity(format!(
                    "{path}: the index places blob {} where the pack header does not; prune \
                     deleted nothing",
                    e.id.short()
                )));
            }
            let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            let max = if e.ty == ObjectType::Data {
                ChunkerParams::V1.max
            } else {
                MAX_METADATA_LEN
            };
            // Authenticate before copying: a damaged blob must not be carried forward as if
            // it were whole.
            let plain = repo.open_blob(e, sealed, max, &path)?;
            match e.epoch {
                // Headerless already: copied as it is.
                Some(epoch) => builder.add(e.ty, e.id, epoch, sealed, e.raw_length as usize),
                // A version 1 blob shows its boundaries: sealed again, headerless and padded.
                None => {
                    let resealed = pack::seal_blob(
                        repo.keyring(),
                        e.ty,
                        &e.id,
                        &plain,
                        Compression::Zstd(crate::backup::ZSTD_LEVEL),
                        &mut rng,
                    );
                    builder.add(e.ty, e.id, resealed.epoch, &resealed.bytes, plain.len());
                }
            }
            progress.advance(u64::from(e.length));
            if builder.len() >= opts.pack_target {
                new_packs.push(write_pack(&*repo, std::mem::take(&mut builder), &mut rng).await?);
                lock.refresh_if_due(&*repo).await?;
            }
        }
    }
    if !builder.is_empty() {
        new_packs.push(write_pack(&*repo, builder, &mut rng).await?);
    }
    report.packs_written = new_packs.len();

    // 6. The new index, then deletions.
    let mut kept: Vec<(Id, Vec<BlobEntry>)> = packs
        .iter()
        .filter(|(id, _)| keep(id))
        .map(|(id, p)| (*id, p.entries.clone()))
        .collect();
    kept.extend(new_packs);
    lock.confirm(&*repo).await?;
    let mut file = IndexFile::default();
    let mut entries_in_file = 0;
    for (pack_id, entries) in kept {
        entries_in_file += entries.len();
        file.packs.push((pack_id, entries));
        if entries_in_file >= INDEX_ENTRIES_MAX {
            repo.save_index(std::mem::take(&mut file)).await?;
            entries_in_file = 0;
        }
    }
    repo.save_index(file).await?;
    lock.confirm(&*repo).await?;
    for (id, _) in &live {
        repo.store().delete(&layout::index(id)).await?;
    }
    for id in delete.iter().chain(&repack) {
        repo.store().delete(&layout::pack(id)).await?;
    }
    progress.finish();
    report.duration = started.elapsed();
    Ok(report)
}

/// Every blob the trees reachable from `roots` use: trees, content lists and data.
pub(crate) async fn used_blobs(
    repo: &Repository,
    roots: impl Iterator<Item = Id>,
) -> Result<HashSet<BlobId>> {
    let mut used: HashSet<BlobId> = HashSet::new();
    let mut stack: Vec<Id> = roots.collect();
    while let Some(tree_id) = stack.pop() {
        if !used.insert(tree_id) {
            continue;
        }
        let tree = repo.load_tree(&tree_id).await.map_err(stop)?;
        for node in &tree.nodes {
            match &node.kind {
                NodeKind::Dir { subtree } => stack.push(*subtree),
                NodeKind::File { content, .. } => match content {
                    Content::Blobs(ids) => used.extend(ids.iter().copied()),
                    Content::Lists(lists) => {
                        for list in lists {
                            if !used.insert(*list) {
                                continue;
                            }
                            let body = repo
                                .read_blob(ObjectType::ContentList, list, MAX_METADATA_LEN)
                                .await
                                .map_err(stop)?;
                            let ids = decode_content_list(&body).map_err(|e| {
                                stop(Error::Integrity(format!(
                                    "content list {}: {e}",
                                    list.short()
                                )))
                            })?;
                            used.extend(ids);
                        }
                    }
                },
                NodeKind::Symlink { .. } => {}
            }
        }
    }
    Ok(used)
}

/// A snapshot that cannot be read stops the prune: deleting by an incomplete picture of what
/// is used would delete data that is.
fn stop(e: Error) -> Error {
    match e {
        Error::Integrity(msg) => Error::Integrity(format!(
            "{msg}; prune deleted nothing (run `sealback check` to see which snapshots are affected)"
        )),
        other => other,
    }
}

async fn write_pack(
    repo: &Repository,
    builder: PackBuilder,
    rng: &mut crate::OsRng,
) -> Result<(Id, Vec<BlobEntry>)> {
    let pack_id = Id::random(rng);
    let (bytes, entries) = builder.finish(repo.keyring(), &pack_id, rng);
    repo.store().write(&layout::pack(&pack_id), bytes).await?;
    Ok((pack_id, entries))
}
