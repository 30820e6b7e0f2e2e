//! The vault's WebAuthn relying party end to end over HTTP, with passkey-rs (the software
//! passkey provider, configured without PRF) as the client.

use super::{proof_at, start_with, unix_now, Running};
use sealback_core::passkey::KdfParams;
use sealback_passkey::store::Pin;
use sealback_passkey::{SoftwareAuthenticator, WebAuthnClient};
use sealback_proto::proof::{OperatorSigner, Scope};
use sealback_testkit::vault_attacker as raw;
use sealback_vault::db::RecordKind;
use sealback_vault::limits::RateLimit;
use sealback_vault::passkeys::RelyingParty;
use sealback_vault::{SystemClock, VaultOptions};
use sealback_vault_client::{passkey_origin, VaultClient, VaultError};
use std::path::Path;
use std::sync::Arc;

const FAST: KdfParams = KdfParams {
    memory_kib: 1024,
    passes: 1,
    lanes: 1,
};

/// A passkey provider without the PRF extension (a password manager that lacks it).
pub(crate) fn provider(dir: &Path, name: &str) -> SoftwareAuthenticator {
    SoftwareAuthenticator::open_or_create(
        &dir.join(format!("{name}.sbpk")),
        Pin::new("2468".into()),
        false,
        FAST,
    )
    .unwrap()
}

/// A new passkey `name` (a provider without PRF) registered to `account` at the vault at `url`
/// with a development proof; the provider, to assert with later.
pub(crate) async fn registered_passkey(
    url: &str,
    dir: &Path,
    account: &str,
    name: &str,
) -> SoftwareAuthenticator {
    let mut passkey = provider(dir, name);
    VaultClient::new(url)
        .unwrap()
        .passkey_register(account, "dev", None, &mut passkey)
        .await
        .unwrap();
    passkey
}

pub(crate) fn passkey_options(tune: impl FnOnce(&mut VaultOptions)) -> VaultOptions {
    let mut options = VaultOptions {
        dev_accounts: true,
        account_rate: RateLimit::OFF,
        source_rate: RateLimit::OFF,
        relying_party: Some(RelyingParty::new("localhost")),
        ..Default::default()
    };
    tune(&mut options);
    options
}

pub(crate) async fn passkey_vault(dir: &Path, tune: impl FnOnce(&mut VaultOptions)) -> Running {
    start_with(
        dir,
        &format!("sqlite:{}", dir.join("vault.db").display()),
        passkey_options(tune),
        Arc::new(SystemClock),
    )
    .await
}

#[tokio::test]
async fn a_passkey_without_prf_registers_and_its_assertion_releases_the_same_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let mut pk = provider(tmp.path(), "phone");
    let client = VaultClient::new(&v.url).unwrap();
    let (params, secret) = client
        .passkey_register("alice", "dev", None, &mut pk)
        .await
        .unwrap();
    assert_eq!(params.rp_id, "localhost");
    assert_eq!(params.account, "alice");
    assert!(v.holds("alice", RecordKind::Passkey).await);
    // Another device with a copy of the synced passkey store.
    std::fs::copy(
        tmp.path().join("phone.sbpk"),
        tmp.path().join("laptop.sbpk"),
    )
    .unwrap();
    let mut synced = provider(tmp.path(), "laptop");
    let (again, session) = client
        .passkey_login(&params, "dev", &mut synced)
        .await
        .unwrap();
    assert_eq!(again.expose_secret(), secret.expose_secret());
    assert!(session.token.starts_with("sbs1."));
    assert_eq!(v.attempts("alice", RecordKind::Passkey).await, 0);
    // The storage share matters: the vault's share alone does not make the secret.
    let mut other = params.clone();
    other.storage_share = zeroize::Zeroizing::new([0u8; 32]);
    let (different, _) = client
        .passkey_login(&other, "dev", &mut synced)
        .await
        .unwrap();
    assert_ne!(different.expose_secret(), secret.expose_secret());
    // Nothing in the database holds the secret or either share in clear.
    let db = std::fs::read(tmp.path().join("vault.db")).unwrap();
    let wal = std::fs::read(tmp.path().join("vault.db-wal")).unwrap_or_default();
    for needle in [secret.expose_secret(), &params.storage_share[..]] {
        assert!(!db.windows(32).any(|w| w == needle));
        assert!(!wal.windows(32).any(|w| w == needle));
    }
}

