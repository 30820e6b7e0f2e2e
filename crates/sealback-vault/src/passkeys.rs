//! The vault's WebAuthn relying party (webauthn-rs): passkeys registered to an account, the
//! vault-passkey protector (SPEC §7c) and passkey sign-in.
//!
//! ```text
//!  keyslot secret = HKDF-SHA256(ikm = vault share ‖ storage share,
//!                               info = "sealback 2026-11-26 vault passkey")
//!        │                                   │
//!        │ vault share (32 B): in the account's passkey record, sealed by the HSM key,
//!        │   released only to a verified assertion with user verification
//!        └ storage share (32 B): in the keyslot's parameters on the backup drive
//! ```
//!
//! Neither the drive's operator nor the vault's operator alone holds both halves. A passkey
//! login is a guess like a password login: it is counted against the passkey record (its own
//! count, apart from the password's) before the challenge is issued, reset by a verified
//! assertion only, and the tenth failure destroys the passkey record. Sign-in (discoverable credentials, no account named) issues a short-lived session and
//! never releases key material; it counts no guesses (it needs no account proof, so counting
//! would let anyone destroy a key) but is rate limited per client and per account, and it
//! records the credential's new signature counter like a login.
//!
//! PRF results are client-side secrets: a request whose credential JSON carries
//! `clientExtensionResults.prf` is refused before anything else of it is read, and nothing of it
//! is stored or logged.

use crate::db::{AuditEntry, Guess, RecordKind};
use crate::integrity::{generation_of, new_generation, Generation};
use crate::service::{random_hex, valid_account, Vault, VaultError};
use crate::sessions::Ceremony;
use rand08::rngs::OsRng;
use rand08::RngCore;
use sealback_proto::proof::Scope;
use sealback_proto::{self as proto};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, WebauthnError,
};
use zeroize::Zeroizing;

/// The relying party the vault's passkeys belong to.
#[derive(Clone, Debug)]
pub struct RelyingParty {
    /// The RP ID (a domain: `vault.example.org`; `localhost` for tests and demos).
    pub id: String,
    /// Origins whose assertions are accepted (`https://vault.example.org`, an app's origin).
    /// Empty means `https://<id>`. For `localhost`, any port of each origin is accepted.
    pub origins: Vec<Url>,
    /// The name authenticators show.
    pub name: String,
}

impl RelyingParty {
    /// The relying party for `id` with its default origin (`https://<id>`).
    pub fn new(id: &str) -> Self {
        Self {
            id: id.into(),
            origins: vec![],
            name: "sealback key vault".into(),
        }
    }

    pub(crate) fn build(&self) -> Result<webauthn_rs::Webauthn, VaultError> {
        let config = |e: WebauthnError| {
            VaultError::Config(format!(
                "WebAuthn relying party {:?} with origins {:?}: {e}",
                self.id,
                self.origins.iter().map(Url::as_str).collect::<Vec<_>>()
            ))
        };
        let default_origin = Url::parse(&format!("https://{}", self.id))
            .map_err(|e| VaultError::Config(format!("relying party id {:?}: {e}", self.id)))?;
        let mut origins = self.origins.clone();
        if origins.is_empty() {
            origins.push(default_origin);
        }
        let mut builder = webauthn_rs::WebauthnBuilder::new(&self.id, &origins[0])
            .map_err(config)?
            .rp_name(&self.name)
            .allow_any_port(self.id == "localhost");
        for o in &origins[1..] {
            builder = builder.append_allowed_origin(o);
        }
        builder.build().map_err(config)
    }
}

/// One registered credential and what the vault has seen of it.
#[derive(Serialize, Deserialize)]
struct CredentialEntry {
    passkey: Passkey,
    /// Backup flags last seen (at registration, then at each verified assertion).
    backup_eligible: Option<bool>,
    backup_state: Option<bool>,
    registered: i64,
}

/// An account's passkey record, stored sealed by the HSM key.
#[derive(Serialize, Deserialize)]
struct PasskeyRecord {
    version: u8,
    user_id: Uuid,
    /// The vault share, hex.
    vault_share: Zeroizing<String>,
    credentials: Vec<CredentialEntry>,
}

