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

    /// The software passkey store (stands for a synced password manager); default
    /// ~/.local/share/sealback/passkeys.sbpk. Its PIN comes from SEALBACK_PASSKEY_PIN or a prompt.
    #[arg(long, global = true, env = "SEALBACK_PASSKEY_STORE")]
    pub passkey_store: Option<PathBuf>,

    /// How to unlock: auto (a recovery key if one is given, else a password if SEALBACK_PASSWORD
    /// is set and the backup has a password key, else a passkey if the backup has passkey keys
    /// and a passkey store exists, else ask for the recovery key), recovery-key, passkey, password.
    #[arg(long, global = true, env = "SEALBACK_UNLOCK", value_enum, default_value_t = UnlockWith::Auto)]
    pub unlock: UnlockWith,

    /// The account at the key vault (for password keys).
    #[arg(long, global = true, env = "SEALBACK_ACCOUNT")]
    pub account: Option<String>,

    /// A file holding the proof that you own the account: a token the messaging app's
    /// operator signs for this vault (`sbp2.…`; scope `register` to add a password or vault-passkey key, `login`
    /// to unlock with one). Or put the token in SEALBACK_ACCOUNT_PROOF. A vault in development
    /// mode needs none. Never on the command line: every local user sees the process list.
    #[arg(long, global = true, env = "SEALBACK_ACCOUNT_PROOF_FILE")]
    pub account_proof_file: Option<PathBuf>,

    /// Refused: a proof on the command line is visible to every local user.
    #[arg(long = "account-proof", global = true, hide = true)]
    pub account_proof_on_command_line: Option<String>,

    /// The key vault this device uses for password and vault-passkey keys: its https://
    /// address, as the messaging app or its operator gives it (plain http:// only on this
    /// machine). Needed to unlock with such a key: the backup itself never says where a vault
    /// is, since whoever controls the cloud drive could point it anywhere.
    #[arg(long, global = true, env = "SEALBACK_VAULT_URL")]
    pub vault_url: Option<String>,

    /// The threshold realms this device uses for a realm password (a TOML file: `threshold`,
    /// and one `[[realm]]` with `id`, `url`, `key` and optionally `proof_file` each; SPEC §7f).
    /// The backup names realms only by id: their addresses and keys come from here.
    #[arg(long, global = true, env = "SEALBACK_REALMS")]
    pub realms: Option<PathBuf>,

    /// Your country or region (ISO 3166 code such as DE), sent to the key vault when it
    /// decides which kinds of key it offers (staged rollout).
    #[arg(long, global = true, env = "SEALBACK_REGION", default_value = "")]
    pub region: String,

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
    ///
    /// With --passkey, a passkey is the first key; a recovery key is still made unless
    /// --no-recovery-key is given.
    Init {
        /// A name for the recovery key's slot.
        #[arg(long, default_value = "recovery key")]
        name: String,
        /// Turn on backup with a passkey (in the passkey store).
        #[arg(long)]
        passkey: bool,
        /// A name for the passkey's slot.
        #[arg(long, default_value = "passkey")]
        passkey_name: String,
        /// Make no recovery key. Losing every passkey then loses the backups.
        #[arg(long, requires = "passkey")]
        no_recovery_key: bool,
        /// The key vault to use when the passkey provider has no PRF (the vault's passkey
        /// mode; needs --account). Default: the global --vault-url.
        #[arg(long, requires = "passkey")]
        vault: Option<String>,
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
        /// Back up video files (true) or leave them out (false); default: `include_videos`
        /// in the config file (true when unset). Left-out files are listed in the snapshot
        /// and a restore names them.
        #[arg(long, value_name = "true|false")]
        videos: Option<bool>,
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
    /// Remove snapshots by keep rules (or by id). Only the snapshot records go; run `prune`
    /// (or give --prune) to delete the data they alone used. Rules apply per host and paths,
    /// in UTC; a snapshot any rule keeps is kept.
    Forget {
        /// Snapshots to remove (ids or unique prefixes), instead of keep rules.
        snapshots: Vec<String>,
        /// Keep the newest N snapshots.
        #[arg(long, default_value_t = 0, conflicts_with = "snapshots")]
        keep_last: u32,
        /// Keep the newest snapshot of each of the last N hours that have one.
        #[arg(long, default_value_t = 0, conflicts_with = "snapshots")]
        keep_hourly: u32,
        /// Keep the newest snapshot of each of the last N days that have one.
        #[arg(long, default_value_t = 0, conflicts_with = "snapshots")]
        keep_daily: u32,
        /// Keep the newest snapshot of each of the last N weeks (Monday to Sunday).
        #[arg(long, default_value_t = 0, conflicts_with = "snapshots")]
        keep_weekly: u32,
        /// Keep the newest snapshot of each of the last N months.
        #[arg(long, default_value_t = 0, conflicts_with = "snapshots")]
        keep_monthly: u32,
        /// Keep the newest snapshot of each of the last N years.
        #[arg(long, default_value_t = 0, conflicts_with = "snapshots")]
        keep_yearly: u32,
        /// Keep every snapshot younger than this (e.g. 36h, 14d, 8w).
        #[arg(long, value_parser = parse_age, conflicts_with = "snapshots")]
        keep_within: Option<i64>,
        /// Show what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Prune afterwards.
        #[arg(long)]
        prune: bool,
    },
    /// Delete data that no snapshot uses (after `forget`, or left by interrupted backups).
    /// Takes the repository for itself: it waits for nobody and refuses to start while a
    /// backup, restore or check runs (exit 6).
    Prune {
        /// Unused space that may stay in partly used packs, in percent of the used data;
        /// lower values rewrite more.
        #[arg(long, default_value_t = 5.0)]
        max_unused: f64,
        /// Show what would be deleted; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also rewrite every pack of the first format (whose blob sizes can be read without
        /// the key) in the current one.
        #[arg(long)]
        upgrade_packs: bool,
    },
    /// List the repository's locks (who is backing up, pruning, ...).
    Locks {
        /// Remove locks that are stale (not refreshed for 30 minutes, or held by a process of
        /// this machine that has ended).
        #[arg(long)]
        remove_stale: bool,
        /// Remove every lock. Only when you know no other sealback uses this repository.
        #[arg(long, conflicts_with = "remove_stale")]
        remove_all: bool,
    },
    /// Turn off end-to-end encrypted backup: DELETES every backup in the repository (every
    /// snapshot and all its data, the keys and the config), for every device that uses it, as
    /// a phone's "turn off" does. Asks you to type "delete my backups" (or give it with
    /// --confirm). Unlocks first, to be sure it is your backup.
    Off {
        /// The confirmation, for scripts: exactly "delete my backups".
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Automatic backups as a service: runs in the foreground and backs up when the schedule
    /// (`schedule` and `only_on_ac_power` in the config file, or the flags) says one is due:
    /// one period after this device's newest snapshot. Unlocks once at start, without asking
    /// (a recovery key file, SEALBACK_PASSWORD, or the passkey store's PIN in
    /// SEALBACK_PASSKEY_PIN). For a systemd user unit, see --print-systemd-unit.
    Schedule {
        /// What to back up (repeatable); default: `paths` from the config file.
        #[arg(long = "path", value_delimiter = ',')]
        paths: Vec<PathBuf>,
        /// How often: off, daily, weekly (7 days) or monthly (a calendar month, UTC); default: `schedule`
        /// from the config file.
        #[arg(long, env = "SEALBACK_SCHEDULE")]
        every: Option<String>,
        /// Wait while on battery (where the platform says; otherwise back up anyway).
        #[arg(long, env = "SEALBACK_ONLY_ON_AC_POWER")]
        only_on_ac_power: bool,
        /// Print a systemd user unit that runs this service, and exit.
        #[arg(long)]
        print_systemd_unit: bool,
        /// Look once: back up if due, say when the next backup is due, and exit.
        #[arg(long)]
        once: bool,
        /// Decide as if it were this time (Unix seconds); with --once, for tests.
        #[arg(long, hide = true, requires = "once")]
        at: Option<i64>,
    },
    /// Manage the keys (protectors) that can unlock the backup.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Run the Backup Key Vault.
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
    /// The local web UI: turn on encrypted backup with a passkey in your browser, back up,
    /// browse snapshots, restore. Prints the address (with its access token) as the first line
    /// on stdout and opens it in a browser unless --no-open. Listens on loopback only.
    Ui {
        /// Loopback address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0", env = "SEALBACK_UI_LISTEN")]
        listen: std::net::SocketAddr,
        /// Do not open a browser.
        #[arg(long)]
        no_open: bool,
        /// What "Back up now" backs up (repeatable); default: `paths` from the config file.
        #[arg(long = "path", env = "SEALBACK_UI_PATHS", value_delimiter = ',')]
        paths: Vec<PathBuf>,
        /// For the browser tests: the scheduler runs on a clock the page's test hook sets.
        #[arg(long, hide = true)]
        test_mode: bool,
    },
    /// Test and benchmark data: generate a realistic chat store, or compare two.
    Corpus {
        #[command(subcommand)]
        command: CorpusCommand,
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
pub enum CorpusCommand {
    /// Write a chat store (a SQLite message database, photos, videos, voice notes) into DIR,
    /// which must not exist. The same seed gives the same bytes.
    Generate {
        /// Where to write it.
        dir: PathBuf,
        /// About this many bytes in all (e.g. 2G, 300M); default: the demo's ~40 MB store.
        #[arg(long, value_parser = parse_size)]
        size: Option<u64>,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Apply a day of use to a chat store made by `generate`: new messages (and read receipts
    /// on old ones), new photos, deleted media.
    Day {
        /// The chat store.
        dir: PathBuf,
        /// Messages to add.
        #[arg(long, default_value_t = 2_000)]
        messages: usize,
        /// Photos to add.
        #[arg(long, default_value_t = 20)]
        photos: usize,
        /// Media files to delete.
        #[arg(long, default_value_t = 0)]
        deleted: usize,
        /// Random seed.
        #[arg(long, default_value_t = 2)]
        seed: u64,
    },
    /// Compare two chat stores: databases row by row, other files byte by byte. Exit 0 when
    /// identical, 4 when they differ.
    Compare {
        /// The original.
        original: PathBuf,
        /// The restored copy.
        restored: PathBuf,
    },
}

/// `36h`, `14d`, `8w`, `1y` (365 days) as nanoseconds.
fn parse_age(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.len().saturating_sub(1));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not an age like 36h, 14d, 8w or 1y"))?;
    let hours = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        "y" => 24 * 365,
        _ => return Err(format!("{text:?}: unknown unit (use h, d, w or y)")),
    };
    n.checked_mul(hours * 3_600_000_000_000)
        .filter(|v| *v >= 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// `2G`, `300M`, `64K` or plain bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 2G or 300M"))?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        _ => return Err(format!("{text:?}: unknown unit (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List keys: id, type, name, created, last used on this device.
    List,
    /// Add a key (unlocks with an existing one first).
    Add {
        #[command(subcommand)]
        kind: AddKey,
    },
    /// Change the backup's password: the key vault gets a new record for the new password
    /// (the old password stops working there at once, with a fresh count of 10 tries) and the
    /// old password key is replaced by a new one in the same step. Unlock first with any key
    /// (the old password in SEALBACK_PASSWORD, a recovery key, a passkey); the new password
    /// comes from SEALBACK_NEW_PASSWORD or is asked twice.
    #[command(alias = "passwd")]
    ChangePassword {
        /// The vault's address (default: the global --vault-url).
        #[arg(long)]
        vault: Option<String>,
        /// Also replace the backup key, so that whoever learned the old password's key cannot
        /// open backups made from now on (do this if the old password leaked).
        #[arg(long)]
        rotate: bool,
    },
    /// Check that you still know the backup's password, on this device only: no guess at the
    /// key vault is spent. Reads SEALBACK_PASSWORD or asks. (sealback reminds you 14 days
    /// after a password is set here, then every 30 days.)
    CheckPassword,
    /// Rename a key (the name `key list` and the web UI show).
    Rename {
        /// The key's id from `sealback key list` (or a unique prefix of it).
        id: String,
        /// Its new name ("Pixel 9", "paper copy in the drawer").
        name: String,
    },
    /// Remove a key by id (or a unique prefix of it).
    Remove {
        /// The key's id from `sealback key list`.
        id: String,
        /// Also replace the backup key, so the removed key cannot open anything backed up
        /// from now on (do this after losing a device).
        #[arg(long)]
        rotate: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AddKey {
    /// A passkey in the passkey store, unlocked by its PRF extension. When the provider has
    /// no PRF and a key vault is given, the vault's passkey mode is used instead.
    Passkey {
        /// A name for it ("Pixel 9", "1Password").
        #[arg(long, default_value = "passkey")]
        name: String,
        /// The key vault to fall back to when the passkey provider has no PRF (default: the
        /// global --vault-url).
        #[arg(long)]
        vault: Option<String>,
    },
    /// A passkey checked by the Backup Key Vault (for passkey providers without PRF): the
    /// vault keeps half of the key sealed and releases it to a verified assertion; 10 failed
    /// attempts destroy it.
    VaultPasskey {
        /// The vault's address (default: the global --vault-url).
        #[arg(long)]
        vault: Option<String>,
        /// A name for it.
        #[arg(long, default_value = "vault passkey")]
        name: String,
    },
    /// A password checked by threshold realms (`--realms`): any `threshold` of them are
    /// needed to unlock, and no single realm operator can test it. 5 evaluations per realm;
    /// with 3 realms and a threshold of 2, at most 10 passwords can be tried even when one
    /// realm cheats.
    RealmPassword {
        /// A name for it.
        #[arg(long, default_value = "realm password")]
        name: String,
    },
    /// A password held by the Backup Key Vault (OPAQUE; 10 wrong guesses destroy it).
    Password {
        /// The vault's address (default: the global --vault-url).
        #[arg(long)]
        vault: Option<String>,
        /// A name for it.
        #[arg(long, default_value = "password")]
        name: String,
    },
    /// Another 64-digit recovery key (shown once, or written to --recovery-key-out).
    RecoveryKey {
        /// A name for it.
        #[arg(long, default_value = "recovery key")]
        name: String,
        /// Write the new key to this file (mode 0600) instead of showing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    /// Serve the vault's HTTP API; prints the URL as the first line on stdout.
    Serve(Box<VaultServeArgs>),
    /// Operator tool: make an Ed25519 key for signing account proofs (the messaging app's
    /// servers hold it); writes it to OUT (mode 0600) and prints the public key for
    /// `vault serve --operator-key`.
    OperatorKey {
        /// Where to write the private key (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Operator tool: sign an account proof for --account at one key vault (what the
    /// messaging app's servers give a client after it has verified the account). The vault is
    /// --audience, or the one at --vault-url (its id read from its /v1/info).
    IssueProof {
        /// The operator's private key (from `vault operator-key`).
        #[arg(long, env = "SEALBACK_OPERATOR_KEY_FILE")]
        operator_key_file: PathBuf,
        /// The id of the vault the proof is for (32 hex digits); other vaults refuse it.
        #[arg(long)]
        audience: Option<String>,
        /// `register` (add or replace the password key; also logs in) or `login`.
        #[arg(long, value_enum, default_value_t = ProofScope::Login)]
        scope: ProofScope,
        /// Seconds the proof stays valid (at most a day).
        #[arg(long, default_value_t = 600)]
        ttl: i64,
    },
}

/// What an account proof allows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofScope {
    /// Add or replace the account's password key, and log in.
    Register,
    /// Log in only.
    Login,
}

/// How to unlock.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlockWith {
    /// Pick from what is available.
    Auto,
    /// The 64-digit recovery key.
    RecoveryKey,
    /// A passkey.
    Passkey,
    /// A password through the key vault.
    Password,
    /// A password through the threshold realms (`--realms`).
    RealmPassword,
}

/// `sealback vault serve`.
#[derive(clap::Args, Debug)]
pub struct VaultServeArgs {
    /// Address to listen on (plain HTTP only on loopback).
    #[arg(long, default_value = "127.0.0.1:8443", env = "SEALBACK_VAULT_LISTEN")]
    pub listen: String,
    /// Database: sqlite:PATH (embedded) or postgres://USER@HOST:PORT/DB?sslrootcert=CA.pem
    /// (several vault processes may share one; TLS verified against that CA, or
    /// `?sslmode=disable` for a server on this machine only).
    #[arg(long, env = "SEALBACK_VAULT_DATABASE")]
    pub database: String,
    /// The key that seals records (created if missing), when no HSM is given. A software
    /// key file is weaker than an HSM: whoever copies it and the database can guess
    /// passwords offline.
    #[arg(
        long,
        env = "SEALBACK_VAULT_KEY_FILE",
        required_unless_present = "hsm_module"
    )]
    pub key_file: Option<PathBuf>,
    /// A PKCS#11 module (an HSM; SoftHSM2: /usr/lib/softhsm/libsofthsm2.so) whose token
    /// holds the sealing key. Its user PIN comes from SEALBACK_HSM_PIN.
    #[arg(long, env = "SEALBACK_HSM_MODULE", requires = "hsm_token")]
    pub hsm_module: Option<PathBuf>,
    /// The token's label.
    #[arg(long, env = "SEALBACK_HSM_TOKEN")]
    pub hsm_token: Option<String>,
    /// TLS certificate chain (PEM). With --tls-key, the vault serves HTTPS; without, plain
    /// HTTP is allowed on loopback only.
    #[arg(long, env = "SEALBACK_VAULT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "SEALBACK_VAULT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The messaging app operator's Ed25519 public key (base64url or hex), which signs
    /// account proofs. Repeat it while rotating keys. Required unless --dev.
    /// A base64url key can begin with `-`: it is still this option's value, not another option.
    #[arg(
        long = "operator-key",
        env = "SEALBACK_VAULT_OPERATOR_KEYS",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub operator_keys: Vec<String>,
    /// Login attempts allowed per account per minute (0: no limit).
    #[arg(long, default_value_t = 6, env = "SEALBACK_VAULT_RATE_PER_ACCOUNT")]
    pub rate_per_account: u32,
    /// Requests allowed per client address per minute (0: no limit).
    #[arg(long, default_value_t = 600, env = "SEALBACK_VAULT_RATE_PER_SOURCE")]
    pub rate_per_source: u32,
    /// Serve Prometheus metrics (GET /metrics, plain HTTP) on this address, e.g.
    /// 127.0.0.1:9464. Keep it internal.
    #[arg(long, env = "SEALBACK_VAULT_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Development mode: accept any account proof, or none. For the demo and tests only.
    #[arg(long, conflicts_with = "operator_keys")]
    pub dev: bool,
    /// Staged-rollout rules (TOML): which protectors are offered to which clients. Re-read
    /// when it changes, without a restart. Without it every protector is offered.
    #[arg(long, env = "SEALBACK_VAULT_ROLLOUT")]
    pub rollout: Option<PathBuf>,
    /// The WebAuthn relying party id for passkeys at this vault (a domain, such as
    /// vault.example.org). Without it the passkey routes are off, except in --dev mode, where
    /// it is `localhost` (with the origins https://localhost and http://localhost, any port,
    /// unless --rp-origin is given).
    #[arg(long, env = "SEALBACK_VAULT_RP_ID")]
    pub rp_id: Option<String>,
    /// An origin whose passkey assertions are accepted (repeatable; default https://RP-ID).
    /// For `localhost` any port is accepted.
    #[arg(
        long = "rp-origin",
        env = "SEALBACK_VAULT_RP_ORIGINS",
        value_delimiter = ','
    )]
    pub rp_origins: Vec<String>,
    /// Let a passkey session (from a passkey sign-in or login) stand in for the operator's
    /// account proof.
    #[arg(long, env = "SEALBACK_VAULT_SESSIONS_AS_PROOF")]
    pub passkey_sessions_as_proof: bool,
    /// Also serve as a threshold realm (tvr1): hold one key share per account of a password
    /// spread over several independently run vaults (`/v1/tvr/*`; SPEC §7f).
    #[arg(long, env = "SEALBACK_VAULT_REALM")]
    pub realm: bool,
    /// Evaluations a realm allows per registration before it destroys the share (L; the
    /// client's slot must ask for the same).
    #[arg(long, default_value_t = 5, env = "SEALBACK_VAULT_REALM_LIMIT", requires = "realm", value_parser = clap::value_parser!(u16).range(1..=100))]
    pub realm_limit: u16,
}