#[tokio::test]
async fn a_different_passkey_is_refused_counted_and_ten_failures_destroy_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let client = VaultClient::new(&v.url).unwrap();
    let mut right = provider(tmp.path(), "right");
    let (params, _) = client
        .passkey_register("bob", "dev", None, &mut right)
        .await
        .unwrap();
    // A passkey of the same relying party, registered to another account.
    let mut wrong = provider(tmp.path(), "wrong");
    client
        .passkey_register("mallory", "dev", None, &mut wrong)
        .await
        .unwrap();
    // Through the client: the wrong store holds no credential of bob's; the guess is spent.
    match client.passkey_login(&params, "dev", &mut wrong).await {
        Err(VaultError::WrongPasskey { remaining, .. }) => assert_eq!(remaining, 9),
        other => panic!("{other:?}"),
    }
    // A real assertion by the wrong credential, posted to bob's login: verified and refused.
    let origin = passkey_origin("localhost", &v.url).unwrap();
    for expected_remaining in (0..9).rev() {
        let (status, start) = raw::post_json(
            &v.url,
            "/v1/passkey/login/start",
            &serde_json::json!({"account": "bob"}),
        )
        .await;
        assert_eq!(status, 200, "{start}");
        let mut options = start["options"].clone();
        options["publicKey"]
            .as_object_mut()
            .unwrap()
            .remove("allowCredentials");
        let assertion = wrong.get_assertion(&origin, &options).await.unwrap();
        let (status, reply) = raw::post_json(
            &v.url,
            "/v1/passkey/login/finish",
            &serde_json::json!({"session": start["session"], "credential": assertion}),
        )
        .await;
        assert_eq!(status, 401, "{reply}");
        assert_eq!(reply["error"], "login_failed");
        assert_eq!(reply["attempts_remaining"], expected_remaining);
    }
    // Ten failures: the record and its credentials are gone; the right passkey is too late.
    assert!(!v.holds("bob", RecordKind::Passkey).await);
    match client.passkey_login(&params, "dev", &mut right).await {
        Err(VaultError::Locked) => {}
        other => panic!("{other:?}"),
    }
    let audit = v.vault.db().audit_log(100).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.account == "bob" && e.outcome == "locked"));
    // The other account is untouched.
    assert!(v.holds("mallory", RecordKind::Passkey).await);
}

/// Issue 14: each record has its own count, lowered only by a successful login of its kind
/// (this test pinned one shared count before).
#[tokio::test]
async fn passkey_and_password_guesses_are_counted_per_record() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let client = VaultClient::new(&v.url).unwrap();
    let mut pk = provider(tmp.path(), "p");
    let (params, _) = client
        .passkey_register("carol", "dev", None, &mut pk)
        .await
        .unwrap();
    let password_params = client
        .register(
            "carol",
            "dev",
            &sealback_vault_client::Password::new("hunter2hunter2".into()),
            &sealback_core::ProtectorSecret::new(vec![7; 32]),
            None,
        )
        .await
        .unwrap();
    for _ in 0..5 {
        let _ = client
            .login(
                &password_params,
                &sealback_vault_client::Password::new("wrong".into()),
                "",
            )
            .await;
    }
    let mut stranger = provider(tmp.path(), "stranger");
    match client.passkey_login(&params, "dev", &mut stranger).await {
        Err(VaultError::WrongPasskey { remaining, .. }) => assert_eq!(remaining, 9),
        other => panic!("{other:?}"),
    }
    // A verified passkey resets the passkey's count, not the password's.
    client.passkey_login(&params, "dev", &mut pk).await.unwrap();
    assert_eq!(v.attempts("carol", RecordKind::Passkey).await, 0);
    assert_eq!(v.attempts("carol", RecordKind::Password).await, 5);
    client
        .login(
            &password_params,
            &sealback_vault_client::Password::new("hunter2hunter2".into()),
            "",
        )
        .await
        .unwrap();
    assert_eq!(v.attempts("carol", RecordKind::Password).await, 0);
}

