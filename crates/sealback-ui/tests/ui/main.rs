//! The web UI's server against real HTTP: who is let in (token, Host, Origin), and the API
//! flows a page drives (turn on with a 64-digit key or a passkey's PRF output, back up, lock,
//! unlock, restore), with every refusal changing nothing. The browser side is tested in
//! Chromium by ui-tests/ (run by ./scripts/test).

mod attack_page;

use sealback_ui::{UiConfig, UiServer, VaultSettings};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Running {
    base: String,
    token: String,
    /// The launch code of the printed address (already traded by [`start`]).
    code: String,
    port: u16,
    /// `sb-LABEL.localhost:PORT`: the page's own host.
    host: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    client: reqwest::Client,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The page's configuration for a drive at `repo`, backing up `paths`, with no vault.
fn config(repo: &Path, paths: Vec<PathBuf>) -> UiConfig {
    UiConfig {
        repo: repo.display().to_string(),
        paths,
        hostname: "test".into(),
        vault: VaultSettings::default(),
        seen_dir: None,
        label_file: None,
    }
}

/// A client that resolves the page's `sb-LABEL.localhost` name to loopback, as Chromium does.
fn client_for(base: &str) -> reqwest::Client {
    let url = reqwest::Url::parse(base).unwrap();
    let host = url.host_str().unwrap();
    assert!(
        sealback_ui::OriginLabel::from_rp_id(host).is_some(),
        "the page is served at sb-LABEL.localhost: {base}"
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], url.port().unwrap()));
    reqwest::Client::builder()
        .resolve(host, addr)
        .build()
        .unwrap()
}

async fn start(repo: &Path, paths: Vec<PathBuf>) -> Running {
    start_with(config(repo, paths)).await
}

async fn start_with(config: UiConfig) -> Running {
    // reqwest is built without a default TLS provider in this workspace (plain HTTP here).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = UiServer::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let url = server.url().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = rx.await;
    }));
    let (base, code) = url.split_once("/?code=").unwrap();
    let host = base.strip_prefix("http://").unwrap().to_string();
    let port = base.rsplit(':').next().unwrap().parse().unwrap();
    // Trade the one-time launch code for the session token, as the page does.
    let client = client_for(base);
    let session: Value = client
        .post(format!("{base}/api/session"))
        .header("origin", base)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Running {
        base: base.to_string(),
        token: session["token"].as_str().unwrap().to_string(),
        code: code.to_string(),
        port,
        host,
        stop: Some(tx),
        client,
    }
}

