//! `sealback schedule`: automatic backups as a foreground service (engine `schedule` decides).

use crate::commands::{hostname, now_ns, open, record_seen};
use crate::output::{Bar, CliError};
use crate::settings::Settings;
use sealback_engine::backup::{backup, BackupOptions};
use sealback_engine::schedule::{self, Decision, Power, Schedule};
use sealback_engine::Repository;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// How often the service looks again at most: the power state and a clock that jumped (a
/// laptop waking up) are noticed within this time.
const LOOK_AGAIN: Duration = Duration::from_secs(15 * 60);

/// The command's flags.
pub struct Options {
    pub paths: Vec<PathBuf>,
    pub every: Option<String>,
    pub only_on_ac_power: bool,
    pub once: bool,
    pub at: Option<i64>,
}

/// The schedule: flags over the config file.
fn effective_schedule(settings: &Settings, opts: &Options) -> Result<Schedule, CliError> {
    let mut schedule = settings.device.schedule;
    if let Some(every) = &opts.every {
        schedule.frequency = sealback_engine::device_settings::parse_frequency(every)
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    schedule.only_on_ac_power |= opts.only_on_ac_power;
    Ok(schedule)
}

pub async fn run(settings: &Settings, opts: Options) -> Result<(), CliError> {
    let schedule = effective_schedule(settings, &opts)?;
    if schedule.frequency == schedule::Frequency::Off {
        return Err(CliError::Usage(
            "automatic backups are off: give --every daily (or weekly, monthly), or set `schedule = \"daily\"` in the config file".into(),
        ));
    }
    let paths = if opts.paths.is_empty() {
        settings.paths.clone()
    } else {
        opts.paths.clone()
    };
    if paths.is_empty() {
        return Err(CliError::Usage(
            "nothing to back up: give --path CHAT_STORE, or `paths = [...]` in the config file"
                .into(),
        ));
    }
    let mut repo = open(settings).await?;
    let power = schedule::system_power();
    if schedule.only_on_ac_power && power == Power::Unknown {
        eprintln!("note: this computer does not say whether it runs on AC power, so automatic backups do not wait for it");
    }
    loop {
        let now = opts
            .at
            .map_or_else(now_ns, |s| s.saturating_mul(1_000_000_000));
        let decision = look(settings, &mut repo, &schedule, &paths, now).await?;
        if opts.once {
            return Ok(());
        }
        let wait = match decision {
            Decision::NotYet { due_unix_ns } => {
                Duration::from_nanos(due_unix_ns.saturating_sub(now).max(0) as u64).min(LOOK_AGAIN)
            }
            _ => LOOK_AGAIN,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = crate::commands::shutdown_signal() => return Ok(()),
        }
    }
}

/// One look: decides, backs up if due, and says what happens next.
async fn look(
    settings: &Settings,
    repo: &mut Repository,
    schedule: &Schedule,
    paths: &[PathBuf],
    now: i64,
) -> Result<Decision, CliError> {
    let host = hostname();
    repo.refresh_index().await?;
    let last = schedule::last_backup_ns(repo, &host).await?;
    let decision = schedule::decide(schedule, last, now, schedule::system_power());
    match decision {
        Decision::Due => {
            let opts = BackupOptions {
                hostname: host.clone(),
                tags: vec!["scheduled".into()],
                time_unix_ns: now,
                ..Default::default()
            };
            let r = backup(repo, paths, &opts, &Bar::new(true)).await?;
            record_seen(repo, [(r.snapshot_id, now)]);
            let next = schedule::next_due(schedule, Some(now));
            report(settings, "backed_up", Some(r.snapshot_id.to_hex()), next);
        }
        Decision::NotYet { due_unix_ns } => report(settings, "not_due", None, Some(due_unix_ns)),
        Decision::WaitingForPower { due_unix_ns } => {
            report(settings, "waiting_for_ac_power", None, Some(due_unix_ns))
        }
        Decision::Off => {}
    }
    Ok(decision)
}

fn report(settings: &Settings, what: &str, snapshot: Option<String>, next: Option<i64>) {
    if settings.json {
        println!(
            "{}",
            json!({"event": what, "snapshot_id": snapshot, "next_due_unix_ns": next})
        );
        return;
    }
    let next = next
        .map(crate::commands::format_time)
        .unwrap_or_else(|| "-".into());
    match what {
        "backed_up" => println!(
            "backed up (snapshot {}); next backup due {next} UTC",
            snapshot.unwrap_or_default()
        ),
        "waiting_for_ac_power" => {
            println!("a backup is due, waiting for AC power (due since {next} UTC)")
        }
        _ => println!("next backup due {next} UTC"),
    }
}

/// `sealback schedule --print-systemd-unit`.
pub fn print_systemd_unit(settings: &Settings) -> Result<(), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Other(format!("cannot find this program's path: {e}")))?;
    let mut args = vec![exe.display().to_string()];
    if let Some(repo) = &settings.repo {
        args.push(format!("--repo={repo}"));
    }
    if let Some(config) = &settings.config_path {
        args.push(format!("--config={}", config.display()));
    }
    args.push("schedule".into());
    let key = settings
        .recovery_key_file
        .as_ref()
        .map(|p| format!("Environment=SEALBACK_RECOVERY_KEY_FILE={}\n", p.display()))
        .unwrap_or_else(|| "# It must unlock without asking: set SEALBACK_RECOVERY_KEY_FILE (or SEALBACK_PASSWORD, SEALBACK_PASSKEY_PIN) here.\n".into());
    print!(
        "# ~/.config/systemd/user/sealback-schedule.service\n\
         # Then: systemctl --user daemon-reload && systemctl --user enable --now sealback-schedule\n\
         [Unit]\n\
         Description=sealback automatic end-to-end encrypted chat backups\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}\n\
         {key}\
         Restart=on-failure\n\
         RestartSec=5min\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        args.join(" ")
    );
    Ok(())
}
