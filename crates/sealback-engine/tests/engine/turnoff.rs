//! Turning off end-to-end encrypted backup deletes the repository: only after the typed
//! phrase, never while another operation holds it, keys file first, config last.

use super::{init, opts};
use sealback_core::lock::LockKind;
use sealback_corpus::ChatStoreSpec;
use sealback_engine::backup::backup;
use sealback_engine::lock::RepoLock;
use sealback_engine::progress::NoProgress;
use sealback_engine::turnoff::{finish_turn_off, is_half_turned_off, turn_off, CONFIRM_PHRASE};
use sealback_engine::{ErrorKind, Repository};
use sealback_store::Store;

async fn backed_up(store: &Store, dir: &std::path::Path) -> Repository {
    let chats = dir.join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(3)).unwrap();
    let (mut repo, _) = init(store).await;
    backup(&mut repo, &[chats], &opts(1), &NoProgress)
        .await
        .unwrap();
    repo
}

async fn objects(store: &Store) -> usize {
    let mut n = 0;
    for dir in ["snapshots/", "index/", "packs/"] {
        n += store.list(dir).await.unwrap().len();
    }
    for file in ["keys", "config", "reserve"] {
        n += store.exists(file).await.unwrap() as usize;
    }
    n
}

#[tokio::test]
async fn without_the_phrase_nothing_is_deleted_and_with_it_everything_is() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("drive").to_str().unwrap()).unwrap();
    let repo = backed_up(&store, tmp.path()).await;
    let before = objects(&store).await;
    assert!(before > 4);
    for typed in ["", "yes", "delete my backup"] {
        let e = turn_off(&repo, typed).await.unwrap_err();
        assert!(e.to_string().contains(CONFIRM_PHRASE), "{e}");
        assert_eq!(
            objects(&store).await,
            before,
            "nothing deleted for {typed:?}"
        );
    }
    let cache = repo
        .index_cache_path()
        .expect("an index cache")
        .to_path_buf();
    assert!(cache.exists(), "the backup left its index cache");
    let done = turn_off(&repo, "  Delete My Backups\n").await.unwrap();
    assert!(
        !cache.exists(),
        "the index cache of a deleted backup is left"
    );
    assert!(!cache.parent().unwrap().exists(), "its folder is left");
    assert_eq!(done.snapshots, 1);
    assert_eq!(done.objects, before);
    assert_eq!(objects(&store).await, 0);
    assert!(store.list("locks/").await.unwrap().is_empty());
    assert!(!Repository::exists(&store).await.unwrap());
    // It can be turned on again there.
    init(&store).await;
}

#[tokio::test]
async fn a_running_operation_elsewhere_stops_it_before_anything_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("drive").to_str().unwrap()).unwrap();
    let repo = backed_up(&store, tmp.path()).await;
    let held = RepoLock::acquire(&repo, LockKind::Shared, "backup")
        .await
        .unwrap();
    let before = objects(&store).await;
    let e = turn_off(&repo, CONFIRM_PHRASE).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert_eq!(objects(&store).await, before);
    held.release().await;
}

#[tokio::test]
async fn an_interrupted_turn_off_is_finished_without_unlocking() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("drive").to_str().unwrap()).unwrap();
    let _repo = backed_up(&store, tmp.path()).await;
    assert!(!is_half_turned_off(&store).await.unwrap());
    let e = finish_turn_off(&store, CONFIRM_PHRASE).await.unwrap_err();
    assert!(e.to_string().contains("unlock it"), "{e}");
    // Interrupted right after the keys file went.
    store.delete("keys").await.unwrap();
    assert!(is_half_turned_off(&store).await.unwrap());
    finish_turn_off(&store, CONFIRM_PHRASE).await.unwrap();
    assert_eq!(objects(&store).await, 0);
}

/// Attack: the drive is a folder this computer syncs (or a USB drive), and whoever writes to it
/// replaces `packs/` by a link to a folder of the person's own files (or puts such links
/// inside it). Turning off deletes what it lists under `packs/`: it must not follow a link out
/// of the repository and delete the person's files.
#[tokio::test]
async fn attack_a_link_in_the_repository_does_not_make_turning_off_delete_files_outside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let drive = tmp.path().join("drive");
    let store = Store::open(drive.to_str().unwrap()).unwrap();
    let _repo = backed_up(&store, tmp.path()).await;
    let own = tmp.path().join("documents");
    std::fs::create_dir_all(own.join("taxes")).unwrap();
    std::fs::write(own.join("taxes/2025.pdf"), b"keep me").unwrap();
    std::fs::write(own.join("letter.txt"), b"keep me too").unwrap();
    std::fs::remove_dir_all(drive.join("packs")).unwrap();
    std::os::unix::fs::symlink(&own, drive.join("packs")).unwrap();
    std::os::unix::fs::symlink(own.join("letter.txt"), drive.join("index/zz")).unwrap();
    // The keys file hidden as well: the turn-off needs no unlock then.
    store.delete("keys").await.unwrap();
    let _ = finish_turn_off(&store, CONFIRM_PHRASE).await;
    assert!(
        own.join("taxes/2025.pdf").exists() && own.join("letter.txt").exists(),
        "files outside the repository were deleted"
    );
}

/// Attack (or a sync that has not brought the keys file yet): the keys file is missing while
/// another device is backing up or restoring. Finishing a turn-off asks for no unlock and
/// took no lock: it deleted the repository under the running operation, which the turn-off
/// with the keys file refuses (module docs, step 1). It must refuse while a lock is there.
#[tokio::test]
async fn a_running_operation_elsewhere_stops_finishing_a_turn_off_too() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("drive").to_str().unwrap()).unwrap();
    let repo = backed_up(&store, tmp.path()).await;
    let held = RepoLock::acquire(&repo, LockKind::Shared, "restore")
        .await
        .unwrap();
    store.delete("keys").await.unwrap();
    let before = objects(&store).await;
    let e = finish_turn_off(&store, CONFIRM_PHRASE).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert_eq!(
        objects(&store).await,
        before,
        "deleted under a running restore"
    );
    held.release().await;
    // With the operation over, it finishes.
    finish_turn_off(&store, CONFIRM_PHRASE).await.unwrap();
    assert_eq!(objects(&store).await, 0);
}

/// The lock an interrupted turn-off (or a killed backup) left behind stops finishing only
/// until it is 30 minutes old by the drive's clock: then it cannot belong to a running
/// operation (a holder refreshes its lock every 5 minutes).
#[tokio::test]
async fn a_lock_abandoned_for_30_minutes_does_not_stop_finishing_a_turn_off() {
    let tmp = tempfile::tempdir().unwrap();
    let drive = tmp.path().join("drive");
    let store = Store::open(drive.to_str().unwrap()).unwrap();
    let repo = backed_up(&store, tmp.path()).await;
    let left = RepoLock::acquire(&repo, LockKind::Exclusive, "turn off backup")
        .await
        .unwrap();
    std::mem::forget(left);
    store.delete("keys").await.unwrap();
    let e = finish_turn_off(&store, CONFIRM_PHRASE).await.unwrap_err();
    assert!(e.to_string().contains("Try again in 30 min"), "{e}");
    let locks = store.list("locks/").await.unwrap();
    assert_eq!(locks.len(), 1);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(31 * 60);
    std::fs::File::options()
        .write(true)
        .open(drive.join(&locks[0]))
        .unwrap()
        .set_modified(old)
        .unwrap();
    finish_turn_off(&store, CONFIRM_PHRASE).await.unwrap();
    assert_eq!(objects(&store).await, 0);
}
