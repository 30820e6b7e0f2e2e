//! The vault's logic, independent of HTTP: account proofs, rate limits, registration, login with
//! the guess limit, the audit trail and what it stores. The clock is injected so that session
//! expiry, proof expiry, rate limits and audit windows can be driven by tests.

use crate::db::{Attempt, AuditEntry, Db, DbError, Guess, LoginRef, RecordKind};
use crate::integrity::Integrity;
use crate::limits::{RateLimit, RateLimiter};
use crate::metrics::Metrics;
use crate::monitor::{Monitor, MonitorOptions};
use crate::rollout::{Reload, Rollout};
use crate::sealer::Sealer;
use crate::sessions::Ceremony;
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand08::rngs::OsRng;
use rand08::RngCore;
use sealback_proto::proof::{self, OperatorKey, Scope, VaultId};
use sealback_proto::{self as proto, Suite};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The time source.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;
impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// Why a request failed. Messages never carry secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The guess limit is reached; the record is destroyed.
    #[error("no more attempts: the key held for this account has been destroyed")]
    Locked,
    /// The login did not complete (wrong password).
    #[error("login failed; {remaining} attempts remain before the key is destroyed")]
    LoginFailed {
        /// Guesses left.
        remaining: u32,
    },
    /// The session is unknown or expired.
    #[error("the login session expired or is unknown; start again")]
    SessionExpired,
    /// The account proof is missing or invalid.
    #[error("account proof refused: {0}")]
    Unauthorized(String),
    /// Too many requests from this client or for this account; retry after some seconds.
    #[error("too many requests: try again in {retry_after} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The vault is configured wrongly (at start).
    #[error("vault configuration: {0}")]
    Config(String),
    /// A malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A well-formed passkey registration that the relying party refused (its origin or RP
    /// id is not this vault's, or user verification is missing): the client should ask the
    /// browser to forget the passkey it just made.
    #[error("the passkey was not accepted: {0}")]
    PasskeyRefused(String),
    /// This vault does not offer what was asked (passkeys without a relying party).
    #[error("not configured on this vault: {0}")]
    NotConfigured(String),
    /// The account has no key of the kind asked for.
    #[error("{0}")]
    NotFound(String),
    /// The request body is larger than the vault reads.
    #[error("request too large")]
    TooLarge,
    /// The route exists, but not with this HTTP method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The account's stored counter or record failed its integrity check (edited, deleted,
    /// moved or put back by someone with write access to the database): refused until an
    /// operator looks at the audit trail.
    #[error("this account's stored key failed its integrity check, so the vault refuses to use it; the operator must look at the vault's audit trail (event \"integrity\") before anything else is tried")]
    Integrity(String),
    /// A realm confirm carried a wrong unlock tag; nothing changed.
    #[error("the unlock tag is not this realm's")]
    TagRefused,
    /// Storage or sealing failed.
    #[error("internal error")]
    Internal(String),
}

impl From<DbError> for VaultError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Tampered(why) => VaultError::Integrity(why),
            DbError::Failed(_) => VaultError::Internal(e.to_string()),
        }
    }
}

/// How a vault runs.
pub struct VaultOptions {
    /// Wrong guesses allowed per record.
    pub guess_limit: u32,
    /// Seconds a login may take between start and finish.
    pub session_ttl: i64,
    /// Accept any account proof, or none (demo and tests only; says so loudly at start).
    pub dev_accounts: bool,
    /// The operator's Ed25519 public keys (more than one while rotating). Without `dev_accounts`
    /// at least one is required.
    pub operator_keys: Vec<OperatorKey>,
    /// Login attempts per account (after its proof is checked, before the guess is counted).
    pub account_rate: RateLimit,
    /// Requests per client address, for every route.
    pub source_rate: RateLimit,
    /// When the audit monitor flags a client address.
    pub monitor: MonitorOptions,
    /// The staged-rollout rules file ([`crate::rollout`]); without one every protector is
    /// offered to everyone.
    pub rollout_file: Option<std::path::PathBuf>,
    /// The WebAuthn relying party for passkeys ([`crate::passkeys`]); without one the passkey
    /// routes answer `not_configured`.
    pub relying_party: Option<crate::passkeys::RelyingParty>,
    /// Seconds a passkey session token (from a passkey login or sign-in) stays valid.
    pub account_session_ttl: i64,
    /// Let a passkey session token stand in for the operator's account proof.
    pub sessions_as_proof: bool,
    /// Run as a threshold realm too (tvr1, [`crate::realm`]); `None`: the `/v1/tvr` routes
    /// answer `not_configured`.
    pub realm: Option<crate::realm::RealmOptions>,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            guess_limit: proto::DEFAULT_GUESS_LIMIT,
            session_ttl: 120,
            dev_accounts: false,
            operator_keys: Vec::new(),
            account_rate: RateLimit { per_minute: 6 },
            source_rate: RateLimit { per_minute: 600 },
            monitor: MonitorOptions::default(),
            rollout_file: None,
            relying_party: None,
            account_session_ttl: 600,
            sessions_as_proof: false,
            realm: None,
        }
    }
}

