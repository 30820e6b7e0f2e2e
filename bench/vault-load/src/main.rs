//! # sealback-vault-load: how many logins a vault serves, and how fast
//!
//! Starts `sealback vault serve` (SQLite, and PostgreSQL in a throwaway server), registers
//! accounts, then runs N concurrent clients that each log in over and over (login start, which
//! the vault counts durably before answering, then login finish, which resets the count), and
//! reports logins per second and the p50/p99 latency of a whole login.
//!
//! The clients use the vault's OPAQUE suite with the key stretching replaced by the identity
//! function: the vault never runs the client's Argon2id (64 MiB, ~0.15 s a guess, which is the
//! point of it), so a load generator that ran it would measure itself, not the vault. The
//! messages the vault handles are byte-for-byte the same shape.
//!
//! With `--protector passkey` each client is instead a software passkey provider without PRF
//! (passkey-rs, its store under a cheap test KDF) and each login is a passkey login of the
//! vault-passkey protector: login start (counted durably), an ECDSA P-256 assertion, login
//! finish (verified by webauthn-rs; the counter is stored and the vault share released).
//!
//! With `--protector realm` three vaults are started in realm mode (tvr1, SPEC §7f) and each
//! operation is a whole recovery of a 2-of-3 realm password through the realm client of
//! `sealback-vault-client`: stretch (Argon2id at a test cost of 64 KiB, 1 pass: the realms never
//! run it), blind, two evaluations (each counted durably by its realm before it answers), both
//! DLEQ proofs checked, combine, finalize, then a confirm to each of the three realms (which
//! resets its count). Realm evaluations per second are twice the recoveries per second.
//!
//! ```text
//! cargo run --release -p sealback-vault-load -- --clients 64,512 --seconds 10
//! cargo run --release -p sealback-vault-load -- --url http://127.0.0.1:8443   # a running vault
//! ```

use anyhow::{bail, Context, Result};
use clap::Parser;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand08::rngs::OsRng;
use sealback_proto as proto;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The vault's suite, without client-side key stretching (see the crate doc).
struct LoadSuite;
impl opaque_ke::CipherSuite for LoadSuite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2_010::Sha512>;
    type Ksf = opaque_ke::ksf::Identity;
}

