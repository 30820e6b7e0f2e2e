//! What the person sees: logs, progress bars, results and errors.

use crate::exit;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sealback_engine::progress::Progress;
use sealback_engine::ErrorKind;
use std::io::IsTerminal;

/// A CLI failure with its exit code.
#[derive(Debug)]
pub enum CliError {
    /// From the engine.
    Engine(sealback_engine::Error),
    /// Bad usage (exit 2).
    Usage(String),
    /// Could not unlock (exit 3).
    Unlock(String),
    /// Refused by the key vault (exit 5).
    Vault(String),
    /// Data differs from what it must be (exit 4).
    Integrity(String),
    /// Anything else (exit 1).
    Other(String),
}

impl From<sealback_engine::Error> for CliError {
    fn from(e: sealback_engine::Error) -> Self {
        CliError::Engine(e)
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Engine(e) => match e.kind() {
                ErrorKind::Unlock => exit::UNLOCK,
                ErrorKind::Integrity => exit::INTEGRITY,
                ErrorKind::VaultRefused => exit::VAULT,
                ErrorKind::Busy => exit::BUSY,
                ErrorKind::DriveFull => exit::DRIVE_FULL,
                _ => exit::OTHER,
            },
            CliError::Usage(_) => exit::USAGE,
            CliError::Unlock(_) => exit::UNLOCK,
            CliError::Vault(_) => exit::VAULT,
            CliError::Integrity(_) => exit::INTEGRITY,
            CliError::Other(_) => exit::OTHER,
        }
    }

    /// The keys-file failures of issue 13 need their own advice: nothing is damaged, someone
    /// changed the keys file.
    fn keys_file_hint(&self) -> Option<&'static str> {
        use sealback_core::keyslot::UnlockError;
        use sealback_engine::Error;
        Some(match self {
            CliError::Engine(Error::Unlock(UnlockError::Unvouched { .. })) => {
                "no key was sealed to it and your backups are intact. Someone with write access to the cloud drive added or changed it: revoke access you do not trust, then remove that key with `sealback key remove ID` (the id named above); sealback refuses to add or rotate keys while it is there"
            }
            CliError::Engine(Error::Unlock(UnlockError::KeysFile { .. })) => {
                "the `keys` file was changed by someone without the backup key. Put back the drive's previous version of it (its version history), or open the backup from another device that still works"
            }
            CliError::Engine(
                Error::KeysRolledBack { .. }
                | Error::KeysDowngraded { .. }
                | Error::KeysReplayed { .. },
            ) => {
                "put the current `keys` file back (the cloud drive's version history has it, or another device's copy of the repository)"
            }
            _ => return None,
        })
    }

    fn kind_name(&self) -> &'static str {
        match self.exit_code() {
            exit::UNLOCK => "unlock",
            exit::INTEGRITY => "integrity",
            exit::VAULT => "vault_refused",
            exit::USAGE => "usage",
            exit::BUSY => "busy",
            exit::DRIVE_FULL => "drive_full",
            _ => "other",
        }
    }

    fn message(&self) -> String {
        match self {
            CliError::Engine(e) => e.to_string(),
            CliError::Usage(m)
            | CliError::Unlock(m)
            | CliError::Vault(m)
            | CliError::Integrity(m)
            | CliError::Other(m) => m.clone(),
        }
    }

    /// What to do next.
    fn hint(&self) -> Option<&'static str> {
        if let Some(hint) = self.keys_file_hint() {
            return Some(hint);
        }
        Some(match self.exit_code() {
            exit::UNLOCK => "check the key you gave; any other enrolled key (`sealback key list`) opens the backup too",
            exit::INTEGRITY => "nothing wrong was restored. Run `sealback check --read-data` to list every damaged object; snapshots that do not use them still restore",
            exit::VAULT => "the key vault will not release this key; open the backup with another key (`sealback key list`)",
            exit::BUSY => "another sealback is working on this repository; run the command again when it has finished (`sealback locks` shows who holds it)",
            _ => return None,
        })
    }
}

/// Prints an error to stderr (and as JSON on stdout with `--json`).
pub fn report_error(e: &CliError, json: bool) {
    let message = e.message();
    eprintln!("error: {message}");
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    if json {
        let v = serde_json::json!({
            "error": { "kind": e.kind_name(), "exit_code": e.exit_code(), "message": message, "hint": e.hint() }
        });
        println!("{v}");
    }
}

/// Logs go to stderr through `tracing`; `SEALBACK_LOG` takes an env-filter directive.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEALBACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// A progress bar on stderr when it is a terminal and output is not JSON; silent otherwise.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(json: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            None,
            if !json && std::io::stderr().is_terminal() {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Self(bar)
    }
}

impl Progress for Bar {
    fn start(&self, phase: &str, total: Option<u64>) {
        self.0.set_message(phase.to_string());
        self.0.set_position(0);
        self.0.set_length(total.unwrap_or(0));
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Human-readable bytes.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}