#[tokio::test]
async fn replayed_and_cross_origin_assertions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let client = VaultClient::new(&v.url).unwrap();
    let mut pk = provider(tmp.path(), "p");
    client
        .passkey_register("dana", "dev", None, &mut pk)
        .await
        .unwrap();
    let origin = passkey_origin("localhost", &v.url).unwrap();
    let login = serde_json::json!({"account": "dana"});
    let start = |_: ()| raw::post_json(&v.url, "/v1/passkey/login/start", &login);
    let (_, first) = start(()).await;
    let assertion = pk.get_assertion(&origin, &first["options"]).await.unwrap();
    let body = serde_json::json!({"session": first["session"], "credential": assertion});
    let (status, ok) = raw::post_json(&v.url, "/v1/passkey/login/finish", &body).await;
    assert_eq!(status, 200, "{ok}");
    // The same request again: its session is spent.
    let (status, again) = raw::post_json(&v.url, "/v1/passkey/login/finish", &body).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (410, Some("session_expired"))
    );
    // The old assertion under a new challenge: refused and counted.
    let (_, second) = start(()).await;
    let replay = serde_json::json!({"session": second["session"], "credential": assertion});
    let (status, refused) = raw::post_json(&v.url, "/v1/passkey/login/finish", &replay).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("login_failed")),
        "{refused}"
    );
    // A page on another origin (a subdomain phishing page of the relying party) gets a valid
    // signature from the authenticator, but not for this vault's origin.
    let (_, third) = start(()).await;
    let evil = sealback_passkey::Url::parse("https://evil.localhost").unwrap();
    let crossed = pk.get_assertion(&evil, &third["options"]).await.unwrap();
    let (status, refused) = raw::post_json(
        &v.url,
        "/v1/passkey/login/finish",
        &serde_json::json!({"session": third["session"], "credential": crossed}),
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("login_failed")),
        "{refused}"
    );
    // Counted: the replay and the crossed assertion (the first login's success reset it).
    assert_eq!(v.attempts("dana", RecordKind::Passkey).await, 2);
    let audit = v.vault.db().audit_log(20).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.event == "passkey_login" && e.outcome.contains("origin")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_cloned_passkey_whose_counter_went_back_is_refused_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let client = VaultClient::new(&v.url).unwrap();
    let mut pk = provider(tmp.path(), "original");
    let (params, _) = client
        .passkey_register("erin", "dev", None, &mut pk)
        .await
        .unwrap();
    std::fs::copy(
        tmp.path().join("original.sbpk"),
        tmp.path().join("clone.sbpk"),
    )
    .unwrap();
    client.passkey_login(&params, "dev", &mut pk).await.unwrap();
    client.passkey_login(&params, "dev", &mut pk).await.unwrap();
    let mut clone = provider(tmp.path(), "clone");
    match client.passkey_login(&params, "dev", &mut clone).await {
        Err(VaultError::WrongPasskey { remaining, .. }) => assert_eq!(remaining, 9),
        other => panic!("{other:?}"),
    }
    let metrics = v.vault.metrics().encode();
    assert!(
        metrics.contains("sealback_vault_passkey_surprises_total{kind=\"counter_regression\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn passkey_sign_in_names_the_account_and_its_session_can_stand_in_for_the_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let op = OperatorSigner::from_seed(&[0x5e; 32]);
    let v = passkey_vault(tmp.path(), |o| {
        o.dev_accounts = false;
        o.operator_keys = vec![op.public_key()];
        o.sessions_as_proof = true;
    })
    .await;
    let proof = |account: &str| proof_at(&op, &v, account, Scope::Register, unix_now());
    let client = VaultClient::new(&v.url).unwrap();
    let mut pk = provider(tmp.path(), "p");
    let (params, secret) = client
        .passkey_register("frank", &proof("frank"), None, &mut pk)
        .await
        .unwrap();
    let mut other = provider(tmp.path(), "other");
    client
        .passkey_register("grace", &proof("grace"), None, &mut other)
        .await
        .unwrap();
    // No account named: the passkey says whose it is.
    let session = client.passkey_signin("localhost", &mut pk).await.unwrap();
    assert_eq!(session.account, "frank");
    // The session stands in for the operator's proof, for its own account only.
    let (got, _) = client
        .passkey_login(&params, &session.token, &mut pk)
        .await
        .unwrap();
    assert_eq!(got.expose_secret(), secret.expose_secret());
    let mut graces = params.clone();
    graces.account = "grace".into();
    match client
        .passkey_login(&graces, &session.token, &mut other)
        .await
    {
        Err(VaultError::Unauthorized(_)) => {}
        other => panic!("{other:?}"),
    }
    // It adds a second passkey to the same record: both open the same slot secret.
    let mut second = provider(tmp.path(), "second");
    let (params2, secret2) = client
        .passkey_register("frank", "", Some(&session.token), &mut second)
        .await
        .unwrap();
    let mut same_share = params2.clone();
    same_share.storage_share = params.storage_share.clone();
    let (via_second, _) = client
        .passkey_login(&same_share, &session.token, &mut second)
        .await
        .unwrap();
    assert_eq!(via_second.expose_secret(), secret.expose_secret());
    assert_ne!(secret2.expose_secret(), secret.expose_secret());
    // A token that was never issued is refused.
    let forged = format!("sbs1.{}", "0".repeat(64));
    match client.passkey_login(&params, &forged, &mut pk).await {
        Err(VaultError::Unauthorized(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn without_the_operators_consent_a_session_is_no_account_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let op = OperatorSigner::from_seed(&[0x5e; 32]);
    let v = passkey_vault(tmp.path(), |o| {
        o.dev_accounts = false;
        o.operator_keys = vec![op.public_key()];
    })
    .await;
    let proof = proof_at(&op, &v, "heidi", Scope::Register, unix_now());
    let client = VaultClient::new(&v.url).unwrap();
    let mut pk = provider(tmp.path(), "p");
    let (params, _) = client
        .passkey_register("heidi", &proof, None, &mut pk)
        .await
        .unwrap();
    let session = client.passkey_signin("localhost", &mut pk).await.unwrap();
    match client.passkey_login(&params, &session.token, &mut pk).await {
        Err(VaultError::Unauthorized(m)) => assert!(m.contains("does not accept"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_request_carrying_prf_output_is_refused_and_nothing_of_it_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let mut pk = provider(tmp.path(), "p");
    let origin = passkey_origin("localhost", &v.url).unwrap();
    // A PRF output a careless client would have posted, recognisable in any encoding.
    let prf_output = [0xc3u8; 32];
    let prf_b64 = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(prf_output)
    };
    let with_prf = |mut credential: serde_json::Value| {
        credential["clientExtensionResults"]["prf"] =
            serde_json::json!({"enabled": true, "results": {"first": prf_b64}});
        credential
    };
    // Registration.
    let (_, start) = raw::post_json(
        &v.url,
        "/v1/passkey/register/start",
        &serde_json::json!({"account": "ivan", "proof": "dev"}),
    )
    .await;
    let created = pk
        .create_credential(&origin, &start["options"])
        .await
        .unwrap();
    let (status, reply) = raw::post_json(
        &v.url,
        "/v1/passkey/register/finish",
        &serde_json::json!({"session": start["session"], "credential": with_prf(created.clone())}),
    )
    .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("bad_request")),
        "{reply}"
    );
    assert!(reply["message"].as_str().unwrap().contains("PRF"));
    assert!(!reply.to_string().contains(&prf_b64));
    assert!(!v.holds("ivan", RecordKind::Passkey).await);
    // The same credential without it registers.
    let (status, _) = raw::post_json(
        &v.url,
        "/v1/passkey/register/finish",
        &serde_json::json!({"session": start["session"], "credential": created}),
    )
    .await;
    assert_eq!(status, 200);
    // Login and sign-in.
    let (_, login) = raw::post_json(
        &v.url,
        "/v1/passkey/login/start",
        &serde_json::json!({"account": "ivan"}),
    )
    .await;
    let asserted = pk.get_assertion(&origin, &login["options"]).await.unwrap();
    let (status, reply) = raw::post_json(
        &v.url,
        "/v1/passkey/login/finish",
        &serde_json::json!({"session": login["session"], "credential": with_prf(asserted)}),
    )
    .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("bad_request"))
    );
    let (_, signin) =
        raw::post_json(&v.url, "/v1/passkey/signin/start", &serde_json::json!({})).await;
    let asserted = pk.get_assertion(&origin, &signin["options"]).await.unwrap();
    let (status, reply) = raw::post_json(
        &v.url,
        "/v1/passkey/signin/finish",
        &serde_json::json!({"session": signin["session"], "credential": with_prf(asserted)}),
    )
    .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("bad_request"))
    );
    // Nothing of it in the database (file and WAL), raw or encoded, nor in the audit trail.
    drop(v);
    let mut stored = std::fs::read(tmp.path().join("vault.db")).unwrap();
    stored.extend(std::fs::read(tmp.path().join("vault.db-wal")).unwrap_or_default());
    assert!(!stored.windows(32).any(|w| w == prf_output));
    assert!(!stored
        .windows(prf_b64.len())
        .any(|w| w == prf_b64.as_bytes()));
    assert!(!String::from_utf8_lossy(&stored).contains(&hex::encode(prf_output)));
}

