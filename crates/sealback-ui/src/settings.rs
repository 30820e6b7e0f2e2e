//! The Settings area of the page: change password, turn off, key names, automatic backups
//! (the scheduler loop runs here while the session is unlocked), videos, and the page's own script for it
//! (`assets/settings.js`). Each route is a thin wrapper over the engine's decision
//! (`sealback_engine::keychange`), like the CLI's `key change-password`.

use crate::api::{
    asset, bad_request_if_short, existing_keys, read_keys, remember_key_epoch, repo_slot,
    spawn_backup, unlocked_repo, vault_error, vault_login_inputs, ApiError, ApiResult, Asset,
    SecretText, Shared,
};
use crate::state::on_engine;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use sealback_core::vault::VaultParams;
use sealback_core::ProtectorSecret;
use sealback_engine::device_settings::DeviceSettings;
use sealback_engine::keychange::{password_slot, ChangeKeyError};
use sealback_engine::password_check::{self, Checked, PasswordCheck};
use sealback_engine::schedule::{self, ManualClock, TimeSource, Waker};
use sealback_vault_client::password_template;
use sealback_vault_client::{Password, VaultClient};
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SETTINGS_JS: Asset = (
    "text/javascript; charset=utf-8",
    include_str!("../assets/settings.js"),
);

/// The Settings routes (merged into the page's router, behind the same guard). The test
/// clock's route exists only in test mode.
pub fn router(state: &Shared) -> Router<Shared> {
    let router = Router::new()
        .route("/assets/settings.js", asset(SETTINGS_JS))
        .route("/api/settings", get(settings_view))
        .route("/api/settings/device", post(set_device))
        .route("/api/settings/password/change", post(change_password))
        .route("/api/settings/turn-off", post(turn_off))
        .route("/api/settings/turn-off/finish", post(finish_turn_off))
        .route("/api/settings/keys/rename", post(rename_key))
        .route("/api/settings/password-check", post(check_password));
    if state.settings.test_mode() {
        router.route("/api/test/clock", post(set_test_clock))
    } else {
        router
    }
}

#[derive(Deserialize)]
struct ChangePassword {
    password: SecretText,
    #[serde(default)]
    rotate: bool,
    #[serde(default)]
    proof: Option<SecretText>,
}

/// `POST /api/settings/password/change`: a new record at the vault for the new password and a
/// new slot in place of the old one (engine `change_key`).
async fn change_password(
    State(state): State<Shared>,
    Json(req): Json<ChangePassword>,
) -> ApiResult {
    let url = state
        .config
        .vault
        .url
        .clone()
        .ok_or_else(crate::api::no_vault)?;
    bad_request_if_short(&req.password)?;
    let mut guard = unlocked_repo(&state)?;
    existing_keys(&state).await?;
    let (_, proof) = vault_login_inputs(&state, Some(String::new()), req.proof)?;
    let config = state.config.clone();
    let password = Password::new(req.password.0.to_string());
    let typed = req.password;
    let rotate = req.rotate;
    let changed = on_engine(move || async move {
        let repo = guard.as_mut().expect("checked above");
        let old = password_slot(repo.keyslots()).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_password",
                "this backup has no password yet",
            )
            .hint("add one on the Keys screen")
        })?;
        let params = VaultParams::decode(&old.params)
            .map_err(|e| ApiError::other(format!("the password key is unreadable: {e}")))?;
        let (old_id, name) = (old.id, old.name.clone());
        let secret = ProtectorSecret::new(crate::api::random_bytes::<32>().to_vec());
        let template = password_template(name, &params);
        let client = VaultClient::new(&url).map_err(vault_error)?;
        let register = async || {
            client
                .register_again(&params, &proof, &password, &secret)
                .await
        };
        let changed = repo
            .change_key(old_id, template, &secret, rotate, register)
            .await
            .map_err(|e| match e {
                ChangeKeyError::Unchanged(e) => ApiError::from(e),
                ChangeKeyError::NotActivated { error, .. } => {
                    let e = vault_error(error);
                    let hint = "nothing was changed: your old password still works. Try again";
                    e.hint(hint)
                }
                left @ ChangeKeyError::OldSlotLeft { .. } => ApiError::other(left.to_string()),
            })?;
        remember_key_epoch(&config, repo);
        let repo_id = repo.config().repo_id;
        Ok::<_, ApiError>((
            repo_id,
            Json(json!({
                "changed": true,
                "new_id": changed.new_slot.to_hex(),
                "removed": changed.removed.to_hex(),
                "rotated": changed.new_epoch.is_some(),
            })),
        ))
    })
    .await?;
    remember_password(&state, &typed, &changed.0).await;
    Ok(changed.1)
}

