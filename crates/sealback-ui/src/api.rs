//! The routes: the page and its assets, and the JSON API the page calls.
//!
//! Every failure is an [`ApiError`]: a stable code the page maps to a screen, a message a
//! person can read, and what to do next.

use crate::guard::{self, Guard};
use crate::jobs::JobState;
use crate::origin::PageOrigin;
use crate::state::{on_engine, Ceremony, Purpose, UiState};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use base64::Engine as _;
use sealback_core::keyslot::{KeySlotFile, ProtectorType, SlotTemplate};
use sealback_core::passkey::PasskeyParams;
use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};
use sealback_core::ProtectorSecret;
use sealback_engine::{ErrorKind, Repository};
use sealback_passkey::{passkey_slots, passkey_template, PasskeyProtector, PrfAssertion};
use sealback_vault_client::{
    Password, VaultClient, VaultError, VaultPasskeyProtector, VaultPasswordProtector,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub(crate) type Shared = Arc<UiState>;

/// The session's repository, held by one request (or job) at a time.
pub(crate) type RepoGuard = tokio::sync::OwnedMutexGuard<Option<Repository>>;

/// Holds the session's repository for this request: `busy` while a backup, restore or other
/// change holds it.
pub(crate) fn repo_slot(state: &Shared) -> Result<RepoGuard, ApiError> {
    state
        .repo
        .clone()
        .try_lock_owned()
        .map_err(|_| ApiError::busy())
}

/// [`repo_slot`], for what needs the backup unlocked: `locked` when it is not.
pub(crate) fn unlocked_repo(state: &Shared) -> Result<RepoGuard, ApiError> {
    let guard = repo_slot(state)?;
    if guard.is_none() {
        return Err(ApiError::locked());
    }
    Ok(guard)
}
pub(crate) type ApiResult = Result<Json<Value>, ApiError>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A failure as the page receives it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// Stable code for the page.
    error: &'static str,
    /// What happened, for people.
    message: String,
    /// What to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            message: message.into(),
            hint: None,
        }
    }
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn other(message: String) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "other", message)
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
    pub(crate) fn locked() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "locked",
            "the backup is locked in this session",
        )
        .hint("unlock it with your passkey, your 64-digit key or your password")
    }
    pub(crate) fn busy() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "busy",
            "a backup or restore is running",
        )
        .hint("wait for it to finish; its progress is on the Chat backup screen")
    }
    /// The passkey this step needs belongs to the RP of the page's other origin: the page
    /// offers to continue there (`POST /api/session/handoff`).
    fn other_address(message: &str, hint: &str) -> Self {
        Self::new(StatusCode::CONFLICT, "other_address", message).hint(hint)
    }
    fn ceremony_gone() -> Self {
        Self::new(
            StatusCode::GONE,
            "expired",
            "this step expired or was already used",
        )
        .hint("start again; nothing was changed")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.clone())).into_response()
    }
}

impl From<sealback_engine::Error> for ApiError {
    fn from(e: sealback_engine::Error) -> Self {
        use sealback_engine::Error as E;
        match &e {
            E::NotARepository(_) => Self::new(
                StatusCode::CONFLICT,
                "not_set_up",
                "end-to-end encrypted backup is not turned on yet",
            )
            .hint("turn it on with a passkey, a 64-digit key or a password"),
            E::AlreadyExists(_) => Self::new(
                StatusCode::CONFLICT,
                "already_on",
                "end-to-end encrypted backup is already on for this cloud drive folder",
            )
            .hint("unlock it instead, or choose another folder"),
            E::Invalid(m) => Self::bad_request(m.clone()),
            _ => match e.kind() {
                ErrorKind::Unlock => Self::new(StatusCode::UNAUTHORIZED, "wrong_key", e.to_string())
                    .hint("check the key; any other key of this backup opens it too"),
                ErrorKind::Integrity => Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "integrity",
                    e.to_string(),
                )
                .hint("nothing damaged was restored; to list the damage, run sealback check --read-data in a terminal"),
                ErrorKind::Busy => Self::new(StatusCode::CONFLICT, "repository_busy", e.to_string())
                    .hint("another sealback is cleaning up this backup; try again in a few minutes"),
                _ => Self::other(e.to_string()),
            },
        }
    }
}

