//! The PostgreSQL database, for several vault processes sharing one database.
//!
//! The connection is TLS (rustls, `sslmode=verify-full` semantics) against the CA given as
//! `sslrootcert=PATH` in the URL; plain only with `sslmode=disable`, and then only to a loopback
//! address (or a Unix socket), with a warning ([`Transport`]).
//!
//! The same operations as [`SqliteDb`](crate::db::SqliteDb). A guess is counted by an upsert
//! that row-locks the account's counter until its transaction commits, so concurrent guesses
//! for one account, from any number of processes, are counted one after another.

use crate::db::{Attempt, Binding, DbError, Guess, RecordKind};
use crate::integrity::{CounterRow, CounterWrite, Integrity, StoredRecord};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// How the vault reaches PostgreSQL.
enum Transport {
    /// TLS, the server's certificate verified (chain and host name) against the configured CA.
    Tls(Box<rustls::ClientConfig>),
    /// Plain, asked for with `sslmode=disable` and allowed only on loopback.
    Plain,
}

/// What to tell an operator whose database URL asks for neither verified TLS nor plain loopback.
const TLS_HELP: &str = "use sslmode=verify-full (the default) with sslrootcert=PATH to the CA that signed the server's certificate, or sslmode=disable for a server on this machine (127.0.0.1, ::1, localhost or a Unix socket)";

/// Splits the vault's own parameters (`sslmode`, `sslrootcert`) off a database URL; returns the
/// URL tokio-postgres reads and how to connect.
fn transport(url: &str) -> Result<(tokio_postgres::Config, Transport), DbError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut ca, mut rest) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => ca = Some(v.to_string()),
            _ => rest.push(pair),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("verify-full") => true,
        Some("disable") => false,
        Some(other) => {
            return Err(DbError::new(format!(
                "database URL: sslmode={other} is not supported: {TLS_HELP}"
            )))
        }
    };
    rest.push(if tls {
        "sslmode=require"
    } else {
        "sslmode=disable"
    });
    let config: tokio_postgres::Config = format!("{base}?{}", rest.join("&"))
        .parse()
        .map_err(|e: tokio_postgres::Error| DbError::new(format!("bad database URL: {e}")))?;
    if !tls {
        if !config.get_hosts().iter().all(is_local) {
            return Err(DbError::new(format!(
                "database URL: sslmode=disable is refused for a server off this machine: {TLS_HELP}"
            )));
        }
        tracing::warn!("PostgreSQL is reached WITHOUT TLS (sslmode=disable, loopback only)");
        return Ok((config, Transport::Plain));
    }
    let Some(ca) = ca else {
        return Err(DbError::new(format!(
            "database URL: no CA to verify the PostgreSQL server with: {TLS_HELP}"
        )));
    };
    Ok((
        config,
        Transport::Tls(Box::new(tls_config(std::path::Path::new(&ca))?)),
    ))
}

/// A loopback address or a Unix socket.
fn is_local(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        tokio_postgres::config::Host::Unix(_) => true,
    }
}