#[derive(Parser)]
#[command(about = "Logins per second and latency of a sealback key vault")]
struct Args {
    /// A running vault in development mode with rate limits off; without it, vaults are
    /// started for each database.
    #[arg(long)]
    url: Option<String>,
    /// Databases to test when starting vaults.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    database: Vec<String>,
    /// Concurrent clients, one run each.
    #[arg(long, value_delimiter = ',', default_value = "64,512")]
    clients: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The sealback binary (default: next to this one).
    #[arg(long)]
    sealback: Option<PathBuf>,
    /// Print one JSON object per run.
    #[arg(long)]
    json: bool,
    /// What each login is: `password` (OPAQUE) or `passkey` (a WebAuthn assertion).
    #[arg(long, value_enum, default_value_t = Protector::Password)]
    protector: Protector,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Protector {
    Password,
    Passkey,
    Realm,
}

/// One client's passkey provider and the slot it logs in to.
struct PasskeyClient {
    provider: sealback_passkey::SoftwareAuthenticator,
    params: sealback_vault_client::VaultPasskeyParams,
    secret: Vec<u8>,
    _dir: tempfile::TempDir,
}

async fn passkey_client(url: &str, account: &str) -> Result<PasskeyClient> {
    let dir = tempfile::tempdir()?;
    let mut provider = sealback_passkey::SoftwareAuthenticator::open_or_create(
        &dir.path().join("store.sbpk"),
        sealback_passkey::store::Pin::new("load".into()),
        false,
        sealback_core::passkey::KdfParams {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (params, secret) = sealback_vault_client::VaultClient::new(url)?
        .passkey_register(account, "", None, &mut provider)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(PasskeyClient {
        provider,
        params,
        secret: secret.expose_secret().to_vec(),
        _dir: dir,
    })
}

async fn passkey_login(
    client: &mut PasskeyClient,
    vault: &sealback_vault_client::VaultClient,
) -> Result<()> {
    let (secret, _) = vault
        .passkey_login(&client.params, "", &mut client.provider)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if secret.expose_secret() != client.secret.as_slice() {
        bail!("the vault released another share");
    }
    Ok(())
}

struct Vault {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Vault {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_vault(
    bin: &PathBuf,
    database: &str,
    dir: tempfile::TempDir,
    realm: bool,
) -> Result<Vault> {
    let key = dir.path().join("vault.key");
    let realm_args: &[&str] = if realm { &["--realm"] } else { &[] };
    let mut child = Command::new(bin)
        .args(["vault", "serve", "--listen", "127.0.0.1:0", "--dev"])
        .args(realm_args)
        .args(["--rate-per-account", "0", "--rate-per-source", "0"])
        .args(["--database", database, "--key-file"])
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    if !line.starts_with("http://") {
        bail!("the vault did not start (said {line:?})");
    }
    Ok(Vault {
        child,
        url: line.trim().to_string(),
        _dir: dir,
    })
}

async fn post<Req: serde::Serialize, Rep: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: &Req,
) -> Result<Option<Rep>> {
    let resp = http.post(url).json(body).send().await?;
    let status = resp.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(None);
    }
    if !status.is_success() {
        bail!("HTTP {status}: {}", resp.text().await.unwrap_or_default());
    }
    Ok(Some(resp.json().await?))
}

async fn register(http: &reqwest::Client, url: &str, account: &str) -> Result<()> {
    let start = ClientRegistration::<LoadSuite>::start(&mut OsRng, b"load password")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let reply: proto::RegisterStartReply = post(
        http,
        &format!("{url}/v1/register/start"),
        &proto::RegisterStart {
            account: account.into(),
            proof: String::new(),
            request: start.message.serialize().to_vec(),
        },
    )
    .await?
    .context("empty reply")?;
    let response = RegistrationResponse::<LoadSuite>::deserialize(&reply.response)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let finish = start
        .state
        .finish(
            &mut OsRng,
            b"load password",
            response,
            ClientRegistrationFinishParameters::default(),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let _: Option<serde_json::Value> = post(
        http,
        &format!("{url}/v1/register/finish"),
        &proto::RegisterFinish {
            session: reply.session.clone(),
            account: account.into(),
            proof: String::new(),
            upload: finish.message.serialize().to_vec(),
            wrapped_key: vec![7; 60],
        },
    )
    .await?;
    Ok(())
}

async fn login(http: &reqwest::Client, url: &str, account: &str) -> Result<()> {
    let start = ClientLogin::<LoadSuite>::start(&mut OsRng, b"load password")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let reply: proto::LoginStartReply = post(
        http,
        &format!("{url}/v1/login/start"),
        &proto::LoginStart {
            account: account.into(),
            proof: String::new(),
            request: start.message.serialize().to_vec(),
        },
    )
    .await?
    .context("empty reply")?;
    let response = CredentialResponse::<LoadSuite>::deserialize(&reply.response)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let finish = start
        .state
        .finish(
            &mut OsRng,
            b"load password",
            response,
            ClientLoginFinishParameters::default(),
        )
        .map_err(|e| anyhow::anyhow!("login did not verify: {e:?}"))?;
    let done: proto::LoginFinishReply = post(
        http,
        &format!("{url}/v1/login/finish"),
        &proto::LoginFinish {
            session: reply.session,
            finalization: finish.message.serialize().to_vec(),
        },
    )
    .await?
    .context("empty reply")?;
    if done.wrapped_key != vec![7; 60] {
        bail!("the vault released another key");
    }
    Ok(())
}

struct Report {
    logins: usize,
    errors: usize,
    first_error: Option<String>,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

async fn run(
    url: &str,
    clients: usize,
    seconds: u64,
    tag: &str,
    protector: Protector,
) -> Result<Report> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Each client logs in to its own accounts, so that runs measure the vault, not lock waits
    // on one row.
    let accounts: Vec<String> = (0..clients).map(|i| format!("load-{tag}-{i}")).collect();
    let mut passkeys = Vec::new();
    for account in &accounts {
        match protector {
            Protector::Password => register(&http, url, account).await?,
            Protector::Passkey => passkeys.push(Some(passkey_client(url, account).await?)),
            Protector::Realm => bail!("realm runs go through run_realms"),
        }
    }
    let mut passkeys = passkeys.into_iter();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for account in accounts {
        let http = http.clone();
        let url = url.to_string();
        let mut passkey = passkeys.next().flatten();
        let vault = sealback_vault_client::VaultClient::new(&url)?;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut first_error = None;
            while Instant::now() < deadline {
                let t = Instant::now();
                let done = match passkey.as_mut() {
                    Some(client) => passkey_login(client, &vault).await,
                    None => login(&http, &url, &account).await,
                };
                match done {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e.to_string());
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    report(tasks, started).await
}

/// Closed-loop recoveries of a realm password through `endpoints` (see the crate doc).
async fn run_realms(
    endpoints: &[sealback_vault_client::realms::RealmEndpoint],
    clients: usize,
    seconds: u64,
    tag: &str,
) -> Result<Report> {
    use sealback_vault_client::realms::Realms;
    let argon2 = sealback_tvr::Argon2Cost {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };
    let proofs = |_, _| String::from("dev");
    let password = sealback_vault_client::Password::new("load password".into());
    let mut slots = Vec::new();
    for i in 0..clients {
        let account = format!("realm-load-{tag}-{i}");
        let realms = Realms::new(endpoints.to_vec(), Duration::from_secs(30))?;
        let new = sealback_tvr::NewSlot {
            repo: sealback_core::RepoId([1; 16]),
            slot: sealback_core::keyslot::SlotId([2; 16]),
            account: &account,
            threshold: 2,
            limit: sealback_tvr::DEFAULT_LIMIT,
            argon2,
        };
        let (params, _) = realms.register(&new, &password, &proofs).await?;
        slots.push((realms, params));
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (realms, params) in slots {
        tasks.push(tokio::spawn(async move {
            let password = sealback_vault_client::Password::new("load password".into());
            let proofs = |_, _| String::from("dev");
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut first_error = None;
            while Instant::now() < deadline {
                let t = Instant::now();
                let done = realms
                    .unlock(
                        &params,
                        sealback_core::RepoId([1; 16]),
                        sealback_core::keyslot::SlotId([2; 16]),
                        &password,
                        &proofs,
                    )
                    .await;
                match done {
                    Ok(u) if u.confirmed.len() == 3 => latencies.push(t.elapsed()),
                    Ok(u) => {
                        errors += 1;
                        first_error.get_or_insert(format!("{u:?}"));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e.to_string());
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    report(tasks, started).await
}

/// What one closed-loop client measured: its latencies, its errors and the first one's text.
type ClientRun = (Vec<Duration>, usize, Option<String>);

/// Gathers the clients' runs into a [`Report`] (both loops, password and realm, end here).
async fn report(
    tasks: Vec<tokio::task::JoinHandle<ClientRun>>,
    started: Instant,
) -> Result<Report> {
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (l, e, f) = t.await?;
        all.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i].as_secs_f64() * 1000.0
    };
    Ok(Report {
        logins: all.len(),
        errors,
        first_error,
        seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
    })
}

fn print(args: &Args, database: &str, clients: usize, r: &Report) {
    let rate = r.logins as f64 / r.seconds;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "database": database, "protector": format!("{:?}", args.protector).to_lowercase(), "clients": clients, "seconds": r.seconds,
                "logins": r.logins, "logins_per_second": rate,
                "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms,
                "errors": r.errors, "first_error": r.first_error,
            })
        );
    } else {
        println!(
            "{database:<9} {clients:>5} clients  {rate:>8.0} logins/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.1} ms  ({} logins, {} errors{})",
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.logins,
            r.errors,
            r.first_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if !args.json && args.protector == Protector::Realm {
        println!(
            "Each operation = one recovery of a 2-of-3 realm password (two evaluations, each counted durably by its realm, proofs checked, then a confirm to all three realms); {} s per run.",
            args.seconds
        );
    } else if !args.json {
        println!(
            "Each {:?} login = login start (the guess is counted durably) + login finish (the count is reset); {} s per run.",
            args.protector,
            args.seconds
        );
    }
    if args.url.is_some() && args.protector == Protector::Realm {
        bail!("--protector realm starts its own three realms: leave out --url");
    }
    if let Some(url) = &args.url {
        for (i, &clients) in args.clients.iter().enumerate() {
            let r = run(
                url,
                clients,
                args.seconds,
                &format!("{}-{i}", std::process::id()),
                args.protector,
            )
            .await?;
            print(&args, "given", clients, &r);
        }
        return Ok(());
    }
    let bin = match &args.sealback {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent directory")?
            .join("sealback"),
    };
    if !bin.exists() {
        bail!(
            "{} is missing: build it first with `cargo build --release -p sealback-cli`, or pass --sealback",
            bin.display()
        );
    }
    for database in &args.database {
        let dir = tempfile::tempdir()?;
        let (_pg, url) = match database.as_str() {
            "sqlite" => (
                None,
                format!("sqlite:{}", dir.path().join("vault.db").display()),
            ),
            "postgres" => {
                let pg = sealback_testkit::PgServer::start();
                let url = pg.url();
                (Some(pg), url)
            }
            other => bail!("unknown database {other:?}: sqlite or postgres"),
        };
        if args.protector == Protector::Realm {
            // Three realms, each on its own database (the first on `url`, the others on SQLite
            // files, or their own PostgreSQL databases are not made here: SQLite for them).
            let mut realms = vec![start_vault(&bin, &url, dir, true)?];
            for _ in 1..3 {
                let d = tempfile::tempdir()?;
                let u = format!("sqlite:{}", d.path().join("realm.db").display());
                realms.push(start_vault(&bin, &u, d, true)?);
            }
            let mut endpoints = Vec::new();
            for r in &realms {
                let info = sealback_vault_client::VaultClient::new(&r.url)?
                    .info()
                    .await?;
                let realm = info.realm.context("not a realm")?;
                endpoints.push(sealback_vault_client::realms::RealmEndpoint {
                    id: sealback_proto::proof::parse_vault_id(&realm.realm_id)
                        .context("realm id")?,
                    url: r.url.clone(),
                    share_key: realm
                        .realm_key
                        .try_into()
                        .map_err(|_| anyhow::anyhow!("realm key"))?,
                });
            }
            for (i, &clients) in args.clients.iter().enumerate() {
                let r = run_realms(&endpoints, clients, args.seconds, &i.to_string()).await?;
                print(&args, database, clients, &r);
            }
            continue;
        }
        let vault = start_vault(&bin, &url, dir, false)?;
        for (i, &clients) in args.clients.iter().enumerate() {
            let r = run(
                &vault.url,
                clients,
                args.seconds,
                &i.to_string(),
                args.protector,
            )
            .await?;
            print(&args, database, clients, &r);
        }
    }
    Ok(())
}
