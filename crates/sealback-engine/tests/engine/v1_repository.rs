//! A repository written by the version 1 writer (commit c71dafc: clear per-object headers in
//! packs, index version 1; see tests/fixtures/v1-repository/make.sh) is still read, restored
//! identically, checked and backed up into; `prune --upgrade-packs` rewrites its packs as
//! version 2, after which a keyless scan finds nothing and every snapshot still restores.

use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};
use sealback_engine::backup::backup;
use sealback_engine::forget;
use sealback_engine::progress::NoProgress;
use sealback_engine::prune::{prune, PruneOptions};
use sealback_engine::{check, restore, Repository};
use sealback_store::Store;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-repository")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Pack versions (byte 4) of every pack file, in file order.
fn pack_versions(repo_dir: &Path) -> Vec<u8> {
    super::packs::pack_files(repo_dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap()[4])
        .collect()
}

async fn open_copy(tmp: &Path) -> (PathBuf, Repository) {
    let dir = tmp.join("repo");
    copy_dir(&fixture().join("repo"), &dir);
    let key = std::fs::read_to_string(fixture().join("recovery-key")).unwrap();
    let mut protector = RecoveryKeyProtector(RecoveryKey::parse(key.trim()).unwrap());
    let store = Store::open(dir.to_str().unwrap()).unwrap();
    let repo = Repository::open(store, &mut protector).await.unwrap();
    (dir, repo)
}

async fn restore_and_compare(repo: &mut Repository, tag: &str, source: &str, out: &Path) {
    let snapshots = repo.list_snapshots().await.unwrap();
    let (id, _) = snapshots
        .iter()
        .find(|(_, s)| s.tags == [tag])
        .unwrap_or_else(|| panic!("no snapshot tagged {tag}"));
    restore::restore(repo, id, out, &NoProgress).await.unwrap();
    let cmp = sealback_corpus::compare(&fixture().join(source), &out.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{tag}: {:?}", cmp.differences);
    assert!(cmp.files >= 5 && cmp.databases == 1, "{cmp:?}");
    assert_eq!(
        std::fs::read_link(out.join("chats/link-to-notes")).unwrap(),
        Path::new("notes.txt")
    );
}

#[tokio::test]
async fn a_version_1_repository_restores_identically_and_checks_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, mut repo) = open_copy(tmp.path()).await;
    assert!(
        pack_versions(&dir).iter().all(|&v| v == 1),
        "the fixture holds version 1 packs only"
    );
    // The attack of `packs.rs` works on these: every blob header and pack header is found.
    let (blob_headers, pack_headers) = super::packs::keyless_scan(&dir);
    assert!(
        blob_headers >= 10 && pack_headers == 2,
        "{blob_headers} {pack_headers}"
    );
    restore_and_compare(&mut repo, "first", "source-1", &tmp.path().join("one")).await;
    restore_and_compare(&mut repo, "second", "source-2", &tmp.path().join("two")).await;
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert!(report.bytes_verified > 0);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("--upgrade-packs")),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_version_1_repository_takes_new_backups_and_prune_upgrades_its_packs() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, mut repo) = open_copy(tmp.path()).await;
    // A new backup into the old repository: version 2 packs beside version 1 packs.
    let chats = tmp.path().join("chats");
    copy_dir(&fixture().join("source-2"), &chats);
    std::fs::write(chats.join("new.txt"), "written after the upgrade\n").unwrap();
    std::fs::remove_file(chats.join("link-to-notes")).unwrap();
    std::os::unix::fs::symlink("notes.txt", chats.join("link-to-notes")).unwrap();
    let third = backup(
        &mut repo,
        std::slice::from_ref(&chats),
        &super::opts(3),
        &NoProgress,
    )
    .await
    .unwrap();
    let versions = pack_versions(&dir);
    assert!(
        versions.contains(&1) && versions.contains(&2),
        "{versions:?}"
    );

    // Forget the first snapshot, then prune and upgrade: every pack left is version 2.
    let first = repo
        .list_snapshots()
        .await
        .unwrap()
        .into_iter()
        .find(|(_, s)| s.tags == ["first"])
        .unwrap()
        .0;
    forget::forget(
        &mut repo,
        &forget::ForgetTarget::Snapshots(vec![first.to_hex()]),
        false,
    )
    .await
    .unwrap();
    let opts = PruneOptions {
        upgrade_packs: true,
        ..Default::default()
    };
    let report = prune(&mut repo, &opts, &NoProgress).await.unwrap();
    assert!(report.packs_repacked >= 1, "{report:?}");
    let versions = pack_versions(&dir);
    assert!(versions.iter().all(|&v| v == 2), "{versions:?}");
    assert_eq!(
        super::packs::keyless_scan(&dir),
        (0, 0),
        "a keyless scan still finds blob headers or a pack header"
    );

    restore_and_compare(&mut repo, "second", "source-2", &tmp.path().join("two")).await;
    let out = tmp.path().join("three");
    restore::restore(&mut repo, &third.snapshot_id, &out, &NoProgress)
        .await
        .unwrap();
    let cmp = sealback_corpus::compare(&chats, &out.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
    let report = check::check(&mut repo, true, &NoProgress).await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert!(report.warnings.is_empty(), "{report:?}");
}

