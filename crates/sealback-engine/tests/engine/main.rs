//! Engine tests through the library API, on the memory and fs backends.

use sealback_core::keyslot::{ProtectorType, SlotTemplate};
use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};
use sealback_corpus::ChatStoreSpec;
use sealback_engine::backup::{backup, BackupOptions};
use sealback_engine::progress::NoProgress;
use sealback_engine::{check, restore, ErrorKind, Repository};
use sealback_store::Store;
use std::path::Path;

mod content_lists;
mod full_drive;
mod index_cache;
mod keychange;
mod keys_attacks;
mod packs;
mod prune;
mod turnoff;
mod v1_repository;

fn opts(t: i64) -> BackupOptions {
    BackupOptions {
        hostname: "test".into(),
        tags: vec![],
        time_unix_ns: t,
        ..Default::default()
    }
}

/// One backup of `dir` at time `t` (nanoseconds), without progress.
async fn backup_at(
    repo: &mut Repository,
    dir: &Path,
    t: i64,
) -> Result<sealback_engine::backup::BackupReport, sealback_engine::Error> {
    backup(repo, &[dir.to_path_buf()], &opts(t), &NoProgress).await
}

fn template() -> SlotTemplate {
    SlotTemplate {
        protector_type: ProtectorType::RECOVERY_KEY,
        name: "k".into(),
        created_unix: 0,
        params: vec![],
    }
}

async fn init(store: &Store) -> (Repository, RecoveryKey) {
    let key = RecoveryKey::generate(&mut sealback_engine::os_rng());
    let repo = Repository::init(store.clone(), template(), &key.to_secret())
        .await
        .unwrap();
    (repo, key)
}

fn same_key(k: &RecoveryKey) -> RecoveryKeyProtector {
    RecoveryKeyProtector(RecoveryKey::parse(&k.display_groups()).unwrap())
}

fn random_file(path: &Path, len: usize, seed: u8) {
    let mut data = vec![0u8; len];
    let mut state = [seed; 32];
    for chunk in data.chunks_mut(32) {
        state = *blake3::hash(&state).as_bytes();
        chunk.copy_from_slice(&state[..chunk.len()]);
    }
    std::fs::write(path, data).unwrap();
}

#[tokio::test]
async fn unchanged_data_adds_no_blobs_and_snapshots_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(1)).unwrap();
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    let a = backup_at(&mut repo, &chats, 1).await.unwrap();
    let b = backup_at(&mut repo, &chats, 2).await.unwrap();
    assert!(a.summary.blobs_added > 5);
    // Copying the live database creates and removes its -wal/-shm files, which touches the
    // folder's mtime: at most the one root tree blob is new.
    assert!(
        b.summary.blobs_added <= 1,
        "nothing changed, nothing stored: {:?}",
        b.summary
    );
    assert!(b.summary.bytes_added < 4096, "{:?}", b.summary);
    let snaps = repo.list_snapshots().await.unwrap();
    assert_eq!(snaps[1].1.parent, Some(a.snapshot_id));
    let r = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(r.problems.is_empty() && r.warnings.is_empty(), "{r:?}");
}

#[tokio::test]
async fn keys_never_reach_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(2)).unwrap();
    let repo_dir = tmp.path().join("repo");
    let store = Store::open(repo_dir.to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&store).await;
    backup_at(&mut repo, &chats, 1).await.unwrap();
    let root = repo.keyring().current_root().expose_secret().to_vec();
    let digits = key.to_secret().expose_secret().to_vec();
    let mut stack = vec![repo_dir];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            for needle in [&root[..16], &root[16..], &digits[..20], &digits[40..60]] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds key material",
                    p.display()
                );
            }
        }
    }
    assert!(files >= 5);
}

