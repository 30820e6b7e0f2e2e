//! The vault's database: SQLite embedded by default, PostgreSQL ([`crate::pg`]) for several
//! vault processes, behind the one [`Db`] type.
//!
//! Every guess is counted in a transaction that commits (durably: WAL with `synchronous=FULL`)
//! before the vault computes its answer, so a crash or a kill at any point never refunds one,
//! and `BEGIN IMMEDIATE` makes the count exact across threads and processes sharing the file.

use crate::integrity::{CounterRow, CounterWrite, Integrity, StoredRecord};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// The kinds of key material the vault holds for an account. Each lives in its own table and
/// has its own guess count (issue 14: a shared count let one kind's registration reset the
/// other's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// The OPAQUE password file and the client's wrapped key (`records`).
    Password,
    /// The registered passkeys and the vault share of a vault-passkey keyslot (`passkeys`).
    Passkey,
    /// A threshold realm's key share and unlock tag for one account (`tvr_records`, tvr1).
    Realm,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 3] = [RecordKind::Password, RecordKind::Passkey, RecordKind::Realm];

    pub(crate) fn table(self) -> &'static str {
        match self {
            RecordKind::Password => "records",
            RecordKind::Passkey => "passkeys",
            RecordKind::Realm => "tvr_records",
        }
    }

    /// The prefix of the ids of its login sessions (`crate::sessions`): they hold copies of
    /// what the record releases, so they die with it.
    pub(crate) fn login_session_prefix(self) -> &'static str {
        match self {
            RecordKind::Password => "login.",
            RecordKind::Passkey => "passkey-login.",
            RecordKind::Realm => "tvr-eval.",
        }
    }

    /// The audit event of a login.
    pub(crate) fn login_event(self) -> &'static str {
        match self {
            RecordKind::Password => "login",
            RecordKind::Passkey => "passkey_login",
            RecordKind::Realm => "tvr_evaluate",
        }
    }

    /// The audit event of a registration.
    pub(crate) fn register_event(self) -> &'static str {
        match self {
            RecordKind::Password => "register",
            RecordKind::Passkey => "passkey_register",
            RecordKind::Realm => "tvr_register",
        }
    }

    /// A byte for session state.
    pub fn code(self) -> u8 {
        match self {
            RecordKind::Password => 1,
            RecordKind::Passkey => 2,
            RecordKind::Realm => 3,
        }
    }

    /// [`RecordKind::code`] as PostgreSQL's SMALLINT.
    pub(crate) fn pg_code(self) -> i16 {
        i16::from(self.code())
    }

    /// The kind of [`RecordKind::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(RecordKind::Password),
            2 => Some(RecordKind::Passkey),
            3 => Some(RecordKind::Realm),
            _ => None,
        }
    }
}

/// Why a database is refused when its integrity marker is missing.
pub(crate) const MARKER_MISSING: &str = "the database's integrity marker is missing while its counters carry tags: it was edited or partly restored from an older copy";

/// What a login attempt may do.
#[derive(Debug)]
pub enum Attempt {
    /// The account's counter or record of this kind failed its integrity check: nothing was
    /// counted or released, and the refusal is audited.
    Tampered(String),
    /// The limit was reached: the record (if any) is destroyed.
    Locked,
    /// Go on.
    Proceed(Guess),
}

/// A counted guess that may proceed.
#[derive(Debug)]
pub struct Guess {
    /// Guesses counted so far, this one included.
    pub count: u32,
    /// The sealed record of the kind asked for, if the account has one.
    pub record: Option<Vec<u8>>,
    /// This was the last allowed guess: the record moved, in the transaction that counted the
    /// guess, from its table into `held` under the login's session id. A success puts it back;
    /// a failure, the session's expiry or a lock deletes it.
    pub held: bool,
}

/// The login a guess is counted for: its session id (chosen before the count, so that a last
/// guess holds the record under it durably) and when that session expires.
#[derive(Debug, Clone)]
pub struct LoginRef {
    /// The session id.
    pub session: String,
    /// Unix seconds.
    pub expires: i64,
}

/// One line of the audit trail: who tried what, from where, with what outcome. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unix seconds.
    pub time: i64,
    /// The account (empty for events about a client address only).
    pub account: String,
    /// `register`, `login` or `flag`.
    pub event: String,
    /// e.g. `ok`, `counted`, `failed`, `locked`, `burst`, `many_accounts`.
    pub outcome: String,
    /// Guesses left after this event, where it applies.
    pub remaining: Option<u32>,
    /// The client address, where known.
    pub source: Option<String>,
}

/// A database error (the message never carries secrets).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// The database could not do what was asked.
    #[error("vault database: {0}")]
    Failed(String),
    /// What the database holds failed its integrity check ([`crate::integrity`]): a counter or
    /// a record was edited, deleted, moved or put back by someone who writes to the database.
    #[error("stored state failed its integrity check: {0}")]
    Tampered(String),
}

impl DbError {
    pub(crate) fn new(s: String) -> Self {
        DbError::Failed(s)
    }
}

/// The integrity keys a database is bound to by [`Db::bind`]; shared by the clones of a [`Db`].
#[derive(Clone, Default)]
pub(crate) struct Binding(std::sync::Arc<std::sync::OnceLock<Integrity>>);

