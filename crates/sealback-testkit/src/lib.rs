//! # sealback-testkit: real servers for tests
//!
//! Owns starting and stopping throwaway servers on loopback for tests: PostgreSQL today. A
//! missing tool fails the test with the command that installs it; nothing is skipped.
//! It must never be a dependency of anything but tests.

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
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200",
            dir.path().display()
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

    /// A connection URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
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

    /// Initialises a new token with this label and user PIN.
    pub fn init_token(&self, label: &str, pin: &str) {
        let out = Command::new("softhsm2-util")
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
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