pub(crate) fn vault_error(e: VaultError) -> ApiError {
    let message = e.to_string();
    match e {
        VaultError::WrongPassword { remaining: 0 } => {
            ApiError::new(StatusCode::LOCKED, "vault_locked", message)
                .hint("open the backup with your passkey or your 64-digit key, if you have one")
        }
        VaultError::WrongPassword { .. } => {
            ApiError::new(StatusCode::UNAUTHORIZED, "wrong_password", message)
                .hint("check the password; your passkey or 64-digit key also opens the backup")
        }
        VaultError::Locked => ApiError::new(StatusCode::LOCKED, "vault_locked", message)
            .hint("open the backup with your passkey or your 64-digit key, if you have one"),
        VaultError::RateLimited { .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
        VaultError::WrongPasskey { remaining: 0, .. } => {
            ApiError::new(StatusCode::LOCKED, "vault_locked", message)
                .hint("open the backup with your 64-digit key, if you have one")
        }
        VaultError::WrongPasskey { .. } => {
            ApiError::new(StatusCode::UNAUTHORIZED, "wrong_passkey", message)
                .hint("use the passkey you turned backup on with, or your 64-digit key")
        }
        VaultError::NotAvailable(_) => ApiError::new(StatusCode::CONFLICT, "not_offered", message)
            .hint("use a 64-digit key instead"),
        VaultError::OtherVault { .. } => ApiError::new(StatusCode::CONFLICT, "other_vault", message)
            .hint("start sealback ui with the address of your messaging app's key vault (--vault-url), or unlock with another key"),
        VaultError::BadAddress(_) => ApiError::new(StatusCode::CONFLICT, "bad_vault_address", message)
            .hint("start sealback ui with the https:// address of your messaging app's key vault (--vault-url)"),
        VaultError::Unauthorized(_) => ApiError::new(StatusCode::UNAUTHORIZED, "no_account_proof", message)
            .hint("start sealback ui with the account proof your messaging app gives you (SEALBACK_ACCOUNT_PROOF)"),
        // The library's text names WebAuthn origins; the page says what it means to a person.
        VaultError::PasskeyRefused(detail) => {
            tracing::info!(%detail, "the key vault refused a passkey made on this page");
            ApiError::new(
                StatusCode::CONFLICT,
                "passkey_refused",
                "the key vault does not accept passkeys made on this page, so nothing was turned on",
            )
            .hint("your browser was asked to forget the new passkey. Use a 64-digit key instead; if you run the key vault yourself for a test, start it with --dev (it then accepts this page)")
        }
        // The address and the network library's words help nobody here (they are in the log).
        VaultError::Unreachable { .. } => {
            tracing::info!(error = %message, "the key vault cannot be reached");
            ApiError::new(StatusCode::BAD_GATEWAY, "vault_unreachable", "the key vault cannot be reached")
                .hint("check your internet connection and try again; a 64-digit key opens the backup without the key vault")
        }
        _ => ApiError::new(StatusCode::BAD_GATEWAY, "vault_error", message)
            .hint("try again in a while; a 64-digit key opens the backup without the key vault"),
    }
}

/// Base64url bytes that are a secret (a PRF output): zeroized, never printed.
struct SecretBytes(Zeroizing<Vec<u8>>);

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        B64.decode(text.as_bytes())
            .map(|b| SecretBytes(Zeroizing::new(b)))
            .map_err(|_| serde::de::Error::custom("not base64url"))
    }
}

/// A secret string (a password, a recovery key typed in): zeroized, never printed.
pub(crate) struct SecretText(pub(crate) Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SecretText(Zeroizing::new(String::deserialize(d)?)))
    }
}

fn b64_field(text: &str, what: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(text)
        .map_err(|_| ApiError::bad_request(format!("{what} is not base64url")))
}

pub fn router(state: Shared, guard: Guard) -> Router {
    Router::new()
        .route("/", asset(INDEX))
        .route("/assets/app.js", asset(APP_JS))
        .route("/assets/app.css", asset(APP_CSS))
        .route("/assets/icon.svg", asset(ICON))
        .route("/api/status", get(status))
        .route("/api/passkey/create/begin", post(passkey_create_begin))
        .route("/api/passkey/create/finish", post(passkey_create_finish))
        .route("/api/recovery-key/begin", post(recovery_key_begin))
        .route("/api/recovery-key/finish", post(recovery_key_finish))
        .route("/api/password/add", post(password_add))
        .route("/api/features", get(features))
        .route("/api/vault-passkey/begin", post(vault_passkey_begin))
        .route("/api/vault-passkey/finish", post(vault_passkey_finish))
        .route(
            "/api/unlock/vault-passkey/begin",
            post(unlock_vault_passkey_begin),
        )
        .route(
            "/api/unlock/vault-passkey/finish",
            post(unlock_vault_passkey_finish),
        )
        .route("/api/unlock/passkey/begin", post(unlock_passkey_begin))
        .route("/api/unlock/passkey/finish", post(unlock_passkey_finish))
        .route("/api/unlock/recovery-key", post(unlock_recovery_key))
        .route("/api/unlock/password", post(unlock_password))
        .route("/api/lock", post(lock))
        .route("/api/backup", post(start_backup))
        .route("/api/restore", post(start_restore))
        .route("/api/jobs/{id}", get(job))
        .route("/api/snapshots", get(snapshots))
        .route("/api/keys/remove", post(remove_key))
        .merge(crate::settings::router(&state))
        .with_state(state)
        .merge(
            Router::new()
                .route("/api/session", post(guard::open_session))
                .route("/api/session/handoff", post(guard::handoff))
                .with_state(guard.clone()),
        )
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
}

/// An embedded asset: (content type, body). The page, its script and style, its icon.
pub(crate) type Asset = (&'static str, &'static str);
const INDEX: Asset = (
    "text/html; charset=utf-8",
    include_str!("../assets/index.html"),
);
const APP_JS: Asset = (
    "text/javascript; charset=utf-8",
    include_str!("../assets/app.js"),
);
const APP_CSS: Asset = ("text/css; charset=utf-8", include_str!("../assets/app.css"));
const ICON: Asset = ("image/svg+xml", include_str!("../assets/icon.svg"));

pub(crate) fn asset((content_type, body): Asset) -> axum::routing::MethodRouter<Shared> {
    get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) })
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn keys_view(state: &UiState, keys: &KeySlotFile) -> Value {
    let used = state.last_used.lock().expect("last-used lock").clone();
    let list: Vec<Value> = keys
        .slots
        .iter()
        .map(|s| {
            let id = s.id.to_hex();
            json!({
                "id": id, "type": s.protector_type.name(), "name": keys.display_name(s),
                "created_unix": s.created_unix, "last_used_unix": used.get(&id),
            })
        })
        .collect();
    json!(list)
}

/// Reads the keyslot file (no key needed); `None` when backup is not on yet.
pub(crate) async fn read_keys(state: &UiState) -> Result<Option<KeySlotFile>, ApiError> {
    let store = state.store()?;
    on_engine(move || async move {
        // A turn-off that stopped halfway left no keys file: nothing to read or open.
        if !Repository::exists(&store).await?
            || sealback_engine::turnoff::is_half_turned_off(&store).await?
        {
            return Ok(None);
        }
        Ok(Some(Repository::read_keyslots(&store).await?.1))
    })
    .await
}