impl Binding {
    /// The integrity keys; an error before [`Db::bind`].
    pub(crate) fn get(&self) -> Result<Integrity, DbError> {
        self.0.get().cloned().ok_or_else(|| {
            DbError::new("the database is not bound to the vault's sealer yet".into())
        })
    }
}

/// The vault's database.
#[derive(Clone)]
pub enum Db {
    /// Embedded SQLite.
    Sqlite(SqliteDb),
    /// PostgreSQL.
    Postgres(crate::pg::PgDb),
}

impl Db {
    /// Opens `sqlite:PATH` or `postgres://...`.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Ok(Db::Sqlite(SqliteDb::open(Path::new(path))?));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Db::Postgres(crate::pg::PgDb::connect(url, 32).await?));
        }
        Err(DbError::new(format!(
            "unsupported database {url:?}: use sqlite:PATH or postgres://USER@HOST:PORT/DB"
        )))
    }

    /// Binds the database to the vault's integrity keys (counter tags, bound records), which
    /// every later read and write of a counter or record uses. The first binding of a
    /// database's clones stays.
    pub fn bind(&self, integrity: Integrity) {
        let binding = match self {
            Db::Sqlite(d) => &d.binding,
            Db::Postgres(d) => &d.binding,
        };
        let _ = binding.0.set(integrity);
    }

    /// Upgrades a database written before bound records and tagged counters, once (a sealed
    /// marker says it was done); returns whether it did. Refuses (as tampered) a database whose
    /// marker is missing while its counters carry tags, or whose marker does not open.
    pub async fn upgrade_integrity(&self) -> Result<bool, DbError> {
        match self {
            Db::Sqlite(d) => d.upgrade_integrity().await,
            Db::Postgres(d) => d.upgrade_integrity().await,
        }
    }

    /// The sealed server setup, made by `make` on first use.
    pub async fn setup(
        &self,
        make: impl FnOnce() -> Vec<u8> + Send + 'static,
    ) -> Result<Vec<u8>, DbError> {
        match self {
            Db::Sqlite(d) => d.setup(make).await,
            Db::Postgres(d) => d.setup(make).await,
        }
    }
    /// See [`SqliteDb::put_record`].
    pub async fn put_record(
        &self,
        account: String,
        sealed: Vec<u8>,
        now: i64,
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(d) => {
                d.put_record(account, RecordKind::Password, sealed, now)
                    .await
            }
            Db::Postgres(d) => {
                d.put_record(&account, RecordKind::Password, &sealed, now)
                    .await
            }
        }
    }
    /// Stores a realm record of registration `version` (resetting its count, as
    /// [`Db::put_record`]) unless this realm has ever stored that version for the account:
    /// then nothing changes and the answer is `false`. Versions are kept for good
    /// (`tvr_versions`, through deletion and destruction), so replaying a logged registration,
    /// of the current version or an older one, never refunds guesses (SPEC §7f.3).
    pub async fn put_fresh_realm_record(
        &self,
        account: String,
        version: [u8; 16],
        sealed: Vec<u8>,
        now: i64,
    ) -> Result<bool, DbError> {
        match self {
            Db::Sqlite(d) => {
                d.put_fresh_realm_record(account, version, sealed, now)
                    .await
            }
            Db::Postgres(d) => {
                d.put_fresh_realm_record(&account, &version, &sealed, now)
                    .await
            }
        }
    }
    /// An account's stored record of `kind`, if any.
    pub async fn record(
        &self,
        account: String,
        kind: RecordKind,
    ) -> Result<Option<Vec<u8>>, DbError> {
        match self {
            Db::Sqlite(d) => d.record(account, kind).await,
            Db::Postgres(d) => d.record(&account, kind).await,
        }
    }
    /// Destroys an account's record of `kind` and every copy (held, sessions); its counter
    /// stays, so deleting cannot refund guesses.
    pub async fn delete_record(&self, account: String, kind: RecordKind) -> Result<bool, DbError> {
        match self {
            Db::Sqlite(d) => d.delete_record(account, kind).await,
            Db::Postgres(d) => d.delete_record(&account, kind).await,
        }
    }
    /// See [`SqliteDb::begin_attempt`].
    pub async fn begin_attempt(
        &self,
        account: String,
        kind: RecordKind,
        limit: u32,
        login: LoginRef,
        now: i64,
        source: String,
    ) -> Result<Attempt, DbError> {
        match self {
            Db::Sqlite(d) => {
                d.begin_attempt(account, kind, limit, login, now, source)
                    .await
            }
            Db::Postgres(d) => {
                d.begin_attempt(&account, kind, limit, &login, now, &source)
                    .await
            }
        }
    }
    /// The record a last guess holds under `session`, if any.
    pub async fn held_record(&self, session: String) -> Result<Option<Vec<u8>>, DbError> {
        match self {
            Db::Sqlite(d) => d.held_record(session).await,
            Db::Postgres(d) => d.held_record(&session).await,
        }
    }
    /// Destroys the record a last guess holds under `session` (the guess failed).
    pub async fn drop_held(&self, session: String) -> Result<(), DbError> {
        match self {
            Db::Sqlite(d) => d.drop_held(session).await,
            Db::Postgres(d) => d.drop_held(&session).await,
        }
    }
    /// See [`SqliteDb::put_passkey_record`].
    pub async fn put_passkey_record(
        &self,
        account: String,
        sealed: Vec<u8>,
        credential_ids: Vec<String>,
        now: i64,
    ) -> Result<bool, DbError> {
        match self {
            Db::Sqlite(d) => {
                d.put_passkey_record(account, sealed, credential_ids, now)
                    .await
            }
            Db::Postgres(d) => {
                d.put_passkey_record(&account, &sealed, &credential_ids, now)
                    .await
            }
        }
    }
    /// Replaces an account's record of `kind` with `new` if it is still `old` (a record
    /// replaced meanwhile is left alone). Returns whether it was replaced.
    pub async fn update_record(
        &self,
        account: String,
        kind: RecordKind,
        old: Vec<u8>,
        new: Vec<u8>,
    ) -> Result<bool, DbError> {
        match self {
            Db::Sqlite(d) => d.update_record(account, kind, old, new).await,
            Db::Postgres(d) => d.update_record(&account, kind, &old, &new).await,
        }
    }
    /// The sealed passkey record of an account.
    pub async fn passkey_record(&self, account: String) -> Result<Option<Vec<u8>>, DbError> {
        match self {
            Db::Sqlite(d) => d.passkey_record(account).await,
            Db::Postgres(d) => d.passkey_record(&account).await,
        }
    }
    /// The account a registered credential (base64url id) belongs to.
    pub async fn passkey_account(&self, credential_id: String) -> Result<Option<String>, DbError> {
        match self {
            Db::Sqlite(d) => d.passkey_account(credential_id).await,
            Db::Postgres(d) => d.passkey_account(&credential_id).await,
        }
    }
    /// The account of a live session, without taking it (account sessions are used many times).
    pub async fn session_account(&self, id: String, now: i64) -> Result<Option<String>, DbError> {
        match self {
            Db::Sqlite(d) => d.session_account(id, now).await,
            Db::Postgres(d) => d.session_account(&id, now).await,
        }
    }
    /// See [`SqliteDb::put_session`].
    pub async fn put_session(
        &self,
        id: String,
        account: String,
        sealed: Vec<u8>,
        expires: i64,
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(d) => d.put_session(id, account, sealed, expires).await,
            Db::Postgres(d) => d.put_session(&id, &account, &sealed, expires).await,
        }
    }
    /// Deletes sessions that expired before `now` (a periodic task of the vault does this).
    pub async fn delete_expired_sessions(&self, now: i64) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(d) => d.delete_expired_sessions(now).await,
            Db::Postgres(d) => d.delete_expired_sessions(now).await,
        }
    }
    /// See [`SqliteDb::take_session`].
    pub async fn take_session(
        &self,
        id: String,
        now: i64,
    ) -> Result<Option<(String, Vec<u8>)>, DbError> {
        match self {
            Db::Sqlite(d) => d.take_session(id, now).await,
            Db::Postgres(d) => d.take_session(&id, now).await,
        }
    }
    /// See [`SqliteDb::login_succeeded`].
    pub async fn login_succeeded(
        &self,
        account: String,
        kind: RecordKind,
        session: String,
        update: Option<Vec<u8>>,
        now: i64,
        source: String,
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(d) => {
                d.login_succeeded(account, kind, session, update, now, source)
                    .await
            }
            Db::Postgres(d) => {
                d.login_succeeded(&account, kind, &session, update.as_deref(), now, &source)
                    .await
            }
        }
    }
    /// Appends to the audit trail.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), DbError> {
        match self {
            Db::Sqlite(d) => d.audit(entry).await,
            Db::Postgres(d) => d.audit(&entry).await,
        }
    }
    /// The newest `limit` audit entries, newest first (for operators and tests).
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, DbError> {
        match self {
            Db::Sqlite(d) => d.audit_log(limit).await,
            Db::Postgres(d) => d.audit_log(limit).await,
        }
    }
    /// Whether the account has a record of this kind.
    pub async fn has_record(&self, account: String, kind: RecordKind) -> Result<bool, DbError> {
        match self {
            Db::Sqlite(d) => d.has_record(account, kind).await,
            Db::Postgres(d) => d.has_record(&account, kind).await,
        }
    }
    /// Guesses counted against an account's record of `kind`.
    pub async fn attempts(&self, account: String, kind: RecordKind) -> Result<u32, DbError> {
        match self {
            Db::Sqlite(d) => d.attempts(account, kind).await,
            Db::Postgres(d) => d.attempts(&account, kind).await,
        }
    }
}

