//! Issue 14, must show: at most 10 evaluated guesses per record under 500 concurrent attempts
//! mixing password and passkey starts and finishes, with the real `sealback vault serve`
//! process killed (SIGKILL) twice in the middle and restarted on the same database.
//!
//! The attacker is plain HTTP (reqwest) with opaque-ke's client driven by hand
//! (`sealback_testkit::vault_attacker`). It counts, from its side, every answer that evaluated a
//! guess: a `login/start` answered with an OPRF evaluation is one password guess, a
//! `passkey/login/start` answered with a challenge is one passkey guess (the one assertion its
//! finish may verify). An attempt cut off by a kill is sent again to the restarted vault, as an
//! attacker would. Nothing waits on time: the kills follow the answers seen.
//!
//! Requests are in flight at both kills by construction, whatever the vault's speed: the attempts
//! come in three waves. The first is sent at once; each kill first stops the vault (SIGSTOP),
//! then releases the next wave against the stopped process and waits until every attempt of it
//! has set off, and only then kills (SIGKILL). Each kill so cuts off at least a whole wave, and
//! the next vault process has that wave to answer, so the second kill always becomes due.

use super::vault::VaultProcess;
use sealback_passkey::SoftwareAuthenticator;
use sealback_testkit::vault_attacker as raw;
use std::path::Path;
use tokio::sync::{mpsc, watch};

const ACCOUNT: &str = "mia";
const PASSWORD: &[u8] = b"mia's password";
const ATTEMPTS: usize = 500;
const LIMIT: usize = 10;
/// Attempts held back for each of the two kills (released against the stopped vault).
const WAVE: usize = 100;
/// Starts the kills cut off (sent again to the next vault process).
static CUT_OFF: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The two record kinds, as the attacker and the audit trail name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Password,
    Passkey,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }
    fn audit_event(self) -> &'static str {
        match self {
            Kind::Password => "login",
            Kind::Passkey => "passkey_login",
        }
    }
}

/// How one attempt's start was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// The vault evaluated a guess (and the finish, if it was answered, did not unlock).
    Evaluated,
    /// `423 locked`: the record is gone; nothing was evaluated.
    Locked,
}

/// One attempt of `kind` against the vault at `url`: a start and, when it was answered with a
/// challenge, a finish with a wrong password or a wrong passkey's assertion. `Err` when the
/// vault went away before the start was answered.
async fn attempt(url: &str, kind: Kind, i: usize) -> Result<Answer, String> {
    let (start, finish) = match kind {
        Kind::Password => ("/v1/login/start", "/v1/login/finish"),
        Kind::Passkey => ("/v1/passkey/login/start", "/v1/passkey/login/finish"),
    };
    let guess = format!("guess {i}");
    let (state, body) = match kind {
        Kind::Password => {
            let (state, body) = raw::login_start_body(ACCOUNT, "dev", guess.as_bytes());
            (Some(state), body)
        }
        Kind::Passkey => (
            None,
            serde_json::json!({"account": ACCOUNT, "proof": "dev"}),
        ),
    };
    let (status, reply) = raw::try_post_json(url, start, &body).await?;
    match status {
        200 => {}
        423 => return Ok(Answer::Locked),
        other => panic!("{kind:?} start {i}: {other} {reply}"),
    }
    let finish_body = match state {
        Some(state) => raw::login_finish_body(state, guess.as_bytes(), &reply),
        None => {
            serde_json::json!({"session": reply["session"], "credential": raw::bogus_credential()})
        }
    };
    // The finish may be cut off by a kill: the guess was evaluated all the same.
    if let Ok((status, reply)) = raw::try_post_json(url, finish, &finish_body).await {
        // 401 wrong; 410 when another start destroyed the record (and its sessions) meanwhile.
        assert!(
            matches!(status, 401 | 410),
            "{kind:?} finish {i}: {status} {reply}"
        );
    }
    Ok(Answer::Evaluated)
}

