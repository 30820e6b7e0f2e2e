//! Key settings a person changes later: `key change-password`.

use crate::commands::{open, required_vault, unix_now};
use crate::output::CliError;
use crate::settings::Settings;
use crate::unlock;
use sealback_core::vault::VaultParams;
use sealback_engine::keychange::{password_slot, ChangeKeyError};
use sealback_vault_client::password_template;
use serde_json::json;

/// `sealback key change-password`: a new vault record and a new slot in place of the old.
pub async fn change_password(
    settings: &Settings,
    vault: Option<&str>,
    rotate: bool,
) -> Result<(), CliError> {
    let vault = required_vault(settings, vault, "a password key")?;
    let client = unlock::vault_client(&vault)?;
    let mut repo = open(settings).await?;
    let old = password_slot(repo.keyslots()).ok_or_else(|| {
        CliError::Usage(
            "this backup has no password yet: add one with `sealback key add password`".into(),
        )
    })?;
    let params = VaultParams::decode(&old.params).map_err(|e| {
        CliError::Integrity(format!("the password key's settings are unreadable: {e}"))
    })?;
    let (old_id, name) = (old.id, old.name.clone());
    let password = unlock::read_new_password()?;
    let secret = random_secret();
    let template = password_template(name, &params);
    let proof = settings.account_proof();
    // Pinned to the old record's vault: the new password goes to the same vault or nowhere.
    let register = async || {
        client
            .register_again(&params, proof, &password, &secret)
            .await
    };
    let changed = repo
        .change_key(old_id, template, &secret, rotate, register)
        .await
        .map_err(|e| match e {
            ChangeKeyError::Unchanged(e) => CliError::from(e),
            ChangeKeyError::NotActivated { error, cleanup } => {
                if let Some(c) = cleanup {
                    eprintln!("warning: a key that was being added could not be taken out again ({c}); `sealback key list` shows it, and `sealback key remove ID` removes it");
                }
                let e = unlock::vault_error(error, None);
                eprintln!("The password was not changed: the old password still works.");
                e
            }
            left @ ChangeKeyError::OldSlotLeft { .. } => CliError::Other(left.to_string()),
        })?;
    unlock::remember_key_epoch(&repo);
    remember_password(&repo, &password);
    if settings.json {
        println!(
            "{}",
            json!({"changed": true, "new_id": changed.new_slot.to_hex(), "removed": changed.removed.to_hex(), "rotated": changed.new_epoch.is_some(), "epoch": repo.keyring().current_epoch(), "account": params.account})
        );
        return Ok(());
    }
    println!(
        "Password changed. The old password no longer opens this backup; the key vault allows 10 wrong tries of the new one."
    );
    match changed.new_epoch {
        Some(epoch) => println!("The backup key was replaced too (key epoch {epoch}): whoever knew the old password cannot open backups made from now on."),
        None => println!("If the old password leaked, also run `sealback key change-password --rotate` (or `key remove` with --rotate) so that backups from now on use a new backup key."),
    }
    Ok(())
}

/// 32 fresh bytes from the OS for a new key's secret.
fn random_secret() -> sealback_core::ProtectorSecret {
    let mut b = vec![0u8; 32];
    rand_core::Rng::fill_bytes(&mut sealback_engine::os_rng(), &mut b);
    sealback_core::ProtectorSecret::new(b)
}

/// `sealback off`: deletes the backups on the drive once the person typed the phrase.
pub async fn turn_off(settings: &Settings, confirm: Option<String>) -> Result<(), CliError> {
    use sealback_engine::turnoff;
    let store = crate::commands::store(settings)?;
    let typed = match confirm {
        Some(typed) => typed,
        None => ask_confirmation(settings.repo()?)?,
    };
    // Checked before unlocking: a wrong phrase costs no password guess or passkey prompt.
    turnoff::refuse_unconfirmed(&typed)?;
    let done = if turnoff::is_half_turned_off(&store).await? {
        turnoff::finish_turn_off(&store, &typed).await?
    } else {
        turnoff::turn_off(&open(settings).await?, &typed).await?
    };
    if settings.json {
        println!(
            "{}",
            json!({"off": true, "snapshots_deleted": done.snapshots, "objects_deleted": done.objects})
        );
        return Ok(());
    }
    println!(
        "End-to-end encrypted backup is off: {} snapshot(s) and all their data were deleted from {}.",
        done.snapshots,
        settings.repo()?
    );
    println!("Copies that your cloud drive keeps in its trash or version history stay encrypted; empty the trash to remove them too.");
    println!("Turn it on again with `sealback init`.");
    Ok(())
}

