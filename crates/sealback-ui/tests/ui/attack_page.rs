//! Attacks on the page's two addresses (`http://sb-LABEL.localhost:PORT`, the page, and
//! `http://localhost:PORT`, only to unlock with older passkeys), the hand-off between them,
//! the label, and finishing a half-done turn-off: as another local user (a raw client that
//! sets any Host and Origin), a page of another origin, and the drive's operator who writes
//! the passkey slots. Each asserts the safe behaviour (docs/THREAT_MODEL.md, "Local web UI").

use super::{add_recovery_key, files_under, start, Running};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

/// A raw HTTP exchange on the UI's port: exactly these request lines, no client adding or
/// fixing headers. Returns the status and the whole response (head and body).
fn raw(port: u16, head: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out)
}

/// The JSON body of a raw response.
fn body_json(response: &str) -> Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    // Responses are small and not chunked by axum for JSON bodies with a known length.
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// `LABEL` of the page's `sb-LABEL.localhost:PORT`.
fn label_of(ui: &Running) -> String {
    let host = ui.host.split(':').next().unwrap();
    host.strip_prefix("sb-")
        .unwrap()
        .strip_suffix(".localhost")
        .unwrap()
        .to_string()
}

impl Running {
    /// A POST with the token, sent to `host` with `origin` (both hand-set).
    fn post_as(&self, host: &str, origin: &str, path: &str, body: &str) -> (u16, String) {
        raw(
            self.port,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
                 X-Sealback-Token: {}\r\nContent-Type: application/json",
                self.token
            ),
            body,
        )
    }

    /// Trades `code` at `/api/session` as a page of `origin` served under `host` would.
    fn trade(&self, host: &str, origin: &str, code: &str) -> (u16, Value) {
        let (status, out) = raw(
            self.port,
            &format!(
                "POST /api/session HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
                 Content-Type: application/json"
            ),
            &format!(r#"{{"code":"{code}"}}"#),
        );
        (status, body_json(&out))
    }

    /// A hand-off code from the page's own address: (the address it is for, the code).
    async fn handoff(&self) -> (String, String) {
        let (status, r) = self.post("/api/session/handoff", json!({})).await;
        assert_eq!(status, 200, "{r}");
        let url = r["url"].as_str().unwrap();
        let (to, code) = url.split_once("/?code=").unwrap();
        (to.to_string(), code.to_string())
    }
}

/// A page of any other origin (another local port, another `sb-*.localhost` name, the
/// 127.0.0.1 spelling, the page's other address acting at this one) cannot ask for a
/// hand-off code, even holding the token; nor can a rebinding name reach the route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_foreign_origin_or_host_gets_no_handoff_code() {
    let dir = tempfile::tempdir().unwrap();
    let ui = start(&dir.path().join("drive"), vec![]).await;
    let port = ui.port;
    let own = format!("http://{}", ui.host);
    let shared = format!("localhost:{port}");
    let path = "/api/session/handoff";

    for (host, origin) in [
        (ui.host.clone(), format!("http://localhost:{}", port + 1)),
        (
            ui.host.clone(),
            format!("http://sb-abcdefgh2345.localhost:{port}"),
        ),
        (ui.host.clone(), format!("http://127.0.0.1:{port}")),
        (ui.host.clone(), format!("http://localhost:{port}")),
        (ui.host.clone(), "null".into()),
        (ui.host.clone(), format!("{own}.evil.example")),
        (ui.host.clone(), format!("https://{}", ui.host)),
        (shared.clone(), own.clone()),
        (
            format!("127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        ),
    ] {
        let (status, out) = ui.post_as(&host, &origin, path, "{}");
        assert_eq!(status, 403, "Host {host}, Origin {origin}: {out}");
        assert!(!out.contains("code="), "{out}");
    }
    // DNS rebinding, and names the guard must not take for the page's own.
    let label = label_of(&ui);
    for host in [
        format!("sb-abcdefgh2345.localhost:{port}"),
        format!("SB-{}.LOCALHOST:{port}", label.to_uppercase()),
        format!("sb-{label}.localhost.:{port}"),
        format!("sb-{label}.localhost"),
        format!("sb-{label}.localhost:{port}.evil.example"),
        format!("x.sb-{label}.localhost:{port}"),
        format!("sb-{label}.localhost.evil.example:{port}"),
        format!("evil.example:{port}"),
        format!("localhost:{}", port + 1),
        format!("[::1]:{port}"),
    ] {
        let origin = format!("http://{host}");
        let (status, out) = ui.post_as(&host, &origin, path, "{}");
        assert_eq!(status, 421, "Host {host}: {out}");
    }
    // Without the token, from the page's own origin.
    let (status, _) = raw(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {own}\r\nContent-Type: application/json",
            ui.host
        ),
        "{}",
    );
    assert_eq!(status, 401);
    // A form-style request (no preflight) with the token, or a GET, does not get one either.
    let (status, _) = raw(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {own}\r\nX-Sealback-Token: {}\r\n\
             Content-Type: text/plain",
            ui.host, ui.token
        ),
        "{}",
    );
    assert_eq!(status, 403);
    let (status, _) = raw(
        port,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nX-Sealback-Token: {}",
            ui.host, ui.token
        ),
        "",
    );
    assert_ne!(status, 200);
}