/// Creates or replaces an account's record of one kind and audits the registration. The
/// record's guess count is reset only when a record is replaced: a count protects the record it
/// was made against, and guesses made before a first registration stay counted.
fn store_record(
    c: Sql<'_>,
    integrity: &Integrity,
    kind: RecordKind,
    account: &str,
    sealed: &[u8],
    now: i64,
) -> Result<(), DbError> {
    let generation = crate::integrity::generation_of(sealed)
        .ok_or_else(|| DbError::new("a record to store is not in the bound form".into()))?;
    let replaces: bool = c.query_row(
        &format!(
            "SELECT EXISTS(SELECT 1 FROM {} WHERE account = ?1)
                 OR EXISTS(SELECT 1 FROM held WHERE account = ?1 AND kind = ?2)",
            kind.table()
        ),
        params![account, kind.code()],
        |r| r.get(0),
    )?;
    // A replaced record's count goes with it; without one, guesses counted before this first
    // registration stay counted (if their row proves it).
    let count = if replaces {
        destroy_copies(c, account, kind)?;
        0
    } else {
        let row = read_counter(c, account, kind)?;
        integrity
            .verified_count(account, kind, row.as_ref(), None)?
            .0
    };
    write_counter(c, &integrity.counter(account, kind, &generation, count))?;
    c.execute(
        &format!(
            "INSERT INTO {}(account, sealed, created) VALUES (?1, ?2, ?3)
             ON CONFLICT(account) DO UPDATE SET sealed = excluded.sealed, created = excluded.created",
            kind.table()
        ),
        params![account, sealed, now],
    )?;
    c.execute(
        "INSERT INTO audit(time, account, event, outcome) VALUES (?1, ?2, ?3, 'ok')",
        params![now, account, kind.register_event()],
    )?;
    Ok(())
}