/// [`read_keys`], for what needs a backup there: `not_a_repository` when there is none.
pub(crate) async fn existing_keys(state: &UiState) -> Result<KeySlotFile, ApiError> {
    read_keys(state)
        .await?
        .ok_or_else(|| sealback_engine::Error::NotARepository(state.config.repo.clone()).into())
}

/// Whether a turn-off stopped halfway (a config without a keys file).
async fn half_turned_off(state: &UiState) -> Result<bool, ApiError> {
    let store = state.store()?;
    on_engine(move || async move {
        Ok::<_, ApiError>(sealback_engine::turnoff::is_half_turned_off(&store).await?)
    })
    .await
}

async fn status(
    State(state): State<Shared>,
    Extension(origin): Extension<PageOrigin>,
) -> ApiResult {
    let keys = read_keys(&state).await?;
    let half_off = keys.is_none() && half_turned_off(&state).await?;
    // While unlocked, the names shown are those of the keys file verified at unlock (and
    // changed by this session since): the drive's copy is read without a key, so a name
    // swapped there would have the person remove the wrong key. (While a job holds the
    // session, the drive's copy is shown; no key can be removed until it ends.)
    let (unlocked, busy, verified) = match state.repo.try_lock() {
        Ok(guard) => (
            guard.is_some(),
            false,
            guard.as_ref().map(|repo| repo.keyslots().clone()),
        ),
        Err(_) => (true, true, None),
    };
    let shown = keys.as_ref().and(verified.as_ref().or(keys.as_ref()));
    let running = state
        .jobs
        .all()
        .into_values()
        .filter(|j| j["state"] == "running")
        .collect::<Vec<_>>();
    let vault = &state.config.vault;
    Ok(Json(json!({
        "repo": state.config.repo,
        "paths": state.config.paths,
        "hostname": state.config.hostname,
        "initialized": keys.is_some(),
        "half_off": half_off,
        "unlocked": keys.is_some() && unlocked,
        "busy": busy,
        "running_jobs": running,
        "keys": shown.map(|k| keys_view(&state, k)).unwrap_or(json!([])),
        "vault": {"url": vault.url, "account": vault.account, "has_proof": vault.proof.is_some()},
        "snapshots": state.snapshot_cache.lock().expect("cache lock").clone(),
        "page": {
            "shared_origin": origin == PageOrigin::Shared,
            "adopted_address": state.page.adopted,
            "older_passkeys": keys.as_ref().is_some_and(has_older_passkeys),
        },
    })))
}

#[derive(Deserialize)]
struct CreateBegin {
    purpose: Purpose,
    #[serde(default)]
    name: Option<String>,
}

