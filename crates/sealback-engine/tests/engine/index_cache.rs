//! The index cache on this device (SPEC §10a): trusted only when its MAC verifies, rebuilt
//! from the index files otherwise, and never the cause of a wrong or missing restore.

use super::*;
use sealback_core::index_cache::{self, CacheMac, Record};
use sealback_core::object::ObjectType;
use sealback_core::pack::BlobEntry;
use sealback_core::{Keyring, RootKey};

/// A copy of the cache file at `path` that also lists `forged` as stored in the first pack,
/// MAC'd under `keyring`.
fn forge(path: &Path, real: &Keyring, keyring: &Keyring, forged: sealback_core::BlobId) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let (head, _, mut records) =
        index_cache::decode(&bytes, Some(CacheMac::new(real))).expect("the real cache verifies");
    records.push(Record {
        pack: 0,
        entry: BlobEntry {
            ty: ObjectType::Data,
            id: forged,
            epoch: Some(0),
            offset: 5,
            length: 1100,
            raw_length: 1000,
        },
    });
    records.sort_by_key(|r| r.entry.id);
    index_cache::encode(keyring, &head, &records)
}

async fn restored(
    repo: &mut Repository,
    id: &sealback_core::Id,
    dir: &Path,
) -> Result<(), sealback_engine::Error> {
    restore::restore(repo, id, dir, &NoProgress)
        .await
        .map(|_| ())
}

/// Someone who can write this device's cache folder (but holds no key of the backup) lists a
/// blob as stored that is not. With the MAC checked, the cache is refused and rebuilt, and the
/// backup stores the blob; the same forgery under the right key (which only a key holder can
/// make) is believed, which shows what the MAC prevents: a backup that silently leaves data
/// out.
#[tokio::test]
async fn attack_a_forged_index_cache_does_not_make_a_backup_skip_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    random_file(&data.join("a"), 1000, 1);
    let store = Store::open(tmp.path().join("repo").to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&store).await;
    backup_at(&mut repo, &data, 1).await.unwrap();
    let cache = repo
        .index_cache_path()
        .expect("this device keeps an index cache (HOME or SEALBACK_CACHE_DIR set)")
        .to_path_buf();
    assert!(cache.exists(), "a backup leaves the index cache behind");
    let content_id = |bytes: &[u8]| repo.keyring().content_id().blob_id(ObjectType::Data, bytes);

    // The attacker's forgery: the next file's blob "is stored" (MAC under a key of their own).
    random_file(&data.join("b"), 1000, 2);
    let b = content_id(&std::fs::read(data.join("b")).unwrap());
    let attacker = Keyring::new(
        repo.keyring().repo_id(),
        vec![RootKey::from_bytes([0x66; 32])],
    );
    std::fs::write(&cache, forge(&cache, repo.keyring(), &attacker, b)).unwrap();
    let mut repo2 = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    assert!(
        repo2.lookup(&b).unwrap().is_none(),
        "the forged cache was believed"
    );
    let second = backup_at(&mut repo2, &data, 2).await.unwrap();
    assert!(second.summary.blobs_added >= 1, "{:?}", second.summary);
    let out = tmp.path().join("out");
    restored(&mut repo2, &second.snapshot_id, &out)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(out.join("data/b")).unwrap(),
        std::fs::read(data.join("b")).unwrap()
    );

    // Control: the same forgery under the repository's own key is believed, and the next
    // backup then leaves the file's blob out; its restore fails (never a wrong file).
    random_file(&data.join("c"), 1000, 3);
    let c = content_id(&std::fs::read(data.join("c")).unwrap());
    let real = Keyring::new(
        repo.keyring().repo_id(),
        repo.keyring()
            .roots()
            .iter()
            .map(|k| k.duplicate())
            .collect(),
    );
    std::fs::write(&cache, forge(&cache, &real, &real, c)).unwrap();
    let mut repo3 = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    assert!(repo3.lookup(&c).unwrap().is_some());
    let third = backup_at(&mut repo3, &data, 3).await.unwrap();
    let out = tmp.path().join("out3");
    let e = restored(&mut repo3, &third.snapshot_id, &out)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    std::fs::remove_file(&cache).unwrap();
}

