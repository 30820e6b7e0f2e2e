//! One function per subcommand; each wires flags to an engine call and prints the result.

use crate::cli::{AddKey, Cli, Command, CorpusCommand, KeyCommand, VaultCommand};
use crate::output::{bytes, Bar, CliError};
use crate::settings::Settings;
use crate::unlock;
use sealback_core::keyslot::{ProtectorType, SlotTemplate};
use sealback_core::recovery::RecoveryKey;
use sealback_engine::backup::{backup, BackupOptions};
use sealback_engine::forget::{ForgetTarget, KeepPolicy};
use sealback_engine::prune::PruneOptions;
use sealback_engine::{check, restore, Repository};
use sealback_store::Store;
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::resolve(&cli.global)?;
    match cli.command {
        Command::Init {
            name,
            passkey,
            passkey_name,
            no_recovery_key,
            vault,
        } => {
            init(
                &settings,
                name,
                passkey.then_some(passkey_name),
                no_recovery_key,
                settings.vault_url(vault.as_deref()),
            )
            .await
        }
        Command::Backup {
            paths,
            tags,
            host,
            videos,
        } => {
            let mut repo = open(&settings).await?;
            let opts = BackupOptions {
                hostname: host.unwrap_or_else(hostname),
                tags,
                time_unix_ns: now_ns(),
                exclude_videos: !videos.unwrap_or(settings.device.include_videos),
                ..Default::default()
            };
            let bar = Bar::new(settings.json);
            let r = backup(&mut repo, &paths, &opts, &bar).await?;
            // The new snapshot is the newest: it moves this device's record on, no listing.
            record_seen(&repo, [(r.snapshot_id, opts.time_unix_ns)]);
            let s = &r.summary;
            if settings.json {
                println!(
                    "{}",
                    json!({
                        "snapshot_id": r.snapshot_id.to_hex(),
                        "files": s.files, "dirs": s.dirs,
                        "bytes_read": s.bytes_read, "bytes_added": s.bytes_added,
                        "blobs_added": s.blobs_added,
                        "videos_left_out": r.left_out.len(),
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
            rollback_check(&repo, &all);
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
            let mut repo = open(&settings).await?;
            let all = repo.list_snapshots().await?;
            rollback_check(&repo, &all);
            let (id, _) = sealback_engine::repo::pick_snapshot(&all, &snapshot)?;
            let bar = Bar::new(settings.json);
            let r = restore::restore(&mut repo, &id, &target, &bar).await?;
            if settings.json {
                println!(
                    "{}",
                    json!({"snapshot_id": id.to_hex(), "target": target, "files": r.files, "dirs": r.dirs, "bytes": r.bytes, "left_out": r.left_out})
                );
            } else {
                println!(
                    "restored snapshot {} into {}: {} files, {}",
                    id.short(),
                    target.display(),
                    r.files,
                    bytes(r.bytes)
                );
                crate::keys::say_left_out(&r.left_out);
            }
            Ok(())
        }
        Command::Check { read_data } => {
            let mut repo = open(&settings).await?;
            let bar = Bar::new(settings.json);
            let record = seen_record_path(&repo);
            let r = check::check_with_device_record(&mut repo, read_data, &bar, &record).await?;
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
        Command::Forget {
            snapshots,
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            keep_within,
            dry_run,
            prune,
        } => {
            let target = if snapshots.is_empty() {
                let policy = KeepPolicy {
                    last: keep_last,
                    hourly: keep_hourly,
                    daily: keep_daily,
                    weekly: keep_weekly,
                    monthly: keep_monthly,
                    yearly: keep_yearly,
                    within_ns: keep_within,
                };
                if policy.is_empty() {
                    return Err(CliError::Usage(
                        "no keep rule given (that would forget every snapshot): give at least one \
                         --keep-* rule, or the ids of the snapshots to forget"
                            .into(),
                    ));
                }
                ForgetTarget::Policy(policy)
            } else {
                ForgetTarget::Snapshots(snapshots)
            };
            let mut repo = open(&settings).await?;
            forget(&settings, &mut repo, &target, dry_run, prune).await?;
            if prune && !dry_run {
                prune_cmd(&settings, &mut repo, &PruneOptions::default()).await?;
            }
            Ok(())
        }
        Command::Prune {
            max_unused,
            dry_run,
            upgrade_packs,
        } => {
            let mut repo = open(&settings).await?;
            let opts = PruneOptions {
                max_unused_percent: max_unused,
                dry_run,
                upgrade_packs,
                ..Default::default()
            };
            prune_cmd(&settings, &mut repo, &opts).await
        }
        Command::Locks {
            remove_stale,
            remove_all,
        } => {
            let repo = open(&settings).await?;
            locks(&settings, &repo, remove_stale || remove_all, remove_all).await
        }
        Command::Schedule {
            paths,
            every,
            only_on_ac_power,
            print_systemd_unit,
            once,
            at,
        } => {
            let opts = crate::schedule::Options {
                paths,
                every,
                only_on_ac_power,
                once,
                at,
            };
            if print_systemd_unit {
                crate::schedule::print_systemd_unit(&settings)
            } else {
                crate::schedule::run(&settings, opts).await
            }
        }
        Command::Off { confirm } => crate::keys::turn_off(&settings, confirm).await,
        Command::Key { command } => match command {
            KeyCommand::List => key_list(&settings).await,
            KeyCommand::Add { kind } => key_add(&settings, kind).await,
            KeyCommand::Remove { id, rotate } => key_remove(&settings, &id, rotate).await,
            KeyCommand::CheckPassword => crate::keys::check_password(&settings).await,
            KeyCommand::Rename { id, name } => crate::keys::rename(&settings, &id, &name).await,
            KeyCommand::ChangePassword { vault, rotate } => {
                crate::keys::change_password(&settings, vault.as_deref(), rotate).await
            }
        },
        Command::Vault {
            command: VaultCommand::Serve(serve),
        } => {
            let crate::cli::VaultServeArgs {
                listen,
                database,
                key_file,
                hsm_module,
                hsm_token,
                tls_cert,
                tls_key,
                operator_keys,
                rate_per_account,
                rate_per_source,
                metrics_listen,
                dev,
                rollout,
                rp_id,
                rp_origins,
                passkey_sessions_as_proof,
                realm,
                realm_limit,
            } = *serve;
            // In --dev mode without --rp-id, the relying party is `localhost` and the origins
            // are what a demo on this computer uses: `sealback ui`'s page at
            // http://localhost:PORT and https://localhost (any port for both).
            let dev_origins = dev && rp_id.is_none() && rp_origins.is_empty();
            let rp_origins = if dev_origins {
                vec![
                    "https://localhost".to_string(),
                    "http://localhost".to_string(),
                ]
            } else {
                rp_origins
            };
            let relying_party = match rp_id.or_else(|| dev.then(|| "localhost".to_string())) {
                None => None,
                Some(id) => Some(sealback_vault::passkeys::RelyingParty {
                    origins: rp_origins
                        .iter()
                        .map(|o| {
                            url::Url::parse(o)
                                .map_err(|e| CliError::Usage(format!("--rp-origin {o:?}: {e}")))
                        })
                        .collect::<Result<_, _>>()?,
                    ..sealback_vault::passkeys::RelyingParty::new(&id)
                }),
            };
            let sealer = vault_sealer(key_file, hsm_module, hsm_token)?;
            let operator_keys = operator_keys
                .iter()
                .map(|k| {
                    sealback_proto::proof::OperatorKey::parse(k).map_err(|_| {
                        CliError::Usage(format!(
                            "--operator-key {k:?} is not a 32-byte Ed25519 public key in base64url or hex"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if dev && !listens_on_loopback(&listen) {
                return Err(CliError::Usage(format!(
                    "--dev accepts any account proof, so it serves only on a loopback address (--listen 127.0.0.1:PORT), not {listen}"
                )));
            }
            if operator_keys.is_empty() && !dev {
                return Err(CliError::Usage(
                    "the vault needs the messaging app operator's public key to check account proofs: --operator-key KEY (make one with `sealback vault operator-key`), or --dev for a demo".into(),
                ));
            }
            let options = sealback_vault::VaultOptions {
                dev_accounts: dev,
                operator_keys,
                account_rate: sealback_vault::limits::RateLimit {
                    per_minute: rate_per_account,
                },
                source_rate: sealback_vault::limits::RateLimit {
                    per_minute: rate_per_source,
                },
                rollout_file: rollout,
                relying_party,
                sessions_as_proof: passkey_sessions_as_proof,
                realm: realm.then_some(sealback_vault::realm::RealmOptions {
                    evaluation_limit: realm_limit,
                }),
                ..Default::default()
            };
            let tls = tls_cert.zip(tls_key);
            vault_serve(&listen, &database, sealer, tls, options, metrics_listen).await
        }
        Command::Vault {
            command: VaultCommand::OperatorKey { out },
        } => operator_key(&out, settings.json),
        Command::Vault {
            command:
                VaultCommand::IssueProof {
                    operator_key_file,
                    audience,
                    scope,
                    ttl,
                },
        } => {
            let audience = proof_audience(&settings, audience.as_deref()).await?;
            issue_proof(&settings, &operator_key_file, audience, scope, ttl)
        }
        Command::Demo { dir } => crate::demo::run(dir, settings.json).await,
        Command::Ui {
            listen,
            no_open,
            paths,
            test_mode,
        } => ui(&settings, listen, no_open, paths, test_mode).await,
        Command::Corpus { command } => corpus(command, settings.json),
    }
}

pub(crate) fn store(settings: &Settings) -> Result<Store, CliError> {
    Store::open(settings.repo()?).map_err(|e| CliError::Usage(e.to_string()))
}

/// Warns when the repository is older than what this device saw of it (SPEC §12, rollback);
/// moves this device's record forward otherwise.
fn rollback_check(
    repo: &Repository,
    snapshots: &[(sealback_core::Id, sealback_core::snapshot::Snapshot)],
) {
    record_seen(repo, snapshots.iter().map(|(id, s)| (*id, s.time_unix_ns)));
}

/// The record update itself. A record that cannot be written is logged: it is a hint, and the
/// command goes on.
pub(crate) fn record_seen(
    repo: &Repository,
    snapshots: impl IntoIterator<Item = (sealback_core::Id, i64)> + Clone,
) {
    let path = seen_record_path(repo);
    match sealback_engine::seen::check_and_record_times(&path, snapshots) {
        Ok(None) => {}
        Ok(Some(suspected)) => {
            tracing::warn!("rollback suspected");
            eprintln!("warning: {suspected}");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot keep this device's record of the newest snapshot")
        }
    }
}

/// This device's record of the newest snapshot it has seen of `repo`.
fn seen_record_path(repo: &Repository) -> std::path::PathBuf {
    let dir = crate::settings::data_dir().join("seen");
    sealback_engine::seen::record_path(&dir, &repo.config().repo_id.to_hex())
}

pub(crate) async fn open(settings: &Settings) -> Result<Repository, CliError> {
    unlock::open(settings, store(settings)?).await
}

pub(crate) fn unix_now() -> u64 {
    (now_ns() / 1_000_000_000) as u64
}

fn recovery_template(name: String) -> SlotTemplate {
    SlotTemplate {
        protector_type: ProtectorType::RECOVERY_KEY,
        name,
        created_unix: unix_now(),
        params: vec![],
    }
}

/// Shows a new recovery key once, or writes it to `out`.
fn deliver_recovery_key(key: &RecoveryKey, out: Option<&Path>, json: bool) -> serde_json::Value {
    match (out, json) {
        (Some(path), _) => {
            if !json {
                println!(
                    "Your recovery key was written to {} (readable only by you).",
                    path.display()
                );
                println!("Keep a copy somewhere safe and away from this device: without it, or another key, the backups cannot be opened by anyone.");
            }
            json!({"recovery_key_file": path})
        }
        (None, true) => json!({"recovery_key": key.display_groups().as_str()}),
        (None, false) => {
            println!();
            println!("Your recovery key — shown only this once:");
            println!();
            println!("    {}", key.display_groups().as_str());
            println!();
            println!("Write it down or store it in a password manager, away from this device.");
            println!(
                "Without it (or another key) nobody can open these backups: not the cloud, not us."
            );
            json!({})
        }
    }
}

const NO_RECOVERY_KEY_WARNING: &str = "warning: no recovery key was made. If you lose every passkey enrolled for this backup (deleted from your password manager, or the only device that holds it is lost), the backups are gone for good: nobody can open them. Add one at any time with `sealback key add recovery-key`.";

async fn init(
    settings: &Settings,
    name: String,
    passkey: Option<String>,
    no_recovery_key: bool,
    vault: Option<&str>,
) -> Result<(), CliError> {
    let store = store(settings)?;
    if Repository::exists(&store).await? {
        return Err(sealback_engine::Error::AlreadyExists(store.location().to_string()).into());
    }
    let mut rng = sealback_engine::os_rng();
    let recovery = (!no_recovery_key).then(|| RecoveryKey::generate(&mut rng));
    let key_file = settings
        .recovery_key_file
        .as_deref()
        .filter(|_| recovery.is_some());
    // Write the key file first: if that fails, no repository exists that nobody can open.
    if let (Some(path), Some(key)) = (key_file, &recovery) {
        write_secret_file(path, key.display_groups().as_bytes())?;
    }
    let result = async {
        let (first, secret) = match &passkey {
            Some(slot_name) => {
                let mut provider = unlock::passkey_provider(settings, true)?;
                passkey_template(settings, &mut provider, slot_name.clone(), vault).await?
            }
            None => {
                let key = recovery
                    .as_ref()
                    .expect("a recovery key unless a passkey is first");
                (recovery_template(name.clone()), key.to_secret())
            }
        };
        let mut repo = Repository::init(store.clone(), first, &secret).await?;
        if let (Some(_), Some(key)) = (&passkey, &recovery) {
            repo.add_slot(recovery_template(name.clone()), &key.to_secret())
                .await?;
        }
        Ok::<_, CliError>(repo)
    }
    .await;
    let repo = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(path) = key_file {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    let repo_id = repo.config().repo_id.to_hex();
    if !settings.json {
        println!("Encrypted backup is on for {}.", settings.repo()?);
        if passkey.is_some() {
            println!(
                "It unlocks with your passkey (store {}).",
                settings.passkey_store.display()
            );
        }
    }
    let mut out = json!({"repo": settings.repo()?, "repo_id": repo_id, "keys": repo.keyslots().slots.iter().map(|s| s.protector_type.name()).collect::<Vec<_>>()});
    if let Some(key) = &recovery {
        let delivered = deliver_recovery_key(key, key_file, settings.json);
        if let (Some(o), Some(d)) = (out.as_object_mut(), delivered.as_object()) {
            o.extend(d.clone());
        }
    } else {
        eprintln!("{NO_RECOVERY_KEY_WARNING}");
    }
    if settings.json {
        println!("{out}");
    }
    Ok(())
}

pub(crate) fn find_slot(
    keys: &sealback_core::keyslot::KeySlotFile,
    query: &str,
) -> Result<sealback_core::keyslot::SlotId, CliError> {
    let q = query.to_ascii_lowercase();
    let hits: Vec<_> = keys
        .slots
        .iter()
        .filter(|s| s.id.to_hex().starts_with(&q))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.id),
        [] => Err(CliError::Usage(format!(
            "no key matches {query:?} (see `sealback key list`)"
        ))),
        _ => Err(CliError::Usage(format!(
            "several keys match {query:?}; give more digits"
        ))),
    }
}

fn vault_account(settings: &Settings, what: &str) -> Result<String, CliError> {
    settings.account.clone().ok_or_else(|| {
        CliError::Usage(format!(
            "a {what} needs an account at the key vault: --account or SEALBACK_ACCOUNT"
        ))
    })
}

/// The key vault for a new key of `what`: the subcommand's --vault, else the configured one.
pub(crate) fn required_vault(
    settings: &Settings,
    explicit: Option<&str>,
    what: &str,
) -> Result<String, CliError> {
    settings.vault_url(explicit).map(str::to_string).ok_or_else(|| {
        CliError::Usage(format!(
            "{what} is held by a key vault: give its address with --vault-url (or SEALBACK_VAULT_URL, or `vault_url` in the config file)"
        ))
    })
}

/// Asks the vault whether its operator offers `protector` to this client now (staged
/// rollout), before anything is asked of the person; refuses with the vault's reason if not.
async fn require_offered(
    settings: &Settings,
    client: &sealback_vault_client::VaultClient,
    account: &str,
    protector: &str,
    what: &str,
    instead: &str,
) -> Result<(), CliError> {
    let offer = client
        .features(&sealback_proto::FeaturesRequest {
            account: account.into(),
            platform: "desktop".into(),
            region: settings.region.clone(),
            app_version: env!("CARGO_PKG_VERSION").into(),
        })
        .await
        .map_err(|e| unlock::vault_error(e, None))?;
    if offer.offers(protector) {
        return Ok(());
    }
    Err(CliError::Vault(format!(
        "the key vault does not offer {what} here yet: {}. {instead}",
        offer.reason(protector).unwrap_or("not offered")
    )))
}

/// A new vault-passkey slot: registers a passkey from `provider` at the vault.
async fn vault_passkey_template(
    settings: &Settings,
    provider: &mut sealback_passkey::SoftwareAuthenticator,
    vault: &str,
    slot_name: String,
) -> Result<(SlotTemplate, sealback_core::ProtectorSecret), CliError> {
    let account = vault_account(settings, "vault passkey")?;
    let client = unlock::vault_client(vault)?;
    require_offered(
        settings,
        &client,
        &account,
        sealback_proto::protectors::VAULT_PASSKEY,
        "passkeys held by the vault",
        "A 64-digit recovery key (`sealback key add recovery-key`) protects the backup instead",
    )
    .await?;
    let (params, secret) = client
        .passkey_register(&account, settings.account_proof(), None, provider)
        .await
        .map_err(|e| unlock::vault_error(e, None))?;
    Ok((
        SlotTemplate {
            protector_type: ProtectorType::VAULT_PASSKEY,
            name: slot_name,
            created_unix: unix_now(),
            params: params.encode(),
        },
        secret,
    ))
}

/// A new passkey slot: the PRF mode when the provider has PRF; otherwise, with a vault, the
/// vault's passkey mode (said plainly on stderr).
async fn passkey_template(
    settings: &Settings,
    provider: &mut sealback_passkey::SoftwareAuthenticator,
    slot_name: String,
    vault: Option<&str>,
) -> Result<(SlotTemplate, sealback_core::ProtectorSecret), CliError> {
    let made = sealback_passkey::enroll_template(
        provider,
        unlock::RP_ID,
        "sealback backup",
        slot_name.clone(),
        unix_now(),
        &mut sealback_engine::os_rng(),
    )
    .await;
    match (made, vault) {
        (Ok(made), _) => Ok(made),
        (Err(sealback_passkey::PasskeyError::NoPrf), Some(vault)) => {
            eprintln!(
                "This passkey provider does not support the PRF extension, so the passkey cannot derive the backup key on this device. \
                 Using the key vault's passkey mode instead: the vault at {vault} keeps half of this key sealed by its HSM and releases it only to this passkey \
                 (10 failed attempts destroy it); the other half stays with the backup."
            );
            vault_passkey_template(settings, provider, vault, slot_name).await
        }
        (Err(e), _) => Err(unlock::passkey_error(e)),
    }
}

async fn key_add(settings: &Settings, kind: AddKey) -> Result<(), CliError> {
    match kind {
        AddKey::Passkey { name, vault } => {
            let mut provider = unlock::passkey_provider(settings, true)?;
            let mut repo =
                unlock::open_with(settings, store(settings)?, Some(&mut provider)).await?;
            let vault = settings.vault_url(vault.as_deref());
            let (template, secret) =
                passkey_template(settings, &mut provider, name.clone(), vault).await?;
            let kind = template.protector_type.name();
            let id = repo.add_slot(template, &secret).await?;
            if settings.json {
                println!("{}", json!({"id": id.to_hex(), "type": kind, "name": name}));
            } else {
                println!(
                    "Added {kind} {name:?} ({}). It unlocks this backup from now on.",
                    id.to_hex()
                );
            }
        }
        AddKey::VaultPasskey { vault, name } => {
            let vault = required_vault(settings, vault.as_deref(), "a vault passkey")?;
            let mut provider = unlock::passkey_provider(settings, true)?;
            let mut repo =
                unlock::open_with(settings, store(settings)?, Some(&mut provider)).await?;
            let (template, secret) =
                vault_passkey_template(settings, &mut provider, &vault, name.clone()).await?;
            let id = repo.add_slot(template, &secret).await?;
            if settings.json {
                println!(
                    "{}",
                    json!({"id": id.to_hex(), "type": "vault-passkey", "name": name, "vault": vault})
                );
            } else {
                println!(
                    "Added vault passkey {name:?} ({}): the key vault at {vault} releases its half of this key to your passkey.",
                    id.to_hex()
                );
                println!("The vault allows 10 failed attempts, then destroys this key for good.");
            }
        }
        AddKey::RealmPassword { name } => crate::realms::add(settings, &name).await?,
        AddKey::Password { vault, name } => {
            let vault = required_vault(settings, vault.as_deref(), "a password key")?;
            let account = vault_account(settings, "password key")?;
            let client = unlock::vault_client(&vault)?;
            require_offered(
                settings,
                &client,
                &account,
                sealback_proto::protectors::PASSWORD,
                "password keys",
                "A passkey (`sealback key add passkey`) or a 64-digit recovery key (`sealback key add recovery-key`) protects the backup instead",
            )
            .await?;
            let mut repo = open(settings).await?;
            sealback_engine::keychange::refuse_second_password(repo.keyslots())?;
            let password = unlock::read_password(true)?;
            let secret = sealback_core::ProtectorSecret::new({
                let mut b = vec![0u8; 32];
                rand_core::Rng::fill_bytes(&mut sealback_engine::os_rng(), &mut b);
                b
            });
            let params = client
                .register(&account, settings.account_proof(), &password, &secret, None)
                .await
                .map_err(|e| unlock::vault_error(e, None))?;
            let template = sealback_vault_client::password_template(name.clone(), &params);
            let id = repo.add_slot(template, &secret).await?;
            crate::keys::remember_password(&repo, &password);
            if settings.json {
                println!(
                    "{}",
                    json!({"id": id.to_hex(), "type": "vault-password", "name": name, "vault": vault, "account": account})
                );
            } else {
                println!(
                    "Added password key {name:?} ({}) held by the key vault at {vault}.",
                    id.to_hex()
                );
                println!("On a new device, the repository, the account ({account}) and the password open the backup.");
                println!("The vault allows 10 wrong passwords, then destroys this key for good.");
            }
        }
        AddKey::RecoveryKey { name, out } => {
            let mut repo = open(settings).await?;
            let key = RecoveryKey::generate(&mut sealback_engine::os_rng());
            if let Some(path) = &out {
                write_secret_file(path, key.display_groups().as_bytes())?;
            }
            let id = match repo
                .add_slot(recovery_template(name.clone()), &key.to_secret())
                .await
            {
                Ok(id) => id,
                Err(e) => {
                    if let Some(path) = &out {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(e.into());
                }
            };
            if !settings.json {
                println!("Added recovery key {name:?} ({}).", id.to_hex());
            }
            let mut v = json!({"id": id.to_hex(), "type": "recovery-key", "name": name});
            let delivered = deliver_recovery_key(&key, out.as_deref(), settings.json);
            if let (Some(o), Some(d)) = (v.as_object_mut(), delivered.as_object()) {
                o.extend(d.clone());
            }
            if settings.json {
                println!("{v}");
            }
        }
    }
    Ok(())
}

async fn key_remove(settings: &Settings, query: &str, rotate: bool) -> Result<(), CliError> {
    let mut repo = unlock::open_for_removal(settings, store(settings)?).await?;
    let id = find_slot(repo.keyslots(), query)?;
    // The name from the keys file verified at unlock (not the drive's unverified copy).
    let name = repo
        .keyslots()
        .slots
        .iter()
        .find(|s| s.id == id)
        .map(|s| repo.keyslots().display_name(s).into_owned())
        .unwrap_or_default();
    let removed = repo.remove_slot(id, rotate).await?;
    unlock::remember_key_epoch(&repo);
    if settings.json {
        println!(
            "{}",
            json!({"removed": id.to_hex(), "name": name, "rotated": rotate, "epoch": repo.keyring().current_epoch(), "dropped_unreadable_slots": removed.dropped_foreign_slots})
        );
        return Ok(());
    }
    println!("Removed key {name:?} ({}).", id.to_hex());
    match removed.new_epoch {
        Some(epoch) => {
            println!("The backup key was replaced (key epoch {epoch}) and sealed to the remaining keys only.");
            println!("Backups made from now on cannot be opened with the removed key.");
            println!("Snapshots made before stay readable to whoever holds the removed key until they are deleted: remove old snapshots once new backups exist.");
            println!("If a device was lost, also sign it out of the cloud drive: with write access it could still tamper with the repository.");
        }
        None => {
            println!("The backup key itself was not replaced: a device that ever unlocked this backup with the removed key still knows it.");
            println!("After losing a device, use `sealback key remove ID --rotate`.");
        }
    }
    if removed.dropped_foreign_slots > 0 {
        println!(
            "note: {} key(s) of a newer sealback could not be resealed and were dropped.",
            removed.dropped_foreign_slots
        );
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
    let (config, keyslots) = Repository::read_keyslots(&store).await?;
    let used = unlock::last_used(config.repo_id);
    if settings.json {
        let v: Vec<_> = keyslots
            .slots
            .iter()
            .map(|s| {
                let mut v = json!({"id": s.id.to_hex(), "type": s.protector_type.name(), "name": keyslots.display_name(s), "created_unix": s.created_unix, "last_used_unix": used.get(&s.id.to_hex())});
                if let Some(realms) = crate::realms::describe(s) {
                    v["realms"] = realms;
                }
                v
            })
            .collect();
        println!(
            "{}",
            json!({"epoch": keyslots.current_epoch, "keys": v, "unreadable_slots": keyslots.foreign_slots.len(), "verified": false})
        );
    } else {
        println!(
            "{:<34} {:<16} {:<20} {:<20} name",
            "id", "type", "created (UTC)", "last used here"
        );
        for s in &keyslots.slots {
            println!(
                "{:<34} {:<16} {:<20} {:<20} {}",
                s.id.to_hex(),
                s.protector_type.name(),
                format_time(s.created_unix as i64 * 1_000_000_000),
                used.get(&s.id.to_hex())
                    .map(|t| format_time(*t as i64 * 1_000_000_000))
                    .unwrap_or_else(|| "-".into()),
                keyslots.display_name(s)
            );
            if let Some(realms) = crate::realms::describe(s) {
                println!("{:<34} {}", "", crate::realms::describe_line(&realms));
            }
        }
        if !keyslots.foreign_slots.is_empty() {
            println!(
                "({} slots of a newer format this version cannot use)",
                keyslots.foreign_slots.len()
            );
        }
        // Listing asks for no key (so it can help choose which key to unlock with), so the
        // list is the drive's copy: whoever writes there could have swapped names.
        println!(
            "Not verified: without a key, this is the list as the drive stores it, and whoever can write there could have changed it. \
             `sealback key remove` and `key rename` unlock first and name the key they change from the verified list."
        );
    }
    Ok(())
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub use sealback_engine::lock::hostname;

async fn forget(
    settings: &Settings,
    repo: &mut Repository,
    target: &ForgetTarget,
    dry_run: bool,
    prune_next: bool,
) -> Result<(), CliError> {
    let r = sealback_engine::forget::forget(repo, target, dry_run).await?;
    if settings.json {
        let v: Vec<_> = r
            .decisions
            .iter()
            .map(|d| {
                json!({
                    "id": d.id.to_hex(), "time_unix_ns": d.snapshot.time_unix_ns,
                    "hostname": d.snapshot.hostname, "paths": d.snapshot.paths,
                    "keep": d.keep(), "kept_by": d.kept_by,
                })
            })
            .collect();
        println!(
            "{}",
            json!({"dry_run": dry_run, "removed": r.removed(), "snapshots": v})
        );
        return Ok(());
    }
    let mut group = None;
    for d in &r.decisions {
        let g = (&d.snapshot.hostname, &d.snapshot.paths);
        if group != Some(g) {
            group = Some(g);
            println!("host {}, paths {}:", g.0, g.1.join(" "));
        }
        println!(
            "  {} {:<10} {}  {}",
            if d.keep() { "keep  " } else { "remove" },
            d.id.short(),
            format_time(d.snapshot.time_unix_ns),
            d.kept_by.join(", ")
        );
    }
    let kept = r.decisions.len() - r.removed();
    if dry_run {
        println!(
            "dry run: would remove {} snapshot(s) and keep {kept}; nothing changed",
            r.removed()
        );
    } else {
        println!(
            "removed {} snapshot(s), kept {kept}{}",
            r.removed(),
            if prune_next {
                ""
            } else {
                "; run `sealback prune` to delete the data only they used"
            }
        );
    }
    Ok(())
}

async fn prune_cmd(
    settings: &Settings,
    repo: &mut Repository,
    opts: &PruneOptions,
) -> Result<(), CliError> {
    let bar = Bar::new(settings.json);
    let r = sealback_engine::prune::prune(repo, opts, &bar).await?;
    if settings.json {
        println!(
            "{}",
            json!({
                "dry_run": r.dry_run, "snapshots": r.snapshots, "blobs_used": r.blobs_used,
                "packs_kept": r.packs_kept, "packs_deleted": r.packs_deleted,
                "packs_repacked": r.packs_repacked, "packs_written": r.packs_written,
                "orphan_packs_deleted": r.orphan_packs_deleted, "bytes_deleted": r.bytes_deleted,
                "bytes_repacked": r.bytes_repacked, "bytes_used": r.bytes_used,
                "bytes_unused_left": r.bytes_unused_left,
                "index_files_replaced": r.index_files_replaced,
                "duration_s": r.duration.as_secs_f64(),
            })
        );
    } else {
        println!(
            "{}{} packs unused, {} rewritten ({} copied), {} left by interrupted backups; {} freed; {} in use by {} snapshots, {} unused left in kept packs ({:.1} s)",
            if r.dry_run { "dry run, nothing changed: " } else { "" },
            r.packs_deleted,
            r.packs_repacked,
            bytes(r.bytes_repacked),
            r.orphan_packs_deleted,
            bytes(r.bytes_deleted.saturating_sub(r.bytes_repacked)),
            bytes(r.bytes_used),
            r.snapshots,
            bytes(r.bytes_unused_left),
            r.duration.as_secs_f64()
        );
    }
    Ok(())
}

async fn locks(
    settings: &Settings,
    repo: &Repository,
    remove: bool,
    remove_all: bool,
) -> Result<(), CliError> {
    let now = repo.clock().now_unix_ns();
    let (found, removed) = if remove {
        (
            vec![],
            sealback_engine::lock::remove_locks(repo, remove_all).await?,
        )
    } else {
        (sealback_engine::lock::list_locks(repo).await?, vec![])
    };
    if settings.json {
        let show = |l: &sealback_engine::lock::FoundLock| json!({"id": l.id.to_hex(), "stale": l.stale, "description": l.describe(now)});
        println!(
            "{}",
            json!({
                "locks": found.iter().map(show).collect::<Vec<_>>(),
                "removed": removed.iter().map(show).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    if remove {
        for l in &removed {
            println!("removed {}", l.describe(now));
        }
        println!("{} lock(s) removed", removed.len());
    } else if found.is_empty() {
        println!("no locks: nothing is working on this repository");
    } else {
        for l in &found {
            println!(
                "{} {}{}",
                l.id.short(),
                l.describe(now),
                if l.stale { " (stale)" } else { "" }
            );
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, from nanoseconds since the Unix epoch.
pub fn format_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = sealback_engine::forget::civil_from_days(secs.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The vault's sealing key: in a PKCS#11 token, or (weaker) in a key file.
fn vault_sealer(
    key_file: Option<std::path::PathBuf>,
    hsm_module: Option<std::path::PathBuf>,
    hsm_token: Option<String>,
) -> Result<std::sync::Arc<dyn sealback_vault::sealer::Sealer>, CliError> {
    use sealback_vault::sealer::{Pkcs11Sealer, SoftwareSealer};
    match (hsm_module, hsm_token, key_file) {
        (Some(module), Some(token), _) => {
            let pin = zeroize::Zeroizing::new(std::env::var("SEALBACK_HSM_PIN").map_err(|_| {
                CliError::Usage("the HSM token's user PIN is needed: set SEALBACK_HSM_PIN".into())
            })?);
            Ok(std::sync::Arc::new(
                Pkcs11Sealer::open(&module, &token, &pin).map_err(CliError::Other)?,
            ))
        }
        (_, _, Some(file)) => Ok(std::sync::Arc::new(
            SoftwareSealer::open_or_create(&file)
                .map_err(|e| CliError::Other(format!("vault key file {}: {e}", file.display())))?,
        )),
        _ => Err(CliError::Usage(
            "give --key-file FILE, or --hsm-module PATH with --hsm-token LABEL".into(),
        )),
    }
}

fn operator_key(out: &std::path::Path, json: bool) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let (signer, pkcs8) = sealback_proto::proof::OperatorSigner::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| CliError::Other(format!("cannot create {}: {e}", out.display())))?;
    file.write_all(&pkcs8)
        .and_then(|_| file.sync_all())
        .map_err(|e| CliError::Other(format!("cannot write {}: {e}", out.display())))?;
    let public = signer.public_key().to_text();
    if json {
        println!("{}", json!({ "public_key": public, "file": out }));
    } else {
        println!("{public}");
        eprintln!(
            "Wrote the operator's private key to {}. Start vaults with --operator-key {public}",
            out.display()
        );
    }
    Ok(())
}

/// The vault a proof is for: `--audience`, or the vault at the configured address.
async fn proof_audience(
    settings: &Settings,
    audience: Option<&str>,
) -> Result<sealback_proto::proof::VaultId, CliError> {
    if let Some(text) = audience {
        return sealback_proto::proof::parse_vault_id(text).ok_or_else(|| {
            CliError::Usage(format!(
                "--audience {text:?} is not a vault id (32 lower-case hex digits); or give the vault's address with --vault-url to read its id"
            ))
        });
    }
    let url = settings.vault_url(None).ok_or_else(|| {
        CliError::Usage(
            "a proof is for one key vault: give its id with --audience, or its address with --vault-url (or SEALBACK_VAULT_URL)".into(),
        )
    })?;
    crate::unlock::vault_client(url)?
        .vault_id()
        .await
        .map_err(|e| crate::unlock::vault_error(e, None))
}

fn issue_proof(
    settings: &Settings,
    key_file: &std::path::Path,
    audience: sealback_proto::proof::VaultId,
    scope: crate::cli::ProofScope,
    ttl: i64,
) -> Result<(), CliError> {
    use sealback_proto::proof::{Claims, OperatorSigner, Scope, MAX_LIFETIME};
    let account = settings.account.clone().ok_or_else(|| {
        CliError::Usage("a proof is for an account: --account or SEALBACK_ACCOUNT".into())
    })?;
    if !(1..=MAX_LIFETIME).contains(&ttl) {
        return Err(CliError::Usage(format!(
            "--ttl must be 1..{MAX_LIFETIME} seconds"
        )));
    }
    let pkcs8 = zeroize::Zeroizing::new(
        std::fs::read(key_file)
            .map_err(|e| CliError::Other(format!("cannot read {}: {e}", key_file.display())))?,
    );
    let signer = OperatorSigner::from_pkcs8(&pkcs8).map_err(|_| {
        CliError::Usage(format!(
            "{} is not an operator key (make one with `sealback vault operator-key`)",
            key_file.display()
        ))
    })?;
    let now = unix_now() as i64;
    let token = signer.issue(&Claims {
        account,
        scope: match scope {
            crate::cli::ProofScope::Register => Scope::Register,
            crate::cli::ProofScope::Login => Scope::Login,
        },
        aud: Some(audience),
        iat: now,
        exp: now + ttl,
    });
    println!("{token}");
    Ok(())
}

/// Whether `--listen` names a loopback address (`127.0.0.1:P`, `[::1]:P`, `localhost:P`).
fn listens_on_loopback(listen: &str) -> bool {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen
            .rsplit_once(':')
            .is_some_and(|(host, _)| host == "localhost"),
    }
}

async fn vault_serve(
    listen: &str,
    database: &str,
    sealer: std::sync::Arc<dyn sealback_vault::sealer::Sealer>,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    options: sealback_vault::VaultOptions,
    metrics_listen: Option<String>,
) -> Result<(), CliError> {
    use sealback_vault::{db::Db, SystemClock, Vault};
    use std::sync::Arc;
    let db = Db::open(database)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let dev = options.dev_accounts;
    if dev {
        eprintln!("WARNING: development mode: any account proof is accepted. Never use this for real accounts.");
    }
    eprintln!("records are sealed with a {}", sealer.describe());
    let vault = Arc::new(
        Vault::new(db, sealer, options, Arc::new(SystemClock))
            .await
            .map_err(|e| CliError::Other(e.to_string()))?,
    );
    // What the operator's proofs name as their audience (`vault issue-proof --audience`).
    eprintln!("vault id: {}", vault.id());
    // Printed after the API's URL (the first line), so scripts find both.
    let mut metrics_url = None;
    if let Some(addr) = metrics_listen {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| CliError::Other(format!("cannot listen on {addr} for metrics: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| CliError::Other(e.to_string()))?;
        metrics_url = Some(format!("http://{bound}/metrics"));
        let router = sealback_vault::http::metrics_router(vault.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(%e, "metrics listener stopped");
            }
        });
    }
    let shutdown = async {
        shutdown_signal().await;
        eprintln!("shutting down");
    };
    let announce = |scheme: &str, addr: std::net::SocketAddr| {
        use std::io::Write as _;
        println!("{scheme}://{addr}");
        if let Some(m) = &metrics_url {
            println!("metrics: {m}");
        }
        let _ = std::io::stdout().flush();
    };
    if let Some((cert, key)) = tls {
        let addr: std::net::SocketAddr = listen
            .parse()
            .map_err(|e| CliError::Usage(format!("--listen {listen}: {e}")))?;
        return sealback_vault::http::serve_tls(
            addr,
            vault,
            &cert,
            &key,
            |a| announce("https", a),
            shutdown,
        )
        .await
        .map_err(|e| CliError::Other(format!("cannot serve TLS on {listen}: {e}")));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Other(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Other(e.to_string()))?;
    sealback_vault::http::refuse_plain_http_off_loopback(addr)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    announce("http", addr);
    sealback_vault::http::serve(listener, vault, shutdown)
        .await
        .map_err(|e| CliError::Other(e.to_string()))
}

async fn ui(
    settings: &Settings,
    listen: std::net::SocketAddr,
    no_open: bool,
    paths: Vec<std::path::PathBuf>,
    test_mode: bool,
) -> Result<(), CliError> {
    let paths = if paths.is_empty() {
        settings.paths.clone()
    } else {
        paths
    };
    let paths = paths
        .into_iter()
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .collect();
    let config = sealback_ui::UiConfig {
        repo: settings.repo()?.to_string(),
        paths,
        hostname: hostname(),
        vault: sealback_ui::VaultSettings {
            url: settings.vault_url.clone(),
            account: settings.account.clone(),
            proof: settings.account_proof.as_ref().map(|p| p.0.clone()),
        },
        seen_dir: Some(crate::settings::data_dir().join("seen")),
        label_file: Some(crate::settings::data_dir().join("page-label")),
    };
    let ui_settings = sealback_ui::UiSettings {
        device: settings.device,
        config_file: settings.config_path.clone(),
        test_mode,
        password_check_dir: Some(crate::keys::password_check_dir()),
    };
    let server = sealback_ui::UiServer::bind_with(listen, config, ui_settings)
        .await
        .map_err(CliError::Usage)?;
    {
        use std::io::Write as _;
        println!("{}", server.url());
        let _ = std::io::stdout().flush();
    }
    eprintln!("sealback ui: open the address above in your browser. It works only on this computer; press Ctrl+C to stop.");
    // The opener gets a 0600 file that redirects, never the address: a command line is
    // visible to every local user, and the address holds the launch code.
    let launch = (!no_open)
        .then(|| server.write_launch_file(&std::env::temp_dir()).ok())
        .flatten();
    if let Some(file) = &launch {
        // Best effort: a desktop without xdg-open just uses the printed address.
        let _ = std::process::Command::new("xdg-open")
            .arg(file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let served = server.serve(shutdown_signal()).await;
    if let Some(dir) = launch.as_deref().and_then(std::path::Path::parent) {
        let _ = std::fs::remove_dir_all(dir);
    }
    served.map_err(CliError::Other)
}

fn corpus(command: CorpusCommand, json: bool) -> Result<(), CliError> {
    match command {
        CorpusCommand::Generate { dir, size, seed } => {
            if dir.exists() {
                return Err(CliError::Usage(format!(
                    "{} exists; give a new folder",
                    dir.display()
                )));
            }
            let spec = match size {
                Some(bytes) => sealback_corpus::ChatStoreSpec::sized(seed, bytes),
                None => sealback_corpus::ChatStoreSpec::demo(seed),
            };
            let stats = sealback_corpus::generate(&dir, &spec)
                .map_err(|e| CliError::Other(e.to_string()))?;
            if json {
                println!(
                    "{}",
                    json!({"dir": dir, "files": stats.files, "media_bytes": stats.media_bytes, "messages": stats.messages})
                );
            } else {
                println!(
                    "wrote a chat store to {}: {} files, {} of media, {} messages",
                    dir.display(),
                    stats.files,
                    bytes(stats.media_bytes),
                    stats.messages
                );
            }
            Ok(())
        }
        CorpusCommand::Day {
            dir,
            messages,
            photos,
            deleted,
            seed,
        } => {
            let day = sealback_corpus::DayOfUse {
                seed,
                new_messages: messages,
                new_photos: photos,
                deleted_media: deleted,
            };
            let stats = sealback_corpus::apply_day(&dir, &day)
                .map_err(|e| CliError::Other(e.to_string()))?;
            if json {
                println!(
                    "{}",
                    json!({"dir": dir, "messages": stats.messages, "files": stats.files, "media_bytes": stats.media_bytes, "deleted": stats.deleted})
                );
            } else {
                println!(
                    "{}: {} messages and {} new files ({}) added, {} media deleted",
                    dir.display(),
                    stats.messages,
                    stats.files,
                    bytes(stats.media_bytes),
                    stats.deleted
                );
            }
            Ok(())
        }
        CorpusCommand::Compare { original, restored } => {
            let c = sealback_corpus::compare(&original, &restored)
                .map_err(|e| CliError::Other(e.to_string()))?;
            if json {
                println!(
                    "{}",
                    json!({"identical": c.differences.is_empty(), "files": c.files, "databases": c.databases, "rows": c.rows, "differences": c.differences})
                );
            } else if c.differences.is_empty() {
                println!(
                    "identical: {} files, {} databases, {} rows",
                    c.files, c.databases, c.rows
                );
            } else {
                for d in &c.differences {
                    println!("differs: {d}");
                }
            }
            if c.differences.is_empty() {
                Ok(())
            } else {
                Err(CliError::Integrity(format!(
                    "the chat stores differ in {} places",
                    c.differences.len()
                )))
            }
        }
    }
}

/// Completes on Ctrl+C or SIGTERM: how the long-running servers (`vault serve`, `ui`) stop.
pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