/// A hand-off code trades once, only at the origin it was made for, and never at the
/// spelling 127.0.0.1 or at the page's own address; the printed launch code trades only at
/// the page's own address. The session that a traded code gives is the page's one session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_handoff_code_trades_once_and_only_at_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let ui = start(&dir.path().join("drive"), vec![]).await;
    let port = ui.port;
    let own = format!("http://{}", ui.host);
    let shared_host = format!("localhost:{port}");
    let shared = format!("http://{shared_host}");
    let ip_host = format!("127.0.0.1:{port}");

    let (to, code) = ui.handoff().await;
    assert_eq!(to, shared, "from the page, the hand-off goes to localhost");
    assert_eq!(code.len(), ui.token.len(), "as strong as the token");
    assert_ne!(code, ui.token);
    // At the wrong origin (each answered as a wrong code, and the code is not spent by it).
    for (host, origin) in [
        (ui.host.as_str(), own.as_str()),
        (ip_host.as_str(), "http://127.0.0.1:1"),
        (ip_host.as_str(), &format!("http://{ip_host}")),
    ] {
        let (status, r) = ui.trade(host, origin, &code);
        assert_ne!(status, 200, "{host} {origin}: {r}");
        assert!(r.get("token").is_none(), "{r}");
    }
    // A page at localhost:OTHER, or a rebinding name, is stopped before the trade.
    let (status, _) = ui.trade(
        &shared_host,
        &format!("http://localhost:{}", port + 1),
        &code,
    );
    assert_eq!(status, 403);
    let (status, _) = ui.trade(
        &format!("evil.example:{port}"),
        &format!("http://evil.example:{port}"),
        &code,
    );
    assert_eq!(status, 421);
    // At its origin: once.
    let (status, r) = ui.trade(&shared_host, &shared, &code);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["token"], ui.token.as_str());
    let (status, r) = ui.trade(&shared_host, &shared, &code);
    assert_eq!(status, 401, "a hand-off code traded twice: {r}");

    // Back from localhost: a code for the page's own address only.
    let (status, out) = ui.post_as(&shared_host, &shared, "/api/session/handoff", "{}");
    assert_eq!(status, 200, "{out}");
    let url = body_json(&out)["url"].as_str().unwrap().to_string();
    let (to, back) = url.split_once("/?code=").unwrap();
    assert_eq!(to, own);
    let (status, _) = ui.trade(&shared_host, &shared, back);
    assert_eq!(status, 401);
    let (status, r) = ui.trade(&ui.host, &own, back);
    assert_eq!(status, 200, "{r}");
    let (status, _) = ui.trade(&ui.host, &own, back);
    assert_eq!(status, 401);

    // The printed launch code (already traded by the page) never trades at localhost either.
    let (status, _) = ui.trade(&shared_host, &shared, &ui.code);
    assert_eq!(status, 401);
}

