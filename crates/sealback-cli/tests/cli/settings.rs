//! The settings a person changes later, end to end with the binary: change password (against
//! a real `sealback vault serve`), turn off, rename keys, automatic backups, videos.

use super::vault::{cli, records, setup, with_vault};
use super::{assert_exit, assert_ok};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn json_of(c: &mut Command) -> Value {
    let out = c.output().unwrap();
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn password_keys(home: &Path, repo: &Path) -> Vec<Value> {
    let list = json_of(cli(home, repo).args(["--json", "key", "list"]));
    list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["type"] == "vault-password")
        .cloned()
        .collect()
}

/// Issue 17: a second `key add password` used to replace the vault's record of the first and
/// leave its slot dead (each try of the first password then spent a guess). It is refused now,
/// and `key change-password` replaces the record and the slot together.
#[test]
fn change_password_replaces_the_record_and_the_slot_and_a_second_add_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (vault, repo, _, vault_dir) = setup(tmp.path(), "carol");
    let key = tmp.path().join("recovery.txt");
    let home = tmp.path().join("device-a");
    let with_key = |c: &mut Command| {
        c.arg("--recovery-key-file").arg(&key);
    };

    // A second password: refused before anything reaches the vault.
    let mut add = with_vault(&home, &repo, &vault);
    with_key(&mut add);
    let out = add
        .env("SEALBACK_ACCOUNT", "carol")
        .env("SEALBACK_PASSWORD", "a second password")
        .args(["key", "add", "password"])
        .output()
        .unwrap();
    assert_exit(&out, 1, "change it instead");
    let before = password_keys(&home, &repo);
    assert_eq!(before.len(), 1);
    let probe = |password: &str| {
        with_vault(&tmp.path().join("device-b"), &repo, &vault)
            .env("SEALBACK_PASSWORD", password)
            .args(["snapshots"])
            .output()
            .unwrap()
    };
    std::fs::create_dir_all(tmp.path().join("device-b")).unwrap();
    assert_ok(&probe("the right password"));

    // One wrong guess counted against the old record.
    assert_exit(&probe("a wrong guess"), 3, "9 attempts remain");

    // Change it, unlocking with the recovery key (so no login resets the count).
    let mut change = with_vault(&home, &repo, &vault);
    with_key(&mut change);
    let changed = json_of(
        change
            .env("SEALBACK_NEW_PASSWORD", "the new password")
            .args(["--json", "key", "change-password", "--rotate"]),
    );
    assert_eq!(changed["removed"], before[0]["id"]);
    assert_eq!(changed["rotated"], true);
    let after = password_keys(&home, &repo);
    assert_eq!(after.len(), 1, "no dead row: {after:?}");
    assert_ne!(after[0]["id"], before[0]["id"]);
    assert_eq!(after[0]["name"], before[0]["name"]);
    assert_eq!(records(&vault_dir, "carol"), 1);

    // The old password opens nothing, and the count started again (9 left, not 8).
    assert_exit(&probe("the right password"), 3, "9 attempts remain");
    assert_ok(&probe("the new password"));
    // The recovery key still opens the rotated backup.
    let mut snapshots = cli(&home, &repo);
    with_key(&mut snapshots);
    assert_ok(&snapshots.args(["snapshots"]).output().unwrap());
}

#[test]
fn change_password_without_a_password_key_says_how_to_add_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (vault, repo, _, _) = setup(tmp.path(), "dave");
    let key = tmp.path().join("recovery.txt");
    let home = tmp.path().join("device-a");
    let list = password_keys(&home, &repo);
    let out = cli(&home, &repo)
        .arg("--recovery-key-file")
        .arg(&key)
        .args(["key", "remove", list[0]["id"].as_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&out);
    let out = with_vault(&home, &repo, &vault)
        .arg("--recovery-key-file")
        .arg(&key)
        .env("SEALBACK_NEW_PASSWORD", "whatever123")
        .args(["key", "passwd"])
        .output()
        .unwrap();
    assert_exit(&out, 2, "sealback key add password");
}