#[tokio::test]
async fn a_vault_without_a_relying_party_says_passkeys_are_not_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |o| o.relying_party = None).await;
    let (status, reply) = raw::post_json(
        &v.url,
        "/v1/passkey/login/start",
        &serde_json::json!({"account": "judy"}),
    )
    .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (501, Some("not_configured"))
    );
    assert_eq!(v.attempts("judy", RecordKind::Passkey).await, 0);
}

/// Nine failures, then the right passkey on the last allowed guess: the passkey record taken
/// out for that guess comes back and its count resets; the password record was never touched.
async fn the_last_guess_puts_every_record_back_when_right(
    first: &Running,
    second: &Running,
    dir: &Path,
) {
    let a = VaultClient::new(&first.url).unwrap();
    let b = VaultClient::new(&second.url).unwrap();
    let mut pk = provider(dir, "owner");
    let (params, secret) = a
        .passkey_register("kim", "dev", None, &mut pk)
        .await
        .unwrap();
    let password = sealback_vault_client::Password::new("kim's password".into());
    let password_params = a
        .register(
            "kim",
            "dev",
            &password,
            &sealback_core::ProtectorSecret::new(vec![9; 32]),
            None,
        )
        .await
        .unwrap();
    let mut stranger = provider(dir, "stranger");
    for i in 0..9 {
        let via = if i % 2 == 0 { &a } else { &b };
        match via.passkey_login(&params, "dev", &mut stranger).await {
            Err(VaultError::WrongPasskey { remaining, .. }) => assert_eq!(remaining, 9 - i),
            other => panic!("{other:?}"),
        }
    }
    // The tenth, through the other vault process: right.
    let (got, _) = b.passkey_login(&params, "dev", &mut pk).await.unwrap();
    assert_eq!(got.expose_secret(), secret.expose_secret());
    assert_eq!(second.attempts("kim", RecordKind::Passkey).await, 0);
    assert!(second.holds("kim", RecordKind::Passkey).await);
    assert!(second.holds("kim", RecordKind::Password).await);
    let opened = a.login(&password_params, &password, "").await.unwrap();
    assert_eq!(opened.expose_secret(), &[9u8; 32][..]);
}

