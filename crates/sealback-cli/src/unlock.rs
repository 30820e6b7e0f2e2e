//! Choosing a key and opening the repository with it: the recovery key (from
//! `SEALBACK_RECOVERY_KEY`, a file, or a prompt) or a passkey (from the passkey store, whose PIN
//! comes from `SEALBACK_PASSKEY_PIN` or a prompt).

use crate::cli::UnlockWith;
use crate::output::CliError;
use crate::settings::{data_dir, Settings};
use sealback_core::keyslot::{KeySlotFile, ProtectorType, SlotId};
use sealback_core::passkey::KdfParams;
use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};
use sealback_core::RepoId;
use sealback_engine::Repository;
use sealback_passkey::store::Pin;
use sealback_passkey::{PasskeyError, PasskeyProtector, SoftwareAuthenticator};
use sealback_store::Store;
use sealback_vault_client::{
    Password, VaultClient, VaultError, VaultPasskeyProtector, VaultPasswordProtector,
};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use zeroize::Zeroizing;

/// The environment variable holding a recovery key.
pub const RECOVERY_KEY_ENV: &str = "SEALBACK_RECOVERY_KEY";
/// The environment variable holding the passkey store's PIN.
pub const PASSKEY_PIN_ENV: &str = "SEALBACK_PASSKEY_PIN";
/// `0` makes a new passkey store stand for a provider without the PRF extension.
pub const PASSKEY_PRF_ENV: &str = "SEALBACK_PASSKEY_PRF";
/// The environment variable holding a vault password.
pub const PASSWORD_ENV: &str = "SEALBACK_PASSWORD";
/// The relying party id of passkeys made by the CLI.
pub const RP_ID: &str = "localhost";

fn parse(text: &str, source: &str) -> Result<RecoveryKey, CliError> {
    RecoveryKey::parse(text)
        .map_err(|e| CliError::Unlock(format!("the recovery key from {source} is not valid: {e}")))
}

fn recovery_key_given(settings: &Settings) -> bool {
    std::env::var_os(RECOVERY_KEY_ENV).is_some() || settings.recovery_key_file.is_some()
}

/// The recovery key to unlock with.
pub fn recovery_key(settings: &Settings) -> Result<RecoveryKeyProtector, CliError> {
    if let Ok(text) = std::env::var(RECOVERY_KEY_ENV) {
        let text = Zeroizing::new(text);
        return Ok(RecoveryKeyProtector(parse(&text, RECOVERY_KEY_ENV)?));
    }
    if let Some(path) = &settings.recovery_key_file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            CliError::Unlock(format!(
                "cannot read the recovery key file {}: {e}",
                path.display()
            ))
        })?);
        return Ok(RecoveryKeyProtector(parse(
            &text,
            &path.display().to_string(),
        )?));
    }
    if std::io::stdin().is_terminal() {
        for attempt in 1..=3 {
            let text = Zeroizing::new(
                rpassword::prompt_password("Recovery key (64 digits): ")
                    .map_err(|e| CliError::Other(format!("cannot read from the terminal: {e}")))?,
            );
            match RecoveryKey::parse(&text) {
                Ok(k) => return Ok(RecoveryKeyProtector(k)),
                Err(e) if attempt < 3 => eprintln!("{e}. Try again."),
                Err(e) => return Err(CliError::Unlock(e.to_string())),
            }
        }
    }
    Err(CliError::Unlock(format!(
        "no recovery key given: set {RECOVERY_KEY_ENV}, pass --recovery-key-file FILE, or run in a terminal to be asked"
    )))
}

/// A passkey error as the CLI reports it: failures of the person exit 3.
pub fn passkey_error(e: PasskeyError) -> CliError {
    match e {
        PasskeyError::NoCredential | PasskeyError::WrongPin(_) | PasskeyError::Cancelled => {
            CliError::Unlock(e.to_string())
        }
        other => CliError::Other(other.to_string()),
    }
}

fn read_pin(settings: &Settings, confirm: bool) -> Result<Pin, CliError> {
    if let Ok(pin) = std::env::var(PASSKEY_PIN_ENV) {
        return Ok(Pin::new(pin));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Unlock(format!(
            "passkey verification needs the passkey store's PIN: set {PASSKEY_PIN_ENV} or run in a terminal to be asked"
        )));
    }
    let prompt = format!(
        "PIN for the passkey store {}: ",
        settings.passkey_store.display()
    );
    let first = Zeroizing::new(
        rpassword::prompt_password(prompt).map_err(|_| passkey_error(PasskeyError::Cancelled))?,
    );
    if first.is_empty() {
        return Err(passkey_error(PasskeyError::Cancelled));
    }
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat the PIN: ")
                .map_err(|_| passkey_error(PasskeyError::Cancelled))?,
        );
        if *again != *first {
            return Err(CliError::Usage(
                "the PINs differ; nothing was created".into(),
            ));
        }
    }
    Ok(Pin::new(first.to_string()))
}

