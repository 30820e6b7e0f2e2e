//! Issue 14, item 5: a database writer edits the vault's rows between guesses (SQLite file and
//! PostgreSQL rows, changed directly, with the vault running) and gains nothing: a count
//! lowered in place, a counter row deleted, records swapped between accounts and an older record
//! put back after a re-registration are each refused (409 `integrity`, audited), and nothing is
//! evaluated against them. Also: sealing under a key per value, and the upgrade of an old
//! database.

use super::{start, start_on, Running};
use sealback_testkit::vault_attacker as raw;
use sealback_vault::db::RecordKind;
use sealback_vault::integrity::Integrity;
use sealback_vault::sealer::{Sealer, SoftwareSealer};
use std::path::Path;
use std::sync::Arc;

/// Direct access to the vault's database, as someone who can write to it has.
enum Writer {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl Writer {
    async fn open(dir: &Path, pg_url: Option<&str>) -> Self {
        match pg_url {
            None => Writer::Sqlite(rusqlite::Connection::open(dir.join("vault.db")).unwrap()),
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                Writer::Postgres(client)
            }
        }
    }

    /// Runs one statement (no parameters).
    async fn execute(&self, sql: &str) -> u64 {
        match self {
            Writer::Sqlite(c) => c.execute(sql, []).unwrap() as u64,
            Writer::Postgres(c) => c.execute(sql, &[]).await.unwrap(),
        }
    }

    /// The sealed password record of `account`.
    async fn record(&self, account: &str) -> Vec<u8> {
        let sql = "SELECT sealed FROM records WHERE account = ";
        match self {
            Writer::Sqlite(c) => c
                .query_row(&format!("{sql}?1"), [account], |r| r.get(0))
                .unwrap(),
            Writer::Postgres(c) => c
                .query_one(&format!("{sql}$1"), &[&account])
                .await
                .unwrap()
                .get(0),
        }
    }

    /// Replaces the sealed password record of `account`.
    async fn put_record(&self, account: &str, sealed: &[u8]) {
        let sql = "UPDATE records SET sealed = ";
        let changed = match self {
            Writer::Sqlite(c) => c
                .execute(
                    &format!("{sql}?2 WHERE account = ?1"),
                    rusqlite::params![account, sealed],
                )
                .unwrap() as u64,
            Writer::Postgres(c) => c
                .execute(&format!("{sql}$2 WHERE account = $1"), &[&account, &sealed])
                .await
                .unwrap(),
        };
        assert_eq!(changed, 1);
    }
}

/// `account` registered with `password`, then `wrong` wrong guesses.
async fn registered_and_guessed(v: &Running, account: &str, password: &str, wrong: usize) {
    raw::register(&v.url, account, password.as_bytes()).await;
    for i in 0..wrong {
        let (status, reply) = raw::login(&v.url, account, format!("guess {i}").as_bytes()).await;
        assert_eq!(status, 401, "{reply}");
    }
}

/// The next login of `account` is refused as tampered: 409 `integrity`, audited, and its count
/// (as stored) is not moved by the refused attempt.
async fn refused_as_tampered(v: &Running, account: &str, password: &str) {
    let (status, reply) = raw::login(&v.url, account, password.as_bytes()).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("integrity")),
        "the edited database was believed: {reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("integrity check"),
        "{reply}"
    );
    let log = v.vault.db().audit_log(1000).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.account == account && e.event == "integrity"),
        "the refusal is not in the audit trail"
    );
    // Every later attempt is refused too (the account is treated as at its limit).
    let (status, _) = raw::login(&v.url, account, b"another guess").await;
    assert_eq!(status, 409);
}

/// The four edits, each on its own account, against one vault and its database.
async fn every_edit_is_refused(v: &Running, db: &Writer) {
    // A count set lower in place.
    registered_and_guessed(v, "lowered", "lowered's password", 3).await;
    db.execute("UPDATE guesses SET count = 0 WHERE account = 'lowered' AND kind = 1")
        .await;
    refused_as_tampered(v, "lowered", "guess").await;

    // The counter row deleted while the record stays.
    registered_and_guessed(v, "deleted", "deleted's password", 3).await;
    assert_eq!(
        db.execute("DELETE FROM guesses WHERE account = 'deleted'")
            .await,
        1
    );
    refused_as_tampered(v, "deleted", "guess").await;

    // Two accounts' records swapped: each record now sits under the other account.
    registered_and_guessed(v, "swap-a", "a's password", 0).await;
    registered_and_guessed(v, "swap-b", "b's password", 9).await;
    let (a, b) = (db.record("swap-a").await, db.record("swap-b").await);
    db.put_record("swap-a", &b).await;
    db.put_record("swap-b", &a).await;
    refused_as_tampered(v, "swap-a", "b's password").await;
    refused_as_tampered(v, "swap-b", "a's password").await;

    // An older record put back after a re-registration (its old password, its old count).
    registered_and_guessed(v, "restored", "old password", 0).await;
    let old = db.record("restored").await;
    raw::register(&v.url, "restored", b"new password").await;
    db.put_record("restored", &old).await;
    refused_as_tampered(v, "restored", "old password").await;
}