/// Fails unless the repository is in the state `purpose` needs.
async fn check_purpose(state: &UiState, purpose: Purpose) -> Result<Option<KeySlotFile>, ApiError> {
    let keys = read_keys(state).await?;
    match (purpose, &keys) {
        (Purpose::Setup, Some(_)) => {
            Err(sealback_engine::Error::AlreadyExists(state.config.repo.clone()).into())
        }
        (Purpose::AddKey, None) => {
            Err(sealback_engine::Error::NotARepository(state.config.repo.clone()).into())
        }
        (Purpose::AddKey, Some(_))
            if state.repo.try_lock().map(|g| g.is_none()).unwrap_or(false) =>
        {
            Err(ApiError::locked())
        }
        _ => Ok(keys),
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand_core::Rng::fill_bytes(&mut sealback_engine::os_rng(), &mut b);
    b
}

/// One PRF input for every browser passkey of a backup, so a single discoverable prompt can
/// unlock with whichever of them the person picks (outputs still differ per credential). New
/// passkeys take the salt of the existing ones of the relying party `rp_id` (params version 2
/// binds the input to it), so they share its input too.
fn shared_salt(keys: &KeySlotFile, rp_id: &str) -> Option<[u8; 32]> {
    shared_by_passkeys(keys, rp_id, |p| p.prf_salt)
}

/// The PRF input every browser passkey of this page's relying party shares, if they share one.
fn shared_prf_input(keys: &KeySlotFile, rp_id: &str) -> Option<[u8; 32]> {
    shared_by_passkeys(keys, rp_id, PasskeyParams::prf_input)
}

/// Whether the backup has browser passkeys of the shared RP `localhost` (made by an older
/// sealback): usable only at the page's shared origin, and by any local page.
fn has_older_passkeys(keys: &KeySlotFile) -> bool {
    passkey_slots(keys)
        .iter()
        .any(|(_, p)| p.rp_id == crate::SHARED_RP_ID)
}

/// `value` of the passkeys of `rp_id`, when there are some and all have the same.
fn shared_by_passkeys(
    keys: &KeySlotFile,
    rp_id: &str,
    value: impl Fn(&PasskeyParams) -> [u8; 32],
) -> Option<[u8; 32]> {
    let mut values = passkey_slots(keys)
        .into_iter()
        .filter(|(_, p)| p.rp_id == rp_id)
        .map(|(_, p)| value(&p));
    let first = values.next()?;
    values.all(|v| v == first).then_some(first)
}

async fn passkey_create_begin(
    State(state): State<Shared>,
    Extension(origin): Extension<PageOrigin>,
    Json(req): Json<CreateBegin>,
) -> ApiResult {
    if origin == PageOrigin::Shared {
        // A passkey of the RP `localhost` could be used by any page on this computer.
        return Err(ApiError::other_address(
            "new passkeys are made only at sealback's own address, not at localhost",
            "go back to sealback's page (the button below) and add the passkey there",
        ));
    }
    let rp_id = state.rp_id(origin);
    let keys = check_purpose(&state, req.purpose).await?;
    let prf_salt = keys
        .as_ref()
        .and_then(|k| shared_salt(k, &rp_id))
        .unwrap_or_else(random_bytes::<32>);
    let existing: Vec<String> = keys
        .as_ref()
        .map(|k| {
            passkey_slots(k)
                .into_iter()
                .map(|(_, p)| B64.encode(&p.credential_id))
                .collect()
        })
        .unwrap_or_default();
    let ceremony = state.begin(Ceremony::CreatePasskey {
        purpose: req.purpose,
        prf_salt,
        rp_id: rp_id.clone(),
        name: req.name.unwrap_or_else(|| "passkey".into()),
    });
    Ok(Json(json!({
        "ceremony": ceremony,
        "rp_id": rp_id,
        "rp_name": "sealback chat backup",
        "user_id": B64.encode(random_bytes::<16>()),
        "user_name": "chat backup",
        "challenge": B64.encode(random_bytes::<32>()),
        "prf_input": B64.encode(sealback_core::passkey::bound_prf_input(&rp_id, &prf_salt)),
        "exclude_credentials": existing,
    })))
}

#[derive(Deserialize)]
struct CreateFinish {
    ceremony: String,
    credential_id: String,
    prf_output: SecretBytes,
}

async fn passkey_create_finish(
    State(state): State<Shared>,
    Json(req): Json<CreateFinish>,
) -> ApiResult {
    let Some(Ceremony::CreatePasskey {
        purpose,
        prf_salt,
        rp_id,
        name,
    }) = state.take(&req.ceremony)
    else {
        return Err(ApiError::ceremony_gone());
    };
    let credential_id = b64_field(&req.credential_id, "credential_id")?;
    if credential_id.is_empty()
        || credential_id.len() > sealback_core::passkey::MAX_CREDENTIAL_ID_LEN
    {
        return Err(ApiError::bad_request("credential_id has a wrong length"));
    }
    if req.prf_output.0.len() != 32 {
        return Err(ApiError::bad_request("prf_output must be 32 bytes"));
    }
    let params = PasskeyParams {
        credential_id,
        rp_id,
        prf_salt,
        input_rule: sealback_core::passkey::PrfInputRule::BoundToRpId,
    };
    let template = passkey_template(&params, name, unix_now());
    let secret = ProtectorSecret::new(req.prf_output.0.to_vec());
    add_key(&state, purpose, template, secret).await
}

/// Creates the repository with its first key, or adds a key to the unlocked one.
async fn add_key(
    state: &Shared,
    purpose: Purpose,
    template: SlotTemplate,
    secret: ProtectorSecret,
) -> ApiResult {
    let store = state.store()?;
    let mut guard = repo_slot(state)?;
    let kind = template.protector_type.name();
    let (guard, id) = on_engine(move || async move {
        let id = match purpose {
            Purpose::Setup => {
                let repo = Repository::init(store, template, &secret).await?;
                let id = repo.unlocked_slot();
                *guard = Some(repo);
                id
            }
            Purpose::AddKey => {
                let repo = guard.as_mut().ok_or_else(ApiError::locked)?;
                repo.add_slot(template, &secret).await?
            }
        };
        Ok::<_, ApiError>((guard, id))
    })
    .await?;
    drop(guard);
    state.note_use(&id.to_hex());
    tracing::info!(kind, ?purpose, "key added");
    Ok(Json(json!({"id": id.to_hex(), "type": kind})))
}

async fn recovery_key_begin(
    State(state): State<Shared>,
    Json(req): Json<CreateBegin>,
) -> ApiResult {
    check_purpose(&state, req.purpose).await?;
    let key = RecoveryKey::generate(&mut sealback_engine::os_rng());
    let shown = key.display_groups();
    let ceremony = state.begin(Ceremony::ShowRecoveryKey {
        purpose: req.purpose,
        key,
        name: req.name.unwrap_or_else(|| "recovery key".into()),
    });
    Ok(Json(
        json!({"ceremony": ceremony, "recovery_key": shown.as_str()}),
    ))
}

#[derive(Deserialize)]
struct RecoveryFinish {
    ceremony: String,
    confirm: SecretText,
}

async fn recovery_key_finish(
    State(state): State<Shared>,
    Json(req): Json<RecoveryFinish>,
) -> ApiResult {
    let Some((started, Ceremony::ShowRecoveryKey { purpose, key, name })) =
        state.take_timed(&req.ceremony)
    else {
        return Err(ApiError::ceremony_gone());
    };
    let typed = RecoveryKey::parse(&req.confirm.0).ok();
    let same = typed.is_some_and(|t| {
        bool::from(
            t.to_secret()
                .expose_secret()
                .ct_eq(key.to_secret().expose_secret()),
        )
    });
    if !same {
        // A typo costs nothing: the same key waits for another try (until the step expires).
        let ceremony = Ceremony::ShowRecoveryKey { purpose, key, name };
        state.put_back(&req.ceremony, started, ceremony);
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "confirm_mismatch",
            "that is not the key that was shown; nothing was changed",
        )
        .hint("check the digits and try again, or show the key again to compare"));
    }
    let template = SlotTemplate {
        protector_type: ProtectorType::RECOVERY_KEY,
        name,
        created_unix: unix_now(),
        params: vec![],
    };
    add_key(&state, purpose, template, key.to_secret()).await
}

#[derive(Deserialize)]
struct PasswordAdd {
    purpose: Purpose,
    password: SecretText,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    proof: Option<SecretText>,
    #[serde(default)]
    name: Option<String>,
}