/// The vault.
pub struct Vault {
    pub(crate) db: Db,
    pub(crate) sealer: Arc<dyn Sealer>,
    setup: ServerSetup<Suite>,
    /// This vault's id (from its OPAQUE public key): the audience its account proofs must name.
    id: VaultId,
    /// Makes the credential identifier of an account without a record (see [`Self::unknown_credential_id`]).
    unknown_key: ring::hmac::Key,
    pub(crate) options: VaultOptions,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) account_limiter: RateLimiter,
    /// Registration starts per account (each evaluates the OPRF once, under a fresh key).
    register_limiter: RateLimiter,
    source_limiter: RateLimiter,
    monitor: Monitor,
    pub(crate) metrics: Metrics,
    /// Deletes expired login sessions every [`SESSION_SWEEP_SECONDS`]; stopped with the vault.
    _sweeper: AbortOnDrop,
    rollout: Rollout,
    /// Re-reads the rollout rules file when it changes; stopped with the vault.
    _rollout_watcher: Option<AbortOnDrop>,
    /// The WebAuthn relying party, when configured.
    pub(crate) webauthn: Option<webauthn_rs::Webauthn>,
    /// The threshold realm's keys, in realm mode.
    pub(crate) realm: Option<crate::realm::Realm>,
}

/// How often expired login sessions are deleted. Expired sessions are refused either way; the
/// sweep only keeps the table small (and drops a record held by an abandoned last guess).
pub const SESSION_SWEEP_SECONDS: u64 = 30;

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes a change of the rollout rules to the audit trail and the log.
async fn audit_rollout(db: &Db, now: i64, outcome: &Reload) {
    let outcome = match outcome {
        Reload::Unchanged => return,
        Reload::Applied { version, rules } => {
            tracing::info!(%version, rules, "rollout rules in force");
            format!("applied {version}")
        }
        Reload::Rejected(why) => {
            tracing::error!(error = %why, "rollout rules file refused; the previous rules stay");
            "rejected".to_string()
        }
    };
    let entry = AuditEntry {
        time: now,
        account: String::new(),
        event: "rollout".into(),
        outcome,
        remaining: None,
        source: None,
    };
    if let Err(e) = db.audit(entry).await {
        tracing::warn!(error = %e, "cannot audit a rollout change");
    }
}

const SETUP_AAD: &[u8] = b"sealback vault 2026-11-25 server setup";

/// A ceremony's state between its two requests: length-prefixed fields, wiped when dropped.
pub(crate) type Fields = Vec<Zeroizing<Vec<u8>>>;

pub(crate) fn encode_fields(fields: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::new());
    for f in fields {
        v.extend_from_slice(&(f.len() as u32).to_be_bytes());
        v.extend_from_slice(f);
    }
    v
}

/// The fields of `v`; `None` unless `v` is exactly a sequence of fields (no leftover bytes).
pub(crate) fn decode_fields(mut v: &[u8]) -> Option<Fields> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let (field, rest) = split_field(v)?;
        out.push(Zeroizing::new(field.to_vec()));
        v = rest;
    }
    Some(out)
}