/// A cache cut short or changed is rebuilt from the index files: the index is what it was,
/// and the snapshot restores identically.
#[tokio::test]
async fn a_damaged_cache_is_rebuilt_and_the_backup_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(5)).unwrap();
    let store = Store::open(tmp.path().join("repo").to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&store).await;
    let snap = backup_at(&mut repo, &chats, 1).await.unwrap();
    let cache = repo
        .index_cache_path()
        .expect("an index cache")
        .to_path_buf();
    let mut want = repo.index_entries().unwrap();
    want.sort_by_key(|l| l.entry.id);
    assert!(want.len() > 5);
    let good = std::fs::read(&cache).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    for (what, bytes) in [
        ("cut short", good[..good.len() - 57].to_vec()),
        ("one bit changed", flipped),
        ("empty", vec![]),
    ] {
        std::fs::write(&cache, &bytes).unwrap();
        let mut repo = Repository::open(store.clone(), &mut same_key(&key))
            .await
            .unwrap();
        let mut got = repo.index_entries().unwrap();
        got.sort_by_key(|l| l.entry.id);
        assert_eq!(got, want, "{what}");
        let rebuilt = std::fs::read(&cache).unwrap();
        index_cache::decode(&rebuilt, Some(CacheMac::new(repo.keyring())))
            .unwrap_or_else(|e| panic!("{what}: the cache was not rebuilt: {e}"));
        let out = tmp.path().join(format!("out-{}", what.replace(' ', "-")));
        restored(&mut repo, &snap.snapshot_id, &out).await.unwrap();
        let a = sealback_corpus::compare(&chats, &out.join("chats")).unwrap();
        assert!(a.differences.is_empty() && a.files > 0, "{what}: {a:?}");
    }
    std::fs::remove_file(&cache).unwrap();
}

/// The files written under `dir` (folders are not counted).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![];
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                folders.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

/// A data blob the index does not know (here left out of a cache MAC'd under the right key,
/// so it is believed) stops a restore in its first pass: an integrity error naming the blob,
/// and no file written, not even those whose blobs are all known.
#[tokio::test]
async fn a_blob_missing_from_the_index_stops_the_restore_before_any_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for (name, seed) in [("a", 1), ("b", 2), ("c", 3)] {
        random_file(&data.join(name), 1000, seed);
    }
    let store = Store::open(tmp.path().join("repo").to_str().unwrap()).unwrap();
    let (mut repo, key) = init(&store).await;
    let snap = backup_at(&mut repo, &data, 1).await.unwrap();
    let cache = repo
        .index_cache_path()
        .expect("an index cache")
        .to_path_buf();
    let c = repo
        .keyring()
        .content_id()
        .blob_id(ObjectType::Data, &std::fs::read(data.join("c")).unwrap());
    let bytes = std::fs::read(&cache).unwrap();
    let (head, _, mut records) =
        index_cache::decode(&bytes, Some(CacheMac::new(repo.keyring()))).unwrap();
    let before = records.len();
    records.retain(|r| r.entry.id != c);
    assert_eq!(records.len(), before - 1, "c's blob was in the cache");
    std::fs::write(&cache, index_cache::encode(repo.keyring(), &head, &records)).unwrap();

    let mut repo = Repository::open(store.clone(), &mut same_key(&key))
        .await
        .unwrap();
    assert!(repo.lookup(&c).unwrap().is_none(), "the cache was not used");
    let out = tmp.path().join("out");
    let e = restored(&mut repo, &snap.snapshot_id, &out)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains(&c.short()), "{e}");
    assert_eq!(files_under(&out), Vec::<std::path::PathBuf>::new());
    std::fs::remove_file(&cache).unwrap();
}
