//! What the UI process holds: its settings, the repository once unlocked, ceremonies in flight
//! and jobs.
//!
//! The unlocked repository (and so the backup key) stays in this process's memory until the
//! person locks it or the process ends, the way a phone keeps the key after turning backup on.
//! Ceremonies are one-time: finishing one consumes it, and they expire after five minutes.

use crate::jobs::Jobs;
use sealback_core::recovery::RecoveryKey;
use sealback_engine::Repository;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a started ceremony (a passkey prompt, a shown recovery key) may take.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Most ceremonies open at once; the oldest is dropped beyond this.
const MAX_CEREMONIES: usize = 16;

/// The key vault for password keys (from the CLI's settings).
#[derive(Clone, Default)]
pub struct VaultSettings {
    /// The vault's URL.
    pub url: Option<String>,
    /// The account at the vault (the messaging app's account id).
    pub account: Option<String>,
    /// The operator's account proof (a bearer token: never shown or logged).
    pub proof: Option<String>,
}

impl std::fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSettings")
            .field("url", &self.url)
            .field("account", &self.account)
            .field("proof", &self.proof.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What `sealback ui` was started with.
#[derive(Clone, Debug)]
pub struct UiConfig {
    /// The repository location (a folder or storage URL).
    pub repo: String,
    /// What "Back up now" backs up (the chat store).
    pub paths: Vec<PathBuf>,
    /// The name recorded in snapshots.
    pub hostname: String,
    /// The key vault, for password keys.
    pub vault: VaultSettings,
    /// Where this device keeps its rollback records (SPEC §12): the highest key epoch it has
    /// seen of each repository. `None` keeps none (tests).
    pub seen_dir: Option<PathBuf>,
    /// Where this installation keeps the label of its page's address (`sb-LABEL.localhost`, the
    /// RP id of its passkeys): a 0600 file. `None` makes a fresh label each run (tests).
    pub label_file: Option<PathBuf>,
}

impl UiConfig {
    /// This device's record of the highest key epoch it has seen of `repo_id`, if it keeps one.
    pub fn key_epoch_record(&self, repo_id: &sealback_core::RepoId) -> Option<PathBuf> {
        let dir = self.seen_dir.as_deref()?;
        Some(sealback_engine::seen::key_epoch_path(
            dir,
            &repo_id.to_hex(),
        ))
    }
}

/// Why a ceremony was started; finishing it does that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Turn on encrypted backup (create the repository).
    Setup,
    /// Add a key to an unlocked repository.
    AddKey,
}

/// A ceremony in flight.
pub enum Ceremony {
    /// A passkey is being created; its PRF input is fixed here.
    CreatePasskey {
        purpose: Purpose,
        prf_salt: [u8; 32],
        /// The RP id of the page's origin when it started.
        rp_id: String,
        name: String,
    },
    /// A recovery key was shown and waits for the person to confirm they saved it.
    ShowRecoveryKey {
        purpose: Purpose,
        key: RecoveryKey,
        name: String,
    },
    /// A passkey assertion to unlock.
    UnlockPasskey,
    /// A passkey is being registered at the key vault (a provider without PRF).
    CreateVaultPasskey {
        purpose: Purpose,
        name: String,
        url: String,
        account: String,
        rp_id: String,
        /// The vault's ceremony.
        session: String,
    },
    /// A passkey assertion for the key vault, to unlock a vault-passkey key.
    UnlockVaultPasskey {
        url: String,
        /// The vault's id (from its own `/v1/info` at the configured address).
        vault_id: sealback_vault_client::VaultId,
        account: String,
        /// The vault's ceremony (a guess is already counted).
        session: String,
    },
}

/// The process's state.
pub struct UiState {
    pub config: UiConfig,
    /// The repository once unlocked. A job holds the lock while it runs.
    pub repo: std::sync::Arc<tokio::sync::Mutex<Option<Repository>>>,
    ceremonies: Mutex<Vec<(String, Instant, Ceremony)>>,
    pub jobs: Jobs,
    /// The last snapshot list read, shown while a job holds the repository.
    pub snapshot_cache: Mutex<Option<serde_json::Value>>,
    /// Unix seconds of keys' last use in this UI process, by slot id.
    pub last_used: Mutex<HashMap<String, u64>>,
    /// The Settings area: device settings, the scheduler's clock and what it last decided.
    pub settings: crate::settings::SettingsState,
    /// The label of the page's address this run, and whether it came from the repository.
    pub page: crate::PageLabel,
}

impl UiState {
    pub(crate) fn new(config: UiConfig, page: crate::PageLabel) -> Self {
        Self {
            config,
            repo: Default::default(),
            ceremonies: Mutex::new(vec![]),
            jobs: Jobs::default(),
            snapshot_cache: Mutex::new(None),
            last_used: Mutex::new(HashMap::new()),
            settings: Default::default(),
            page,
        }
    }

    /// Starts a ceremony and returns its id.
    pub fn begin(&self, ceremony: Ceremony) -> String {
        let mut id = [0u8; 16];
        rand_core::Rng::fill_bytes(&mut sealback_engine::os_rng(), &mut id);
        let id = hex::encode(id);
        let mut all = self.ceremonies.lock().expect("ceremony lock");
        all.retain(|(_, started, _)| started.elapsed() < CEREMONY_TTL);
        if all.len() >= MAX_CEREMONIES {
            all.remove(0);
        }
        all.push((id.clone(), Instant::now(), ceremony));
        id
    }

    /// Takes a ceremony out (it cannot be finished twice), if it exists and has not expired.
    pub fn take(&self, id: &str) -> Option<Ceremony> {
        self.take_timed(id).map(|(_, ceremony)| ceremony)
    }

    /// [`Self::take`], with the time the ceremony started (to [`Self::put_back`] it).
    pub fn take_timed(&self, id: &str) -> Option<(Instant, Ceremony)> {
        let mut all = self.ceremonies.lock().expect("ceremony lock");
        let pos = all.iter().position(|(i, _, _)| i == id)?;
        let (_, started, ceremony) = all.remove(pos);
        (started.elapsed() < CEREMONY_TTL).then_some((started, ceremony))
    }

    /// Returns a ceremony taken by [`Self::take_timed`] that did not finish (a typo in a
    /// confirmation), under its id and with its first start time: it still expires on time.
    pub fn put_back(&self, id: &str, started: Instant, ceremony: Ceremony) {
        let mut all = self.ceremonies.lock().expect("ceremony lock");
        all.push((id.to_string(), started, ceremony));
    }

    pub fn store(&self) -> Result<sealback_store::Store, crate::api::ApiError> {
        sealback_store::Store::open(&self.config.repo)
            .map_err(|e| crate::api::ApiError::other(e.to_string()))
    }

    /// The RP id of passkeys the page uses at `origin`.
    pub fn rp_id(&self, origin: crate::origin::PageOrigin) -> String {
        match origin {
            crate::origin::PageOrigin::Installation => self.page.rp_id(),
            crate::origin::PageOrigin::Shared => crate::SHARED_RP_ID.to_string(),
        }
    }

    pub fn note_use(&self, slot: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.last_used
            .lock()
            .expect("last-used lock")
            .insert(slot.to_string(), now);
    }
}

/// Runs engine work (whose futures are not `Send`) on a blocking thread of the runtime.
pub async fn on_engine<T, F, Fut>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work()))
        .await
        .expect("engine task panicked")
}