/// Random bytes, hex (session ids and tokens).
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// The version byte of a password record that carries its own credential identifier. A
/// version-1 record (before issue 14) has no version byte: it starts with the big-endian
/// length of its password file, whose first byte is 0, and its identifier is the account.
const RECORD_V2: u8 = 2;

/// The length of a fresh credential identifier (random, chosen at `register/start`).
const CREDENTIAL_ID_LEN: usize = 32;

/// A stored password record (version 2): the OPAQUE credential identifier the record's OPRF key
/// is derived from, the OPAQUE password file and the client's wrapped key.
fn encode_record(credential_id: &[u8], password_file: &[u8], wrapped: &[u8]) -> Vec<u8> {
    let mut v = vec![RECORD_V2];
    v.extend_from_slice(&encode_fields(&[credential_id, password_file]));
    v.extend_from_slice(wrapped);
    v
}

/// An opened password record: the credential identifier, the password file, the wrapped key.
struct PasswordRecord<'a> {
    credential_id: std::borrow::Cow<'a, [u8]>,
    file: &'a [u8],
    wrapped: &'a [u8],
}

/// An opened password record, owned: credential identifier, password file, wrapped key.
type OpenedRecord = (Vec<u8>, ServerRegistration<Suite>, Vec<u8>);

/// One length-prefixed field at the start of `v`, and the rest.
fn split_field(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize;
    let rest = v.get(4..)?;
    (rest.len() >= n).then(|| rest.split_at(n))
}

fn decode_record<'a>(account: &'a str, v: &'a [u8]) -> Option<PasswordRecord<'a>> {
    match *v.first()? {
        RECORD_V2 => {
            let (credential_id, rest) = split_field(&v[1..])?;
            let (file, wrapped) = split_field(rest)?;
            Some(PasswordRecord {
                credential_id: credential_id.into(),
                file,
                wrapped,
            })
        }
        // Version 1: the account was the credential identifier.
        0 => {
            let (file, wrapped) = split_field(v)?;
            Some(PasswordRecord {
                credential_id: account.as_bytes().into(),
                file,
                wrapped,
            })
        }
        _ => None,
    }
}

/// The key that makes an unknown account's (fake) credential identifier: derived from the
/// sealed server setup, so it is as secret and as stable as the OPRF seed itself.
fn unknown_account_key(setup: &[u8]) -> ring::hmac::Key {
    let salt = ring::hkdf::Salt::new(
        ring::hkdf::HKDF_SHA256,
        b"sealback vault 2026-12-02 unknown-account credential identifiers",
    );
    salt.extract(setup)
        .expand(&[], ring::hmac::HMAC_SHA256)
        .expect("one HMAC key")
        .into()
}

pub(crate) fn valid_account(account: &str) -> Result<(), VaultError> {
    if account.is_empty() || account.len() > 256 || account.chars().any(|c| c.is_control()) {
        return Err(VaultError::BadRequest(
            "an account is 1-256 printable characters".into(),
        ));
    }
    Ok(())
}

