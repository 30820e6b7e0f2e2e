//! End-to-end tests of the `sealback` binary and its CLI contract, against a real file-system
//! repository and real SQLite databases.

mod backends;
mod passkeys;
mod realms;
mod settings;
mod vault;
mod vault_crash;

use sealback_corpus::{ChatStoreSpec, DayOfUse};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sealback");

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
    key_file: PathBuf,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join("home")).unwrap();
        Self {
            repo: root.join("repo"),
            key_file: root.join("recovery.txt"),
            root,
            _tmp: tmp,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("SEALBACK_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.root.join("home/.config"))
            .env("XDG_DATA_HOME", self.root.join("home/.local/share"))
            .env("SEALBACK_TEMP_DIR", &self.root)
            .arg("--repo")
            .arg(&self.repo)
            .stdin(Stdio::null());
        c
    }

    /// Runs with the recovery key file.
    fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .arg("--recovery-key-file")
            .arg(&self.key_file)
            .args(args)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(&[&["--json"], args].concat());
        assert_ok(&out);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn init(&self) {
        let out = self.run(&["init"]);
        assert_ok(&out);
    }

    fn chats(&self, seed: u64) -> PathBuf {
        let dir = self.root.join("phone").join("chats");
        sealback_corpus::generate(&dir, &ChatStoreSpec::tiny(seed)).unwrap();
        dir
    }

    /// Adds a second recovery key (written to a file in the world) and returns its slot id.
    fn add_recovery_key(&self, name: &str) -> String {
        let file = self.root.join(format!("{name}.txt"));
        let added = self.json(&[
            "key",
            "add",
            "recovery-key",
            "--name",
            name,
            "--out",
            file.to_str().unwrap(),
        ]);
        added["id"]
            .as_str()
            .expect("key add reports the new id")
            .to_string()
    }

    fn backup(&self, dir: &Path) -> Value {
        self.json(&["backup", dir.to_str().unwrap()])
    }
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_exit(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn backup_change_backup_restore_is_identical_and_incremental() {
    let w = World::new();
    w.init();
    let meta = std::fs::metadata(&w.key_file).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );

    let chats = w.chats(1);
    let first = w.backup(&chats);
    for field in [
        "snapshot_id",
        "files",
        "bytes_read",
        "bytes_added",
        "duration_s",
    ] {
        assert!(
            first.get(field).is_some(),
            "backup --json lacks {field}: {first}"
        );
    }
    sealback_corpus::apply_day(
        &chats,
        &DayOfUse {
            seed: 9,
            new_messages: 300,
            new_photos: 0,
            deleted_media: 1,
        },
    )
    .unwrap();
    let second = w.backup(&chats);
    let (a, b) = (
        first["bytes_added"].as_u64().unwrap(),
        second["bytes_added"].as_u64().unwrap(),
    );
    assert!(
        b * 3 < a,
        "second backup added {b} bytes, first {a}: not incremental"
    );

    let snaps = w.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 2);
    assert_eq!(snaps[1]["parent"], first["snapshot_id"]);

    let target = w.root.join("new-phone");
    assert_ok(&w.run(&["restore", "latest", "--target", target.to_str().unwrap()]));
    let cmp = sealback_corpus::compare(&chats, &target.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
    assert!(cmp.databases == 1 && cmp.rows > 3_000, "{cmp:?}");

    // The first snapshot restores the state before the change.
    let older = w.root.join("older");
    let first_id = first["snapshot_id"].as_str().unwrap();
    assert_ok(&w.run(&[
        "restore",
        &first_id[..12],
        "--target",
        older.to_str().unwrap(),
    ]));
    let cmp = sealback_corpus::compare(&chats, &older.join("chats")).unwrap();
    assert!(
        !cmp.differences.is_empty(),
        "the first snapshot should differ from the changed store"
    );

    let check = w.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
}

#[test]
fn recovery_key_from_env_and_wrong_keys_exit_3() {
    let w = World::new();
    w.init();
    let chats = w.chats(2);
    w.backup(&chats);
    let key = std::fs::read_to_string(&w.key_file).unwrap();

    let out = w
        .cmd()
        .env("SEALBACK_RECOVERY_KEY", key.trim())
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_ok(&out);

    // A valid key of another repository.
    let other = World::new();
    other.init();
    let other_key = std::fs::read_to_string(&other.key_file).unwrap();
    let out = w
        .cmd()
        .env("SEALBACK_RECOVERY_KEY", other_key.trim())
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_exit(&out, 3, "does not match any keyslot");

    // A typo: one digit changed.
    let mut typo: Vec<u8> = key.trim().bytes().collect();
    typo[5] = if typo[5] == b'9' { b'0' } else { typo[5] + 1 };
    let out = w
        .cmd()
        .env("SEALBACK_RECOVERY_KEY", String::from_utf8(typo).unwrap())
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_exit(&out, 3, "checksum");

    // No key at all, not on a terminal.
    let out = w.cmd().args(["snapshots"]).output().unwrap();
    assert_exit(&out, 3, "no recovery key given");
}

#[test]
fn usage_errors_exit_2_and_missing_repo_is_explained() {
    let w = World::new();
    let out = Command::new(BIN)
        .args(["backup"])
        .env_remove("SEALBACK_REPO")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = w.run(&["snapshots"]);
    assert_exit(&out, 1, "no sealback repository");
    let out = Command::new(BIN)
        .args(["snapshots"])
        .env_remove("SEALBACK_REPO")
        .env("HOME", w.root.join("home"))
        .env("XDG_CONFIG_HOME", w.root.join("home/.config"))
        .output()
        .unwrap();
    assert_exit(&out, 2, "no repository given");
}

#[test]
fn config_file_supplies_the_repository() {
    let w = World::new();
    w.init();
    let cfg = w.root.join("sealback.toml");
    std::fs::write(
        &cfg,
        format!(
            "repo = {:?}\nrecovery_key_file = {:?}\n",
            w.repo, w.key_file
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--json", "--config", cfg.to_str().unwrap(), "key", "list"])
        .env_remove("SEALBACK_REPO")
        .output()
        .unwrap();
    assert_ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["keys"][0]["type"], "recovery-key");
    assert_eq!(v["epoch"], 0);
}

#[test]
fn init_refuses_an_existing_repository_and_an_existing_key_file() {
    let w = World::new();
    w.init();
    let out = w
        .cmd()
        .args(["init", "--recovery-key-file"])
        .arg(w.root.join("k2"))
        .output()
        .unwrap();
    assert_exit(&out, 1, "already holds a sealback repository");
    assert!(
        !w.root.join("k2").exists(),
        "a key file for a failed init must not be left behind"
    );
    let out = Command::new(BIN)
        .arg("--repo")
        .arg(w.root.join("repo2"))
        .args(["init", "--recovery-key-file"])
        .arg(&w.key_file)
        .output()
        .unwrap();
    assert_exit(&out, 1, "must not exist yet");
}

#[test]
fn init_shows_the_recovery_key_once_when_no_file_is_given() {
    let w = World::new();
    let out = w.cmd().args(["init"]).output().unwrap();
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim().len() == 79 && l.trim().split(' ').count() == 16)
        .expect("a 16-group key line");
    let key = line.trim();
    assert!(stdout.contains("shown only this once"));
    let out = w
        .cmd()
        .env("SEALBACK_RECOVERY_KEY", key)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_ok(&out);
}

/// The repository's bytes contain no message text, media bytes, file names or recovery key.
#[test]
fn repository_holds_no_plaintext() {
    let w = World::new();
    w.init();
    let chats = w.chats(3);
    w.backup(&chats);
    let conn = rusqlite::Connection::open(chats.join("msgstore.db")).unwrap();
    let mut needles: Vec<Vec<u8>> = conn
        .prepare("SELECT body FROM messages WHERE length(body) > 60 LIMIT 50")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|s| s.unwrap().into_bytes()[..40].to_vec())
        .collect();
    assert!(needles.len() >= 10);
    needles.push(b"CREATE TABLE messages".to_vec());
    needles.push(b"SQLite format 3".to_vec());
    needles.push(b"IMG-2026".to_vec());
    needles.push(b"msgstore".to_vec());
    for m in sealback_corpus::list_media(&chats).unwrap() {
        let b = std::fs::read(m).unwrap();
        needles.push(b[1000..1032].to_vec());
    }
    let key: String = std::fs::read_to_string(&w.key_file)
        .unwrap()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    needles.push(key.as_bytes()[..32].to_vec());
    needles.push(key.replace(' ', "").as_bytes()[16..48].to_vec());
    let files = files_in(&w.repo);
    assert!(files.len() >= 4);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|win| win == n.as_slice()),
                "{} contains plaintext {:?}",
                f.display(),
                String::from_utf8_lossy(n)
            );
        }
    }
}

