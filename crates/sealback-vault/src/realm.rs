//! Realm mode (tvr1, SPEC §7f, docs/VAULT-PROTOCOL.md §10): the vault as one of `n` threshold
//! realms. It holds one key share `k_i` and unlock tag per account, sealed like every record
//! (bound to the account, its generation and the kind [`RecordKind::Realm`]) and counted by the
//! vault's own tagged counter: every evaluation is committed durably **before** it is computed,
//! the one that reaches the limit holds the record under its session until a confirm or the
//! session's expiry, and the one after destroys it.
//!
//! The realm's two secrets, the X25519 key clients seal shares to and the key it answers
//! unknown accounts with, are derived from the vault's sealed server setup, so they are as
//! secret and as stable as its OPRF seed, and need no storage of their own.

use crate::db::{Guess, RecordKind};
use crate::integrity::new_generation;
use crate::service::{valid_account, Vault, VaultError};
use rand08::rngs::OsRng;
use sealback_proto::proof::{self, Scope};
use sealback_proto::{self as proto};
use sealback_tvr::{RealmKey, RealmRecord, ShareRequest};
use zeroize::Zeroizing;

/// How a vault runs as a realm.
#[derive(Debug, Clone, Copy)]
pub struct RealmOptions {
    /// Evaluations allowed per registration (`L`).
    pub evaluation_limit: u16,
}

impl Default for RealmOptions {
    fn default() -> Self {
        Self {
            evaluation_limit: sealback_tvr::DEFAULT_LIMIT,
        }
    }
}

/// A running realm's keys.
pub(crate) struct Realm {
    key: RealmKey,
    unknown: Zeroizing<[u8; 32]>,
    pub(crate) options: RealmOptions,
}

const SHARE_KEY_LABEL: &[u8] = b"sealback vault 2026-12-02 tvr1 realm share key";
const UNKNOWN_LABEL: &[u8] = b"sealback vault 2026-12-02 tvr1 unknown accounts";

impl Realm {
    /// The realm's keys from the vault's (opened) server setup.
    pub(crate) fn new(setup: &[u8], options: RealmOptions) -> Self {
        let derive = |label: &[u8]| {
            let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, label);
            let mut out = Zeroizing::new([0u8; 32]);
            salt.extract(setup)
                .expand(&[], Len32)
                .and_then(|okm| okm.fill(&mut out[..]))
                .expect("32 bytes is a valid HKDF length");
            out
        };
        Self {
            key: RealmKey::from_seed(&derive(SHARE_KEY_LABEL)),
            unknown: derive(UNKNOWN_LABEL),
            options,
        }
    }

    /// What `/v1/info` publishes.
    pub(crate) fn info(&self, id: proof::VaultId) -> proto::RealmInfo {
        proto::RealmInfo {
            realm_id: id.to_hex(),
            realm_key: self.key.public().to_vec(),
            evaluation_limit: self.options.evaluation_limit,
        }
    }
}

struct Len32;
impl ring::hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn array<const N: usize>(b: &[u8], what: &str) -> Result<[u8; N], VaultError> {
    b.try_into()
        .map_err(|_| VaultError::BadRequest(format!("{what} must be {N} bytes")))
}

impl Vault {
    fn realm(&self) -> Result<&Realm, VaultError> {
        self.realm
            .as_ref()
            .ok_or_else(|| VaultError::NotConfigured("this vault is not a threshold realm".into()))
    }

    /// An account proof for a realm route: signed by the operator, for `account`, with this
    /// realm as its audience. Unlike the vault's own routes, a proof without an audience
    /// (version 1) is refused for every scope: one realm could otherwise replay a person's
    /// proof at the others and burn their evaluations.
    fn authorize_realm(
        &self,
        account: &str,
        token: &str,
        wanted: Scope,
        now: i64,
    ) -> Result<(), VaultError> {
        valid_account(account)?;
        match self.verify_proof(account, token, wanted, now)? {
            Some(claims) if claims.aud.is_none() => Err(VaultError::Unauthorized(
                "a realm accepts only proofs that name it as their audience".into(),
            )),
            _ => Ok(()),
        }
    }

    /// `POST /v1/tvr/register`: opens the share sealed to this realm and stores it (replacing
    /// the account's record, if any, and with it its count).
    pub async fn tvr_register(
        &self,
        req: proto::TvrRegister,
        source: &str,
    ) -> Result<(), VaultError> {
        let realm = self.realm()?;
        let now = self.clock.now_unix();
        self.limit_source(source, now)?;
        self.authorize_realm(&req.account, &req.proof, Scope::Register, now)?;
        self.limit_register(&req.account, now)?;
        if req.limit != realm.options.evaluation_limit {
            return Err(VaultError::BadRequest(format!(
                "this realm allows {} evaluations per registration, not {}",
                realm.options.evaluation_limit, req.limit
            )));
        }
        let request = ShareRequest {
            realm: self.id(),
            index: req.index,
            threshold: req.threshold,
            limit: req.limit,
            version: array(&req.version, "version")?,
            enc: req.enc,
            sealed: req.sealed,
        };
        let record = realm
            .key
            .open_share(self.id(), &req.account, &request)
            .map_err(|e| VaultError::BadRequest(e.to_string()))?;
        // Storing a record resets its count. A registration this realm has seen before (a
        // retry, a replay of logged bytes, an older version after a rotation) must not: it is
        // acknowledged and changes nothing, wherever the record is now (in its table, held by
        // the last allowed evaluation, or destroyed). `tvr_versions` keeps every version ever
        // stored, in the same transaction as the record, so it alone answers that.
        let sealed = self.integrity().seal_record(
            RecordKind::Realm,
            &req.account,
            &new_generation(),
            &record.encode(),
        );
        if !self
            .db
            .put_fresh_realm_record(req.account.clone(), record.version, sealed, now)
            .await?
        {
            tracing::info!("realm registration seen before; nothing changed");
            return Ok(());
        }
        tracing::info!("realm share registered");
        Ok(())
    }

