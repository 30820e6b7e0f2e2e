//! The PostgreSQL database, for several vault processes sharing one database.
//!
//! The same operations as [`SqliteDb`](crate::db::SqliteDb). A guess is counted by an upsert
//! that row-locks the account's counter until its transaction commits, so concurrent guesses
//! for one account, from any number of processes, are counted one after another.

use crate::db::{Attempt, DbError, Guess, RecordKind};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::new(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DbError::new(e.to_string())
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
INSERT INTO guesses(account, kind, count) SELECT account, k, count FROM attempts, (VALUES (1::SMALLINT), (2::SMALLINT)) AS kinds(k)
  ON CONFLICT (account, kind) DO UPDATE SET count = greatest(guesses.count, excluded.count);
DELETE FROM attempts;
";

/// Creates or replaces an account's record of one kind and audits the registration; the
/// record's guess count is reset only when a record is replaced (as [`crate::db`]'s SQLite twin
/// does).
async fn store_record(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: RecordKind,
    account: &str,
    sealed: &[u8],
    now: i64,
) -> Result<(), DbError> {
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
    if in_table || held {
        tx.execute(
            "DELETE FROM guesses WHERE account = $1 AND kind = $2",
            &[&account, &kind.pg_code()],
        )
        .await?;
        destroy_copies(tx, account, kind).await?;
    }
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
}

impl PgDb {
    /// Connects (`postgres://user@host:port/db`) and creates the tables if needed.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, DbError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| DbError::new(format!("bad database URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
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
        Ok(Self { pool })
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
        sealed: &[u8],
        now: i64,
    ) -> Result<(), DbError> {
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        store_record(&tx, RecordKind::Password, account, sealed, now).await?;
        tx.commit().await?;
        Ok(())
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
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        let count: i64 = tx
            .query_one(
                "INSERT INTO guesses(account, kind, count) VALUES ($1, $2, 1)
                 ON CONFLICT (account, kind) DO UPDATE SET count = guesses.count + 1 RETURNING count",
                &[&account, &kind.pg_code()],
            )
            .await?
            .get(0);
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
        store_record(&tx, RecordKind::Passkey, account, sealed, now).await?;
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
        let mut c = self.pool.get().await?;
        let tx = durable_transaction(&mut c).await?;
        tx.execute(
            &tx.prepare_cached("DELETE FROM guesses WHERE account = $1 AND kind = $2")
                .await?,
            &[&account, &kind.pg_code()],
        )
        .await?;
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
        let c = self.pool.get().await?;
        let n: Option<i64> = c
            .query_opt(
                "SELECT count FROM guesses WHERE account = $1 AND kind = $2",
                &[&account, &kind.pg_code()],
            )
            .await?
            .map(|r| r.get(0));
        Ok(n.unwrap_or(0) as u32)
    }
}