/// The software passkey provider; `create` makes an empty store when there is none.
pub fn passkey_provider(
    settings: &Settings,
    create: bool,
) -> Result<SoftwareAuthenticator, CliError> {
    let path = &settings.passkey_store;
    if create && !path.exists() {
        let pin = read_pin(settings, true)?;
        let prf = std::env::var(PASSKEY_PRF_ENV)
            .map(|v| v != "0")
            .unwrap_or(true);
        return SoftwareAuthenticator::open_or_create(path, pin, prf, KdfParams::DEFAULT)
            .map_err(passkey_error);
    }
    if !path.exists() {
        return Err(CliError::Unlock(format!(
            "no passkey store at {}: copy it from the device that enrolled the passkey, or set SEALBACK_PASSKEY_STORE",
            path.display()
        )));
    }
    SoftwareAuthenticator::open(path, read_pin(settings, false)?).map_err(passkey_error)
}

/// A vault error as the CLI reports it.
pub fn vault_error(e: VaultError, keys: Option<&KeySlotFile>) -> CliError {
    match e {
        VaultError::WrongPassword { .. } | VaultError::WrongPasskey { .. } => {
            CliError::Unlock(e.to_string())
        }
        VaultError::Passkey(p) => passkey_error(p),
        VaultError::NotAvailable(_) => CliError::Vault(e.to_string()),
        // Exit 5 like a lockout (the CLI contract), but it says when to try again.
        VaultError::RateLimited { .. } => CliError::Vault(e.to_string()),
        VaultError::Unauthorized(_) => CliError::Unlock(format!(
            "{e}. Give the account proof the messaging app gives you in SEALBACK_ACCOUNT_PROOF or a file named by --account-proof-file."
        )),
        VaultError::Locked => {
            let others: Vec<String> = keys
                .map(|k| {
                    k.slots
                        .iter()
                        // Every key the vault held for the account is gone.
                        .filter(|s| {
                            s.protector_type != ProtectorType::VAULT_PASSWORD
                                && s.protector_type != ProtectorType::VAULT_PASSKEY
                        })
                        .map(|s| format!("{} ({:?})", s.protector_type.name(), s.name))
                        .collect()
                })
                .unwrap_or_default();
            let tail = if others.is_empty() {
                " No other key is enrolled for this backup.".to_string()
            } else {
                format!(
                    " These keys can still open the backup: {}.",
                    others.join(", ")
                )
            };
            CliError::Vault(format!("{e}.{tail}"))
        }
        VaultError::PinMismatch { .. } => CliError::Unlock(e.to_string()),
        VaultError::OtherVault { .. } => CliError::Unlock(format!(
            "{e}. Set --vault-url (or SEALBACK_VAULT_URL) to the key vault that holds it, or unlock with another key"
        )),
        VaultError::BadAddress(_) => CliError::Usage(e.to_string()),
        other => CliError::Other(other.to_string()),
    }
}

/// A client for the key vault at `url` (from this device's settings).
pub fn vault_client(url: &str) -> Result<VaultClient, CliError> {
    VaultClient::new(url).map_err(|e| vault_error(e, None))
}

/// The key vault this device is set up for, to unlock a `kind` key. Its address comes only
/// from the settings: a keyslot names its vault by id, never by address (SPEC §7b).
fn configured_vault(settings: &Settings, kind: &str) -> Result<VaultClient, CliError> {
    let url = settings.vault_url(None).ok_or_else(|| {
        CliError::Usage(format!(
            "this backup's {kind} key is held by a key vault, and this device does not know its address: \
             give it with --vault-url (or SEALBACK_VAULT_URL, or `vault_url` in the config file), as your messaging app or its operator gives it"
        ))
    })?;
    vault_client(url)
}

/// The password, from `SEALBACK_PASSWORD` or a prompt (asked twice when `confirm`).
pub fn read_password(confirm: bool) -> Result<Password, CliError> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(Password::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Unlock(format!(
            "no password given: set {PASSWORD_ENV} or run in a terminal to be asked"
        )));
    }
    let first = rpassword::prompt_password("Backup password: ")
        .map_err(|e| CliError::Other(format!("cannot read from the terminal: {e}")))?;
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat the password: ")
                .map_err(|e| CliError::Other(e.to_string()))?,
        );
        if *again != first {
            return Err(CliError::Usage(
                "the passwords differ; nothing was changed".into(),
            ));
        }
    }
    Ok(Password::new(first))
}

/// Where `key change-password` reads the new password from before it asks.
pub const NEW_PASSWORD_ENV: &str = "SEALBACK_NEW_PASSWORD";

