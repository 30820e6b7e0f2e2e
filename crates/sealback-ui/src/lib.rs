//! # sealback-ui: the local web UI
//!
//! This crate owns `sealback ui`: a web app served on 127.0.0.1 only, that does what a phone's
//! settings screens do (Settings › Chats › Chat backup): turn on end-to-end encrypted backup
//! with a passkey in the browser, a 64-digit recovery key or a password at the key vault; back
//! up with a live progress bar; list keys, add and remove them (with rotation); list snapshots
//! with a chart of their size; restore a snapshot into a folder after unlocking with the
//! passkey in the browser.
//!
//! ```text
//!   browser (page from this process, WebAuthn with PRF)          sealback ui (this crate)
//!   ─────────────────────────────────────────────────           ─────────────────────────
//!   GET /?code=C (static page) ───────────────────────────────▶ guard: Host
//!   POST /api/session {C} (once, within 5 min) ─────────────▶ guard: Host, Origin ─▶ token T
//!   POST /api/... X-Sealback-Token: T, Origin: same  ────────▶ guard: Host, token, Origin,
//!        {credential id, PRF output}                              JSON only
//!                                                               ─▶ sealback-engine (keyslots,
//!                                                                  backup, restore)
//! ```
//!
//! What it must not do: listen on anything but loopback; answer a request that lacks the
//! token or comes from another origin or host name (DNS rebinding); load anything from the
//! network (every asset is embedded in the binary); keep, log or forward a PRF output, a
//! recovery key or a password anywhere but into the keyslot derivation in this process. It
//! does not implement formats, primitives or storage: those belong to `sealback-core`,
//! `sealback-engine` and `sealback-store`.
//!
//! The WebAuthn responses are not signature-checked here: the secret is the PRF output
//! itself, and the keyslot's AEAD authenticates it, so a forged response can only fail to
//! unlock (docs/THREAT_MODEL.md, "Local web UI").

mod api;
mod guard;
mod jobs;
mod origin;
mod settings;
mod state;

pub use settings::UiSettings;
pub use state::{UiConfig, VaultSettings};

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use origin::{OriginLabel, SHARED_RP_ID};

/// The label this run serves the page under: that of the repository's browser passkeys if they
/// name one (a synced passkey on a new computer is asked for from the RP it was made for;
/// kept as this installation's label if it has none yet), else this installation's own (made
/// and kept on first use). Without a label file (tests), a fresh one per run.
async fn page_label(config: &UiConfig) -> Result<PageLabel, String> {
    let store = sealback_store::Store::open(&config.repo).ok();
    let from_repo = match store {
        Some(store) => state::on_engine(move || async move {
            sealback_engine::Repository::read_keyslots(&store)
                .await
                .ok()
        })
        .await
        .and_then(|(_, keys)| {
            sealback_passkey::passkey_slots(&keys)
                .into_iter()
                .find_map(|(_, p)| OriginLabel::from_rp_id(&p.rp_id))
        }),
        None => None,
    };
    let kept = match &config.label_file {
        Some(path) if from_repo.is_none() => Some(OriginLabel::load_or_create(path)?),
        Some(path) => OriginLabel::load(path)?,
        None => None,
    };
    Ok(match (from_repo, kept) {
        (Some(repo), kept) => {
            let adopted = kept.as_ref() != Some(&repo);
            if let (None, Some(path)) = (&kept, &config.label_file) {
                repo.save(path)?;
            }
            if adopted {
                tracing::info!("serving the page under the address of this backup's passkeys");
            }
            PageLabel {
                label: repo,
                adopted,
            }
        }
        (None, Some(kept)) => PageLabel {
            label: kept,
            adopted: false,
        },
        (None, None) => PageLabel {
            label: OriginLabel::random(),
            adopted: false,
        },
    })
}

/// The label the page is served under this run, and whether it was taken from the repository.
pub(crate) struct PageLabel {
    pub label: OriginLabel,
    /// The repository's passkeys named a label other than this installation's (or it had none).
    pub adopted: bool,
}

impl std::ops::Deref for PageLabel {
    type Target = OriginLabel;
    fn deref(&self) -> &OriginLabel {
        &self.label
    }
}

/// A running UI's address and its access token.
pub struct UiServer {
    router: axum::Router,
    listener: tokio::net::TcpListener,
    url: String,
}

impl std::fmt::Debug for UiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiServer")
            .field("url", &"<redacted: holds the token>")
            .finish()
    }
}

impl UiServer {
    /// Binds `listen` (which must be a loopback address) and prepares the app with a fresh
    /// random token.
    pub async fn bind(listen: SocketAddr, config: UiConfig) -> Result<Self, String> {
        Self::bind_with(listen, config, UiSettings::default()).await
    }

    /// [`UiServer::bind`] with the Settings area's settings (automatic backups run from now on
    /// while the session is unlocked).
    pub async fn bind_with(
        listen: SocketAddr,
        config: UiConfig,
        settings: UiSettings,
    ) -> Result<Self, String> {
        if !listen.ip().is_loopback() {
            return Err(format!(
                "the web UI listens on loopback only (127.0.0.1 or ::1), not {}",
                listen.ip()
            ));
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?
            .port();
        let label = page_label(&config).await?;
        let host = label.rp_id();
        let launch_code = guard::Token::random();
        let url = format!("http://{host}:{port}/?code={}", launch_code.as_str());
        let state = Arc::new(state::UiState::new(config, label));
        state.settings.configure(settings);
        tokio::spawn(settings::scheduler_loop(state.clone()));
        let guard = guard::Guard::new(guard::Token::random(), launch_code, &host, port);
        let router = api::router(state, guard);
        Ok(Self {
            router,
            listener,
            url,
        })
    }

    /// The URL to open, with the one-time launch code. Print it to the person only (never
    /// pass it on a command line): until the browser has opened it, it is the key to the UI.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The page's host name, `sb-LABEL.localhost`, which is also its passkeys' RP id.
    pub fn host(&self) -> &str {
        let rest = self.url.strip_prefix("http://").unwrap_or(&self.url);
        rest.split(':').next().unwrap_or(rest)
    }

    /// Writes a launch file (mode 0600, in a new 0700 folder under `parent`) that sends a
    /// browser to [`Self::url`], for a desktop opener: its path, unlike the URL, can be shown in
    /// the process list. Remove the folder when the UI stops.
    pub fn write_launch_file(&self, parent: &Path) -> std::io::Result<PathBuf> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = parent.join(format!("sealback-ui-{}", guard::Token::random().as_str()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("open.html");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        writeln!(
            file,
            "<!doctype html><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\
             <meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>sealback</title>\
             <p>Opening <a href=\"{url}\">sealback</a>…</p>",
            url = self.url
        )?;
        Ok(path)
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| format!("the web UI stopped: {e}"))
    }
}