fn credential_key(id: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// The backup flags inside a passkey (webauthn-rs keeps them private; its serialised form is
/// its database format and carries them).
fn backup_flags(p: &Passkey) -> (Option<bool>, Option<bool>) {
    let v = serde_json::to_value(p).unwrap_or_default();
    let flag = |name: &str| {
        v.get("cred")
            .and_then(|c| c.get(name))
            .and_then(|b| b.as_bool())
    };
    (flag("backup_eligible"), flag("backup_state"))
}

/// The account session id stored for a token: only its hash is kept.
fn account_session_id(token: &str) -> String {
    use sha2_010::Digest;
    format!(
        "acct:{}",
        hex::encode(sha2_010::Sha256::digest(token.as_bytes()))
    )
}

/// Refuses a credential that carries a PRF result, before anything else of it is read.
fn refuse_prf(credential: &serde_json::Value) -> Result<(), VaultError> {
    if proto::carries_prf_result(credential) {
        return Err(VaultError::BadRequest(
            "the request carries a PRF result (prf or hmacGetSecret under clientExtensionResults or extensions): PRF outputs are secrets that never leave the client; strip them before sending. Nothing of this request was kept".into(),
        ));
    }
    Ok(())
}

/// The audit event of a passkey login.
const EVENT: &str = "passkey_login";

const MODE_REPLACE: u8 = 1;
const MODE_ADD: u8 = 2;

impl Vault {
    fn relying_party(&self) -> Result<&webauthn_rs::Webauthn, VaultError> {
        self.webauthn.as_ref().ok_or_else(|| {
            VaultError::NotConfigured(
                "passkeys (the operator starts the vault with --rp-id)".into(),
            )
        })
    }

    /// Seals `record` bound to `generation`: a new one for a registration, the stored record's
    /// own for an update of it (`crate::integrity`).
    fn seal_record(
        &self,
        account: &str,
        generation: &Generation,
        record: &PasskeyRecord,
    ) -> Result<Vec<u8>, VaultError> {
        let json = Zeroizing::new(
            serde_json::to_vec(record).map_err(|e| VaultError::Internal(e.to_string()))?,
        );
        Ok(self
            .integrity()
            .seal_record(RecordKind::Passkey, account, generation, &json))
    }

    /// Seals an update of the stored record `old` (same generation).
    fn reseal_record(
        &self,
        account: &str,
        old: &[u8],
        record: &PasskeyRecord,
    ) -> Result<Vec<u8>, VaultError> {
        let generation = generation_of(old).ok_or_else(|| {
            VaultError::Integrity("a passkey record is not in the bound form".into())
        })?;
        self.seal_record(account, &generation, record)
    }

    fn open_record(&self, account: &str, sealed: &[u8]) -> Result<PasskeyRecord, VaultError> {
        let json = self
            .integrity()
            .open_record(RecordKind::Passkey, account, sealed)
            .ok_or_else(|| {
                VaultError::Integrity("a passkey record does not open as this account's".into())
            })?;
        serde_json::from_slice(&json)
            .map_err(|e| VaultError::Internal(format!("malformed passkey record: {e}")))
    }

    /// Issues a passkey session token for `account`; only its hash is stored.
    async fn issue_account_session(
        &self,
        account: &str,
        now: i64,
    ) -> Result<(String, i64), VaultError> {
        let token = format!("{}{}", proto::SESSION_TOKEN_PREFIX, random_hex(32));
        let expires = now + self.options.account_session_ttl;
        self.db
            .put_session(
                account_session_id(&token),
                account.to_string(),
                Vec::new(),
                expires,
            )
            .await?;
        Ok((token, expires))
    }

    /// The account of a live passkey session token.
    pub(crate) async fn session_owner(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<String>, VaultError> {
        Ok(self
            .db
            .session_account(account_session_id(token), now)
            .await?)
    }

    /// `POST /v1/passkey/register/start`.
    pub async fn passkey_register_start(
        &self,
        req: &proto::PasskeyRegisterStart,
        source: &str,
    ) -> Result<proto::PasskeyRegisterStartReply, VaultError> {
        valid_account(&req.account)?;
        let now = self.clock.now_unix();
        self.limit_source(source, now)?;
        let rp = self.relying_party()?;
        let mode = match &req.session_token {
            Some(token) => {
                if self.session_owner(token, now).await?.as_deref() != Some(&req.account) {
                    self.metrics.registration("unauthorized");
                    return Err(VaultError::Unauthorized(
                        "the passkey session expired or belongs to another account".into(),
                    ));
                }
                MODE_ADD
            }
            None => {
                self.authorize(&req.account, &req.proof, Scope::Register, now)
                    .await
                    .inspect_err(|_| self.metrics.registration("unauthorized"))?;
                MODE_REPLACE
            }
        };
        let existing = match mode {
            MODE_ADD => match self.db.passkey_record(req.account.clone()).await? {
                Some(sealed) => Some(self.open_record(&req.account, &sealed)?),
                None => {
                    return Err(VaultError::NotFound(
                        "this account has no passkey record to add to".into(),
                    ))
                }
            },
            _ => None,
        };
        let user_id = existing
            .as_ref()
            .map(|r| r.user_id)
            .unwrap_or_else(Uuid::new_v4);
        let exclude = existing.as_ref().map(|r| {
            r.credentials
                .iter()
                .map(|c| c.passkey.cred_id().clone())
                .collect()
        });
        let (options, state) = rp
            .start_passkey_registration(user_id, &req.account, &req.account, exclude)
            .map_err(|e| VaultError::Internal(format!("WebAuthn: {e}")))?;
        let mut options =
            serde_json::to_value(options).map_err(|e| VaultError::Internal(e.to_string()))?;
        // Ask for a discoverable credential where the authenticator can make one, so that the
        // same passkey also signs in without a user name (webauthn-rs discourages it).
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(|s| s.as_object_mut())
        {
            sel.insert("residentKey".into(), "preferred".into());
        }
        let state = serde_json::to_vec(&state).map_err(|e| VaultError::Internal(e.to_string()))?;
        let session = self
            .put_ceremony(
                Ceremony::PasskeyRegister,
                &req.account,
                &[&[mode], user_id.as_bytes(), &state],
                now,
            )
            .await?;
        Ok(proto::PasskeyRegisterStartReply { session, options })
    }

    /// `POST /v1/passkey/register/finish`: verifies the new credential and stores it; a new
    /// record gets a new vault share. Returns the vault share.
    pub async fn passkey_register_finish(
        &self,
        req: proto::PasskeyAssertion,
        source: &str,
    ) -> Result<proto::PasskeyRegisterFinishReply, VaultError> {
        refuse_prf(&req.credential)?;
        let now = self.clock.now_unix();
        self.limit_source(source, now)?;
        let rp = self.relying_party()?;
        let (account, fields) = self
            .take_ceremony(&req.session, Ceremony::PasskeyRegister, source, now)
            .await?;
        let [mode, user_id, state] = fields.as_slice() else {
            return Err(VaultError::Internal("malformed session".into()));
        };
        // The user handle the credential was made with.
        let user_id = Uuid::from_slice(user_id)
            .map_err(|_| VaultError::Internal("malformed session".into()))?;
        let state: PasskeyRegistration = serde_json::from_slice(state)
            .map_err(|e| VaultError::Internal(format!("registration state: {e}")))?;
        let credential: RegisterPublicKeyCredential = serde_json::from_value(req.credential)
            .map_err(|e| {
                VaultError::BadRequest(format!("not a WebAuthn registration credential: {e}"))
            })?;
        let passkey = rp
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| {
                self.metrics.registration("refused");
                VaultError::PasskeyRefused(e.to_string())
            })?;
        let credential_id = passkey.cred_id().to_vec();
        let (backup_eligible, backup_state) = backup_flags(&passkey);
        let entry = CredentialEntry {
            passkey,
            backup_eligible,
            backup_state,
            registered: now,
        };
        let record = match mode.first() {
            Some(&MODE_ADD) => {
                let sealed = self
                    .db
                    .passkey_record(account.clone())
                    .await?
                    .ok_or_else(|| {
                        VaultError::NotFound("the account's passkey record is gone".into())
                    })?;
                let mut record = self.open_record(&account, &sealed)?;
                record.credentials.push(entry);
                record
            }
            _ => {
                let mut share = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(&mut share[..]);
                PasskeyRecord {
                    version: 1,
                    user_id,
                    vault_share: Zeroizing::new(hex::encode(&share[..])),
                    credentials: vec![entry],
                }
            }
        };
        let ids = record
            .credentials
            .iter()
            .map(|c| credential_key(c.passkey.cred_id()))
            .collect();
        let sealed = self.seal_record(&account, &new_generation(), &record)?;
        let stored = self
            .db
            .put_passkey_record(account.clone(), sealed, ids, now)
            .await;
        if !self.audit_tampering(&account, stored, source, now).await? {
            return Err(VaultError::BadRequest(
                "this passkey is already registered to another account".into(),
            ));
        }
        self.metrics.registration("passkey_ok");
        let vault_share = hex::decode(record.vault_share.as_str())
            .map_err(|_| VaultError::Internal("malformed vault share".into()))?;
        Ok(proto::PasskeyRegisterFinishReply {
            credential_id,
            vault_share,
        })
    }

    /// `POST /v1/passkey/login/start`: the guess is counted before the challenge is made.
    pub async fn passkey_login_start(
        &self,
        req: proto::PasskeyLoginStart,
        source: String,
    ) -> Result<proto::PasskeyLoginStartReply, VaultError> {
        let rp = self.relying_party()?;
        let now = self.clock.now_unix();
        self.admit_login(&req.account, &req.proof, &source, now)
            .await?;
        let limit = self.options.guess_limit;
        let session = Self::new_session(Ceremony::PasskeyLogin);
        let Guess { count, record, .. } = self
            .count_guess(&req.account, RecordKind::Passkey, &session, now, source)
            .await?;
        let Some(sealed) = record else {
            self.metrics.login("no_record");
            return Err(VaultError::NotFound(
                "no passkey is registered for this account at this vault".into(),
            ));
        };
        let record = self.open_record(&req.account, &sealed)?;
        let passkeys: Vec<Passkey> = record
            .credentials
            .iter()
            .map(|c| c.passkey.clone())
            .collect();
        let (options, state) = rp
            .start_passkey_authentication(&passkeys)
            .map_err(|e| VaultError::Internal(format!("WebAuthn: {e}")))?;
        let options =
            serde_json::to_value(options).map_err(|e| VaultError::Internal(e.to_string()))?;
        let state = serde_json::to_vec(&state).map_err(|e| VaultError::Internal(e.to_string()))?;
        // The session names the record it challenges for (its user handle is new with every
        // replacement), so that finish releases only that record's share.
        self.put_session_state(
            Ceremony::PasskeyLogin,
            &session,
            &req.account,
            &[&state, record.user_id.as_bytes()],
            now,
        )
        .await?;
        self.metrics.login("passkey_counted");
        Ok(proto::PasskeyLoginStartReply {
            session,
            options,
            attempts_remaining: limit - count,
        })
    }

    /// Checks a verified assertion's flags against what the vault saw before, logs surprises
    /// (without the account), and records the new counter and flags.
    fn absorb_assertion(
        &self,
        record: &mut PasskeyRecord,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) {
        let Some(entry) = record
            .credentials
            .iter_mut()
            .find(|c| c.passkey.cred_id() == result.cred_id())
        else {
            return;
        };
        let surprise = |kind: &'static str, detail: String| {
            tracing::warn!(kind, %detail, "passkey flags changed since the vault last saw them");
            self.metrics
                .passkey_surprises
                .get_or_create(&crate::metrics::KindLabel { kind })
                .inc();
        };
        if entry.backup_eligible == Some(true) && !result.backup_eligible() {
            surprise(
                "backup_eligible_lost",
                "a credential registered as backup eligible no longer is (a different authenticator?)".into(),
            );
        }
        if let Some(before) = entry.backup_state {
            if before != result.backup_state() {
                surprise(
                    "backup_state_changed",
                    format!("backup state {before} -> {}", result.backup_state()),
                );
            }
        }
        entry.backup_eligible = Some(result.backup_eligible());
        entry.backup_state = Some(result.backup_state());
        entry.passkey.update_credential(result);
    }

    /// `POST /v1/passkey/login/finish`: on a verified assertion (with user verification) the
    /// count resets, the vault share is released and a passkey session issued.
    pub async fn passkey_login_finish(
        &self,
        req: proto::PasskeyAssertion,
        source: String,
    ) -> Result<proto::PasskeyLoginFinishReply, VaultError> {
        let now = self.clock.now_unix();
        self.limit_source(&source, now)?;
        refuse_prf(&req.credential)?;
        let rp = self.relying_party()?;
        let (account, state) = self
            .take_ceremony(&req.session, Ceremony::PasskeyLogin, &source, now)
            .await?;
        let [state, user_id] = state.as_slice() else {
            return Err(VaultError::Internal("malformed session".into()));
        };
        let state: PasskeyAuthentication = serde_json::from_slice(state)
            .map_err(|e| VaultError::Internal(format!("authentication state: {e}")))?;
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(req.credential) else {
            return Err(self
                .login_failed(
                    account,
                    RecordKind::Passkey,
                    &req.session,
                    source,
                    EVENT,
                    "not a WebAuthn assertion",
                    now,
                )
                .await?);
        };
        let result = match rp.finish_passkey_authentication(&credential, &state) {
            Ok(r) if r.user_verified() => r,
            Ok(_) => {
                return Err(self
                    .login_failed(
                        account,
                        RecordKind::Passkey,
                        &req.session,
                        source,
                        EVENT,
                        "no user verification",
                        now,
                    )
                    .await?)
            }
            Err(e) => {
                if matches!(e, WebauthnError::CredentialPossibleCompromise) {
                    self.metrics
                        .passkey_surprises
                        .get_or_create(&crate::metrics::KindLabel {
                            kind: "counter_regression",
                        })
                        .inc();
                    tracing::warn!(
                        "a passkey's signature counter went backwards: a cloned authenticator?"
                    );
                }
                return Err(self
                    .login_failed(
                        account,
                        RecordKind::Passkey,
                        &req.session,
                        source,
                        EVENT,
                        &e.to_string(),
                        now,
                    )
                    .await?);
            }
        };
        // The record: held under this session when this was the last guess, else in its table.
        let sealed = match self.db.held_record(req.session.clone()).await? {
            Some(held) => Some(held),
            None => self.db.passkey_record(account.clone()).await?,
        };
        let Some(sealed) = sealed else {
            return Err(VaultError::NotFound(
                "the account's passkey record is gone".into(),
            ));
        };
        let mut record = self.open_record(&account, &sealed)?;
        if record.user_id.as_bytes().as_slice() != user_id.as_slice() {
            tracing::info!("passkey login refused: the record was replaced since its start");
            return Err(VaultError::SessionExpired);
        }
        self.absorb_assertion(&mut record, &result);
        let updated = self.reseal_record(&account, &sealed, &record)?;
        self.db
            .login_succeeded(
                account.clone(),
                RecordKind::Passkey,
                req.session,
                Some(updated),
                now,
                source,
            )
            .await?;
        self.metrics.login("passkey_ok");
        let vault_share = hex::decode(record.vault_share.as_str())
            .map_err(|_| VaultError::Internal("malformed vault share".into()))?;
        let (session_token, expires_at) = self.issue_account_session(&account, now).await?;
        Ok(proto::PasskeyLoginFinishReply {
            vault_share,
            session_token,
            expires_at,
        })
    }

    /// `POST /v1/passkey/signin/start`: a challenge for any discoverable passkey of this
    /// relying party.
    pub async fn passkey_signin_start(
        &self,
        source: &str,
    ) -> Result<proto::PasskeySigninStartReply, VaultError> {
        let now = self.clock.now_unix();
        self.limit_source(source, now)?;
        let rp = self.relying_party()?;
        let (mut options, state) = rp
            .start_discoverable_authentication()
            .map_err(|e| VaultError::Internal(format!("WebAuthn: {e}")))?;
        // A modal sign-in ("Sign in with a passkey"), not autofill mediation.
        options.mediation = None;
        let options =
            serde_json::to_value(options).map_err(|e| VaultError::Internal(e.to_string()))?;
        let state = serde_json::to_vec(&state).map_err(|e| VaultError::Internal(e.to_string()))?;
        let session = self
            .put_ceremony(Ceremony::PasskeySignin, "", &[&state], now)
            .await?;
        Ok(proto::PasskeySigninStartReply { session, options })
    }

    /// `POST /v1/passkey/signin/finish`: the passkey names its account; a verified assertion
    /// issues a passkey session. No key material is released.
    pub async fn passkey_signin_finish(
        &self,
        req: proto::PasskeyAssertion,
        source: String,
    ) -> Result<proto::PasskeySigninReply, VaultError> {
        refuse_prf(&req.credential)?;
        let now = self.clock.now_unix();
        self.limit_source(&source, now)?;
        let rp = self.relying_party()?;
        let (ceremony_account, fields) = self
            .take_ceremony(&req.session, Ceremony::PasskeySignin, &source, now)
            .await?;
        let [state] = fields.as_slice() else {
            return Err(VaultError::Internal("malformed session".into()));
        };
        if !ceremony_account.is_empty() {
            return Err(VaultError::SessionExpired);
        }
        let state: DiscoverableAuthentication = serde_json::from_slice(state)
            .map_err(|e| VaultError::Internal(format!("authentication state: {e}")))?;
        let credential: PublicKeyCredential = serde_json::from_value(req.credential)
            .map_err(|e| VaultError::BadRequest(format!("not a WebAuthn assertion: {e}")))?;
        let refused = || VaultError::Unauthorized("the passkey sign-in was refused".into());
        let account = self
            .db
            .passkey_account(credential_key(credential.get_credential_id()))
            .await?
            .ok_or_else(|| {
                self.metrics.login("signin_unknown");
                refused()
            })?;
        let sealed = self
            .db
            .passkey_record(account.clone())
            .await?
            .ok_or_else(refused)?;
        let mut record = self.open_record(&account, &sealed)?;
        let entry = record
            .credentials
            .iter()
            .find(|c| c.passkey.cred_id().as_slice() == credential.get_credential_id())
            .ok_or_else(refused)?;
        let result = rp
            .finish_discoverable_authentication_v2(&credential, state, &entry.passkey)
            .ok()
            .filter(|r| r.user_verified());
        let Some(result) = result else {
            tracing::info!("passkey sign-in refused");
            self.metrics.login("signin_failed");
            self.db
                .audit(AuditEntry {
                    time: now,
                    account,
                    event: "passkey_signin".into(),
                    outcome: "failed".into(),
                    remaining: None,
                    source: Some(source),
                })
                .await?;
            return Err(refused());
        };
        // The account's rate is spent only by a verified assertion: anyone can name a
        // credential id (it is in every login's options), only its holder can sign with it.
        self.account_limiter
            .check(&account, now)
            .map_err(|retry_after| VaultError::RateLimited { retry_after })?;
        self.absorb_assertion(&mut record, &result);
        // Keep the new counter and flags, unless the record was replaced meanwhile.
        let updated = self.reseal_record(&account, &sealed, &record)?;
        self.db
            .update_record(account.clone(), RecordKind::Passkey, sealed, updated)
            .await?;
        self.metrics.login("signin_ok");
        self.db
            .audit(AuditEntry {
                time: now,
                account: account.clone(),
                event: "passkey_signin".into(),
                outcome: "ok".into(),
                remaining: None,
                source: Some(source),
            })
            .await?;
        let (session_token, expires_at) = self.issue_account_session(&account, now).await?;
        Ok(proto::PasskeySigninReply {
            account,
            session_token,
            expires_at,
        })
    }
}
