//! The password check reminder: now and then (14 days after the password is set, then every
//! 30 days after each check) the person types their password to see that they still know it.
//! The check is local and spends no guess at the key vault.
//!
//! What the device keeps (never on the drive) is a *partial* verifier: the first 12 bits of
//! Argon2id(password, a random 16-byte salt; 19 MiB, 2 passes). A wrong password passes the
//! check once in 4,096 tries, which is fine for a reminder; and whoever steals the device
//! learns only 12 bits about the password from it: they can rule out 4,095 of every 4,096
//! candidates offline, but must still try the rest at the vault, which stops after 10 wrong
//! guesses. A full verifier would let them guess the password offline, at whatever speed they
//! can pay for (docs/THREAT_MODEL.md, "Password check reminder").

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

const DAY: u64 = 86_400;
/// The first reminder, after the password was set.
pub const FIRST_CHECK_AFTER: u64 = 14 * DAY;
/// Later reminders, after each check.
pub const CHECK_EVERY: u64 = 30 * DAY;
/// Bits of the Argon2id output kept.
pub const VERIFIER_BITS: u32 = 12;
const FORMAT: u32 = 1;

/// This device's record for one repository's password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordCheck {
    format: u32,
    salt_hex: String,
    /// The first [`VERIFIER_BITS`] bits of the Argon2id output.
    verifier: u16,
    /// When the next reminder is due, Unix seconds.
    pub due_unix: u64,
}

/// What a check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// The password matches what was set (or is one of the 1 in 4,096 that also pass).
    Matches,
    /// Not the password that was set.
    DoesNotMatch,
}

/// Where the record of `repo_id` lives under `dir`.
pub fn record_path(dir: &Path, repo_id: &str) -> PathBuf {
    dir.join(format!("{repo_id}.json"))
}

fn verifier(password: &[u8], salt: &[u8]) -> Result<u16> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(19 * 1024, 2, 1, Some(32))
        .map_err(|e| Error::Invalid(format!("argon2 parameters: {e}")))?;
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, &mut out[..])
        .map_err(|e| Error::Invalid(format!("argon2: {e}")))?;
    Ok(u16::from_be_bytes([out[0], out[1]]) >> (16 - VERIFIER_BITS))
}

impl PasswordCheck {
    /// A record for a password just set at `now_unix`: first reminder in 14 days.
    pub fn new(
        password: &[u8],
        now_unix: u64,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self> {
        let mut salt = [0u8; 16];
        rand_core::Rng::fill_bytes(rng, &mut salt);
        Ok(Self {
            format: FORMAT,
            salt_hex: hex_encode(&salt),
            verifier: verifier(password, &salt)?,
            due_unix: now_unix + FIRST_CHECK_AFTER,
        })
    }

    /// Whether a reminder is due at `now_unix`.
    pub fn is_due(&self, now_unix: u64) -> bool {
        now_unix >= self.due_unix
    }

    /// Checks `password`; a match moves the next reminder 30 days on from `now_unix`.
    pub fn check(&mut self, password: &[u8], now_unix: u64) -> Result<Checked> {
        let salt = hex_decode(&self.salt_hex)
            .ok_or_else(|| Error::Invalid("the password check record is damaged".into()))?;
        let matches = bool::from(
            verifier(password, &salt)?
                .to_be_bytes()
                .ct_eq(&self.verifier.to_be_bytes()),
        );
        if matches {
            self.due_unix = now_unix + CHECK_EVERY;
            Ok(Checked::Matches)
        } else {
            Ok(Checked::DoesNotMatch)
        }
    }

    /// Reads the record at `path`; `None` when there is none (no password set on this device).
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Invalid(format!(
                    "the password check record {} is damaged ({e}); delete it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the record (mode 0600, replaced atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        let body = serde_json::to_vec(self).expect("a record serializes");
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_password_passes_a_wrong_one_does_not_and_a_pass_moves_the_reminder() {
        let mut rng = crate::os_rng();
        let mut record = PasswordCheck::new(b"correct horse", 1_000, &mut rng).unwrap();
        assert!(!record.is_due(1_000 + FIRST_CHECK_AFTER - 1));
        assert!(record.is_due(1_000 + FIRST_CHECK_AFTER));
        let now = 1_000 + FIRST_CHECK_AFTER;
        // Wrong passwords: at most a few of these 40 may pass (1 in 4,096 each).
        let passed = (0..40)
            .filter(|i| {
                record.check(format!("wrong {i}").as_bytes(), now).unwrap() == Checked::Matches
            })
            .count();
        assert!(passed <= 1, "{passed} wrong passwords passed");
        record.due_unix = now;
        assert_eq!(
            record.check(b"correct horse", now).unwrap(),
            Checked::Matches
        );
        assert_eq!(record.due_unix, now + CHECK_EVERY);
        assert!(record.verifier < 1 << VERIFIER_BITS);
    }

    #[test]
    fn a_record_round_trips_through_its_file_readable_only_by_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = record_path(&tmp.path().join("checks"), "abcd");
        assert_eq!(PasswordCheck::load(&path).unwrap(), None);
        let record = PasswordCheck::new(b"pw", 5, &mut crate::os_rng()).unwrap();
        record.save(&path).unwrap();
        assert_eq!(PasswordCheck::load(&path).unwrap(), Some(record));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