enum Damage {
    FlipBit,
    Truncate,
    Swap,
    Delete,
}

fn packs(repo: &Path) -> Vec<PathBuf> {
    files_in(&repo.join("packs"))
}

/// Damages the repository, then checks that restore and check --read-data exit 4 and that
/// restore wrote no wrong file.
fn damaged_repository_is_detected(damage: Damage) {
    let w = World::new();
    w.init();
    let chats = w.chats(4);
    w.backup(&chats);
    sealback_corpus::apply_day(
        &chats,
        &DayOfUse {
            seed: 5,
            new_messages: 500,
            new_photos: 1,
            deleted_media: 0,
        },
    )
    .unwrap();
    w.backup(&chats);
    let p = packs(&w.repo);
    assert!(p.len() >= 2, "two backups make two packs");
    match damage {
        Damage::FlipBit => {
            let mut b = std::fs::read(&p[0]).unwrap();
            let at = b.len() / 3;
            b[at] ^= 0x10;
            std::fs::write(&p[0], b).unwrap();
        }
        Damage::Truncate => {
            let b = std::fs::read(&p[0]).unwrap();
            std::fs::write(&p[0], &b[..b.len() / 2]).unwrap();
        }
        Damage::Swap => {
            let (a, b) = (std::fs::read(&p[0]).unwrap(), std::fs::read(&p[1]).unwrap());
            std::fs::write(&p[0], b).unwrap();
            std::fs::write(&p[1], a).unwrap();
        }
        Damage::Delete => std::fs::remove_file(&p[0]).unwrap(),
    }
    let out = w.run(&["check", "--read-data"]);
    assert_exit(&out, 4, "integrity failure");
    let target = w.root.join("restore");
    let out = w.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_exit(&out, 4, "integrity failure");
    // Whatever restore wrote before stopping is correct, and nothing partial is left.
    for f in files_in(&target) {
        let rel = f.strip_prefix(&target).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy();
        assert!(
            !name.starts_with(".sealback-partial-"),
            "partial file left: {}",
            f.display()
        );
        let original = chats.parent().unwrap().join(rel);
        if name.ends_with(".db") {
            continue; // compared logically below when present
        }
        assert_eq!(
            std::fs::read(&f).unwrap(),
            std::fs::read(&original).unwrap(),
            "{} restored wrong",
            rel.display()
        );
    }
    let db = target.join("chats/msgstore.db");
    if db.exists() {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
}

#[test]
fn flipped_bit_is_detected() {
    damaged_repository_is_detected(Damage::FlipBit);
}
#[test]
fn truncated_pack_is_detected() {
    damaged_repository_is_detected(Damage::Truncate);
}
#[test]
fn swapped_packs_are_detected() {
    damaged_repository_is_detected(Damage::Swap);
}
#[test]
fn deleted_pack_is_detected() {
    damaged_repository_is_detected(Damage::Delete);
}

#[test]
fn tampered_snapshot_and_keys_are_detected() {
    let w = World::new();
    w.init();
    let chats = w.chats(6);
    w.backup(&chats);
    let snap = files_in(&w.repo.join("snapshots")).remove(0);
    let mut b = std::fs::read(&snap).unwrap();
    let n = b.len();
    b[n - 20] ^= 1;
    std::fs::write(&snap, &b).unwrap();
    let out = w.run(&["snapshots"]);
    assert_exit(&out, 4, "authentication failed");
    b[n - 20] ^= 1;
    std::fs::write(&snap, &b).unwrap();
    assert_ok(&w.run(&["snapshots"]));

    // The keys file (format 2) ends with the empty keyring (u32 0), u16(1), the slot's digest
    // and the MAC.
    let keys = w.repo.join("keys");
    let original = std::fs::read(&keys).unwrap();
    let n = original.len();
    // The MAC.
    let mut k = original.clone();
    k[n - 10] ^= 1;
    std::fs::write(&keys, &k).unwrap();
    assert_exit(&w.run(&["snapshots"]), 4, "keys file failed verification");
    // The attestation at the end of the only slot.
    let mut k = original.clone();
    k[n - 70 - 10] ^= 1;
    std::fs::write(&keys, &k).unwrap();
    assert_exit(&w.run(&["snapshots"]), 4, "keyslot");
}

/// A writer process keeps inserting messages while the backup copies the database.
#[test]
fn database_written_during_backup_restores_consistent() {
    let w = World::new();
    w.init();
    let chats = w.chats(7);
    let db = chats.join("msgstore.db");
    let script = r#"
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=30)
con.execute("PRAGMA journal_mode=WAL")
i = 0
end = time.time() + 60
print("started", flush=True)
while time.time() < end:
    con.execute("BEGIN")
    for _ in range(50):
        con.execute("INSERT INTO messages(chat_id, sender_id, ts, body, status) VALUES (1, 1, ?, ?, 0)", (2000000000 + i, "concurrent message %d " % i * 8))
        i += 1
    con.execute("UPDATE messages SET status = status + 1 WHERE id % 97 = ?", (i % 97,))
    con.commit()
"#;
    let mut writer = Command::new("python3")
        .args(["-c", script, db.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test: apt-get install -y python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(writer.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "started");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let results: Vec<Value> = (0..3).map(|_| w.backup(&chats)).collect();
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert_eq!(results.len(), 3);
    for (i, snap) in results.iter().enumerate() {
        let target = w.root.join(format!("restore-{i}"));
        assert_ok(&w.run(&[
            "restore",
            snap["snapshot_id"].as_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
        ]));
        let conn = rusqlite::Connection::open(target.join("chats/msgstore.db")).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        // Transactions are whole: concurrent rows come in batches of 50.
        let concurrent: i64 = conn
            .query_row(
                "SELECT count(*) FROM messages WHERE ts >= 2000000000",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            concurrent % 50,
            0,
            "a half-committed transaction was captured"
        );
        assert!(!target.join("chats/msgstore.db-wal").exists());
    }
}

#[test]
fn key_list_shows_the_recovery_key_slot() {
    let w = World::new();
    w.init();
    let out = w.run(&["key", "list"]);
    assert_ok(&out);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("recovery-key") && s.contains("recovery key"),
        "{s}"
    );
    // Listed without a key: the list says it is the drive's unverified copy.
    assert!(s.contains("Not verified"), "{s}");
    let json = w.run(&["--json", "key", "list"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["verified"], false, "{v}");
}

#[test]
fn restore_refuses_a_non_empty_target() {
    let w = World::new();
    w.init();
    let chats = w.chats(8);
    w.backup(&chats);
    let target = w.root.join("occupied");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("precious.txt"), b"keep me").unwrap();
    let out = w.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_exit(&out, 1, "not empty");
    assert_eq!(
        std::fs::read(target.join("precious.txt")).unwrap(),
        b"keep me"
    );
}

fn dir_size(dir: &Path) -> u64 {
    files_in(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn forget_by_keep_rules_then_prune_frees_space_and_the_rest_restores() {
    let w = World::new();
    w.init();
    let chats = w.chats(11);
    w.backup(&chats);
    for seed in [21, 22] {
        sealback_corpus::apply_day(
            &chats,
            &DayOfUse {
                seed,
                new_messages: 300,
                new_photos: 2,
                deleted_media: 3,
            },
        )
        .unwrap();
        w.backup(&chats);
    }
    let out = w.run(&["forget"]);
    assert_exit(&out, 2, "no keep rule");

    let dry = w.json(&["forget", "--keep-last", "1", "--dry-run"]);
    assert_eq!(dry["removed"], 2, "{dry}");
    assert_eq!(dry["snapshots"][0]["kept_by"][0], "last", "{dry}");
    assert_eq!(w.json(&["snapshots"]).as_array().unwrap().len(), 3);

    let before = dir_size(&w.repo);
    let out = w.run(&["forget", "--keep-last", "1", "--prune"]);
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("removed 2 snapshot(s), kept 1"), "{text}");
    assert!(text.contains("freed"), "{text}");
    assert_eq!(w.json(&["snapshots"]).as_array().unwrap().len(), 1);
    let after = dir_size(&w.repo);
    // The deleted media (3 files a day) and the replaced database pages are gone.
    assert!(after < before, "{before} -> {after} bytes");
    let again = w.json(&["prune"]);
    assert_eq!(again["packs_deleted"], 0, "{again}");
    assert_eq!(again["packs_repacked"], 0, "{again}");
    assert_eq!(w.json(&["check", "--read-data"])["ok"], true);
    let target = w.root.join("restored");
    assert_ok(&w.run(&["restore", "latest", "--target", target.to_str().unwrap()]));
    let cmp = sealback_corpus::compare(&chats, &target.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
}

#[test]
fn a_held_lock_makes_prune_and_backup_exit_6_until_it_is_removed() {
    let w = World::new();
    w.init();
    let chats = w.chats(12);
    w.backup(&chats);
    // A lock this session cannot read (as from a damaged write) counts as held.
    let locks = w.repo.join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::fs::write(locks.join("ab".repeat(32)), b"\x01garbage").unwrap();
    let before = files_in(&w.repo);
    let out = w.run(&["prune"]);
    assert_exit(&out, 6, "cannot be read");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sealback locks"));
    let out = w.run(&["backup", chats.to_str().unwrap()]);
    assert_exit(&out, 6, "nothing was changed");
    assert_eq!(
        files_in(&w.repo),
        before,
        "a refused command wrote something"
    );
    let listed = w.json(&["locks"]);
    assert_eq!(listed["locks"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["locks"][0]["stale"], false, "{listed}");
    // Stale-only removal leaves it; removing all clears it.
    assert_eq!(
        w.json(&["locks", "--remove-stale"])["removed"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        w.json(&["locks", "--remove-all"])["removed"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_ok(&w.run(&["prune"]));
    w.backup(&chats);
    assert_eq!(w.json(&["locks"])["locks"].as_array().unwrap().len(), 0);
}

fn copy_dir(from: &Path, to: &Path) {
    for file in files_in(from) {
        let dest = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
}

#[test]
fn a_device_notices_when_the_storage_serves_an_older_repository() {
    let w = World::new();
    w.init();
    let chats = w.chats(13);
    w.backup(&chats);
    let old_state = w.root.join("old-copy");
    copy_dir(&w.repo, &old_state);
    sealback_corpus::apply_day(
        &chats,
        &DayOfUse {
            seed: 5,
            new_messages: 100,
            new_photos: 1,
            deleted_media: 0,
        },
    )
    .unwrap();
    let newest = w.backup(&chats)["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = w.run(&["snapshots"]);
    assert_ok(&out);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("rolled back"));

    // The cloud drive serves yesterday's copy.
    std::fs::remove_dir_all(&w.repo).unwrap();
    copy_dir(&old_state, &w.repo);
    for args in [
        &["snapshots"][..],
        &["restore", "latest", "--target", "/nonexistent/x"][..],
    ] {
        let out = w.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("looks rolled back"), "{args:?}: {stderr}");
        assert!(stderr.contains(&newest[..8]), "{stderr}");
    }
    // A new backup on this device moves its record forward: no more warning.
    let out = w.run(&["backup", chats.to_str().unwrap()]);
    assert_ok(&out);
    let out = w.run(&["snapshots"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("rolled back"));
}

/// Issue 13: a keys file saved before a rotation and put back by whoever controls the drive
/// is authentic, and would let the removed key read every later backup. This device saw the
/// rotation, so it refuses the old file before unlocking anything.
#[test]
fn attack_a_replayed_pre_rotation_keys_file_is_refused() {
    let w = World::new();
    w.init();
    let chats = w.chats(21);
    w.backup(&chats);
    let lost_id = w.add_recovery_key("lost phone");
    let saved = std::fs::read(w.repo.join("keys")).unwrap();

    let removed = w.json(&["key", "remove", &lost_id, "--rotate"]);
    assert_eq!(removed["rotated"], true);

    // The drive's operator puts the saved keys file back.
    std::fs::write(w.repo.join("keys"), &saved).unwrap();
    for args in [&["snapshots"][..], &["backup", chats.to_str().unwrap()][..]] {
        let out = w.run(args);
        assert_exit(&out, 4, "older keys file was put back");
    }
}

/// Issue 13: deleting the newest snapshot (and its data) leaves a repository that is sound in
/// itself; this device saw that snapshot, so `check` reports it gone as a problem.
#[test]
fn attack_a_deleted_newest_snapshot_fails_check() {
    let w = World::new();
    w.init();
    let chats = w.chats(22);
    w.backup(&chats);
    sealback_corpus::apply_day(
        &chats,
        &DayOfUse {
            seed: 6,
            new_messages: 50,
            new_photos: 0,
            deleted_media: 0,
        },
    )
    .unwrap();
    let newest = w.backup(&chats)["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ok(&w.run(&["check"]));

    std::fs::remove_file(w.repo.join("snapshots").join(&newest)).unwrap();
    let out = w.run(&["check"]);
    assert_exit(&out, 4, "looks rolled back");
    assert_exit(&out, 4, "forget");
}

/// A repository written before format 2 opens, is upgraded once, and the person is shown the
/// keys the upgrade vouched for; restores are the same before and after.
#[test]
fn a_format_1_keys_file_is_upgraded_once_and_its_keys_listed() {
    use sealback_core::keyslot::KeySlotFile;
    let w = World::new();
    w.init();
    let chats = w.chats(23);
    w.backup(&chats);
    let keys = w.repo.join("keys");
    let mut file = KeySlotFile::decode(&std::fs::read(&keys).unwrap()).unwrap();
    file.vouch = None;
    std::fs::write(&keys, file.encode()).unwrap();
    // This device used the repository with the previous release, whose record of the keys
    // file holds the epoch only (a device that has seen format 2 refuses format 1: see
    // attack_a_keys_file_downgraded_to_format_1_with_an_injected_key_is_refused).
    let seen = w.root.join("home/.local/share/sealback/seen");
    let record = seen.join(format!("{}.keys.json", file.repo_id.to_hex()));
    assert!(
        record.exists(),
        "the device keeps a record of the keys file"
    );
    std::fs::write(&record, br#"{"key_epoch":0}"#).unwrap();
    // The first command on the format-1 file (a restore) upgrades it.
    let before = w.root.join("before");
    let out = w.run(&["restore", "latest", "--target", before.to_str().unwrap()]);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("upgraded to format 2"), "{stderr}");
    assert!(stderr.contains(&file.slots[0].id.to_hex()), "{stderr}");
    assert_eq!(std::fs::read(&keys).unwrap()[6], 2);
    let out = w.run(&["snapshots"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("upgraded"));
    let after = w.root.join("after");
    assert_ok(&w.run(&["restore", "latest", "--target", after.to_str().unwrap()]));
    let cmp = sealback_corpus::compare(&before, &after).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
}

/// Issue 13: the drive's operator adds a "paper copy" recovery key of its own to the keys file;
/// the user's `key remove --rotate` would have sealed the new backup key to it. The slot is
/// named and refused (exit 4) before anything is sealed, and every command says so.
#[test]
fn attack_an_injected_key_is_named_and_refused_before_a_rotation() {
    use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType, SlotTemplate};
    use sealback_core::{Keyring, ProtectorSecret, RootKey};
    let w = World::new();
    w.init();
    let lost_id = w.add_recovery_key("lost phone");
    let keys = w.repo.join("keys");
    let mut file = KeySlotFile::decode(&std::fs::read(&keys).unwrap()).unwrap();
    // A slot the attacker made for a secret of its own, under a root key of its own.
    let mut rng = sealback_engine::os_rng();
    let theirs = Keyring::new(file.repo_id, vec![RootKey::random(&mut rng)]);
    let slot = KeySlot::enroll(
        &theirs,
        SlotTemplate {
            protector_type: ProtectorType::RECOVERY_KEY,
            name: "paper copy".into(),
            created_unix: 1,
            params: vec![],
        },
        &ProtectorSecret::new(b"the attacker's secret".to_vec()),
        &mut rng,
    )
    .unwrap();
    let injected = slot.id.to_hex();
    file.slots.push(slot);
    std::fs::write(&keys, file.encode()).unwrap();

    let out = w.run(&["key", "remove", &lost_id, "--rotate"]);
    assert_exit(&out, 4, &injected);
    assert_exit(&out, 4, "not vouched for");
    let after = KeySlotFile::decode(&std::fs::read(&keys).unwrap()).unwrap();
    assert_eq!(after.current_epoch, 0, "nothing was rotated");
    assert_exit(&w.run(&["snapshots"]), 4, "paper copy");

    // The way out the hint names: remove the injected key, then rotate as planned. The new
    // root key is sealed to the person's keys only.
    let out = w.run(&["key", "remove", &injected]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = w.run(&["key", "remove", &lost_id, "--rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = KeySlotFile::decode(&std::fs::read(&keys).unwrap()).unwrap();
    assert_eq!(after.current_epoch, 1, "rotated");
    assert!(after.slots.iter().all(|s| s.id.to_hex() != injected));
    assert!(w.run(&["snapshots"]).status.success());
}

/// The attacker's side of the keys-file attacks below: a recovery-key slot for a secret the
/// drive's operator holds, sealed under a root key of its own, named to look like the user's.
fn attacker_slot(repo_id: sealback_core::RepoId) -> sealback_core::keyslot::KeySlot {
    use sealback_core::keyslot::{KeySlot, ProtectorType, SlotTemplate};
    use sealback_core::{Keyring, ProtectorSecret, RootKey};
    let mut rng = sealback_engine::os_rng();
    let theirs = Keyring::new(repo_id, vec![RootKey::random(&mut rng)]);
    KeySlot::enroll(
        &theirs,
        SlotTemplate {
            protector_type: ProtectorType::RECOVERY_KEY,
            name: "paper copy".into(),
            created_unix: 1,
            params: vec![],
        },
        &ProtectorSecret::new(b"the attacker's secret".to_vec()),
        &mut rng,
    )
    .unwrap()
}

/// Attack (issue 13, format downgrade): the drive's operator strips the MAC from a format-2
/// keys file (making it look like format 1) and adds a key of its own. Before the fix the next
/// command "upgraded" it, vouching for the injected key, and the user's `key remove --rotate`
/// then sealed the new backup key to the attacker. This device has seen format 2, so it
/// refuses the format-1 file (exit 4) and nothing is vouched for or sealed to the attacker.
#[test]
fn attack_a_keys_file_downgraded_to_format_1_with_an_injected_key_is_refused() {
    use sealback_core::keyslot::KeySlotFile;
    let w = World::new();
    w.init();
    let lost_key = w.root.join("lost.txt");
    let added = w.json(&[
        "key",
        "add",
        "recovery-key",
        "--out",
        lost_key.to_str().unwrap(),
    ]);
    let lost_id = added["id"].as_str().unwrap().to_string();
    assert_ok(&w.run(&["snapshots"]));
    let keys = w.repo.join("keys");
    let mut file = KeySlotFile::decode(&std::fs::read(&keys).unwrap()).unwrap();
    assert!(file.vouch.is_some(), "the repository is of format 2");
    let slot = attacker_slot(file.repo_id);
    let injected = slot.id;
    file.slots.push(slot);
    file.vouch = None;
    std::fs::write(&keys, file.encode()).unwrap();

    let out = w.run(&["snapshots"]);
    let out_rotate = w.run(&["key", "remove", &lost_id, "--rotate"]);
    let after = KeySlotFile::decode(&std::fs::read(&keys).unwrap()).unwrap();
    let sealed_to_attacker: Vec<u32> = after
        .slots
        .iter()
        .filter(|s| s.id == injected)
        .flat_map(|s| s.sealed.iter().map(|e| e.epoch))
        .filter(|&epoch| epoch > 0)
        .collect();
    assert!(
        sealed_to_attacker.is_empty(),
        "the user's rotation sealed the backup key of epoch(s) {sealed_to_attacker:?} to the attacker's key"
    );
    assert!(
        after.vouch.is_none(),
        "the injected key was vouched for by an upgrade"
    );
    assert_exit(&out, 4, "format 1");
    assert_exit(&out_rotate, 4, "format 1");
}

/// Attack (issue 13, replay without rotation): `key remove` without `--rotate` keeps the key
/// epoch, so the keys file from before the removal, put back by the drive's operator, passed
/// the epoch check: the removed key was back, vouched for, and the next rotation (after
/// another key was lost) sealed the new backup key to it. This device removed that key, so it
/// refuses a keys file that holds it again (exit 4) and nothing is sealed to it.
#[test]
fn attack_a_keys_file_put_back_from_before_a_key_removal_is_refused() {
    use sealback_core::keyslot::KeySlotFile;
    let w = World::new();
    w.init();
    let old_phone = w.add_recovery_key("old phone");
    let tablet = w.add_recovery_key("tablet");
    let keys = w.repo.join("keys");
    let before_removal = std::fs::read(&keys).unwrap();
    assert_ok(&w.run(&["key", "remove", &old_phone]));

    // The drive's operator puts the keys file with the old phone's key back; later the
    // tablet is lost and the person rotates, as one should.
    std::fs::write(&keys, &before_removal).unwrap();
    let out = w.run(&["snapshots"]);
    let out_rotate = w.run(&["key", "remove", &tablet, "--rotate"]);
    let after = KeySlotFile::decode(&std::fs::read(&keys).unwrap()).unwrap();
    let sealed_to_removed: Vec<u32> = after
        .slots
        .iter()
        .filter(|s| s.id.to_hex() == old_phone)
        .flat_map(|s| s.sealed.iter().map(|e| e.epoch))
        .filter(|&epoch| epoch > 0)
        .collect();
    assert!(
        sealed_to_removed.is_empty(),
        "the rotation sealed the backup key of epoch(s) {sealed_to_removed:?} to the removed key"
    );
    assert_exit(&out, 4, "which this device removed");
    assert_exit(&out_rotate, 4, "which this device removed");
}