impl Vault {
    /// Opens the vault over a database and a sealer, creating the OPAQUE server setup on first
    /// use (sealed: the database alone does not hold it).
    pub async fn new(
        db: Db,
        sealer: Arc<dyn Sealer>,
        options: VaultOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        if !options.dev_accounts && options.operator_keys.is_empty() {
            return Err(VaultError::Config(
                "no operator key: give the messaging app operator's Ed25519 public key (--operator-key), or --dev for a demo".into(),
            ));
        }
        let s2 = sealer.clone();
        let sealed = db
            .setup(move || {
                let setup = ServerSetup::<Suite>::new(&mut OsRng);
                s2.seal(SETUP_AAD, &setup.serialize())
            })
            .await?;
        let bytes = zeroize::Zeroizing::new(sealer.open(SETUP_AAD, &sealed).ok_or_else(|| {
            VaultError::Internal(
                "the server setup does not open with this key (wrong key file or token?)".into(),
            )
        })?);
        let setup = ServerSetup::<Suite>::deserialize(&bytes)
            .map_err(|e| VaultError::Internal(format!("server setup: {e:?}")))?;
        db.bind(Integrity::new(sealer.clone()));
        match db.upgrade_integrity().await {
            Ok(true) => tracing::info!("database upgraded: records bound, counters tagged"),
            Ok(false) => {}
            Err(DbError::Tampered(why)) => {
                return Err(VaultError::Config(format!(
                    "the database failed its integrity check ({why}); the vault will not start on it: restore it from a copy you trust, or investigate"
                )))
            }
            Err(e) => return Err(e.into()),
        }
        if options.dev_accounts {
            tracing::warn!(
                "DEVELOPMENT MODE: any account proof is accepted; never run this for real users"
            );
        }
        let sweeper = {
            let (db, clock) = (db.clone(), clock.clone());
            AbortOnDrop(tokio::spawn(async move {
                let mut every =
                    tokio::time::interval(std::time::Duration::from_secs(SESSION_SWEEP_SECONDS));
                loop {
                    every.tick().await;
                    if let Err(e) = db.delete_expired_sessions(clock.now_unix()).await {
                        tracing::warn!(error = %e, "cannot delete expired sessions");
                    }
                }
            }))
        };
        let rollout = Rollout::everyone();
        let rollout_watcher = match &options.rollout_file {
            None => None,
            Some(path) => {
                match rollout.reload(path) {
                    Reload::Rejected(why) => {
                        return Err(VaultError::Config(format!("rollout rules: {why}")))
                    }
                    outcome => audit_rollout(&db, clock.now_unix(), &outcome).await,
                }
                let (db, clock, rollout, path) =
                    (db.clone(), clock.clone(), rollout.clone(), path.clone());
                Some(AbortOnDrop(tokio::spawn(async move {
                    let mut every = tokio::time::interval(std::time::Duration::from_secs(
                        crate::rollout::RELOAD_SECONDS,
                    ));
                    loop {
                        every.tick().await;
                        let outcome = rollout.reload(&path);
                        audit_rollout(&db, clock.now_unix(), &outcome).await;
                    }
                })))
            }
        };
        let webauthn = options
            .relying_party
            .as_ref()
            .map(crate::passkeys::RelyingParty::build)
            .transpose()?;
        let id = VaultId::of_server_key(&setup.keypair().public().serialize());
        let realm = options.realm.map(|o| crate::realm::Realm::new(&bytes, o));
        Ok(Self {
            webauthn,
            realm,
            db,
            sealer,
            setup,
            id,
            _sweeper: sweeper,
            rollout,
            _rollout_watcher: rollout_watcher,
            account_limiter: RateLimiter::new(options.account_rate),
            register_limiter: RateLimiter::new(options.account_rate),
            unknown_key: unknown_account_key(&bytes),
            source_limiter: RateLimiter::new(options.source_rate),
            monitor: Monitor::new(options.monitor),
            metrics: Metrics::default(),
            options,
            clock,
        })
    }

    /// `POST /v1/features`: which protectors this client is offered.
    pub fn features(
        &self,
        req: &proto::FeaturesRequest,
        source: &str,
    ) -> Result<proto::FeaturesReply, VaultError> {
        self.limit_source(source, self.clock.now_unix())?;
        valid_account(&req.account)?;
        for (what, v) in [
            ("platform", &req.platform),
            ("region", &req.region),
            ("app_version", &req.app_version),
        ] {
            if v.len() > 64 || v.chars().any(|c| c.is_control()) {
                return Err(VaultError::BadRequest(format!(
                    "{what} is at most 64 printable characters"
                )));
            }
        }
        let mut reply = self.rollout.evaluate(req);
        if self.webauthn.is_none() {
            // Whatever the rules say: this vault has no relying party for passkeys.
            for offer in &mut reply.protectors {
                if offer.protector == proto::protectors::VAULT_PASSKEY {
                    offer.offered = false;
                    offer.reason = Some("passkeys are not set up at this key vault".into());
                }
            }
        }
        for (protector, offer) in proto::protectors::ALL.iter().zip(&reply.protectors) {
            self.metrics
                .features_answered
                .get_or_create(&crate::metrics::OfferLabel {
                    protector,
                    offered: if offer.offered { "true" } else { "false" },
                })
                .inc();
        }
        Ok(reply)
    }

