//! Settings: flags, then `SEALBACK_*` variables (both through clap), then the config file.

use crate::cli::{Global, UnlockWith};
use crate::output::CliError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Default repository.
    pub repo: Option<String>,
    /// Default recovery key file.
    pub recovery_key_file: Option<PathBuf>,
    /// The software passkey store.
    pub passkey_store: Option<PathBuf>,
    /// What `sealback ui`'s "Back up now" backs up.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// The key vault this device uses (its https:// address).
    pub vault_url: Option<String>,
    /// The threshold realms this device uses (a realms file).
    pub realms: Option<PathBuf>,
    /// Automatic backups: off, daily, weekly or monthly.
    pub schedule: Option<String>,
    /// Automatic backups wait while on battery.
    pub only_on_ac_power: Option<bool>,
    /// Back up video files.
    pub include_videos: Option<bool>,
}

/// Resolved settings.
#[derive(Debug)]
pub struct Settings {
    pub repo: Option<String>,
    pub recovery_key_file: Option<PathBuf>,
    pub passkey_store: PathBuf,
    pub paths: Vec<PathBuf>,
    pub unlock: UnlockWith,
    pub account: Option<String>,
    pub account_proof: Option<AccountProof>,
    pub vault_url: Option<String>,
    pub realms: Option<PathBuf>,
    pub region: String,
    pub json: bool,
    /// Automatic backups and videos (the config file's keys; `sealback ui` changes them).
    pub device: sealback_engine::device_settings::DeviceSettings,
    /// The config file these settings are saved to.
    pub config_path: Option<PathBuf>,
}

/// An account proof: a bearer token, kept out of Debug output and logs.
pub struct AccountProof(pub String);

impl std::fmt::Debug for AccountProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountProof(<redacted>)")
    }
}

impl Settings {
    /// The account proof, or "" when none is given (a vault in development mode needs none),
    /// for registering a key at the vault.
    pub fn account_proof(&self) -> &str {
        self.account_proof.as_ref().map_or("", |p| p.0.as_str())
    }

    /// The account proof for unlocking (a login). A `register` proof is refused rather than
    /// sent: it could also replace the key at the vault, so it only ever travels when a key is
    /// added (SPEC §7c).
    pub fn login_proof(&self) -> Result<&str, CliError> {
        let proof = self.account_proof();
        match sealback_proto::proof::claimed_scope(proof) {
            Some(sealback_proto::proof::Scope::Register) => Err(CliError::Usage(
                "the account proof given may also replace your key at the key vault, so sealback sends it only when adding a key. \
                 Unlock with a login proof from your messaging app (scope login)"
                    .into(),
            )),
            _ => Ok(proof),
        }
    }
}

/// The account proof from `SEALBACK_ACCOUNT_PROOF` or the file `--account-proof-file` names;
/// never from the command line.
fn account_proof(g: &Global) -> Result<Option<AccountProof>, CliError> {
    if g.account_proof_on_command_line.is_some() {
        return Err(CliError::Usage(
            "--account-proof is not accepted: every local user can read the command line. \
             Put the proof in SEALBACK_ACCOUNT_PROOF, or in a file given with --account-proof-file"
                .into(),
        ));
    }
    if let Some(path) = &g.account_proof_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "cannot read the account proof file {}: {e}",
                path.display()
            ))
        })?;
        return Ok(Some(AccountProof(text.trim().to_string())));
    }
    Ok(std::env::var("SEALBACK_ACCOUNT_PROOF")
        .ok()
        .filter(|p| !p.is_empty())
        .map(AccountProof))
}

/// Where sealback keeps per-user data (the passkey store, when keys were last used).
pub fn data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("sealback")
}

fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("sealback").join("config.toml"))
}

fn read_file(path: &Path, explicit: bool) -> Result<FileSettings, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| CliError::Usage(format!("config file {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(FileSettings::default())
        }
        Err(e) => Err(CliError::Usage(format!(
            "cannot read config file {}: {e}",
            path.display()
        ))),
    }
}

/// The device settings from the config file, defaults where it says nothing.
fn device_settings(
    file: &FileSettings,
) -> Result<sealback_engine::device_settings::DeviceSettings, CliError> {
    let mut device = sealback_engine::device_settings::DeviceSettings::default();
    if let Some(text) = &file.schedule {
        device.schedule.frequency = sealback_engine::device_settings::parse_frequency(text)
            .map_err(|e| CliError::Usage(format!("config file: {e}")))?;
    }
    if let Some(ac) = file.only_on_ac_power {
        device.schedule.only_on_ac_power = ac;
    }
    if let Some(videos) = file.include_videos {
        device.include_videos = videos;
    }
    Ok(device)
}

impl Settings {
    pub fn resolve(g: &Global) -> Result<Self, CliError> {
        let config_path = g.config.clone().or_else(default_config_path);
        let file = match &config_path {
            Some(p) => read_file(p, g.config.is_some())?,
            None => FileSettings::default(),
        };
        let device = device_settings(&file)?;
        Ok(Self {
            repo: g.repo.clone().or(file.repo),
            recovery_key_file: g.recovery_key_file.clone().or(file.recovery_key_file),
            passkey_store: g
                .passkey_store
                .clone()
                .or(file.passkey_store)
                .unwrap_or_else(|| data_dir().join("passkeys.sbpk")),
            paths: file.paths,
            unlock: g.unlock,
            account: g.account.clone(),
            account_proof: account_proof(g)?,
            vault_url: g.vault_url.clone().or(file.vault_url),
            realms: g.realms.clone().or(file.realms),
            region: g.region.clone(),
            json: g.json,
            device,
            config_path,
        })
    }

    /// The key vault to use: `explicit` (a subcommand's --vault) or the configured one.
    pub fn vault_url<'a>(&'a self, explicit: Option<&'a str>) -> Option<&'a str> {
        explicit.or(self.vault_url.as_deref())
    }

    pub fn repo(&self) -> Result<&str, CliError> {
        self.repo.as_deref().ok_or_else(|| {
            CliError::Usage(
                "no repository given: pass --repo PATH, set SEALBACK_REPO, or put `repo = \"...\"` in the config file".into(),
            )
        })
    }
}