    /// `POST /v1/tvr/evaluate`: counts the evaluation durably, then evaluates (with a DLEQ
    /// proof) under the account's share, or under a key derived from the realm's secret for
    /// an account it holds nothing for.
    pub async fn tvr_evaluate(
        &self,
        req: proto::TvrEvaluate,
        source: String,
    ) -> Result<proto::TvrEvaluateReply, VaultError> {
        let realm = self.realm()?;
        let now = self.clock.now_unix();
        self.observe(&source, &req.account, now).await?;
        self.limit_source(&source, now)?;
        self.authorize_realm(&req.account, &req.proof, Scope::Login, now)?;
        self.account_limiter
            .check(&req.account, now)
            .map_err(|retry_after| VaultError::RateLimited { retry_after })?;
        let version: [u8; 16] = array(&req.version, "version")?;
        let blinded: [u8; 32] = array(&req.blinded, "blinded")?;
        let session = format!(
            "{}{}",
            RecordKind::Realm.login_session_prefix(),
            crate::service::random_hex(16)
        );
        // Counted and committed before anything is computed from the share.
        let Guess { count, record, .. } = self
            .count_guess(&req.account, RecordKind::Realm, &session, now, source)
            .await?;
        let limit = u32::from(realm.options.evaluation_limit);
        // A record of another version is answered like an unknown account (SPEC §7f.3): a
        // distinct answer would tell whoever holds a login proof that the account is held. The
        // client drops the fake evaluation as a failed proof and sends this realm no tag.
        let held = match record {
            Some(sealed) => Some(self.open_realm_record(&req.account, &sealed)?)
                .filter(|record| record.version == version),
            None => None,
        };
        let evaluation = match held {
            Some(record) => record.evaluate(&blinded, &mut OsRng),
            None => {
                sealback_tvr::evaluate_unknown(&realm.unknown, &req.account, &blinded, &mut OsRng)
            }
        }
        .map_err(|e| VaultError::BadRequest(e.to_string()))?;
        self.metrics.login("tvr_counted");
        Ok(proto::TvrEvaluateReply {
            evaluated: evaluation.element.to_vec(),
            proof: evaluation.proof.to_vec(),
            guesses_left: limit.saturating_sub(count),
            session,
        })
    }

    /// `POST /v1/tvr/confirm`: a correct unlock tag resets the account's count (and puts back
    /// a record held by its last allowed evaluation). Every failure (no record, none held
    /// under `session`, another version, a wrong tag) is the same `401 tag_refused` and
    /// changes nothing: confirm is not counted, so it must not tell a held account from an
    /// unknown one.
    pub async fn tvr_confirm(
        &self,
        req: proto::TvrConfirm,
        source: String,
    ) -> Result<(), VaultError> {
        self.realm()?;
        let now = self.clock.now_unix();
        self.limit_source(&source, now)?;
        self.authorize_realm(&req.account, &req.proof, Scope::Login, now)?;
        let version: [u8; 16] = array(&req.version, "version")?;
        // The record in its table, or the one the last allowed evaluation holds under its
        // session: that one only if it opens as this account's (a session id names no account).
        let stored = self
            .db
            .record(req.account.clone(), RecordKind::Realm)
            .await?;
        let found = match stored {
            Some(sealed) => Some((
                self.open_realm_record(&req.account, &sealed)?,
                String::new(),
            )),
            None if req
                .session
                .starts_with(RecordKind::Realm.login_session_prefix()) =>
            {
                self.db
                    .held_record(req.session.clone())
                    .await?
                    .and_then(|held| self.open_realm_record(&req.account, &held).ok())
                    .map(|record| (record, req.session))
            }
            None => None,
        };
        let Some((_, session)) =
            found.filter(|(record, _)| record.version == version && record.tag_matches(&req.tag))
        else {
            tracing::warn!("realm confirm refused");
            return Err(VaultError::TagRefused);
        };
        self.db
            .login_succeeded(req.account, RecordKind::Realm, session, None, now, source)
            .await?;
        self.metrics.login("tvr_confirmed");
        Ok(())
    }

    /// `POST /v1/tvr/delete`: destroys the account's share (scope `register`).
    pub async fn tvr_delete(&self, req: proto::TvrDelete, source: &str) -> Result<(), VaultError> {
        self.realm()?;
        let now = self.clock.now_unix();
        self.limit_source(source, now)?;
        self.authorize_realm(&req.account, &req.proof, Scope::Register, now)?;
        if self
            .db
            .delete_record(req.account, RecordKind::Realm)
            .await?
        {
            Ok(())
        } else {
            Err(VaultError::NotFound("no key share for this account".into()))
        }
    }

    fn open_realm_record(&self, account: &str, sealed: &[u8]) -> Result<RealmRecord, VaultError> {
        let plain = self
            .integrity()
            .open_record(RecordKind::Realm, account, sealed)
            .ok_or_else(|| VaultError::Integrity("a realm record does not open".into()))?;
        RealmRecord::decode(&plain).map_err(|e| VaultError::Internal(e.to_string()))
    }
}
