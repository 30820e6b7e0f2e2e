//! Issue 14: the vault attacked as an attacker would, with an OPAQUE client nobody here wrote
//! (opaque-ke's client API driven by hand) and plain HTTP (reqwest), never
//! `sealback-vault-client`. Each test runs the attack against a real vault and asserts that it
//! gains nothing.

use super::{start, Running};
use opaque_ke::{ClientRegistration, ClientRegistrationFinishParameters};
use rand08::rngs::OsRng;
use sealback_proto::{self as proto, Suite};
use sealback_testkit::vault_attacker::{self as raw, b64, post_json, unb64};
use sealback_vault::db::RecordKind;

/// One counted `login/start`: its KE2 (credential response and key exchange).
async fn raw_login_start_ke2(url: &str, account: &str) -> Vec<u8> {
    let (_, body) = raw::login_start_body(account, "dev", b"anything");
    let (status, reply) = post_json(url, "/v1/login/start", &body).await;
    assert_eq!(status, 200, "{reply}");
    unb64(&reply["response"])
}

/// RFC 9807 §6.3.2.2 done by the attacker: the masking key a candidate password yields (from a
/// registration the attacker runs with it) unmasks the KE2's credential response; the first 32
/// bytes are the vault's public key exactly when the OPRF evaluated the same key and the
/// candidate is the password. KE2 = evaluated element (32) ‖ masking nonce (32) ‖ masked
/// response (128) ‖ key exchange.
fn unmasks_to_server_key(ke2: &[u8], masking_key: &[u8], server_public_key: &[u8]) -> bool {
    use ring::hkdf::{KeyType, Prk, HKDF_SHA512};
    struct Len(usize);
    impl KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let (nonce, masked) = (&ke2[32..64], &ke2[64..192]);
    let prk = Prk::new_less_safe(HKDF_SHA512, masking_key);
    let info = [nonce, b"CredentialResponsePad".as_slice()];
    let mut pad = [0u8; 128];
    prk.expand(&info, Len(128)).unwrap().fill(&mut pad).unwrap();
    let unmasked: Vec<u8> = masked.iter().zip(pad).map(|(m, p)| m ^ p).collect();
    unmasked[..32] == *server_public_key
}

/// The oracle attack: one counted `login/start` at `login_url`, then one `register/start` per
/// candidate at `register_url`; the candidate whose registration unmasks the login's response.
async fn oracle_finds(login_url: &str, register_url: &str, account: &str) -> Option<&'static str> {
    let server_public_key = unb64(&raw::info(login_url).await["server_public_key"]);
    let ke2 = raw_login_start_ke2(login_url, account).await;
    let mut found = None;
    for candidate in ["123456", "password", "hunter2", "letmein"] {
        // The attacker never calls register/finish: the record stays the owner's.
        let (state, reply) = raw::register_start(register_url, account, candidate.as_bytes()).await;
        let upload = raw::finish_registration(state, candidate.as_bytes(), &reply);
        // RegistrationUpload = client public key (32) ‖ masking key (64) ‖ envelope.
        if unmasks_to_server_key(&ke2, &upload[32..96], &server_public_key) {
            found = Some(candidate);
        }
    }
    found
}

/// Issue 14, first hole: `register/start` evaluated the OPRF under the key `login/start` uses
/// (both derived it from the account name), uncounted. One counted login start, then one
/// registration start per candidate, tests passwords offline.
#[tokio::test]
async fn register_start_is_no_uncounted_password_oracle() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    raw::register(&v.url, "alice", b"hunter2").await;
    let found = oracle_finds(&v.url, &v.url, "alice").await;
    assert_eq!(
        found, None,
        "register/start let a register-proof holder test passwords offline"
    );
    assert_eq!(v.attempts("alice", RecordKind::Password).await, 1);
    assert!(v.holds("alice", RecordKind::Password).await);
    audit_has(&v, "alice", "register_start").await;
}