/// Runs attempt `i` until the vault (whichever process is up) answers its start; reports each
/// answer on `answers`. It waits until `released` reaches its wave, and says on `set_off` when
/// its first try has read the vault's address and is about to send.
async fn attack(
    mut vault: watch::Receiver<Option<String>>,
    mut released: watch::Receiver<usize>,
    set_off: mpsc::UnboundedSender<usize>,
    answers: mpsc::UnboundedSender<(Kind, Answer, String)>,
    i: usize,
) {
    let kind = if i.is_multiple_of(2) {
        Kind::Password
    } else {
        Kind::Passkey
    };
    let wave = wave_of(i);
    released
        .wait_for(|&up_to| wave <= up_to)
        .await
        .expect("the test holds the sender");
    let mut first = true;
    loop {
        let url = vault
            .wait_for(Option::is_some)
            .await
            .expect("the test holds the sender")
            .clone()
            .unwrap();
        if std::mem::take(&mut first) {
            let _ = set_off.send(i);
        }
        match attempt(&url, kind, i).await {
            Ok(answer) => {
                let _ = answers.send((kind, answer, url));
                return;
            }
            // Killed mid-request: wait for the next vault process, then try again.
            Err(_) => {
                CUT_OFF.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = vault
                    .wait_for(|now| now.as_deref() != Some(url.as_str()))
                    .await;
            }
        }
    }
}

/// The wave attempt `i` belongs to: 0 is sent at once, 1 and 2 at the first and second kill.
fn wave_of(i: usize) -> usize {
    match ATTEMPTS - i {
        n if n <= WAVE => 2,
        n if n <= 2 * WAVE => 1,
        _ => 0,
    }
}

/// Stops `pid` (SIGSTOP) so it answers nothing more until it is killed.
fn stop(pid: u32) {
    let pid = libc::pid_t::try_from(pid).unwrap();
    // SAFETY: kill(2) with a valid signal; the pid is our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGSTOP) },
        0,
        "SIGSTOP {pid}"
    );
}