/// Twenty codes asked at once: each trades exactly once, and a spent or unknown code never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_handoff_codes_under_a_race_each_trade_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let ui = std::sync::Arc::new(start(&dir.path().join("drive"), vec![]).await);
    let (_, code) = ui.handoff().await;
    let shared_host = format!("localhost:{}", ui.port);
    let shared = format!("http://{shared_host}");
    let mut tasks = vec![];
    for _ in 0..16 {
        let (ui, code, h, o) = (
            ui.clone(),
            code.clone(),
            shared_host.clone(),
            shared.clone(),
        );
        tasks.push(tokio::task::spawn_blocking(move || {
            ui.trade(&h, &o, &code).0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "one code, traded {ok} times");
}

/// A hand-off code is good for a minute: one traded after that gets nothing. (It waits the
/// minute out: the guard reads the real clock.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_handoff_code_is_refused_after_its_minute() {
    let dir = tempfile::tempdir().unwrap();
    let ui = start(&dir.path().join("drive"), vec![]).await;
    let (_, code) = ui.handoff().await;
    let (_, fresh) = ui.handoff().await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    let shared_host = format!("localhost:{}", ui.port);
    let shared = format!("http://{shared_host}");
    let (status, r) = ui.trade(&shared_host, &shared, &code);
    assert_eq!(status, 401, "a hand-off code traded after 61 s: {r}");
    // And a later one still works (so the refusal above was the clock, not a broken trade).
    let _ = fresh;
    let (_, later) = ui.handoff().await;
    let (status, r) = ui.trade(&shared_host, &shared, &later);
    assert_eq!(status, 200, "{r}");
}

/// Another local user (who can connect to the port) and any page learn nothing of the label
/// without the token: not from the page or its assets at the shared address, nor from a
/// refusal, a wrong code, an unknown route or a status without the token. Nor is a cookie
/// ever set (the token travels only in its header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_the_label_is_not_learned_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let ui = start(&dir.path().join("drive"), vec![]).await;
    let port = ui.port;
    let label = label_of(&ui);
    let mut seen = vec![];
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("sb-abcdefgh2345.localhost:{port}"),
        format!("evil.example:{port}"),
        format!("sb-{}.localhost:{port}", &label[..11]),
    ] {
        for path in [
            "/",
            "/assets/app.js",
            "/assets/settings.js",
            "/assets/app.css",
            "/api/status",
            "/api/settings",
            "/nope",
            "/?code=x",
        ] {
            seen.push(raw(
                port,
                &format!("GET {path} HTTP/1.1\r\nHost: {host}"),
                "",
            ));
        }
        let origin = format!("http://{host}");
        for path in [
            "/api/session",
            "/api/session/handoff",
            "/api/unlock/passkey/begin",
        ] {
            seen.push(raw(
                port,
                &format!(
                    "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
                     Content-Type: application/json"
                ),
                r#"{"code":"wrong"}"#,
            ));
        }
    }
    for (status, out) in &seen {
        assert!(
            !out.to_ascii_lowercase().contains(&label),
            "the label was in a response ({status}) without the token:\n{out}"
        );
        assert!(!out.to_ascii_lowercase().contains("set-cookie"), "{out}");
    }
    // Even with the token, the shared address's status names no label (the page there has
    // it only through a hand-off).
    let (status, out) = raw(
        port,
        &format!(
            "GET /api/status HTTP/1.1\r\nHost: localhost:{port}\r\nX-Sealback-Token: {}",
            ui.token
        ),
        "",
    );
    assert_eq!(status, 200);
    assert!(!out.contains(&label), "{out}");
}