/// The audit trail of `account` has an `event` entry.
async fn audit_has(v: &Running, account: &str, event: &str) {
    let log = v.vault.db().audit_log(1000).await.unwrap();
    assert!(
        log.iter().any(|e| e.account == account && e.event == event),
        "no {event} in the audit trail of {account}"
    );
}

/// Records stored before issue 14 used the account as their credential identifier and carry no
/// version byte: they keep working.
#[tokio::test]
async fn a_record_stored_before_fresh_identifiers_still_logs_in() {
    use sealback_vault::sealer::{Sealer, SoftwareSealer};
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    let sealer = SoftwareSealer::open_or_create(&tmp.path().join("vault.key")).unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("vault.db")).unwrap();
    let sealed_setup: Vec<u8> = conn
        .query_row("SELECT sealed FROM setup", [], |r| r.get(0))
        .unwrap();
    let setup = opaque_ke::ServerSetup::<Suite>::deserialize(
        &sealer
            .open(b"sealback vault 2026-11-25 server setup", &sealed_setup)
            .unwrap(),
    )
    .unwrap();
    // What the vault of 2026-11-25 did at registration.
    let client = ClientRegistration::<Suite>::start(&mut OsRng, b"old password").unwrap();
    let response =
        opaque_ke::ServerRegistration::<Suite>::start(&setup, client.message, b"olga").unwrap();
    let ksf = proto::ksf();
    let upload = client
        .state
        .finish(
            &mut OsRng,
            b"old password",
            response.message,
            ClientRegistrationFinishParameters::new(Default::default(), Some(&ksf)),
        )
        .unwrap()
        .message;
    let file = opaque_ke::ServerRegistration::<Suite>::finish(upload).serialize();
    let mut v1 = (file.len() as u32).to_be_bytes().to_vec();
    v1.extend_from_slice(&file);
    v1.extend_from_slice(b"wrapped by the client");
    let sealed = sealer.seal_v1(b"sealback vault 2026-11-25 record:olga", &v1);
    conn.execute(
        "INSERT INTO records(account, sealed, created) VALUES ('olga', ?1, 0)",
        [sealed],
    )
    .unwrap();
    // As in a database of that time: not yet upgraded to bound records (which the vault does
    // once, at its next start).
    conn.execute("DELETE FROM integrity", []).unwrap();
    drop(v);
    let v = start(tmp.path()).await;
    let (status, reply) = raw::login(&v.url, "olga", b"old password").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(unb64(&reply["wrapped_key"]), b"wrapped by the client");
    let (status, reply) = raw::login(&v.url, "olga", b"wrong").await;
    assert_eq!(status, 401, "{reply}");
}

/// Nine wrong passwords over raw HTTP; each is answered 401 with what is left.
async fn nine_wrong_passwords(url: &str, account: &str) {
    for i in 0..9 {
        let (status, reply) = raw::login(url, account, format!("guess {i}").as_bytes()).await;
        assert_eq!(status, 401, "{reply}");
    }
}

/// The tenth wrong password is the last: it is answered with nothing left, and the eleventh
/// start is `locked`.
async fn tenth_wrong_password_is_the_last(url: &str, account: &str) {
    let (status, reply) = raw::login(url, account, b"guess 10").await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(
        reply["attempts_remaining"], 0,
        "the count was lowered: more than 10 guesses evaluated"
    );
    let (status, reply) = raw::login(url, account, b"guess 11").await;
    assert_eq!(status, 423, "{reply}");
}