#[derive(Deserialize)]
struct TurnOff {
    confirm: String,
}

/// `POST /api/settings/turn-off`: deletes the backups on the drive (engine `turnoff`), once the
/// person typed the phrase; the session is locked afterwards, as there is nothing left to open.
async fn turn_off(State(state): State<Shared>, Json(req): Json<TurnOff>) -> ApiResult {
    sealback_engine::turnoff::refuse_unconfirmed(&req.confirm)?;
    let mut guard = unlocked_repo(&state)?;
    let done = on_engine(move || async move {
        let repo = guard.as_ref().expect("checked above");
        let done = sealback_engine::turnoff::turn_off(repo, &req.confirm).await?;
        *guard = None;
        Ok::<_, ApiError>(done)
    })
    .await?;
    *state.snapshot_cache.lock().expect("cache lock") = None;
    Ok(Json(json!({
        "off": true,
        "snapshots_deleted": done.snapshots,
        "objects_deleted": done.objects,
    })))
}

/// `POST /api/settings/turn-off/finish`: completes a turn-off that stopped after the keys file
/// was deleted (engine `finish_turn_off`: no key is asked, as none opens anything left; it
/// waits while another device's operation may still run).
async fn finish_turn_off(State(state): State<Shared>, Json(req): Json<TurnOff>) -> ApiResult {
    sealback_engine::turnoff::refuse_unconfirmed(&req.confirm)?;
    let store = state.store()?;
    // Held so that nothing else of this session runs meanwhile.
    let guard = repo_slot(&state)?;
    let done = on_engine(move || async move {
        sealback_engine::turnoff::finish_turn_off(&store, &req.confirm).await
    })
    .await?;
    drop(guard);
    *state.snapshot_cache.lock().expect("cache lock") = None;
    Ok(Json(json!({
        "off": true,
        "snapshots_deleted": done.snapshots,
        "objects_deleted": done.objects,
    })))
}

#[derive(Deserialize)]
struct RenameKey {
    id: String,
    name: String,
}

/// `POST /api/settings/keys/rename`: a new name for a key (engine `rename_slot`).
async fn rename_key(State(state): State<Shared>, Json(req): Json<RenameKey>) -> ApiResult {
    let mut guard = unlocked_repo(&state)?;
    on_engine(move || async move {
        let repo = guard.as_mut().expect("checked above");
        let slot = repo
            .keyslots()
            .slots
            .iter()
            .find(|s| s.id.to_hex() == req.id)
            .map(|s| s.id)
            .ok_or_else(|| ApiError::bad_request("no such key"))?;
        repo.rename_slot(slot, &req.name).await?;
        Ok::<_, ApiError>(Json(json!({"id": req.id, "name": req.name.trim()})))
    })
    .await
}

/// What `sealback ui` was started with for the Settings area.
#[derive(Clone, Debug, Default)]
pub struct UiSettings {
    /// Automatic backups and videos, from the config file.
    pub device: DeviceSettings,
    /// The config file the page saves changes to (`None`: kept for this session only).
    pub config_file: Option<PathBuf>,
    /// Test mode: the scheduler runs on a clock that `POST /api/test/clock` sets (the route
    /// exists only then), starting at the system time.
    pub test_mode: bool,
    /// Where this device keeps its password check records (`None`: no reminders).
    pub password_check_dir: Option<PathBuf>,
}

/// What the scheduler last found, for the page.
#[derive(Clone, Debug, Default, serde::Serialize)]
struct ScheduleView {
    /// `off`, `locked`, `waiting`, `due`, `waiting_for_power`, `running`.
    state: &'static str,
    last_backup_unix_ns: Option<i64>,
    next_due_unix_ns: Option<i64>,
}

/// The Settings area's part of the UI process state.
#[derive(Default)]
pub struct SettingsState {
    device: Mutex<DeviceSettings>,
    config_file: Mutex<Option<PathBuf>>,
    password_check_dir: Mutex<Option<PathBuf>>,
    test_clock: Mutex<Option<Arc<ManualClock>>>,
    waker: Waker,
    view: Mutex<ScheduleView>,
}

impl SettingsState {
    /// Takes the settings `sealback ui` was started with.
    pub fn configure(&self, settings: UiSettings) {
        *self.device.lock().expect("settings lock") = settings.device;
        *self.config_file.lock().expect("settings lock") = settings.config_file;
        *self.password_check_dir.lock().expect("settings lock") = settings.password_check_dir;
        *self.test_clock.lock().expect("settings lock") = settings.test_mode.then(|| {
            Arc::new(ManualClock::new(
                sealback_engine::Clock::system().now_unix_ns(),
            ))
        });
    }