/// The drive's operator writes a passkey slot's RP id: only the exact form
/// `sb-[a-z2-7]{12}.localhost` is adopted as the page's address; anything near it (case,
/// punycode, a trailing dot, extra labels, another parent domain, a port) is ignored, and
/// the page stays on a name of this installation under `.localhost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_drive_written_rp_id_is_adopted_only_in_its_exact_form() {
    use base64::Engine as _;
    use sealback_core::keyslot::KeySlotFile;
    use sealback_core::passkey::PasskeyParams;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    {
        let ui = start(&drive, vec![]).await;
        let (_, begin) = ui
            .post("/api/passkey/create/begin", json!({"purpose": "setup"}))
            .await;
        let (code, e) = ui
            .post(
                "/api/passkey/create/finish",
                json!({"ceremony": begin["ceremony"], "credential_id": b64.encode([7u8; 20]),
                       "prf_output": b64.encode([42u8; 32])}),
            )
            .await;
        assert_eq!(code, 200, "{e}");
    }
    let honest = std::fs::read(drive.join("keys")).unwrap();
    let write_rp = |rp_id: &str| {
        let mut file = KeySlotFile::decode(&honest).unwrap();
        for slot in &mut file.slots {
            if let Ok(mut p) = PasskeyParams::decode(&slot.params) {
                p.rp_id = rp_id.to_string();
                slot.params = p.encode();
            }
        }
        std::fs::write(drive.join("keys"), file.encode()).unwrap();
    };
    let chosen = "sb-attackerxyz2.localhost";
    for rp_id in [
        "SB-ATTACKERXYZ2.LOCALHOST",
        "Sb-attackerxyz2.localhost",
        "sb-attackerxyz2.localhost.",
        "sb-attackerxyz2.localhost.evil.example",
        "x.sb-attackerxyz2.localhost",
        "sb-attackerxyz2.evil.example",
        "sb-attackerxyz2.localhost:8080",
        "xn--sb-attackerxyz2-.localhost",
        "sb-xn--ttckr-2345.localhost",
        "sb-attackerxyz1.localhost",
        "sb-attackerxyz.localhost",
        "sb-attackerxyz22.localhost",
        "sb-attacker\u{0455}yz2.localhost",
        "sb-attackerxyz2\u{3002}localhost",
        "sb-attackerxyz2.localhost\u{0}",
        "localhost",
        "evil.example",
    ] {
        write_rp(rp_id);
        let ui = start(&drive, vec![]).await;
        let host = ui.host.split(':').next().unwrap().to_string();
        assert!(
            sealback_ui::OriginLabel::from_rp_id(&host).is_some(),
            "{rp_id:?}: served at {host}"
        );
        assert_ne!(host, chosen, "{rp_id:?} was adopted");
        assert!(
            !host.contains("attacker"),
            "{rp_id:?} chose the page's address {host}"
        );
        let (_, status) = ui.get("/api/status").await;
        assert_eq!(status["page"]["adopted_address"], false, "{rp_id:?}");
    }
    // Control: the exact form is adopted (admitted in THREAT_MODEL: the page says so).
    write_rp(chosen);
    let ui = start(&drive, vec![]).await;
    assert_eq!(ui.host.split(':').next(), Some(chosen));
    let (_, status) = ui.get("/api/status").await;
    assert_eq!(status["page"]["adopted_address"], true);
}

/// Finishing a half-done turn-off deletes every backup without any key, so it needs what
/// turning off needs at the door: the token, the page's own origin, JSON, and the typed
/// phrase; and it never touches a backup that still has its keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_finishing_a_turn_off_needs_the_phrase_the_token_and_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    let ui = start(&drive, vec![]).await;
    add_recovery_key(&ui, "setup").await;
    let path = "/api/settings/turn-off/finish";
    let phrase = r#"{"confirm":"delete my backups"}"#;
    let port = ui.port;
    let own = format!("http://{}", ui.host);

    // With its keys, a backup is not finished off, even with everything right.
    let intact = files_under(&drive);
    let (status, out) = ui.post_as(&ui.host, &own, path, phrase);
    assert_ne!(status, 200, "{out}");
    assert_eq!(
        files_under(&drive),
        intact,
        "a backup with keys was deleted"
    );

    // Half off (the keys file gone, as a stopped turn-off leaves it).
    std::fs::remove_file(drive.join("keys")).unwrap();
    let (_, status) = ui.get("/api/status").await;
    assert_eq!(status["half_off"], true, "{status}");
    let half = files_under(&drive);
    assert!(!half.is_empty());
    let shared = format!("localhost:{port}");
    let refused = [
        // No phrase, a wrong one, a phrase in another field.
        ui.post_as(&ui.host, &own, path, "{}"),
        ui.post_as(&ui.host, &own, path, r#"{"confirm":""}"#),
        ui.post_as(&ui.host, &own, path, r#"{"confirm":"delete my backup"}"#),
        ui.post_as(&ui.host, &own, path, r#"{"phrase":"delete my backups"}"#),
        // Cross-site: another local port, another sb- name, the other address.
        ui.post_as(&ui.host, &format!("http://localhost:{}", port + 1), path, phrase),
        ui.post_as(&ui.host, &format!("http://sb-abcdefgh2345.localhost:{port}"), path, phrase),
        ui.post_as(&ui.host, &format!("http://{shared}"), path, phrase),
        ui.post_as(&shared, &own, path, phrase),
        // No token; a form post (no preflight); a rebinding name.
        raw(
            port,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {own}\r\nContent-Type: application/json",
                ui.host
            ),
            phrase,
        ),
        raw(
            port,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {own}\r\nX-Sealback-Token: {}\r\n\
                 Content-Type: application/x-www-form-urlencoded",
                ui.host, ui.token
            ),
            "confirm=delete+my+backups",
        ),
        raw(
            port,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {own}\r\nX-Sealback-Token: {}\r\n\
                 Content-Type: application/json\r\nSec-Fetch-Site: same-site",
                ui.host, ui.token
            ),
            phrase,
        ),
        ui.post_as(&format!("evil.example:{port}"), &format!("http://evil.example:{port}"), path, phrase),
    ];
    for (i, (status, out)) in refused.iter().enumerate() {
        assert_ne!(*status, 200, "attempt {i} finished the turn-off: {out}");
        assert_eq!(files_under(&drive), half, "attempt {i} deleted something");
    }
    // The page's own request does it.
    let (status, out) = ui.post_as(&ui.host, &own, path, phrase);
    assert_eq!(status, 200, "{out}");
    assert!(files_under(&drive).is_empty());
}