/// Issue 14, second hole: registering a passkey deleted the account's (shared) count, so nine
/// password guesses, a throw-away passkey, nine more ... gave unlimited guesses.
#[tokio::test]
async fn registering_a_throwaway_passkey_does_not_reset_the_password_count() {
    let tmp = tempfile::tempdir().unwrap();
    let v = super::passkeys::passkey_vault(tmp.path(), |_| {}).await;
    raw::register(&v.url, "pam", b"pam's password").await;
    nine_wrong_passwords(&v.url, "pam").await;
    super::passkeys::registered_passkey(&v.url, tmp.path(), "pam", "throwaway").await;
    tenth_wrong_password_is_the_last(&v.url, "pam").await;
    assert!(!v.holds("pam", RecordKind::Password).await);
}

/// Guesses counted against an account before its first registration stay counted after it:
/// a registration lowers a count only together with the record it replaces.
#[tokio::test]
async fn guesses_before_the_first_registration_stay_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    nine_wrong_passwords(&v.url, "quinn").await;
    raw::register(&v.url, "quinn", b"quinn's password").await;
    tenth_wrong_password_is_the_last(&v.url, "quinn").await;
}

/// The upgrade from one shared count per account: each kind starts from the shared count, so
/// the upgrade lowers nothing.
#[tokio::test]
async fn an_old_shared_count_becomes_each_records_count() {
    use sealback_vault::sealer::SoftwareSealer;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vault.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE attempts(account TEXT PRIMARY KEY, count INTEGER NOT NULL);
         INSERT INTO attempts VALUES ('rob', 7);",
    )
    .unwrap();
    drop(conn);
    let db = sealback_vault::db::Db::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let sealer = SoftwareSealer::open_or_create(&tmp.path().join("vault.key")).unwrap();
    db.bind(sealback_vault::integrity::Integrity::new(
        std::sync::Arc::new(sealer),
    ));
    assert!(db.upgrade_integrity().await.unwrap(), "upgraded once");
    // Realm records (kind 3) came after the split: a shared count was never theirs.
    for kind in [RecordKind::Password, RecordKind::Passkey] {
        assert_eq!(db.attempts("rob".into(), kind).await.unwrap(), 7);
    }
    assert_eq!(
        db.attempts("rob".into(), RecordKind::Realm).await.unwrap(),
        0
    );
}

/// The five ceremonies: the route that starts each and the route that finishes it.
const CEREMONIES: [(&str, &str, &str); 5] = [
    ("register", "/v1/register/start", "/v1/register/finish"),
    ("login", "/v1/login/start", "/v1/login/finish"),
    (
        "passkey register",
        "/v1/passkey/register/start",
        "/v1/passkey/register/finish",
    ),
    (
        "passkey login",
        "/v1/passkey/login/start",
        "/v1/passkey/login/finish",
    ),
    (
        "passkey sign-in",
        "/v1/passkey/signin/start",
        "/v1/passkey/signin/finish",
    ),
];

/// Starts ceremony `i` of [`CEREMONIES`] for `account` over raw HTTP; returns its session id.
async fn start_ceremony(url: &str, i: usize, account: &str) -> String {
    let body = match i {
        0 => raw::register_start_body(account, "dev", b"pw").1,
        1 => raw::login_start_body(account, "dev", b"pw").1,
        _ => serde_json::json!({"account": account, "proof": "dev"}),
    };
    let (status, reply) = post_json(url, CEREMONIES[i].1, &body).await;
    assert_eq!(status, 200, "{}: {reply}", CEREMONIES[i].0);
    reply["session"].as_str().unwrap().to_string()
}

/// A finish body for route `j` of [`CEREMONIES`] carrying `session`: well-formed enough for the
/// route to look at the session.
fn finish_body(j: usize, session: &str, account: &str) -> serde_json::Value {
    match j {
        0 => serde_json::json!({
            "session": session, "account": account, "proof": "dev",
            "upload": b64(&[1u8; 192]), "wrapped_key": b64(b"w"),
        }),
        1 => serde_json::json!({"session": session, "finalization": b64(&[0u8; 64])}),
        _ => serde_json::json!({"session": session, "credential": raw::bogus_credential()}),
    }
}