/// Says what turning off does and reads the typed confirmation from the terminal.
fn ask_confirmation(repo: &str) -> Result<String, CliError> {
    use sealback_engine::turnoff::CONFIRM_PHRASE;
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "turning off deletes every backup in {repo}; confirm with --confirm \"{CONFIRM_PHRASE}\" (or run in a terminal to be asked). Nothing was deleted"
        )));
    }
    eprintln!("Turning off end-to-end encrypted backup DELETES every backup in {repo}: every snapshot and all its data, for every device that uses it. This cannot be undone.");
    eprint!("Type \"{CONFIRM_PHRASE}\" to confirm: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Other(format!("cannot read from the terminal: {e}")))?;
    Ok(line)
}

/// `sealback key rename ID NAME`.
pub async fn rename(settings: &Settings, query: &str, name: &str) -> Result<(), CliError> {
    let mut repo = open(settings).await?;
    let id = crate::commands::find_slot(repo.keyslots(), query)?;
    repo.rename_slot(id, name).await?;
    if settings.json {
        println!("{}", json!({"id": id.to_hex(), "name": name.trim()}));
    } else {
        println!("Key {} is now called {:?}.", id.to_hex(), name.trim());
    }
    Ok(())
}

/// After a restore: names the files the backup left out by setting (videos).
pub fn say_left_out(left_out: &[String]) {
    if left_out.is_empty() {
        return;
    }
    println!(
        "{} video(s) were left out of this backup (the \"include videos\" setting was off), so they were not restored:",
        left_out.len()
    );
    // A file's name is written by whoever sent the file: no terminal escapes from it.
    for path in left_out.iter().take(20) {
        println!("  {}", sealback_core::keyslot::printable_name(path));
    }
    if left_out.len() > 20 {
        println!("  … and {} more", left_out.len() - 20);
    }
}

/// Where this device keeps its password check records (engine `password_check`).
pub fn password_check_dir() -> std::path::PathBuf {
    crate::settings::data_dir().join("password-check")
}

fn password_check_path(repo_id: &sealback_core::RepoId) -> std::path::PathBuf {
    sealback_engine::password_check::record_path(&password_check_dir(), &repo_id.to_hex())
}

/// After a password was set or changed here: the reminders start (first in 14 days). A failure
/// only costs reminders, so it is a warning.
pub fn remember_password(
    repo: &sealback_engine::Repository,
    password: &sealback_vault_client::Password,
) {
    let made = sealback_engine::password_check::PasswordCheck::new(
        password.expose_secret().as_bytes(),
        unix_now(),
        &mut sealback_engine::os_rng(),
    )
    .and_then(|r| r.save(&password_check_path(&repo.config().repo_id)));
    if let Err(e) = made {
        eprintln!("warning: cannot keep the password check record ({e}); you will not be reminded to check your password");
    }
}

/// `sealback key check-password`.
pub async fn check_password(settings: &Settings) -> Result<(), CliError> {
    use sealback_engine::password_check::{Checked, PasswordCheck};
    let (config, _) =
        sealback_engine::Repository::read_keyslots(&crate::commands::store(settings)?).await?;
    let path = password_check_path(&config.repo_id);
    let mut record = PasswordCheck::load(&path)?.ok_or_else(|| {
        CliError::Usage(
            "this device has nothing to check your password against: the check starts when you set or change the password here (`sealback key change-password`)".into(),
        )
    })?;
    let password = unlock::read_password(false)?;
    match record.check(password.expose_secret().as_bytes(), unix_now())? {
        Checked::Matches => {
            record.save(&path)?;
            if settings.json {
                println!("{}", json!({"matches": true, "due_unix": record.due_unix}));
            } else {
                println!("That is your password. The next reminder is in 30 days.");
            }
            Ok(())
        }
        Checked::DoesNotMatch => Err(CliError::Unlock(
            "that is not the password you set (this check used none of your 10 tries at the key vault). \
             If you forgot it, unlock with another key and set a new one: `sealback key change-password`"
                .into(),
        )),
    }
}