/// The fixture's keys file was written before X-Wing: its recovery-key slot is X25519 (slot
/// record version 1). Opening with the recovery key moves it to X-Wing on disk (SPEC §6.5a),
/// vouched for by the keys-file MAC, and it opens again.
#[tokio::test]
async fn opening_moves_the_fixtures_x25519_slot_to_xwing() {
    use sealback_core::keyslot::{KeySlotFile, SlotKem};
    let keys = |dir: &Path| KeySlotFile::decode(&std::fs::read(dir.join("keys")).unwrap()).unwrap();
    let before = keys(&fixture().join("repo"));
    assert!(before.slots.iter().all(|s| s.kem == SlotKem::X25519));
    let tmp = tempfile::tempdir().unwrap();
    let (dir, repo) = open_copy(tmp.path()).await;
    let after = keys(&dir);
    assert_eq!(after.slots.len(), before.slots.len());
    let slot = &after.slots[0];
    assert_eq!((slot.id, slot.kem), (before.slots[0].id, SlotKem::XWing));
    assert_eq!(
        (slot.public_key.len(), slot.sealed[0].enc.len()),
        (1216, 1120)
    );
    assert_eq!(after.unvouched(repo.keyring()).unwrap(), Some(vec![]));
    // The move is a rotation: the epoch went up, so a device that saw it refuses the keys file
    // from before, in which the slot was still X25519 (the rollback record, SPEC §12).
    assert_eq!(after.current_epoch, before.current_epoch + 1);
    assert_eq!(repo.keyring().current_epoch(), after.current_epoch);
    let record = tmp.path().join("seen.keys.json");
    sealback_engine::seen::record_key_epoch(&record, repo.keyring().current_epoch()).unwrap();
    assert!(matches!(
        sealback_engine::seen::check_key_epoch(&record, before.current_epoch),
        Err(sealback_engine::Error::KeysRolledBack { .. })
    ));
    drop(repo);
    // The next unlock by the same key confirms the new epoch (its attestation moves up, the
    // ordinary re-attestation of SPEC §6.5); from then on the file is stable.
    let (_, again) = open_copy_in_place(&dir).await;
    drop(again);
    let settled = keys(&dir);
    assert_eq!(
        settled.current_epoch, after.current_epoch,
        "no second rotation"
    );
    assert_eq!(settled.slots[0].attested_epoch, after.current_epoch);
    let (_, third) = open_copy_in_place(&dir).await;
    assert_eq!(
        keys(&dir),
        settled,
        "an X-Wing slot at the current epoch is not rewritten"
    );
    drop(third);
}

async fn open_copy_in_place(dir: &Path) -> (PathBuf, Repository) {
    let key = std::fs::read_to_string(fixture().join("recovery-key")).unwrap();
    let mut protector = RecoveryKeyProtector(RecoveryKey::parse(key.trim()).unwrap());
    let store = Store::open(dir.to_str().unwrap()).unwrap();
    let repo = Repository::open(store, &mut protector).await.unwrap();
    (dir.to_path_buf(), repo)
}
