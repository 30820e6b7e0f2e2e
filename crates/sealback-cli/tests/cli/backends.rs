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

/// The keys file a [`TwoFacedDrive`] serves from the second read on, and the reads so far.
type OldKeys = std::sync::Mutex<Option<(Vec<u8>, u32)>>;

/// A cloud drive that answers each read as it likes: an HTTP proxy in front of the WebDAV
/// server that, once armed, serves the first read of the keys file as stored and every later
/// read from a copy the drive's operator kept. (One request per connection: it asks the
/// server to close, so the client opens a new connection for each request.)
struct TwoFacedDrive {
    /// `127.0.0.1:PORT` of the proxy.
    host: String,
    /// The old keys file, served from the second read on once set.
    old_keys: std::sync::Arc<OldKeys>,
}

impl TwoFacedDrive {
    fn start(upstream: String) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let old_keys = std::sync::Arc::new(std::sync::Mutex::new(None));
        let shared = old_keys.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, shared) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || proxy_one(client, &upstream, &shared));
            }
        });
        Self { host, old_keys }
    }

    /// From now on, reads of the keys file after the first are answered with `old`.
    fn arm(&self, old: Vec<u8>) {
        *self.old_keys.lock().unwrap() = Some((old, 0));
    }
}

/// Reads one HTTP/1.1 request (head and body) from `r`.
fn read_request(
    r: &mut std::io::BufReader<std::net::TcpStream>,
) -> Option<(String, Vec<String>, Vec<u8>)> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let request_line = line.trim_end().to_string();
    if request_line.is_empty() {
        return None;
    }
    let mut headers = vec![];
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        headers.push(h.to_string());
    }
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = vec![];
    if let Some(len) = header("content-length") {
        body.resize(len.parse().ok()?, 0);
        r.read_exact(&mut body).ok()?;
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            line.clear();
            r.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let headers = headers
        .into_iter()
        .filter(|h| {
            let name = h
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            !matches!(
                name.as_str(),
                "connection" | "content-length" | "transfer-encoding" | "keep-alive"
            )
        })
        .collect();
    Some((request_line, headers, body))
}

fn proxy_one(mut client: std::net::TcpStream, upstream: &str, old_keys: &OldKeys) {
    use std::io::{Read, Write};
    let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
    let Some((request_line, headers, body)) = read_request(&mut reader) else {
        return;
    };
    let reads_keys = request_line.starts_with("GET ")
        && request_line
            .split(' ')
            .nth(1)
            .is_some_and(|p| p.ends_with("/keys"));
    if reads_keys {
        let mut old = old_keys.lock().unwrap();
        if let Some((bytes, reads)) = old.as_mut() {
            *reads += 1;
            if *reads > 1 {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = client.write_all(head.as_bytes());
                let _ = client.write_all(bytes);
                return;
            }
        }
    }
    let mut up = std::net::TcpStream::connect(upstream).unwrap();
    let mut head = format!("{request_line}\r\n");
    for h in &headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    up.write_all(head.as_bytes()).unwrap();
    up.write_all(&body).unwrap();
    let mut answer = vec![];
    let _ = up.read_to_end(&mut answer);
    let _ = client.write_all(&answer);
}

/// Attack (issue 13, rollback): the device checked the keys file's epoch on one read and the
/// engine unlocked what a second read returned. A cloud drive that serves the current keys file
/// to the first read and the one from before a `key remove --rotate` to the second got the
/// rollback past the check: the backup was written under the old root key, which the removed
/// key opens. The engine now checks the very file it unlocks: exit 4, nothing written.
#[test]
fn attack_a_drive_serving_the_old_keys_file_to_the_second_read_is_refused() {
    let server = sealback_testkit::WebDavServer::start();
    let drive = TwoFacedDrive::start(server.host.clone());
    let repo = format!("webdav+http://{}/alice", drive.host);
    let env = [
        ("SEALBACK_WEBDAV_USER", sealback_testkit::WebDavServer::USER),
        (
            "SEALBACK_WEBDAV_PASSWORD",
            sealback_testkit::WebDavServer::PASSWORD,
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("home")).unwrap();
    let chats = root.join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(31)).unwrap();
    let run = |args: &[&str]| sealback(root, &repo, &env, args);
    assert_ok(&run(&["init"]));
    let lost = root.join("lost.txt");
    let out = run(&[
        "--json",
        "key",
        "add",
        "recovery-key",
        "--out",
        lost.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lost_id = added["id"].as_str().unwrap().to_string();
    let before_rotation = std::fs::read(server.root.join("alice/keys")).unwrap();
    assert_ok(&run(&["key", "remove", &lost_id, "--rotate"]));

    drive.arm(before_rotation);
    let out = run(&["--json", "backup", chats.to_str().unwrap()]);
    let snapshots = std::fs::read_dir(server.root.join("alice/snapshots"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a backup under the rolled-back keys file (epoch 0, which the removed key opens) ran: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshots, 0, "nothing was backed up");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("older keys file was put back"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