/// A rustls client trusting only the CA certificates in the PEM file `ca`.
fn tls_config(ca: &std::path::Path) -> Result<rustls::ClientConfig, DbError> {
    use rustls::pki_types::pem::PemObject;
    let unreadable = |why: String| {
        DbError::new(format!(
            "cannot use the database CA {}: {why}",
            ca.display()
        ))
    };
    let pem = std::fs::read(ca).map_err(|e| unreadable(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.map_err(|e| unreadable(e.to_string()))?)
            .map_err(|e| unreadable(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(unreadable("no PEM certificate in it".into()));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An error and its causes, for an operator ("error performing TLS handshake: invalid peer
/// certificate: BadSignature", not only the first part).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = c.source();
    }
    text
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::new(with_causes(&e))
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DbError::new(with_causes(&e))
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS setup(id INTEGER PRIMARY KEY CHECK (id = 1), sealed BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS records(account TEXT PRIMARY KEY, sealed BYTEA NOT NULL, created BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts(account TEXT PRIMARY KEY, count BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS held(session TEXT PRIMARY KEY, account TEXT NOT NULL, kind SMALLINT NOT NULL, sealed BYTEA NOT NULL, expires BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS guesses(account TEXT NOT NULL, kind SMALLINT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY(account, kind));
CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, account TEXT NOT NULL, sealed BYTEA NOT NULL, expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
CREATE TABLE IF NOT EXISTS audit(id BIGSERIAL PRIMARY KEY, time BIGINT NOT NULL, account TEXT NOT NULL, event TEXT NOT NULL, outcome TEXT NOT NULL, remaining BIGINT, source TEXT);
CREATE TABLE IF NOT EXISTS passkeys(account TEXT PRIMARY KEY, sealed BYTEA NOT NULL, created BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS passkey_credentials(credential_id TEXT PRIMARY KEY, account TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS passkey_credentials_account ON passkey_credentials(account);
CREATE TABLE IF NOT EXISTS integrity(id INTEGER PRIMARY KEY CHECK (id = 1), sealed BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS tvr_records(account TEXT PRIMARY KEY, sealed BYTEA NOT NULL, created BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS tvr_versions(account TEXT NOT NULL, version BYTEA NOT NULL, PRIMARY KEY(account, version));
ALTER TABLE guesses ADD COLUMN IF NOT EXISTS generation BYTEA, ADD COLUMN IF NOT EXISTS mac BYTEA;
INSERT INTO guesses(account, kind, count) SELECT account, k, count FROM attempts, (VALUES (1::SMALLINT), (2::SMALLINT)) AS kinds(k)
  ON CONFLICT (account, kind) DO UPDATE SET count = greatest(guesses.count, excluded.count);
DELETE FROM attempts;
";

/// Creates or replaces an account's record of one kind and audits the registration; the
/// record's guess count is reset only when a record is replaced (as [`crate::db`]'s SQLite twin
/// does).
async fn store_record(
    tx: &deadpool_postgres::Transaction<'_>,
    integrity: &Integrity,
    kind: RecordKind,
    account: &str,
    sealed: &[u8],
    now: i64,
) -> Result<(), DbError> {
    let generation = crate::integrity::generation_of(sealed)
        .ok_or_else(|| DbError::new("a record to store is not in the bound form".into()))?;
    lock_counter(tx, account, kind).await?;
    let in_table = tx
        .query_opt(
            &format!(
                "SELECT 1 FROM {} WHERE account = $1 FOR UPDATE",
                kind.table()
            ),
            &[&account],
        )
        .await?
        .is_some();
    let held = tx
        .query_opt(
            "SELECT 1 FROM held WHERE account = $1 AND kind = $2 FOR UPDATE",
            &[&account, &kind.pg_code()],
        )
        .await?
        .is_some();
    // A replaced record's count goes with it; without one, guesses counted before this first
    // registration stay counted (if their row proves it).
    let count = if in_table || held {
        destroy_copies(tx, account, kind).await?;
        0
    } else {
        let row = read_counter(tx, account, kind).await?;
        integrity
            .verified_count(account, kind, row.as_ref(), None)?
            .0
    };
    write_counter(tx, &integrity.counter(account, kind, &generation, count)).await?;
    tx.execute(
        &tx.prepare_cached(&format!(
            "INSERT INTO {}(account, sealed, created) VALUES ($1, $2, $3)
             ON CONFLICT (account) DO UPDATE SET sealed = excluded.sealed, created = excluded.created",
            kind.table()
        ))
        .await?,
        &[&account, &sealed, &now],
    )
    .await?;
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO audit(time, account, event, outcome) VALUES ($1, $2, $3, 'ok')",
        )
        .await?,
        &[&now, &account, &kind.register_event()],
    )
    .await?;
    Ok(())
}

/// Serialises, across processes, every change of an account's counter of `kind` (the row may
/// not exist yet, so a row lock is not enough) until the transaction ends.
async fn lock_counter(
    tx: &deadpool_postgres::Transaction<'_>,
    account: &str,
    kind: RecordKind,
) -> Result<(), DbError> {
    tx.execute(
        &tx.prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
            .await?,
        &[&account, &i64::from(kind.code())],
    )
    .await?;
    Ok(())
}

/// An account's counter row of `kind`, as stored.
async fn read_counter(
    c: &impl deadpool_postgres::GenericClient,
    account: &str,
    kind: RecordKind,
) -> Result<Option<CounterRow>, DbError> {
    Ok(c.query_opt(
        "SELECT count, generation, mac FROM guesses WHERE account = $1 AND kind = $2",
        &[&account, &kind.pg_code()],
    )
    .await?
    .map(|r| CounterRow {
        count: r.get(0),
        generation: r.get(1),
        tag: r.get(2),
    }))
}

/// Writes (creates or replaces) a counter row with its tag.
async fn write_counter(
    tx: &deadpool_postgres::Transaction<'_>,
    w: &CounterWrite,
) -> Result<(), DbError> {
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO guesses(account, kind, count, generation, mac) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account, kind) DO UPDATE SET count = excluded.count,
               generation = excluded.generation, mac = excluded.mac",
        )
        .await?,
        &[
            &w.account,
            &w.kind.pg_code(),
            &w.count,
            &w.generation,
            &w.tag,
        ],
    )
    .await?;
    Ok(())
}

/// An account's record of `kind` in its table.
async fn read_record(
    c: &impl deadpool_postgres::GenericClient,
    account: &str,
    kind: RecordKind,
) -> Result<Option<Vec<u8>>, DbError> {
    Ok(c.query_opt(
        &format!("SELECT sealed FROM {} WHERE account = $1", kind.table()),
        &[&account],
    )
    .await?
    .map(|r| r.get(0)))
}

/// The verified count of an account's `kind` and the generation it counts against.
async fn verified_count(
    c: &impl deadpool_postgres::GenericClient,
    integrity: &Integrity,
    account: &str,
    kind: RecordKind,
) -> Result<(i64, Vec<u8>), DbError> {
    let row = read_counter(c, account, kind).await?;
    let record = read_record(c, account, kind).await?;
    integrity.verified_count(account, kind, row.as_ref(), record.as_deref())
}

/// Deletes what holds a copy of an account's record of `kind` besides the record itself: a last
/// guess's held copy and the pending login sessions (as [`crate::db`]'s SQLite twin does).
async fn destroy_copies(
    tx: &deadpool_postgres::Transaction<'_>,
    account: &str,
    kind: RecordKind,
) -> Result<(), DbError> {
    tx.execute(
        "DELETE FROM held WHERE account = $1 AND kind = $2",
        &[&account, &kind.pg_code()],
    )
    .await?;
    tx.execute(
        "DELETE FROM sessions WHERE account = $1 AND starts_with(id, $2)",
        &[&account, &kind.login_session_prefix()],
    )
    .await?;
    Ok(())
}

/// Begins a transaction whose commit is durable before it returns, whatever the server's or
/// the role's default (`synchronous_commit = on`, set for this transaction): a counted guess must
/// never be acknowledged before it is on disk.
async fn durable_transaction(
    c: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, DbError> {
    let tx = c.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit = on")
        .await?;
    Ok(tx)
}

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PgDb {
    pool: Pool,
    pub(crate) binding: Binding,
}

impl PgDb {
    /// Connects (`postgres://user@host:port/db?sslrootcert=CA.pem`, or `?sslmode=disable` on
    /// loopback) and creates the tables if needed.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, DbError> {
        let (config, transport) = transport(url)?;
        let recycling = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match transport {
            Transport::Tls(tls) => Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(*tls),
                recycling,
            ),
            Transport::Plain => Manager::from_config(config, NoTls, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .build()
            .map_err(|e| DbError::new(e.to_string()))?;
        let mut c = pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        // Serialise schema creation between processes starting together.
        tx.execute(
            &tx.prepare_cached("SELECT pg_advisory_xact_lock(7262201)")
                .await?,
            &[],
        )
        .await?;
        tx.batch_execute(SCHEMA).await?;
        tx.commit().await?;
        Ok(Self {
            pool,
            binding: Binding::default(),
        })
    }

    pub(crate) async fn setup(&self, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, DbError> {
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        tx.execute(
            &tx.prepare_cached("SELECT pg_advisory_xact_lock(7262202)")
                .await?,
            &[],
        )
        .await?;
        let row = tx
            .query_opt("SELECT sealed FROM setup WHERE id = 1", &[])
            .await?;
        let sealed = match row {
            Some(r) => r.get(0),
            None => {
                let s = make();
                tx.execute(
                    &tx.prepare_cached("INSERT INTO setup(id, sealed) VALUES (1, $1)")
                        .await?,
                    &[&s],
                )
                .await?;
                s
            }
        };
        tx.commit().await?;
        Ok(sealed)
    }

    pub(crate) async fn put_record(
        &self,
        account: &str,
        kind: RecordKind,
        sealed: &[u8],
        now: i64,
    ) -> Result<(), DbError> {
        let integrity = self.binding.get()?;
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        store_record(&tx, &integrity, kind, account, sealed, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn put_fresh_realm_record(
        &self,
        account: &str,
        version: &[u8],
        sealed: &[u8],
        now: i64,
    ) -> Result<bool, DbError> {
        let integrity = self.binding.get()?;
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        let fresh = tx
            .execute(
                "INSERT INTO tvr_versions(account, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&account, &version],
            )
            .await?
            == 1;
        if fresh {
            store_record(&tx, &integrity, RecordKind::Realm, account, sealed, now).await?;
        }
        tx.commit().await?;
        Ok(fresh)
    }

    pub(crate) async fn record(
        &self,
        account: &str,
        kind: RecordKind,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let c = self.pool.get().await?;
        Ok(c.query_opt(
            &format!("SELECT sealed FROM {} WHERE account = $1", kind.table()),
            &[&account],
        )
        .await?
        .map(|r| r.get(0)))
    }

    pub(crate) async fn delete_record(
        &self,
        account: &str,
        kind: RecordKind,
    ) -> Result<bool, DbError> {
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        let n = tx
            .execute(
                &format!("DELETE FROM {} WHERE account = $1", kind.table()),
                &[&account],
            )
            .await?;
        destroy_copies(&tx, account, kind).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    pub(crate) async fn begin_attempt(
        &self,
        account: &str,
        kind: RecordKind,
        limit: u32,
        login: &crate::db::LoginRef,
        now: i64,
        source: &str,
    ) -> Result<Attempt, DbError> {
        let integrity = self.binding.get()?;
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        lock_counter(&tx, account, kind).await?;
        let (counted, generation) = match verified_count(&tx, &integrity, account, kind).await {
            Err(DbError::Tampered(why)) => {
                // Fail closed, and keep the evidence: nothing is counted or released.
                let outcome = format!("refused {}: {why}", kind.login_event());
                tx.execute(
                    "INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES ($1, $2, 'integrity', $3, 0, $4)",
                    &[&now, &account, &outcome, &source],
                )
                .await?;
                tx.commit().await?;
                return Ok(Attempt::Tampered(why));
            }
            other => other?,
        };
        let count = counted + 1;
        write_counter(&tx, &integrity.counter(account, kind, &generation, count)).await?;
        let count = count as u32;
        if count > limit {
            tx.execute(
                &format!("DELETE FROM {} WHERE account = $1", kind.table()),
                &[&account],
            )
            .await?;
            if kind == RecordKind::Passkey {
                tx.execute(
                    "DELETE FROM passkey_credentials WHERE account = $1",
                    &[&account],
                )
                .await?;
            }
            destroy_copies(&tx, account, kind).await?;
            tx.execute(&tx.prepare_cached("INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES ($1, $2, $3, 'locked', 0, $4)").await?,
                &[&now, &account, &kind.login_event(), &source],
            )
            .await?;
            tx.commit().await?;
            return Ok(Attempt::Locked);
        }
        let record: Option<Vec<u8>> = tx
            .query_opt(
                &format!(
                    "SELECT sealed FROM {} WHERE account = $1 FOR UPDATE",
                    kind.table()
                ),
                &[&account],
            )
            .await?
            .map(|r| r.get(0));
        let held = count == limit && record.is_some();
        if let (true, Some(s)) = (held, &record) {
            tx.execute(
                "INSERT INTO held(session, account, kind, sealed, expires) VALUES ($1, $2, $3, $4, $5)",
                &[&login.session, &account, &kind.pg_code(), s, &login.expires],
            )
            .await?;
            tx.execute(
                &format!("DELETE FROM {} WHERE account = $1", kind.table()),
                &[&account],
            )
            .await?;
        }
        let remaining = i64::from(limit - count);
        tx.execute(&tx.prepare_cached("INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES ($1, $2, $3, 'counted', $4, $5)").await?,
            &[&now, &account, &kind.login_event(), &remaining, &source],
        )
        .await?;
        tx.commit().await?;
        Ok(Attempt::Proceed(Guess {
            count,
            record,
            held,
        }))
    }

    pub(crate) async fn put_passkey_record(
        &self,
        account: &str,
        sealed: &[u8],
        credential_ids: &[String],
        now: i64,
    ) -> Result<bool, DbError> {
        let integrity = self.binding.get()?;
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        for id in credential_ids {
            let owner: Option<String> = tx
                .query_opt(
                    "SELECT account FROM passkey_credentials WHERE credential_id = $1 FOR UPDATE",
                    &[id],
                )
                .await?
                .map(|r| r.get(0));
            if owner.is_some_and(|o| o != account) {
                return Ok(false);
            }
        }
        tx.execute(
            "DELETE FROM passkey_credentials WHERE account = $1",
            &[&account],
        )
        .await?;
        for id in credential_ids {
            tx.execute(
                "INSERT INTO passkey_credentials(credential_id, account) VALUES ($1, $2)",
                &[id, &account],
            )
            .await?;
        }
        store_record(&tx, &integrity, RecordKind::Passkey, account, sealed, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn update_record(
        &self,
        account: &str,
        kind: RecordKind,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, DbError> {
        let c = self.pool.get().await?;
        Ok(c.execute(
            &format!(
                "UPDATE {} SET sealed = $3 WHERE account = $1 AND sealed = $2",
                kind.table()
            ),
            &[&account, &old, &new],
        )
        .await?
            == 1)
    }

    pub(crate) async fn passkey_record(&self, account: &str) -> Result<Option<Vec<u8>>, DbError> {
        let c = self.pool.get().await?;
        Ok(c.query_opt(
            "SELECT sealed FROM passkeys WHERE account = $1",
            &[&account],
        )
        .await?
        .map(|r| r.get(0)))
    }

    pub(crate) async fn passkey_account(
        &self,
        credential_id: &str,
    ) -> Result<Option<String>, DbError> {
        let c = self.pool.get().await?;
        Ok(c.query_opt(
            "SELECT account FROM passkey_credentials WHERE credential_id = $1",
            &[&credential_id],
        )
        .await?
        .map(|r| r.get(0)))
    }

    pub(crate) async fn session_account(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<String>, DbError> {
        let c = self.pool.get().await?;
        Ok(c.query_opt(
            "SELECT account FROM sessions WHERE id = $1 AND expires >= $2",
            &[&id, &now],
        )
        .await?
        .map(|r| r.get(0)))
    }

    pub(crate) async fn put_session(
        &self,
        id: &str,
        account: &str,
        sealed: &[u8],
        expires: i64,
    ) -> Result<(), DbError> {
        let c = self.pool.get().await?;
        c.execute(
            &c.prepare_cached(
                "INSERT INTO sessions(id, account, sealed, expires) VALUES ($1, $2, $3, $4)",
            )
            .await?,
            &[&id, &account, &sealed, &expires],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_expired_sessions(&self, now: i64) -> Result<u64, DbError> {
        let c = self.pool.get().await?;
        c.execute("DELETE FROM held WHERE expires < $1", &[&now])
            .await?;
        Ok(
            c.execute("DELETE FROM sessions WHERE expires < $1", &[&now])
                .await?,
        )
    }

    pub(crate) async fn held_record(&self, session: &str) -> Result<Option<Vec<u8>>, DbError> {
        let c = self.pool.get().await?;
        Ok(
            c.query_opt("SELECT sealed FROM held WHERE session = $1", &[&session])
                .await?
                .map(|r| r.get(0)),
        )
    }

    pub(crate) async fn drop_held(&self, session: &str) -> Result<(), DbError> {
        let c = self.pool.get().await?;
        c.execute("DELETE FROM held WHERE session = $1", &[&session])
            .await?;
        Ok(())
    }

    pub(crate) async fn take_session(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<(String, Vec<u8>)>, DbError> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "DELETE FROM sessions WHERE id = $1 RETURNING account, sealed, expires",
                &[&id],
            )
            .await?;
        Ok(row
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, Vec<u8>>(1),
                    r.get::<_, i64>(2),
                )
            })
            .filter(|(_, _, exp)| *exp >= now)
            .map(|(a, s, _)| (a, s)))
    }

    pub(crate) async fn login_succeeded(
        &self,
        account: &str,
        kind: RecordKind,
        session: &str,
        update: Option<&[u8]>,
        now: i64,
        source: &str,
    ) -> Result<(), DbError> {
        let integrity = self.binding.get()?;
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        lock_counter(&tx, account, kind).await?;
        tx.execute(
            &format!(
                "INSERT INTO {}(account, sealed, created) SELECT account, sealed, $2 FROM held WHERE session = $1 ON CONFLICT (account) DO NOTHING",
                kind.table()
            ),
            &[&session, &now],
        )
        .await?;
        tx.execute("DELETE FROM held WHERE session = $1", &[&session])
            .await?;
        if let Some(sealed) = update {
            tx.execute(
                &format!("UPDATE {} SET sealed = $2 WHERE account = $1", kind.table()),
                &[&account, &sealed],
            )
            .await?;
        }
        // The count starts again at zero, bound to the record the login verified against.
        match read_record(&tx, account, kind).await? {
            Some(record) => {
                let generation = crate::integrity::generation_of(&record)
                    .ok_or_else(|| DbError::Tampered("a record is not in the bound form".into()))?;
                write_counter(&tx, &integrity.counter(account, kind, &generation, 0)).await?;
            }
            None => {
                tx.execute(
                    "DELETE FROM guesses WHERE account = $1 AND kind = $2",
                    &[&account, &kind.pg_code()],
                )
                .await?;
            }
        }
        tx.execute(&tx.prepare_cached("INSERT INTO audit(time, account, event, outcome, source) VALUES ($1, $2, $3, 'ok', $4)").await?,
            &[&now, &account, &kind.login_event(), &source],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn audit(&self, e: &crate::db::AuditEntry) -> Result<(), DbError> {
        let c = self.pool.get().await?;
        c.execute(&c.prepare_cached("INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES ($1, $2, $3, $4, $5, $6)").await?,
            &[
                &e.time,
                &e.account,
                &e.event,
                &e.outcome,
                &e.remaining.map(i64::from),
                &e.source,
            ],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn audit_log(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::db::AuditEntry>, DbError> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT time, account, event, outcome, remaining, source FROM audit ORDER BY id DESC LIMIT $1",
                &[&i64::from(limit)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| crate::db::AuditEntry {
                time: r.get(0),
                account: r.get(1),
                event: r.get(2),
                outcome: r.get(3),
                remaining: r.get::<_, Option<i64>>(4).map(|n| n as u32),
                source: r.get(5),
            })
            .collect())
    }

    pub(crate) async fn has_record(
        &self,
        account: &str,
        kind: RecordKind,
    ) -> Result<bool, DbError> {
        let c = self.pool.get().await?;
        let n: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM {} WHERE account = $1", kind.table()),
                &[&account],
            )
            .await?
            .get(0);
        Ok(n > 0)
    }

    pub(crate) async fn attempts(&self, account: &str, kind: RecordKind) -> Result<u32, DbError> {
        let integrity = self.binding.get()?;
        let c = self.pool.get().await?;
        Ok(verified_count(&c, &integrity, account, kind).await?.0 as u32)
    }

    pub(crate) async fn upgrade_integrity(&self) -> Result<bool, DbError> {
        let integrity = self.binding.get()?;
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        tx.execute("SELECT pg_advisory_xact_lock(7262203)", &[])
            .await?;
        if let Some(row) = tx
            .query_opt("SELECT sealed FROM integrity WHERE id = 1", &[])
            .await?
        {
            integrity.check_marker(&row.get::<_, Vec<u8>>(0))?;
            return Ok(false);
        }
        let tagged: bool = tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM guesses WHERE mac IS NOT NULL)",
                &[],
            )
            .await?
            .get(0);
        if tagged {
            return Err(DbError::Tampered(crate::db::MARKER_MISSING.into()));
        }
        let mut records = Vec::new();
        for kind in RecordKind::ALL {
            for r in tx
                .query(
                    &format!("SELECT account, sealed FROM {}", kind.table()),
                    &[],
                )
                .await?
            {
                records.push(StoredRecord {
                    kind,
                    account: r.get(0),
                    held_session: None,
                    sealed: r.get(1),
                });
            }
        }
        for r in tx
            .query("SELECT session, account, kind, sealed FROM held", &[])
            .await?
        {
            if let Some(kind) = RecordKind::from_code(r.get::<_, i16>(2) as u8) {
                records.push(StoredRecord {
                    kind,
                    account: r.get(1),
                    held_session: Some(r.get(0)),
                    sealed: r.get(3),
                });
            }
        }
        let counters: Vec<(String, RecordKind, i64)> = tx
            .query("SELECT account, kind, count FROM guesses", &[])
            .await?
            .iter()
            .filter_map(|r| {
                let kind = RecordKind::from_code(r.get::<_, i16>(1) as u8)?;
                Some((r.get(0), kind, r.get(2)))
            })
            .collect();
        let writes = integrity.plan_upgrade(&mut records, &counters);
        for r in &records {
            match &r.held_session {
                None => {
                    tx.execute(
                        &format!(
                            "UPDATE {} SET sealed = $2 WHERE account = $1",
                            r.kind.table()
                        ),
                        &[&r.account, &r.sealed],
                    )
                    .await?
                }
                Some(session) => {
                    tx.execute(
                        "UPDATE held SET sealed = $2 WHERE session = $1",
                        &[session, &r.sealed],
                    )
                    .await?
                }
            };
        }
        for w in &writes {
            write_counter(&tx, w).await?;
        }
        tx.execute(
            "INSERT INTO integrity(id, sealed) VALUES (1, $1)",
            &[&integrity.marker()],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