/// `sealback off` deletes the backups on the drive, and only after the typed phrase.
#[test]
fn off_deletes_the_backups_only_after_the_typed_phrase() {
    let w = super::World::new();
    w.init();
    let chats = w.chats(4);
    w.backup(&chats);
    let before = super::files_in(&w.repo);
    assert!(before.len() > 4);
    // No terminal and no --confirm: refused, nothing deleted.
    super::assert_exit(&w.run(&["off"]), 2, "--confirm \"delete my backups\"");
    super::assert_exit(
        &w.run(&["off", "--confirm", "yes"]),
        1,
        "type \"delete my backups\"",
    );
    assert_eq!(super::files_in(&w.repo), before, "nothing was deleted");
    let done = w.json(&["off", "--confirm", "delete my backups"]);
    assert_eq!(done["snapshots_deleted"], 1);
    assert_eq!(done["objects_deleted"], before.len());
    assert!(super::files_in(&w.repo).is_empty());
    super::assert_exit(&w.run(&["snapshots"]), 1, "no sealback repository");
    // Turned on again in the same place, with a new recovery key.
    std::fs::remove_file(&w.key_file).unwrap();
    w.init();
}

/// `key rename` changes the name `key list` shows; the keys file moves to format 3 (labels
/// under the MAC) and still opens.
#[test]
fn key_rename_shows_the_new_name_and_the_backup_still_opens() {
    let w = super::World::new();
    w.init();
    let list = w.json(&["key", "list"]);
    let id = list["keys"][0]["id"].as_str().unwrap().to_string();
    let renamed = w.json(&["key", "rename", &id[..8], "  paper copy in the drawer "]);
    assert_eq!(renamed["name"], "paper copy in the drawer");
    let list = w.json(&["key", "list"]);
    assert_eq!(list["keys"][0]["name"], "paper copy in the drawer");
    assert_eq!(std::fs::read(w.repo.join("keys")).unwrap()[6], 3);
    w.json(&["snapshots"]);
    super::assert_exit(&w.run(&["key", "rename", &id, " "]), 1, "1 to 256 bytes");
    super::assert_exit(&w.run(&["key", "rename", "ffff", "x"]), 2, "no key matches");
}

fn write_config(w: &super::World, text: &str) {
    let dir = w.root.join("home/.config/sealback");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// `sealback schedule --once --at T` decides as the service would at time T: the first look
/// backs up (this device never did), an hour later nothing is due, a day later it backs up.
#[test]
fn schedule_backs_up_when_due_and_not_before() {
    let w = super::World::new();
    w.init();
    let chats = w.chats(5);
    let chats = chats.to_str().unwrap();
    let t0: i64 = 1_800_000_000;
    let look = |at: i64| {
        w.json(&[
            "schedule",
            "--once",
            "--every",
            "daily",
            "--path",
            chats,
            "--at",
            &at.to_string(),
        ])
    };
    assert_eq!(look(t0)["event"], "backed_up");
    let not_yet = look(t0 + 3600);
    assert_eq!(not_yet["event"], "not_due");
    assert_eq!(
        not_yet["next_due_unix_ns"].as_i64().unwrap(),
        (t0 + 86_400) * 1_000_000_000
    );
    assert_eq!(look(t0 + 86_400)["event"], "backed_up");
    let snapshots = w.json(&["snapshots"]);
    let snapshots = snapshots.as_array().unwrap();
    assert_eq!(snapshots.len(), 2);
    assert_eq!(
        snapshots[1]["time_unix_ns"].as_i64().unwrap(),
        (t0 + 86_400) * 1_000_000_000
    );
    assert_eq!(snapshots[1]["tags"][0], "scheduled");
}

#[test]
fn schedule_reads_the_config_file_and_says_when_it_is_off() {
    let w = super::World::new();
    w.init();
    let chats = w.chats(6);
    super::assert_exit(
        &w.run(&["schedule", "--once", "--path", chats.to_str().unwrap()]),
        2,
        "automatic backups are off",
    );
    write_config(
        &w,
        &format!(
            "# my settings\nschedule = \"weekly\"\nonly_on_ac_power = true\npaths = [{:?}]\n",
            chats.to_str().unwrap()
        ),
    );
    let first = w.json(&["schedule", "--once", "--at", "1800000000"]);
    assert_eq!(first["event"], "backed_up");
    let next = w.json(&["schedule", "--once", "--at", "1800086400"]);
    assert_eq!(next["event"], "not_due", "weekly, not daily");
    super::assert_exit(
        &w.run(&["schedule", "--once", "--every", "hourly"]),
        2,
        "use off, daily, weekly or monthly",
    );
}

#[test]
fn schedule_prints_a_systemd_user_unit() {
    let w = super::World::new();
    let out = w.run(&["schedule", "--print-systemd-unit"]);
    super::assert_ok(&out);
    let unit = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "[Service]",
        "ExecStart=",
        " schedule",
        "--repo=",
        "SEALBACK_RECOVERY_KEY_FILE=",
        "WantedBy=default.target",
    ] {
        assert!(unit.contains(needle), "{needle:?} missing:\n{unit}");
    }
}

