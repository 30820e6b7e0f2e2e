//! The settings this device keeps for its backups, in the config file beside `repo` and
//! `paths`: automatic backups and whether videos are backed up. Saving edits only these keys
//! (`toml_edit`), so a person's comments and other settings in the file stay as they were.
//!
//! ```toml
//! schedule = "daily"          # off | daily | weekly | monthly
//! only_on_ac_power = true
//! include_videos = false
//! ```

use crate::error::{Error, Result};
use crate::schedule::{Frequency, Schedule};
use std::path::Path;

/// The backup settings of this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceSettings {
    /// Automatic backups.
    pub schedule: Schedule,
    /// Back up video files (they are most of a chat store's size).
    pub include_videos: bool,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            schedule: Schedule::default(),
            include_videos: true,
        }
    }
}

/// The config file keys these settings use.
pub const KEY_SCHEDULE: &str = "schedule";
/// See [`KEY_SCHEDULE`].
pub const KEY_ONLY_ON_AC_POWER: &str = "only_on_ac_power";
/// See [`KEY_SCHEDULE`].
pub const KEY_INCLUDE_VIDEOS: &str = "include_videos";

/// Writes `settings` into the config file at `path` (created, with its folder, if missing),
/// changing only this module's keys. The file is replaced atomically.
pub fn save(path: &Path, settings: &DeviceSettings) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| {
        Error::Invalid(format!(
            "the config file {} is not valid TOML ({e}); fix it, then change the setting again",
            path.display()
        ))
    })?;
    doc[KEY_SCHEDULE] = toml_edit::value(settings.schedule.frequency.as_str());
    doc[KEY_ONLY_ON_AC_POWER] = toml_edit::value(settings.schedule.only_on_ac_power);
    doc[KEY_INCLUDE_VIDEOS] = toml_edit::value(settings.include_videos);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, doc.to_string()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Parses a frequency from the config file or a flag, with an error that says what is valid.
pub fn parse_frequency(text: &str) -> Result<Frequency> {
    Frequency::parse(text).ok_or_else(|| {
        Error::Invalid(format!(
            "{text:?} is not a schedule: use off, daily, weekly or monthly"
        ))
    })
}