#[tokio::test]
async fn large_files_use_content_lists_and_symlinks_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // More than 16 chunks (at most 8 MiB, about 1 MiB on average): 40 MiB of noise.
    random_file(&src.join("video.mp4"), 40 << 20, 3);
    std::os::unix::fs::symlink("video.mp4", src.join("link")).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    let r = backup_at(&mut repo, &src, 1).await.unwrap();
    let snap = repo.load_snapshot(&r.snapshot_id).await.unwrap();
    let root = repo.load_tree(&snap.tree).await.unwrap();
    let sealback_core::snapshot::NodeKind::Dir { subtree } = &root.nodes[0].kind else {
        panic!()
    };
    let dir = repo.load_tree(subtree).await.unwrap();
    let video = dir.nodes.iter().find(|n| n.name == b"video.mp4").unwrap();
    let sealback_core::snapshot::NodeKind::File { content, .. } = &video.kind else {
        panic!()
    };
    assert!(
        matches!(content, sealback_core::snapshot::Content::Lists(_)),
        "a 40 MiB file lists its chunks in content-list blobs"
    );
    let target = tmp.path().join("out");
    restore::restore(&mut repo, &r.snapshot_id, &target, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(target.join("src/video.mp4")).unwrap(),
        std::fs::read(src.join("video.mp4")).unwrap()
    );
    assert_eq!(
        std::fs::read_link(target.join("src/link")).unwrap(),
        Path::new("video.mp4")
    );
    assert_eq!(std::fs::read(target.join("src/empty")).unwrap(), b"");
}

#[tokio::test]
async fn an_interrupted_backup_leaves_earlier_snapshots_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("note.txt"), b"first version").unwrap();
    let store = Store::open(tmp.path().join("repo").to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&store).await;
    let first = backup_at(&mut repo, &src, 1).await.unwrap();

    // 20 MiB fills a pack, which is uploaded; then a FIFO stops the backup.
    random_file(&src.join("a-big.bin"), 20 << 20, 4);
    let fifo = src.join("z-pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let err = backup_at(&mut repo, &src, 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(
        err.to_string().contains("not a file, folder or symlink"),
        "{err}"
    );

    let mut repo = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    let snaps = repo.list_snapshots().await.unwrap();
    assert_eq!(snaps.len(), 1, "no snapshot from the interrupted run");
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert!(
        report.warnings.is_empty(),
        "the pack that was uploaded before the failure is indexed: {report:?}"
    );
    let target = tmp.path().join("out");
    restore::restore(&mut repo, &first.snapshot_id, &target, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(target.join("src/note.txt")).unwrap(),
        b"first version"
    );
    assert!(!target.join("src/a-big.bin").exists());

    // The next run completes once the obstacle is gone.
    std::fs::remove_file(&fifo).unwrap();
    let mut repo = repo;
    let third = backup_at(&mut repo, &src, 3).await.unwrap();
    assert!(
        third.summary.bytes_added < 8 << 20,
        "the 16 MiB pack stored before the failure is not uploaded again: {:?}",
        third.summary
    );
}

#[tokio::test]
async fn a_second_protector_opens_the_same_repository() {
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    let second = RecoveryKey::generate(&mut sealback_engine::os_rng());
    repo.add_slot(template(), &second.to_secret())
        .await
        .unwrap();
    let reopened = Repository::open(store.clone(), &mut same_key(&second))
        .await
        .unwrap();
    assert_eq!(
        reopened.keyring().current_root(),
        repo.keyring().current_root()
    );
    assert_eq!(reopened.keyslots().slots.len(), 2);
}

#[tokio::test]
async fn opening_a_missing_repository_says_so() {
    let store = Store::open("memory://").unwrap();
    let key = RecoveryKey::generate(&mut sealback_engine::os_rng());
    let err = Repository::open(store, &mut same_key(&key))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no sealback repository"), "{err}");
}

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_in(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn files_unchanged_by_size_and_mtime_are_taken_over_without_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let photo = src.join("photo.jpg");
    random_file(&photo, 300_000, 1);
    let mtime = std::fs::metadata(&photo).unwrap().modified().unwrap();
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    backup_at(&mut repo, &src, 1).await.unwrap();

    // Other bytes, same size, the old modification time: by metadata it did not change, so
    // the new snapshot takes the old content over (as restic and borg do).
    random_file(&photo, 300_000, 2);
    std::fs::File::options()
        .write(true)
        .open(&photo)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let second = backup_at(&mut repo, &src, 2).await.unwrap();
    assert_eq!(
        second.summary.blobs_added, 0,
        "nothing new: {:?}",
        second.summary
    );
    assert_eq!(
        second.summary.bytes_read, 300_000,
        "the file counts as covered"
    );
    let out = tmp.path().join("out2");
    restore::restore(&mut repo, &second.snapshot_id, &out, &NoProgress)
        .await
        .unwrap();
    random_file(&tmp.path().join("old"), 300_000, 1);
    assert_eq!(
        std::fs::read(out.join("src/photo.jpg")).unwrap(),
        std::fs::read(tmp.path().join("old")).unwrap()
    );

    // A new modification time makes it read again.
    std::fs::File::options()
        .write(true)
        .open(&photo)
        .unwrap()
        .set_modified(mtime + std::time::Duration::from_secs(5))
        .unwrap();
    let third = backup_at(&mut repo, &src, 3).await.unwrap();
    let out = tmp.path().join("out3");
    restore::restore(&mut repo, &third.snapshot_id, &out, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(out.join("src/photo.jpg")).unwrap(),
        std::fs::read(&photo).unwrap()
    );
}