impl Running {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("x-sealback-token", &self.token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-sealback-token", &self.token)
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Sends exactly these request lines (no client adds or fixes headers) and returns the status.
    fn raw(&self, head: &str, body: &str) -> u16 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = format!(
            "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split(' ').nth(1).unwrap().parse().unwrap()
    }

    async fn wait_job(&self, id: &str) -> Value {
        for _ in 0..1200 {
            let (code, j) = self.get(&format!("/api/jobs/{id}")).await;
            assert_eq!(code, 200, "{j}");
            if j["state"] != "running" {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} did not finish");
    }
}

fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_token_or_from_another_origin_or_host_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ui = start(&dir.path().join("drive"), vec![]).await;
    let host = format!("Host: {}", ui.host);
    let origin = format!("Origin: http://{}", ui.host);
    let token = format!("X-Sealback-Token: {}", ui.token);
    let json = "Content-Type: application/json";
    let body = r#"{"purpose":"setup"}"#;
    let begin = "POST /api/recovery-key/begin HTTP/1.1";

    // The page is static (it holds no secret); the API needs the session token in a header.
    assert_eq!(ui.raw(&format!("GET / HTTP/1.1\r\n{host}"), ""), 200);
    assert_eq!(
        ui.raw(&format!("GET /api/status HTTP/1.1\r\n{host}"), ""),
        401
    );
    // The launch code of the printed address trades for a session once: the page already did,
    // so someone who read it (from a process list, a shell history) later gets nothing.
    let session = "POST /api/session HTTP/1.1";
    for code in [ui.code.as_str(), "wrong"] {
        assert_eq!(
            ui.raw(
                &format!("{session}\r\n{host}\r\n{origin}\r\n{json}"),
                &format!(r#"{{"code":"{code}"}}"#)
            ),
            401,
            "{code}"
        );
    }
    assert_eq!(
        ui.raw(
            &format!("GET /api/status?token={} HTTP/1.1\r\n{host}", ui.token),
            ""
        ),
        401,
        "the API takes the token only from its header"
    );
    assert_eq!(
        ui.raw(
            &format!("GET /api/status HTTP/1.1\r\n{host}\r\n{token}"),
            ""
        ),
        200
    );
    // DNS rebinding: a foreign name that resolves to 127.0.0.1 is refused, token or not.
    for bad_host in [
        "Host: evil.example".to_string(),
        format!("Host: evil.example:{}", ui.port),
        "Host: localhost:1".to_string(),
    ] {
        assert_eq!(
            ui.raw(
                &format!("GET /api/status HTTP/1.1\r\n{bad_host}\r\n{token}"),
                ""
            ),
            421,
            "{bad_host}"
        );
    }
    // Changes: only from the page's own origin, as JSON.
    assert_eq!(
        ui.raw(
            &format!("{begin}\r\n{host}\r\n{token}\r\n{json}\r\nOrigin: http://evil.example"),
            body
        ),
        403
    );
    assert_eq!(
        ui.raw(&format!("{begin}\r\n{host}\r\n{token}\r\n{json}"), body),
        403,
        "no Origin"
    );
    assert_eq!(
        ui.raw(
            &format!("{begin}\r\n{host}\r\n{token}\r\n{origin}\r\nContent-Type: text/plain"),
            body
        ),
        403,
        "a form-style request a foreign page could send without a preflight"
    );
    assert_eq!(
        ui.raw(
            &format!(
                "{begin}\r\n{host}\r\n{token}\r\n{origin}\r\n{json}\r\nSec-Fetch-Site: cross-site"
            ),
            body
        ),
        403
    );
    assert_eq!(
        ui.raw(&format!("{begin}\r\n{host}\r\n{origin}\r\n{json}"), body),
        401,
        "no token"
    );
    assert_eq!(
        ui.raw(
            &format!("{begin}\r\n{host}\r\n{token}\r\n{origin}\r\n{json}"),
            body
        ),
        200
    );
    // Nothing the refused requests asked for happened.
    assert!(files_under(&dir.path().join("drive")).is_empty());

    // The page's headers keep it from being framed or loading anything from elsewhere.
    let r = ui
        .client
        .get(format!("{}/?code={}", ui.base, ui.code))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resources"
    );

    // And it will not listen beyond loopback.
    let err = UiServer::bind(
        "0.0.0.0:0".parse().unwrap(),
        UiConfig {
            repo: "x".into(),
            paths: vec![],
            hostname: "t".into(),
            vault: VaultSettings::default(),
            seen_dir: None,
            label_file: None,
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("loopback only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_on_with_a_recovery_key_back_up_lock_unlock_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let chats = dir.path().join("chats");
    sealback_corpus::generate(&chats, &sealback_corpus::ChatStoreSpec::tiny(5)).unwrap();
    let drive = dir.path().join("drive");
    let ui = start(&drive, vec![chats.clone()]).await;

    let (_, status) = ui.get("/api/status").await;
    assert_eq!(status["initialized"], false);
    assert_eq!(ui.post("/api/backup", json!({})).await.0, 409);

    // A wrong confirmation (one digit off) turns nothing on, and the same key can be confirmed
    // on a second try: a typo does not throw the shown key away.
    let (_, shown) = ui
        .post("/api/recovery-key/begin", json!({"purpose": "setup"}))
        .await;
    let ceremony = shown["ceremony"].as_str().unwrap();
    let key = shown["recovery_key"].as_str().unwrap().to_string();
    let mut wrong = key.clone().into_bytes();
    wrong[0] = if wrong[0] == b'1' { b'2' } else { b'1' };
    let (code, e) = ui
        .post(
            "/api/recovery-key/finish",
            json!({"ceremony": ceremony, "confirm": String::from_utf8(wrong).unwrap()}),
        )
        .await;
    assert_eq!((code, e["error"].as_str()), (400, Some("confirm_mismatch")));
    assert!(files_under(&drive).is_empty());
    let (code, added) = ui
        .post(
            "/api/recovery-key/finish",
            json!({"ceremony": ceremony, "confirm": key.replace(' ', "")}),
        )
        .await;
    assert_eq!(code, 200, "{added}");
    let (_, status) = ui.get("/api/status").await;
    assert_eq!(
        (
            status["initialized"].as_bool(),
            status["unlocked"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(status["keys"][0]["type"], "recovery-key");
    // The key never reaches the drive in clear.
    let digits: String = key.chars().filter(|c| c.is_ascii_digit()).collect();
    for (path, bytes) in files_under(&drive) {
        assert!(
            !bytes.windows(digits.len()).any(|w| w == digits.as_bytes()),
            "{} holds the recovery key",
            path.display()
        );
    }

    let (code, started) = ui.post("/api/backup", json!({})).await;
    assert_eq!(code, 200, "{started}");
    let job = ui.wait_job(started["job"].as_str().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["done_bytes"], job["total_bytes"]);
    assert!(job["result"]["bytes_added"].as_u64().unwrap() > 0);
    let (_, snaps) = ui.get("/api/snapshots").await;
    assert_eq!(snaps["snapshots"].as_array().unwrap().len(), 1);

    // Locked: nothing that needs the key works; a wrong key does not unlock.
    assert_eq!(ui.post("/api/lock", json!({})).await.0, 200);
    let (code, e) = ui.get("/api/snapshots").await;
    assert_eq!((code, e["error"].as_str()), (409, Some("locked")));
    let before = files_under(&drive);
    let other = sealback_core::recovery::RecoveryKey::generate(&mut sealback_engine::os_rng());
    let (code, e) = ui
        .post(
            "/api/unlock/recovery-key",
            json!({"recovery_key": other.display_groups().as_str()}),
        )
        .await;
    assert_eq!((code, e["error"].as_str()), (401, Some("wrong_key")), "{e}");
    let (code, e) = ui
        .post("/api/unlock/recovery-key", json!({"recovery_key": "1234"}))
        .await;
    assert_eq!((code, e["error"].as_str()), (400, Some("bad_recovery_key")));
    assert_eq!(files_under(&drive), before, "refusals change nothing");
    let (code, _) = ui
        .post("/api/unlock/recovery-key", json!({"recovery_key": key}))
        .await;
    assert_eq!(code, 200);

    let (code, e) = ui
        .post(
            "/api/restore",
            json!({"snapshot": "latest", "target": "relative/path"}),
        )
        .await;
    assert_eq!((code, e["error"].as_str()), (400, Some("invalid")));
    // A folder that is not empty is refused: the job fails with a reason and writes nothing.
    let busy_dir = dir.path().join("not-empty");
    std::fs::create_dir_all(&busy_dir).unwrap();
    std::fs::write(busy_dir.join("keep.txt"), b"mine").unwrap();
    let (_, started) = ui
        .post(
            "/api/restore",
            json!({"snapshot": "latest", "target": busy_dir}),
        )
        .await;
    let job = ui.wait_job(started["job"].as_str().unwrap()).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not empty"),
        "{job}"
    );
    assert_eq!(std::fs::read_dir(&busy_dir).unwrap().count(), 1);

    let target = dir.path().join("restored");
    let (_, started) = ui
        .post(
            "/api/restore",
            json!({"snapshot": "latest", "target": target}),
        )
        .await;
    let job = ui.wait_job(started["job"].as_str().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    let cmp = sealback_corpus::compare(&chats, &target.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
    assert!(cmp.rows > 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_passkey_prf_output_turns_backup_on_and_only_that_passkey_unlocks_it() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    let ui = start(&drive, vec![]).await;

    // What the page does after navigator.credentials.create with the PRF extension.
    let (_, begin) = ui
        .post("/api/passkey/create/begin", json!({"purpose": "setup"}))
        .await;
    // The page's own RP: sb-LABEL.localhost, which no page on another local port can use.
    let rp_id = begin["rp_id"].as_str().unwrap();
    assert_eq!(Some(rp_id), ui.host.split(':').next());
    assert!(
        sealback_ui::OriginLabel::from_rp_id(rp_id).is_some(),
        "{rp_id}"
    );
    assert_eq!(
        b64.decode(begin["prf_input"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let credential = b64.encode([7u8; 20]);
    let prf = b64.encode([42u8; 32]);
    let (code, e) = ui
        .post(
            "/api/passkey/create/finish",
            json!({"ceremony": begin["ceremony"], "credential_id": credential, "prf_output": b64.encode([1u8; 16])}),
        )
        .await;
    assert_eq!(code, 400, "a PRF output must be 32 bytes: {e}");
    assert!(files_under(&drive).is_empty());
    let (_, begin) = ui
        .post("/api/passkey/create/begin", json!({"purpose": "setup"}))
        .await;
    let (code, e) = ui
        .post(
            "/api/passkey/create/finish",
            json!({"ceremony": begin["ceremony"], "credential_id": credential, "prf_output": prf}),
        )
        .await;
    assert_eq!(code, 200, "{e}");
    let (code, e) = ui
        .post(
            "/api/passkey/create/finish",
            json!({"ceremony": begin["ceremony"], "credential_id": credential, "prf_output": prf}),
        )
        .await;
    assert_eq!(
        (code, e["error"].as_str()),
        (410, Some("expired")),
        "one use"
    );
    // The PRF output is not stored anywhere on the drive.
    for (path, bytes) in files_under(&drive) {
        assert!(
            !bytes.windows(32).any(|w| w == [42u8; 32]),
            "{}",
            path.display()
        );
    }
    // Turning on twice is refused.
    let (code, e) = ui
        .post("/api/passkey/create/begin", json!({"purpose": "setup"}))
        .await;
    assert_eq!((code, e["error"].as_str()), (409, Some("already_on")));

    assert_eq!(ui.post("/api/lock", json!({})).await.0, 200);
    let keys_before = files_under(&drive);
    let unlock = |credential: String, prf: Option<String>| {
        let ui = &ui;
        async move {
            let (_, begin) = ui.post("/api/unlock/passkey/begin", json!({})).await;
            assert_eq!(begin["shared_prf_input"].as_str().map(str::len), Some(43));
            ui.post(
                "/api/unlock/passkey/finish",
                json!({"ceremony": begin["ceremony"], "credential_id": credential, "prf_output": prf}),
            )
            .await
        }
    };
    // Another passkey (not a key of this backup), the right one without PRF, the right one
    // with a wrong PRF output: each refused, nothing changed, still locked.
    let (code, e) = unlock(b64.encode([9u8; 20]), Some(prf.clone())).await;
    assert_eq!((code, e["error"].as_str()), (401, Some("wrong_passkey")));
    let (code, e) = unlock(credential.clone(), None).await;
    assert_eq!((code, e["error"].as_str()), (422, Some("no_prf")));
    let (code, e) = unlock(credential.clone(), Some(b64.encode([43u8; 32]))).await;
    assert_eq!((code, e["error"].as_str()), (401, Some("wrong_passkey")));
    assert_eq!(files_under(&drive), keys_before);
    assert_eq!(ui.get("/api/status").await.1["unlocked"], false);
    let (code, e) = unlock(credential.clone(), Some(prf.clone())).await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(ui.get("/api/status").await.1["unlocked"], true);

    // A second passkey gets the same PRF input, so one prompt can use either.
    let (_, again) = ui
        .post("/api/passkey/create/begin", json!({"purpose": "add_key"}))
        .await;
    assert_eq!(again["prf_input"], begin["prf_input"]);
    assert_eq!(again["exclude_credentials"][0], credential.as_str());
}

#[tokio::test]
async fn the_launch_file_for_the_browser_opener_is_private_and_holds_the_address() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let server = UiServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        config(&dir.path().join("drive"), vec![]),
    )
    .await
    .unwrap();
    let file = server.write_launch_file(dir.path()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.contains(&format!("url={}", server.url())), "{html}");
    assert!(
        !file.display().to_string().contains("code="),
        "the path (what the opener's command line shows) holds no secret"
    );
}

/// Adds a 64-digit key through the page's API (turning backup on when `purpose` is setup).
async fn add_recovery_key(ui: &Running, purpose: &str) -> (String, String) {
    let (_, shown) = ui
        .post("/api/recovery-key/begin", json!({ "purpose": purpose }))
        .await;
    let key = shown["recovery_key"].as_str().unwrap().to_string();
    let (code, added) = ui
        .post(
            "/api/recovery-key/finish",
            json!({"ceremony": shown["ceremony"], "confirm": key}),
        )
        .await;
    assert_eq!(code, 200, "{added}");
    let (_, status) = ui.get("/api/status").await;
    let id = status["keys"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (key, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_keys_file_put_back_from_before_a_rotation_is_refused_by_the_page_too() {
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    let ui = start_with(UiConfig {
        repo: drive.display().to_string(),
        paths: vec![],
        hostname: "test".into(),
        vault: VaultSettings::default(),
        seen_dir: Some(dir.path().join("seen")),
        label_file: None,
    })
    .await;
    let (_, first) = add_recovery_key(&ui, "setup").await;
    let (second_key, _) = add_recovery_key(&ui, "add_key").await;
    let before_rotation = std::fs::read(drive.join("keys")).unwrap();
    let (code, removed) = ui
        .post("/api/keys/remove", json!({"id": first, "rotate": true}))
        .await;
    assert_eq!(code, 200, "{removed}");
    assert_eq!(removed["rotated"], true);
    assert_eq!(ui.post("/api/lock", json!({})).await.0, 200);

    // Whoever writes to the drive puts the keys file from before the rotation back.
    std::fs::write(drive.join("keys"), &before_rotation).unwrap();
    let (code, e) = ui
        .post(
            "/api/unlock/recovery-key",
            json!({"recovery_key": second_key}),
        )
        .await;
    assert_eq!((code, e["error"].as_str()), (422, Some("integrity")), "{e}");
    let (_, status) = ui.get("/api/status").await;
    assert_eq!(
        status["unlocked"], false,
        "nothing was opened under the old key"
    );
}

/// A stand-in for the configured key vault that answers `/v1/info` with an OPAQUE key of its
/// own and records the body of every other request (and answers 503).
struct RecordingVault {
    url: String,
    server_key: Vec<u8>,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordingVault {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server_key = vec![0x5a; 32];
        let info = serde_json::to_string(&sealback_proto::Info {
            version: "1".into(),
            server_public_key: server_key.clone(),
            guess_limit: 10,
            protocols: vec![],
            realm: None,
        })
        .unwrap();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (info, seen) = (info.clone(), seen.clone());
                std::thread::spawn(move || answer(stream, &info, &seen));
            }
        });
        Self {
            url,
            server_key,
            bodies,
        }
    }
}

fn answer(mut stream: std::net::TcpStream, info: &str, seen: &std::sync::Mutex<Vec<String>>) {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    let _ = r.read_line(&mut line);
    let info_asked = line.starts_with("GET /v1/info");
    let mut length = 0;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    let _ = r.read_exact(&mut body);
    let (status, reply) = if info_asked {
        ("200 OK", info.to_string())
    } else {
        seen.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&body).into_owned());
        (
            "503 Service Unavailable",
            r#"{"error":"unavailable"}"#.to_string(),
        )
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// A `register` account proof: it may replace the account's key at the vault, so it is sent
/// only when a key is added, never to unlock (SPEC §7c; the CLI refuses it since issue 14). The
/// page sent the one `sealback ui` was started with to the vault's login. It is now refused
/// before anything reaches the vault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_register_proof_is_never_sent_to_unlock_from_the_page() {
    use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType, SlotTemplate};
    use sealback_core::{Keyring, ProtectorSecret, RootKey};
    use sealback_proto::proof::{Claims, OperatorSigner, Scope};
    let vault = RecordingVault::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let register_proof = OperatorSigner::generate().0.issue(&Claims {
        account: "+15550100".into(),
        scope: Scope::Register,
        aud: Some(sealback_core::vault::VaultId([7; 16])),
        iat: now,
        exp: now + 600,
    });
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    let ui = start_with(UiConfig {
        repo: drive.display().to_string(),
        paths: vec![],
        hostname: "test".into(),
        vault: VaultSettings {
            url: Some(vault.url.clone()),
            account: Some("+15550100".into()),
            proof: Some(register_proof.clone()),
        },
        seen_dir: None,
        label_file: None,
    })
    .await;
    add_recovery_key(&ui, "setup").await;
    assert_eq!(ui.post("/api/lock", json!({})).await.0, 200);
    // A password key held by this vault (made here by hand: what matters is what the page
    // sends before anything is unlocked).
    let keys = drive.join("keys");
    let mut file = KeySlotFile::decode(&std::fs::read(&keys).unwrap()).unwrap();
    let mut rng = sealback_engine::os_rng();
    let some_keyring = Keyring::new(file.repo_id, vec![RootKey::random(&mut rng)]);
    file.slots.push(
        KeySlot::enroll(
            &some_keyring,
            SlotTemplate {
                protector_type: ProtectorType::VAULT_PASSWORD,
                name: "password".into(),
                created_unix: 1,
                params: sealback_vault_client::VaultParams::new("+15550100", vault.server_key)
                    .encode(),
            },
            &ProtectorSecret::new(vec![1; 32]),
            &mut rng,
        )
        .unwrap(),
    );
    std::fs::write(&keys, file.encode()).unwrap();

    let (code, e) = ui
        .post(
            "/api/unlock/password",
            json!({"password": "a fine password"}),
        )
        .await;
    let sent = vault.bodies.lock().unwrap().clone();
    assert!(
        !sent.iter().any(|b| b.contains(&register_proof)),
        "the page sent the register proof to the vault to unlock: {sent:?}"
    );
    assert_eq!(code, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("only when adding a key"),
        "{e}"
    );
}

/// The launch code is single-use under a race too: of 16 trades sent at once (the page and
/// someone who read the code racing it), exactly one gets the token, and a trade from another
/// origin or through another host name gets nothing even with the right code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_code_trades_for_a_token_exactly_once_under_a_race() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let server = UiServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        config(&dir.path().join("drive"), vec![]),
    )
    .await
    .unwrap();
    let url = server.url().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = rx.await;
    }));
    let (base, code) = url.split_once("/?code=").unwrap();
    let port = base.rsplit(':').next().unwrap();
    // Exactly these headers (no client adds or fixes a Host), the right code each time.
    let raw_trade = |origin: &str, host: &str| -> String {
        let body = format!(r#"{{"code":"{code}"}}"#);
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
        write!(
            s,
            "POST /api/session HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    for (origin, host) in [
        // The UI's shared origin cannot trade the code printed for its own address.
        (
            format!("http://localhost:{port}"),
            format!("localhost:{port}"),
        ),
        (
            format!("http://localhost:{port}"),
            format!("127.0.0.1:{port}"),
        ),
        (
            "http://evil.localhost".to_string(),
            format!("localhost:{port}"),
        ),
        (
            format!("http://localhost:{port}"),
            format!("localhost.:{port}"),
        ),
        (
            format!("http://localhost.evil.com:{port}"),
            format!("localhost.evil.com:{port}"),
        ),
    ] {
        let answer = raw_trade(&origin, &host);
        assert!(
            !answer.contains("token") && !answer.starts_with("HTTP/1.1 200"),
            "{origin} via {host}: {answer}"
        );
    }
    let client = client_for(base);
    let trade = || {
        let client = client.clone();
        let (base, code) = (base.to_string(), code.to_string());
        async move {
            let r = client
                .post(format!("{base}/api/session"))
                .header("origin", &base)
                .json(&json!({ "code": code }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body["token"].as_str().map(str::to_string))
        }
    };
    let outcomes = futures_join_all((0..16).map(|_| trade())).await;
    let tokens: Vec<String> = outcomes.iter().filter_map(|(_, t)| t.clone()).collect();
    assert_eq!(tokens.len(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|(s, _)| *s == 401).count(),
        15,
        "{outcomes:?}"
    );
    let _ = tx.send(());
}

/// Runs the futures at once (spawned on the runtime, so that they truly race).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = vec![];
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Attack: whoever writes to the drive swaps the names of two keys in the keys file ("paper copy"
/// and "lost phone", same length, so the file still parses; its MAC no longer verifies). The
/// page read the names for its Keys screen from the drive on every look, without the MAC, even
/// while unlocked: the person who removes "lost phone" would remove their paper copy and keep
/// the lost phone's key working. While unlocked, the page shows the names of the keys file it
/// verified when unlocking (and changes since, made by this page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_key_names_swapped_on_the_drive_are_not_shown_while_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    let ui = start(&drive, vec![]).await;
    let (_, paper) = add_recovery_key(&ui, "setup").await;
    let (_, phone) = add_recovery_key(&ui, "add_key").await;
    for (id, name) in [(&paper, "paper copy"), (&phone, "lost phone")] {
        let (code, r) = ui
            .post("/api/settings/keys/rename", json!({"id": id, "name": name}))
            .await;
        assert_eq!(code, 200, "{r}");
    }
    let names = |status: &Value| -> Vec<(String, String)> {
        status["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["id"].as_str().unwrap().into(),
                    k["name"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let (_, before) = ui.get("/api/status").await;
    let honest = names(&before);
    assert!(
        honest.contains(&(paper.clone(), "paper copy".into())),
        "{before}"
    );

    let mut bytes = std::fs::read(drive.join("keys")).unwrap();
    let at = |b: &[u8], what: &[u8]| b.windows(what.len()).position(|w| w == what).unwrap();
    let (p, l) = (at(&bytes, b"paper copy"), at(&bytes, b"lost phone"));
    bytes[p..p + 10].copy_from_slice(b"lost phone");
    bytes[l..l + 10].copy_from_slice(b"paper copy");
    std::fs::write(drive.join("keys"), &bytes).unwrap();

    let (_, after) = ui.get("/api/status").await;
    assert_eq!(after["unlocked"], true);
    assert_eq!(
        names(&after),
        honest,
        "the drive's swapped names were shown"
    );
}

/// Probe: the test clock (which moves the scheduler's "now", so that automatic backups run
/// or stop) is reachable only in test mode, which only a hidden command-line flag turns on;
/// a page with the token cannot reach it on a person's UI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_clock_route_does_not_exist_outside_test_mode() {
    let dir = tempfile::tempdir().unwrap();
    let ui = start(&dir.path().join("drive"), vec![]).await;
    let far = 4_102_444_800_000_i64; // 2100
    let (code, _) = ui
        .post("/api/test/clock", json!({"now_unix_ms": far}))
        .await;
    assert_eq!(code, 404);
    let (_, settings) = ui.get("/api/settings").await;
    let now = settings["now_unix_ns"].as_i64().unwrap();
    assert!(
        now < far * 1_000_000 / 2,
        "the scheduler's clock moved: {settings}"
    );
}

/// Probe: "finish turning off" asks for no key (a half-done turn-off left none that opens
/// anything), so on a backup that still has its keys file it must refuse and delete nothing,
/// locked or not: only the unlocked turn-off may delete a whole backup. Once the keys file is
/// gone (a turn-off that stopped halfway), the page says so and the finish deletes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_a_turn_off_refuses_a_backup_that_still_has_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    let ui = start(&drive, vec![]).await;
    add_recovery_key(&ui, "setup").await;
    let stored = files_under(&drive);
    for lock_first in [false, true] {
        if lock_first {
            let (code, r) = ui.post("/api/lock", json!({})).await;
            assert_eq!(code, 200, "{r}");
        }
        let (code, r) = ui
            .post(
                "/api/settings/turn-off/finish",
                json!({"confirm": "delete my backups"}),
            )
            .await;
        assert_eq!(code, 400, "locked: {lock_first}: {r}");
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains("still has its keys"),
            "{r}"
        );
        assert_eq!(files_under(&drive), stored, "nothing deleted");
        let (_, status) = ui.get("/api/status").await;
        assert_eq!(status["half_off"], false, "{status}");
        assert_eq!(status["initialized"], true, "{status}");
    }

    std::fs::remove_file(drive.join("keys")).unwrap();
    let (_, status) = ui.get("/api/status").await;
    assert_eq!(status["half_off"], true, "{status}");
    let (code, r) = ui
        .post(
            "/api/settings/turn-off/finish",
            json!({"confirm": "delete my backups"}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert!(files_under(&drive).is_empty(), "{:?}", files_under(&drive));
    let (_, status) = ui.get("/api/status").await;
    assert_eq!(status["half_off"], false, "{status}");
    assert_eq!(status["initialized"], false, "{status}");
}
