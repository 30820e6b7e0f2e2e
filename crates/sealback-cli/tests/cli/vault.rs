//! The password protector end to end: a real `sealback vault serve` process on loopback, real
//! SQLite, the CLI on two "devices".

use super::{assert_exit, assert_ok};
use sealback_vault_client::{Password, VaultClient, VaultError, VaultParams};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sealback");

pub(crate) struct VaultProcess {
    pub(crate) child: Child,
    pub(crate) url: String,
    /// The metrics URL, when started with --metrics-listen.
    metrics: Option<String>,
}

impl VaultProcess {
    pub(crate) fn start(dir: &Path) -> Self {
        Self::start_on(dir, &format!("sqlite:{}", dir.join("vault.db").display()))
    }

    fn start_on(dir: &Path, database: &str) -> Self {
        let key = dir.join("vault.key");
        // Development proofs, and no rate limits: these tests count guesses.
        Self::start_with(
            database,
            &[
                "--dev",
                "--rate-per-account",
                "0",
                "--rate-per-source",
                "0",
                "--key-file",
                key.to_str().unwrap(),
            ],
            &[],
        )
    }

    fn start_with(database: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_logging(database, args, envs, Stdio::null())
    }

    fn start_logging(
        database: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: impl Into<Stdio>,
    ) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "vault",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                database,
            ])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
        let metrics = args.contains(&"--metrics-listen").then(|| {
            let mut m = String::new();
            out.read_line(&mut m).unwrap();
            m.trim().strip_prefix("metrics: ").unwrap().to_string()
        });
        Self {
            child,
            url: line.trim().to_string(),
            metrics,
        }
    }
}

impl Drop for VaultProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn cli(home: &Path, repo: &Path) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("SEALBACK_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("SEALBACK_TEMP_DIR", home)
        .arg("--repo")
        .arg(repo)
        .stdin(Stdio::null());
    c
}

/// [`cli`] on a device set up for the key vault `vault` (its address from the device's own
/// settings: a backup never says where its vault is).
pub(crate) fn with_vault(home: &Path, repo: &Path, vault: &VaultProcess) -> Command {
    let mut c = cli(home, repo);
    c.env("SEALBACK_VAULT_URL", &vault.url);
    c
}

pub(crate) fn records(dir: &Path, account: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join("vault.db")).unwrap();
    c.query_row(
        "SELECT count(*) FROM records WHERE account = ?1",
        [account],
        |r| r.get(0),
    )
    .unwrap()
}

pub(crate) fn setup(tmp: &Path, account: &str) -> (VaultProcess, PathBuf, PathBuf, PathBuf) {
    let vault_dir = tmp.join("vault");
    std::fs::create_dir_all(&vault_dir).unwrap();
    let vault = VaultProcess::start(&vault_dir);
    let repo = tmp.join("cloud");
    let home_a = tmp.join("device-a");
    std::fs::create_dir_all(&home_a).unwrap();
    let key = tmp.join("recovery.txt");
    assert_ok(
        &cli(&home_a, &repo)
            .args(["--recovery-key-file", key.to_str().unwrap(), "init"])
            .output()
            .unwrap(),
    );
    assert_ok(
        &cli(&home_a, &repo)
            .env("SEALBACK_ACCOUNT", account)
            .env("SEALBACK_PASSWORD", "the right password")
            .args([
                "--recovery-key-file",
                key.to_str().unwrap(),
                "key",
                "add",
                "password",
                "--vault",
                &vault.url,
            ])
            .env("SEALBACK_ACCOUNT_PROOF", "dev")
            .output()
            .unwrap(),
    );
    let chats = tmp.join("phone-A").join("chats");
    sealback_corpus::generate(&chats, &sealback_corpus::ChatStoreSpec::tiny(21)).unwrap();
    assert_ok(
        &cli(&home_a, &repo)
            .args([
                "--recovery-key-file",
                key.to_str().unwrap(),
                "backup",
                chats.to_str().unwrap(),
            ])
            .output()
            .unwrap(),
    );
    (vault, repo, chats, vault_dir)
}