    /// The rollout rules in force.
    pub fn rollout(&self) -> &Rollout {
        &self.rollout
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The database (for operators and tests).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Registrations per account.
    pub(crate) fn limit_register(&self, account: &str, now: i64) -> Result<(), VaultError> {
        self.register_limiter
            .check(account, now)
            .map_err(|retry_after| VaultError::RateLimited { retry_after })
    }

    /// This vault's id: what slots name it by, and the audience of its account proofs
    /// (SPEC §7c).
    pub fn id(&self) -> VaultId {
        self.id
    }

    /// `GET /v1/info`.
    pub fn info(&self) -> proto::Info {
        proto::Info {
            version: "1".into(),
            server_public_key: self.setup.keypair().public().serialize().to_vec(),
            guess_limit: self.options.guess_limit,
            protocols: std::iter::once("opaque1")
                .chain(self.realm.as_ref().map(|_| sealback_tvr::PROTOCOL))
                .map(String::from)
                .collect(),
            realm: self.realm.as_ref().map(|r| r.info(self.id)),
        }
    }

    fn check_proof(
        &self,
        account: &str,
        token: &str,
        wanted: Scope,
        now: i64,
    ) -> Result<(), VaultError> {
        self.verify_proof(account, token, wanted, now).map(drop)
    }

    /// An operator's account proof for this vault, verified: its claims, or `None` when the
    /// vault runs with development accounts (no proof is needed).
    pub(crate) fn verify_proof(
        &self,
        account: &str,
        token: &str,
        wanted: Scope,
        now: i64,
    ) -> Result<Option<proof::Claims>, VaultError> {
        if self.options.dev_accounts {
            return Ok(None);
        }
        let keys = &self.options.operator_keys;
        proof::verify(token, keys, self.id, account, wanted, now)
            .map(Some)
            .map_err(|e| VaultError::Unauthorized(e.to_string()))
    }

    /// Checks an account proof, or (where the operator allows it) a passkey session token of
    /// the same account in its place.
    pub(crate) async fn authorize(
        &self,
        account: &str,
        proof: &str,
        wanted: Scope,
        now: i64,
    ) -> Result<(), VaultError> {
        if proof.starts_with(proto::SESSION_TOKEN_PREFIX) {
            if !self.options.sessions_as_proof {
                return Err(VaultError::Unauthorized(
                    "this vault does not accept a passkey session in place of an account proof"
                        .into(),
                ));
            }
            return match self.session_owner(proof, now).await? {
                Some(owner) if owner == account => Ok(()),
                _ => Err(VaultError::Unauthorized(
                    "the passkey session expired or belongs to another account".into(),
                )),
            };
        }
        self.check_proof(account, proof, wanted, now)
    }

    pub(crate) fn limit_source(&self, source: &str, now: i64) -> Result<(), VaultError> {
        self.source_limiter
            .check(source, now)
            .map_err(|retry_after| VaultError::RateLimited { retry_after })
    }

    /// Flags from the audit monitor go to the trail, the log (address only) and the metrics.
    pub(crate) async fn observe(
        &self,
        source: &str,
        account: &str,
        now: i64,
    ) -> Result<(), VaultError> {
        for flag in self.monitor.observe(source, account, now) {
            tracing::warn!(source, flag = flag.as_str(), "suspicious login activity");
            self.metrics
                .flags
                .get_or_create(&crate::metrics::KindLabel {
                    kind: flag.as_str(),
                })
                .inc();
            self.db
                .audit(AuditEntry {
                    time: now,
                    account: account.to_string(),
                    event: "flag".into(),
                    outcome: flag.as_str().into(),
                    remaining: None,
                    source: Some(source.to_string()),
                })
                .await?;
        }
        Ok(())
    }

    /// A login that did not verify: audits it (`event`, `why`) and says how many guesses are
    /// left. The log line carries the reason only, never the account.
    /// A failed last guess destroys the record it held.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn login_failed(
        &self,
        account: String,
        kind: RecordKind,
        session: &str,
        source: String,
        event: &str,
        why: &str,
        now: i64,
    ) -> Result<VaultError, VaultError> {
        self.db.drop_held(session.to_string()).await?;
        let used = self.db.attempts(account.clone(), kind).await;
        let used = self.audit_tampering(&account, used, &source, now).await?;
        let remaining = self.options.guess_limit.saturating_sub(used);
        tracing::info!(event, reason = why, "login refused");
        self.metrics.login("failed");
        self.db
            .audit(AuditEntry {
                time: now,
                account,
                event: event.into(),
                outcome: format!("failed: {why}"),
                remaining: Some(remaining),
                source: Some(source),
            })
            .await?;
        Ok(VaultError::LoginFailed { remaining })
    }

