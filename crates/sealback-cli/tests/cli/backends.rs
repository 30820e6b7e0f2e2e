//! The whole CLI story on real cloud-drive protocols: an S3-compatible server (moto) and a
//! WebDAV server (rclone), both started by the test on loopback.

use super::{assert_ok, BIN};
use sealback_corpus::{ChatStoreSpec, DayOfUse};
use std::path::Path;
use std::process::{Command, Stdio};

fn sealback(root: &Path, repo: &str, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("SEALBACK_") || k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", root.join("home"))
        .env("SEALBACK_TEMP_DIR", root)
        .envs(env.iter().copied())
        .args(["--repo", repo, "--recovery-key-file"])
        .arg(root.join("recovery.txt"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn story(repo: &str, env: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("home")).unwrap();
    let chats = root.join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(11)).unwrap();
    let run = |args: &[&str]| sealback(root, repo, env, args);
    assert_ok(&run(&["init"]));
    let out = run(&["--json", "backup", chats.to_str().unwrap()]);
    assert_ok(&out);
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    sealback_corpus::apply_day(
        &chats,
        &DayOfUse {
            seed: 5,
            new_messages: 200,
            new_photos: 1,
            deleted_media: 1,
        },
    )
    .unwrap();
    let out = run(&["--json", "backup", chats.to_str().unwrap()]);
    assert_ok(&out);
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        second["bytes_added"].as_u64().unwrap() < first["bytes_added"].as_u64().unwrap() / 2,
        "{first} then {second}"
    );
    assert_ok(&run(&["check", "--read-data"]));
    let target = root.join("restored");
    assert_ok(&run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]));
    let cmp = sealback_corpus::compare(&chats, &target.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
}

#[test]
fn back_up_check_and_restore_on_s3() {
    let server = sealback_testkit::S3Server::start("chat-backups");
    story(
        &server.location("chat-backups", "alice/phone"),
        &[
            (
                "SEALBACK_S3_ACCESS_KEY_ID",
                sealback_testkit::S3Server::ACCESS_KEY,
            ),
            (
                "SEALBACK_S3_SECRET_ACCESS_KEY",
                sealback_testkit::S3Server::SECRET_KEY,
            ),
        ],
    );
}

#[test]
fn back_up_check_and_restore_on_webdav() {
    let server = sealback_testkit::WebDavServer::start();
    story(
        &server.location("alice/phone"),
        &[
            ("SEALBACK_WEBDAV_USER", sealback_testkit::WebDavServer::USER),
            (
                "SEALBACK_WEBDAV_PASSWORD",
                sealback_testkit::WebDavServer::PASSWORD,
            ),
        ],
    );
    assert!(server.root.join("alice/phone/keys").exists());
}

#[test]
fn s3_without_keys_says_what_to_set() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("home")).unwrap();
    let out = sealback(
        tmp.path(),
        "s3://bucket/x?endpoint=http://127.0.0.1:9",
        &[],
        &["snapshots"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SEALBACK_S3_ACCESS_KEY_ID"), "{err}");
}
