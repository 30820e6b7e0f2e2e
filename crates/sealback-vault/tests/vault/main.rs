//! The vault over real HTTP on loopback, with a real SQLite database.

use sealback_core::ProtectorSecret;
use sealback_proto::proof::{Claims, OperatorSigner, Scope};
use sealback_vault::db::{Db, RecordKind};
use sealback_vault::integrity::Integrity;
use sealback_vault::limits::RateLimit;
use sealback_vault::sealer::{Sealer, SoftwareSealer};
use sealback_vault::{SystemClock, Vault, VaultOptions};
use sealback_vault_client::{Password, VaultClient, VaultError, VaultParams};
use std::path::Path;
use std::sync::Arc;

mod attacks;
mod integrity;
mod operations;
mod passkeys;
mod rollout;

struct Running {
    url: String,
    vault: Arc<Vault>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(dir: &Path) -> Running {
    start_on(dir, &format!("sqlite:{}", dir.join("vault.db").display())).await
}

async fn start_on(dir: &Path, database: &str) -> Running {
    // Development proofs and no rate limits: these tests count guesses.
    let options = VaultOptions {
        dev_accounts: true,
        account_rate: RateLimit::OFF,
        source_rate: RateLimit::OFF,
        ..Default::default()
    };
    start_with(dir, database, options, Arc::new(SystemClock)).await
}

async fn start_with(
    dir: &Path,
    database: &str,
    options: VaultOptions,
    clock: Arc<dyn sealback_vault::Clock>,
) -> Running {
    let db = Db::open(database).await.unwrap();
    let sealer = Arc::new(SoftwareSealer::open_or_create(&dir.join("vault.key")).unwrap());
    let vault = Arc::new(Vault::new(db, sealer, options, clock).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sealback_vault::http::serve(
        listener,
        vault.clone(),
        async {
            let _ = rx.await;
        },
    ));
    Running {
        url,
        vault,
        stop: Some(tx),
    }
}

impl Running {
    /// Whether the vault holds a record of `kind` for `account`.
    async fn holds(&self, account: &str, kind: RecordKind) -> bool {
        self.vault
            .db()
            .has_record(account.into(), kind)
            .await
            .unwrap()
    }

    /// The guesses counted against `account`'s record of `kind`.
    async fn attempts(&self, account: &str, kind: RecordKind) -> u32 {
        self.vault
            .db()
            .attempts(account.into(), kind)
            .await
            .unwrap()
    }
}

/// An account proof `op` signs for `account` with `scope` at the vault `v` (its audience),
/// valid for five minutes from `now`.
fn proof_at(op: &OperatorSigner, v: &Running, account: &str, scope: Scope, now: i64) -> String {
    op.issue(&Claims {
        account: account.into(),
        scope,
        aud: Some(v.vault.id()),
        iat: now,
        exp: now + 300,
    })
}

/// Seconds since the Unix epoch, for proofs checked by a vault on the system clock.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn secret() -> ProtectorSecret {
    ProtectorSecret::new(vec![0x42; 32])
}

