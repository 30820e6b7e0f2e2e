//! Account proofs, rate limits, the audit monitor and the metrics, with the clock driven by the
//! test.

use super::{secret, start_with, Running};
use opaque_ke::ClientLogin;
use sealback_proto::proof::{Claims, OperatorSigner, Scope};
use sealback_proto::Suite;
use sealback_vault::db::RecordKind;
use sealback_vault::limits::RateLimit;
use sealback_vault::monitor::MonitorOptions;
use sealback_vault::{Clock, VaultOptions};
use sealback_vault_client::{Password, VaultClient, VaultError};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A clock the test moves.
struct TestClock(AtomicI64);
impl TestClock {
    fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}
impl Clock for TestClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

const T0: i64 = 1_800_000_000;

/// A proof for `account` at the vault `v`, issued now by the test's clock.
fn proof(
    op: &OperatorSigner,
    v: &Running,
    account: &str,
    scope: Scope,
    clock: &TestClock,
) -> String {
    super::proof_at(op, v, account, scope, clock.now_unix())
}

async fn operator_vault(
    dir: &std::path::Path,
    op: &OperatorSigner,
    clock: Arc<TestClock>,
    tune: impl FnOnce(&mut VaultOptions),
) -> Running {
    let mut options = VaultOptions {
        operator_keys: vec![op.public_key()],
        ..Default::default()
    };
    tune(&mut options);
    start_with(
        dir,
        &format!("sqlite:{}", dir.join("vault.db").display()),
        options,
        clock,
    )
    .await
}

#[tokio::test]
async fn a_vault_without_an_operator_key_refuses_to_start_outside_dev_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let db = sealback_vault::db::Db::open(&format!("sqlite:{}", tmp.path().join("v.db").display()))
        .await
        .unwrap();
    let sealer = Arc::new(
        sealback_vault::sealer::SoftwareSealer::open_or_create(&tmp.path().join("k")).unwrap(),
    );
    let err = sealback_vault::Vault::new(
        db,
        sealer,
        VaultOptions::default(),
        Arc::new(sealback_vault::SystemClock),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("operator"), "{err}");
}

