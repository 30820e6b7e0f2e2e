//! One function per subcommand; each wires flags to an engine call and prints the result.

use crate::cli::{Cli, Command, KeyCommand};
use crate::output::{bytes, Bar, CliError};
use crate::settings::Settings;
use crate::unlock;
use sealback_core::keyslot::{ProtectorType, SlotTemplate};
use sealback_core::recovery::RecoveryKey;
use sealback_engine::backup::{backup, BackupOptions};
use sealback_engine::{check, restore, Repository};
use sealback_store::Store;
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::resolve(&cli.global)?;
    match cli.command {
        Command::Init { name } => init(&settings, name).await,
        Command::Backup { paths, tags, host } => {
            let mut repo = open(&settings).await?;
            let opts = BackupOptions {
                hostname: host.unwrap_or_else(hostname),
                tags,
                time_unix_ns: now_ns(),
            };
            let bar = Bar::new(settings.json);
            let r = backup(&mut repo, &paths, &opts, &bar).await?;
            let s = &r.summary;
            if settings.json {
                println!(
                    "{}",
                    json!({
                        "snapshot_id": r.snapshot_id.to_hex(),
                        "files": s.files, "dirs": s.dirs,
                        "bytes_read": s.bytes_read, "bytes_added": s.bytes_added,
                        "blobs_added": s.blobs_added,
                        "duration_s": r.duration.as_secs_f64(),
                    })
                );
            } else {
                println!("{}", r.snapshot_id.to_hex());
                eprintln!(
                    "snapshot {} saved: {} files, {} read, {} added in {:.1} s",
                    r.snapshot_id.short(),
                    s.files,
                    bytes(s.bytes_read),
                    bytes(s.bytes_added),
                    r.duration.as_secs_f64()
                );
            }
            Ok(())
        }
        Command::Snapshots => {
            let repo = open(&settings).await?;
            let all = repo.list_snapshots().await?;
            if settings.json {
                let v: Vec<_> = all
                    .iter()
                    .map(|(id, s)| {
                        json!({
                            "id": id.to_hex(), "time_unix_ns": s.time_unix_ns, "hostname": s.hostname,
                            "paths": s.paths, "tags": s.tags, "parent": s.parent.map(|p| p.to_hex()),
                            "files": s.summary.files, "bytes_read": s.summary.bytes_read,
                            "bytes_added": s.summary.bytes_added,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else if all.is_empty() {
                println!("no snapshots yet: run `sealback backup PATH`");
            } else {
                println!(
                    "{:<10} {:<20} {:<12} {:>8} {:>10} {:>10}  paths",
                    "id", "time (UTC)", "host", "files", "size", "added"
                );
                for (id, s) in &all {
                    println!(
                        "{:<10} {:<20} {:<12} {:>8} {:>10} {:>10}  {}",
                        id.short(),
                        format_time(s.time_unix_ns),
                        s.hostname,
                        s.summary.files,
                        bytes(s.summary.bytes_read),
                        bytes(s.summary.bytes_added),
                        s.paths.join(" ")
                    );
                }
            }
            Ok(())
        }
        Command::Restore { snapshot, target } => {
            let repo = open(&settings).await?;
            let (id, _) = repo.find_snapshot(&snapshot).await?;
            let bar = Bar::new(settings.json);
            let r = restore::restore(&repo, &id, &target, &bar).await?;
            if settings.json {
                println!(
                    "{}",
                    json!({"snapshot_id": id.to_hex(), "target": target, "files": r.files, "dirs": r.dirs, "bytes": r.bytes})
                );
            } else {
                println!(
                    "restored snapshot {} into {}: {} files, {}",
                    id.short(),
                    target.display(),
                    r.files,
                    bytes(r.bytes)
                );
            }
            Ok(())
        }
        Command::Check { read_data } => {
            let repo = open(&settings).await?;
            let bar = Bar::new(settings.json);
            let r = check::check(&repo, read_data, &bar).await?;
            if settings.json {
                println!(
                    "{}",
                    json!({
                        "ok": r.problems.is_empty(), "snapshots": r.snapshots, "packs": r.packs,
                        "blobs": r.blobs, "bytes_verified": r.bytes_verified,
                        "problems": r.problems, "warnings": r.warnings, "read_data": read_data,
                    })
                );
            } else {
                for w in &r.warnings {
                    eprintln!("warning: {w}");
                }
                for p in &r.problems {
                    eprintln!("problem: {p}");
                }
                if r.problems.is_empty() {
                    println!(
                        "no problems: {} snapshots, {} packs, {} blobs{}",
                        r.snapshots,
                        r.packs,
                        r.blobs,
                        if read_data {
                            format!(", {} read and authenticated", bytes(r.bytes_verified))
                        } else {
                            " (structure only; --read-data verifies every byte)".into()
                        }
                    );
                }
            }
            r.into_result().map(|_| ()).map_err(CliError::from)
        }
        Command::Key {
            command: KeyCommand::List,
        } => key_list(&settings).await,
        Command::Demo { dir } => crate::demo::run(dir, settings.json).await,
    }
}

fn store(settings: &Settings) -> Result<Store, CliError> {
    Store::open(settings.repo()?).map_err(|e| CliError::Usage(e.to_string()))
}

async fn open(settings: &Settings) -> Result<Repository, CliError> {
    let store = store(settings)?;
    // Fail on a missing repository before asking for a key.
    Repository::read_keyslots(&store).await?;
    let mut protector = unlock::recovery_key(settings)?;
    Ok(Repository::open(store, &mut protector).await?)
}

async fn init(settings: &Settings, name: String) -> Result<(), CliError> {
    let store = store(settings)?;
    let key = RecoveryKey::generate(&mut sealback_engine::os_rng());
    // Write the key file first: if that fails, no repository exists that nobody can open.
    if let Some(path) = &settings.recovery_key_file {
        write_secret_file(path, key.display_groups().as_bytes())?;
    }
    let template = SlotTemplate {
        protector_type: ProtectorType::RECOVERY_KEY,
        name,
        created_unix: now_ns() as u64 / 1_000_000_000,
        params: vec![],
    };
    let repo = match Repository::init(store, template, &key.to_secret()).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(path) = &settings.recovery_key_file {
                let _ = std::fs::remove_file(path);
            }
            return Err(e.into());
        }
    };
    let repo_id = repo.config().repo_id.to_hex();
    match (&settings.recovery_key_file, settings.json) {
        (Some(path), true) => println!(
            "{}",
            json!({"repo": settings.repo()?, "repo_id": repo_id, "recovery_key_file": path})
        ),
        (None, true) => println!(
            "{}",
            json!({"repo": settings.repo()?, "repo_id": repo_id, "recovery_key": key.display_groups().as_str()})
        ),
        (Some(path), false) => {
            println!("Encrypted backup is on for {}.", settings.repo()?);
            println!(
                "Your recovery key was written to {} (readable only by you).",
                path.display()
            );
            println!("Keep a copy somewhere safe and away from this device: without it, or another key you add later, the backups cannot be opened by anyone.");
        }
        (None, false) => {
            println!("Encrypted backup is on for {}.", settings.repo()?);
            println!();
            println!("Your recovery key — shown only this once:");
            println!();
            println!("    {}", key.display_groups().as_str());
            println!();
            println!("Write it down or store it in a password manager, away from this device.");
            println!("Without it (or another key you add later) nobody can open these backups: not the cloud, not us.");
        }
    }
    Ok(())
}

/// Creates a file only the owner can read, refusing to overwrite one.
pub fn write_secret_file(path: &Path, content: &[u8]) -> Result<(), CliError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            CliError::Other(format!(
                "cannot create {} for the recovery key: {e} (it must not exist yet)",
                path.display()
            ))
        })?;
    f.write_all(content)
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(|e| CliError::Other(format!("cannot write {}: {e}", path.display())))
}

async fn key_list(settings: &Settings) -> Result<(), CliError> {
    let store = store(settings)?;
    let (_, keyslots) = Repository::read_keyslots(&store).await?;
    if settings.json {
        let v: Vec<_> = keyslots
            .slots
            .iter()
            .map(|s| json!({"id": s.id.to_hex(), "type": s.protector_type.name(), "name": s.name, "created_unix": s.created_unix}))
            .collect();
        println!(
            "{}",
            json!({"epoch": keyslots.current_epoch, "keys": v, "unreadable_slots": keyslots.foreign_slots.len()})
        );
    } else {
        println!("{:<34} {:<16} {:<20} name", "id", "type", "created (UTC)");
        for s in &keyslots.slots {
            println!(
                "{:<34} {:<16} {:<20} {}",
                s.id.to_hex(),
                s.protector_type.name(),
                format_time(s.created_unix as i64 * 1_000_000_000),
                s.name
            );
        }
        if !keyslots.foreign_slots.is_empty() {
            println!(
                "({} slots of a newer format this version cannot use)",
                keyslots.foreign_slots.len()
            );
        }
    }
    Ok(())
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, from nanoseconds since the Unix epoch.
pub fn format_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
