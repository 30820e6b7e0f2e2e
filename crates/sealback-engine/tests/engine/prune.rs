//! Forget, prune and the repository lock.

use super::{backup_at, init, opts, random_file, same_key};
use sealback_core::lock::LockKind;
use sealback_engine::backup::{backup, BackupOptions};
use sealback_engine::forget::{forget, ForgetTarget, KeepPolicy};
use sealback_engine::progress::NoProgress;
use sealback_engine::prune::{prune, PruneOptions};
use sealback_engine::{check, lock, restore, Clock, ErrorKind, RepoLock, Repository};
use sealback_store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const MIN: i64 = 60_000_000_000;

/// `prune --max-unused 0`: every partly used pack is rewritten.
fn repack_all() -> PruneOptions {
    PruneOptions {
        max_unused_percent: 0.0,
        ..Default::default()
    }
}

/// `forget --keep-last 1`.
async fn keep_last_one(
    repo: &mut Repository,
    dry_run: bool,
) -> sealback_engine::forget::ForgetReport {
    let policy = KeepPolicy {
        last: 1,
        ..Default::default()
    };
    forget(repo, &ForgetTarget::Policy(policy), dry_run)
        .await
        .unwrap()
}

/// Every object in the repository and its bytes.
async fn objects(store: &Store) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for dir in ["packs/", "index/", "snapshots/", "locks/"] {
        for p in store.list(dir).await.unwrap() {
            let bytes = store.read(&p).await.unwrap();
            out.insert(p, bytes);
        }
    }
    out
}

fn stored_bytes(objects: &BTreeMap<String, Vec<u8>>) -> usize {
    objects.values().map(Vec::len).sum()
}

fn small_packs(t: i64) -> BackupOptions {
    BackupOptions {
        pack_target: 256 << 10,
        ..opts(t)
    }
}

async fn restores_identically(repo: &mut Repository, id: &sealback_core::Id, src: &Path) {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("r");
    restore::restore(repo, id, &target, &NoProgress)
        .await
        .unwrap();
    let name = src.file_name().unwrap();
    let cmp = sealback_corpus::compare(src, &target.join(name)).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
}

/// Three snapshots of a folder whose files are replaced one by one: the first snapshot's
/// files are used by nothing once it is forgotten.
async fn three_generations(
    repo: &mut Repository,
    dir: &Path,
) -> Vec<sealback_engine::backup::BackupReport> {
    std::fs::create_dir_all(dir).unwrap();
    let mut reports = vec![];
    for generation in 0..3u8 {
        for f in 0..4u8 {
            // Each generation rewrites files 0 and 1 and keeps 2 and 3.
            if generation == 0 || f < 2 {
                random_file(&dir.join(format!("f{f}")), 300_000, generation * 16 + f + 1);
            }
        }
        let r = backup(
            repo,
            &[dir.to_path_buf()],
            &small_packs(i64::from(generation) + 1),
            &NoProgress,
        )
        .await
        .unwrap();
        reports.push(r);
    }
    reports
}

