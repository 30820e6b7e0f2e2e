//! Attacks on the keys file by whoever can write to the storage (issue 13), each performed
//! against a real repository on disk. The attacker's side is written from SPEC §2 and §6 with
//! the `hpke` crate directly, not with sealback's own keyslot code.

use super::{backup_at, init, same_key, template};
use hkdf::Hkdf;
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, Serializable};
use sealback_core::keyslot::{KeySlotFile, SlotId};
use sealback_core::recovery::RecoveryKey;
use sealback_corpus::ChatStoreSpec;
use sealback_engine::progress::NoProgress;
use sealback_engine::{check, restore};
use sealback_engine::{ErrorKind, Repository};
use sealback_store::Store;
use sha2::Sha256;
use std::path::Path;

const SLOT_KEYS: &[u8] = b"sealback 2026-11-25 slot keys";
const ROOT_KEY_INFO: &[u8] = b"sealback 2026-11-25 root key";
/// Offset of the first slot record: magic(6) ‖ version(1) ‖ repo_id(16) ‖ epoch(4) ‖ n(2).
const FIRST_SLOT: usize = 29;

/// A secret the attacker holds (a recovery key it minted itself) and the slot it derives.
struct Attacker {
    secret: Vec<u8>,
    salt: [u8; 32],
    slot_id: [u8; 16],
}

impl Attacker {
    fn new() -> Self {
        let key = RecoveryKey::generate(&mut sealback_engine::os_rng());
        Self {
            secret: key.to_secret().expose_secret().to_vec(),
            salt: [7; 32],
            slot_id: [0xa7; 16],
        }
    }

    fn key_pair(&self) -> (<X25519HkdfSha256 as Kem>::PrivateKey, [u8; 32]) {
        let mut okm = [0u8; 64];
        Hkdf::<Sha256>::new(Some(&self.salt), &self.secret)
            .expand(SLOT_KEYS, &mut okm)
            .unwrap();
        let (sk, pk) = X25519HkdfSha256::derive_keypair(&okm[..32]);
        (sk, pk.to_bytes().into())
    }

    /// A slot record (SPEC §6.2) for the attacker's public key, named to look like the user's.
    fn slot_record(&self, public_key: [u8; 32], epoch: u32) -> Vec<u8> {
        let mut r = vec![1u8];
        r.extend_from_slice(&self.slot_id);
        r.extend_from_slice(&1u16.to_be_bytes()); // recovery key
        let name = b"paper copy";
        r.extend_from_slice(&(name.len() as u16).to_be_bytes());
        r.extend_from_slice(name);
        r.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        r.extend_from_slice(&0u32.to_be_bytes()); // no params
        r.extend_from_slice(&self.salt);
        r.extend_from_slice(&public_key);
        r.push(1);
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[9; 32 + 48]); // an entry nobody will check before sealing to us
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[3; 32]);
        r
    }

    /// Puts `record` into the keys file on disk as its first slot.
    fn inject(&self, repo_dir: &Path, record: &[u8]) {
        let path = repo_dir.join("keys");
        let mut bytes = std::fs::read(&path).unwrap();
        let n = u16::from_be_bytes([bytes[27], bytes[28]]);
        bytes[27..29].copy_from_slice(&(n + 1).to_be_bytes());
        let mut framed = (record.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(record);
        bytes.splice(FIRST_SLOT..FIRST_SLOT, framed);
        std::fs::write(&path, bytes).unwrap();
    }

    /// Every root key the attacker can open from its slot in the keys file now on disk.
    fn opened_root_keys(&self, repo_dir: &Path) -> Vec<[u8; 32]> {
        let bytes = std::fs::read(repo_dir.join("keys")).unwrap();
        let repo_id = &bytes[7..23];
        let n = u16::from_be_bytes([bytes[27], bytes[28]]);
        let (sk, _) = self.key_pair();
        let mut opened = vec![];
        let mut at = FIRST_SLOT;
        for _ in 0..n {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let record = &bytes[at + 4..at + 4 + len];
            at += 4 + len;
            if record[1..17] != self.slot_id {
                continue;
            }
            let name_len = u16::from_be_bytes([record[19], record[20]]) as usize;
            let mut p = 21 + name_len + 8;
            let params_len = u32::from_be_bytes(record[p..p + 4].try_into().unwrap()) as usize;
            p += 4 + params_len + 32 + 32;
            let m = record[p] as usize;
            p += 1;
            for _ in 0..m {
                let epoch = &record[p..p + 4];
                let enc = &record[p + 4..p + 36];
                let ct = &record[p + 36..p + 84];
                p += 84;
                let mut info = ROOT_KEY_INFO.to_vec();
                info.extend_from_slice(repo_id);
                info.extend_from_slice(&self.slot_id);
                info.extend_from_slice(epoch);
                let Ok(enc) = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(enc) else {
                    continue;
                };
                if let Ok(root) = hpke::single_shot_open::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
                    &OpModeR::Base,
                    &sk,
                    &enc,
                    &info,
                    ct,
                    &[],
                ) {
                    opened.push(root.try_into().unwrap());
                }
            }
        }
        opened
    }
}