/// The new password for `key change-password`: from `SEALBACK_NEW_PASSWORD`, or asked twice.
pub fn read_new_password() -> Result<Password, CliError> {
    let password = match std::env::var(NEW_PASSWORD_ENV) {
        Ok(p) => Password::new(p),
        Err(_) if !std::io::stdin().is_terminal() => {
            return Err(CliError::Usage(format!(
                "no new password given: set {NEW_PASSWORD_ENV} or run in a terminal to be asked; nothing was changed"
            )))
        }
        Err(_) => {
            let first = rpassword::prompt_password("New backup password: ")
                .map_err(|e| CliError::Other(format!("cannot read from the terminal: {e}")))?;
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat the new password: ")
                    .map_err(|e| CliError::Other(e.to_string()))?,
            );
            if *again != first {
                return Err(CliError::Usage(
                    "the passwords differ; nothing was changed".into(),
                ));
            }
            Password::new(first)
        }
    };
    Ok(password)
}

fn has_vault_slots(keys: &KeySlotFile) -> bool {
    keys.slots
        .iter()
        .any(|s| s.protector_type == ProtectorType::VAULT_PASSWORD)
}

fn has_passkey_slots(keys: &KeySlotFile) -> bool {
    keys.slots.iter().any(|s| {
        s.protector_type == ProtectorType::PASSKEY_PRF
            || s.protector_type == ProtectorType::VAULT_PASSKEY
    })
}

fn has_prf_slots(keys: &KeySlotFile) -> bool {
    keys.slots
        .iter()
        .any(|s| s.protector_type == ProtectorType::PASSKEY_PRF)
}

/// Opens the repository, unlocking with the key the settings point to.
pub async fn open(settings: &Settings, store: Store) -> Result<Repository, CliError> {
    open_with(settings, store, None).await
}

/// [`open`], reusing an already opened passkey provider (so the PIN is asked once).
pub async fn open_with(
    settings: &Settings,
    store: Store,
    provider: Option<&mut SoftwareAuthenticator>,
) -> Result<Repository, CliError> {
    open_as(settings, store, provider, Unvouched::Refuse).await
}

/// [`open`] for `key remove`: keys the keys file does not vouch for (slipped in by whoever
/// writes to the drive) are let through, so that they can be removed; nothing is ever sealed
/// to them (the engine refuses to add or rotate while one is there).
pub async fn open_for_removal(settings: &Settings, store: Store) -> Result<Repository, CliError> {
    open_as(settings, store, None, Unvouched::AllowToRemove).await
}

/// What to do with keys the keys file does not vouch for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unvouched {
    Refuse,
    AllowToRemove,
}

/// How to open: what to do with unvouched keys, and this device's record of the keys file,
/// which the engine checks against the very keys file it unlocks.
struct OpenAs {
    unvouched: Unvouched,
    keys_record: std::path::PathBuf,
}

async fn open_unlocked(
    store: Store,
    protector: &mut dyn sealback_core::protector::Protector,
    how: &OpenAs,
) -> Result<Repository, CliError> {
    let allow_unvouched = how.unvouched == Unvouched::AllowToRemove;
    Ok(Repository::open_guarded(store, protector, &how.keys_record, allow_unvouched).await?)
}