/// An account's counter row of `kind`, as stored.
fn read_counter(
    c: Sql<'_>,
    account: &str,
    kind: RecordKind,
) -> Result<Option<CounterRow>, DbError> {
    Ok(c.query_row(
        "SELECT count, generation, mac FROM guesses WHERE account = ?1 AND kind = ?2",
        params![account, kind.code()],
        |r| {
            Ok(CounterRow {
                count: r.get(0)?,
                generation: r.get(1)?,
                tag: r.get(2)?,
            })
        },
    )
    .optional()?)
}

/// Writes (creates or replaces) a counter row with its tag.
fn write_counter(c: Sql<'_>, w: &CounterWrite) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO guesses(account, kind, count, generation, mac) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(account, kind) DO UPDATE SET count = excluded.count,
           generation = excluded.generation, mac = excluded.mac",
        params![w.account, w.kind.code(), w.count, w.generation, w.tag],
    )?;
    Ok(())
}

/// An account's record of `kind` in its table.
fn read_record(c: Sql<'_>, account: &str, kind: RecordKind) -> Result<Option<Vec<u8>>, DbError> {
    Ok(c.query_row(
        &format!("SELECT sealed FROM {} WHERE account = ?1", kind.table()),
        params![account],
        |r| r.get(0),
    )
    .optional()?)
}

/// The verified count of an account's `kind` and the generation it counts against.
fn verified_count(
    c: Sql<'_>,
    integrity: &Integrity,
    account: &str,
    kind: RecordKind,
) -> Result<(i64, Vec<u8>), DbError> {
    let row = read_counter(c, account, kind)?;
    let record = read_record(c, account, kind)?;
    integrity.verified_count(account, kind, row.as_ref(), record.as_deref())
}

thread_local! {
    /// Set by a job of the writer thread that destroyed key material: after the batch commits,
    /// the writer truncates the WAL so that no old frame keeps a copy.
    static DESTROYED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Deletes what holds a copy of an account's record of `kind` besides the record itself: a
/// last guess's held copy and the pending login sessions (which hold what the record releases).
fn destroy_copies(c: Sql<'_>, account: &str, kind: RecordKind) -> Result<(), DbError> {
    c.execute(
        "DELETE FROM held WHERE account = ?1 AND kind = ?2",
        params![account, kind.code()],
    )?;
    c.execute(
        "DELETE FROM sessions WHERE account = ?1 AND substr(id, 1, length(?2)) = ?2",
        params![account, kind.login_session_prefix()],
    )?;
    DESTROYED.set(true);
    Ok(())
}

/// Destroys the account's record of `kind` (its guess limit is reached) and every copy of it.
fn destroy(c: Sql<'_>, account: &str, kind: RecordKind) -> Result<(), DbError> {
    c.execute(
        &format!("DELETE FROM {} WHERE account = ?1", kind.table()),
        params![account],
    )?;
    destroy_copies(c, account, kind)?;
    if kind == RecordKind::Passkey {
        c.execute(
            "DELETE FROM passkey_credentials WHERE account = ?1",
            params![account],
        )?;
    }
    Ok(())
}

/// The writer's connection as its jobs see it: every statement is prepared once and then
/// taken from the connection's cache. Re-preparing each statement (and each `SAVEPOINT`,
/// `BEGIN`, `COMMIT`) on every call was about a sixth of the vault's CPU per login.
#[derive(Clone, Copy)]
pub(crate) struct Sql<'a>(&'a Connection);

impl<'a> Sql<'a> {
    /// A statement to step through rows of (prepared once, cached).
    pub(crate) fn prepare(self, sql: &str) -> rusqlite::Result<rusqlite::CachedStatement<'a>> {
        self.0.prepare_cached(sql)
    }

    /// Runs one statement; returns the number of rows changed.
    pub(crate) fn execute<P: rusqlite::Params>(self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.0.prepare_cached(sql)?.execute(p)
    }

    /// Runs one query and maps its first row (an error when there is none).
    pub(crate) fn query_row<T, P, F>(self, sql: &str, p: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.0.prepare_cached(sql)?.query_row(p, f)
    }
}