    /// The device settings now.
    pub fn device(&self) -> DeviceSettings {
        *self.device.lock().expect("settings lock")
    }

    /// Whether the UI runs in test mode.
    pub fn test_mode(&self) -> bool {
        self.test_clock.lock().expect("settings lock").is_some()
    }

    /// Now, on the scheduler's clock (the test clock in test mode).
    pub fn now_unix_ns(&self) -> i64 {
        match &*self.test_clock.lock().expect("settings lock") {
            Some(clock) => clock.now_unix_ns(),
            None => sealback_engine::Clock::system().now_unix_ns(),
        }
    }

    fn set_view(&self, view: ScheduleView) {
        *self.view.lock().expect("settings lock") = view;
    }
}

/// How long the scheduler waits at most before it looks again (the power state, a clock that
/// jumped, a session unlocked since); a settings change or the test clock wakes it at once.
const LOOK_AGAIN: Duration = Duration::from_secs(60);

/// Runs for the life of the process: looks, backs up when due, waits.
pub async fn scheduler_loop(state: Shared) {
    loop {
        let wait = look(&state, Act::BackUpIfDue).await;
        state.settings.waker.wait(wait).await;
    }
}

/// Whether a look may start a backup (the scheduler) or only updates the view (the page).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    BackUpIfDue,
    ViewOnly,
}

/// How soon to look again when the repository was busy (a job, or the page's own look).
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// One look of the scheduler (engine `schedule::decide`); returns when to look again.
async fn look(state: &Shared, act: Act) -> Duration {
    let device = state.settings.device();
    if device.schedule.frequency == schedule::Frequency::Off {
        state.settings.set_view(ScheduleView {
            state: "off",
            ..Default::default()
        });
        return LOOK_AGAIN;
    }
    if state.config.paths.is_empty() {
        return LOOK_AGAIN;
    }
    let Ok(guard) = state.repo.clone().try_lock_owned() else {
        return BUSY_RETRY;
    };
    if guard.is_none() {
        state.settings.set_view(ScheduleView {
            state: "locked",
            ..Default::default()
        });
        return LOOK_AGAIN;
    }
    let host = state.config.hostname.clone();
    let (guard, last) = on_engine(move || async move {
        let repo = guard.as_ref().expect("checked above");
        let last = schedule::last_backup_ns(repo, &host).await;
        (guard, last)
    })
    .await;
    let last = match last {
        Ok(last) => last,
        Err(e) => {
            tracing::warn!(error = %e, "the scheduler cannot list snapshots");
            return LOOK_AGAIN;
        }
    };
    let now = state.settings.now_unix_ns();
    let decision = schedule::decide(&device.schedule, last, now, schedule::system_power());
    let next = schedule::next_due(&device.schedule, last);
    let view = |state| ScheduleView {
        state,
        last_backup_unix_ns: last,
        next_due_unix_ns: next.filter(|n| *n != i64::MIN),
    };
    match decision {
        schedule::Decision::Due if act == Act::BackUpIfDue => {
            state.settings.set_view(view("running"));
            spawn_backup(state, guard, now, "scheduled");
        }
        schedule::Decision::Due => state.settings.set_view(view("due")),
        schedule::Decision::WaitingForPower { .. } => {
            state.settings.set_view(view("waiting_for_power"))
        }
        _ => state.settings.set_view(view("waiting")),
    }
    LOOK_AGAIN
}

/// `GET /api/settings`: the device settings, the power state and the scheduler's view.
async fn settings_view(State(state): State<Shared>) -> ApiResult {
    look(&state, Act::ViewOnly).await;
    let device = state.settings.device();
    let view = state.settings.view.lock().expect("settings lock").clone();
    Ok(Json(json!({
        "schedule": device.schedule.frequency.as_str(),
        "only_on_ac_power": device.schedule.only_on_ac_power,
        "include_videos": device.include_videos,
        "power": schedule::system_power(),
        "saved_to": state.settings.config_file.lock().expect("settings lock").clone(),
        "scheduler": view,
        "now_unix_ns": state.settings.now_unix_ns(),
        "password_check": password_check_view(&state).await?,
    })))
}

#[derive(Deserialize)]
struct SetDevice {
    schedule: String,
    only_on_ac_power: bool,
    include_videos: bool,
}