async fn open_as(
    settings: &Settings,
    store: Store,
    provider: Option<&mut SoftwareAuthenticator>,
    unvouched: Unvouched,
) -> Result<Repository, CliError> {
    // Fail on a missing repository, and on a keys file older than this device has seen,
    // before asking for a key. (The engine checks again the keys file it unlocks: storage
    // may answer this read and that one differently.)
    let (config, keys) = Repository::read_keyslots(&store).await?;
    let how = OpenAs {
        unvouched,
        keys_record: key_epoch_record(config.repo_id),
    };
    sealback_engine::seen::check_keys_file(&how.keys_record, &keys)?;
    let method = match settings.unlock {
        UnlockWith::Auto if recovery_key_given(settings) => UnlockWith::RecoveryKey,
        UnlockWith::Auto
            if std::env::var_os(PASSWORD_ENV).is_some()
                && settings.realms.is_some()
                && crate::realms::has_slots(&keys) =>
        {
            UnlockWith::RealmPassword
        }
        UnlockWith::Auto if std::env::var_os(PASSWORD_ENV).is_some() && has_vault_slots(&keys) => {
            UnlockWith::Password
        }
        UnlockWith::Auto if has_passkey_slots(&keys) && settings.passkey_store.exists() => {
            UnlockWith::Passkey
        }
        UnlockWith::Auto => UnlockWith::RecoveryKey,
        other => other,
    };
    let repo = if method == UnlockWith::RealmPassword {
        if !crate::realms::has_slots(&keys) {
            return Err(CliError::Unlock(
                "this backup has no realm password; unlock it with another key".into(),
            ));
        }
        let mut protector = crate::realms::unlock(settings, &keys).await?;
        open_unlocked(store, &mut protector, &how).await?
    } else if method == UnlockWith::Password {
        if !has_vault_slots(&keys) {
            return Err(CliError::Unlock(
                "this backup has no password key; unlock it with another key".into(),
            ));
        }
        let client = configured_vault(settings, "password")?;
        let password = read_password(false)?;
        let mut protector = VaultPasswordProtector::login(
            &keys,
            settings.account.as_deref(),
            &client,
            &password,
            settings.login_proof()?,
        )
        .await
        .map_err(|e| vault_error(e, Some(&keys)))?;
        open_unlocked(store, &mut protector, &how).await?
    } else if method == UnlockWith::Passkey {
        if !has_passkey_slots(&keys) {
            return Err(CliError::Unlock(
                "this backup has no passkey; unlock it with the recovery key (--unlock recovery-key)".into(),
            ));
        }
        let mut opened;
        let provider = match provider {
            Some(p) => p,
            None => {
                opened = passkey_provider(settings, false)?;
                &mut opened
            }
        };
        let vault_passkeys = !sealback_vault_client::vault_passkey_slots(&keys).is_empty();
        // PRF first where the provider has it and the backup has PRF slots: no vault involved.
        if has_prf_slots(&keys) && (provider.contents().prf || !vault_passkeys) {
            match PasskeyProtector::assert(&keys, provider).await {
                Ok(mut protector) => open_unlocked(store, &mut protector, &how).await?,
                Err(PasskeyError::NoCredential | PasskeyError::NoPrf) if vault_passkeys => {
                    open_with_vault_passkey(settings, store, &keys, provider, &how).await?
                }
                Err(e) => return Err(passkey_error(e)),
            }
        } else {
            open_with_vault_passkey(settings, store, &keys, provider, &how).await?
        }
    } else {
        let mut protector = recovery_key(settings)?;
        open_unlocked(store, &mut protector, &how).await?
    };
    record_use(repo.config().repo_id, repo.unlocked_slot());
    report_upgrade(&repo);
    Ok(repo)
}

/// Moves this device's record up to the repository's keys file (its epoch and format): every
/// unlock does (the file is authenticated then: its MAC verified under its root key), and so
/// must every change of the keys file (a rotation raises the epoch).
pub fn remember_key_epoch(repo: &Repository) {
    repo.remember_keys_file(&key_epoch_record(repo.config().repo_id));
}

/// This device's record of the highest key epoch it has seen of a repository.
fn key_epoch_record(repo: RepoId) -> std::path::PathBuf {
    sealback_engine::seen::key_epoch_path(&data_dir().join("seen"), &repo.to_hex())
}

/// Tells the person which keys an upgrade of the keys file to format 2 vouched for: from now
/// on only these can ever receive a new backup key, so one they do not recognise should be
/// removed (`sealback key remove ID --rotate`).
fn report_upgrade(repo: &Repository) {
    let Some(slots) = repo.upgraded_slots() else {
        return;
    };
    eprintln!(
        "note: the keys file was upgraded to format 2, which authenticates the list of keys. It now vouches for these {} key(s):",
        slots.len()
    );
    for slot in slots {
        eprintln!("    {slot}");
    }
    eprintln!("If one of them is not yours, remove it with `sealback key remove ID --rotate`.");
}

async fn open_with_vault_passkey(
    settings: &Settings,
    store: Store,
    keys: &KeySlotFile,
    provider: &mut SoftwareAuthenticator,
    how: &OpenAs,
) -> Result<Repository, CliError> {
    let client = configured_vault(settings, "vault passkey")?;
    let mut protector = VaultPasskeyProtector::login(
        keys,
        settings.account.as_deref(),
        &client,
        settings.login_proof()?,
        provider,
    )
    .await
    .map_err(|e| vault_error(e, Some(keys)))?;
    open_unlocked(store, &mut protector, how).await
}

fn last_used_path() -> std::path::PathBuf {
    data_dir().join("last-used.json")
}

/// When each key of a repository was last used to unlock on this device (Unix seconds).
pub fn last_used(repo: RepoId) -> BTreeMap<String, u64> {
    let all: BTreeMap<String, u64> = std::fs::read(last_used_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let prefix = format!("{}:", repo.to_hex());
    all.into_iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|slot| (slot.to_string(), v)))
        .collect()
}

/// Records that a key unlocked a repository now. Best effort: it is a convenience display.
pub fn record_use(repo: RepoId, slot: SlotId) {
    let path = last_used_path();
    let mut all: BTreeMap<String, u64> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    all.insert(format!("{}:{}", repo.to_hex(), slot.to_hex()), now);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(bytes) = serde_json::to_vec_pretty(&all) {
        if let Err(e) = std::fs::write(&path, bytes) {
            tracing::debug!("cannot record key use: {e}");
        }
    }
}