/// Runs `f` in a savepoint: its changes stay only if it succeeds.
fn in_savepoint<T>(
    c: &Connection,
    f: impl FnOnce(Sql<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let sql = Sql(c);
    sql.execute("SAVEPOINT op", [])?;
    match f(sql) {
        Ok(v) => {
            sql.execute("RELEASE op", [])?;
            Ok(v)
        }
        Err(e) => {
            sql.execute("ROLLBACK TO op", [])?;
            sql.execute("RELEASE op", [])?;
            Err(e)
        }
    }
}

/// The writer thread: batches jobs into one transaction each, answers after the commit.
fn writer(conn: Connection, queue: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let sql = Sql(&conn);
        if let Err(e) = sql.execute("BEGIN IMMEDIATE", []).map_err(DbError::from) {
            // Nothing runs, nothing is counted, and every caller hears why.
            tracing::error!(error = %e, "cannot begin a database transaction");
            for job in batch {
                job(Err(e.clone()))(Err(e.clone()));
            }
            continue;
        }
        let done: Vec<Completion> = batch.into_iter().map(|job| job(Ok(&conn))).collect();
        let committed = sql.execute("COMMIT", []).map(drop).map_err(DbError::from);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        if DESTROYED.replace(false) {
            // The deleted cells are zeroed (secure_delete); the WAL's older frames still hold
            // them until it is checkpointed and truncated.
            if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
                tracing::warn!(error = %e, "cannot truncate the WAL after destroying a record");
            }
        }
        for complete in done {
            complete(committed.clone());
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::new(e.to_string())
    }
}

/// One operation for the writer thread: it runs inside the batch's transaction (in its own
/// savepoint), or is told the transaction could not begin, and returns what to do once the
/// batch's commit is known.
type Job = Box<dyn FnOnce(Result<&Connection, DbError>) -> Completion + Send>;
type Completion = Box<dyn FnOnce(Result<(), DbError>) + Send>;

/// Statements kept prepared: more than the distinct statements the vault runs.
const STATEMENT_CACHE: usize = 256;

/// Operations waiting at most this many are committed together.
const MAX_BATCH: usize = 512;

/// The SQLite database, shared by the server's tasks.
///
/// One writer thread owns the connection and commits operations in batches (group commit): it
/// takes every operation waiting, runs each in its own savepoint inside one `BEGIN IMMEDIATE`
/// transaction, commits once (one fsync), and only then answers each caller. A caller therefore
/// never learns of an effect that is not durable, and under load the cost of the fsync is shared.
#[derive(Clone)]
pub struct SqliteDb {
    jobs: std::sync::mpsc::Sender<Job>,
    pub(crate) binding: Binding,
}

