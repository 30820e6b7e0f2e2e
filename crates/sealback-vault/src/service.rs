//! The vault's logic, independent of HTTP: registration, login with the guess limit, and what
//! it stores. The clock is injected so that session expiry can be driven by tests.

use crate::db::{Attempt, Db, DbError};
use crate::sealer::Sealer;
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand08::rngs::OsRng;
use rand08::RngCore;
use sealback_proto::{self as proto, Suite};
use std::sync::Arc;

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
    /// A malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Storage or sealing failed.
    #[error("internal error")]
    Internal(String),
}

impl From<DbError> for VaultError {
    fn from(e: DbError) -> Self {
        VaultError::Internal(e.to_string())
    }
}

/// How a vault runs.
pub struct VaultOptions {
    /// Wrong guesses allowed per record.
    pub guess_limit: u32,
    /// Seconds a login may take between start and finish.
    pub session_ttl: i64,
    /// Accept any non-empty account proof (demo and tests only; says so loudly at start).
    pub dev_accounts: bool,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            guess_limit: proto::DEFAULT_GUESS_LIMIT,
            session_ttl: 120,
            dev_accounts: false,
        }
    }
}

/// The vault.
pub struct Vault {
    db: Db,
    sealer: Arc<dyn Sealer>,
    setup: ServerSetup<Suite>,
    options: VaultOptions,
    clock: Arc<dyn Clock>,
}

const SETUP_AAD: &[u8] = b"sealback vault 2026-11-25 server setup";

fn record_aad(account: &str) -> Vec<u8> {
    [
        b"sealback vault 2026-11-25 record:".as_slice(),
        account.as_bytes(),
    ]
    .concat()
}

fn session_aad(id: &str, account: &str) -> Vec<u8> {
    [
        b"sealback vault 2026-11-25 session:".as_slice(),
        id.as_bytes(),
        b":",
        account.as_bytes(),
    ]
    .concat()
}

