//! Threshold vault realms (tvr1) as a cluster: three `sealback vault serve --realm` processes
//! on loopback, each with its own SQLite file and its own SoftHSM2 token, real operator-signed
//! account proofs naming each realm as audience, and the realm client of
//! `sealback-vault-client`. The attacks are written against this cluster.

use sealback_core::keyslot::SlotId;
use sealback_core::vault::VaultId;
use sealback_core::RepoId;
use sealback_proto::proof::{Claims, OperatorSigner, Scope};
use sealback_tvr::{Argon2Cost, NewSlot, Outcome, RealmRecord, Recovery, TvrParams};
use sealback_vault_client::realms::{RealmEndpoint, Realms};
use sealback_vault_client::{Password, VaultError};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sealback");
const PIN: &str = "1357";
const REPO: RepoId = RepoId([0x0f; 16]);
const SLOT: SlotId = SlotId([0x5a; 16]);
/// Cheap Argon2 for tests (the default is 64 MiB, 3 passes, 4 lanes).
const CHEAP: Argon2Cost = Argon2Cost {
    memory_kib: 64,
    passes: 1,
    lanes: 1,
};

/// One realm process with its own database and token.
struct RealmProcess {
    child: Option<Child>,
    dir: PathBuf,
    token: String,
    operator: String,
    url: String,
    port: u16,
}

impl RealmProcess {
    fn start(dir: &Path, token: &str, operator: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let hsm = sealback_testkit::SoftHsm::shared();
        hsm.init_token(token, PIN);
        let mut r = Self {
            child: None,
            dir: dir.to_path_buf(),
            token: token.into(),
            operator: operator.into(),
            url: String::new(),
            port: 0,
        };
        r.run("127.0.0.1:0");
        r
    }

