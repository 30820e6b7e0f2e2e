//! Getting a protector to unlock with: today the recovery key, from `SEALBACK_RECOVERY_KEY`, a
//! file, or a hidden prompt on the terminal.

use crate::output::CliError;
use crate::settings::Settings;
use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};
use std::io::IsTerminal;
use zeroize::Zeroizing;

/// The environment variable holding a recovery key.
pub const RECOVERY_KEY_ENV: &str = "SEALBACK_RECOVERY_KEY";

fn parse(text: &str, source: &str) -> Result<RecoveryKey, CliError> {
    RecoveryKey::parse(text)
        .map_err(|e| CliError::Unlock(format!("the recovery key from {source} is not valid: {e}")))
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