#[tokio::test]
async fn forget_then_prune_frees_space_and_keeps_every_remaining_snapshot_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let store = Store::open(tmp.path().join("repo").to_str().unwrap()).unwrap();
    let (mut repo, _) = init(&store).await;
    let reports = three_generations(&mut repo, &dir).await;

    // A dry run changes nothing.
    let before = objects(&store).await;
    let dry = keep_last_one(&mut repo, true).await;
    assert_eq!(dry.removed(), 2);
    let pruned_dry = prune(
        &mut repo,
        &PruneOptions {
            dry_run: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(
        pruned_dry.packs_deleted, 0,
        "every snapshot still uses its data"
    );
    assert_eq!(
        objects(&store).await,
        before,
        "dry runs wrote or deleted something"
    );

    let forgotten = keep_last_one(&mut repo, false).await;
    assert_eq!(forgotten.removed(), 2);
    let left = repo.list_snapshots().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, reports[2].snapshot_id, "the newest stays");

    let r = prune(&mut repo, &PruneOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(r.packs_deleted + r.packs_repacked > 0, "{r:?}");
    let after = objects(&store).await;
    // Generations 0 and 1 each had 600 kB of data the last one does not use.
    assert!(
        stored_bytes(&before) - stored_bytes(&after) > 1_000_000,
        "{} -> {} bytes",
        stored_bytes(&before),
        stored_bytes(&after)
    );
    assert!(
        after.keys().all(|k| !k.starts_with("locks/")),
        "prune left its lock behind"
    );
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(
        report.problems.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    restores_identically(&mut repo, &reports[2].snapshot_id, &dir).await;

    // A second prune has nothing to do and changes nothing.
    let again = prune(&mut repo, &PruneOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        (
            again.packs_deleted,
            again.packs_repacked,
            again.orphan_packs_deleted
        ),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(objects(&store).await, after);
}

struct HalfUsed {
    dir: std::path::PathBuf,
    store: Store,
    repo: Repository,
    key: sealback_core::recovery::RecoveryKey,
    second: sealback_engine::backup::BackupReport,
}

/// Two files in one pack, backed up; one deleted and backed up again; the first snapshot
/// forgotten: the pack is half used.
async fn half_used_pack(tmp: &Path) -> HalfUsed {
    let dir = tmp.join("data");
    let store = Store::open("memory://").unwrap();
    let (mut repo, key) = init(&store).await;
    std::fs::create_dir_all(&dir).unwrap();
    random_file(&dir.join("keep"), 200_000, 1);
    random_file(&dir.join("drop"), 200_000, 2);
    let first = backup_at(&mut repo, &dir, 1).await.unwrap();
    std::fs::remove_file(dir.join("drop")).unwrap();
    let second = backup_at(&mut repo, &dir, 2).await.unwrap();
    forget(
        &mut repo,
        &ForgetTarget::Snapshots(vec![first.snapshot_id.to_hex()]),
        false,
    )
    .await
    .unwrap();
    HalfUsed {
        dir,
        store,
        repo,
        key,
        second,
    }
}

#[tokio::test]
async fn prune_repacks_partly_used_packs_and_deletes_what_interrupted_backups_left() {
    let tmp = tempfile::tempdir().unwrap();
    let HalfUsed {
        dir,
        store,
        mut repo,
        key,
        second,
    } = half_used_pack(tmp.path()).await;
    // A pack that no index names, as an interrupted backup leaves it.
    store
        .write(
            "packs/ab/ab00000000000000000000000000000000000000000000000000000000000000",
            vec![7; 1000],
        )
        .await
        .unwrap();
    // And duplicate index entries, as a prune interrupted after writing its new index leaves.
    for (_, file) in repo.read_index_files().await.unwrap() {
        repo.save_index(file).await.unwrap();
    }
    assert_eq!(repo.read_index_files().await.unwrap().len(), 4);

    let r = prune(&mut repo, &repack_all(), &NoProgress).await.unwrap();
    assert_eq!(r.packs_repacked, 1, "{r:?}");
    assert_eq!(r.packs_written, 1, "{r:?}");
    assert_eq!(r.orphan_packs_deleted, 1, "{r:?}");
    assert_eq!(r.bytes_unused_left, 0, "{r:?}");
    assert_eq!(repo.read_index_files().await.unwrap().len(), 1);
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(
        report.problems.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    // A fresh session (new index load) restores the kept snapshot byte for byte.
    let mut fresh = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    restores_identically(&mut fresh, &second.snapshot_id, &dir).await;
}

#[tokio::test]
async fn prune_deletes_nothing_when_a_snapshot_cannot_be_read_or_a_blob_to_keep_is_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let HalfUsed {
        store, mut repo, ..
    } = half_used_pack(tmp.path()).await;

    // A blob that must be copied is damaged: the repack authenticates it and stops.
    let large: Vec<_> = repo
        .index_entries()
        .unwrap()
        .into_iter()
        .filter(|l| l.entry.ty == sealback_core::ObjectType::Data && l.entry.length > 100_000)
        .collect();
    assert_eq!(large.len(), 2, "one blob per file");
    for loc in large {
        let path = sealback_engine::layout::pack(&loc.pack);
        let mut bytes = store.read(&path).await.unwrap();
        bytes[loc.entry.offset as usize + 100] ^= 1;
        store.write(&path, bytes).await.unwrap();
    }
    let before = objects(&store).await;
    let zero = repack_all();
    let err = prune(&mut repo, &zero, &NoProgress).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert_eq!(
        objects(&store).await,
        before,
        "a failed prune changed storage"
    );

    // A snapshot whose tree is missing: nothing is deleted either.
    let snap = repo.list_snapshots().await.unwrap().remove(0).1;
    let tree_pack = repo.lookup(&snap.tree).unwrap().unwrap().pack;
    store
        .delete(&sealback_engine::layout::pack(&tree_pack))
        .await
        .unwrap();
    let before = objects(&store).await;
    let err = prune(&mut repo, &zero, &NoProgress).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(err.to_string().contains("prune deleted nothing"), "{err}");
    assert_eq!(objects(&store).await, before);
}

#[tokio::test]
async fn prune_and_backup_exclude_each_other_and_a_refused_one_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let store = Store::open("memory://").unwrap();
    let (mut repo, key) = init(&store).await;
    let reports = three_generations(&mut repo, &dir).await;
    keep_last_one(&mut repo, false).await;
    // Another device is backing up (it holds a shared lock).
    let mut other = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    let held = RepoLock::acquire(&other, LockKind::Shared, "backup")
        .await
        .unwrap();
    let before = objects(&store).await;
    let err = prune(&mut repo, &PruneOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(err.to_string().contains("shared lock of `backup`"), "{err}");
    assert_eq!(
        objects(&store).await,
        before,
        "a refused prune changed storage"
    );
    // Backups, checks and restores run side by side.
    backup_at(&mut repo, &dir, 10).await.unwrap();
    held.release().await;

    // Now a prune holds the repository: a backup is refused and writes nothing.
    let pruning = RepoLock::acquire(&other, LockKind::Exclusive, "prune")
        .await
        .unwrap();
    let before = objects(&store).await;
    let err = backup_at(&mut repo, &dir, 11).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    let err = restore::restore(
        &mut repo,
        &reports[2].snapshot_id,
        &tmp.path().join("out"),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert_eq!(objects(&store).await, before);
    pruning.release().await;

    // The other device's prune ran after this session loaded its index: a backup here reloads
    // it first and so does not refer to repacked or deleted packs.
    prune(&mut other, &repack_all(), &NoProgress).await.unwrap();
    random_file(&dir.join("f9"), 50_000, 99);
    let last = backup_at(&mut repo, &dir, 12).await.unwrap();
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    restores_identically(&mut repo, &last.snapshot_id, &dir).await;
}

#[tokio::test]
async fn a_backup_whose_lock_went_stale_and_was_removed_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let store_dir = tmp.path().join("repo");
    let store = Store::open(store_dir.to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&store).await;
    std::fs::create_dir_all(&dir).unwrap();
    random_file(&dir.join("a"), 100_000, 1);
    let first = backup_at(&mut repo, &dir, 1).await.unwrap();
    for f in 0..8u8 {
        random_file(&dir.join(format!("new{f}")), 400_000, 10 + f);
    }

    // This device's clock is frozen at t0; the slow drive gives the other device time to act.
    let t0 = 1_800_000_000_000_000_000i64;
    let now = Arc::new(AtomicI64::new(t0));
    let slow = Store::open(store_dir.to_str().unwrap())
        .unwrap()
        .with_faults(sealback_store::Faults {
            fail_every: 0,
            latency: std::time::Duration::from_millis(30),
            ..Default::default()
        });
    let mut paused = Repository::open(slow, &mut same_key(&key)).await.unwrap();
    let clock = now.clone();
    paused.set_clock(Clock::from_fn(move || clock.load(Ordering::SeqCst)));
    // The other device sees the lock 31 minutes later: stale. Its prune removes the lock and
    // the packs that no index names yet.
    let mut other = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    other.set_clock(Clock::from_fn(move || t0 + 31 * MIN));
    let small = BackupOptions {
        pack_target: 128 << 10,
        packs_per_index: 100,
        ..opts(2)
    };
    let paths = [dir.clone()];
    let backing_up = backup(&mut paused, &paths, &small, &NoProgress);
    let pruning = async {
        // Wait until the backup holds its lock and has uploaded a pack.
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let packs = store.list("packs/").await.unwrap().len();
            let locks = lock::list_locks(&other).await.unwrap();
            if packs > 1 && !locks.is_empty() {
                assert!(locks.iter().all(|l| l.stale));
                break;
            }
        }
        prune(&mut other, &PruneOptions::default(), &NoProgress).await
    };
    let (backed_up, pruned) = tokio::join!(backing_up, pruning);
    let pruned = pruned.unwrap();
    assert!(pruned.orphan_packs_deleted > 0, "{pruned:?}");
    let err = backed_up.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(err.to_string().contains("nothing was committed"), "{err}");

    // Nothing names a deleted pack; the first snapshot is whole; the next backup works.
    let mut fresh = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    assert_eq!(fresh.list_snapshots().await.unwrap().len(), 1);
    let report = check::check(&mut fresh, true, &NoProgress).await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    random_file(&dir.join("a"), 100_000, 1);
    restores_identically(&mut fresh, &first.snapshot_id, &dir).await;
}

#[tokio::test]
async fn locks_list_and_stale_or_unreadable_ones_are_handled() {
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    let t0 = 1_800_000_000_000_000_000i64;
    let now = Arc::new(AtomicI64::new(t0));
    let clock = now.clone();
    repo.set_clock(Clock::from_fn(move || clock.load(Ordering::SeqCst)));
    let held = RepoLock::acquire(&repo, LockKind::Shared, "backup")
        .await
        .unwrap();
    let found = lock::list_locks(&repo).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(!found[0].stale);
    let text = found[0].describe(t0);
    assert!(
        text.contains("shared lock of `backup`") && text.contains("0 s"),
        "{text}"
    );
    // Refreshed within 30 minutes it stays fresh; after that it is stale.
    now.store(t0 + 29 * MIN, Ordering::SeqCst);
    assert!(!lock::list_locks(&repo).await.unwrap()[0].stale);
    now.store(t0 + 31 * MIN, Ordering::SeqCst);
    assert!(lock::list_locks(&repo).await.unwrap()[0].stale);
    let removed = lock::remove_locks(&repo, false).await.unwrap();
    assert_eq!(removed.len(), 1);
    drop(held);

    // Garbage under locks/ is treated as held: prune refuses until it is removed by hand.
    store
        .write(
            "locks/0000000000000000000000000000000000000000000000000000000000000001",
            b"not a lock".to_vec(),
        )
        .await
        .unwrap();
    let err = prune(&mut repo, &PruneOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(err.to_string().contains("cannot be read"), "{err}");
    assert!(lock::remove_locks(&repo, false).await.unwrap().is_empty());
    assert_eq!(lock::remove_locks(&repo, true).await.unwrap().len(), 1);
    prune(&mut repo, &PruneOptions::default(), &NoProgress)
        .await
        .unwrap();
}

#[tokio::test]
async fn prune_completes_on_a_flaky_drive_and_leaves_it_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let HalfUsed {
        dir,
        store,
        key,
        second,
        ..
    } = half_used_pack(tmp.path()).await;
    // Every third storage operation fails with a transient error: retries carry the prune.
    let flaky = store.clone().with_faults(sealback_store::Faults {
        fail_every: 3,
        latency: std::time::Duration::ZERO,
        ..Default::default()
    });
    let mut repo = Repository::open(flaky.clone(), &mut same_key(&key))
        .await
        .unwrap();
    let r = prune(&mut repo, &repack_all(), &NoProgress).await.unwrap();
    assert_eq!(r.packs_repacked, 1, "{r:?}");
    assert!(flaky.faults_injected() > 3, "{}", flaky.faults_injected());
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(
        report.problems.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    restores_identically(&mut repo, &second.snapshot_id, &dir).await;
}