async fn register(v: &Running, account: &str, password: &str) -> VaultParams {
    VaultClient::new(&v.url)
        .unwrap()
        .register(
            account,
            "dev",
            &Password::new(password.into()),
            &secret(),
            None,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_right_password_releases_the_key_and_a_wrong_one_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    let params = register(&v, "alice", "correct horse").await;
    let c = VaultClient::new(&v.url).unwrap();
    let got = c
        .login(&params, &Password::new("correct horse".into()), "")
        .await
        .unwrap();
    assert_eq!(got.expose_secret(), secret().expose_secret());
    match c.login(&params, &Password::new("wrong".into()), "").await {
        Err(VaultError::WrongPassword { remaining }) => assert_eq!(remaining, 9),
        other => panic!("{other:?}"),
    }
    // A success resets the count.
    c.login(&params, &Password::new("correct horse".into()), "")
        .await
        .unwrap();
    assert_eq!(v.attempts("alice", RecordKind::Password).await, 0);
}

#[tokio::test]
async fn ten_wrong_guesses_destroy_the_record_for_good() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    let params = register(&v, "bob", "right").await;
    let c = VaultClient::new(&v.url).unwrap();
    for i in 0..10 {
        match c
            .login(&params, &Password::new(format!("guess {i}")), "")
            .await
        {
            Err(VaultError::WrongPassword { remaining }) => assert_eq!(remaining, 9 - i),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        !v.holds("bob", RecordKind::Password).await,
        "gone after the tenth wrong guess"
    );
    assert!(matches!(
        c.login(&params, &Password::new("right".into()), "").await,
        Err(VaultError::Locked)
    ));
    assert!(!v.holds("bob", RecordKind::Password).await);
}

#[tokio::test]
async fn the_tenth_guess_may_still_be_right() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    let params = register(&v, "carol", "right").await;
    let c = VaultClient::new(&v.url).unwrap();
    for i in 0..9 {
        assert!(c
            .login(&params, &Password::new(format!("guess {i}")), "")
            .await
            .is_err());
    }
    c.login(&params, &Password::new("right".into()), "")
        .await
        .unwrap();
    assert!(
        v.holds("carol", RecordKind::Password).await,
        "a right last guess keeps the record"
    );
    assert_eq!(v.attempts("carol", RecordKind::Password).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_never_exceed_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    let params = register(&v, "dave", "right").await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let url = v.url.clone();
            let params = params.clone();
            tokio::spawn(async move {
                VaultClient::new(&url)
                    .unwrap()
                    .login(&params, &Password::new(format!("g{i}")), "")
                    .await
            })
        })
        .collect();
    let mut evaluated = 0;
    let mut locked = 0;
    for t in futures::future::join_all(tasks).await {
        match t.unwrap() {
            Err(VaultError::WrongPassword { .. }) => evaluated += 1,
            Err(VaultError::Locked) => locked += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(evaluated, 10, "exactly the limit was evaluated");
    assert_eq!(locked, 190);
    assert!(!v.holds("dave", RecordKind::Password).await);
}

#[tokio::test]
async fn unknown_accounts_look_like_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    let known = register(&v, "erin", "right").await;
    let unknown = VaultParams {
        account: "nobody".into(),
        ..known.clone()
    };
    let c = VaultClient::new(&v.url).unwrap();
    let a = c.login(&known, &Password::new("x".into()), "").await;
    let b = c.login(&unknown, &Password::new("x".into()), "").await;
    assert!(
        matches!(a, Err(VaultError::WrongPassword { remaining: 9 })),
        "{a:?}"
    );
    assert!(
        matches!(b, Err(VaultError::WrongPassword { remaining: 9 })),
        "{b:?}"
    );
}

#[tokio::test]
async fn a_vault_with_another_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a_dir = tmp.path().join("a");
    let b_dir = tmp.path().join("b");
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let a = start(&a_dir).await;
    let b = start(&b_dir).await;
    let params = register(&a, "frank", "pw").await;
    // An impostor registered the same account and password on its own vault.
    register(&b, "frank", "pw").await;
    let moved = params.clone();
    let r = VaultClient::new(&b.url)
        .unwrap()
        .login(&moved, &Password::new("pw".into()), "")
        .await;
    assert!(matches!(r, Err(VaultError::PinMismatch { .. })), "{r:?}");
    // Registering against a pinned key also refuses another vault.
    let r = VaultClient::new(&b.url)
        .unwrap()
        .register(
            "frank",
            "dev",
            &Password::new("pw".into()),
            &secret(),
            Some(&params.server_public_key),
        )
        .await;
    assert!(matches!(r, Err(VaultError::PinMismatch { .. })), "{r:?}");
}

