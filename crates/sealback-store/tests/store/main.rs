//! Store tests against the real fs and memory backends.

use sealback_store::{Store, StoreError};

async fn exercise(store: &Store) {
    assert!(matches!(
        store.read("a/missing").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.list("packs/").await.unwrap(), Vec::<String>::new());
    store
        .write("packs/ab/abcd", b"0123456789".to_vec())
        .await
        .unwrap();
    store.write("packs/cd/cdef", b"xyz".to_vec()).await.unwrap();
    store.write("config", b"c".to_vec()).await.unwrap();
    assert_eq!(store.read("packs/ab/abcd").await.unwrap(), b"0123456789");
    assert_eq!(
        store.read_range("packs/ab/abcd", 2, 3).await.unwrap(),
        b"234"
    );
    assert!(matches!(
        store.read_range("packs/ab/abcd", 8, 5).await,
        Err(StoreError::Truncated { .. })
    ));
    assert_eq!(
        store.list("packs/").await.unwrap(),
        vec!["packs/ab/abcd", "packs/cd/cdef"]
    );
    store.write("packs/ab/abcd", b"new".to_vec()).await.unwrap();
    assert_eq!(store.read("packs/ab/abcd").await.unwrap(), b"new");
    assert!(store.exists("config").await.unwrap());
    store.delete("packs/ab/abcd").await.unwrap();
    store.delete("packs/ab/abcd").await.unwrap();
    assert!(!store.exists("packs/ab/abcd").await.unwrap());
    assert_eq!(store.list("packs/").await.unwrap(), vec!["packs/cd/cdef"]);
}

#[tokio::test]
async fn fs_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("repo").to_str().unwrap()).unwrap();
    exercise(&store).await;
    // Atomic writes leave no temporary files behind.
    let leftovers: Vec<_> =
        std::fs::read_dir(tmp.path().join("repo").join(sealback_store::FS_TMP_DIR))
            .map(|rd| rd.flatten().collect())
            .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let url = format!("file://{}", tmp.path().join("repo").display());
    assert_eq!(
        Store::open(&url).unwrap().read("config").await.unwrap(),
        b"c"
    );
}

#[tokio::test]
async fn memory_backend() {
    exercise(&Store::open("memory://").unwrap()).await;
}

#[test]
fn unknown_schemes_are_explained() {
    let e = Store::open("ftp://example/x").unwrap_err().to_string();
    assert!(
        e.contains("unsupported storage scheme") && e.contains("file://"),
        "{e}"
    );
    assert!(Store::open("").is_err());
}