    /// What every login start passes before its guess is counted: the audit monitor sees it
    /// (before any limit, so that a flood or a spray is flagged even while refused), the
    /// client's rate, the account proof, then the account's rate (after the proof: nobody else
    /// can use up an account's rate).
    pub(crate) async fn admit_login(
        &self,
        account: &str,
        proof: &str,
        source: &str,
        now: i64,
    ) -> Result<(), VaultError> {
        valid_account(account)?;
        self.observe(source, account, now).await?;
        self.limit_source(source, now)
            .inspect_err(|_| self.metrics.login("rate_limited"))?;
        self.authorize(account, proof, Scope::Login, now)
            .await
            .inspect_err(|_| self.metrics.login("unauthorized"))?;
        self.account_limiter
            .check(account, now)
            .map_err(|retry_after| VaultError::RateLimited { retry_after })
            .inspect_err(|_| self.metrics.login("rate_limited"))
    }

    /// Counts one guess against `account`'s record of `kind` durably and refuses when that
    /// record's limit is reached.
    pub(crate) async fn count_guess(
        &self,
        account: &str,
        kind: RecordKind,
        session: &str,
        now: i64,
        source: String,
    ) -> Result<Guess, VaultError> {
        let login = LoginRef {
            session: session.to_string(),
            expires: self.session_expiry(now),
        };
        let limit = match (kind, &self.realm) {
            (RecordKind::Realm, Some(realm)) => u32::from(realm.options.evaluation_limit),
            _ => self.options.guess_limit,
        };
        let attempt = self
            .db
            .begin_attempt(account.to_string(), kind, limit, login, now, source)
            .await?;
        match attempt {
            Attempt::Locked => {
                tracing::info!(?kind, "login refused: guess limit reached");
                self.metrics.login("locked");
                Err(VaultError::Locked)
            }
            Attempt::Tampered(why) => {
                tracing::error!(?kind, reason = %why, "login refused: stored state failed its integrity check");
                self.metrics.login("integrity");
                Err(VaultError::Integrity(why))
            }
            Attempt::Proceed(guess) => {
                if guess.held {
                    self.metrics.last_guesses.inc();
                }
                Ok(guess)
            }
        }
    }

    /// An unknown account's credential identifier: deterministic (the same account gets the
    /// same fake answer every time, like a known one) and keyed by a vault secret, so that
    /// nobody can tell it from a record's random identifier nor evaluate it elsewhere.
    fn unknown_credential_id(&self, account: &str) -> Vec<u8> {
        let tag = ring::hmac::sign(&self.unknown_key, account.as_bytes());
        [b"unknown:".as_slice(), tag.as_ref()].concat()
    }

