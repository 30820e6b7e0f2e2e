//! Ceremony sessions: the vault's state between the two requests of a registration, a login or
//! a passkey ceremony, sealed in the sessions table.
//!
//! A session is typed by its [`Ceremony`] three times over: the type is the prefix of its id
//! (`login.` followed by 32 hex digits), part of its sealing context, and the first field of
//! its stored state. A finish route takes only sessions of its own ceremony and refuses any
//! other before touching the database, as a 4xx that is audited (issue 14: a passkey-login
//! session once finished a password login, because opaque-ke read the first 128 bytes of the
//! passkey state as its own). State with leftover bytes does not decode.

use crate::db::{AuditEntry, RecordKind};
use crate::service::{decode_fields, encode_fields, random_hex, Fields, Vault, VaultError};
use zeroize::Zeroizing;

/// The ceremony a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ceremony {
    /// `register/start` → `register/finish`.
    Register,
    /// `login/start` → `login/finish`.
    Login,
    /// `passkey/register/start` → `passkey/register/finish`.
    PasskeyRegister,
    /// `passkey/login/start` → `passkey/login/finish`.
    PasskeyLogin,
    /// `passkey/signin/start` → `passkey/signin/finish`.
    PasskeySignin,
}

impl Ceremony {
    const ALL: [Ceremony; 5] = [
        Ceremony::Register,
        Ceremony::Login,
        Ceremony::PasskeyRegister,
        Ceremony::PasskeyLogin,
        Ceremony::PasskeySignin,
    ];

    /// The prefix of its session ids, its sealing context and the first field of its state.
    fn tag(self) -> &'static str {
        match self {
            Ceremony::Register => "register",
            Ceremony::Login => "login",
            Ceremony::PasskeyRegister => "passkey-register",
            Ceremony::PasskeyLogin => "passkey-login",
            Ceremony::PasskeySignin => "passkey-signin",
        }
    }

    /// The ceremony a session id names, if it is well formed.
    fn of(session: &str) -> Option<Self> {
        let (tag, random) = session.split_once('.')?;
        let well_formed = random.len() == 32
            && random
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        Self::ALL
            .into_iter()
            .find(|c| c.tag() == tag)
            .filter(|_| well_formed)
    }
}

/// The sealing context of a session: its ceremony, its id and its account.
fn session_aad(ceremony: Ceremony, id: &str, account: &str) -> Vec<u8> {
    [
        b"sealback vault 2026-12-02 session:".as_slice(),
        ceremony.tag().as_bytes(),
        b":",
        id.as_bytes(),
        b":",
        account.as_bytes(),
    ]
    .concat()
}

/// A login's session as [`Vault::take_login`] returns it: the account, the protocol's state
/// fields, and the record a last guess took out (to put back on success).
pub(crate) struct LoginSession {
    pub account: String,
    pub state: Fields,
    pub taken: Vec<(RecordKind, Vec<u8>)>,
}

impl Vault {
    /// Stores a ceremony's state, sealed and bound to its ceremony, its new session id and
    /// `account`, for the session lifetime; returns the session id.
    pub(crate) async fn put_ceremony(
        &self,
        ceremony: Ceremony,
        account: &str,
        fields: &[&[u8]],
        now: i64,
    ) -> Result<String, VaultError> {
        let session = format!("{}.{}", ceremony.tag(), random_hex(16));
        let mut typed = vec![ceremony.tag().as_bytes()];
        typed.extend_from_slice(fields);
        let sealed = self.sealer.seal(
            &session_aad(ceremony, &session, account),
            &encode_fields(&typed),
        );
        self.db
            .put_session(
                session.clone(),
                account.to_string(),
                sealed,
                now + self.options.session_ttl,
            )
            .await?;
        Ok(session)
    }

    /// Takes a session of `ceremony`, once: a second finish of the same session is refused. A
    /// session of another ceremony (or no session id at all: account sessions are stored under
    /// `acct:` ids) is refused before the database is asked, audited, and left in place.
    pub(crate) async fn take_ceremony(
        &self,
        session: &str,
        ceremony: Ceremony,
        source: &str,
        now: i64,
    ) -> Result<(String, Fields), VaultError> {
        if Ceremony::of(session) != Some(ceremony) {
            return Err(self.session_mismatch("", ceremony, source, now).await);
        }
        let (account, sealed) = self
            .db
            .take_session(session.to_string(), now)
            .await?
            .ok_or(VaultError::SessionExpired)?;
        let opened = self
            .sealer
            .open(&session_aad(ceremony, session, &account), &sealed)
            .map(Zeroizing::new);
        let fields = opened.as_deref().and_then(|state| decode_fields(state));
        match fields {
            Some(mut fields)
                if fields.first().map(|t| t.as_slice()) == Some(ceremony.tag().as_bytes()) =>
            {
                fields.remove(0);
                Ok((account, fields))
            }
            // Only a database writer can get here: the row was altered or moved.
            _ => {
                tracing::warn!(
                    ?ceremony,
                    "a stored session does not open as its ceremony's"
                );
                Err(self.session_mismatch(&account, ceremony, source, now).await)
            }
        }
    }

    /// Audits a session refused by `ceremony`'s finish and makes its 4xx answer.
    async fn session_mismatch(
        &self,
        account: &str,
        ceremony: Ceremony,
        source: &str,
        now: i64,
    ) -> VaultError {
        let audited = self
            .db
            .audit(AuditEntry {
                time: now,
                account: account.to_string(),
                event: "session_mismatch".into(),
                outcome: format!("refused by {} finish", ceremony.tag()),
                remaining: None,
                source: Some(source.to_string()),
            })
            .await;
        if let Err(e) = audited {
            return e.into();
        }
        VaultError::BadRequest(format!(
            "this is not a session of a {} ceremony: start one with its own start route",
            ceremony.tag()
        ))
    }

    /// Stores a counted login's session: the protocol's `state` fields, then the record the
    /// guess took out if it was the last one.
    pub(crate) async fn put_login(
        &self,
        ceremony: Ceremony,
        account: &str,
        state: &[&[u8]],
        taken: &[(RecordKind, Vec<u8>)],
        now: i64,
    ) -> Result<String, VaultError> {
        let taken: Vec<Vec<u8>> = taken
            .iter()
            .map(|(k, sealed)| [&[k.code()][..], sealed].concat())
            .collect();
        let mut fields = state.to_vec();
        fields.extend(taken.iter().map(|t| t.as_slice()));
        let session = self.put_ceremony(ceremony, account, &fields, now).await?;
        if !taken.is_empty() {
            self.metrics.last_guesses.inc();
        }
        Ok(session)
    }

    /// Takes a login's session stored by [`Self::put_login`] with `n` state fields.
    pub(crate) async fn take_login(
        &self,
        session: &str,
        ceremony: Ceremony,
        n: usize,
        source: &str,
        now: i64,
    ) -> Result<LoginSession, VaultError> {
        let (account, mut fields) = self.take_ceremony(session, ceremony, source, now).await?;
        let malformed = || VaultError::Internal("malformed session".into());
        if fields.len() < n {
            return Err(malformed());
        }
        let taken = fields
            .split_off(n)
            .iter()
            .map(|f| Some((RecordKind::from_code(*f.first()?)?, f[1..].to_vec())))
            .collect::<Option<_>>()
            .ok_or_else(malformed)?;
        Ok(LoginSession {
            account,
            state: fields,
            taken,
        })
    }
}
