//! Faults while a backup runs (issue 15, item 6). A drive that fills up: the store's
//! [`DriveLimit`] fault makes writes that do not fit fail as a full disk does (`ENOSPC` after
//! writing what fits, into OpenDAL's real temporary file on the fs backend). And devices that
//! back up into one repository at the same time.

use super::{init, random_file, same_key};
use sealback_core::Id;
use sealback_corpus::{ChatStoreSpec, DayOfUse};
use sealback_engine::backup::{backup, BackupOptions};
use sealback_engine::progress::NoProgress;
use sealback_engine::prune::{prune, PruneOptions};
use sealback_engine::{check, restore, ErrorKind, Repository};
use sealback_store::{DriveLimit, Faults, Store, FS_TMP_DIR};
use std::path::{Path, PathBuf};

/// Bytes of the files under `dir`.
fn used(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        used(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The files in the repository's temporary folder.
fn temp_files(repo_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(repo_dir.join(FS_TMP_DIR))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The repository at `repo_dir` on a drive (`drive`) that holds `capacity` bytes.
fn on_drive(repo_dir: &Path, drive: &Path, capacity: u64) -> Store {
    Store::open(repo_dir.to_str().unwrap())
        .unwrap()
        .with_faults(Faults {
            drive: Some(DriveLimit {
                dir: drive.to_path_buf(),
                capacity,
            }),
            ..Default::default()
        })
}

/// One backup of `dir` at time `t` with [`backup_opts`].
async fn backup_small_packs(
    repo: &mut Repository,
    dir: &Path,
    t: i64,
) -> Result<sealback_engine::backup::BackupReport, sealback_engine::Error> {
    backup(repo, &[dir.to_path_buf()], &backup_opts(t), &NoProgress).await
}

fn backup_opts(t: i64) -> BackupOptions {
    // Small packs, each indexed at once: the run that fills the drive has stored and
    // indexed some of its packs before the write that does not fit.
    BackupOptions {
        hostname: "test".into(),
        time_unix_ns: t,
        pack_target: 256 << 10,
        packs_per_index: 1,
        ..Default::default()
    }
}

async fn restore_to(repo: &mut Repository, id: &Id, out: &Path) {
    restore::restore(repo, id, out, &NoProgress).await.unwrap();
}

fn assert_same(a: &Path, b: &Path) {
    let cmp = sealback_corpus::compare(a, b).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
}

#[tokio::test]
async fn a_drive_that_fills_during_a_backup_keeps_every_snapshot_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(4)).unwrap();
    let drive = tmp.path().join("drive");
    let repo_dir = drive.join("sealback");
    std::fs::create_dir_all(&repo_dir).unwrap();
    // Someone else's files on the same drive, deleted later to make room.
    random_file(&drive.join("holiday.mov"), 4 << 20, 7);
    let plain = Store::open(repo_dir.to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&plain).await;

    // Two snapshots on a drive with room, each restored once as the reference.
    let mut snapshots = vec![];
    for (t, seed) in [(1, 1), (2, 2)] {
        if seed > 1 {
            let day = DayOfUse {
                seed,
                new_messages: 200,
                new_photos: 2,
                deleted_media: 1,
            };
            sealback_corpus::apply_day(&chats, &day).unwrap();
        }
        let made = backup_small_packs(&mut repo, &chats, t).await.unwrap();
        let reference = tmp.path().join(format!("reference-{t}"));
        restore_to(&mut repo, &made.snapshot_id, &reference).await;
        assert_same(&chats, &reference.join("chats"));
        snapshots.push((made.snapshot_id, reference));
    }

    // A 3 MB video arrives; the drive has 1.5 MB left: some packs of the next run are stored
    // and indexed before one does not fit.
    random_file(&chats.join("video.mp4"), 3 << 20, 9);
    let capacity = used(&drive) + (1500 << 10);
    let full = on_drive(&repo_dir, &drive, capacity);
    let mut repo = Repository::open(full, &mut same_key(&key)).await.unwrap();
    let err = backup_small_packs(&mut repo, &chats, 3).await.unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind(), ErrorKind::DriveFull, "{msg}");
    assert!(
        msg.contains("full") && msg.contains("Free space") && !msg.contains("context"),
        "the message should say the drive is full and what to free, in words: {msg}"
    );
    assert!(msg.len() < 600, "{} bytes: {msg}", msg.len());
    assert_eq!(
        temp_files(&repo_dir),
        Vec::<PathBuf>::new(),
        "temporary files left"
    );
    let mut plain_repo = Repository::open(plain.clone(), &mut same_key(&key))
        .await
        .unwrap();
    let report = check::check(&mut plain_repo, false, &NoProgress)
        .await
        .unwrap();
    assert!(
        report.problems.is_empty() && report.warnings.is_empty(),
        "packs nobody will read were left behind: {report:?}"
    );

    // Another app fills the drive to the last byte: prune still runs, and frees this run's
    // packs (stored and indexed, used by no snapshot).
    let before_prune = used(&drive);
    let brim = on_drive(&repo_dir, &drive, before_prune);
    let mut repo = Repository::open(brim, &mut same_key(&key)).await.unwrap();
    let pruned = prune(&mut repo, &PruneOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(pruned.packs_deleted > 0, "{pruned:?}");
    assert!(used(&drive) < before_prune);
    assert_eq!(temp_files(&repo_dir), Vec::<PathBuf>::new());
    assert!(plain.list("locks/").await.unwrap().is_empty());
    // Its lock took the room of the space reserve, which is back now that there is room.
    assert!(plain.exists("reserve").await.unwrap());

    // Space is freed: the next backup succeeds and every snapshot restores as before.
    std::fs::remove_file(drive.join("holiday.mov")).unwrap();
    let roomy = on_drive(&repo_dir, &drive, capacity);
    let mut repo = Repository::open(roomy, &mut same_key(&key)).await.unwrap();
    let third = backup_small_packs(&mut repo, &chats, 4).await.unwrap();
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(
        report.problems.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    for (id, reference) in &snapshots {
        let again = tmp.path().join(format!("again-{}", id.short()));
        restore_to(&mut repo, id, &again).await;
        assert_same(&reference.join("chats"), &again.join("chats"));
    }
    let out = tmp.path().join("third");
    restore_to(&mut repo, &third.snapshot_id, &out).await;
    assert_same(&chats, &out.join("chats"));
    assert_eq!(temp_files(&repo_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn stale_temporary_files_are_removed_by_the_next_backup_and_fresh_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a.bin"), 100_000, 1);
    let repo_dir = tmp.path().join("repo");
    let store = Store::open(repo_dir.to_str().unwrap()).unwrap();
    let (mut repo, _) = init(&store).await;
    // What a killed sealback leaves: a temporary file two hours old, and one being written
    // right now by another sealback.
    let temp = repo_dir.join(FS_TMP_DIR);
    std::fs::create_dir_all(&temp).unwrap();
    let old = temp.join("0a1b.a7c3e0f2-killed");
    let fresh = temp.join("0a1c.b8d4f1a3-writing");
    std::fs::write(&old, vec![1u8; 5000]).unwrap();
    std::fs::write(&fresh, vec![2u8; 5000]).unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    backup_small_packs(&mut repo, &src, 1).await.unwrap();
    assert!(!old.exists(), "a stale temporary file was kept");
    assert!(
        fresh.exists(),
        "a temporary file still being written was removed"
    );
}

#[tokio::test]
async fn three_devices_backing_up_at_once_leave_duplicate_packs_that_check_names_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(5)).unwrap();
    let repo_dir = tmp.path().join("repo");
    let store = Store::open(repo_dir.to_str().unwrap()).unwrap();
    let (_, key) = init(&store).await;
    let mut devices = vec![];
    for _ in 0..3 {
        devices.push(
            Repository::open(store.clone(), &mut same_key(&key))
                .await
                .unwrap(),
        );
    }
    let [a, b, c] = &mut devices[..] else {
        unreachable!()
    };
    let paths = std::slice::from_ref(&chats);
    let (oa, ob, oc) = (backup_opts(1), backup_opts(2), backup_opts(3));
    let (ra, rb, rc) = tokio::join!(
        backup(a, paths, &oa, &NoProgress),
        backup(b, paths, &ob, &NoProgress),
        backup(c, paths, &oc, &NoProgress),
    );
    for r in [ra, rb, rc] {
        r.unwrap();
    }
    let mut repo = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert!(
        !report.warnings.iter().any(|w| w.contains("interrupted")),
        "no backup was interrupted: {:?}",
        report.warnings
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("at the same time")),
        "the duplicate packs should be named for what they are: {:?}",
        report.warnings
    );
    // Prune keeps one copy, and check is quiet afterwards.
    prune(&mut repo, &PruneOptions::default(), &NoProgress)
        .await
        .unwrap();
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(
        report.problems.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
}