fn refused<T>(r: Result<T, VaultError>, why: &str) {
    match r {
        Err(VaultError::Unauthorized(m)) => assert!(m.contains(why), "{m}"),
        other => panic!("expected a refusal ({why}), got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn account_proofs_gate_registration_and_login() {
    let tmp = tempfile::tempdir().unwrap();
    let (op, _) = OperatorSigner::generate();
    let (stranger, _) = OperatorSigner::generate();
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let v = operator_vault(tmp.path(), &op, clock.clone(), |_| {}).await;
    let c = VaultClient::new(&v.url).unwrap();
    let pw = Password::new("a good password".into());

    refused(
        c.register("olivia", "", &pw, &secret(), None).await,
        "required",
    );
    let login_only = proof(&op, &v, "olivia", Scope::Login, &clock);
    refused(
        c.register("olivia", &login_only, &pw, &secret(), None)
            .await,
        "login-only",
    );
    let forged = proof(&stranger, &v, "olivia", Scope::Register, &clock);
    refused(
        c.register("olivia", &forged, &pw, &secret(), None).await,
        "not signed",
    );
    let for_other = proof(&op, &v, "mallory", Scope::Register, &clock);
    refused(
        c.register("olivia", &for_other, &pw, &secret(), None).await,
        "another account",
    );
    assert!(!v.holds("olivia", RecordKind::Password).await);

    let register = proof(&op, &v, "olivia", Scope::Register, &clock);
    let params = c
        .register("olivia", &register, &pw, &secret(), None)
        .await
        .unwrap();

    // A login without a proof, or with someone else's, spends no guess.
    refused(c.login(&params, &pw, "").await, "required");
    refused(c.login(&params, &pw, &for_other).await, "another account");
    assert_eq!(v.attempts("olivia", RecordKind::Password).await, 0);

    let got = c.login(&params, &pw, &login_only).await.unwrap();
    assert_eq!(got.expose_secret(), secret().expose_secret());

    // Proofs expire.
    clock.advance(301);
    refused(c.login(&params, &pw, &login_only).await, "expired");
    let fresh = proof(&op, &v, "olivia", Scope::Login, &clock);
    c.login(&params, &pw, &fresh).await.unwrap();
}

fn ke1() -> Vec<u8> {
    let start = ClientLogin::<Suite>::start(&mut rand08::rngs::OsRng, b"x").unwrap();
    start.message.serialize().to_vec()
}

/// Posts a login start directly, to see the status and headers.
async fn raw_login_start(url: &str, account: &str, proof: &str) -> reqwest::Response {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
        .post(format!("{url}/v1/login/start"))
        .json(&sealback_proto::LoginStart {
            account: account.into(),
            proof: proof.into(),
            request: ke1(),
        })
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rate_limits_per_account_and_per_address_follow_the_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let (op, _) = OperatorSigner::generate();
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let v = operator_vault(tmp.path(), &op, clock.clone(), |o| {
        o.account_rate = RateLimit { per_minute: 3 };
        o.source_rate = RateLimit { per_minute: 8 };
    })
    .await;
    let c = VaultClient::new(&v.url).unwrap();
    let pw = Password::new("pw".into());
    let reg = proof(&op, &v, "pat", Scope::Register, &clock);
    let params = c.register("pat", &reg, &pw, &secret(), None).await.unwrap();
    let wrong = Password::new("wrong".into());
    for _ in 0..3 {
        assert!(matches!(
            c.login(&params, &wrong, &reg).await,
            Err(VaultError::WrongPassword { .. })
        ));
    }
    // The fourth within the minute is refused before it is counted.
    let r = raw_login_start(&v.url, "pat", &reg).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    let body: sealback_proto::ErrorReply = r.json().await.unwrap();
    assert_eq!(body.error, "rate_limited");
    assert_eq!(body.retry_after_seconds, Some(retry));
    assert_eq!(v.attempts("pat", RecordKind::Password).await, 3);
    // After the wait, one more (the right one) goes through.
    clock.advance(retry as i64);
    c.login(&params, &pw, &reg).await.unwrap();

    // Per address: after a full minute the budget is 8 requests, whichever accounts they name.
    clock.advance(60);
    for i in 0..8 {
        let account = format!("q{i}");
        let p = proof(&op, &v, &account, Scope::Login, &clock);
        assert_eq!(raw_login_start(&v.url, &account, &p).await.status(), 200);
    }
    let p = proof(&op, &v, "q8", Scope::Login, &clock);
    assert_eq!(
        raw_login_start(&v.url, "q8", &p).await.status(),
        429,
        "the address's budget is spent"
    );
    clock.advance(60);
    assert_eq!(raw_login_start(&v.url, "q8", &p).await.status(), 200);
}

#[tokio::test]
async fn bursts_and_many_account_guessing_are_flagged_in_the_audit_trail_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let (op, _) = OperatorSigner::generate();
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let v = operator_vault(tmp.path(), &op, clock.clone(), |o| {
        o.account_rate = RateLimit::OFF;
        o.monitor = MonitorOptions {
            burst_attempts: 6,
            burst_window: 60,
            many_accounts: 3,
            accounts_window: 600,
        };
    })
    .await;
    let c = VaultClient::new(&v.url).unwrap();
    let pw = Password::new("pw".into());
    let reg = proof(&op, &v, "rita", Scope::Register, &clock);
    let params = c
        .register("rita", &reg, &pw, &secret(), None)
        .await
        .unwrap();
    c.login(&params, &pw, &reg).await.unwrap();
    let wrong = Password::new("nope".into());
    assert!(c.login(&params, &wrong, &reg).await.is_err());
    // Two logins so far: quiet.
    let flags = |log: &[sealback_vault::db::AuditEntry]| {
        log.iter()
            .filter(|e| e.event == "flag")
            .map(|e| e.outcome.clone())
            .collect::<Vec<_>>()
    };
    assert!(flags(&v.vault.db().audit_log(100).await.unwrap()).is_empty());

    // Spraying unknown accounts (without valid proofs, even) from one address.
    for name in ["sam", "tess", "uma"] {
        let r = raw_login_start(&v.url, name, "").await;
        assert_eq!(r.status(), 403);
    }
    let log = v.vault.db().audit_log(100).await.unwrap();
    assert_eq!(flags(&log), vec!["many_accounts"]);
    // And a burst: 7 attempts within the minute.
    for _ in 0..2 {
        raw_login_start(&v.url, "rita", "").await;
    }
    let log = v.vault.db().audit_log(100).await.unwrap();
    assert_eq!(flags(&log), vec!["burst", "many_accounts"]);
    let burst = log.iter().find(|e| e.outcome == "burst").unwrap();
    assert_eq!(burst.source.as_deref(), Some("127.0.0.1"));
    // Each flag is raised once per window.
    raw_login_start(&v.url, "vera", "").await;
    assert_eq!(flags(&v.vault.db().audit_log(100).await.unwrap()).len(), 2);
    // The trail has the outcomes and what was left, from where; never the password. (A wrong
    // password is found out by the client, which then sends no finish: the counted start is
    // the record of it.)
    let outcomes: Vec<_> = log
        .iter()
        .rev()
        .filter(|e| e.event != "flag")
        .map(|e| (e.event.as_str(), e.outcome.as_str(), e.remaining))
        .take(5)
        .collect();
    assert_eq!(
        outcomes,
        vec![
            // Issue 14: a registration start evaluates the OPRF, so it is audited.
            ("register_start", "evaluated", None),
            ("register", "ok", None),
            ("login", "counted", Some(9)),
            ("login", "ok", None),
            ("login", "counted", Some(9)),
        ]
    );
    assert!(log
        .iter()
        .filter(|e| e.event == "login")
        .all(|e| e.source.as_deref() == Some("127.0.0.1")));
    assert!(!format!("{log:?}").contains("nope"));

    // The metrics listener shows the same story, without accounts or addresses.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = sealback_vault::http::metrics_router(v.vault.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line).map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("{line} missing in\n{text}"))
    };
    assert_eq!(value("sealback_vault_logins_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(
        value("sealback_vault_logins_total{outcome=\"counted\"}"),
        2.0
    );
    assert_eq!(
        value("sealback_vault_logins_total{outcome=\"unauthorized\"}"),
        6.0
    );
    assert_eq!(
        value("sealback_vault_audit_flags_total{kind=\"burst\"}"),
        1.0
    );
    assert_eq!(
        value("sealback_vault_registrations_total{outcome=\"ok\"}"),
        1.0
    );
    assert!(text.contains("sealback_vault_request_seconds_bucket{"));
    assert!(!text.contains("rita") && !text.contains("127.0.0.1"));
}

#[test]
fn limits_key_ipv6_clients_by_their_64_and_mapped_ipv4_by_the_address() {
    use sealback_vault::http::source_key;
    let key = |s: &str| source_key(&s.parse().unwrap());
    assert_eq!(key("203.0.113.7:5000"), "203.0.113.7");
    assert_eq!(key("[::ffff:203.0.113.7]:5000"), "203.0.113.7");
    assert_eq!(
        key("[2001:db8:1:2:aaaa::1]:443"),
        key("[2001:db8:1:2:ffff:1:2:3]:443"),
        "one /64, one budget"
    );
    assert_eq!(key("[2001:db8:1:2::1]:443"), "2001:db8:1:2::/64");
    assert_ne!(key("[2001:db8:1:3::1]:443"), key("[2001:db8:1:2::1]:443"));
}

#[test]
fn a_rate_limiter_refills_at_its_rate_and_never_above_its_burst() {
    let limiter = sealback_vault::limits::RateLimiter::new(RateLimit { per_minute: 2 });
    assert!(limiter.check("a", T0).is_ok());
    assert!(limiter.check("a", T0).is_ok());
    assert_eq!(limiter.check("a", T0), Err(30), "one token every 30 s");
    assert!(limiter.check("b", T0).is_ok(), "keys are independent");
    assert!(limiter.check("a", T0 + 30).is_ok());
    // A long idle time refills to the burst, not beyond.
    for _ in 0..2 {
        assert!(limiter.check("a", T0 + 10_000).is_ok());
    }
    assert!(limiter.check("a", T0 + 10_000).is_err());
    let off = sealback_vault::limits::RateLimiter::new(RateLimit::OFF);
    assert!((0..1000).all(|_| off.check("x", T0).is_ok()));
}

#[tokio::test]
async fn an_expired_login_session_is_refused_and_its_guess_stays_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let (op, _) = OperatorSigner::generate();
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let v = operator_vault(tmp.path(), &op, clock.clone(), |_| {}).await;
    let reg = proof(&op, &v, "wes", Scope::Register, &clock);
    VaultClient::new(&v.url)
        .unwrap()
        .register("wes", &reg, &Password::new("pw".into()), &secret(), None)
        .await
        .unwrap();
    let r = raw_login_start(&v.url, "wes", &reg).await;
    assert_eq!(r.status(), 200);
    let started: sealback_proto::LoginStartReply = r.json().await.unwrap();
    clock.advance(VaultOptions::default().session_ttl + 1);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/login/finish", v.url))
        .json(&sealback_proto::LoginFinish {
            session: started.session,
            finalization: vec![0; 64],
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let body: sealback_proto::ErrorReply = r.json().await.unwrap();
    assert_eq!(body.error, "session_expired");
    assert_eq!(v.attempts("wes", RecordKind::Password).await, 1);
}

/// Issue 14 item 1: a `register` proof named no vault, so whoever saw one at vault A (its
/// operator, its logs, a relay) could replace the account's record at vault B, which trusts
/// the same operator key: the owner's key at B is gone.
#[tokio::test]
async fn a_register_proof_for_one_vault_is_refused_by_another() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (op, _) = OperatorSigner::generate();
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let a = operator_vault(dir_a.path(), &op, clock.clone(), |_| {}).await;
    let b = operator_vault(dir_b.path(), &op, clock.clone(), |_| {}).await;
    let pw = Password::new("olivia's password".into());
    let at_b = VaultClient::new(&b.url).unwrap();
    let for_b = proof(&op, &b, "olivia", Scope::Register, &clock);
    let params = at_b
        .register("olivia", &for_b, &pw, &secret(), None)
        .await
        .unwrap();
    // A proof the operator issued for vault A, replayed at vault B.
    let for_a = proof(&op, &a, "olivia", Scope::Register, &clock);
    VaultClient::new(&a.url)
        .unwrap()
        .register("olivia", &for_a, &pw, &secret(), None)
        .await
        .unwrap();
    let attacker = Password::new("the attacker's".into());
    let other = sealback_core::ProtectorSecret::new(vec![0x66; 32]);
    let replayed = at_b
        .register("olivia", &for_a, &attacker, &other, None)
        .await;
    refused(replayed, "another key vault");
    // A version 1 proof names no vault: refused for registration everywhere (fail closed) ...
    let now = clock.now_unix();
    let unbound = |scope| {
        op.issue(&Claims {
            account: "olivia".into(),
            scope,
            aud: None,
            iat: now,
            exp: now + 300,
        })
    };
    assert!(unbound(Scope::Register).starts_with("sbp1."));
    let replayed = at_b
        .register("olivia", &unbound(Scope::Register), &attacker, &other, None)
        .await;
    refused(replayed, "names no key vault");
    // ... and still accepted for logins, while operators move to version 2.
    let got = at_b
        .login(&params, &pw, &unbound(Scope::Login))
        .await
        .unwrap();
    assert_eq!(got.expose_secret(), secret().expose_secret());
    // The owner's record at B is untouched, and B's own proofs work.
    let login = proof(&op, &b, "olivia", Scope::Login, &clock);
    let got = at_b.login(&params, &pw, &login).await.unwrap();
    assert_eq!(got.expose_secret(), secret().expose_secret());
}