/// The user's repository on disk with two recovery keys: the one in hand and a lost one.
async fn repo_with_two_keys(dir: &Path) -> (Repository, RecoveryKey, SlotId) {
    let store = Store::open(dir.to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&store).await;
    let lost = RecoveryKey::generate(&mut sealback_engine::os_rng());
    let lost_id = repo.add_slot(template(), &lost.to_secret()).await.unwrap();
    (repo, key, lost_id)
}

async fn reopen(dir: &Path, key: &RecoveryKey) -> Result<Repository, sealback_engine::Error> {
    let store = Store::open(dir.to_str().unwrap()).unwrap();
    Repository::open(store, &mut same_key(key)).await
}

#[tokio::test]
async fn attack_injected_slot_then_rotate_gives_the_attacker_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let (repo, key, lost_id) = repo_with_two_keys(&dir).await;
    drop(repo);

    // The drive's operator adds a slot for a recovery key it minted, named "paper copy".
    let attacker = Attacker::new();
    let (_, attacker_pk) = attacker.key_pair();
    attacker.inject(&dir, &attacker.slot_record(attacker_pk, 0));

    // The user lost a device and does what one should: remove its key and rotate.
    let rotated = match reopen(&dir, &key).await {
        Ok(mut repo) => match repo.remove_slot(lost_id, true).await {
            Ok(_) => Some(repo.keyring().current_root().expose_secret().to_owned()),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
                None
            }
        },
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
            assert!(
                e.to_string().contains(&SlotId(attacker.slot_id).to_hex()),
                "the refusal names the injected slot: {e}"
            );
            None
        }
    };

    let stolen = attacker.opened_root_keys(&dir);
    if let Some(new_root) = rotated {
        assert!(
            !stolen.contains(&new_root),
            "the attacker opened the new root key sealed by the user's rotation"
        );
    }
    assert!(
        stolen.is_empty(),
        "the attacker opened {} root key(s)",
        stolen.len()
    );
}

#[tokio::test]
async fn attack_low_order_public_key_slot_is_refused_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let (repo, key, lost_id) = repo_with_two_keys(&dir).await;
    drop(repo);
    let attacker = Attacker::new();
    attacker.inject(&dir, &attacker.slot_record([0; 32], 0));

    // In a thread of its own, so that a panic is seen as the failure it is (exit 101 in the CLI).
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut repo = reopen(&dir, &key).await?;
            repo.remove_slot(lost_id, true).await.map(|_| ())
        })
    })
    .join();
    let result = outcome.expect("rotation must not panic on a low-order public key");
    let e = result.expect_err("a keys file with a low-order public key is refused");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
}

/// Rewrites the keys file on disk as format 1 (no MAC), as a release before format 2 wrote it.
fn downgrade_to_format_1(dir: &Path) {
    let path = dir.join("keys");
    let mut file = KeySlotFile::decode(&std::fs::read(&path).unwrap()).unwrap();
    file.vouch = None;
    std::fs::write(&path, file.encode()).unwrap();
}

#[tokio::test]
async fn a_format_1_repository_opens_upgrades_and_restores_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(5)).unwrap();
    let dir = tmp.path().join("repo");
    let (mut repo, key, _) = repo_with_two_keys(&dir).await;
    let first = backup_at(&mut repo, &chats, 1).await.unwrap();
    drop(repo);
    downgrade_to_format_1(&dir);
    assert_eq!(std::fs::read(dir.join("keys")).unwrap()[6], 1);

    let mut repo = reopen(&dir, &key).await.unwrap();
    let listed: Vec<String> = repo
        .upgraded_slots()
        .expect("the upgrade lists what it vouched for")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(
        std::fs::read(dir.join("keys")).unwrap()[6],
        2,
        "written as format 2"
    );
    let out = tmp.path().join("out");
    restore::restore(&mut repo, &first.snapshot_id, &out, &NoProgress)
        .await
        .unwrap();
    let cmp = sealback_corpus::compare(&chats, &out.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
    drop(repo);
    // Once upgraded, nothing more to vouch for.
    assert!(reopen(&dir, &key).await.unwrap().upgraded_slots().is_none());
}

#[tokio::test]
async fn an_unvouched_slot_can_be_removed_and_then_rotation_works() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let (repo, key, lost_id) = repo_with_two_keys(&dir).await;
    drop(repo);
    let attacker = Attacker::new();
    let (_, attacker_pk) = attacker.key_pair();
    attacker.inject(&dir, &attacker.slot_record(attacker_pk, 0));
    let intruder = SlotId(attacker.slot_id);

    let store = Store::open(dir.to_str().unwrap()).unwrap();
    let mut repo = Repository::open_to_remove_unvouched(store, &mut same_key(&key))
        .await
        .unwrap();
    let listed: Vec<String> = repo
        .unvouched_slots()
        .iter()
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(listed, [intruder.to_hex()]);
    repo.remove_slot(intruder, false).await.unwrap();
    drop(repo);
    let mut repo = reopen(&dir, &key).await.unwrap();
    repo.remove_slot(lost_id, true).await.unwrap();
    assert!(attacker.opened_root_keys(&dir).is_empty());
    assert_eq!(repo.keyslots().slots.len(), 1);
}

