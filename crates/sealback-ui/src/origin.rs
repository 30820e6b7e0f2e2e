//! Where the page lives, and so whose passkeys it can use: the relying party (RP) id.
//!
//! WebAuthn scopes a passkey to an RP id, a host name, and ignores ports. Every page on every
//! `localhost` port shares the RP `localhost`, so another local user's page could ask the
//! person's passkey for the same PRF output. The page is therefore served at a
//! per-installation origin, `http://sb-LABEL.localhost:PORT`, where LABEL is 12 random
//! base32 characters kept in a 0600 file of the person's data folder. A page can use an RP
//! id only if it is its own host or a suffix of it, so only a page served under that exact
//! name can use these passkeys, and only who knows LABEL can serve one (docs/THREAT_MODEL.md,
//! "Local web UI"). Chromium resolves every `*.localhost` name to loopback and treats it as a
//! secure context.
//!
//! A synced passkey is asked for from the RP it was made for, so a new computer restoring
//! from a repository whose browser passkeys name an RP of exactly this form adopts that
//! label ([`OriginLabel::from_rp_id`] is strict; anything else is ignored). Passkeys made
//! before this version belong to the RP `localhost`: the page still answers at
//! `http://localhost:PORT` ([`PageOrigin::Shared`]), only to unlock with them (and with a
//! development key vault whose RP is `localhost`); new passkeys are never made there.

use std::path::Path;

/// The RP id of passkeys made before the per-installation origin, and of a development key
/// vault: shared by every page on every local port.
pub const SHARED_RP_ID: &str = "localhost";

const PREFIX: &str = "sb-";
const SUFFIX: &str = ".localhost";
const LABEL_LEN: usize = 12;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The per-installation label (60 random bits): `sb-LABEL.localhost` is the page's host and
/// the RP id of its passkeys. Not a key, but not to be shown to other local users either.
#[derive(Clone, PartialEq, Eq)]
pub struct OriginLabel(String);

impl std::fmt::Debug for OriginLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OriginLabel(<redacted>)")
    }
}

impl OriginLabel {
    /// A fresh random label.
    pub fn random() -> Self {
        let mut bytes = [0u8; LABEL_LEN];
        rand_core::Rng::fill_bytes(&mut sealback_engine::os_rng(), &mut bytes);
        // 256 is a multiple of 32: taking 5 bits of each byte is uniform.
        Self(
            bytes
                .iter()
                .map(|b| ALPHABET[usize::from(b & 31)] as char)
                .collect(),
        )
    }

    /// The label alone, if `text` is exactly 12 characters of `[a-z2-7]`.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == LABEL_LEN && text.bytes().all(|b| ALPHABET.contains(&b)))
            .then(|| Self(text.to_string()))
    }

    /// The label of an RP id of exactly the form `sb-[a-z2-7]{12}.localhost`; `None` for any
    /// other RP id (a repository's slots are written by the drive's operator).
    pub fn from_rp_id(rp_id: &str) -> Option<Self> {
        Self::parse(rp_id.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?)
    }

    /// `sb-LABEL.localhost`: the page's host name and its passkeys' RP id.
    pub fn rp_id(&self) -> String {
        format!("{PREFIX}{}{SUFFIX}", self.0)
    }

    /// Reads the label kept at `path`, or makes one and keeps it there (mode 0600, in a
    /// folder made 0700 if missing).
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match Self::load(path)? {
            Some(label) => Ok(label),
            None => {
                let label = Self::random();
                label.save(path)?;
                Ok(label)
            }
        }
    }

    /// Reads the label kept at `path`: `None` only if there is no such file. A file that
    /// cannot be read or holds no label is an error, never taken for "no label yet" (which
    /// would have another label written over this installation's).
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(text.trim()).map(Some).ok_or_else(|| {
                format!(
                    "{} does not hold a sealback page label (12 characters a-z, 2-7); \
                     remove it to make a new one (passkeys made for the old one then stop working here)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Keeps this label at `path` (mode 0600), replacing what was there.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(fail)?;
        }
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(fail)?;
        writeln!(file, "{}", self.0).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }
}

/// Which of the UI's two origins a request came to (set by the guard from its Host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageOrigin {
    /// `http://sb-LABEL.localhost:PORT`: the page; new passkeys are made here.
    Installation,
    /// `http://localhost:PORT` (or 127.0.0.1): only to unlock with a passkey of the RP
    /// `localhost` (made before this version, or held by a development key vault).
    Shared,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_form_is_a_label() {
        let label = OriginLabel::random();
        assert_eq!(OriginLabel::from_rp_id(&label.rp_id()), Some(label));
        assert!(OriginLabel::from_rp_id("sb-abcdefgh2345.localhost").is_some());
        for bad in [
            "localhost",
            "sb-abcdefgh2345.localhost.",
            "sb-abcdefgh234.localhost",
            "sb-abcdefgh23456.localhost",
            "sb-abcdefgh2341.localhost",
            "sb-ABCDEFGH2345.localhost",
            "x.sb-abcdefgh2345.localhost",
            "sb-abcdefgh2345.localhost.evil.com",
            "sb-abcdefgh2345.example.com",
            "sb-abcdefgh.345.localhost",
        ] {
            assert_eq!(OriginLabel::from_rp_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_kept_label_is_read_back_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealback").join("page-label");
        let made = OriginLabel::load_or_create(&path).unwrap();
        assert_eq!(OriginLabel::load_or_create(&path).unwrap(), made);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, "not a label\n").unwrap();
        assert!(OriginLabel::load_or_create(&path).is_err());
    }
}