/// Issue 14, third hole: all ceremonies shared one session table and one sealing context, so a
/// session of one ceremony was taken by another's finish (a passkey-login session finished a
/// password login; the other pairings answered 500). Every cross pairing must be a 4xx JSON
/// error, audited, and the session must still finish its own ceremony afterwards.
#[tokio::test]
async fn a_session_is_accepted_only_by_its_own_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let v = super::passkeys::passkey_vault(tmp.path(), |_| {}).await;
    super::passkeys::registered_passkey(&v.url, tmp.path(), "sam", "sam's phone").await;
    raw::register(&v.url, "sam", b"sam's password").await;
    let mut refused = Vec::new();
    for (i, (started, _, _)) in CEREMONIES.iter().enumerate() {
        for (j, (_, _, finish)) in CEREMONIES.iter().enumerate().filter(|(j, _)| *j != i) {
            let session = start_ceremony(&v.url, i, "sam").await;
            let (status, reply) = post_json(&v.url, finish, &finish_body(j, &session, "sam")).await;
            let pairing = format!("{started} session at {finish}");
            assert!(
                (400..500).contains(&status) && reply["error"].is_string(),
                "{pairing}: {status} {reply}"
            );
            refused.push(pairing);
        }
    }
    assert_eq!(refused.len(), 20);
    let log = v.vault.db().audit_log(1000).await.unwrap();
    assert!(
        log.iter().filter(|e| e.event == "session_mismatch").count() >= 20,
        "cross-ceremony finishes are audited"
    );
}

/// `login/start` over raw HTTP with the right `password`, finished by the client but not yet
/// sent: the `login/finish` body, to post later.
async fn pending_login(url: &str, account: &str, password: &[u8]) -> serde_json::Value {
    let (state, body) = raw::login_start_body(account, "dev", password);
    let (status, reply) = post_json(url, "/v1/login/start", &body).await;
    assert_eq!(status, 200, "{reply}");
    raw::login_finish_body(state, password, &reply)
}

/// Every byte of the database file and its WAL.
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = std::fs::read(dir.join("vault.db")).unwrap();
    all.extend(std::fs::read(dir.join("vault.db-wal")).unwrap_or_default());
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Issue 14, fourth hole: destroyed was not gone. The sealed record stayed readable in the
/// SQLite file and its WAL, and a login session started (with the right password) before the
/// destruction still held a copy of the wrapped key: finishing it after the lock released it.
#[tokio::test]
async fn a_destroyed_record_is_gone_from_the_files_and_its_pending_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    raw::register(&v.url, "tom", b"tom's password").await;
    let sealed: Vec<u8> = rusqlite::Connection::open(tmp.path().join("vault.db"))
        .unwrap()
        .query_row(
            "SELECT sealed FROM records WHERE account = 'tom'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let needle = &sealed[20..60];
    assert!(contains(&database_bytes(tmp.path()), needle));
    // The attacker (or a forgetful client) keeps a right-password login pending...
    let pending = pending_login(&v.url, "tom", b"tom's password").await;
    // ... while the record is guessed to destruction.
    for i in 0..9 {
        let (status, _) = raw::login(&v.url, "tom", format!("guess {i}").as_bytes()).await;
        assert_eq!(status, 401);
    }
    let (status, _) = raw::login(&v.url, "tom", b"eleventh").await;
    assert_eq!(status, 423);
    let (status, reply) = post_json(&v.url, "/v1/login/finish", &pending).await;
    assert_ne!(
        status, 200,
        "a pending session brought a destroyed key back: {reply}"
    );
    assert_eq!(status, 410, "{reply}");
    assert!(
        !contains(&database_bytes(tmp.path()), needle),
        "the destroyed record's sealed bytes are still in vault.db or its WAL"
    );
}