#[test]
fn a_new_device_restores_with_the_password_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (vault, repo, chats, _) = setup(tmp.path(), "alice");
    let home_b = tmp.path().join("device-b");
    std::fs::create_dir_all(&home_b).unwrap();
    let target = tmp.path().join("restored");
    let out = with_vault(&home_b, &repo, &vault)
        .env("SEALBACK_ACCOUNT", "alice")
        .env("SEALBACK_PASSWORD", "the right password")
        .args(["restore", "latest", "--target", target.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&out);
    let cmp = sealback_corpus::compare(&chats, &target.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
    let out = with_vault(&home_b, &repo, &vault)
        .env("SEALBACK_PASSWORD", "wrong")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_exit(&out, 3, "9 attempts remain");
}

#[test]
fn ten_wrong_passwords_then_the_right_one_exits_5_and_the_record_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let (vault, repo, _, vault_dir) = setup(tmp.path(), "bob");
    let home_b = tmp.path().join("device-b");
    std::fs::create_dir_all(&home_b).unwrap();
    assert_eq!(records(&vault_dir, "bob"), 1);
    for i in 0..10 {
        let out = with_vault(&home_b, &repo, &vault)
            .env("SEALBACK_PASSWORD", format!("guess {i}"))
            .args(["snapshots"])
            .output()
            .unwrap();
        if i < 9 {
            assert_exit(&out, 3, &format!("{} attempts remain", 9 - i));
        } else {
            assert_exit(
                &out,
                3,
                "that was the last attempt: the key vault has destroyed this key",
            );
        }
    }
    let out = with_vault(&home_b, &repo, &vault)
        .env("SEALBACK_PASSWORD", "the right password")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_exit(&out, 5, "destroyed this key");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("recovery-key"),
        "names the keys that still work"
    );
    assert_eq!(
        records(&vault_dir, "bob"),
        0,
        "the record is gone from the database"
    );
}

#[test]
fn a_killed_vault_never_gives_an_attempt_back() {
    let tmp = tempfile::tempdir().unwrap();
    let vault_dir = tmp.path().join("vault");
    std::fs::create_dir_all(&vault_dir).unwrap();
    let mut vault = VaultProcess::start(&vault_dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let params: VaultParams = rt
        .block_on(VaultClient::new(&vault.url).unwrap().register(
            "carol",
            "dev",
            &Password::new("pw".into()),
            &sealback_core::ProtectorSecret::new(vec![1; 32]),
            None,
        ))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let url = vault.url.clone();
    let p2 = params.clone();
    let guesses = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let tasks: Vec<_> = (0..40)
                .map(|i| {
                    let (url, params, tx) = (url.clone(), p2.clone(), tx.clone());
                    tokio::spawn(async move {
                        let r = VaultClient::new(&url)
                            .unwrap()
                            .login(&params, &Password::new(format!("g{i}")), "")
                            .await;
                        let answered = matches!(
                            r,
                            Err(VaultError::WrongPassword { .. }) | Err(VaultError::Locked)
                        );
                        let _ = tx.send(answered);
                        r.err()
                    })
                })
                .collect();
            let (mut wrong, mut locked) = (0usize, false);
            for t in tasks {
                match t.await.unwrap() {
                    Some(VaultError::WrongPassword { .. }) => wrong += 1,
                    Some(VaultError::Locked) => locked = true,
                    // Killed before it answered (the guess may or may not have been counted).
                    Some(VaultError::Unreachable { .. }) => {}
                    other => panic!("{other:?}"),
                }
            }
            (wrong, locked)
        })
    });
    // Kill the vault (SIGKILL) once a few guesses have been answered.
    let mut answered = 0;
    while answered < 3 {
        if rx.recv().unwrap() {
            answered += 1;
        }
    }
    vault.child.kill().unwrap();
    vault.child.wait().unwrap();
    let (answered_wrong, saw_locked) = guesses.join().unwrap();
    // Restart on the same database: every answered guess is still counted.
    let vault = VaultProcess::start(&vault_dir);
    let c = rusqlite::Connection::open(vault_dir.join("vault.db")).unwrap();
    let counted: i64 = c
        .query_row(
            "SELECT count FROM guesses WHERE account = 'carol' AND kind = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        counted as usize >= answered_wrong,
        "counted {counted}, answered {answered_wrong}"
    );
    if saw_locked {
        assert!(
            counted >= 10,
            "a locked answer means the limit was reached, and stays reached"
        );
    }
    assert!(
        answered_wrong > 0 || saw_locked,
        "some guesses were answered before the kill"
    );
    let moved = params;
    let next = rt.block_on(VaultClient::new(&vault.url).unwrap().login(
        &moved,
        &Password::new("again".into()),
        "",
    ));
    match next {
        Err(VaultError::WrongPassword { remaining }) => {
            assert_eq!(remaining as i64, 10 - counted - 1)
        }
        Err(VaultError::Locked) => assert!(counted >= 10),
        other => panic!("{other:?}"),
    }
}