/// `POST /api/settings/device`: saves automatic backups and videos to the config file and
/// wakes the scheduler.
async fn set_device(State(state): State<Shared>, Json(req): Json<SetDevice>) -> ApiResult {
    let frequency = sealback_engine::device_settings::parse_frequency(&req.schedule)?;
    let device = DeviceSettings {
        schedule: schedule::Schedule {
            frequency,
            only_on_ac_power: req.only_on_ac_power,
        },
        include_videos: req.include_videos,
    };
    let file = state
        .settings
        .config_file
        .lock()
        .expect("settings lock")
        .clone();
    if let Some(path) = &file {
        sealback_engine::device_settings::save(path, &device)?;
    }
    *state.settings.device.lock().expect("settings lock") = device;
    state.settings.waker.wake();
    settings_view(State(state)).await
}

/// In milliseconds: a page's numbers are exact only up to 2^53.
#[derive(Deserialize)]
struct SetClock {
    now_unix_ms: i64,
}

/// `POST /api/test/clock` (test mode only): sets the scheduler's clock and has it look now.
async fn set_test_clock(State(state): State<Shared>, Json(req): Json<SetClock>) -> ApiResult {
    let now = req.now_unix_ms.saturating_mul(1_000_000);
    if let Some(clock) = &*state.settings.test_clock.lock().expect("settings lock") {
        clock.set(now);
    }
    state.settings.waker.wake();
    Ok(Json(json!({"now_unix_ns": now})))
}

/// The path of this device's password check record for `repo_id`, if it keeps them.
fn password_check_path(state: &Shared, repo_id: &sealback_core::RepoId) -> Option<PathBuf> {
    let dir = state
        .settings
        .password_check_dir
        .lock()
        .expect("settings lock")
        .clone()?;
    Some(password_check::record_path(&dir, &repo_id.to_hex()))
}

fn now_unix(state: &Shared) -> u64 {
    (state.settings.now_unix_ns() / 1_000_000_000).max(0) as u64
}

/// After a password was set or changed on this page: a new check record (engine
/// `password_check`), so the reminders start. A failure is logged: it only costs reminders.
pub(crate) async fn remember_password(
    state: &Shared,
    password: &SecretText,
    repo_id: &sealback_core::RepoId,
) {
    let Some(path) = password_check_path(state, repo_id) else {
        return;
    };
    let typed = zeroize::Zeroizing::new(password.0.as_bytes().to_vec());
    let now = now_unix(state);
    let made = tokio::task::spawn_blocking(move || {
        PasswordCheck::new(&typed, now, &mut sealback_engine::os_rng())?.save(&path)
    })
    .await;
    if let Ok(Err(e)) | Err(e) = made.map_err(|e| sealback_engine::Error::Invalid(e.to_string())) {
        tracing::warn!(error = %e, "cannot keep the password check record");
    }
}

/// The record of the backup this page shows, with its path.
async fn password_check_record(
    state: &Shared,
) -> Result<Option<(PathBuf, PasswordCheck)>, ApiError> {
    let Some(keys) = read_keys(state).await? else {
        return Ok(None);
    };
    if password_slot(&keys).is_none() {
        return Ok(None);
    }
    let Some(path) = password_check_path(state, &keys.repo_id) else {
        return Ok(None);
    };
    Ok(PasswordCheck::load(&path)?.map(|r| (path, r)))
}

async fn password_check_view(state: &Shared) -> Result<serde_json::Value, ApiError> {
    Ok(match password_check_record(state).await? {
        None => json!({"enrolled": false}),
        Some((_, r)) => json!({
            "enrolled": true, "due": r.is_due(now_unix(state)), "due_unix": r.due_unix,
        }),
    })
}

#[derive(Deserialize)]
struct CheckPassword {
    password: SecretText,
}

/// `POST /api/settings/password-check`: checks the typed password against this device's
/// partial verifier; no guess at the vault is spent.
async fn check_password(State(state): State<Shared>, Json(req): Json<CheckPassword>) -> ApiResult {
    let (path, mut record) = password_check_record(&state).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_password_check",
            "this device has nothing to check your password against",
        )
        .hint("the check starts when you set or change your password on this computer")
    })?;
    let now = now_unix(&state);
    let typed = zeroize::Zeroizing::new(req.password.0.as_bytes().to_vec());
    let (record, checked) = tokio::task::spawn_blocking(move || {
        let checked = record.check(&typed, now);
        (record, checked)
    })
    .await
    .map_err(|e| ApiError::other(e.to_string()))?;
    match checked? {
        Checked::Matches => {
            record.save(&path)?;
            Ok(Json(json!({"matches": true, "due_unix": record.due_unix})))
        }
        Checked::DoesNotMatch => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "check_mismatch",
            "that is not the password you set",
        )
        .hint("try again. If you forgot it, choose I forgot it to set a new one; this check did not use one of your 10 tries")),
    }
}