    /// (Re)starts the process on its database and token, on `listen`.
    fn run(&mut self, listen: &str) {
        let hsm = sealback_testkit::SoftHsm::shared();
        let db = format!("sqlite:{}", self.dir.join("realm.db").display());
        // A realm that exits before printing its address is started again (up to 3 times): its
        // token directory is shared with the other tests of this process, and a token being made
        // by one of them at the moment this one scans the directory made a start fail (once in
        // several runs). Its error output is kept and shown if it never starts.
        let log = self.dir.join("realm.stderr");
        let mut started = None;
        for _ in 0..3 {
            let mut child = Command::new(BIN)
                .args(["vault", "serve", "--listen", listen, "--database", &db])
                .args(["--realm", "--realm-limit", "5"])
                .args(["--operator-key", &self.operator])
                .args(["--rate-per-account", "0", "--rate-per-source", "0"])
                .args(["--hsm-module", sealback_testkit::SOFTHSM_MODULE])
                .args(["--hsm-token", &self.token])
                .env("SEALBACK_HSM_PIN", PIN)
                .env("SOFTHSM2_CONF", &hsm.conf)
                .env_remove("SEALBACK_VAULT_URL")
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            if line.starts_with("http://127.0.0.1:") {
                started = Some((child, line));
                break;
            }
            let _ = child.wait();
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let Some((child, line)) = started else {
            panic!(
                "the realm did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        self.url = line.trim().to_string();
        self.port = self.url.rsplit(':').next().unwrap().parse().unwrap();
        self.child = Some(child);
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts a killed realm on its old address.
    fn restart(&mut self) {
        self.kill();
        let listen = format!("127.0.0.1:{}", self.port);
        self.run(&listen);
    }

    fn info(&self) -> RealmEndpoint {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let info = rt
            .block_on(
                sealback_vault_client::VaultClient::new(&self.url)
                    .unwrap()
                    .info(),
            )
            .unwrap();
        let realm = info.realm.expect("a realm publishes its realm info");
        RealmEndpoint {
            id: sealback_proto::proof::parse_vault_id(&realm.realm_id).unwrap(),
            url: self.url.clone(),
            share_key: realm.realm_key.try_into().unwrap(),
        }
    }

    fn db_files(&self) -> Vec<PathBuf> {
        ["realm.db", "realm.db-wal", "realm.db-shm"]
            .iter()
            .map(|f| self.dir.join(f))
            .collect()
    }

    /// The count the realm's database holds for `account` (as its operator would read it).
    fn has_share(&self, account: &str) -> bool {
        let c = rusqlite::Connection::open(self.dir.join("realm.db")).unwrap();
        c.query_row(
            "SELECT count(*) FROM tvr_records WHERE account = ?1",
            [account],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            > 0
    }
}

impl Drop for RealmProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = Command::new("kill").args(["-CONT", &self.pid()]).status();
        }
        self.kill();
    }
}

struct Cluster {
    _tmp: tempfile::TempDir,
    realms: Vec<RealmProcess>,
    endpoints: Vec<RealmEndpoint>,
    signer: OperatorSigner,
    rt: tokio::runtime::Runtime,
}

impl Cluster {
    fn start(name: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let (signer, _) = OperatorSigner::generate();
        let operator = signer.public_key().to_text();
        let realms: Vec<RealmProcess> = (1..=3)
            .map(|i| {
                RealmProcess::start(
                    &tmp.path().join(format!("realm{i}")),
                    &format!("{name}-{i}"),
                    &operator,
                )
            })
            .collect();
        let endpoints = realms.iter().map(RealmProcess::info).collect();
        Self {
            _tmp: tmp,
            realms,
            endpoints,
            signer,
            rt: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn proof(&self, account: &str, realm: VaultId, scope: Scope) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        self.signer.issue(&Claims {
            account: account.into(),
            scope,
            aud: Some(realm),
            iat: now,
            exp: now + 600,
        })
    }

    fn client(&self, endpoints: Vec<RealmEndpoint>) -> Realms {
        Realms::new(endpoints, Duration::from_secs(2)).unwrap()
    }

    fn register(&self, account: &str, password: &str) -> (TvrParams, Vec<u8>) {
        let new = NewSlot {
            repo: REPO,
            slot: SLOT,
            account,
            threshold: 2,
            limit: 5,
            argon2: CHEAP,
        };
        let proofs = |id, scope| self.proof(account, id, scope);
        let (params, secret) = self
            .rt
            .block_on(self.client(self.endpoints.clone()).register(
                &new,
                &Password::new(password.into()),
                &proofs,
            ))
            .unwrap();
        (params, secret.expose_secret().to_vec())
    }

    fn unlock_via(
        &self,
        endpoints: Vec<RealmEndpoint>,
        params: &TvrParams,
        password: &str,
    ) -> Result<sealback_vault_client::realms::RealmUnlock, VaultError> {
        let proofs = |id, scope| self.proof(&params.account, id, scope);
        self.rt.block_on(self.client(endpoints).unlock(
            params,
            REPO,
            SLOT,
            &Password::new(password.into()),
            &proofs,
        ))
    }

    fn unlock(
        &self,
        params: &TvrParams,
        password: &str,
    ) -> Result<sealback_vault_client::realms::RealmUnlock, VaultError> {
        self.unlock_via(self.endpoints.clone(), params, password)
    }

    /// `POST /v1/tvr/evaluate` at realm `i` (0-based) as a plain HTTP client.
    fn evaluate_raw(&self, i: usize, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.rt.block_on(async {
            let r = reqwest::Client::new()
                .post(format!("{}/v1/tvr/evaluate", self.realms[i].url))
                .json(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or_default())
        })
    }
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn unb64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v.as_str().unwrap())
        .unwrap()
}

#[test]
fn realms_unlock_with_one_killed_or_frozen_and_fail_cleanly_with_two_down() {
    let mut c = Cluster::start("tvr-faults");
    let (params, secret) = c.register("ann", "hunter2 but longer");
    let all = c.unlock(&params, "hunter2 but longer").unwrap();
    assert_eq!(all.secret.expose_secret(), &secret[..]);
    assert_eq!(
        all.confirmed.len(),
        3,
        "every reachable realm takes its tag"
    );

    // One realm killed (SIGKILL): the other two answer.
    c.realms[0].signal("-KILL");
    let _ = c.realms[0].child.take().map(|mut ch| ch.wait());
    let one_down = c.unlock(&params, "hunter2 but longer").unwrap();
    assert_eq!(one_down.secret.expose_secret(), &secret[..]);
    assert_eq!(one_down.confirmed.len(), 2);

    // One realm frozen (SIGSTOP): it is given up on after the timeout, another is asked.
    c.realms[0].restart();
    c.realms[1].signal("-STOP");
    let frozen = c.unlock(&params, "hunter2 but longer").unwrap();
    assert_eq!(frozen.secret.expose_secret(), &secret[..]);
    assert!(frozen
        .unavailable
        .iter()
        .any(|(id, _)| *id == c.endpoints[1].id));

    // Two down: a clean failure that destroys nothing; once they are back, it unlocks.
    c.realms[0].kill();
    let two_down = c.unlock(&params, "hunter2 but longer");
    match &two_down {
        Err(VaultError::Realms(msg)) => assert!(msg.contains("only 1 of the 2"), "{msg}"),
        other => panic!("{other:?}"),
    }
    c.realms[1].signal("-CONT");
    c.realms[0].restart();
    for r in &c.realms {
        assert!(r.has_share("ann"), "no share was destroyed");
    }
    let back = c.unlock(&params, "hunter2 but longer").unwrap();
    assert_eq!(back.secret.expose_secret(), &secret[..]);

    // A wrong password is told as such, and counts.
    match c.unlock(&params, "hunter3") {
        Err(VaultError::WrongPassword { remaining }) => assert_eq!(remaining, 4),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn registration_fails_closed_when_a_realm_is_down() {
    let mut c = Cluster::start("tvr-register");
    c.realms[2].kill();
    let new = NewSlot {
        repo: REPO,
        slot: SLOT,
        account: "bea",
        threshold: 2,
        limit: 5,
        argon2: CHEAP,
    };
    let proofs = |id, scope| c.proof("bea", id, scope);
    let r = c.rt.block_on(c.client(c.endpoints.clone()).register(
        &new,
        &Password::new("pw".into()),
        &proofs,
    ));
    assert!(r.is_err(), "no slot without every realm");
}

#[test]
fn a_realm_refuses_a_proof_made_for_another_realm() {
    let c = Cluster::start("tvr-aud");
    let (params, _) = c.register("cid", "pw");
    // Realm 1 replays the proof the client gave it at realm 2.
    let for_realm_1 = c.proof("cid", c.endpoints[0].id, Scope::Login);
    let body = serde_json::json!({
        "account": "cid",
        "proof": for_realm_1,
        "version": b64(&params.version),
        "blinded": b64(&[0xe2; 32]),
    });
    let (status, reply) = c.evaluate_raw(1, &body);
    assert_eq!(status, 403, "{reply}");
    // And a proof without an audience (version 1) is refused at a realm too.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let v1 = c.signer.issue(&Claims {
        account: "cid".into(),
        scope: Scope::Login,
        aud: None,
        iat: now,
        exp: now + 600,
    });
    let (status, _) = c.evaluate_raw(1, &serde_json::json!({
        "account": "cid", "proof": v1, "version": b64(&params.version), "blinded": b64(&[0xe2; 32]),
    }));
    assert_eq!(status, 403);
    // Neither was counted: the right password still has every evaluation.
    match c.unlock(&params, "nope") {
        Err(VaultError::WrongPassword { remaining }) => assert_eq!(remaining, 4),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // An account the realm holds nothing for is answered like one it holds (an evaluation
    // with a proof, counted), so answers do not say whether an account exists.
    let mut rng = rand08::rngs::OsRng;
    let ids: Vec<VaultId> = c.endpoints.iter().map(|e| e.id).collect();
    let rec = Recovery::start(params.clone(), REPO, SLOT, b"anything", &ids, &mut rng).unwrap();
    let ask = |account: &str| {
        c.evaluate_raw(
            1,
            &serde_json::json!({
                "account": account,
                "proof": c.proof(account, c.endpoints[1].id, Scope::Login),
                "version": b64(&params.version),
                "blinded": b64(&rec.blinded_element()),
            }),
        )
    };
    let (known_status, known) = ask("cid");
    let (unknown_status, stranger) = ask("nobody-here");
    assert_eq!((known_status, unknown_status), (200, 200));
    assert_eq!(known["guesses_left"], 3);
    assert_eq!(stranger["guesses_left"], 4, "counted like a known account");
    for field in ["evaluated", "proof", "session"] {
        assert_eq!(
            unb64_len(&known[field], field),
            unb64_len(&stranger[field], field),
            "{field}"
        );
    }
    let (_, again) = ask("nobody-here");
    assert_eq!(
        again["evaluated"], stranger["evaluated"],
        "a stable answer, as for a real share"
    );
    // Another registration's version is answered like an unknown account (finding 3), and
    // counted.
    let (status, _) = c.evaluate_raw(
        1,
        &serde_json::json!({
            "account": "cid",
            "proof": c.proof("cid", c.endpoints[1].id, Scope::Login),
            "version": b64(&[0; 16]),
            "blinded": b64(&rec.blinded_element()),
        }),
    );
    assert_eq!(status, 200);
    assert_eq!(ask("cid").1["guesses_left"], 1);
}

fn unb64_len(v: &serde_json::Value, field: &str) -> usize {
    if field == "session" {
        return v.as_str().unwrap().len();
    }
    unb64(v).len()
}

/// What a [`ForgingProxy`] does to a realm's evaluations.
#[derive(Clone, Copy)]
enum Tamper {
    /// Flips a bit of the proof (a forged proof).
    FlipProof,
    /// Cuts the proof short (a reply that is no evaluation at all).
    TruncateProof,
    /// Closes the connection without forwarding the request (a realm lost mid-evaluate).
    Drop,
}

/// A proxy in front of a realm that tampers with every evaluation, and counts the confirms it
/// sees.
struct ForgingProxy {
    url: String,
    confirms: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ForgingProxy {
    fn start(upstream: &str) -> Self {
        Self::start_with(upstream, Tamper::FlipProof)
    }

    fn start_with(upstream: &str, tamper: Tamper) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.strip_prefix("http://").unwrap().to_string();
        let confirms = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = confirms.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (upstream, seen) = (upstream.clone(), seen.clone());
                std::thread::spawn(move || forward(stream, &upstream, &seen, tamper));
            }
        });
        Self { url, confirms }
    }
}

