//! Flags and subcommands.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// End-to-end encrypted chat backups, unlocked by a passkey, a recovery key or a password.
#[derive(Parser, Debug)]
#[command(name = "sealback", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Repository: a folder path or a storage URL (file://, memory://).
    #[arg(long, global = true, env = "SEALBACK_REPO")]
    pub repo: Option<String>,

    /// Read the recovery key from this file instead of asking (`init` writes it there).
    #[arg(long, global = true, env = "SEALBACK_RECOVERY_KEY_FILE")]
    pub recovery_key_file: Option<PathBuf>,

    /// Configuration file (default: ~/.config/sealback/config.toml).
    #[arg(long, global = true, env = "SEALBACK_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output on stderr (-v info, -vv debug); SEALBACK_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a repository, a backup key and a recovery key (shown once).
    ///
    /// With --recovery-key-file F the new recovery key is written to F (mode 0600, which must
    /// not exist yet) instead of being shown.
    Init {
        /// A name for the recovery key's slot.
        #[arg(long, default_value = "recovery key")]
        name: String,
    },
    /// Back up files and folders; prints the new snapshot's id.
    Backup {
        /// Files or folders (a chat store folder, typically).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Tag the snapshot (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Host name to record (default: this machine's).
        #[arg(long)]
        host: Option<String>,
    },
    /// List snapshots.
    Snapshots,
    /// Restore a snapshot into a new or empty folder.
    Restore {
        /// Snapshot id (or a unique prefix), or `latest`.
        snapshot: String,
        /// Folder to restore into.
        #[arg(long)]
        target: PathBuf,
    },
    /// Verify the repository; with --read-data, read and authenticate every byte.
    Check {
        /// Read and verify all data, not only the structure.
        #[arg(long)]
        read_data: bool,
    },
    /// Manage the keys (protectors) that can unlock the backup.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// See it work: generate a chat store, back it up, change it, back up again, restore it
    /// on a "new phone" and verify it, explaining each step.
    Demo {
        /// Work in this folder (default: a new temporary folder, kept afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List keyslots: type, name, created.
    List,
}