    /// Registration, first message. The OPRF is evaluated under a key no login uses: a fresh
    /// random credential identifier, kept (sealed, in the session) until `register/finish`
    /// stores it with the record. The start is rate limited per account and audited.
    pub async fn register_start(
        &self,
        req: &proto::RegisterStart,
        source: &str,
    ) -> Result<proto::RegisterStartReply, VaultError> {
        valid_account(&req.account)?;
        let now = self.clock.now_unix();
        self.limit_source(source, now)?;
        self.authorize(&req.account, &req.proof, Scope::Register, now)
            .await
            .inspect_err(|_| self.metrics.registration("unauthorized"))?;
        self.limit_register(&req.account, now)?;
        let request = RegistrationRequest::<Suite>::deserialize(&req.request)
            .map_err(|_| VaultError::BadRequest("not an OPAQUE registration request".into()))?;
        let mut credential_id = Zeroizing::new(vec![0u8; CREDENTIAL_ID_LEN]);
        OsRng.fill_bytes(&mut credential_id);
        let result = ServerRegistration::<Suite>::start(&self.setup, request, &credential_id)
            .map_err(|_| VaultError::BadRequest("not an OPAQUE registration request".into()))?;
        let session = self
            .put_ceremony(Ceremony::Register, &req.account, &[&credential_id], now)
            .await?;
        self.audit_event(&req.account, "register_start", "evaluated", source, now)
            .await?;
        Ok(proto::RegisterStartReply {
            response: result.message.serialize().to_vec(),
            session,
        })
    }

    /// The integrity keys (the sealer's).
    pub(crate) fn integrity(&self) -> Integrity {
        Integrity::new(self.sealer.clone())
    }

    /// A database answer, with an integrity failure logged and audited (`integrity`) before it
    /// becomes its 4xx refusal.
    pub(crate) async fn audit_tampering<T>(
        &self,
        account: &str,
        result: Result<T, DbError>,
        source: &str,
        now: i64,
    ) -> Result<T, VaultError> {
        match result {
            Err(DbError::Tampered(why)) => {
                tracing::error!(reason = %why, "refused: stored state failed its integrity check");
                self.metrics.login("integrity");
                self.audit_event(
                    account,
                    "integrity",
                    &format!("refused: {why}"),
                    source,
                    now,
                )
                .await?;
                Err(VaultError::Integrity(why))
            }
            other => Ok(other?),
        }
    }

    /// Appends an event about `account` from `source` to the audit trail.
    pub(crate) async fn audit_event(
        &self,
        account: &str,
        event: &str,
        outcome: &str,
        source: &str,
        now: i64,
    ) -> Result<(), VaultError> {
        self.db
            .audit(AuditEntry {
                time: now,
                account: account.to_string(),
                event: event.into(),
                outcome: outcome.into(),
                remaining: None,
                source: Some(source.to_string()),
            })
            .await?;
        Ok(())
    }

    /// Registration, second message: stores the record (replacing any) with the credential
    /// identifier its `register/start` chose, and resets the count.
    pub async fn register_finish(
        &self,
        req: proto::RegisterFinish,
        source: &str,
    ) -> Result<(), VaultError> {
        valid_account(&req.account)?;
        let now = self.clock.now_unix();
        self.limit_source(source, now)?;
        self.authorize(&req.account, &req.proof, Scope::Register, now)
            .await
            .inspect_err(|_| self.metrics.registration("unauthorized"))?;
        if req.wrapped_key.len() > 1024 {
            return Err(VaultError::BadRequest("wrapped key too large".into()));
        }
        if req.session.is_empty() {
            return Err(VaultError::BadRequest(
                "register/finish needs the session of its register/start".into(),
            ));
        }
        let (account, fields) = self
            .take_ceremony(&req.session, Ceremony::Register, source, now)
            .await?;
        let [credential_id] = fields.as_slice() else {
            return Err(VaultError::SessionExpired);
        };
        if account != req.account {
            return Err(VaultError::SessionExpired);
        }
        let upload = RegistrationUpload::<Suite>::deserialize(&req.upload)
            .map_err(|_| VaultError::BadRequest("not an OPAQUE registration upload".into()))?;
        let file = ServerRegistration::<Suite>::finish(upload).serialize();
        let sealed = self.integrity().seal_record(
            RecordKind::Password,
            &req.account,
            &crate::integrity::new_generation(),
            &Zeroizing::new(encode_record(credential_id, &file, &req.wrapped_key)),
        );
        let stored = self.db.put_record(req.account.clone(), sealed, now).await;
        self.audit_tampering(&req.account, stored, source, now)
            .await?;
        self.metrics.registration("ok");
        Ok(())
    }