fn read_http(stream: &mut impl Read) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn forward(
    mut client: std::net::TcpStream,
    upstream: &str,
    confirms: &std::sync::atomic::AtomicUsize,
    tamper: Tamper,
) {
    while let Some((head, body)) = read_http(&mut client) {
        let first = head.lines().next().unwrap_or_default().to_string();
        if first.contains("/v1/tvr/confirm") {
            confirms.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if first.contains("/v1/tvr/evaluate") && matches!(tamper, Tamper::Drop) {
            return;
        }
        let mut up = std::net::TcpStream::connect(upstream).unwrap();
        let (method_path, _) = first.rsplit_once(' ').unwrap();
        write!(
            up,
            "{method_path} HTTP/1.1\r\nhost: {upstream}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        up.write_all(&body).unwrap();
        let (rhead, mut rbody) = read_http(&mut up).unwrap();
        if first.contains("/v1/tvr/evaluate") && rhead.starts_with("HTTP/1.1 200") {
            let mut v: serde_json::Value = serde_json::from_slice(&rbody).unwrap();
            let mut proof = unb64(&v["proof"]);
            match tamper {
                Tamper::FlipProof => proof[0] ^= 1,
                Tamper::TruncateProof => proof.truncate(10),
                Tamper::Drop => unreachable!("dropped before forwarding"),
            }
            v["proof"] = b64(&proof).into();
            rbody = serde_json::to_vec(&v).unwrap();
        }
        let status = rhead.lines().next().unwrap();
        let ctype = "content-type: application/json";
        if write!(
            client,
            "{status}\r\n{ctype}\r\ncontent-length: {}\r\n\r\n",
            rbody.len()
        )
        .and_then(|_| client.write_all(&rbody))
        .is_err()
        {
            return;
        }
    }
}

#[test]
fn a_forged_evaluation_proof_excludes_the_realm_and_it_gets_no_tag() {
    let c = Cluster::start("tvr-forge");
    let (params, secret) = c.register("dee", "pw of dee");
    let proxy = ForgingProxy::start(&c.realms[0].url);
    let mut endpoints = c.endpoints.clone();
    endpoints[0].url = proxy.url.clone();
    let unlock = c.unlock_via(endpoints, &params, "pw of dee").unwrap();
    assert_eq!(unlock.secret.expose_secret(), &secret[..]);
    assert_eq!(unlock.excluded, vec![c.endpoints[0].id]);
    assert_eq!(unlock.confirmed, vec![c.endpoints[1].id, c.endpoints[2].id]);
    assert_eq!(
        proxy.confirms.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the realm whose proof failed was sent no tag"
    );
}

#[test]
fn a_realm_answering_garbage_is_excluded_and_gets_no_tag() {
    let c = Cluster::start("tvr-garbage");
    let (params, secret) = c.register("gus", "pw of gus");
    let proxy = ForgingProxy::start_with(&c.realms[0].url, Tamper::TruncateProof);
    let mut endpoints = c.endpoints.clone();
    endpoints[0].url = proxy.url.clone();
    let unlock = c.unlock_via(endpoints, &params, "pw of gus").unwrap();
    assert_eq!(unlock.secret.expose_secret(), &secret[..]);
    assert_eq!(unlock.excluded, vec![c.endpoints[0].id]);
    assert_eq!(unlock.confirmed, vec![c.endpoints[1].id, c.endpoints[2].id]);
    assert_eq!(
        proxy.confirms.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the realm that answered garbage was sent no tag"
    );
}

#[test]
fn a_connection_dropped_mid_evaluate_is_replaced_and_the_realm_still_confirmed() {
    let c = Cluster::start("tvr-dropped");
    let (params, secret) = c.register("han", "pw of han");
    let proxy = ForgingProxy::start_with(&c.realms[0].url, Tamper::Drop);
    let mut endpoints = c.endpoints.clone();
    endpoints[0].url = proxy.url.clone();
    let unlock = c.unlock_via(endpoints, &params, "pw of han").unwrap();
    assert_eq!(unlock.secret.expose_secret(), &secret[..]);
    assert!(
        unlock.excluded.is_empty(),
        "a lost connection proves nothing false"
    );
    assert_eq!(unlock.unavailable.len(), 1);
    assert_eq!(unlock.unavailable[0].0, c.endpoints[0].id);
    let mut confirmed = unlock.confirmed.clone();
    confirmed.sort_by_key(|id| id.0);
    let mut all: Vec<VaultId> = c.endpoints.iter().map(|e| e.id).collect();
    all.sort_by_key(|id| id.0);
    assert_eq!(confirmed, all, "every realm that did not lie takes its tag");
    assert_eq!(proxy.confirms.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// The malicious realm's operator: it holds realm 3's database and token, so it can unseal
/// realm 3's key share and evaluate at will, and it restores realm 3's database after every
/// evaluation it lets realm 3 answer. With account proofs for every realm (the messaging
/// operator's power) it tests passwords; each test still needs one evaluation from realm 1 or 2.
struct Attacker<'a> {
    c: &'a mut Cluster,
    snapshot: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl<'a> Attacker<'a> {
    fn new(c: &'a mut Cluster) -> Self {
        Self {
            c,
            snapshot: Vec::new(),
        }
    }

    /// Copies realm 3's database files (with the process stopped, so the copy is whole).
    fn take_snapshot(&mut self) {
        self.c.realms[2].kill();
        self.snapshot = self.c.realms[2]
            .db_files()
            .into_iter()
            .map(|p| {
                let b = std::fs::read(&p).ok();
                (p, b)
            })
            .collect();
        self.c.realms[2].restart();
    }

    /// Puts realm 3's database back as it was (the rollback), and restarts it.
    fn roll_back(&mut self) {
        self.c.realms[2].kill();
        for (p, b) in &self.snapshot {
            match b {
                Some(b) => std::fs::write(p, b).unwrap(),
                None => {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        self.c.realms[2].restart();
    }

    /// Realm 3's key share for `account`, unsealed with realm 3's token.
    fn unseal(&self, account: &str) -> RealmRecord {
        let hsm = sealback_testkit::SoftHsm::shared();
        std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
        let sealer = sealback_vault::sealer::Pkcs11Sealer::open(
            Path::new(sealback_testkit::SOFTHSM_MODULE),
            &self.c.realms[2].token,
            PIN,
        )
        .unwrap();
        let integrity = sealback_vault::integrity::Integrity::new(std::sync::Arc::new(sealer));
        let conn = rusqlite::Connection::open(self.c.realms[2].dir.join("realm.db")).unwrap();
        let stored: Vec<u8> = conn
            .query_row(
                "SELECT sealed FROM tvr_records WHERE account = ?1",
                [account],
                |r| r.get(0),
            )
            .unwrap();
        let plain = integrity
            .open_record(sealback_vault::db::RecordKind::Realm, account, &stored)
            .unwrap();
        RealmRecord::decode(&plain).unwrap()
    }

    /// One password test: realm 3's evaluation (from the leaked share on odd tests, from
    /// realm 3 itself followed by a rollback on even ones), plus one honest realm's.
    /// `None` when no honest realm evaluates any more.
    fn test(
        &mut self,
        params: &TvrParams,
        share: &RealmRecord,
        n: usize,
        pw: &str,
    ) -> Option<bool> {
        let mut rng = rand08::rngs::OsRng;
        let ids: Vec<VaultId> = self.c.endpoints.iter().map(|e| e.id).collect();
        let mut rec =
            Recovery::start(params.clone(), REPO, SLOT, pw.as_bytes(), &ids, &mut rng).unwrap();
        let blinded = rec.blinded_element();
        let bodies: Vec<serde_json::Value> = ids
            .iter()
            .map(|realm| {
                serde_json::json!({
                    "account": params.account,
                    "proof": self.c.proof(&params.account, *realm, Scope::Login),
                    "version": b64(&params.version),
                    "blinded": b64(&blinded),
                })
            })
            .collect();
        let from_realm_3 = if n % 2 == 1 {
            share.evaluate(&blinded, &mut rng).unwrap()
        } else {
            let (status, v) = self.c.evaluate_raw(2, &bodies[2]);
            assert_eq!(status, 200, "realm 3 answers after every rollback: {v}");
            self.roll_back();
            sealback_tvr::Evaluation {
                element: unb64(&v["evaluated"]).try_into().unwrap(),
                proof: unb64(&v["proof"]).try_into().unwrap(),
            }
        };
        rec.accept(ids[2], &from_realm_3, 5).unwrap();
        for honest in [0, 1] {
            let (status, v) = self.c.evaluate_raw(honest, &bodies[honest]);
            if status == 200 {
                let answer = sealback_tvr::Evaluation {
                    element: unb64(&v["evaluated"]).try_into().unwrap(),
                    proof: unb64(&v["proof"]).try_into().unwrap(),
                };
                rec.accept(ids[honest], &answer, 0).unwrap();
                return Some(matches!(rec.finish(), Outcome::Unlocked { .. }));
            }
            assert_eq!(
                status, 423,
                "an honest realm past its limit says locked: {v}"
            );
        }
        None
    }
}

/// The guess bound of SPEC §7f.4 with n = 3, t = 2, L = 5 and one cheating realm (m = 1):
/// exactly ⌊(n − m)·L / (t − m)⌋ = 10 password tests, then the honest realms have destroyed
/// their shares and even the right password fails.
#[test]
fn a_realm_that_rolls_back_and_leaks_its_share_gives_an_attacker_exactly_ten_tests() {
    let mut c = Cluster::start("tvr-bound");
    // Two accounts: the right password is the 10th candidate for one and the 11th for the other.
    let (p10, s10) = c.register("tenth", "right-10");
    let (p11, _) = c.register("eleventh", "right-11");
    let mut attacker = Attacker::new(&mut c);
    attacker.take_snapshot();
    let share10 = attacker.unseal("tenth");
    let share11 = attacker.unseal("eleventh");

    let mut tests = 0;
    let mut found = false;
    for n in 1..=12 {
        let pw = if n == 10 {
            "right-10".to_string()
        } else {
            format!("guess-{n}")
        };
        match attacker.test(&p10, &share10, n, &pw) {
            Some(hit) => {
                tests += 1;
                found |= hit;
            }
            None => break,
        }
    }
    assert_eq!(tests, 10, "exactly the bound");
    assert!(found, "the 10th test is a real test: it found the password");

    let mut tests = 0;
    for n in 1..=12 {
        let pw = if n == 11 {
            "right-11".to_string()
        } else {
            format!("guess-{n}")
        };
        match attacker.test(&p11, &share11, n, &pw) {
            Some(hit) => {
                assert!(!hit);
                tests += 1;
            }
            None => break,
        }
    }
    assert_eq!(tests, 10, "no 11th test");
    // The honest realms destroyed their shares; realm 3's rolled-back copy alone is not enough,
    // so the owner's right password fails too.
    assert!(!c.realms[0].has_share("eleventh"));
    assert!(!c.realms[1].has_share("eleventh"));
    assert!(c.realms[2].has_share("eleventh"));
    let r = c.unlock(&p11, "right-11");
    assert!(
        matches!(r, Err(VaultError::Locked) | Err(VaultError::Realms(_))),
        "{:?}",
        r.map(|_| ())
    );
    // Realm 3 really did roll back: after its five evaluations for the attacker it counts two
    // (the owner's attempt above and this one), where an honest realm would have destroyed its
    // share by now (5 + 1 + 1 evaluations).
    let mut rng = rand08::rngs::OsRng;
    let ids: Vec<VaultId> = c.endpoints.iter().map(|e| e.id).collect();
    let rec = Recovery::start(p11.clone(), REPO, SLOT, b"x", &ids, &mut rng).unwrap();
    let (status, v) = c.evaluate_raw(
        2,
        &serde_json::json!({
            "account": "eleventh",
            "proof": c.proof("eleventh", ids[2], Scope::Login),
            "version": b64(&p11.version),
            "blinded": b64(&rec.blinded_element()),
        }),
    );
    assert_eq!((status, v["guesses_left"].as_u64()), (200, Some(3)), "{v}");
    assert_eq!(s10.len(), 32);
}

/// The realms file of a device: each realm's id, address and key, and the account proof made
/// for it (its own audience).
fn realms_file(c: &Cluster, dir: &Path, account: &str, scope: Scope) -> PathBuf {
    let mut text = String::from("threshold = 2\n");
    for (i, e) in c.endpoints.iter().enumerate() {
        let proof = dir.join(format!("proof-{i}-{scope:?}"));
        std::fs::write(&proof, c.proof(account, e.id, scope)).unwrap();
        text += &format!(
            "[[realm]]\nid = \"{}\"\nurl = \"{}\"\nkey = \"{}\"\nproof_file = \"{}\"\n",
            e.id.to_hex(),
            e.url,
            b64(&e.share_key),
            proof.display()
        );
    }
    let path = dir.join(format!("realms-{scope:?}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_cli_adds_a_realm_password_and_a_new_device_restores_with_it() {
    use super::vault::cli;
    let mut c = Cluster::start("tvr-cli");
    let tmp = tempfile::tempdir().unwrap();
    let (repo, key) = (tmp.path().join("cloud"), tmp.path().join("recovery.txt"));
    let (home_a, home_b) = (tmp.path().join("device-a"), tmp.path().join("device-b"));
    std::fs::create_dir_all(&home_a).unwrap();
    std::fs::create_dir_all(&home_b).unwrap();
    let k = key.to_str().unwrap();
    super::assert_ok(
        &cli(&home_a, &repo)
            .args(["--recovery-key-file", k, "init"])
            .output()
            .unwrap(),
    );
    let register = realms_file(&c, tmp.path(), "erin", Scope::Register);
    let out = cli(&home_a, &repo)
        .env("SEALBACK_ACCOUNT", "erin")
        .env("SEALBACK_PASSWORD", "erin's realm password")
        .env("SEALBACK_REALMS", &register)
        .args(["--recovery-key-file", k, "key", "add", "realm-password"])
        .output()
        .unwrap();
    super::assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("at most 10 passwords"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &sealback_corpus::ChatStoreSpec::tiny(5)).unwrap();
    super::assert_ok(
        &cli(&home_a, &repo)
            .args(["--recovery-key-file", k, "backup", chats.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let list = cli(&home_a, &repo)
        .args(["--json", "key", "list"])
        .output()
        .unwrap();
    super::assert_ok(&list);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let slot = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "realm-password")
        .expect("key list shows the realm password");
    assert_eq!(slot["realms"]["threshold"], 2);
    assert_eq!(slot["realms"]["realm_ids"].as_array().unwrap().len(), 3);

    // A new device: the repository, its realms file (login proofs) and the password.
    let login = realms_file(&c, tmp.path(), "erin", Scope::Login);
    let device_b = |password: &str| {
        let mut cmd = cli(&home_b, &repo);
        cmd.env("SEALBACK_ACCOUNT", "erin")
            .env("SEALBACK_PASSWORD", password)
            .env("SEALBACK_REALMS", &login);
        cmd
    };
    let target = tmp.path().join("restored");
    super::assert_ok(
        &device_b("erin's realm password")
            .args(["restore", "latest", "--target", target.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let cmp = sealback_corpus::compare(&chats, &target.join("chats")).unwrap();
    assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
    super::assert_exit(
        &device_b("not it").args(["snapshots"]).output().unwrap(),
        3,
        "attempts remain",
    );

    // Two realms down: a clean failure that says what to do, and the keys file is untouched.
    let keys_before = std::fs::read(repo.join("keys")).unwrap();
    c.realms[0].kill();
    c.realms[1].kill();
    let out = device_b("erin's realm password")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("only 1 of the 2 realms"), "{stderr}");
    assert_eq!(std::fs::read(repo.join("keys")).unwrap(), keys_before);
    c.realms[0].restart();
    super::assert_ok(
        &device_b("erin's realm password")
            .args(["snapshots"])
            .output()
            .unwrap(),
    );
}

#[test]
fn the_last_allowed_evaluation_still_unlocks_and_a_wrong_tag_resets_nothing() {
    let c = Cluster::start("tvr-confirm");
    let (params, secret) = c.register("fay", "fay's password");
    // Four wrong passwords: realms 1 and 2 are at 4 of 5.
    for left in (1..=4).rev() {
        match c.unlock(&params, "wrong") {
            Err(VaultError::WrongPassword { remaining }) => assert_eq!(remaining, left),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    // A confirm with a wrong tag is refused and resets nothing.
    let body = serde_json::json!({
        "account": "fay",
        "proof": c.proof("fay", c.endpoints[0].id, Scope::Login),
        "version": b64(&params.version),
        "tag": b64(&[7; 32]),
        "session": "",
    });
    let status = c.rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/v1/tvr/confirm", c.realms[0].url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 401);
    // The 5th evaluation (the last allowed) with the right password unlocks; its confirm puts
    // back the record it held and resets the count.
    let u = c.unlock(&params, "fay's password").unwrap();
    assert_eq!(u.secret.expose_secret(), &secret[..]);
    assert_eq!(u.confirmed.len(), 3);
    for r in &c.realms {
        assert!(r.has_share("fay"));
    }
    match c.unlock(&params, "wrong") {
        Err(VaultError::WrongPassword { remaining }) => assert_eq!(remaining, 4),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn concurrent_evaluations_at_one_realm_get_exactly_its_limit() {
    let c = Cluster::start("tvr-race");
    let (params, _) = c.register("gus", "gus's password");
    let mut rng = rand08::rngs::OsRng;
    let ids: Vec<VaultId> = c.endpoints.iter().map(|e| e.id).collect();
    let rec = Recovery::start(params.clone(), REPO, SLOT, b"guess", &ids, &mut rng).unwrap();
    let body = serde_json::json!({
        "account": "gus",
        "proof": c.proof("gus", ids[0], Scope::Login),
        "version": b64(&params.version),
        "blinded": b64(&rec.blinded_element()),
    });
    let url = format!("{}/v1/tvr/evaluate", c.realms[0].url);
    let statuses: Vec<u16> = c.rt.block_on(async {
        let http = reqwest::Client::new();
        let calls = (0..60).map(|_| {
            let (http, url, body) = (http.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                http.post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        });
        let mut out = Vec::new();
        for call in calls.collect::<Vec<_>>() {
            out.push(call.await.unwrap());
        }
        out
    });
    let answered = statuses.iter().filter(|s| **s == 200).count();
    let locked = statuses.iter().filter(|s| **s == 423).count();
    assert_eq!((answered, locked), (5, 55), "{statuses:?}");
    assert!(!c.realms[0].has_share("gus"));
}

// ---------------------------------------------------------------------------------------------
// Attacks on the tvr1 change (branch tvr-attack). Each test asserts the safe behaviour.

/// `POST path` at realm `i` (0-based) as a plain HTTP client: the status and the JSON body.
fn post_raw(
    c: &Cluster,
    i: usize,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    c.rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", c.realms[i].url))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    })
}

/// A registration of `account` dealt to the cluster's realms (threshold 2, limit 5), not sent:
/// the replay tests send (and resend) its requests themselves.
fn deal(c: &Cluster, account: &str, password: &[u8]) -> sealback_tvr::Registration {
    let new = NewSlot {
        repo: REPO,
        slot: SLOT,
        account,
        threshold: 2,
        limit: 5,
        argon2: CHEAP,
    };
    let realms: Vec<sealback_tvr::Realm> = c
        .endpoints
        .iter()
        .map(|e| sealback_tvr::Realm {
            id: e.id,
            share_key: e.share_key,
        })
        .collect();
    sealback_tvr::Registration::start(&new, password, &realms, &mut rand08::rngs::OsRng).unwrap()
}

/// `POST /v1/tvr/register` of request `r` at realm `i` as a plain HTTP client (what a proxy
/// that logged the body could send), with a fresh `register` proof; the status.
fn register_raw(c: &Cluster, i: usize, account: &str, r: &sealback_tvr::ShareRequest) -> u16 {
    let body = serde_json::json!({
        "account": account,
        "proof": c.proof(account, c.endpoints[i].id, Scope::Register),
        "index": r.index,
        "threshold": r.threshold,
        "limit": r.limit,
        "version": b64(&r.version),
        "enc": b64(&r.enc),
        "sealed": b64(&r.sealed),
    });
    post_raw(c, i, "/v1/tvr/register", &body).0
}

fn expect_wrong(r: Result<sealback_vault_client::realms::RealmUnlock, VaultError>) -> u32 {
    match r {
        Err(VaultError::WrongPassword { remaining }) => remaining,
        other => panic!("expected a wrong password, got {:?}", other.map(|_| ())),
    }
}

/// Finding 1: whoever logged a registration's request bodies (a TLS-terminating proxy that
/// logs bodies, say) and holds a `register` proof replays them: the realm stores the same share
/// again and storing a record resets its count, so the password gets fresh guesses without the
/// tag. Safe: re-registering the version a realm already holds changes nothing.
#[test]
fn a_replayed_registration_does_not_refund_guesses() {
    let c = Cluster::start("tvr-replay");
    let account = "hal";
    let reg = deal(&c, account, b"hal's password");
    let requests = reg.requests().to_vec();
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(register_raw(&c, i, account, r), 204);
    }
    let ids: Vec<VaultId> = c.endpoints.iter().map(|e| e.id).collect();
    let (params, _) = reg.finish(&ids).unwrap();
    for left in (1..=4).rev() {
        assert_eq!(expect_wrong(c.unlock(&params, "wrong")), left);
    }
    // The replay, with a fresh `register` proof but the logged bodies.
    for (i, r) in requests.iter().enumerate() {
        let status = register_raw(&c, i, account, r);
        assert_ne!(status, 429, "rate limited: the test proves nothing");
    }
    assert_eq!(
        expect_wrong(c.unlock(&params, "wrong")),
        0,
        "a replayed registration refunded the guesses"
    );
}

/// Finding 2: the drive's operator raises the slot's Argon2 passes (or flips `C`, or any
/// stretch parameter). Every realm proof still verifies, the commitment cannot match, and the
/// client tells its user "wrong password" for the right one while each try burns one
/// evaluation at `t` realms: `L` tries and the honest realms destroy the share. Safe: the
/// client tells tampered params from a wrong password (and burns nothing telling them apart).
#[test]
#[ignore = "finding 2 (open, design): a drive that changes slot params makes the right password look wrong and burns the realms' evaluations; needs a digest of the slot params bound into each sealed share, kept in the realm record (new record and wire format, tvr1 vectors) and compared by evaluate before counting, answered so that it does not reopen finding 3 (a held account refused, an unknown one evaluated); not done in the tvr-attack pass"]
fn a_drive_that_changes_the_stretch_does_not_make_the_right_password_look_wrong() {
    let c = Cluster::start("tvr-stretch");
    let (params, _) = c.register("ida", "ida's password");
    let mut forged = params.clone();
    forged.argon2.passes += 1;
    if let Err(VaultError::WrongPassword { remaining }) = c.unlock(&forged, "ida's password") {
        panic!("the right password was reported wrong ({remaining} left) after the drive changed the Argon2 cost");
    }
}

/// Finding 3: `/v1/tvr/confirm` (not counted) and `/v1/tvr/evaluate` tell a held account from
/// an unknown one: confirm answers 409 `version_mismatch` for a held account with another
/// version and 410 for an unknown one; evaluate answers 409 for a held account with another
/// version and 200 (a fake evaluation) for an unknown one. SPEC §7f: unknown accounts are
/// answered indistinguishably.
#[test]
fn confirm_and_evaluate_do_not_tell_a_held_account_from_an_unknown_one() {
    let c = Cluster::start("tvr-exists");
    let (params, _) = c.register("jo", "jo's password");
    let id = c.endpoints[0].id;
    let confirm = |account: &str| {
        post_raw(
            &c,
            0,
            "/v1/tvr/confirm",
            &serde_json::json!({
                "account": account,
                "proof": c.proof(account, id, Scope::Login),
                "version": b64(&[9; 16]),
                "tag": b64(&[7; 32]),
                "session": "",
            }),
        )
    };
    let (held, held_body) = confirm("jo");
    let (unknown, unknown_body) = confirm("nobody");
    assert_eq!(
        (held, &held_body["error"]),
        (unknown, &unknown_body["error"]),
        "confirm tells a held account from an unknown one, uncounted"
    );
    let ids: Vec<VaultId> = c.endpoints.iter().map(|e| e.id).collect();
    let rec = Recovery::start(params, REPO, SLOT, b"x", &ids, &mut rand08::rngs::OsRng).unwrap();
    let evaluate = |account: &str| {
        c.evaluate_raw(
            0,
            &serde_json::json!({
                "account": account,
                "proof": c.proof(account, id, Scope::Login),
                "version": b64(&[9; 16]),
                "blinded": b64(&rec.blinded_element()),
            }),
        )
        .0
    };
    assert_eq!(
        evaluate("jo"),
        evaluate("nobody"),
        "evaluate tells a held account from an unknown one"
    );
}

/// Regression (the attack failed): the drive cannot lower `t` below a majority, and a realm id
/// it adds that is not in the client's configuration is never asked nor sent a tag.
#[test]
fn the_drive_cannot_steer_tags_with_an_unconfigured_realm_or_lower_the_threshold() {
    let c = Cluster::start("tvr-steer");
    let (params, _) = c.register("kim", "kim's password");
    // The drive drops a realm and claims t = 1 of 2: refused by every reader.
    let mut low = params.clone();
    low.realms.truncate(2);
    low.threshold = 1;
    assert!(TvrParams::decode(&low.encode()).is_err());
    // The drive adds a fourth realm the client does not know (n = 4, t = 3 keeps the
    // majority rule): the client asks only configured realms, sends it nothing.
    let mut extra = params.clone();
    extra.realms.push(sealback_tvr::SlotRealm {
        id: VaultId([0xee; 16]),
        public_share: params.realms[0].public_share,
    });
    extra.threshold = 3;
    let u = c.unlock(&extra, "kim's password").unwrap();
    assert!(!u.confirmed.contains(&VaultId([0xee; 16])));
}

/// Finding 1b: the same replay after the last allowed evaluation (the record is then held
/// under that evaluation's session, not in its table, so the fix for finding 1 does not see
/// it) and of an older registration after a rotation: each stores the share again with a
/// fresh count. Safe: a registration a realm has seen before never resets a count.
#[test]
fn a_registration_replayed_after_the_last_evaluation_refunds_nothing() {
    let c = Cluster::start("tvr-replay2");
    let account = "lou";
    let reg = deal(&c, account, b"lou's pw");
    for (i, r) in reg.requests().iter().enumerate() {
        assert_eq!(register_raw(&c, i, account, r), 204);
    }
    let requests = reg.requests().to_vec();
    let ids: Vec<VaultId> = c.endpoints.iter().map(|e| e.id).collect();
    let (params, _) = reg.finish(&ids).unwrap();
    for left in (0..=4).rev() {
        assert_eq!(expect_wrong(c.unlock(&params, "wrong")), left);
    }
    for (i, r) in requests.iter().enumerate() {
        assert_ne!(
            register_raw(&c, i, account, r),
            429,
            "rate limited: the test proves nothing"
        );
    }
    if let Err(VaultError::WrongPassword { remaining }) = c.unlock(&params, "wrong") {
        panic!("a replayed registration refunded guesses: {remaining} left after the limit");
    }
}