#[tokio::test]
async fn the_database_alone_reveals_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    register(&v, "grace", "a long and unusual password").await;
    let c = VaultClient::new(&v.url).unwrap();
    let params = register(&v, "heidi", "another password").await;
    c.login(&params, &Password::new("nope".into()), "")
        .await
        .unwrap_err();
    drop(v);
    let mut dump = std::fs::read(tmp.path().join("vault.db")).unwrap();
    if let Ok(wal) = std::fs::read(tmp.path().join("vault.db-wal")) {
        dump.extend(wal);
    }
    for needle in [
        b"a long and unusual password".as_slice(),
        b"another password",
        &[0x42; 16],
    ] {
        assert!(
            !dump.windows(needle.len()).any(|w| w == needle),
            "found {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // Every stored record and the server setup are sealed: the vault's key opens them, any
    // other key does not, so a copy of the database allows no offline guessing.
    let conn = rusqlite::Connection::open(tmp.path().join("vault.db")).unwrap();
    let real = SoftwareSealer::open_or_create(&tmp.path().join("vault.key")).unwrap();
    let other = SoftwareSealer::open_or_create(&tmp.path().join("other.key")).unwrap();
    let mut stmt = conn
        .prepare("SELECT account, sealed FROM records ORDER BY account")
        .unwrap();
    let records: Vec<(String, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    let integrity = |key: &str| {
        Integrity::new(Arc::new(
            SoftwareSealer::open_or_create(&tmp.path().join(key)).unwrap(),
        ))
    };
    let (bound, other_bound) = (integrity("vault.key"), integrity("other.key"));
    for (account, blob) in &records {
        assert!(bound
            .open_record(RecordKind::Password, account, blob)
            .is_some());
        assert!(other_bound
            .open_record(RecordKind::Password, account, blob)
            .is_none());
        assert!(
            bound
                .open_record(RecordKind::Password, "mallory", blob)
                .is_none(),
            "a record moved to another account does not open"
        );
        assert!(
            bound
                .open_record(RecordKind::Passkey, account, blob)
                .is_none(),
            "a record moved to another kind does not open"
        );
    }
    let setup: Vec<u8> = conn
        .query_row("SELECT sealed FROM setup", [], |r| r.get(0))
        .unwrap();
    assert!(real
        .open(b"sealback vault 2026-11-25 server setup", &setup)
        .is_some());
    assert!(other
        .open(b"sealback vault 2026-11-25 server setup", &setup)
        .is_none());
}

/// Two vault instances, each with its own connection pool, on one PostgreSQL: the limit holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vaults_on_one_postgresql_share_the_limit() {
    let pg = sealback_testkit::PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let a = start_on(tmp.path(), &pg.url()).await;
    let b = start_on(tmp.path(), &pg.url()).await;
    assert_eq!(
        a.vault.info().server_public_key,
        b.vault.info().server_public_key,
        "one server setup"
    );
    let params = register(&a, "ivan", "right").await;
    let ok = VaultClient::new(&b.url)
        .unwrap()
        .login(&params.clone(), &Password::new("right".into()), "")
        .await
        .unwrap();
    assert_eq!(ok.expose_secret(), secret().expose_secret());
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let url = if i % 2 == 0 {
                a.url.clone()
            } else {
                b.url.clone()
            };
            let params = params.clone();
            tokio::spawn(async move {
                VaultClient::new(&url)
                    .unwrap()
                    .login(&params, &Password::new(format!("g{i}")), "")
                    .await
            })
        })
        .collect();
    let mut evaluated = 0;
    for t in futures::future::join_all(tasks).await {
        match t.unwrap() {
            Err(VaultError::WrongPassword { .. }) => evaluated += 1,
            Err(VaultError::Locked) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(evaluated, 10);
    assert!(!a.holds("ivan", RecordKind::Password).await);
}

/// Records sealed by a key inside a PKCS#11 token: the database and the token's files together
/// hold no password, no released key, and the sealing key cannot be read out of the token.
#[tokio::test]
async fn records_sealed_by_an_hsm_key() {
    use sealback_vault::sealer::Pkcs11Sealer;
    let hsm = sealback_testkit::SoftHsm::shared();
    hsm.init_token("vault-test", "4321");
    let tmp = tempfile::tempdir().unwrap();
    let sealer = Arc::new(
        Pkcs11Sealer::open(
            Path::new(sealback_testkit::SOFTHSM_MODULE),
            "vault-test",
            "4321",
        )
        .unwrap(),
    );
    assert!(sealer.describe().contains("PKCS#11"));
    let db = Db::open(&format!("sqlite:{}", tmp.path().join("vault.db").display()))
        .await
        .unwrap();
    let vault = Arc::new(
        Vault::new(
            db,
            sealer.clone(),
            VaultOptions {
                dev_accounts: true,
                ..Default::default()
            },
            Arc::new(SystemClock),
        )
        .await
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sealback_vault::http::serve(
        listener,
        vault.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let c = VaultClient::new(&url).unwrap();
    let params = c
        .register(
            "judy",
            "dev",
            &Password::new("hsm protected password".into()),
            &secret(),
            None,
        )
        .await
        .unwrap();
    let got = c
        .login(&params, &Password::new("hsm protected password".into()), "")
        .await
        .unwrap();
    assert_eq!(got.expose_secret(), secret().expose_secret());
    let _ = tx.send(());
    // Sealed blobs open only through the token, each under a key of its own derived there.
    integrity::seals_under_a_key_per_value(sealer.as_ref());
    let blob = sealer.seal(b"ctx", b"payload");
    assert_eq!(sealer.open(b"ctx", &blob).unwrap(), b"payload");
    assert!(sealer.open(b"other ctx", &blob).is_none());
    let software = SoftwareSealer::open_or_create(&tmp.path().join("guess.key")).unwrap();
    assert!(software.open(b"ctx", &blob).is_none());
    // A dump of the database and of the token directory.
    let mut dump = std::fs::read(tmp.path().join("vault.db")).unwrap();
    if let Ok(wal) = std::fs::read(tmp.path().join("vault.db-wal")) {
        dump.extend(wal);
    }
    let mut stack = vec![hsm.tokens.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                dump.extend(std::fs::read(p).unwrap())
            }
        }
    }
    for needle in [b"hsm protected password".as_slice(), &[0x42; 16]] {
        assert!(
            !dump.windows(needle.len()).any(|w| w == needle),
            "found {:?} in the dump",
            String::from_utf8_lossy(needle)
        );
    }
}

/// Over TLS: a client that trusts the vault's certificate works; one that does not refuses it.
#[tokio::test]
async fn tls_with_a_trusted_certificate_and_refusal_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let db = Db::open(&format!("sqlite:{}", tmp.path().join("vault.db").display()))
        .await
        .unwrap();
    let sealer = Arc::new(SoftwareSealer::open_or_create(&tmp.path().join("vault.key")).unwrap());
    let vault = Arc::new(
        Vault::new(
            db,
            sealer,
            VaultOptions {
                dev_accounts: true,
                ..Default::default()
            },
            Arc::new(SystemClock),
        )
        .await
        .unwrap(),
    );
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        sealback_vault::http::serve_tls(
            "127.0.0.1:0".parse().unwrap(),
            vault,
            &cert,
            &key,
            move |a| bound_tx.send(a).unwrap(),
            async {
                let _ = stop_rx.await;
            },
        )
        .await
        .unwrap()
    });
    let addr = bound_rx.await.unwrap();
    let url = format!("https://127.0.0.1:{}", addr.port());
    let trusting = VaultClient::with_ca(&url, Some(ck.cert.pem().as_bytes())).unwrap();
    let params = trusting
        .register("liam", "dev", &Password::new("pw".into()), &secret(), None)
        .await
        .unwrap();
    assert_eq!(
        trusting
            .login(&params, &Password::new("pw".into()), "")
            .await
            .unwrap()
            .expose_secret(),
        secret().expose_secret()
    );
    // Another CA (a vault impersonated with another certificate) is refused before any guess.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let wary = VaultClient::with_ca(&url, Some(other.cert.pem().as_bytes())).unwrap();
    assert!(matches!(
        wary.login(&params, &Password::new("pw".into()), "").await,
        Err(VaultError::Unreachable { .. })
    ));
    let _ = stop_tx.send(());
}