#[tokio::test]
async fn a_sqlite_writer_cannot_lower_delete_swap_or_restore_a_count_or_record() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    let db = Writer::open(tmp.path(), None).await;
    every_edit_is_refused(&v, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_writer_cannot_lower_delete_swap_or_restore_a_count_or_record() {
    let pg = sealback_testkit::PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let v = start_on(tmp.path(), &pg.url()).await;
    let db = Writer::open(tmp.path(), Some(&pg.url())).await;
    every_edit_is_refused(&v, &db).await;
}

/// Deleting the marker that says the database was upgraded (to have a put-back old-format
/// record upgraded as if new) stops the vault from starting on that database.
#[tokio::test]
async fn a_deleted_integrity_marker_stops_the_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    registered_and_guessed(&v, "mara", "mara's password", 2).await;
    drop(v);
    let db = Writer::open(tmp.path(), None).await;
    assert_eq!(db.execute("DELETE FROM integrity").await, 1);
    let database = format!("sqlite:{}", tmp.path().join("vault.db").display());
    let sealer = Arc::new(SoftwareSealer::open_or_create(&tmp.path().join("vault.key")).unwrap());
    let refused = sealback_vault::Vault::new(
        sealback_vault::db::Db::open(&database).await.unwrap(),
        sealer,
        sealback_vault::VaultOptions {
            dev_accounts: true,
            ..Default::default()
        },
        Arc::new(sealback_vault::SystemClock),
    )
    .await;
    let err = refused
        .err()
        .expect("the vault started on an edited database");
    assert!(err.to_string().contains("integrity check"), "{err}");
}

/// A database written before bound records and tagged counters (records sealed in version 1 under
/// the account alone, untagged counts) is upgraded once at start: its record still logs in, its
/// count is kept, and afterwards it is stored bound and tagged.
#[tokio::test]
async fn an_old_database_is_upgraded_at_start_and_keeps_its_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start(tmp.path()).await;
    registered_and_guessed(&v, "olive", "olive's password", 0).await;
    drop(v);
    // Turn the database back into what the vault of 2026-12-01 wrote.
    let db = Writer::open(tmp.path(), None).await;
    let software = SoftwareSealer::open_or_create(&tmp.path().join("vault.key")).unwrap();
    let plain = Integrity::new(Arc::new(
        SoftwareSealer::open_or_create(&tmp.path().join("vault.key")).unwrap(),
    ))
    .open_record(RecordKind::Password, "olive", &db.record("olive").await)
    .unwrap();
    let old = software.seal_v1(b"sealback vault 2026-11-25 record:olive", &plain);
    db.put_record("olive", &old).await;
    db.execute("UPDATE guesses SET count = 4, generation = NULL, mac = NULL")
        .await;
    db.execute("DELETE FROM integrity").await;

    let v = start(tmp.path()).await;
    let (status, reply) = raw::login(&v.url, "olive", b"wrong").await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(
        reply["attempts_remaining"], 5,
        "the old count of 4 was kept"
    );
    let (status, reply) = raw::login(&v.url, "olive", b"olive's password").await;
    assert_eq!(status, 200, "{reply}");
    let stored = db.record("olive").await;
    assert_eq!(stored[0], sealback_vault::integrity::BOUND_RECORD_V1);
    assert_eq!(stored[17], sealback_vault::sealer::SEALED_V2);
}

/// Version-2 sealing: every value under a key of its own (a random salt, the context in the
/// derivation), so equal plaintexts never share a key or a nonce; version-1 values still open;
/// a value does not open under another context, another key, or with a changed byte.
pub(crate) fn seals_under_a_key_per_value(sealer: &dyn Sealer) {
    let a = sealer.seal(b"ctx", b"payload");
    let b = sealer.seal(b"ctx", b"payload");
    assert_eq!(a[0], sealback_vault::sealer::SEALED_V2);
    assert_ne!(a[1..33], b[1..33], "a fresh salt per value");
    assert_ne!(a[33..], b[33..]);
    assert_eq!(sealer.open(b"ctx", &a).unwrap(), b"payload");
    assert!(sealer.open(b"other ctx", &a).is_none());
    let mut flipped = a.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(sealer.open(b"ctx", &flipped).is_none());
    assert_eq!(sealer.prf(b"x"), sealer.prf(b"x"));
    assert_ne!(sealer.prf(b"x"), sealer.prf(b"y"));
}

#[test]
fn the_software_sealer_seals_under_a_key_per_value_and_still_opens_version_1() {
    let tmp = tempfile::tempdir().unwrap();
    let sealer = SoftwareSealer::open_or_create(&tmp.path().join("k")).unwrap();
    seals_under_a_key_per_value(&sealer);
    let old = sealer.seal_v1(b"ctx", b"old payload");
    assert_eq!(sealer.open(b"ctx", &old).unwrap(), b"old payload");
    let other = SoftwareSealer::open_or_create(&tmp.path().join("other")).unwrap();
    assert!(other.open(b"ctx", &sealer.seal(b"ctx", b"p")).is_none());
    assert_ne!(sealer.prf(b"x"), other.prf(b"x"));
}