const SCHEMA: &str = "
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
PRAGMA secure_delete=ON;
CREATE TABLE IF NOT EXISTS setup(id INTEGER PRIMARY KEY CHECK (id = 1), sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records(account TEXT PRIMARY KEY, sealed BLOB NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS attempts(account TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS held(session TEXT PRIMARY KEY, account TEXT NOT NULL, kind INTEGER NOT NULL, sealed BLOB NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS guesses(account TEXT NOT NULL, kind INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(account, kind));
CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, account TEXT NOT NULL, sealed BLOB NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, time INTEGER NOT NULL, account TEXT NOT NULL, event TEXT NOT NULL, outcome TEXT NOT NULL, remaining INTEGER, source TEXT);
CREATE TABLE IF NOT EXISTS passkeys(account TEXT PRIMARY KEY, sealed BLOB NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS passkey_credentials(credential_id TEXT PRIMARY KEY, account TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS passkey_credentials_account ON passkey_credentials(account);
CREATE TABLE IF NOT EXISTS integrity(id INTEGER PRIMARY KEY CHECK (id = 1), sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tvr_records(account TEXT PRIMARY KEY, sealed BLOB NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tvr_versions(account TEXT NOT NULL, version BLOB NOT NULL, PRIMARY KEY(account, version));
";

/// The columns that bind a counter row to its record and carry its tag (issue 14), added to a
/// database made before them.
const COUNTER_TAG_COLUMNS: &str = "
ALTER TABLE guesses ADD COLUMN generation BLOB;
ALTER TABLE guesses ADD COLUMN mac BLOB;
";

/// The upgrade from one shared count per account (`attempts`, before issue 14) to one count per
/// record kind (`guesses`): the shared count becomes each kind's count, so no count is lowered.
/// Runs at every open; once `attempts` is empty it does nothing.
const SPLIT_SHARED_COUNTS: &str = "
BEGIN IMMEDIATE;
INSERT INTO guesses(account, kind, count) SELECT account, 1, count FROM attempts WHERE true
  ON CONFLICT(account, kind) DO UPDATE SET count = max(guesses.count, excluded.count);
INSERT INTO guesses(account, kind, count) SELECT account, 2, count FROM attempts WHERE true
  ON CONFLICT(account, kind) DO UPDATE SET count = max(guesses.count, excluded.count);
DELETE FROM attempts;
COMMIT;
";

impl SqliteDb {
    /// Opens (and creates) the database file, and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.execute_batch(SCHEMA)?;
        let tagged: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM pragma_table_info('guesses') WHERE name = 'mac')",
            [],
            |r| r.get(0),
        )?;
        if !tagged {
            conn.execute_batch(COUNTER_TAG_COLUMNS)?;
        }
        conn.execute_batch(SPLIT_SHARED_COUNTS)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sealback-vault-sqlite".into())
            .spawn(move || writer(conn, queue))
            .map_err(|e| DbError::new(format!("cannot start the database thread: {e}")))?;
        Ok(Self {
            jobs,
            binding: Binding::default(),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(Sql<'_>) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |c: Result<&Connection, DbError>| {
            let result = c.and_then(|c| in_savepoint(c, f));
            Box::new(move |committed: Result<(), DbError>| {
                let _ = tx.send(committed.and(result));
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| DbError::new("the database thread has stopped".into()))?;
        rx.await
            .map_err(|_| DbError::new("the database thread has stopped".into()))?
    }

    /// The sealed OPAQUE server setup, creating it with `make` if no process has yet.
    pub async fn setup(
        &self,
        make: impl FnOnce() -> Vec<u8> + Send + 'static,
    ) -> Result<Vec<u8>, DbError> {
        self.with(move |c| {
            let tx = c;
            let existing: Option<Vec<u8>> = tx
                .query_row("SELECT sealed FROM setup WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            let sealed = match existing {
                Some(s) => s,
                None => {
                    let s = make();
                    tx.execute("INSERT INTO setup(id, sealed) VALUES (1, ?1)", params![s])?;
                    s
                }
            };
            Ok(sealed)
        })
        .await
    }

    /// Creates or replaces a record and resets its guess count.
    pub async fn put_record(
        &self,
        account: String,
        kind: RecordKind,
        sealed: Vec<u8>,
        now: i64,
    ) -> Result<(), DbError> {
        let integrity = self.binding.get()?;
        self.with(move |c| store_record(c, &integrity, kind, &account, &sealed, now))
            .await
    }

    /// See [`Db::put_fresh_realm_record`].
    pub async fn put_fresh_realm_record(
        &self,
        account: String,
        version: [u8; 16],
        sealed: Vec<u8>,
        now: i64,
    ) -> Result<bool, DbError> {
        let integrity = self.binding.get()?;
        self.with(move |c| {
            let fresh = c.execute(
                "INSERT INTO tvr_versions(account, version) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![account, &version[..]],
            )? == 1;
            if fresh {
                store_record(c, &integrity, RecordKind::Realm, &account, &sealed, now)?;
            }
            Ok(fresh)
        })
        .await
    }

    /// See [`Db::record`].
    pub async fn record(
        &self,
        account: String,
        kind: RecordKind,
    ) -> Result<Option<Vec<u8>>, DbError> {
        self.with(move |c| read_record(c, &account, kind)).await
    }

    /// See [`Db::delete_record`].
    pub async fn delete_record(&self, account: String, kind: RecordKind) -> Result<bool, DbError> {
        self.with(move |c| {
            let existed = read_record(c, &account, kind)?.is_some();
            destroy(c, &account, kind)?;
            Ok(existed)
        })
        .await
    }

    /// Counts one guess against the account's record of `kind`, durably, and says whether it
    /// may proceed. Going over the limit destroys that record; the last allowed guess moves it,
    /// in the same transaction, into `held` under the login's session id.
    pub async fn begin_attempt(
        &self,
        account: String,
        kind: RecordKind,
        limit: u32,
        login: LoginRef,
        now: i64,
        source: String,
    ) -> Result<Attempt, DbError> {
        let integrity = self.binding.get()?;
        self.with(move |c| {
            let tx = c;
            let (counted, generation) = match verified_count(tx, &integrity, &account, kind) {
                Err(DbError::Tampered(why)) => {
                    // Fail closed, and keep the evidence: nothing is counted or released.
                    tx.execute(
                        "INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES (?1, ?2, 'integrity', ?3, 0, ?4)",
                        params![now, account, format!("refused {}: {why}", kind.login_event()), source],
                    )?;
                    return Ok(Attempt::Tampered(why));
                }
                other => other?,
            };
            let count = counted + 1;
            write_counter(tx, &integrity.counter(&account, kind, &generation, count))?;
            let count = count as u32;
            if count > limit {
                destroy(tx, &account, kind)?;
                tx.execute(
                    "INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES (?1, ?2, ?3, 'locked', 0, ?4)",
                    params![now, account, kind.login_event(), source],
                )?;
                return Ok(Attempt::Locked);
            }
            let record: Option<Vec<u8>> = tx
                .query_row(
                    &format!("SELECT sealed FROM {} WHERE account = ?1", kind.table()),
                    params![account],
                    |r| r.get(0),
                )
                .optional()?;
            let held = count == limit && record.is_some();
            if let (true, Some(s)) = (held, &record) {
                tx.execute(
                    "INSERT INTO held(session, account, kind, sealed, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![login.session, account, kind.code(), s, login.expires],
                )?;
                tx.execute(
                    &format!("DELETE FROM {} WHERE account = ?1", kind.table()),
                    params![account],
                )?;
            }
            tx.execute(
                "INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES (?1, ?2, ?3, 'counted', ?4, ?5)",
                params![now, account, kind.login_event(), limit - count, source],
            )?;
            Ok(Attempt::Proceed(Guess { count, record, held }))
        })
        .await
    }

    /// Stores an account's passkey record and the index of its credentials (resetting its
    /// guess count if it replaces a record). Returns false (and changes nothing) when one of the credentials is
    /// registered to another account.
    pub async fn put_passkey_record(
        &self,
        account: String,
        sealed: Vec<u8>,
        credential_ids: Vec<String>,
        now: i64,
    ) -> Result<bool, DbError> {
        let integrity = self.binding.get()?;
        self.with(move |c| {
            for id in &credential_ids {
                let owner: Option<String> = c
                    .query_row(
                        "SELECT account FROM passkey_credentials WHERE credential_id = ?1",
                        params![id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if owner.is_some_and(|o| o != account) {
                    return Ok(false);
                }
            }
            c.execute(
                "DELETE FROM passkey_credentials WHERE account = ?1",
                params![account],
            )?;
            for id in &credential_ids {
                c.execute(
                    "INSERT INTO passkey_credentials(credential_id, account) VALUES (?1, ?2)",
                    params![id, account],
                )?;
            }
            store_record(c, &integrity, RecordKind::Passkey, &account, &sealed, now)?;
            Ok(true)
        })
        .await
    }

    /// See [`Db::update_record`].
    pub async fn update_record(
        &self,
        account: String,
        kind: RecordKind,
        old: Vec<u8>,
        new: Vec<u8>,
    ) -> Result<bool, DbError> {
        self.with(move |c| {
            Ok(c.execute(
                &format!(
                    "UPDATE {} SET sealed = ?3 WHERE account = ?1 AND sealed = ?2",
                    kind.table()
                ),
                params![account, old, new],
            )? == 1)
        })
        .await
    }

    /// The sealed passkey record of an account.
    pub async fn passkey_record(&self, account: String) -> Result<Option<Vec<u8>>, DbError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT sealed FROM passkeys WHERE account = ?1",
                params![account],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// The account a credential is registered to.
    pub async fn passkey_account(&self, credential_id: String) -> Result<Option<String>, DbError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT account FROM passkey_credentials WHERE credential_id = ?1",
                params![credential_id],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// The account of a live session, leaving it in place.
    pub async fn session_account(&self, id: String, now: i64) -> Result<Option<String>, DbError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT account FROM sessions WHERE id = ?1 AND expires >= ?2",
                params![id, now],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// Stores a login's sealed server state until `expires`.
    pub async fn put_session(
        &self,
        id: String,
        account: String,
        sealed: Vec<u8>,
        expires: i64,
    ) -> Result<(), DbError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions(id, account, sealed, expires) VALUES (?1, ?2, ?3, ?4)",
                params![id, account, sealed, expires],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes sessions that expired before `now`, and destroys the records their (abandoned)
    /// last guesses held.
    pub async fn delete_expired_sessions(&self, now: i64) -> Result<u64, DbError> {
        self.with(move |c| {
            if c.execute("DELETE FROM held WHERE expires < ?1", params![now])? > 0 {
                DESTROYED.set(true);
            }
            Ok(c.execute("DELETE FROM sessions WHERE expires < ?1", params![now])? as u64)
        })
        .await
    }

    /// See [`Db::held_record`].
    pub async fn held_record(&self, session: String) -> Result<Option<Vec<u8>>, DbError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT sealed FROM held WHERE session = ?1",
                params![session],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// See [`Db::drop_held`].
    pub async fn drop_held(&self, session: String) -> Result<(), DbError> {
        self.with(move |c| {
            if c.execute("DELETE FROM held WHERE session = ?1", params![session])? > 0 {
                DESTROYED.set(true);
            }
            Ok(())
        })
        .await
    }

    /// Takes (and deletes) a live session.
    pub async fn take_session(
        &self,
        id: String,
        now: i64,
    ) -> Result<Option<(String, Vec<u8>)>, DbError> {
        self.with(move |c| {
            let tx = c;
            let row: Option<(String, Vec<u8>, i64)> = tx
                .query_row(
                    "SELECT account, sealed, expires FROM sessions WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            tx.execute("DELETE FROM sessions WHERE id = ?1", params![id])?;
            Ok(row
                .filter(|(_, _, exp)| *exp >= now)
                .map(|(a, s, _)| (a, s)))
        })
        .await
    }

    /// A login of `kind` succeeded: reset that kind's count (and no other), put back the
    /// record a last guess held under `session`, and store an updated record (a passkey's
    /// counter and flags).
    pub async fn login_succeeded(
        &self,
        account: String,
        kind: RecordKind,
        session: String,
        update: Option<Vec<u8>>,
        now: i64,
        source: String,
    ) -> Result<(), DbError> {
        let integrity = self.binding.get()?;
        self.with(move |c| {
            let tx = c;
            tx.execute(
                &format!(
                    "INSERT INTO {}(account, sealed, created) SELECT account, sealed, ?2 FROM held WHERE session = ?1 ON CONFLICT(account) DO NOTHING",
                    kind.table()
                ),
                params![session, now],
            )?;
            tx.execute("DELETE FROM held WHERE session = ?1", params![session])?;
            if let Some(sealed) = update {
                tx.execute(
                    &format!("UPDATE {} SET sealed = ?2 WHERE account = ?1", kind.table()),
                    params![account, sealed],
                )?;
            }
            // The count starts again at zero, bound to the record the login verified against.
            match read_record(tx, &account, kind)? {
                Some(record) => {
                    let generation = crate::integrity::generation_of(&record)
                        .ok_or_else(|| DbError::Tampered("a record is not in the bound form".into()))?;
                    write_counter(tx, &integrity.counter(&account, kind, &generation, 0))?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM guesses WHERE account = ?1 AND kind = ?2",
                        params![account, kind.code()],
                    )?;
                }
            }
            tx.execute(
                "INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES (?1, ?2, ?3, 'ok', NULL, ?4)",
                params![now, account, kind.login_event(), source],
            )?;
            Ok(())
        })
        .await
    }

    /// Appends to the audit trail.
    pub async fn audit(&self, e: AuditEntry) -> Result<(), DbError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO audit(time, account, event, outcome, remaining, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![e.time, e.account, e.event, e.outcome, e.remaining, e.source],
            )?;
            Ok(())
        })
        .await
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, DbError> {
        self.with(move |c| {
            let mut st = c.prepare(
                "SELECT time, account, event, outcome, remaining, source FROM audit ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st
                .query_map(params![limit], |r| {
                    Ok(AuditEntry {
                        time: r.get(0)?,
                        account: r.get(1)?,
                        event: r.get(2)?,
                        outcome: r.get(3)?,
                        remaining: r.get(4)?,
                        source: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Whether the account has a record of this kind (for operators and tests).
    pub async fn has_record(&self, account: String, kind: RecordKind) -> Result<bool, DbError> {
        self.with(move |c| {
            Ok(c.query_row(
                &format!("SELECT count(*) FROM {} WHERE account = ?1", kind.table()),
                params![account],
                |r| r.get::<_, i64>(0),
            )? > 0)
        })
        .await
    }

    /// Guesses counted against an account's record of `kind`.
    pub async fn attempts(&self, account: String, kind: RecordKind) -> Result<u32, DbError> {
        let integrity = self.binding.get()?;
        self.with(move |c| Ok(verified_count(c, &integrity, &account, kind)?.0 as u32))
            .await
    }

    /// See [`Db::upgrade_integrity`].
    pub async fn upgrade_integrity(&self) -> Result<bool, DbError> {
        let integrity = self.binding.get()?;
        self.with(move |c| {
            let marker: Option<Vec<u8>> = c
                .query_row("SELECT sealed FROM integrity WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(marker) = marker {
                integrity.check_marker(&marker)?;
                return Ok(false);
            }
            let tagged: bool = c.query_row(
                "SELECT EXISTS(SELECT 1 FROM guesses WHERE mac IS NOT NULL)",
                [],
                |r| r.get(0),
            )?;
            if tagged {
                return Err(DbError::Tampered(MARKER_MISSING.into()));
            }
            let mut records = Vec::new();
            for kind in RecordKind::ALL {
                let mut st = c.prepare(&format!("SELECT account, sealed FROM {}", kind.table()))?;
                let rows = st.query_map([], |r| {
                    Ok(StoredRecord {
                        kind,
                        account: r.get(0)?,
                        held_session: None,
                        sealed: r.get(1)?,
                    })
                })?;
                records.extend(rows.collect::<Result<Vec<_>, _>>()?);
            }
            let mut st = c.prepare("SELECT session, account, kind, sealed FROM held")?;
            let held = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })?;
            for row in held {
                let (session, account, code, sealed) = row?;
                if let Some(kind) = RecordKind::from_code(code) {
                    records.push(StoredRecord {
                        kind,
                        account,
                        held_session: Some(session),
                        sealed,
                    });
                }
            }
            let mut st = c.prepare("SELECT account, kind, count FROM guesses")?;
            let counters = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u8>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter_map(|(a, code, n)| Some((a, RecordKind::from_code(code)?, n)))
                .collect::<Vec<_>>();
            let writes = integrity.plan_upgrade(&mut records, &counters);
            for r in &records {
                match &r.held_session {
                    None => c.execute(
                        &format!(
                            "UPDATE {} SET sealed = ?2 WHERE account = ?1",
                            r.kind.table()
                        ),
                        params![r.account, r.sealed],
                    )?,
                    Some(session) => c.execute(
                        "UPDATE held SET sealed = ?2 WHERE session = ?1",
                        params![session, r.sealed],
                    )?,
                };
            }
            for w in &writes {
                write_counter(c, w)?;
            }
            c.execute(
                "INSERT INTO integrity(id, sealed) VALUES (1, ?1)",
                params![integrity.marker()],
            )?;
            Ok(true)
        })
        .await
    }
}