/// Secrets never live on in an address: the hand-off answer is not cached, and the page
/// takes the code out of the address before it trades it (so it is not in history after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_handoff_answers_are_not_kept_and_the_page_drops_the_code_from_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let ui = start(&dir.path().join("drive"), vec![]).await;
    let own = format!("http://{}", ui.host);
    let (status, out) = ui.post_as(&ui.host, &own, "/api/session/handoff", "{}");
    assert_eq!(status, 200);
    let head = out.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    let (_, js) = raw(
        ui.port,
        &format!("GET /assets/app.js HTTP/1.1\r\nHost: localhost:{}", ui.port),
        "",
    );
    let replace = js
        .find("history.replaceState")
        .expect("the page drops the code");
    let trade = js
        .find("fetch('/api/session'")
        .expect("the page trades the code");
    assert!(
        replace < trade,
        "the code is dropped from the address before the trade"
    );
}

/// No passkey is made at the shared address: one of the RP `localhost` could be asked for by
/// any page on this computer. (The page with the token, at its own `localhost` address.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_no_browser_passkey_is_made_at_the_shared_address() {
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    let ui = start(&drive, vec![]).await;
    for host in [
        format!("localhost:{}", ui.port),
        format!("127.0.0.1:{}", ui.port),
    ] {
        let origin = format!("http://{host}");
        let (status, out) = ui.post_as(
            &host,
            &origin,
            "/api/passkey/create/begin",
            r#"{"purpose":"setup"}"#,
        );
        assert_eq!(status, 409, "{host}: {out}");
        assert_eq!(body_json(&out)["error"], "other_address", "{out}");
        assert!(!out.contains("\"rp_id\""), "{out}");
    }
    assert!(files_under(&drive).is_empty());
}

/// Finding 2: the label goes out in the Host header of every request the page makes, to
/// whoever listens on the port. Once `sealback ui` stops, another local user can take the
/// (now free) port; the person's tab, still open at `http://sb-LABEL.localhost:PORT`, sends
/// its next request (a click, a reload) there, and the squatter learns LABEL and, on a
/// reload, serves its own page at that very origin, which may ask the person's passkey under
/// the RP `sb-LABEL.localhost` (with the PRF input from the keys file, which is not secret).
/// THREAT_MODEL's residual lists the label file, terminal, history and drive, not this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "finding 2: a port squatter after the UI stops reads the label from the stale tab's Host \
            header and serves a page at the installation origin; not a small fix: document the \
            residual, have the page stop (replace itself, drop its token) on the first 'offline' \
            answer, and tell the person to close the tab when the UI stops"]