/// 500 concurrent wrong guesses over many connections, against two vault processes sharing one
/// PostgreSQL: no more than 10 are evaluated.
#[test]
fn two_vault_processes_on_one_postgresql_evaluate_at_most_ten_of_500_guesses() {
    let pg = sealback_testkit::PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let a = VaultProcess::start_on(tmp.path(), &pg.url());
    let b = VaultProcess::start_on(tmp.path(), &pg.url());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let params: VaultParams = rt
        .block_on(VaultClient::new(&a.url).unwrap().register(
            "dana",
            "dev",
            &Password::new("pw".into()),
            &sealback_core::ProtectorSecret::new(vec![2; 32]),
            None,
        ))
        .unwrap();
    let (evaluated, locked) = rt.block_on(async {
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let url = if i % 2 == 0 {
                    a.url.clone()
                } else {
                    b.url.clone()
                };
                let params = params.clone();
                tokio::spawn(async move {
                    VaultClient::new(&url)
                        .unwrap()
                        .login(&params, &Password::new(format!("guess {i}")), "")
                        .await
                })
            })
            .collect();
        let (mut evaluated, mut locked) = (0, 0);
        for r in futures::future::join_all(tasks).await {
            match r.unwrap() {
                Err(VaultError::WrongPassword { .. }) => evaluated += 1,
                Err(VaultError::Locked) => locked += 1,
                other => panic!("{other:?}"),
            }
        }
        (evaluated, locked)
    });
    assert_eq!(evaluated, 10, "exactly the limit is evaluated");
    assert_eq!(locked, 490);
    // The right password is refused too: the record is gone.
    let r = rt.block_on(VaultClient::new(&b.url).unwrap().login(
        &params,
        &Password::new("pw".into()),
        "",
    ));
    assert!(matches!(r, Err(VaultError::Locked)), "{r:?}");
}