    /// Opens an account's sealed password record: its credential identifier, password file and
    /// wrapped key.
    fn open_password_record(
        &self,
        account: &str,
        sealed: &[u8],
    ) -> Result<OpenedRecord, VaultError> {
        let opened = self
            .integrity()
            .open_record(RecordKind::Password, account, sealed)
            .ok_or_else(|| {
                VaultError::Integrity("the password record does not open as this account's".into())
            })?;
        let record = decode_record(account, &opened)
            .ok_or_else(|| VaultError::Internal("malformed record".into()))?;
        let file = ServerRegistration::<Suite>::deserialize(record.file)
            .map_err(|_| VaultError::Internal("malformed password file".into()))?;
        Ok((
            record.credential_id.into_owned(),
            file,
            record.wrapped.to_vec(),
        ))
    }

    /// Login, first message: the guess is counted before anything is computed.
    pub async fn login_start(
        &self,
        req: proto::LoginStart,
        source: String,
    ) -> Result<proto::LoginStartReply, VaultError> {
        let now = self.clock.now_unix();
        self.admit_login(&req.account, &req.proof, &source, now)
            .await?;
        let request = CredentialRequest::<Suite>::deserialize(&req.request)
            .map_err(|_| VaultError::BadRequest("not an OPAQUE credential request".into()))?;
        let limit = self.options.guess_limit;
        let session = Self::new_session(Ceremony::Login);
        let Guess {
            count,
            record: sealed_record,
            ..
        } = self
            .count_guess(&req.account, RecordKind::Password, &session, now, source)
            .await?;
        let (credential_id, file, wrapped) = match &sealed_record {
            Some(s) => {
                let (id, file, wrapped) = self.open_password_record(&req.account, s)?;
                (id, Some(file), wrapped)
            }
            // Unknown accounts get an answer indistinguishable from a known one's.
            None => (self.unknown_credential_id(&req.account), None, vec![]),
        };
        let result = ServerLogin::start(
            &mut OsRng,
            &self.setup,
            file,
            request,
            &credential_id,
            ServerLoginParameters::default(),
        )
        .map_err(|_| VaultError::BadRequest("not an OPAQUE credential request".into()))?;
        // The session keeps the login state and the wrapped key, sealed.
        let ke2_state = result.state.serialize();
        self.put_session_state(
            Ceremony::Login,
            &session,
            &req.account,
            &[&ke2_state, &wrapped],
            now,
        )
        .await?;
        self.metrics.login("counted");
        Ok(proto::LoginStartReply {
            session,
            response: result.message.serialize().to_vec(),
            attempts_remaining: limit - count,
        })
    }

    /// Login, second message: on success the count resets and the wrapped key is released.
    pub async fn login_finish(
        &self,
        req: proto::LoginFinish,
        source: String,
    ) -> Result<proto::LoginFinishReply, VaultError> {
        let now = self.clock.now_unix();
        self.limit_source(&source, now)?;
        let (account, state) = self
            .take_ceremony(&req.session, Ceremony::Login, &source, now)
            .await?;
        let [ke2_state, wrapped] = state.as_slice() else {
            return Err(VaultError::Internal("malformed session".into()));
        };
        let finalization = CredentialFinalization::<Suite>::deserialize(&req.finalization)
            .map_err(|_| VaultError::BadRequest("not an OPAQUE credential finalization".into()))?;
        let server = ServerLogin::<Suite>::deserialize(ke2_state)
            .ok()
            .filter(|s| s.serialize().as_slice() == ke2_state.as_slice())
            .ok_or_else(|| VaultError::Internal("malformed login state".into()))?;
        match server.finish(finalization, ServerLoginParameters::default()) {
            Ok(_) if !wrapped.is_empty() => {
                self.db
                    .login_succeeded(
                        account,
                        RecordKind::Password,
                        req.session,
                        None,
                        now,
                        source,
                    )
                    .await?;
                self.metrics.login("ok");
                Ok(proto::LoginFinishReply {
                    wrapped_key: wrapped.to_vec(),
                })
            }
            _ => Err(self
                .login_failed(
                    account,
                    RecordKind::Password,
                    &req.session,
                    source,
                    "login",
                    "wrong password",
                    now,
                )
                .await?),
        }
    }
}
