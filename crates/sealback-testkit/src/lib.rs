//! # sealback-testkit: real servers for tests
//!
//! Owns starting and stopping throwaway servers on loopback for tests: PostgreSQL today. A
//! missing tool fails the test with the command that installs it; nothing is skipped.
//! With the `vault-attacker` feature, [`vault_attacker`] is the key vault client attack tests
//! use (plain HTTP, opaque-ke driven by hand), shared by the vault's and the CLI's tests.
//! It must never be a dependency of anything but tests.

#[cfg(feature = "vault-attacker")]
pub mod vault_attacker;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find_tool(name: &str, install: &str) -> PathBuf {
    if let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        for v in rd.flatten() {
            let p = v.path().join("bin").join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("{name} is needed for this test: run `{install}`");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb refuses root).
fn pg(tool: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    };
    c.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()))
}

/// A throwaway PostgreSQL server on 127.0.0.1, stopped and deleted on drop.
pub struct PgServer {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    port: u16,
}

impl PgServer {
    /// initdb in a temporary folder and start the server on a free loopback port (about 1 s).
    pub fn start() -> Self {
        Self::start_with(&[], "")
    }

    /// [`PgServer::start`], with `files` written into the server's folder first (owned by the
    /// server's user, mode 0600: a TLS key, say) and `options` added to its command line;
    /// `{dir}` in `options` names that folder. For example TLS:
    /// `-c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key`.
    pub fn start_with(files: &[(&str, &[u8])], options: &str) -> Self {
        let initdb = find_tool("initdb", "apt-get install -y postgresql");
        let pg_ctl = find_tool("pg_ctl", "apt-get install -y postgresql");
        let dir = tempfile::Builder::new()
            .prefix("sealback-pg-")
            .tempdir()
            .unwrap();
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        for (name, content) in files {
            write_private(&dir.path().join(name), content);
        }
        let data = dir.path().join("data");
        let out = pg(
            &initdb,
            &[
                "-A",
                "trust",
                "--no-sync",
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200 {}",
            dir.path().display(),
            options.replace("{dir}", &dir.path().display().to_string())
        );
        let log = dir.path().join("pg.log");
        let out = pg(
            &pg_ctl,
            &[
                "-w",
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self { dir, pg_ctl, port }
    }

    /// A connection URL, plain (`sslmode=disable`: the server is on loopback).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = pg(
            &self.pg_ctl,
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

/// Writes a file only its owner reads (the `postgres` user when we are root).
fn write_private(path: &Path, content: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if is_root() {
        Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .unwrap();
    }
}

/// The SoftHSM2 PKCS#11 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 token directory for this test process. SoftHSM2 reads `SOFTHSM2_CONF` once per
/// process, so every test in a process shares one directory and makes its own token in it.
pub struct SoftHsm {
    /// The configuration file to put in `SOFTHSM2_CONF` (for child processes too).
    pub conf: PathBuf,
    /// The token directory (what a thief of the HSM's disk would get).
    pub tokens: PathBuf,
}

static SOFTHSM: std::sync::OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> =
    std::sync::OnceLock::new();

impl SoftHsm {
    /// The process's SoftHSM2 directory, made (and `SOFTHSM2_CONF` set) on first use.
    pub fn shared() -> Self {
        let (_, conf, tokens) = SOFTHSM.get_or_init(|| {
            find_tool("softhsm2-util", "apt-get install -y softhsm2");
            assert!(
                Path::new(SOFTHSM_MODULE).exists(),
                "{SOFTHSM_MODULE} is missing: run `apt-get install -y softhsm2`"
            );
            let dir = tempfile::Builder::new()
                .prefix("sealback-hsm-")
                .tempdir()
                .unwrap();
            let tokens = dir.path().join("tokens");
            std::fs::create_dir_all(&tokens).unwrap();
            let conf = dir.path().join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    tokens.display()
                ),
            )
            .unwrap();
            // Set before any PKCS#11 use in this process.
            std::env::set_var("SOFTHSM2_CONF", &conf);
            (dir, conf, tokens)
        });
        Self {
            conf: conf.clone(),
            tokens: tokens.clone(),
        }
    }

    /// Initialises a new token with this label and user PIN. Tests of one process share the
    /// token directory, and two `softhsm2-util --init-token --free` at once can race for the
    /// same free slot (seen as intermittent failures of parallel realm tests): one at a time.
    pub fn init_token(&self, label: &str, pin: &str) {
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        // Running vaults of other tests write their tokens in the same directory; while one does,
        // softhsm2-util can fail to read that token ("Could not get info about the token in slot
        // N") before it has changed anything. Such a failure is tried again, at most three times.
        let mut out = None;
        for _ in 0..3 {
            let tried = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &self.conf)
                .args([
                    "--init-token",
                    "--free",
                    "--label",
                    label,
                    "--so-pin",
                    "so-pin-1234",
                    "--pin",
                    pin,
                ])
                .output()
                .expect("softhsm2-util runs");
            let done = tried.status.success();
            out = Some(tried);
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let out = out.expect("tried at least once");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Waits until something listens on `port`, or panics with `what` and its log.
fn wait_for_port(port: u16, what: &str, child: &mut std::process::Child, log: &Path) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on 127.0.0.1:{port} within 15 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A server process that is stopped when its owner is dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_logged(mut cmd: Command, dir: &Path) -> (std::process::Child, PathBuf) {
    let log = dir.join("server.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, log)
}

/// A throwaway S3-compatible server (moto) on loopback, with one bucket; stopped on drop.
pub struct S3Server {
    _child: KillOnDrop,
    /// Its endpoint URL.
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Access key the server accepts (moto accepts any signed request).
    pub const ACCESS_KEY: &'static str = "sealback-test";
    /// Secret key.
    pub const SECRET_KEY: &'static str = "sealback-test-secret";

    /// Starts moto_server and creates `bucket`.
    pub fn start(bucket: &str) -> Self {
        let tool = find_tool("moto_server", "pip install 'moto[server]'");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new(tool);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let (mut child, log) = spawn_logged(cmd, dir.path());
        wait_for_port(port, "moto_server", &mut child, &log);
        let endpoint = format!("http://127.0.0.1:{port}");
        // Create the bucket with a plain (unsigned) PUT: moto allows it.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        use std::io::{Read, Write};
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "creating bucket {bucket}: {reply}"
        );
        Self {
            _child: KillOnDrop(child),
            endpoint,
            _dir: dir,
        }
    }

    /// The sealback location of `prefix` in `bucket`.
    pub fn location(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "s3://{bucket}/{prefix}?endpoint={}&region=us-east-1",
            self.endpoint
        )
    }

    /// Sets the credentials sealback reads for S3.
    pub fn set_credentials_env() {
        std::env::set_var("SEALBACK_S3_ACCESS_KEY_ID", Self::ACCESS_KEY);
        std::env::set_var("SEALBACK_S3_SECRET_ACCESS_KEY", Self::SECRET_KEY);
    }
}

/// A throwaway WebDAV server (`rclone serve webdav`) over a temporary folder, with a user and
/// password; stopped on drop.
pub struct WebDavServer {
    _child: KillOnDrop,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The folder it serves.
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl WebDavServer {
    /// User name.
    pub const USER: &'static str = "sealback";
    /// Password.
    pub const PASSWORD: &'static str = "sealback-test-password";

    /// Starts rclone.
    pub fn start() -> Self {
        let tool = find_tool("rclone", "sudo apt-get install -y rclone");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("served");
        std::fs::create_dir_all(&root).unwrap();
        let port = free_port();
        let mut cmd = Command::new(tool);
        cmd.args(["serve", "webdav"])
            .arg(&root)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--user", Self::USER, "--pass", Self::PASSWORD])
            .env("RCLONE_CONFIG", dir.path().join("rclone.conf"));
        let (mut child, log) = spawn_logged(cmd, dir.path());
        wait_for_port(port, "rclone serve webdav", &mut child, &log);
        Self {
            _child: KillOnDrop(child),
            host: format!("127.0.0.1:{port}"),
            root,
            _dir: dir,
        }
    }

    /// The sealback location of `path` on this server.
    pub fn location(&self, path: &str) -> String {
        format!("webdav+http://{}/{path}", self.host)
    }

    /// Sets the credentials sealback reads for WebDAV.
    pub fn set_credentials_env() {
        std::env::set_var("SEALBACK_WEBDAV_USER", Self::USER);
        std::env::set_var("SEALBACK_WEBDAV_PASSWORD", Self::PASSWORD);
    }
}