pub(crate) fn vault_login_inputs(
    state: &UiState,
    account: Option<String>,
    proof: Option<SecretText>,
) -> Result<(String, Zeroizing<String>), ApiError> {
    let account = account
        .filter(|a| !a.is_empty())
        .or_else(|| state.config.vault.account.clone())
        .ok_or_else(|| {
            ApiError::bad_request("a key held by the key vault needs your account there")
        })?;
    let proof = proof
        .map(|p| p.0)
        .filter(|p| !p.is_empty())
        .or_else(|| state.config.vault.proof.clone().map(Zeroizing::new))
        .unwrap_or_default();
    Ok((account, proof))
}

/// A `register` proof may also replace the key at the vault: it travels only when a key is
/// added, never to unlock (SPEC §7c), whether the page or `sealback ui`'s settings gave it.
fn refuse_register_proof(proof: &str) -> Result<(), ApiError> {
    match sealback_proto::proof::claimed_scope(proof) {
        Some(sealback_proto::proof::Scope::Register) => Err(ApiError::bad_request(
            "the account proof given may also replace your key at the key vault, so sealback sends it only when adding a key",
        )
        .hint("unlock with a login proof from your messaging app (scope login)")),
        _ => Ok(()),
    }
}

async fn password_add(State(state): State<Shared>, Json(req): Json<PasswordAdd>) -> ApiResult {
    let url = state.config.vault.url.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_vault",
            "no key vault is configured",
        )
        .hint("start sealback ui with --vault-url URL (or SEALBACK_VAULT_URL) to use a password")
    })?;
    bad_request_if_short(&req.password)?;
    if let Some(keys) = check_purpose(&state, req.purpose).await? {
        sealback_engine::keychange::refuse_second_password(&keys)?;
    }
    let (account, proof) = vault_login_inputs(&state, req.account, req.proof)?;
    let secret_bytes = random_bytes::<32>();
    let secret = ProtectorSecret::new(secret_bytes.to_vec());
    let password = Password::new(req.password.0.to_string());
    let secret_for_vault = ProtectorSecret::new(secret_bytes.to_vec());
    let params = on_engine(move || async move {
        VaultClient::new(&url)?
            .register(&account, &proof, &password, &secret_for_vault, None)
            .await
    })
    .await
    .map_err(vault_error)?;
    let name = req.name.unwrap_or_else(|| "password".into());
    let template = sealback_vault_client::password_template(name, &params);
    let added = add_key(&state, req.purpose, template, secret).await?;
    if let Some(keys) = read_keys(&state).await? {
        crate::settings::remember_password(&state, &req.password, &keys.repo_id).await;
    }
    Ok(added)
}

/// Refuses a new password shorter than 6 characters.
pub(crate) fn bad_request_if_short(password: &SecretText) -> Result<(), ApiError> {
    if password.0.chars().count() < 6 {
        return Err(ApiError::bad_request(
            "use a password of at least 6 characters",
        ));
    }
    Ok(())
}

pub(crate) fn no_vault() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "no_vault",
        "no key vault is configured",
    )
    .hint("start sealback ui with --vault-url URL (or SEALBACK_VAULT_URL)")
}

/// `GET /api/features`: which kinds of key the key vault's operator offers this person now
/// (staged rollout). Without a vault, only the kinds that need none.
async fn features(State(state): State<Shared>) -> ApiResult {
    use sealback_proto::protectors;
    let vault = &state.config.vault;
    let (Some(url), Some(account)) = (vault.url.clone(), vault.account.clone()) else {
        let why = "no key vault is configured";
        return Ok(Json(json!({
            protectors::PASSKEY: {"offered": true},
            protectors::VAULT_PASSKEY: {"offered": false, "reason": why},
            protectors::PASSWORD: {"offered": vault.url.is_some(), "reason": why},
        })));
    };
    let reply = on_engine(move || async move {
        VaultClient::new(&url)?
            .features(&sealback_proto::FeaturesRequest {
                account,
                platform: "web".into(),
                region: String::new(),
                app_version: env!("CARGO_PKG_VERSION").into(),
            })
            .await
    })
    .await
    .map_err(vault_error)?;
    let mut out = serde_json::Map::new();
    for p in reply.protectors {
        out.insert(
            p.protector.clone(),
            json!({"offered": p.offered, "reason": p.reason}),
        );
    }
    Ok(Json(Value::Object(out)))
}

/// Starts registering a browser passkey at the key vault (the vault-passkey mode, for a
/// passkey provider without PRF): returns the vault's creation options for the browser.
async fn vault_passkey_begin(
    State(state): State<Shared>,
    Extension(origin): Extension<PageOrigin>,
    Json(req): Json<CreateBegin>,
) -> ApiResult {
    let url = state.config.vault.url.clone().ok_or_else(no_vault)?;
    check_purpose(&state, req.purpose).await?;
    let (account, proof) = vault_login_inputs(&state, None, None)?;
    let (url2, account2) = (url.clone(), account.clone());
    let start = on_engine(move || async move {
        VaultClient::new(&url2)?
            .passkey_register_start(&account2, &proof, None)
            .await
    })
    .await
    .map_err(vault_error)?;
    let rp_id = sealback_vault_client::options_rp_id(&start.options).map_err(vault_error)?;
    vault_rp_usable(origin, &rp_id)?;
    let ceremony = state.begin(Ceremony::CreateVaultPasskey {
        purpose: req.purpose,
        name: req.name.unwrap_or_else(|| "passkey (key vault)".into()),
        url,
        account,
        rp_id,
        session: start.session,
    });
    Ok(Json(
        json!({"ceremony": ceremony, "options": start.options}),
    ))
}

