//! Store tests against the real fs and memory backends.

use sealback_store::{Store, StoreError};

async fn exercise(store: &Store) {
    let missing = store.read("a/missing").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
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
    let short = store.read_range("packs/ab/abcd", 8, 5).await;
    assert!(
        matches!(short, Err(StoreError::Truncated { .. })),
        "{short:?}"
    );
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

#[tokio::test]
async fn s3_backend_against_a_local_s3_server() {
    let server = sealback_testkit::S3Server::start("sealback-test");
    sealback_testkit::S3Server::set_credentials_env();
    let store = Store::open(&server.location("sealback-test", "backups/phone")).unwrap();
    exercise(&store).await;
}

#[tokio::test]
async fn webdav_backend_against_rclone() {
    let server = sealback_testkit::WebDavServer::start();
    sealback_testkit::WebDavServer::set_credentials_env();
    let store = Store::open(&server.location("backups/phone")).unwrap();
    exercise(&store).await;
    // The objects are where the server keeps files.
    assert!(server.root.join("backups/phone/config").exists());
}

#[test]
fn cloud_drives_without_credentials_say_what_to_set() {
    for (url, var) in [
        ("gdrive://sealback", "SEALBACK_GDRIVE_ACCESS_TOKEN"),
        ("onedrive://sealback", "SEALBACK_ONEDRIVE_ACCESS_TOKEN"),
    ] {
        std::env::remove_var(var);
        let e = Store::open(url).unwrap_err().to_string();
        assert!(e.contains(var), "{url}: {e}");
    }
    let e = Store::open("webdav+http://cloud.example.com/x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("refusing plain-HTTP"), "{e}");
    let e = Store::open("s3://?endpoint=x").unwrap_err().to_string();
    assert!(e.contains("s3://BUCKET/PREFIX"), "{e}");
}

#[tokio::test]
async fn an_unreachable_server_fails_after_retries_with_the_path_and_operation() {
    std::env::set_var("SEALBACK_WEBDAV_USER", "u");
    let port = sealback_testkit::free_port();
    let store = Store::open(&format!("webdav+http://127.0.0.1:{port}/x")).unwrap();
    let started = std::time::Instant::now();
    let e = store.read("config").await.unwrap_err().to_string();
    assert!(e.contains("config") && e.contains("read"), "{e}");
    // Connection refused is transient: the retries (50 ms doubling) ran first.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
}

/// A folder of the person's own files, with one file last modified two hours ago (older than
/// `TEMP_STALE`, so a clean-up of temporary files would take it for a leftover).
fn persons_folder(at: &std::path::Path) -> std::path::PathBuf {
    let own = at.join("documents");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("letter.txt"), b"keep me").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(own.join("letter.txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    own
}

/// Attack: whoever writes to a folder repository (a synced folder, a USB drive) replaces its
/// temporary folder `.tmp` by a link to a folder of the person's files. The clean-up of
/// temporary files left by a killed sealback (run by every backup and prune) must not delete
/// the person's old files there, and writes must not put files there.
#[tokio::test]
async fn attack_a_link_as_the_temporary_folder_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let store = Store::open(repo.to_str().unwrap()).unwrap();
    store.write("config", b"c".to_vec()).await.unwrap();
    let own = persons_folder(tmp.path());
    let _ = std::fs::remove_dir_all(repo.join(sealback_store::FS_TMP_DIR));
    std::os::unix::fs::symlink(&own, repo.join(sealback_store::FS_TMP_DIR)).unwrap();

    let cleaned = store.remove_stale_temp_files(sealback_store::TEMP_STALE);
    assert!(
        own.join("letter.txt").exists(),
        "the clean-up deleted the person's file"
    );
    assert!(
        matches!(cleaned, Err(StoreError::Link { .. })),
        "{cleaned:?}"
    );

    let written = store.write("snapshots/aa", b"s".to_vec()).await;
    assert!(
        matches!(written, Err(StoreError::Link { .. })),
        "{written:?}"
    );
    let names: Vec<_> = std::fs::read_dir(&own)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("letter.txt")],
        "a write left a file in the person's folder"
    );
    assert!(!repo.join("snapshots/aa").exists());
}