#[tokio::test]
async fn attack_deleted_newest_snapshot_is_a_check_problem_with_a_device_record() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(6)).unwrap();
    let dir = tmp.path().join("repo");
    let (mut repo, _, _) = repo_with_two_keys(&dir).await;
    let record = tmp.path().join("seen").join("repo.json");
    backup_at(&mut repo, &chats, 1).await.unwrap();
    let newest = backup_at(&mut repo, &chats, 2).await.unwrap();
    let r = check::check_with_device_record(&mut repo, false, &NoProgress, &record)
        .await
        .unwrap();
    assert!(r.problems.is_empty(), "{r:?}");

    std::fs::remove_file(dir.join("snapshots").join(newest.snapshot_id.to_hex())).unwrap();
    let r = check::check_with_device_record(&mut repo, false, &NoProgress, &record)
        .await
        .unwrap();
    assert_eq!(r.problems.len(), 1, "{r:?}");
    let e = r.into_result().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert!(e.to_string().contains("forget"), "{e}");
    // Without the record the repository is sound in itself: only the record can tell.
    assert!(check::check(&mut repo, false, &NoProgress)
        .await
        .unwrap()
        .problems
        .is_empty());
}

/// Attack: the drive's operator adds a slot that carries the id of the user's own key. The
/// refusal names that id as not vouched for, and the way out it offers, removing the key of
/// that id, removed every slot with that id: the user's own key with the intruder, so the key
/// in hand no longer opened the backup (with a single key, nothing would have). A keys file in
/// which two keys share an id is now refused as altered, and nothing is removed.
#[tokio::test]
async fn attack_a_slot_carrying_the_users_key_id_cannot_make_removal_take_the_users_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let (repo, key, _) = repo_with_two_keys(&dir).await;
    let mine = repo.unlocked_slot();
    drop(repo);
    let attacker = Attacker {
        slot_id: mine.0,
        ..Attacker::new()
    };
    let (_, attacker_pk) = attacker.key_pair();
    attacker.inject(&dir, &attacker.slot_record(attacker_pk, 0));
    let injected = std::fs::read(dir.join("keys")).unwrap();

    // The user does what the refusal says: removes the key it names.
    remove_the_named_key(&dir, &key, mine, "the intruder carries the user's id").await;

    let on_disk = std::fs::read(dir.join("keys")).unwrap();
    let users_key_kept = on_disk == injected
        || KeySlotFile::decode(&on_disk).is_ok_and(|f| {
            f.slots
                .iter()
                .any(|s| s.id == mine && s.public_key != attacker_pk.to_vec())
        });
    assert!(
        users_key_kept,
        "removing the key the refusal named took the user's own key out of the keys file"
    );
}

/// Attack: the drive's operator adds a record of a layout this version does not know, carrying
/// the id of the user's second key. The refusal names that id as not vouched for; removing the
/// key of that id, as it advises, removed the user's key and vouched for the intruder's record
/// (a newer sealback that knows the layout would then seal root keys to it). Two records with
/// one id are now refused as altered.
#[tokio::test]
async fn attack_a_record_of_unknown_layout_carrying_a_users_key_id_is_never_vouched_for() {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let (repo, key, second) = repo_with_two_keys(&dir).await;
    drop(repo);
    let mut record = vec![9u8];
    record.extend_from_slice(&second.0);
    record.extend_from_slice(b"a slot of a layout from the future");
    let attacker = Attacker::new();
    attacker.inject(&dir, &record);

    remove_the_named_key(&dir, &key, second, "the record carries the user's id").await;

    let on_disk = KeySlotFile::decode(&std::fs::read(dir.join("keys")).unwrap());
    let digest: [u8; 32] = sha2::Sha256::digest(&record).into();
    if let Ok(file) = on_disk {
        assert!(
            file.vouch.is_none_or(|v| !v.digests.contains(&digest)),
            "the intruder's record is vouched for by the keys file"
        );
        assert!(
            file.slots.iter().any(|s| s.id == second),
            "the user's key the intruder's id named was removed"
        );
    }
}

/// The user does what the refusal of an unvouched slot says: removes the key of the id it
/// names (`id`, which an intruder's record also carries). A keys file with two records of one
/// id must be refused as altered before that; on a version that let it through, the removal
/// runs, and the caller's look at the keys file shows what it took.
async fn remove_the_named_key(dir: &Path, key: &RecoveryKey, id: SlotId, why: &str) {
    let store = Store::open(dir.to_str().unwrap()).unwrap();
    match Repository::open_to_remove_unvouched(store, &mut same_key(key)).await {
        Ok(mut repo) => {
            let named: Vec<String> = repo
                .unvouched_slots()
                .iter()
                .map(|s| s.id.clone())
                .collect();
            assert_eq!(named, [id.to_hex()], "{why}");
            let _ = repo.remove_slot(id, false).await;
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
            assert!(e.to_string().contains("same id"), "{e}");
        }
    }
}