#[derive(Deserialize)]
struct VaultCeremonyFinish {
    ceremony: String,
    /// The browser's `PublicKeyCredential.toJSON()`.
    credential: Value,
}

async fn vault_passkey_finish(
    State(state): State<Shared>,
    Json(req): Json<VaultCeremonyFinish>,
) -> ApiResult {
    let Some(Ceremony::CreateVaultPasskey {
        purpose,
        name,
        url,
        account,
        rp_id,
        session,
    }) = state.take(&req.ceremony)
    else {
        return Err(ApiError::ceremony_gone());
    };
    let (vault_share, vault_id) = on_engine(move || async move {
        let client = VaultClient::new(&url)?;
        let share = client
            .passkey_register_finish(session, req.credential)
            .await?;
        Ok::<_, VaultError>((share, client.vault_id().await?))
    })
    .await
    .map_err(vault_error)?;
    let (params, secret) =
        sealback_vault_client::new_vault_passkey_slot(vault_id, &account, &rp_id, &vault_share);
    let template = SlotTemplate {
        protector_type: ProtectorType::VAULT_PASSKEY,
        name,
        created_unix: unix_now(),
        params: params.encode(),
    };
    add_key(&state, purpose, template, secret).await
}

/// Starts unlocking with a passkey held by the key vault: the vault counts a guess and
/// returns its request options for the browser.
/// A key vault's passkeys belong to the vault's RP: the page can use them only at an origin
/// of that host. A development vault's RP is `localhost`: the page's shared origin.
fn vault_rp_usable(origin: PageOrigin, rp_id: &str) -> Result<(), ApiError> {
    if origin == PageOrigin::Installation && rp_id == crate::SHARED_RP_ID {
        return Err(ApiError::other_address(
            "this key vault's passkeys work only at the address localhost",
            "continue at that address (the button below), then come back here",
        ));
    }
    Ok(())
}

async fn unlock_vault_passkey_begin(
    State(state): State<Shared>,
    Extension(origin): Extension<PageOrigin>,
) -> ApiResult {
    let keys = existing_keys(&state).await?;
    // The vault is the configured one; a slot only says which vault holds it (by id), never
    // where to connect.
    let url = state.config.vault.url.clone().ok_or_else(no_vault)?;
    let url2 = url.clone();
    let vault_id = on_engine(move || async move { VaultClient::new(&url2)?.vault_id().await })
        .await
        .map_err(vault_error)?;
    let configured = state.config.vault.account.clone();
    let slots = sealback_vault_client::vault_passkey_slots(&keys);
    let of_account: Vec<_> = slots
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| configured.as_ref().is_none_or(|a| *a == p.account))
        .collect();
    let params = match of_account.iter().find(|p| p.held_by(vault_id)) {
        Some(p) => p.clone(),
        None if of_account.is_empty() => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_passkey",
                "this backup has no passkey held by a key vault",
            )
            .hint("unlock it with your passkey, your 64-digit key or your password"))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "other_vault",
                "this backup's passkey is held by another key vault than the one sealback ui was started with",
            )
            .hint("start sealback ui with the address of your messaging app's key vault (--vault-url), or unlock with your 64-digit key"))
        }
    };
    // Before the vault counts a guess.
    vault_rp_usable(origin, &params.rp_id)?;
    let (_, proof) = vault_login_inputs(&state, Some(params.account.clone()), None)?;
    let (url2, account) = (url.clone(), params.account.clone());
    let start = on_engine(move || async move {
        VaultClient::new(&url2)?
            .passkey_login_start(&account, &proof)
            .await
    })
    .await
    .map_err(vault_error)?;
    let ceremony = state.begin(Ceremony::UnlockVaultPasskey {
        url,
        vault_id,
        account: params.account.clone(),
        session: start.session,
    });
    Ok(Json(json!({
        "ceremony": ceremony,
        "options": start.options,
        "attempts_remaining": start.attempts_remaining,
    })))
}

async fn unlock_vault_passkey_finish(
    State(state): State<Shared>,
    Json(req): Json<VaultCeremonyFinish>,
) -> ApiResult {
    let Some(Ceremony::UnlockVaultPasskey {
        url,
        vault_id,
        account,
        session,
    }) = state.take(&req.ceremony)
    else {
        return Err(ApiError::ceremony_gone());
    };
    let account2 = account.clone();
    let (vault_share, vault_session) = on_engine(move || async move {
        VaultClient::new(&url)?
            .passkey_login_finish(&account2, session, req.credential)
            .await
    })
    .await
    .map_err(vault_error)?;
    let protector =
        VaultPasskeyProtector::from_share(vault_id, &account, vault_share, vault_session);
    open_with(&state, Box::new(protector)).await
}

async fn unlock_passkey_begin(
    State(state): State<Shared>,
    Extension(origin): Extension<PageOrigin>,
) -> ApiResult {
    let keys = existing_keys(&state).await?;
    let rp_id = state.rp_id(origin);
    let credentials: Vec<Value> = passkey_slots(&keys)
        .into_iter()
        .filter(|(_, p)| p.rp_id == rp_id)
        .map(|(_, p)| json!({"id": B64.encode(&p.credential_id), "prf_input": B64.encode(p.prf_input())}))
        .collect();
    if credentials.is_empty() && origin == PageOrigin::Installation && has_older_passkeys(&keys) {
        return Err(ApiError::other_address(
            "this backup's passkey was made by an older sealback, for the address localhost",
            "continue at that address to unlock with it (the button below); then add a new passkey here and remove the old one",
        ));
    }
    if credentials.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_passkey",
            "this backup has no passkey made in a browser",
        )
        .hint("unlock it with your 64-digit key or your password"));
    }
    let ceremony = state.begin(Ceremony::UnlockPasskey);
    Ok(Json(json!({
        "ceremony": ceremony,
        "rp_id": rp_id,
        "challenge": B64.encode(random_bytes::<32>()),
        "shared_prf_input": shared_prf_input(&keys, &rp_id).map(|s| B64.encode(s)),
        "credentials": credentials,
    })))
}

