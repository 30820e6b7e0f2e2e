//! The passkey protector through the CLI: each "device" has its own HOME, and copying the
//! passkey store file stands for a synced password manager.

use super::{assert_exit as fails, assert_ok as ok};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sealback");

struct Device {
    home: PathBuf,
    repo: PathBuf,
}

impl Device {
    fn new(root: &Path, name: &str, repo: &Path) -> Self {
        let home = root.join(name);
        std::fs::create_dir_all(&home).unwrap();
        Self {
            home,
            repo: repo.to_path_buf(),
        }
    }

    fn store(&self) -> PathBuf {
        self.home.join(".local/share/sealback/passkeys.sbpk")
    }

    fn cmd(&self, pin: &str) -> Command {
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("SEALBACK_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", &self.home)
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("SEALBACK_TEMP_DIR", &self.home)
            .env("SEALBACK_PASSKEY_PIN", pin)
            .arg("--repo")
            .arg(&self.repo)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, pin: &str, args: &[&str]) -> Output {
        self.cmd(pin).args(args).output().unwrap()
    }

    fn json(&self, pin: &str, args: &[&str]) -> Value {
        let out = self.run(pin, &[&["--json"], args].concat());
        ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn chats(root: &Path, seed: u64) -> PathBuf {
    let dir = root.join("phone-A").join("chats");
    sealback_corpus::generate(&dir, &sealback_corpus::ChatStoreSpec::tiny(seed)).unwrap();
    dir
}

fn copy_store(from: &Device, to: &Device) {
    std::fs::create_dir_all(to.store().parent().unwrap()).unwrap();
    std::fs::copy(from.store(), to.store()).unwrap();
}

#[test]
fn a_synced_passkey_restores_on_a_new_device_and_others_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("cloud");
    let a = Device::new(tmp.path(), "device-a", &repo);
    let key_file = tmp.path().join("recovery.txt");
    let init = a.json(
        "1234",
        &[
            "--recovery-key-file",
            key_file.to_str().unwrap(),
            "init",
            "--passkey",
            "--passkey-name",
            "phone A",
        ],
    );
    assert_eq!(init["keys"], serde_json::json!(["passkey", "recovery-key"]));
    assert!(a.store().exists());
    let store_bytes = std::fs::read(a.store()).unwrap();
    assert!(
        !store_bytes.windows(9).any(|w| w == b"localhost"),
        "the passkey store is encrypted"
    );
    let chats = chats(tmp.path(), 11);
    let snap = a.json("1234", &["backup", chats.to_str().unwrap()]);

    // Device B holds only a copy of the passkey store (and reaches the cloud drive).
    let b = Device::new(tmp.path(), "device-b", &repo);
    copy_store(&a, &b);
    let target = tmp.path().join("device-b-restore");
    ok(&b.run(
        "1234",
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    let cmp = sealback_corpus::compare(&chats, &target.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
    let listed = b.json("1234", &["snapshots"]);
    assert_eq!(listed[0]["id"], snap["snapshot_id"]);

    // A wrong PIN.
    fails(&b.run("4321", &["snapshots"]), 3, "wrong PIN");
    // A passkey from another store.
    let c_own = Device::new(tmp.path(), "device-c", &tmp.path().join("other-cloud"));
    ok(&c_own.run("1234", &["init", "--passkey", "--no-recovery-key"]));
    let c = Device::new(tmp.path(), "device-c", &repo);
    fails(
        &c.run("1234", &["snapshots"]),
        3,
        "no passkey in this passkey store belongs to this backup",
    );
    // No PIN and no terminal.
    let out = b
        .cmd("1234")
        .env_remove("SEALBACK_PASSKEY_PIN")
        .args(["snapshots"])
        .output()
        .unwrap();
    fails(&out, 3, "needs the passkey store's PIN");
    // The recovery key still opens it.
    let out = b
        .cmd("1234")
        .args([
            "--recovery-key-file",
            key_file.to_str().unwrap(),
            "snapshots",
        ])
        .output()
        .unwrap();
    ok(&out);
}

#[test]
fn two_passkeys_then_rotation_locks_out_the_removed_one() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("cloud");
    let phone = Device::new(tmp.path(), "phone", &repo);
    let laptop = Device::new(tmp.path(), "laptop", &repo);
    let key_file = tmp.path().join("recovery.txt");
    ok(&phone.run(
        "1111",
        &[
            "--recovery-key-file",
            key_file.to_str().unwrap(),
            "init",
            "--passkey",
            "--passkey-name",
            "phone",
        ],
    ));
    // The laptop's own passkey store; enrolling unlocks with the recovery key first.
    let added = laptop.json(
        "2222",
        &[
            "--recovery-key-file",
            key_file.to_str().unwrap(),
            "key",
            "add",
            "passkey",
            "--name",
            "laptop",
        ],
    );
    let laptop_slot = added["id"].as_str().unwrap().to_string();
    let chats = chats(tmp.path(), 12);
    ok(&phone.run("1111", &["backup", chats.to_str().unwrap()]));
    // Either passkey unlocks.
    ok(&phone.run("1111", &["snapshots"]));
    ok(&laptop.run("2222", &["snapshots"]));
    let keys = phone.json("1111", &["key", "list"]);
    let types: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["passkey", "recovery-key", "passkey"]);
    assert!(
        keys["keys"][0]["last_used_unix"].as_u64().is_some(),
        "phone's passkey was used on the phone: {keys}"
    );

    // The laptop is lost: remove its passkey and rotate the backup key, from the phone.
    let removed = phone.json("1111", &["key", "remove", &laptop_slot[..10], "--rotate"]);
    assert_eq!(removed["rotated"], true);
    assert_eq!(removed["epoch"], 1);
    std::fs::write(chats.join("new-note.txt"), b"written after the rotation").unwrap();
    let after = phone.json("1111", &["backup", chats.to_str().unwrap()]);

    // The remaining passkey and the recovery key open the new snapshot; the laptop's does not.
    let t1 = tmp.path().join("r1");
    ok(&phone.run(
        "1111",
        &[
            "restore",
            after["snapshot_id"].as_str().unwrap(),
            "--target",
            t1.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read(t1.join("chats/new-note.txt")).unwrap(),
        b"written after the rotation"
    );
    let t2 = tmp.path().join("r2");
    let out = phone
        .cmd("1111")
        .args([
            "--recovery-key-file",
            key_file.to_str().unwrap(),
            "restore",
            "latest",
            "--target",
            t2.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    ok(&out);
    fails(
        &laptop.run("2222", &["snapshots"]),
        3,
        "no passkey in this passkey store belongs to this backup",
    );
    let keys = phone.json("1111", &["key", "list"]);
    assert_eq!(keys["epoch"], 1);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    // Deduplication survives the rotation: the unchanged chat store added almost nothing.
    assert!(after["bytes_added"].as_u64().unwrap() < 200_000, "{after}");
    // The human output of a rotation says what stays readable.
    let out = phone
        .cmd("1111")
        .args([
            "--recovery-key-file",
            key_file.to_str().unwrap(),
            "key",
            "add",
            "recovery-key",
            "--name",
            "spare",
            "--out",
        ])
        .arg(tmp.path().join("spare.txt"))
        .output()
        .unwrap();
    ok(&out);
    let spare = phone.json("1111", &["key", "list"])["keys"][2]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = phone.run("1111", &["key", "remove", &spare, "--rotate"]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Snapshots made before stay readable"),
        "{text}"
    );
}

#[test]
fn a_provider_without_prf_is_told_the_alternatives_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("cloud");
    let d = Device::new(tmp.path(), "d", &repo);
    let out = d
        .cmd("1")
        .env("SEALBACK_PASSKEY_PRF", "0")
        .args(["init", "--passkey"])
        .output()
        .unwrap();
    fails(&out, 1, "does not support the PRF extension");
    assert!(String::from_utf8_lossy(&out.stderr).contains("recovery key"));
    assert!(!repo.join("config").exists(), "no repository without a key");
    ok(&d.run(
        "1",
        &[
            "--recovery-key-file",
            tmp.path().join("k").to_str().unwrap(),
            "init",
        ],
    ));
}

#[test]
fn skipping_the_recovery_key_needs_a_flag_and_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("cloud");
    let d = Device::new(tmp.path(), "d", &repo);
    let out = d.run("1", &["init", "--no-recovery-key"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--no-recovery-key without --passkey is a usage error"
    );
    let out = d.run("1", &["init", "--passkey", "--no-recovery-key"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no recovery key was made") && stderr.contains("gone for good"),
        "{stderr}"
    );
    let keys = d.json("1", &["key", "list"]);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    // The only key cannot be removed.
    let id = keys["keys"][0]["id"].as_str().unwrap().to_string();
    fails(&d.run("1", &["key", "remove", &id]), 1, "only key");
}