async fn attack_a_port_taken_after_the_ui_stops_does_not_learn_the_label() {
    let dir = tempfile::tempdir().unwrap();
    let ui = start(&dir.path().join("drive"), vec![]).await;
    let (port, base, label, client) = (ui.port, ui.base.clone(), label_of(&ui), ui.client.clone());
    drop(ui);
    // Another local user takes the port as soon as it is free.
    let mut squatter = None;
    for _ in 0..100 {
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            squatter = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let squatter = squatter.expect("the port is free once the UI stopped");
    let seen = std::thread::spawn(move || {
        let (mut s, _) = squatter.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    // The stale tab: a reload of the page's own address.
    let _ = client.get(format!("{base}/")).send().await;
    let request = seen.join().unwrap();
    assert!(
        !request.contains(&label),
        "the squatter learned the label:\n{request}"
    );
}

/// Finding 3: a folder that is not a sealback repository but holds a file named `config` and
/// no `keys` (a `.git` folder, `~/.ssh`, a mistyped `--repo`) was taken for a half-done
/// turn-off: the page offered to "finish deleting it", and typing the phrase deleted the
/// person's `config` and everything under `packs/`, `index/`, `snapshots/` there. Only a
/// config that reads as a sealback repository's is a half-done turn-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_folder_with_a_foreign_config_is_not_finished_off() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("not-a-repo");
    std::fs::create_dir_all(folder.join("packs")).unwrap();
    std::fs::write(folder.join("config"), "[core]\n\tbare = false\n").unwrap();
    std::fs::write(folder.join("packs").join("notes.txt"), "mine").unwrap();
    let before = files_under(&folder);
    let ui = start(&folder, vec![]).await;
    let (_, status) = ui.get("/api/status").await;
    // (The status may as well refuse the folder outright: it is not a repository.)
    assert_ne!(status["half_off"], true, "{status}");
    let (code, out) = ui
        .post(
            "/api/settings/turn-off/finish",
            json!({"confirm": "delete my backups"}),
        )
        .await;
    assert_ne!(code, 200, "{out}");
    assert_eq!(
        files_under(&folder),
        before,
        "the person's files were deleted"
    );
}

/// Finding 4: with a repository whose passkey slots name a label, this installation's label
/// file was read leniently: content that is not a label (damaged, or unreadable for any other
/// reason than being missing) counted as "no label yet", and the drive's label was written
/// over it. The installation's own label (and the RP of every passkey made here) was then
/// replaced by one the drive's operator chose, with no word said. Without a repository label
/// the same file is refused with a clear error; it must be here too, and left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_damaged_label_file_is_not_replaced_by_the_drives_label() {
    use base64::Engine as _;
    use sealback_core::keyslot::KeySlotFile;
    use sealback_core::passkey::PasskeyParams;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("drive");
    {
        let ui = start(&drive, vec![]).await;
        let (_, begin) = ui
            .post("/api/passkey/create/begin", json!({"purpose": "setup"}))
            .await;
        let (code, e) = ui
            .post(
                "/api/passkey/create/finish",
                json!({"ceremony": begin["ceremony"], "credential_id": b64.encode([7u8; 20]),
                       "prf_output": b64.encode([42u8; 32])}),
            )
            .await;
        assert_eq!(code, 200, "{e}");
    }
    let mut file = KeySlotFile::decode(&std::fs::read(drive.join("keys")).unwrap()).unwrap();
    for slot in &mut file.slots {
        if let Ok(mut p) = PasskeyParams::decode(&slot.params) {
            p.rp_id = "sb-attackerxyz2.localhost".into();
            slot.params = p.encode();
        }
    }
    std::fs::write(drive.join("keys"), file.encode()).unwrap();
    let label_file = dir.path().join("data").join("page-label");
    std::fs::create_dir_all(label_file.parent().unwrap()).unwrap();
    let damaged = "ownlabelxyz2 but damaged\n";
    std::fs::write(&label_file, damaged).unwrap();
    let mut config = super::config(&drive, vec![]);
    config.label_file = Some(label_file.clone());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = sealback_ui::UiServer::bind("127.0.0.1:0".parse().unwrap(), config).await;
    assert_eq!(
        std::fs::read_to_string(&label_file).unwrap(),
        damaged,
        "the installation's label file was replaced by the drive's label"
    );
    let err = started.expect_err("a damaged label file is refused");
    assert!(err.contains("page-label"), "{err}");
}