#[derive(Deserialize)]
struct UnlockFinish {
    ceremony: String,
    credential_id: String,
    #[serde(default)]
    prf_output: Option<SecretBytes>,
}

/// Opens the repository with `protector` and keeps it unlocked.
async fn open_with(
    state: &Shared,
    protector: Box<dyn sealback_core::protector::Protector + Send>,
) -> ApiResult {
    let store = state.store()?;
    let mut guard = repo_slot(state)?;
    let mut protector = protector;
    let config = state.config.clone();
    let slot = on_engine(move || async move {
        // A keys file older than this device has seen (a rotation undone, or the MAC stripped,
        // by whoever writes to the drive) is refused before anything is unlocked (SPEC §12):
        // the engine checks the very file it unlocks, and moves the record up after.
        let (repo_config, _) = Repository::read_keyslots(&store).await?;
        let repo = match config.key_epoch_record(&repo_config.repo_id) {
            Some(record) => {
                Repository::open_guarded(store, protector.as_mut(), &record, false).await?
            }
            None => Repository::open(store, protector.as_mut()).await?,
        };
        let slot = repo.unlocked_slot();
        *guard = Some(repo);
        Ok::<_, ApiError>(slot)
    })
    .await?;
    state.note_use(&slot.to_hex());
    tracing::info!("backup unlocked");
    Ok(Json(json!({"unlocked": true, "key": slot.to_hex()})))
}

/// Moves this device's record up to the repository's key epoch (after an unlock has
/// authenticated it, and after a rotation). Best effort: a record that cannot be written loses
/// the protection, never data.
pub(crate) fn remember_key_epoch(config: &crate::state::UiConfig, repo: &Repository) {
    let Some(record) = config.key_epoch_record(&repo.config().repo_id) else {
        return;
    };
    repo.remember_keys_file(&record);
}

async fn unlock_passkey_finish(
    State(state): State<Shared>,
    Json(req): Json<UnlockFinish>,
) -> ApiResult {
    let Some(Ceremony::UnlockPasskey) = state.take(&req.ceremony) else {
        return Err(ApiError::ceremony_gone());
    };
    let credential_id = b64_field(&req.credential_id, "credential_id")?;
    let keys = existing_keys(&state).await?;
    let known = passkey_slots(&keys)
        .iter()
        .any(|(_, p)| p.credential_id == credential_id);
    if !known {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_passkey",
            "this passkey is not one of this backup's keys; nothing was changed",
        )
        .hint("use the passkey you turned backup on with (on your phone, security key or password manager), or your 64-digit key"));
    }
    let Some(output) = req.prf_output.filter(|o| o.0.len() == 32) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_prf",
            "the browser or passkey provider did not give back the passkey's secret that opens this backup",
        )
        .hint("try again in a current Chrome, with iCloud Keychain or with a FIDO2 security key, or use your 64-digit key"));
    };
    let protector = PasskeyProtector::from_assertion(PrfAssertion {
        credential_id,
        prf_output: ProtectorSecret::new(output.0.to_vec()),
    });
    open_with(&state, Box::new(protector)).await.map_err(|e| {
        if e.error == "wrong_key" {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong_passkey",
                "the passkey answered, but its secret does not open this backup; nothing was changed",
            )
            .hint("use the passkey you turned backup on with, or your 64-digit key")
        } else {
            e
        }
    })
}

#[derive(Deserialize)]
struct UnlockRecovery {
    recovery_key: SecretText,
}

async fn unlock_recovery_key(
    State(state): State<Shared>,
    Json(req): Json<UnlockRecovery>,
) -> ApiResult {
    let key = RecoveryKey::parse(&req.recovery_key.0).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_recovery_key", e.to_string())
            .hint("type the 64 digits exactly as written down; spaces do not matter")
    })?;
    open_with(&state, Box::new(RecoveryKeyProtector(key))).await
}

#[derive(Deserialize)]
struct UnlockPassword {
    password: SecretText,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    proof: Option<SecretText>,
}

async fn unlock_password(
    State(state): State<Shared>,
    Json(req): Json<UnlockPassword>,
) -> ApiResult {
    let keys = existing_keys(&state).await?;
    let account = req
        .account
        .filter(|a| !a.is_empty())
        .or_else(|| state.config.vault.account.clone());
    let (_, proof) =
        vault_login_inputs(&state, account.clone().or(Some(String::new())), req.proof)?;
    refuse_register_proof(&proof)?;
    let url = state.config.vault.url.clone().ok_or_else(no_vault)?;
    let password = Password::new(req.password.0.to_string());
    let protector = on_engine(move || async move {
        let client = VaultClient::new(&url)?;
        VaultPasswordProtector::login(&keys, account.as_deref(), &client, &password, &proof).await
    })
    .await
    .map_err(vault_error)?;
    open_with(&state, Box::new(protector)).await
}

async fn lock(State(state): State<Shared>) -> ApiResult {
    let mut guard = state.repo.try_lock().map_err(|_| ApiError::busy())?;
    *guard = None;
    Ok(Json(json!({"unlocked": false})))
}