/// A chat store with two videos (one named .mp4, one found by its first bytes), a voice note
/// in the same container as a video (M4A) and a photo.
fn media_store(dir: &Path) {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let with_magic = |name: &str, magic: &[u8]| {
        let mut body = magic.to_vec();
        body.resize(4096, 7);
        std::fs::write(media.join(name), body).unwrap();
    };
    with_magic("clip.mp4", b"\x00\x00\x00\x20ftypmp42");
    with_magic("a81f09c2", b"\x00\x00\x00\x18ftypisom");
    with_magic("voice.m4a", b"\x00\x00\x00\x20ftypM4A ");
    with_magic("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01");
}

/// Issue 17: leaving videos out. The backup skips them by extension or by their first bytes,
/// the snapshot lists them, and the restore names them.
#[test]
fn videos_left_out_by_setting_are_named_by_the_restore() {
    let w = super::World::new();
    w.init();
    let chats = w.root.join("phone").join("chats");
    media_store(&chats);
    write_config(&w, "include_videos = false\n");
    let b = w.backup(&chats);
    assert_eq!(b["videos_left_out"], 2);
    let target = w.root.join("restored");
    let out = w.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    super::assert_ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 video(s) were left out"), "{said}");
    assert!(
        said.contains("chats/media/clip.mp4") && said.contains("chats/media/a81f09c2"),
        "{said}"
    );
    let restored = target.join("chats/media");
    assert!(!restored.join("clip.mp4").exists() && !restored.join("a81f09c2").exists());
    assert!(restored.join("voice.m4a").exists() && restored.join("photo.jpg").exists());
    // The flag wins over the config file: with videos, nothing is left out.
    let all = w.json(&["backup", "--videos", "true", chats.to_str().unwrap()]);
    assert_eq!(all["videos_left_out"], 0);
    let json = w.json(&[
        "restore",
        "latest",
        "--target",
        w.root.join("r2").to_str().unwrap(),
    ]);
    assert_eq!(json["left_out"].as_array().unwrap().len(), 0);
}

/// Attack: a file's name is written by whoever sent it (a chat attachment), and the restore
/// listed the videos left out by printing their paths as they are: a name carrying terminal
/// escapes could retitle the terminal, erase the line or fake the restore's own words. The
/// names are shown with control and text-direction characters escaped.
#[test]
fn attack_a_left_out_video_named_with_terminal_escapes_is_shown_escaped() {
    let w = super::World::new();
    w.init();
    let chats = w.root.join("phone").join("chats");
    let media = chats.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let mut body = b"\x00\x00\x00\x20ftypmp42".to_vec();
    body.resize(4096, 7);
    std::fs::write(media.join("clip\u{1b}[2K\r\u{202e}4pm.mp4"), body).unwrap();
    write_config(&w, "include_videos = false\n");
    assert_eq!(w.backup(&chats)["videos_left_out"], 1);
    let target = w.root.join("restored");
    let out = w.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    super::assert_ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        !said.contains('\u{1b}') && !said.contains('\u{202e}') && !said.contains('\r'),
        "raw control characters printed: {said:?}"
    );
    assert!(
        said.contains(r"clip\u{1b}[2K\u{d}\u{202e}4pm.mp4"),
        "{said:?}"
    );
}