#[tokio::test]
async fn an_incremental_of_a_database_stores_only_the_pages_that_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("chats");
    std::fs::create_dir_all(&src).unwrap();
    let db = src.join("msgstore.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE m(id INTEGER PRIMARY KEY, chat INTEGER, body TEXT);
         CREATE INDEX m_chat ON m(chat);",
    )
    .unwrap();
    {
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..60_000i64 {
            let body = format!("message {i} {}", blake3::hash(&i.to_le_bytes()).to_hex());
            tx.execute(
                "INSERT INTO m(chat, body) VALUES (?1, ?2)",
                rusqlite::params![(i * 7919) % 500, body],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let db_len = std::fs::metadata(&db).unwrap().len();
    assert!(db_len > 5 << 20, "{db_len}");
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    let first = backup_at(&mut repo, &src, 1).await.unwrap();

    // 40 rows changed, scattered over the whole file: 40 table pages (and the WAL header page).
    for i in 0..40i64 {
        conn.execute(
            "UPDATE m SET body = body || ' (read)' WHERE id = ?1",
            [1 + i * 997],
        )
        .unwrap();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let second = backup_at(&mut repo, &src, 2).await.unwrap();
    // Content-defined chunks of ~1 MiB would store nearly the whole file again.
    assert!(
        second.summary.bytes_added < 512 << 10,
        "{} bytes added for 40 changed rows of a {db_len}-byte database (first backup: {})",
        second.summary.bytes_added,
        first.summary.bytes_added
    );
    assert!(second.summary.blobs_added >= 40, "{:?}", second.summary);
    let out = tmp.path().join("out");
    restore::restore(&mut repo, &second.snapshot_id, &out, &NoProgress)
        .await
        .unwrap();
    let cmp = sealback_corpus::compare(&src, &out.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
    assert_eq!(cmp.rows, 60_000);
}

#[tokio::test]
async fn a_backup_killed_midway_is_resumed_without_uploading_its_packs_again() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..12u8 {
        random_file(&src.join(format!("video-{i:02}.mp4")), 1 << 20, i);
    }
    let dir = tmp.path().join("repo");
    let store = Store::open(dir.to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&store).await;
    let small_packs = BackupOptions {
        pack_target: 1 << 20,
        packs_per_index: 2,
        ..opts(1)
    };

    // "Kill" the backup (drop it) as soon as its first index file is in storage.
    let index_dir = dir.join("index");
    tokio::select! {
        r = backup(&mut repo, std::slice::from_ref(&src), &small_packs, &NoProgress) => {
            panic!("the backup should have been stopped first: {r:?}")
        }
        _ = async {
            while files_in(&index_dir).is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        } => {}
    }
    let mut repo = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    assert!(repo.list_snapshots().await.unwrap().is_empty());
    let indexed: std::collections::HashSet<_> = repo
        .index_entries()
        .unwrap()
        .into_iter()
        .map(|l| l.pack)
        .collect();
    assert!(indexed.len() >= 2, "{} packs indexed", indexed.len());
    let indexed_bytes: u64 = indexed
        .iter()
        .map(|p| {
            let h = p.to_hex();
            std::fs::metadata(dir.join("packs").join(&h[..2]).join(&h))
                .unwrap()
                .len()
        })
        .sum();

    let resumed = backup(
        &mut repo,
        std::slice::from_ref(&src),
        &small_packs,
        &NoProgress,
    )
    .await
    .unwrap();
    let total = 12 * (1u64 << 20);
    // Blobs are padded to Padmé lengths (SPEC §9), at most 1/32 more for blobs of 64 KiB to
    // 2 GiB; these 1 MiB files, one blob each, are that worst case.
    assert!(
        resumed.summary.bytes_added + indexed_bytes < total + total / 32 + (256 << 10),
        "resumed run added {} after {indexed_bytes} were already indexed",
        resumed.summary.bytes_added
    );
    assert!(resumed.summary.bytes_added < total - (1 << 20));
    let out = tmp.path().join("out");
    restore::restore(&mut repo, &resumed.snapshot_id, &out, &NoProgress)
        .await
        .unwrap();
    for i in 0..12u8 {
        let name = format!("video-{i:02}.mp4");
        assert_eq!(
            std::fs::read(out.join("src").join(&name)).unwrap(),
            std::fs::read(src.join(&name)).unwrap()
        );
    }
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
}

#[tokio::test]
async fn backups_complete_and_verify_on_a_flaky_slow_drive_and_an_outage_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(9)).unwrap();
    let dir = tmp.path().join("repo");
    let clean = Store::open(dir.to_str().unwrap()).unwrap();
    let (_, key) = init(&clean).await;
    // Every third storage operation fails with a transient error, each takes 2 ms more.
    let flaky = Store::open(dir.to_str().unwrap())
        .unwrap()
        .with_faults(sealback_store::Faults {
            fail_every: 3,
            latency: std::time::Duration::from_millis(2),
            ..Default::default()
        });
    let mut repo = Repository::open(flaky.clone(), &mut same_key(&key))
        .await
        .unwrap();
    let small_packs = BackupOptions {
        pack_target: 256 << 10,
        ..opts(1)
    };
    let first = backup(
        &mut repo,
        std::slice::from_ref(&chats),
        &small_packs,
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(
        flaky.faults_injected() >= 5,
        "{} faults",
        flaky.faults_injected()
    );
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(
        report.problems.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    let out = tmp.path().join("out");
    restore::restore(&mut repo, &first.snapshot_id, &out, &NoProgress)
        .await
        .unwrap();
    let cmp = sealback_corpus::compare(&chats, &out.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);

    // An outage: every operation fails. The backup gives up with the storage error, and the
    // repository still holds exactly the first snapshot.
    sealback_corpus::apply_day(
        &chats,
        &sealback_corpus::DayOfUse {
            seed: 3,
            new_messages: 100,
            new_photos: 2,
            deleted_media: 0,
        },
    )
    .unwrap();
    let down = Store::open(dir.to_str().unwrap())
        .unwrap()
        .with_faults(sealback_store::Faults {
            fail_every: 1,
            latency: std::time::Duration::ZERO,
            ..Default::default()
        });
    let mut repo = Repository::open(clean.clone(), &mut same_key(&key))
        .await
        .unwrap();
    let err = Repository::open(down, &mut same_key(&key))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Other);
    let snaps = repo.list_snapshots().await.unwrap();
    assert_eq!(snaps.len(), 1);
    let second = backup_at(&mut repo, &chats, 2).await.unwrap();
    assert!(second.summary.bytes_added > 0);
}

#[tokio::test]
async fn a_file_from_1960_restores_with_its_1960_mtime() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // 1960-03-01 12:00:00.25 UTC, and a time just before the epoch with nanoseconds.
    let cases = [
        ("1960.txt", -310_996_800i64, 250_000_000u32),
        ("1969.txt", -1, 999_999_999),
    ];
    for (name, secs, nanos) in cases {
        let path = src.join(name);
        std::fs::write(&path, name).unwrap();
        let t = std::time::UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
            + std::time::Duration::from_nanos(nanos.into());
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(t)
            .unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (m.mtime(), m.mtime_nsec()),
            (secs, nanos.into()),
            "the source's own mtime"
        );
    }
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    let r = backup_at(&mut repo, &src, 1).await.unwrap();
    let out = tmp.path().join("out");
    restore::restore(&mut repo, &r.snapshot_id, &out, &NoProgress)
        .await
        .unwrap();
    for (name, secs, nanos) in cases {
        let m = std::fs::metadata(out.join("src").join(name)).unwrap();
        assert_eq!(
            (m.mtime(), m.mtime_nsec()),
            (secs, i64::from(nanos)),
            "{name} restored with another mtime"
        );
    }
}