/// The vault's audit trail: guesses it counted of each kind since audit row `after`.
fn audited_guesses(vault_dir: &Path, after: i64) -> [usize; 2] {
    let db = rusqlite::Connection::open(vault_dir.join("vault.db")).unwrap();
    [Kind::Password, Kind::Passkey].map(|kind| {
        db.query_row(
            "SELECT count(*) FROM audit WHERE id > ?1 AND account = ?2 AND event = ?3 AND outcome = 'counted'",
            rusqlite::params![after, ACCOUNT, kind.audit_event()],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as usize
    })
}

fn last_audit_row(vault_dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(vault_dir.join("vault.db")).unwrap();
    db.query_row("SELECT coalesce(max(id), 0) FROM audit", [], |r| r.get(0))
        .unwrap()
}

/// The account's password and passkey records, each checked to unlock before the attack.
async fn enrol(
    url: &str,
    dir: &Path,
) -> (
    SoftwareAuthenticator,
    sealback_vault_client::VaultPasskeyParams,
) {
    raw::register(url, ACCOUNT, PASSWORD).await;
    let (status, reply) = raw::login(url, ACCOUNT, PASSWORD).await;
    assert_eq!(
        status, 200,
        "the right password unlocks before the attack: {reply}"
    );
    let mut passkey = SoftwareAuthenticator::open_or_create(
        &dir.join("mia's phone.sbpk"),
        sealback_passkey::store::Pin::new("2468".into()),
        false, // no PRF: the vault's passkey protector is for such providers
        sealback_core::passkey::KdfParams {
            memory_kib: 1024,
            passes: 1,
            lanes: 1,
        },
    )
    .unwrap();
    let client = sealback_vault_client::VaultClient::new(url).unwrap();
    let (params, _) = client
        .passkey_register(ACCOUNT, "dev", None, &mut passkey)
        .await
        .unwrap();
    client
        .passkey_login(&params, "dev", &mut passkey)
        .await
        .unwrap();
    (passkey, params)
}

#[test]
fn five_hundred_concurrent_attempts_and_two_kills_evaluate_at_most_ten_guesses_per_record() {
    let tmp = tempfile::tempdir().unwrap();
    let vault_dir = tmp.path().join("vault");
    std::fs::create_dir_all(&vault_dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut vault = VaultProcess::start(&vault_dir);
    let (mut passkey, params) = rt.block_on(enrol(&vault.url, tmp.path()));
    let before = last_audit_row(&vault_dir);

    let (current, watching) = watch::channel(Some(vault.url.clone()));
    let (release, released) = watch::channel(0);
    let (set_off_tx, mut set_off) = mpsc::unbounded_channel();
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let mut seen = [[0usize; 2]; 2]; // [kind][evaluated, locked]
    let mut kills = 0;
    rt.block_on(async {
        let tasks: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                tokio::spawn(attack(
                    watching.clone(),
                    released.clone(),
                    set_off_tx.clone(),
                    answers_tx.clone(),
                    i,
                ))
            })
            .collect();
        drop((answers_tx, set_off_tx));
        while let Some((kind, answer, by)) = answers.recv().await {
            seen[kind.index()][usize::from(answer == Answer::Locked)] += 1;
            // The first kill when the first guess was evaluated, the second as soon as the
            // restarted vault has answered anything (it always has the wave the first kill
            // cut off to answer).
            let due = match kills {
                0 => answer == Answer::Evaluated,
                1 => by == vault.url,
                _ => false,
            };
            if due {
                // Freeze the vault, send the next wave at it and wait until all of it set off:
                // the kill then cuts off at least that wave, whatever was answered before.
                stop(vault.child.id());
                kills += 1;
                release.send_replace(kills);
                let mut waiting = WAVE;
                while waiting > 0 {
                    let i = set_off.recv().await.expect("every attempt sets off");
                    assert!(wave_of(i) <= kills, "attempt {i} set off before its wave");
                    waiting -= usize::from(wave_of(i) == kills);
                }
                current.send_replace(None);
                vault.child.kill().unwrap(); // SIGKILL
                vault.child.wait().unwrap();
                vault = VaultProcess::start(&vault_dir);
                current.send_replace(Some(vault.url.clone()));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(kills, 2);
    let cut_off = CUT_OFF.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        cut_off >= 2 * WAVE,
        "each kill cut off at least the wave sent to the stopped vault: {cut_off}"
    );
    let evaluated = seen.map(|[evaluated, _]| evaluated);
    let locked: usize = seen.iter().map(|[_, locked]| locked).sum();
    assert_eq!(
        evaluated.iter().sum::<usize>() + locked,
        ATTEMPTS,
        "every attempt was answered"
    );
    let audited = audited_guesses(&vault_dir, before);
    for kind in [Kind::Password, Kind::Passkey] {
        let (attacker, vault) = (evaluated[kind.index()], audited[kind.index()]);
        assert!(attacker <= LIMIT, "{kind:?}: {attacker} guesses evaluated");
        assert!(vault <= LIMIT, "{kind:?}: the vault counted {vault}");
        // Each answer the attacker saw was counted first; a count whose answer a kill cut off
        // is in the trail without an answer.
        assert!(
            attacker <= vault,
            "{kind:?}: saw {attacker}, audited {vault}"
        );
        // Locked answers mean the limit was reached: exactly the limit was counted.
        assert!(
            seen[kind.index()][1] > 0,
            "{kind:?}: the limit was never reached"
        );
        assert_eq!(vault, LIMIT, "{kind:?}: counted guesses");
    }
    println!(
        "evaluated (attacker) {evaluated:?}, counted (audit) {audited:?}, locked {locked}, starts cut off by the kills {cut_off}"
    );
    // After the limit, the right password and the right passkey fail too: both records are gone.
    rt.block_on(async {
        let (status, reply) = raw::login(&vault.url, ACCOUNT, PASSWORD).await;
        assert_eq!(status, 423, "{reply}");
        let client = sealback_vault_client::VaultClient::new(&vault.url).unwrap();
        let r = client.passkey_login(&params, "dev", &mut passkey).await;
        assert!(
            matches!(r, Err(sealback_vault_client::VaultError::Locked)),
            "{:?}",
            r.map(|_| ())
        );
    });
    let db = rusqlite::Connection::open(vault_dir.join("vault.db")).unwrap();
    for table in ["records", "passkeys", "held"] {
        let rows: i64 = db
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE account = ?1"),
                [ACCOUNT],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 0, "{table} still holds {ACCOUNT}'s key");
    }
}