/// A vault whose per-address limit is `per_minute`, with passkeys.
async fn limited_vault(dir: &std::path::Path, per_minute: u32) -> Running {
    super::passkeys::passkey_vault(dir, |o| {
        o.source_rate = sealback_vault::limits::RateLimit { per_minute };
    })
    .await
}

/// Issue 14: `login/finish`, `passkey/login/finish` and `/v1/info` had no per-address limit (a
/// flood of 34,632 finishes in 23 s raised a real login's latency from 8 to 980 ms).
#[tokio::test]
async fn a_flood_on_finish_routes_and_info_is_limited_per_address() {
    let bogus = serde_json::json!({"session": "login.00", "finalization": b64(&[0; 64])});
    let bogus_passkey = finish_body(3, "passkey-login.00", "x");
    for (route, body) in [
        ("/v1/login/finish", Some(&bogus)),
        ("/v1/passkey/login/finish", Some(&bogus_passkey)),
        ("/v1/info", None),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let v = limited_vault(tmp.path(), 5).await;
        let mut limited = 0;
        for _ in 0..12 {
            let status = match body {
                Some(b) => post_json(&v.url, route, b).await.0,
                None => reqwest::get(format!("{}{route}", v.url))
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            };
            limited += usize::from(status == 429);
        }
        assert!(limited >= 6, "{route}: only {limited} of 12 limited");
    }
}

/// Issue 14: PRF output was refused only under `clientExtensionResults.prf` with a non-null
/// value; webauthn-rs also reads a credential's `extensions`, and `hmacGetSecret` is the same
/// secret under its CTAP name.
#[tokio::test]
async fn prf_output_is_refused_in_every_spelling() {
    let tmp = tempfile::tempdir().unwrap();
    let v = super::passkeys::passkey_vault(tmp.path(), |_| {}).await;
    let secret_output = serde_json::json!({"results": {"first": "c2VjcmV0"}});
    let spellings = [
        serde_json::json!({"clientExtensionResults": {"prf": null}}),
        serde_json::json!({"extensions": {"prf": secret_output}}),
        serde_json::json!({"client_extension_results": {"prf": secret_output}}),
        serde_json::json!({"extensions": {"hmacGetSecret": {"output1": "c2VjcmV0"}}}),
        serde_json::json!({"clientExtensionResults": {"hmac_get_secret": {"output1": "c2VjcmV0"}}}),
    ];
    for route in [
        "/v1/passkey/register/finish",
        "/v1/passkey/login/finish",
        "/v1/passkey/signin/finish",
    ] {
        for spelling in &spellings {
            let mut credential = finish_body(3, "", "")["credential"].clone();
            credential
                .as_object_mut()
                .unwrap()
                .remove("clientExtensionResults");
            for (k, val) in spelling.as_object().unwrap() {
                credential[k] = val.clone();
            }
            let body = serde_json::json!({"session": "x", "credential": credential});
            let (status, reply) = post_json(&v.url, route, &body).await;
            assert!(
                status == 400 && reply["message"].as_str().unwrap_or("").contains("PRF"),
                "{route} {spelling}: {status} {reply}"
            );
        }
    }
}

/// Issue 14: requests the framework rejects (not JSON, a missing field, too large, no such
/// route) answered text/plain statuses the API does not document.
#[tokio::test]
async fn malformed_requests_get_the_documented_json_error() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", v.url);
    let requests = [
        client.post(url("/v1/login/start")).body("account=a"),
        client
            .post(url("/v1/login/start"))
            .header("content-type", "application/json")
            .body("{\"account\": \"a\"}"),
        client
            .post(url("/v1/login/start"))
            .header("content-type", "application/json")
            .body("{not json"),
        client
            .post(url("/v1/register/finish"))
            .header("content-type", "application/json")
            .body(vec![b' '; 3 << 20]),
        client.get(url("/v1/no/such/route")),
        client.get(url("/v1/login/start")),
    ];
    for request in requests {
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let content_type = r.headers().get("content-type").cloned();
        let body = r.text().await.unwrap();
        assert!((400..500).contains(&status), "{status} {body}");
        assert_eq!(
            content_type.as_ref().and_then(|c| c.to_str().ok()),
            Some("application/json"),
            "{status} {body}"
        );
        let reply: proto::ErrorReply = serde_json::from_str(&body).unwrap();
        assert!(
            !reply.message.contains("Error {"),
            "Rust Debug text: {body}"
        );
    }
}