/// A test CA and a certificate for 127.0.0.1 it signed: (CA PEM, server certificate PEM, server
/// key PEM).
fn test_ca_and_server_certificate() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sealback test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    server
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let server = server.signed_by(&server_key, &ca).unwrap();
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

/// PostgreSQL with TLS on, its certificate signed by a test CA; returns the server and the CA.
fn postgresql_with_tls() -> (sealback_testkit::PgServer, String) {
    let (ca, cert, key) = test_ca_and_server_certificate();
    let pg = sealback_testkit::PgServer::start_with(
        &[
            ("server.crt", cert.as_bytes()),
            ("server.key", key.as_bytes()),
        ],
        "-c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
    );
    (pg, ca)
}

/// The vault's error opening `url`.
async fn refused(url: &str) -> String {
    match sealback_vault::db::Db::open(url).await {
        Ok(_) => panic!("the vault connected to {url}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_reaches_postgresql_only_over_tls_verified_against_its_ca() {
    let (pg, ca) = postgresql_with_tls();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("ca.pem"), &ca).unwrap();
    let tls_url = |ca_file: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslrootcert={}",
            pg.port(),
            tmp.path().join(ca_file).display()
        )
    };
    // Connects over TLS, and logins work.
    let v = start_on(tmp.path(), &tls_url("ca.pem")).await;
    registered_and_guessed(&v, "tess", "tess's password", 1).await;
    let (status, reply) = raw::login(&v.url, "tess", b"tess's password").await;
    assert_eq!(status, 200, "{reply}");
    let observer = Writer::open(tmp.path(), Some(&pg.url())).await;
    let Writer::Postgres(observer) = observer else {
        unreachable!()
    };
    let row = observer
        .query_one(
            "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let (connections, all_tls): (i64, bool) = (row.get(0), row.get(1));
    assert!(connections >= 1);
    assert!(all_tls, "a vault connection to PostgreSQL is not TLS");

    // A server whose certificate is not from the configured CA.
    let (other_ca, _, _) = test_ca_and_server_certificate();
    std::fs::write(tmp.path().join("other-ca.pem"), other_ca).unwrap();
    let err = refused(&tls_url("other-ca.pem")).await;
    assert!(err.contains("TLS handshake"), "{err}");
    assert!(err.contains("invalid peer certificate"), "{err}");
    // A configured CA that cannot be read is an error, not a fallback.
    let err = refused(&tls_url("missing.pem")).await;
    assert!(err.contains("cannot use the database CA"), "{err}");
    // No CA and no sslmode=disable: refused before connecting.
    let err = refused(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        pg.port()
    ))
    .await;
    assert!(err.contains("sslrootcert"), "{err}");
    // Plain only on loopback.
    let err = refused("postgres://postgres@192.0.2.7:5432/postgres?sslmode=disable").await;
    assert!(err.contains("off this machine"), "{err}");
    // A weaker mode is not silently accepted.
    let err = refused(&format!("{}&sslmode=require", tls_url("ca.pem"))).await;
    assert!(err.contains("sslmode=require is not supported"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls_is_refused_when_tls_is_required() {
    let pg = sealback_testkit::PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (ca, _, _) = test_ca_and_server_certificate();
    std::fs::write(tmp.path().join("ca.pem"), ca).unwrap();
    let err = refused(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslrootcert={}",
        pg.port(),
        tmp.path().join("ca.pem").display()
    ))
    .await;
    assert!(err.to_lowercase().contains("tls"), "{err}");
}

/// `synchronous_commit = on` is forced per transaction: with the role's default `off`, the
/// transactions that count a guess and store a record still run with it on (seen by a trigger
/// on the counter table, inside those transactions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_transactions_commit_synchronously_whatever_the_role_default() {
    let pg = sealback_testkit::PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let admin = Writer::open(tmp.path(), Some(&pg.url())).await;
    admin
        .execute("ALTER ROLE postgres SET synchronous_commit = off")
        .await;
    let v = start_on(tmp.path(), &pg.url()).await;
    let Writer::Postgres(observer) = Writer::open(tmp.path(), Some(&pg.url())).await else {
        unreachable!()
    };
    let default: String = observer
        .query_one("SHOW synchronous_commit", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(default, "off", "the role's default for new sessions");
    observer
        .batch_execute(
            "CREATE TABLE seen(setting TEXT NOT NULL);
             CREATE FUNCTION note_commit_mode() RETURNS trigger AS $$
               BEGIN INSERT INTO seen VALUES (current_setting('synchronous_commit')); RETURN NEW; END
             $$ LANGUAGE plpgsql;
             CREATE TRIGGER note_commit_mode AFTER INSERT OR UPDATE ON guesses
               FOR EACH ROW EXECUTE FUNCTION note_commit_mode();",
        )
        .await
        .unwrap();
    registered_and_guessed(&v, "sync", "sync's password", 2).await;
    let seen: Vec<String> = observer
        .query("SELECT setting FROM seen", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seen.len(), 3, "one registration and two counted guesses");
    assert!(seen.iter().all(|s| s == "on"), "{seen:?}");
}
