//! Check: verify that every snapshot can be restored.
//!
//! Without `read_data`: every index file and snapshot opens, every tree opens, every blob a
//! snapshot needs is in the index, and every pack the index names exists. With `read_data`:
//! additionally every pack is read in full, its header must open and agree with the index, and
//! every blob must open and match its id.
//!
//! With a device record ([`check_with_device_record`], see [`crate::seen`]): the newest
//! snapshot this device saw must still be there, or something newer; otherwise the newest
//! snapshots were deleted (or the repository rolled back), which is a problem too.

use crate::error::{Error, Result};
use crate::layout;
use crate::lock::RepoLock;
use crate::progress::Progress;
use crate::repo::{Repository, MAX_METADATA_LEN};
use sealback_core::chunker::ChunkerParams;
use sealback_core::lock::LockKind;
use sealback_core::object::ObjectType;
use sealback_core::pack;
use sealback_core::snapshot::{decode_content_list, Content, NodeKind};
use sealback_core::{BlobId, Id};
use std::collections::{BTreeMap, HashSet};

/// What a check found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs in storage.
    pub packs: usize,
    /// Blobs in the index.
    pub blobs: usize,
    /// Bytes read and verified with `read_data`.
    pub bytes_verified: u64,
    /// Integrity failures. Empty means the repository is sound.
    pub problems: Vec<String>,
    /// Things worth knowing that lose nothing (for example packs left by an interrupted backup).
    pub warnings: Vec<String>,
}

impl CheckReport {
    /// `Err(Integrity)` naming the first problems when there are any.
    pub fn into_result(self) -> Result<Self> {
        if self.problems.is_empty() {
            return Ok(self);
        }
        let shown: Vec<_> = self.problems.iter().take(5).cloned().collect();
        let more = self.problems.len().saturating_sub(5);
        let mut msg = format!("{} problem(s): {}", self.problems.len(), shown.join("; "));
        if more > 0 {
            msg.push_str(&format!("; and {more} more"));
        }
        Err(Error::Integrity(msg))
    }
}

/// Checks the repository; problems are collected, not returned as errors, so one run lists
/// all of them.
pub async fn check(
    repo: &mut Repository,
    read_data: bool,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    check_inner(repo, read_data, progress, None).await
}

/// [`check`], and also against this device's record of the newest snapshot it has seen (the
/// file [`crate::seen::record_path`] names): snapshots this device saw that are gone, with
/// nothing newer in their place, are a problem. The record moves forward when all is well.
pub async fn check_with_device_record(
    repo: &mut Repository,
    read_data: bool,
    progress: &dyn Progress,
    record: &std::path::Path,
) -> Result<CheckReport> {
    check_inner(repo, read_data, progress, Some(record)).await
}

async fn check_inner(
    repo: &mut Repository,
    read_data: bool,
    progress: &dyn Progress,
    record: Option<&std::path::Path>,
) -> Result<CheckReport> {
    let lock = RepoLock::acquire(repo, LockKind::Shared, "check").await?;
    let result = check_locked(repo, read_data, progress, record).await;
    lock.release().await;
    result
}

/// What the device record says about the snapshots listed now, as a problem to report.
fn rollback_problem(
    record: &std::path::Path,
    snapshots: &[(Id, sealback_core::snapshot::Snapshot)],
) -> Result<Option<String>> {
    let Some(suspected) = crate::seen::check_and_record(record, snapshots)? else {
        return Ok(None);
    };
    Ok(Some(format!(
        "{suspected}. If you ran `forget` on that snapshot on another device, this is expected: \
         the next backup from this device clears it"
    )))
}