#[tokio::test]
async fn the_last_guess_restores_every_record_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    the_last_guess_puts_every_record_back_when_right(&v, &v, tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vaults_on_one_postgresql_share_passkeys_and_the_count() {
    let pg = sealback_testkit::PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = pg.url();
    let a = start_with(
        tmp.path(),
        &url,
        passkey_options(|_| {}),
        Arc::new(SystemClock),
    )
    .await;
    let b = start_with(
        tmp.path(),
        &url,
        passkey_options(|_| {}),
        Arc::new(SystemClock),
    )
    .await;
    the_last_guess_puts_every_record_back_when_right(&a, &b, tmp.path()).await;
    // And ten failures destroy both kinds, seen from either process.
    let client = VaultClient::new(&a.url).unwrap();
    let mut pk = provider(tmp.path(), "lee");
    let (params, _) = client
        .passkey_register("lee", "dev", None, &mut pk)
        .await
        .unwrap();
    let mut stranger = provider(tmp.path(), "stranger-2");
    for _ in 0..10 {
        let _ = client.passkey_login(&params, "dev", &mut stranger).await;
    }
    match VaultClient::new(&b.url)
        .unwrap()
        .passkey_login(&params, "dev", &mut pk)
        .await
    {
        Err(VaultError::Locked) => {}
        other => panic!("{other:?}"),
    }
    assert!(!b.holds("lee", RecordKind::Passkey).await);
}

#[tokio::test]
async fn a_sign_in_records_the_counter_so_a_clone_is_caught_at_the_next_login() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let client = VaultClient::new(&v.url).unwrap();
    let mut pk = provider(tmp.path(), "original");
    let (params, _) = client
        .passkey_register("nina", "dev", None, &mut pk)
        .await
        .unwrap();
    std::fs::copy(
        tmp.path().join("original.sbpk"),
        tmp.path().join("clone.sbpk"),
    )
    .unwrap();
    // Only a sign-in by the original since the copy was made.
    let session = client.passkey_signin("localhost", &mut pk).await.unwrap();
    assert_eq!(session.account, "nina");
    let mut clone = provider(tmp.path(), "clone");
    match client.passkey_login(&params, "dev", &mut clone).await {
        Err(VaultError::WrongPasskey { remaining, .. }) => assert_eq!(remaining, 9),
        other => panic!("{other:?}"),
    }
    // The original goes on working.
    client.passkey_login(&params, "dev", &mut pk).await.unwrap();
}