#[test]
fn the_vault_serves_with_its_key_in_a_pkcs11_token() {
    let hsm = sealback_testkit::SoftHsm::shared();
    hsm.init_token("cli-vault", "2468");
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("vault.db").display());
    let conf = hsm.conf.to_str().unwrap().to_string();
    let vault = VaultProcess::start_with(
        &db,
        &[
            "--dev",
            "--hsm-module",
            sealback_testkit::SOFTHSM_MODULE,
            "--hsm-token",
            "cli-vault",
        ],
        &[("SEALBACK_HSM_PIN", "2468"), ("SOFTHSM2_CONF", &conf)],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = VaultClient::new(&vault.url).unwrap();
    let secret = sealback_core::ProtectorSecret::new(vec![3; 32]);
    let params = rt
        .block_on(c.register("kim", "dev", &Password::new("pw".into()), &secret, None))
        .unwrap();
    let got = rt
        .block_on(c.login(&params, &Password::new("pw".into()), ""))
        .unwrap();
    assert_eq!(got.expose_secret(), secret.expose_secret());
    assert!(
        !tmp.path().join("vault.key").exists(),
        "no software key file when an HSM is used"
    );
    // A wrong token PIN is refused at start.
    let out = Command::new(BIN)
        .args([
            "vault",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dev",
            "--database",
            &db,
            "--hsm-module",
            sealback_testkit::SOFTHSM_MODULE,
            "--hsm-token",
            "cli-vault",
        ])
        .env("SEALBACK_HSM_PIN", "0000")
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("login"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sealback vault issue-proof` with the operator key in `key_file`: a proof for `account`
/// with `scope` at the vault `vault` names (`--audience ID` or `--vault-url URL`).
fn issue_proof(key_file: &Path, account: &str, scope: &str, vault: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["--account", account, "vault", "issue-proof"])
        .arg("--operator-key-file")
        .arg(key_file)
        .args(["--scope", scope])
        .args(vault)
        .output()
        .unwrap();
    assert_ok(&out);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Without --dev, the vault checks proofs the operator signed: `vault operator-key` makes the
/// key, `vault issue-proof` signs, and the CLI passes the proof with SEALBACK_ACCOUNT_PROOF.
#[test]
fn operator_signed_account_proofs_end_to_end_with_default_limits_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let op_key = t.join("operator.key");
    let out = Command::new(BIN)
        .args(["vault", "operator-key", "--out", op_key.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&out);
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&op_key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A proof names the one vault it is for: issuing one needs that vault.
    let out = Command::new(BIN)
        .env_remove("SEALBACK_VAULT_URL")
        .args(["--account", "+15550100", "vault", "issue-proof"])
        .arg("--operator-key-file")
        .arg(&op_key)
        .output()
        .unwrap();
    assert_exit(&out, 2, "a proof is for one key vault");
    let vault_dir = t.join("vault");
    std::fs::create_dir_all(&vault_dir).unwrap();
    let db = format!("sqlite:{}", vault_dir.join("vault.db").display());
    let key = vault_dir.join("vault.key");
    // A vault without an operator key or --dev refuses to start.
    let out = Command::new(BIN)
        .args([
            "vault",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
        ])
        .args(["--key-file", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&out, 2, "--operator-key");
    // `=`: a base64url key may start with '-', which would read as a flag.
    let operator_key = format!("--operator-key={public}");
    let vault = VaultProcess::start_with(
        &db,
        &[
            &operator_key,
            "--key-file",
            key.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    // Proofs for this vault, its id read from its /v1/info.
    let issue = |account: &str, scope: &str| {
        issue_proof(&op_key, account, scope, &["--vault-url", &vault.url])
    };

    let repo = t.join("cloud");
    let home_a = t.join("device-a");
    std::fs::create_dir_all(&home_a).unwrap();
    let rk = t.join("recovery.txt");
    assert_ok(
        &cli(&home_a, &repo)
            .args(["--recovery-key-file", rk.to_str().unwrap(), "init"])
            .output()
            .unwrap(),
    );
    let add = |proof: Option<&str>| {
        let mut c = cli(&home_a, &repo);
        c.env("SEALBACK_ACCOUNT", "+15550100")
            .env("SEALBACK_PASSWORD", "a fine password")
            .args(["--recovery-key-file", rk.to_str().unwrap()])
            .args(["key", "add", "password", "--vault", &vault.url]);
        if let Some(p) = proof {
            c.env("SEALBACK_ACCOUNT_PROOF", p);
        }
        c.output().unwrap()
    };
    assert_exit(&add(None), 3, "an account proof is required");
    assert_exit(
        &add(Some(&issue("+15550100", "login"))),
        3,
        "login-only proof",
    );
    assert_exit(
        &add(Some(&issue("+15550199", "register"))),
        3,
        "for another account",
    );
    // A proof for another vault (by its id) is refused: it was shown to that vault only.
    let elsewhere = "00112233445566778899aabbccddeeff";
    assert_exit(
        &add(Some(&issue_proof(
            &op_key,
            "+15550100",
            "register",
            &["--audience", elsewhere],
        ))),
        3,
        "for another key vault",
    );
    assert_ok(&add(Some(&issue("+15550100", "register"))));

    let chats = t.join("phone").join("chats");
    sealback_corpus::generate(&chats, &sealback_corpus::ChatStoreSpec::tiny(5)).unwrap();
    assert_ok(
        &cli(&home_a, &repo)
            .args(["--recovery-key-file", rk.to_str().unwrap()])
            .args(["backup", chats.to_str().unwrap()])
            .output()
            .unwrap(),
    );

    // A new device: the account, a login proof from the app, and the password.
    let home_b = t.join("device-b");
    std::fs::create_dir_all(&home_b).unwrap();
    let restore = |proof: Option<&str>, target: &Path| {
        let mut c = with_vault(&home_b, &repo, &vault);
        c.env("SEALBACK_ACCOUNT", "+15550100")
            .env("SEALBACK_PASSWORD", "a fine password")
            .args(["restore", "latest", "--target", target.to_str().unwrap()]);
        if let Some(p) = proof {
            c.env("SEALBACK_ACCOUNT_PROOF", p);
        }
        c.output().unwrap()
    };
    let out = restore(None, &t.join("r1"));
    assert_exit(&out, 3, "SEALBACK_ACCOUNT_PROOF");
    let c = rusqlite::Connection::open(vault_dir.join("vault.db")).unwrap();
    let counted: i64 = c
        .query_row("SELECT coalesce(sum(count), 0) FROM guesses", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(counted, 0, "a login without a proof spends no guess");
    // A register proof is never sent to unlock (it could replace the key at the vault), and a
    // proof on the command line is refused (every local user sees it in the process list).
    let out = restore(Some(&issue("+15550100", "register")), &t.join("r1"));
    assert_exit(&out, 2, "sends it only when adding a key");
    let out = with_vault(&home_b, &repo, &vault)
        .env("SEALBACK_ACCOUNT", "+15550100")
        .env("SEALBACK_PASSWORD", "a fine password")
        .args(["--account-proof", &issue("+15550100", "login"), "snapshots"])
        .output()
        .unwrap();
    assert_exit(&out, 2, "--account-proof is not accepted");
    let counted: i64 = c
        .query_row("SELECT coalesce(sum(count), 0) FROM guesses", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(counted, 0, "neither reached the vault");
    // A proof in a file works like the variable.
    let proof_file = t.join("proof.txt");
    std::fs::write(&proof_file, issue("+15550100", "login")).unwrap();
    assert_ok(
        &with_vault(&home_b, &repo, &vault)
            .env("SEALBACK_ACCOUNT", "+15550100")
            .env("SEALBACK_PASSWORD", "a fine password")
            .args([
                "--account-proof-file",
                proof_file.to_str().unwrap(),
                "snapshots",
            ])
            .output()
            .unwrap(),
    );
    assert_ok(&restore(Some(&issue("+15550100", "login")), &t.join("r2")));
    let cmp = sealback_corpus::compare(&chats, &t.join("r2").join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);

    // The default per-account limit (6 a minute) turns a fast run of guesses away before they
    // are counted, with a clear message and exit 5.
    let proof = issue("+15550100", "login");
    let mut limited = None;
    for i in 0..8 {
        let out = with_vault(&home_b, &repo, &vault)
            .env("SEALBACK_ACCOUNT_PROOF", &proof)
            .env("SEALBACK_PASSWORD", format!("guess {i}"))
            .args(["snapshots"])
            .output()
            .unwrap();
        if out.status.code() == Some(5) {
            limited = Some((i, String::from_utf8_lossy(&out.stderr).to_string()));
            break;
        }
        assert_exit(&out, 3, "attempts remain");
    }
    let (at, message) = limited.expect("rate limited within 8 guesses");
    assert!(at <= 6, "limited at guess {at}");
    assert!(message.contains("try again in"), "{message}");

    // Prometheus metrics on their own listener.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async {
            reqwest::get(vault.metrics.as_deref().unwrap())
                .await?
                .text()
                .await
        })
        .unwrap();
    assert!(
        // The restore, and the unlock with the proof from a file.
        text.contains("sealback_vault_logins_total{outcome=\"ok\"} 2"),
        "{text}"
    );
    assert!(text.contains("sealback_vault_logins_total{outcome=\"rate_limited\"} 1"));
}

#[test]
fn password_keys_are_added_only_where_the_rollout_offers_them() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rollout.toml");
    // Password keys only in France for now.
    std::fs::write(
        &rules,
        "[[rule]]\nprotector = \"password\"\npercent = 100\nregions = [\"FR\"]\n",
    )
    .unwrap();
    let key_file = tmp.path().join("vault.key");
    let vault = VaultProcess::start_with(
        &format!("sqlite:{}", tmp.path().join("vault.db").display()),
        &[
            "--dev",
            "--key-file",
            key_file.to_str().unwrap(),
            "--rollout",
            rules.to_str().unwrap(),
        ],
        &[],
    );
    let repo = tmp.path().join("cloud");
    let home = tmp.path().join("device");
    std::fs::create_dir_all(&home).unwrap();
    let key = tmp.path().join("recovery.txt");
    assert_ok(
        &cli(&home, &repo)
            .args(["--recovery-key-file", key.to_str().unwrap(), "init"])
            .output()
            .unwrap(),
    );
    let keys_before = std::fs::read(repo.join("keys")).unwrap();
    let add = |region: &str| {
        cli(&home, &repo)
            .env("SEALBACK_ACCOUNT", "alice")
            .env("SEALBACK_PASSWORD", "a password")
            .env("SEALBACK_REGION", region)
            .args(["--recovery-key-file", key.to_str().unwrap()])
            .args(["key", "add", "password", "--vault", &vault.url])
            .output()
            .unwrap()
    };
    let out = add("DE");
    assert_exit(&out, 5, "does not offer password keys here yet");
    assert_exit(&out, 5, "not available in your region yet");
    assert_eq!(std::fs::read(repo.join("keys")).unwrap(), keys_before);
    assert_eq!(records(tmp.path(), "alice"), 0, "nothing reached the vault");
    assert_ok(&add("FR"));
    assert_eq!(records(tmp.path(), "alice"), 1);
}

/// A device whose passkey provider has no PRF extension (the passkey store stands for a
/// password manager without it).
fn no_prf_device(c: &mut Command, home: &Path, account: &str) {
    c.env("SEALBACK_PASSKEY_STORE", home.join("passkeys.sbpk"))
        .env("SEALBACK_PASSKEY_PIN", "1357")
        .env("SEALBACK_PASSKEY_PRF", "0")
        .env("SEALBACK_ACCOUNT", account);
}

#[test]
fn a_passkey_without_prf_turns_on_backup_through_the_vault_and_restores_on_a_new_device() {
    let tmp = tempfile::tempdir().unwrap();
    let vault_dir = tmp.path().join("vault");
    std::fs::create_dir_all(&vault_dir).unwrap();
    let vault = VaultProcess::start(&vault_dir);
    let repo = tmp.path().join("cloud");
    let home_a = tmp.path().join("phone-a");
    std::fs::create_dir_all(&home_a).unwrap();
    let recovery = tmp.path().join("recovery.txt");
    // Turn on backup with a passkey; the provider has no PRF, so the vault's mode is used.
    let mut init = with_vault(&home_a, &repo, &vault);
    no_prf_device(&mut init, &home_a, "alice");
    let out = init
        .args([
            "--recovery-key-file",
            recovery.to_str().unwrap(),
            "init",
            "--passkey",
            "--vault",
            &vault.url,
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not support the PRF extension") && stderr.contains("passkey mode"),
        "{stderr}"
    );
    let mut list = with_vault(&home_a, &repo, &vault);
    no_prf_device(&mut list, &home_a, "alice");
    let out = list.args(["--json", "key", "list"]).output().unwrap();
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("vault-passkey"));
    // Back up with the passkey alone (the vault releases its share to the assertion).
    let chats = tmp.path().join("phone-a-data").join("chats");
    sealback_corpus::generate(&chats, &sealback_corpus::ChatStoreSpec::tiny(33)).unwrap();
    let mut backup = with_vault(&home_a, &repo, &vault);
    no_prf_device(&mut backup, &home_a, "alice");
    assert_ok(
        &backup
            .args(["backup", chats.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    // A new phone: the synced passkey store and the account, nothing else.
    let home_b = tmp.path().join("phone-b");
    std::fs::create_dir_all(&home_b).unwrap();
    std::fs::copy(home_a.join("passkeys.sbpk"), home_b.join("passkeys.sbpk")).unwrap();
    let target = tmp.path().join("restored");
    let mut restore = with_vault(&home_b, &repo, &vault);
    no_prf_device(&mut restore, &home_b, "alice");
    assert_ok(
        &restore
            .args(["restore", "latest", "--target", target.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let cmp = sealback_corpus::compare(&chats, &target.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);

    // Someone else's passkey (registered at the same vault for another account) fails with
    // exit 3, and each try is counted.
    let home_c = tmp.path().join("stranger");
    std::fs::create_dir_all(&home_c).unwrap();
    let mut theirs = with_vault(&home_c, &tmp.path().join("their-cloud"), &vault);
    no_prf_device(&mut theirs, &home_c, "mallory");
    assert_ok(
        &theirs
            .args([
                "init",
                "--passkey",
                "--no-recovery-key",
                "--vault",
                &vault.url,
            ])
            .output()
            .unwrap(),
    );
    for attempt in 1..=10 {
        let mut wrong = with_vault(&home_c, &repo, &vault);
        no_prf_device(&mut wrong, &home_c, "alice");
        let out = wrong.args(["snapshots"]).output().unwrap();
        let expected = if attempt == 10 {
            "that was the last attempt".to_string()
        } else {
            format!("{} attempts remain", 10 - attempt)
        };
        assert_exit(&out, 3, &expected);
    }
    // Ten failures destroy the vault's half: even the right passkey now exits 5, and the
    // message names the key that still opens the backup.
    let mut right = with_vault(&home_b, &repo, &vault);
    no_prf_device(&mut right, &home_b, "alice");
    let out = right.args(["snapshots"]).output().unwrap();
    assert_exit(&out, 5, "recovery-key");
    let c = rusqlite::Connection::open(vault_dir.join("vault.db")).unwrap();
    let held: i64 = c
        .query_row(
            "SELECT count(*) FROM passkeys WHERE account = 'alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(held, 0);
    let mallory: i64 = c
        .query_row(
            "SELECT count(*) FROM passkeys WHERE account = 'mallory'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mallory, 1);
    // The recovery key still opens it.
    assert_ok(
        &with_vault(&home_b, &repo, &vault)
            .args([
                "--recovery-key-file",
                recovery.to_str().unwrap(),
                "snapshots",
            ])
            .output()
            .unwrap(),
    );
}

#[test]
fn a_request_carrying_prf_output_is_refused_and_never_logged_or_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("vault.key");
    let log = tmp.path().join("vault.log");
    let db = tmp.path().join("vault.db");
    let vault = VaultProcess::start_logging(
        &format!("sqlite:{}", db.display()),
        &["--dev", "--key-file", key.to_str().unwrap()],
        &[("SEALBACK_LOG", "trace")],
        std::fs::File::create(&log).unwrap(),
    );
    let marker = "UFJGLW91dHB1dC1tYXJrZXItOTk4ODc3NjY1NTQ0MzMyMjExMDA";
    let credential = serde_json::json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {"clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA"},
        "clientExtensionResults": {"prf": {"results": {"first": marker}}},
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::new();
        for route in [
            "/v1/passkey/register/finish",
            "/v1/passkey/login/finish",
            "/v1/passkey/signin/finish",
        ] {
            let r = http
                .post(format!("{}{route}", vault.url))
                .json(&serde_json::json!({"session": "0123", "credential": credential}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 400, "{route}");
            let body = r.text().await.unwrap();
            assert!(body.contains("PRF") && !body.contains(marker), "{body}");
        }
    });
    drop(vault);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("TRACE") || logged.contains("DEBUG") || logged.contains("INFO"),
        "the log is live: {logged}"
    );
    assert!(!logged.contains(marker), "{logged}");
    let mut stored = std::fs::read(&db).unwrap();
    stored.extend(std::fs::read(tmp.path().join("vault.db-wal")).unwrap_or_default());
    assert!(!String::from_utf8_lossy(&stored).contains(marker));
}

/// A TCP listener on loopback that stands for a relay the cloud drive's operator runs: it
/// records every connection and answers none.
struct Relay {
    url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { url, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Rewrites, as the cloud drive's operator can, the params of every slot of `protector_type`
/// in the repository's keys file.
fn rewrite_slot_params(
    repo: &Path,
    protector_type: sealback_core::keyslot::ProtectorType,
    rewrite: impl Fn(&[u8]) -> Vec<u8>,
) {
    let path = repo.join("keys");
    let mut file = sealback_core::keyslot::KeySlotFile::decode(&std::fs::read(&path).unwrap())
        .expect("the keys file parses");
    let mut changed = 0;
    for slot in file.slots.iter_mut() {
        if slot.protector_type == protector_type {
            slot.params = rewrite(&slot.params);
            changed += 1;
        }
    }
    assert!(changed > 0, "the repository has a slot to rewrite");
    std::fs::write(&path, file.encode()).unwrap();
}

#[test]
fn a_password_slot_pointed_at_a_relay_by_the_drive_never_reaches_the_relay() {
    use sealback_core::keyslot::ProtectorType;
    let tmp = tempfile::tempdir().unwrap();
    let (vault, repo, _, vault_dir) = setup(tmp.path(), "dana");
    let relay = Relay::start();
    // The drive's operator rewrites the slot in the old layout, which stored a URL: the relay's.
    rewrite_slot_params(&repo, ProtectorType::VAULT_PASSWORD, |params| {
        let mut p = VaultParams::decode(params).unwrap();
        p.legacy_url = Some(relay.url.clone());
        p.encode()
    });
    let home_b = tmp.path().join("device-b");
    std::fs::create_dir_all(&home_b).unwrap();
    let out = with_vault(&home_b, &repo, &vault)
        .env("SEALBACK_ACCOUNT", "dana")
        .env("SEALBACK_PASSWORD", "the right password")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(relay.connections(), 0, "nothing was sent to the relay");
    // The configured vault was asked; the slot's attestation covers its parameters, so the
    // rewritten slot is reported as tampered with instead of being used.
    assert_exit(&out, 4, "the keyslot file was altered");
    // Without a configured vault the client does not guess one from the backup.
    let out = cli(&home_b, &repo)
        .env("SEALBACK_ACCOUNT", "dana")
        .env("SEALBACK_PASSWORD", "the right password")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_exit(&out, 2, "--vault-url");
    assert_eq!(relay.connections(), 0, "nothing was sent to the relay");
    drop(vault_dir);
}

#[test]
fn a_vault_passkey_slot_pointed_at_a_relay_or_another_vault_is_refused_before_any_login() {
    use sealback_core::keyslot::ProtectorType;
    use sealback_vault_client::{VaultId, VaultPasskeyParams};
    let tmp = tempfile::tempdir().unwrap();
    let vault_dir = tmp.path().join("vault");
    std::fs::create_dir_all(&vault_dir).unwrap();
    let vault = VaultProcess::start(&vault_dir);
    let repo = tmp.path().join("cloud");
    let home_a = tmp.path().join("phone-a");
    std::fs::create_dir_all(&home_a).unwrap();
    let mut init = with_vault(&home_a, &repo, &vault);
    no_prf_device(&mut init, &home_a, "erin");
    assert_ok(
        &init
            .args(["init", "--passkey", "--no-recovery-key"])
            .output()
            .unwrap(),
    );
    let attempts = |account: &str| -> i64 {
        let c = rusqlite::Connection::open(vault_dir.join("vault.db")).unwrap();
        c.query_row(
            "SELECT coalesce(sum(count), 0) FROM guesses WHERE account = ?1",
            [account],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    let relay = Relay::start();

    // 1. The slot in the old layout, naming the relay's URL: the relay gets nothing, the
    //    configured vault is the one asked, and the altered slot is reported, not used.
    rewrite_slot_params(&repo, ProtectorType::VAULT_PASSKEY, |params| {
        let mut p = VaultPasskeyParams::decode(params).unwrap();
        p.vault_id = None;
        p.legacy_url = Some(relay.url.clone());
        p.encode()
    });
    let mut list = with_vault(&home_a, &repo, &vault);
    no_prf_device(&mut list, &home_a, "erin");
    let out = list.args(["snapshots"]).output().unwrap();
    assert_eq!(relay.connections(), 0, "nothing was sent to the relay");
    assert_exit(&out, 4, "the keyslot file was altered");

    // 2. The slot naming another vault (one the drive's operator runs): refused with a clear
    //    message before any passkey login, so no assertion, proof or guess goes anywhere.
    rewrite_slot_params(&repo, ProtectorType::VAULT_PASSKEY, |params| {
        let mut p = VaultPasskeyParams::decode(params).unwrap();
        p.vault_id = Some(VaultId([0x66; 16]));
        p.legacy_url = None;
        p.encode()
    });
    let before = attempts("erin");
    let mut other = with_vault(&home_a, &repo, &vault);
    no_prf_device(&mut other, &home_a, "erin");
    let out = other.args(["snapshots"]).output().unwrap();
    assert_exit(&out, 3, "held by another key vault");
    assert_eq!(attempts("erin"), before, "no guess was spent");
    assert_eq!(relay.connections(), 0);
}

#[test]
fn vault_addresses_off_loopback_must_be_https_and_an_unreadable_ca_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("cloud");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let key = tmp.path().join("recovery.txt");
    assert_ok(
        &cli(&home, &repo)
            .args(["--recovery-key-file", key.to_str().unwrap(), "init"])
            .output()
            .unwrap(),
    );
    let add = |vault: &str, ca: Option<&str>| {
        let mut c = cli(&home, &repo);
        c.env("SEALBACK_ACCOUNT", "fay")
            .env("SEALBACK_PASSWORD", "a password")
            .args(["--recovery-key-file", key.to_str().unwrap()])
            .args(["--vault-url", vault, "key", "add", "password"]);
        if let Some(ca) = ca {
            c.env("SEALBACK_VAULT_CA", ca);
        }
        c.output().unwrap()
    };
    // 192.0.2.0/24 is reserved for documentation: nothing is ever contacted there, the
    // address is refused before any connection.
    assert_exit(
        &add("http://192.0.2.7:8443", None),
        2,
        "refusing plain HTTP",
    );
    assert_exit(&add("ftp://vault.example.org", None), 2, "https://");
    assert_exit(
        &add(
            "https://vault.example.org",
            Some(tmp.path().join("missing-ca.pem").to_str().unwrap()),
        ),
        2,
        "cannot read the key vault's CA certificate file",
    );
}

/// Issue 14: `--dev` (any account proof accepted) served on any interface with TLS, and
/// `--listen 0.0.0.0` printed a URL before refusing plain HTTP. Both are refused before
/// anything is announced.
#[test]
fn a_dev_vault_serves_only_on_loopback_and_announces_nothing_it_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("vault.db").display());
    let key = tmp.path().join("vault.key");
    let out = Command::new(BIN)
        .args(["vault", "operator-key", "--out"])
        .arg(tmp.path().join("operator.key"))
        .output()
        .unwrap();
    let operator = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // `=`: a base64url key may start with '-', which would read as a flag.
    let operator_key = format!("--operator-key={operator}");
    for args in [
        vec!["--dev", "--listen", "0.0.0.0:0"],
        vec![
            "--dev",
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ],
        vec![operator_key.as_str(), "--listen", "0.0.0.0:0"],
    ] {
        let out = Command::new(BIN)
            .args(["vault", "serve", "--database", &db])
            .args(["--key-file", key.to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} served: {stdout}");
        assert!(!stdout.contains("://"), "{args:?} announced {stdout}");
        assert!(stderr.contains("loopback"), "{args:?}: {stderr}");
    }
}