async fn check_locked(
    repo: &mut Repository,
    read_data: bool,
    progress: &dyn Progress,
    record: Option<&std::path::Path>,
) -> Result<CheckReport> {
    // Snapshots first, the index second: a backup running alongside writes its index before
    // its snapshot, so every snapshot listed here has its blobs in the index loaded next.
    let mut problems = vec![];
    let snapshots = match repo.list_snapshots().await {
        Ok(s) => s,
        Err(e @ Error::Integrity(_)) => {
            problems.push(e.to_string());
            vec![]
        }
        Err(e) => return Err(e),
    };
    // Only a complete list can say that a snapshot is gone.
    if let Some(record) = record.filter(|_| problems.is_empty()) {
        problems.extend(rollback_problem(record, &snapshots)?);
    }
    repo.refresh_index().await?;
    let repo = &*repo;
    let mut report = CheckReport {
        blobs: repo.index_len()?,
        problems,
        ..Default::default()
    };
    // Packs the index files name, and what they say is in each. From the files as stored, not
    // the in-memory index: that keeps one place per blob, so a pack whose every blob is also
    // in another pack (backups that ran at the same time each stored it) would look unnamed.
    let mut by_pack: BTreeMap<Id, Vec<pack::BlobEntry>> = BTreeMap::new();
    for (_, file) in repo.read_index_files().await? {
        for (pack_id, entries) in file.packs {
            by_pack.entry(pack_id).or_default().extend(entries);
        }
    }
    for entries in by_pack.values_mut() {
        entries.sort_by_key(|e| (e.offset, e.id));
        entries.dedup();
    }
    // Packs whose every blob the index places in another pack.
    let mut duplicates = 0;
    for (pack_id, entries) in &by_pack {
        let mut elsewhere = true;
        for e in entries {
            if repo.lookup(&e.id)?.is_none_or(|l| l.pack == *pack_id) {
                elsewhere = false;
                break;
            }
        }
        duplicates += usize::from(elsewhere);
    }
    let stored: HashSet<Id> = repo.stored_packs().await?;
    report.packs = stored.len();
    for id in by_pack.keys() {
        if !stored.contains(id) {
            report.problems.push(format!(
                "{} is in the index but missing from storage",
                layout::pack(id)
            ));
        }
    }
    for id in &stored {
        if !by_pack.contains_key(id) {
            report.warnings.push(format!(
                "{} is not in any index: a backup that was interrupted (or is running now) \
                 wrote it; it is never read, and `sealback prune` deletes it",
                layout::pack(id)
            ));
        }
    }
    if duplicates > 0 {
        report.warnings.push(format!(
            "{duplicates} pack(s) hold only data that other packs hold too: backups that ran at \
             the same time each stored it before seeing the other's. Nothing is wrong; `sealback \
             prune` removes the extra copies"
        ));
    }

    let old_packs = by_pack
        .values()
        .filter(|e| pack::version_of(e) == pack::VERSION_1)
        .count();
    if old_packs > 0 {
        report.warnings.push(format!(
            "{old_packs} pack(s) of the first format show their blobs' sizes to anyone who can \
             read them; `sealback prune --upgrade-packs` rewrites them"
        ));
    }

    // Every snapshot's trees, and every blob they need.
    report.snapshots = snapshots.len();
    let mut seen_trees = HashSet::new();
    for (sid, snap) in &snapshots {
        let mut stack = vec![snap.tree];
        while let Some(tid) = stack.pop() {
            if !seen_trees.insert(tid) {
                continue;
            }
            let tree = match repo.load_tree(&tid).await {
                Ok(t) => t,
                Err(e) => {
                    report
                        .problems
                        .push(format!("snapshot {}: {e}", sid.short()));
                    continue;
                }
            };
            for node in &tree.nodes {
                match &node.kind {
                    NodeKind::Dir { subtree } => stack.push(*subtree),
                    NodeKind::File { content, .. } => {
                        check_content(repo, content, &mut report).await?;
                    }
                    NodeKind::Symlink { .. } => {}
                }
            }
        }
    }

    if read_data {
        let total: u64 = by_pack
            .values()
            .flat_map(|e| e.iter())
            .map(|e| u64::from(e.length))
            .sum();
        progress.start("check", Some(total));
        for (pack_id, expected) in &by_pack {
            if !stored.contains(pack_id) {
                continue;
            }
            verify_pack(repo, pack_id, expected, &mut report, progress).await?;
        }
        progress.finish();
    }
    Ok(report)
}

async fn check_content(
    repo: &Repository,
    content: &Content,
    report: &mut CheckReport,
) -> Result<()> {
    let ids: Vec<BlobId> = match content {
        Content::Blobs(ids) => ids.clone(),
        Content::Lists(lists) => {
            let mut ids = vec![];
            for l in lists {
                match repo
                    .read_blob(ObjectType::ContentList, l, MAX_METADATA_LEN)
                    .await
                {
                    Ok(body) => match decode_content_list(&body) {
                        Ok(v) => ids.extend(v),
                        Err(e) => report
                            .problems
                            .push(format!("content list {}: {e}", l.short())),
                    },
                    Err(e) => report.problems.push(e.to_string()),
                }
            }
            ids
        }
    };
    for id in ids {
        match repo.lookup(&id)? {
            Some(loc) if loc.entry.ty == ObjectType::Data => {}
            Some(_) => report
                .problems
                .push(format!("blob {} has the wrong type", id.short())),
            None => report.problems.push(format!(
                "data blob {} is referenced but not in the index",
                id.short()
            )),
        }
    }
    Ok(())
}

async fn verify_pack(
    repo: &Repository,
    pack_id: &Id,
    expected: &[pack::BlobEntry],
    report: &mut CheckReport,
    progress: &dyn Progress,
) -> Result<()> {
    let path = layout::pack(pack_id);
    let bytes = match repo.store().read(&path).await {
        Ok(b) => b,
        Err(e) => {
            report.problems.push(Error::referenced(e).to_string());
            return Ok(());
        }
    };
    let entries = match pack::read_header(repo.keyring(), pack_id, &bytes) {
        Ok(e) => e,
        Err(e) => {
            report.problems.push(format!("{path}: {e}"));
            return Ok(());
        }
    };
    let in_pack: HashSet<&pack::BlobEntry> = entries.iter().collect();
    for e in expected {
        if !in_pack.contains(e) {
            report.problems.push(format!(
                "{path}: the index places blob {} where the pack header does not",
                e.id.short()
            ));
        }
    }
    for e in &entries {
        let start = e.offset as usize;
        let sealed = &bytes[start..start + e.length as usize];
        let max = if e.ty == ObjectType::Data {
            ChunkerParams::V1.max
        } else {
            MAX_METADATA_LEN
        };
        if let Err(err) = repo.open_blob(e, sealed, max, &path) {
            report.problems.push(err.to_string());
        }
        report.bytes_verified += u64::from(e.length);
        progress.advance(u64::from(e.length));
    }
    Ok(())
}