/// Issue 14: sign-in spent the account's rate token before verifying anything, so anyone who
/// knew a credential id (it is in every login's options) could lock the account's sign-ins.
#[tokio::test]
async fn unverified_sign_ins_do_not_use_up_the_accounts_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let v = super::passkeys::passkey_vault(tmp.path(), |o| {
        o.account_rate = sealback_vault::limits::RateLimit { per_minute: 2 };
    })
    .await;
    let client = sealback_vault_client::VaultClient::new(&v.url).unwrap();
    let mut pk = super::passkeys::provider(tmp.path(), "una's phone");
    client
        .passkey_register("una", "dev", None, &mut pk)
        .await
        .unwrap();
    // The credential id is in every login's options.
    let (_, login) = post_json(
        &v.url,
        "/v1/passkey/login/start",
        &serde_json::json!({"account": "una", "proof": "dev"}),
    )
    .await;
    let id = login["options"]["publicKey"]["allowCredentials"][0]["id"].clone();
    for _ in 0..5 {
        let (_, start) =
            post_json(&v.url, "/v1/passkey/signin/start", &serde_json::json!({})).await;
        let mut body = finish_body(4, start["session"].as_str().unwrap(), "");
        body["credential"]["id"] = id.clone();
        body["credential"]["rawId"] = id.clone();
        let (status, reply) = post_json(&v.url, "/v1/passkey/signin/finish", &body).await;
        assert!(
            (400..500).contains(&status) && status != 429,
            "{status} {reply}"
        );
    }
    let session = client.passkey_signin("localhost", &mut pk).await;
    assert!(
        session.is_ok(),
        "the owner's sign-in was refused: {session:?}"
    );
}

/// Issue 14: a passkey login verified against the credentials of `start` but released the share
/// of the record current at `finish`. A lost phone's passkey starts a login; the owner replaces
/// the passkey record (new passkey, new share); the old passkey's finish must not get the new
/// share.
#[tokio::test]
async fn a_passkey_finish_releases_only_the_share_it_verified_against() {
    use sealback_passkey::WebAuthnClient;
    let tmp = tempfile::tempdir().unwrap();
    let v = super::passkeys::passkey_vault(tmp.path(), |_| {}).await;
    let client = sealback_vault_client::VaultClient::new(&v.url).unwrap();
    let mut lost = super::passkeys::provider(tmp.path(), "lost phone");
    client
        .passkey_register("vic", "dev", None, &mut lost)
        .await
        .unwrap();
    let start = client.passkey_login_start("vic", "dev").await.unwrap();
    let origin = sealback_vault_client::passkey_origin("localhost", &v.url).unwrap();
    let assertion = lost.get_assertion(&origin, &start.options).await.unwrap();
    // The owner replaces the record with a new passkey (and a new share).
    let mut new = super::passkeys::provider(tmp.path(), "new phone");
    client
        .passkey_register("vic", "dev", None, &mut new)
        .await
        .unwrap();
    let finished = client
        .passkey_login_finish("vic", start.session, assertion)
        .await;
    assert!(
        finished.is_err(),
        "the lost passkey was given the new record's share"
    );
}