/// A stored record: the OPAQUE password file and the client's wrapped key.
fn encode_record(password_file: &[u8], wrapped: &[u8]) -> Vec<u8> {
    let mut v = (password_file.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(password_file);
    v.extend_from_slice(wrapped);
    v
}

fn decode_record(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize;
    let rest = v.get(4..)?;
    (rest.len() >= n).then(|| rest.split_at(n))
}

fn valid_account(account: &str) -> Result<(), VaultError> {
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
        if options.dev_accounts {
            tracing::warn!(
                "DEVELOPMENT MODE: any account proof is accepted; never run this for real users"
            );
        }
        Ok(Self {
            db,
            sealer,
            setup,
            options,
            clock,
        })
    }

    /// The database (for operators and tests).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// `GET /v1/info`.
    pub fn info(&self) -> proto::Info {
        proto::Info {
            version: "1".into(),
            server_public_key: self.setup.keypair().public().serialize().to_vec(),
            guess_limit: self.options.guess_limit,
        }
    }

    fn check_proof(&self, _account: &str, proof: &str) -> Result<(), VaultError> {
        if self.options.dev_accounts && !proof.is_empty() {
            return Ok(());
        }
        Err(VaultError::Unauthorized(
            "this vault accepts only development proofs today (operator-signed tokens are not implemented yet); start it with --dev".into(),
        ))
    }

    /// Registration, first message.
    pub fn register_start(
        &self,
        req: &proto::RegisterStart,
    ) -> Result<proto::RegisterStartReply, VaultError> {
        valid_account(&req.account)?;
        self.check_proof(&req.account, &req.proof)?;
        let request = RegistrationRequest::<Suite>::deserialize(&req.request)
            .map_err(|e| VaultError::BadRequest(format!("{e:?}")))?;
        let result =
            ServerRegistration::<Suite>::start(&self.setup, request, req.account.as_bytes())
                .map_err(|e| VaultError::BadRequest(format!("{e:?}")))?;
        Ok(proto::RegisterStartReply {
            response: result.message.serialize().to_vec(),
        })
    }

    /// Registration, second message: stores the record (replacing any) and resets the count.
    pub async fn register_finish(&self, req: proto::RegisterFinish) -> Result<(), VaultError> {
        valid_account(&req.account)?;
        self.check_proof(&req.account, &req.proof)?;
        if req.wrapped_key.len() > 1024 {
            return Err(VaultError::BadRequest("wrapped key too large".into()));
        }
        let upload = RegistrationUpload::<Suite>::deserialize(&req.upload)
            .map_err(|e| VaultError::BadRequest(format!("{e:?}")))?;
        let file = ServerRegistration::<Suite>::finish(upload).serialize();
        let sealed = self.sealer.seal(
            &record_aad(&req.account),
            &encode_record(&file, &req.wrapped_key),
        );
        self.db
            .put_record(req.account, sealed, self.clock.now_unix())
            .await?;
        Ok(())
    }

    /// Login, first message: the guess is counted before anything is computed.
    pub async fn login_start(
        &self,
        req: proto::LoginStart,
        source: String,
    ) -> Result<proto::LoginStartReply, VaultError> {
        valid_account(&req.account)?;
        let request = CredentialRequest::<Suite>::deserialize(&req.request)
            .map_err(|e| VaultError::BadRequest(format!("{e:?}")))?;
        let now = self.clock.now_unix();
        let limit = self.options.guess_limit;
        let (count, sealed_record, last) = match self
            .db
            .begin_attempt(req.account.clone(), limit, now, source)
            .await?
        {
            Attempt::Locked => {
                tracing::warn!(
                    account_len = req.account.len(),
                    "login refused: guess limit reached"
                );
                return Err(VaultError::Locked);
            }
            Attempt::Proceed {
                count,
                record,
                last,
            } => (count, record, last),
        };
        let opened = match &sealed_record {
            Some(s) => Some(zeroize::Zeroizing::new(
                self.sealer
                    .open(&record_aad(&req.account), s)
                    .ok_or_else(|| {
                        VaultError::Internal("a record does not open (tampered database?)".into())
                    })?,
            )),
            None => None,
        };
        let (file, wrapped) = match &opened {
            Some(r) => {
                let (f, w) = decode_record(r)
                    .ok_or_else(|| VaultError::Internal("malformed record".into()))?;
                (
                    Some(
                        ServerRegistration::<Suite>::deserialize(f)
                            .map_err(|e| VaultError::Internal(format!("{e:?}")))?,
                    ),
                    w.to_vec(),
                )
            }
            // Unknown accounts get an answer indistinguishable from a known one's.
            None => (None, vec![]),
        };
        let result = ServerLogin::start(
            &mut OsRng,
            &self.setup,
            file,
            request,
            req.account.as_bytes(),
            ServerLoginParameters::default(),
        )
        .map_err(|e| VaultError::BadRequest(format!("{e:?}")))?;
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let session = hex::encode(id);
        // The session keeps the login state, the wrapped key, and (on the last guess) the
        // record itself, sealed.
        let mut state = Vec::new();
        let ke2_state = result.state.serialize();
        state.extend_from_slice(&(ke2_state.len() as u32).to_be_bytes());
        state.extend_from_slice(&ke2_state);
        state.extend_from_slice(&(wrapped.len() as u32).to_be_bytes());
        state.extend_from_slice(&wrapped);
        if let (true, Some(r)) = (last, &sealed_record) {
            state.extend_from_slice(r);
        }
        let sealed_state = self
            .sealer
            .seal(&session_aad(&session, &req.account), &state);
        zeroize::Zeroize::zeroize(&mut state);
        self.db
            .put_session(
                session.clone(),
                req.account.clone(),
                sealed_state,
                now + self.options.session_ttl,
            )
            .await?;
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
    ) -> Result<proto::LoginFinishReply, VaultError> {
        let now = self.clock.now_unix();
        let (account, sealed) = self
            .db
            .take_session(req.session.clone(), now)
            .await?
            .ok_or(VaultError::SessionExpired)?;
        let state = zeroize::Zeroizing::new(
            self.sealer
                .open(&session_aad(&req.session, &account), &sealed)
                .ok_or_else(|| VaultError::Internal("a session does not open".into()))?,
        );
        let take = |v: &[u8], at: usize| -> Option<(Vec<u8>, usize)> {
            let n = u32::from_be_bytes(v.get(at..at + 4)?.try_into().ok()?) as usize;
            Some((v.get(at + 4..at + 4 + n)?.to_vec(), at + 4 + n))
        };
        let (ke2_state, at) =
            take(&state, 0).ok_or_else(|| VaultError::Internal("malformed session".into()))?;
        let (wrapped, at) =
            take(&state, at).ok_or_else(|| VaultError::Internal("malformed session".into()))?;
        let restore = (at < state.len()).then(|| state[at..].to_vec());
        let finalization = CredentialFinalization::<Suite>::deserialize(&req.finalization)
            .map_err(|e| VaultError::BadRequest(format!("{e:?}")))?;
        let server = ServerLogin::<Suite>::deserialize(&ke2_state)
            .map_err(|e| VaultError::Internal(format!("{e:?}")))?;
        match server.finish(finalization, ServerLoginParameters::default()) {
            Ok(_) if !wrapped.is_empty() => {
                self.db.login_succeeded(account, restore, now).await?;
                Ok(proto::LoginFinishReply {
                    wrapped_key: wrapped,
                })
            }
            _ => {
                let used = self.db.attempts(account.clone()).await?;
                let remaining = self.options.guess_limit.saturating_sub(used);
                self.db.login_failed(account, remaining, now).await?;
                Err(VaultError::LoginFailed { remaining })
            }
        }
    }
}
