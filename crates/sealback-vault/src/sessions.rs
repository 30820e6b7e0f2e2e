//! Ceremony sessions: the vault's state between the two requests of a registration, a login or
//! a passkey ceremony, sealed in the sessions table.
//!
//! A session is typed by its [`Ceremony`] three times over: the type is the prefix of its id
//! (`login.` followed by 32 hex digits), part of its sealing context, and the first field of
//! its stored state. A finish route takes only sessions of its own ceremony and refuses any
//! other before touching the database, as a 4xx that is audited (issue 14: a passkey-login
//! session once finished a password login, because opaque-ke read the first 128 bytes of the
//! passkey state as its own). State with leftover bytes does not decode.

use crate::db::AuditEntry;
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

impl Vault {
    /// A new session id of `ceremony` (a login's is chosen before its guess is counted, so
    /// that a last guess can hold the record under it).
    pub(crate) fn new_session(ceremony: Ceremony) -> String {
        format!("{}.{}", ceremony.tag(), random_hex(16))
    }

    /// Stores a ceremony's state, sealed and bound to its ceremony, a new session id and
    /// `account`, for the session lifetime; returns the session id.
    pub(crate) async fn put_ceremony(
        &self,
        ceremony: Ceremony,
        account: &str,
        fields: &[&[u8]],
        now: i64,
    ) -> Result<String, VaultError> {
        let session = Self::new_session(ceremony);
        self.put_session_state(ceremony, &session, account, fields, now)
            .await?;
        Ok(session)
    }

    /// Stores a ceremony's state under `session` (from [`Self::new_session`]).
    pub(crate) async fn put_session_state(
        &self,
        ceremony: Ceremony,
        session: &str,
        account: &str,
        fields: &[&[u8]],
        now: i64,
    ) -> Result<(), VaultError> {
        let mut typed = vec![ceremony.tag().as_bytes()];
        typed.extend_from_slice(fields);
        let sealed = self.sealer.seal(
            &session_aad(ceremony, session, account),
            &encode_fields(&typed),
        );
        self.db
            .put_session(
                session.to_string(),
                account.to_string(),
                sealed,
                self.session_expiry(now),
            )
            .await?;
        Ok(())
    }

    /// When a ceremony started at `now` expires.
    pub(crate) fn session_expiry(&self, now: i64) -> i64 {
        now + self.options.session_ttl
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
}