/// The attacks of issue 14 against two vault processes on one PostgreSQL (each with its own
/// pool), switching between them mid-attack: the oracle, the passkey counter reset, a
/// cross-ceremony session, and a pending session outliving its destroyed record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vaults_on_one_postgresql_refuse_every_attack() {
    let pg = sealback_testkit::PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let options = || super::passkeys::passkey_options(|_| {});
    let clock = || std::sync::Arc::new(sealback_vault::SystemClock);
    let a = super::start_with(tmp.path(), &pg.url(), options(), clock()).await;
    let b = super::start_with(tmp.path(), &pg.url(), options(), clock()).await;
    raw::register(&a.url, "alice", b"hunter2").await;
    assert_eq!(oracle_finds(&a.url, &b.url, "alice").await, None);

    // A right-password login left pending at a, eight wrong guesses (one was the oracle's
    // login), a throw-away passkey registered at b, then the tenth and eleventh at b.
    let pending = pending_login(&a.url, "alice", b"hunter2").await;
    for i in 0..7 {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        let (status, _) = raw::login(url, "alice", format!("guess {i}").as_bytes()).await;
        assert_eq!(status, 401);
    }
    super::passkeys::registered_passkey(&b.url, tmp.path(), "alice", "throwaway").await;
    // A passkey-login session at b's password finish: refused, not counted, not a login.
    let session = start_ceremony(&a.url, 3, "alice").await;
    let (status, _) = post_json(&b.url, "/v1/login/finish", &finish_body(1, &session, "")).await;
    assert_eq!(status, 400);
    tenth_wrong_password_is_the_last(&b.url, "alice").await;
    let (status, reply) = post_json(&b.url, "/v1/login/finish", &pending).await;
    assert_eq!(status, 410, "{reply}");
    assert!(!a.holds("alice", RecordKind::Password).await);
}

/// One raw attempt: a password login start (with a finish when it was answered: its status is
/// returned then), or a passkey login start (its status is returned) finished with an assertion
/// that does not verify.
async fn one_attempt(url: String, passkey: bool, i: usize) -> u16 {
    if passkey {
        let body = serde_json::json!({"account": "mia", "proof": "dev"});
        let (status, reply) = post_json(&url, "/v1/passkey/login/start", &body).await;
        if status == 200 {
            let session = reply["session"].as_str().unwrap();
            let (finished, _) = post_json(
                &url,
                "/v1/passkey/login/finish",
                &finish_body(3, session, ""),
            )
            .await;
            // 410 when another start went over the limit meanwhile: the record was destroyed
            // and its pending sessions with it.
            assert!(finished == 401 || finished == 410, "{finished}");
        }
        return status;
    }
    raw::login(&url, "mia", format!("guess {i}").as_bytes())
        .await
        .0
}

/// At most 10 evaluated guesses per record under 500 concurrent attempts mixing password and
/// passkey starts and finishes: exactly 10 of each kind are answered, every other start is
/// `locked`, and both records are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_mixed_concurrent_attempts_evaluate_ten_per_record() {
    let tmp = tempfile::tempdir().unwrap();
    let v = super::passkeys::passkey_vault(tmp.path(), |_| {}).await;
    raw::register(&v.url, "mia", b"mia's password").await;
    super::passkeys::registered_passkey(&v.url, tmp.path(), "mia", "mia's phone").await;
    let tasks: Vec<_> = (0..500)
        .map(|i| tokio::spawn(one_attempt(v.url.clone(), i % 2 == 1, i)))
        .collect();
    let mut answered = [0usize; 2];
    let mut locked = 0;
    for (i, t) in futures::future::join_all(tasks)
        .await
        .into_iter()
        .enumerate()
    {
        match t.unwrap() {
            // A start that was answered (a password finish says 401, or 410 once the record
            // was destroyed meanwhile).
            200 | 401 | 410 => answered[i % 2] += 1,
            423 => locked += 1,
            other => panic!("attempt {i}: {other}"),
        }
    }
    assert_eq!(answered, [10, 10], "evaluated guesses per record");
    assert_eq!(locked, 480);
    for kind in RecordKind::ALL {
        assert!(!v.holds("mia", kind).await);
    }
}