#[tokio::test]
async fn a_tampered_or_swapped_passkey_record_releases_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let client = VaultClient::new(&v.url).unwrap();
    let mut alice = provider(tmp.path(), "alice");
    let (alice_params, _) = client
        .passkey_register("alice", "dev", None, &mut alice)
        .await
        .unwrap();
    let mut bob = provider(tmp.path(), "bob");
    let (bob_params, _) = client
        .passkey_register("bob", "dev", None, &mut bob)
        .await
        .unwrap();
    let c = rusqlite::Connection::open(tmp.path().join("vault.db")).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let sealed = |account: &str| -> Vec<u8> {
        c.query_row(
            "SELECT sealed FROM passkeys WHERE account = ?1",
            [account],
            |r| r.get(0),
        )
        .unwrap()
    };
    // Alice's record moved into Bob's row: it is bound to Alice and does not open as Bob's.
    let alices = sealed("alice");
    c.execute(
        "UPDATE passkeys SET sealed = ?1 WHERE account = 'bob'",
        rusqlite::params![alices],
    )
    .unwrap();
    match client.passkey_login(&bob_params, "dev", &mut bob).await {
        // 409 integrity, never a 500 (issue 14).
        Err(VaultError::Protocol(m)) => assert!(m.contains("integrity check"), "{m}"),
        other => panic!("a swapped record must release nothing: {other:?}"),
    }
    // One flipped bit in Alice's own record: it does not open either.
    let mut flipped = alices.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    c.execute(
        "UPDATE passkeys SET sealed = ?1 WHERE account = 'alice'",
        rusqlite::params![flipped],
    )
    .unwrap();
    match client.passkey_login(&alice_params, "dev", &mut alice).await {
        // 409 integrity, never a 500 (issue 14).
        Err(VaultError::Protocol(m)) => assert!(m.contains("integrity check"), "{m}"),
        other => panic!("a tampered record must release nothing: {other:?}"),
    }
    // Put back, it opens again (the refusals above were the tampering, not the setup).
    c.execute(
        "UPDATE passkeys SET sealed = ?1 WHERE account = 'alice'",
        rusqlite::params![alices],
    )
    .unwrap();
    client
        .passkey_login(&alice_params, "dev", &mut alice)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_dropped_connection_or_an_absent_vault_is_reported_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let mut pk = provider(tmp.path(), "p");
    let (params, secret) = VaultClient::new(&v.url)
        .unwrap()
        .passkey_register("olga", "dev", None, &mut pk)
        .await
        .unwrap();
    let store_before = std::fs::read(tmp.path().join("p.sbpk")).unwrap();
    // A server that accepts and hangs up at once.
    let dropper = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dropping = format!("http://{}", dropper.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((conn, _)) = dropper.accept().await {
            drop(conn);
        }
    });
    // And an address where nothing listens.
    let absent = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for url in [&dropping, &absent] {
        match VaultClient::new(url)
            .unwrap()
            .passkey_login(&params, "dev", &mut pk)
            .await
        {
            Err(VaultError::Unreachable { url: u, .. }) => assert_eq!(&u, url),
            other => panic!("{url}: {other:?}"),
        }
    }
    // Nothing was asked of the passkey and nothing was counted at the real vault.
    assert_eq!(
        std::fs::read(tmp.path().join("p.sbpk")).unwrap(),
        store_before
    );
    assert_eq!(v.attempts("olga", RecordKind::Passkey).await, 0);
    let (again, _) = VaultClient::new(&v.url)
        .unwrap()
        .passkey_login(&params, "dev", &mut pk)
        .await
        .unwrap();
    assert_eq!(again.expose_secret(), secret.expose_secret());
}

#[tokio::test]
async fn a_passkey_made_on_a_foreign_origin_is_refused_with_its_own_code() {
    let tmp = tempfile::tempdir().unwrap();
    let v = passkey_vault(tmp.path(), |_| {}).await;
    let mut pk = provider(tmp.path(), "p");
    let (_, start) = raw::post_json(
        &v.url,
        "/v1/passkey/register/start",
        &serde_json::json!({"account": "olga", "proof": "dev"}),
    )
    .await;
    // Made by a page the vault does not accept (as `sealback ui` on another origin would):
    // the client must learn that the passkey was refused (so the browser can forget it), not
    // that the vault answered strangely.
    let foreign = sealback_passkey::Url::parse("https://elsewhere.localhost").unwrap();
    let created = pk
        .create_credential(&foreign, &start["options"])
        .await
        .unwrap();
    let (status, reply) = raw::post_json(
        &v.url,
        "/v1/passkey/register/finish",
        &serde_json::json!({"session": start["session"], "credential": created}),
    )
    .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("passkey_refused")),
        "{reply}"
    );
    assert!(!v.holds("olga", RecordKind::Passkey).await);
}