fn snapshot_list_view(all: &[(sealback_core::Id, sealback_core::snapshot::Snapshot)]) -> Value {
    let list: Vec<Value> = all
        .iter()
        .map(|(id, s)| {
            json!({
                "id": id.to_hex(), "short": id.short(), "time_unix_ns": s.time_unix_ns,
                "hostname": s.hostname, "files": s.summary.files,
                "bytes_read": s.summary.bytes_read, "bytes_added": s.summary.bytes_added,
            })
        })
        .collect();
    json!(list)
}

async fn snapshots(State(state): State<Shared>) -> ApiResult {
    let Ok(guard) = state.repo.clone().try_lock_owned() else {
        let cached = state.snapshot_cache.lock().expect("cache lock").clone();
        return Ok(Json(
            json!({"snapshots": cached.unwrap_or(json!([])), "stale": true}),
        ));
    };
    if guard.is_none() {
        return Err(ApiError::locked());
    }
    let list = on_engine(move || async move {
        let repo = guard.as_ref().expect("checked above");
        Ok::<_, ApiError>(snapshot_list_view(&repo.list_snapshots().await?))
    })
    .await?;
    *state.snapshot_cache.lock().expect("cache lock") = Some(list.clone());
    Ok(Json(json!({"snapshots": list, "stale": false})))
}

async fn start_backup(State(state): State<Shared>) -> ApiResult {
    if state.config.paths.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to back up: start sealback ui with --path CHAT_STORE",
        ));
    }
    let guard = unlocked_repo(&state)?;
    let now = state.settings.now_unix_ns();
    let id = spawn_backup(&state, guard, now, "ui");
    Ok(Json(json!({"job": id})))
}

/// Starts a backup job of the configured paths on the unlocked repository `guard` holds, with
/// the snapshot time `time_unix_ns`; returns the job's id. "Back up now" and the scheduler
/// (`settings`) both start backups here.
pub(crate) fn spawn_backup(
    state: &Shared,
    mut guard: RepoGuard,
    time_unix_ns: i64,
    tag: &str,
) -> String {
    let (id, job) = state.jobs.start("backup");
    let paths = state.config.paths.clone();
    let options = sealback_engine::backup::BackupOptions {
        hostname: state.config.hostname.clone(),
        tags: vec![tag.into()],
        time_unix_ns,
        exclude_videos: !state.settings.device().include_videos,
        ..Default::default()
    };
    let state2 = state.clone();
    tokio::spawn(on_engine(move || async move {
        let repo = guard.as_mut().expect("checked above");
        let outcome = async {
            let r = sealback_engine::backup::backup(repo, &paths, &options, &*job).await?;
            let list = snapshot_list_view(&repo.list_snapshots().await?);
            *state2.snapshot_cache.lock().expect("cache lock") = Some(list);
            Ok::<_, ApiError>(json!({
                "snapshot_id": r.snapshot_id.to_hex(), "files": r.summary.files,
                "bytes_read": r.summary.bytes_read, "bytes_added": r.summary.bytes_added,
                "duration_s": r.duration.as_secs_f64(),
            }))
        }
        .await;
        drop(guard);
        match outcome {
            Ok(result) => job.end(JobState::Done { result }),
            Err(error) => {
                tracing::warn!(error = error.error, "backup failed");
                job.end(JobState::Failed { error })
            }
        }
    }));
    id
}

#[derive(Deserialize)]
struct RestoreRequest {
    snapshot: String,
    target: String,
}

async fn start_restore(State(state): State<Shared>, Json(req): Json<RestoreRequest>) -> ApiResult {
    let target = std::path::PathBuf::from(req.target.trim());
    if !target.is_absolute() {
        return Err(ApiError::bad_request(
            "give the folder to restore into as a full path, like /home/me/restored-chats",
        ));
    }
    let mut guard = unlocked_repo(&state)?;
    let (id, job) = state.jobs.start("restore");
    tokio::spawn(on_engine(move || async move {
        let repo = guard.as_mut().expect("checked above");
        let outcome = async {
            let (snapshot, _) = repo.find_snapshot(&req.snapshot).await?;
            let r = sealback_engine::restore::restore(repo, &snapshot, &target, &*job).await?;
            Ok::<_, ApiError>(json!({
                "snapshot_id": snapshot.to_hex(), "target": target,
                "files": r.files, "dirs": r.dirs, "bytes": r.bytes, "left_out": r.left_out,
            }))
        }
        .await;
        drop(guard);
        match outcome {
            Ok(result) => job.end(JobState::Done { result }),
            Err(error) => {
                tracing::warn!(error = error.error, "restore failed");
                job.end(JobState::Failed { error })
            }
        }
    }));
    Ok(Json(json!({"job": id})))
}

async fn job(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> ApiResult {
    state
        .jobs
        .get(&id)
        .map(|j| Json(j.view(&id)))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no_job", "no such job"))
}

#[derive(Deserialize)]
struct RemoveKey {
    id: String,
    #[serde(default)]
    rotate: bool,
}

async fn remove_key(State(state): State<Shared>, Json(req): Json<RemoveKey>) -> ApiResult {
    let mut guard = unlocked_repo(&state)?;
    let config = state.config.clone();
    let outcome = on_engine(move || async move {
        let repo = guard.as_mut().expect("checked above");
        let slot = repo
            .keyslots()
            .slots
            .iter()
            .find(|s| s.id.to_hex() == req.id)
            .map(|s| s.id)
            .ok_or_else(|| ApiError::bad_request("no such key"))?;
        let removed = repo.remove_slot(slot, req.rotate).await?;
        remember_key_epoch(&config, repo);
        Ok::<_, ApiError>(json!({
            "removed": slot.to_hex(), "rotated": removed.new_epoch.is_some(),
            "epoch": removed.new_epoch,
        }))
    })
    .await?;
    Ok(Json(outcome))
}
