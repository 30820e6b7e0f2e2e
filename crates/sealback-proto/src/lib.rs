//! # sealback-proto: what the Backup Key Vault and its clients say to each other
//!
//! This crate owns the vault's versioned HTTP API (`/v1`, described in docs/openapi.yaml) as
//! serde types, the OPAQUE cipher suite both sides must agree on, and the operator-signed
//! account proof format ([`proof`]). It must not do I/O or hold server or client logic.

use serde::{Deserialize, Serialize};

pub mod proof;

/// The OPAQUE cipher suite (RFC 9807): ristretto255 OPRF, triple-DH over ristretto255 with
/// SHA-512, Argon2id as the key stretching function (parameters: [`ksf`]).
pub struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2_010::Sha512>;
    type Ksf = opaque_argon2::Argon2<'static>;
}

/// The client's Argon2id: 64 MiB, 3 passes, 4 lanes (what a phone affords in about 0.15 s, and
/// what `@serenity-kit/opaque` uses, so a web client interoperates).
pub fn ksf() -> opaque_argon2::Argon2<'static> {
    let params =
        opaque_argon2::Params::new(64 * 1024, 3, 4, None).expect("valid Argon2 parameters");
    opaque_argon2::Argon2::new(
        opaque_argon2::Algorithm::Argon2id,
        opaque_argon2::Version::V0x13,
        params,
    )
}

/// The wrong-guess limit the reference vault enforces per record.
pub const DEFAULT_GUESS_LIMIT: u32 = 10;

/// Base64url (no padding) for byte fields in JSON.
pub mod b64 {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes bytes.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(v))
    }
    /// Deserializes bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        URL_SAFE_NO_PAD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// `GET /v1/info`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Info {
    /// API version ("1").
    pub version: String,
    /// The vault's OPAQUE public key: clients pin it.
    #[serde(with = "b64")]
    pub server_public_key: Vec<u8>,
    /// Wrong guesses allowed before a record is destroyed.
    pub guess_limit: u32,
    /// What this vault speaks: `"opaque1"`, and `"tvr1"` when it runs as a threshold realm.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<String>,
    /// A realm's part (`tvr1`), absent on a vault that is not a realm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<RealmInfo>,
}

/// What a threshold realm publishes in `/v1/info`. Clients compare it with their own
/// configuration (which pins the id and key); they never learn a realm from it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RealmInfo {
    /// The realm's id: its vault id, the audience of its account proofs (32 hex digits).
    pub realm_id: String,
    /// The X25519 key key shares are sealed to (HPKE).
    #[serde(with = "b64")]
    pub realm_key: Vec<u8>,
    /// Evaluations this realm allows per registration (`L`); it refuses registrations asking
    /// for another.
    pub evaluation_limit: u16,
}

/// `POST /v1/tvr/register`: store this realm's key share of a threshold-password slot.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TvrRegister {
    /// The account.
    pub account: String,
    /// An account proof with scope `register` and this realm as its audience.
    pub proof: String,
    /// The realm's 1-based index in the slot.
    pub index: u8,
    /// `t`.
    pub threshold: u8,
    /// `L`.
    pub limit: u16,
    /// The registration's version `v` (16 bytes).
    #[serde(with = "b64")]
    pub version: Vec<u8>,
    /// HPKE encapsulated key.
    #[serde(with = "b64")]
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the key share and unlock tag.
    #[serde(with = "b64")]
    pub sealed: Vec<u8>,
}

/// `POST /v1/tvr/evaluate`: one password test, counted before it is answered.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TvrEvaluate {
    /// The account.
    pub account: String,
    /// An account proof (scope `login`) naming this realm as its audience.
    pub proof: String,
    /// The slot's version `v` (16 bytes).
    #[serde(with = "b64")]
    pub version: Vec<u8>,
    /// The blinded element `B` (32 bytes).
    #[serde(with = "b64")]
    pub blinded: Vec<u8>,
}

/// Reply to [`TvrEvaluate`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TvrEvaluateReply {
    /// `Z_i = k_i·B` (32 bytes).
    #[serde(with = "b64")]
    pub evaluated: Vec<u8>,
    /// The DLEQ proof `(c, s)` (64 bytes).
    #[serde(with = "b64")]
    pub proof: Vec<u8>,
    /// Evaluations left before this realm destroys its share.
    pub guesses_left: u32,
    /// Names this evaluation for [`TvrConfirm`] (needed after the last allowed evaluation,
    /// whose record is held under it until confirmed or expired).
    pub session: String,
}

/// `POST /v1/tvr/confirm`: the password was right; reset this realm's count. Its `Debug`
/// leaves the tag out: whoever holds a realm's tag can reset that realm's count.
#[derive(Serialize, Deserialize, Clone)]
pub struct TvrConfirm {
    /// The account.
    pub account: String,
    /// An account proof (scope `login`) naming this realm as its audience.
    pub proof: String,
    /// The slot's version `v`.
    #[serde(with = "b64")]
    pub version: Vec<u8>,
    /// This realm's unlock tag (32 bytes).
    #[serde(with = "b64")]
    pub tag: Vec<u8>,
    /// The evaluation's session, from [`TvrEvaluateReply`].
    pub session: String,
}

impl std::fmt::Debug for TvrConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TvrConfirm")
            .field("account", &self.account)
            .field("version", &self.version)
            .field("tag", &"<redacted>")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/tvr/delete`: destroy this realm's share for the account.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TvrDelete {
    /// The account.
    pub account: String,
    /// An account proof with scope `register` naming this realm.
    pub proof: String,
}

/// `POST /v1/register/start`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RegisterStart {
    /// The account (the messaging app's account id).
    pub account: String,
    /// Proof of account ownership (a token from the app's operator).
    pub proof: String,
    /// OPAQUE RegistrationRequest.
    #[serde(with = "b64")]
    pub request: Vec<u8>,
}

/// Reply to [`RegisterStart`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RegisterStartReply {
    /// OPAQUE RegistrationResponse.
    #[serde(with = "b64")]
    pub response: Vec<u8>,
    /// Names this registration for [`RegisterFinish`]: the vault keeps the record's fresh
    /// credential identifier under it until then.
    #[serde(default)]
    pub session: String,
}

/// `POST /v1/register/finish`: creates or replaces the account's record.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RegisterFinish {
    /// From [`RegisterStartReply`] (required: a finish without it is refused).
    #[serde(default)]
    pub session: String,
    /// The account.
    pub account: String,
    /// Proof of account ownership.
    pub proof: String,
    /// OPAQUE RegistrationUpload.
    #[serde(with = "b64")]
    pub upload: Vec<u8>,
    /// The key the vault keeps for the account, wrapped by the client under a key derived from
    /// the OPAQUE export key: the vault cannot open it.
    #[serde(with = "b64")]
    pub wrapped_key: Vec<u8>,
}

/// `POST /v1/login/start`: counts one guess before answering.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LoginStart {
    /// The account.
    pub account: String,
    /// Proof of account ownership (scope `login` or `register`), so that nobody but the
    /// account's owner can spend its guesses. A vault in development mode accepts none.
    #[serde(default)]
    pub proof: String,
    /// OPAQUE CredentialRequest (KE1).
    #[serde(with = "b64")]
    pub request: Vec<u8>,
}

/// Reply to [`LoginStart`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LoginStartReply {
    /// Names this login for [`LoginFinish`].
    pub session: String,
    /// OPAQUE CredentialResponse (KE2).
    #[serde(with = "b64")]
    pub response: Vec<u8>,
    /// Guesses left if this one is wrong.
    pub attempts_remaining: u32,
}

/// `POST /v1/login/finish`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LoginFinish {
    /// From [`LoginStartReply`].
    pub session: String,
    /// OPAQUE CredentialFinalization (KE3).
    #[serde(with = "b64")]
    pub finalization: Vec<u8>,
}

/// Reply to [`LoginFinish`]: the wrapped key, after a successful login.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LoginFinishReply {
    /// As given at registration.
    #[serde(with = "b64")]
    pub wrapped_key: Vec<u8>,
}

/// Every error reply.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// Machine-readable: `locked`, `rate_limited`, `bad_request`, `unauthorized`, `login_failed`,
    /// `session_expired`, `not_configured`, `not_found`, `too_large`, `method_not_allowed`,
    /// `internal`.
    pub error: String,
    /// For people.
    pub message: String,
    /// Guesses left, where it applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_remaining: Option<u32>,
    /// For `rate_limited`: seconds to wait (also in the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// Protector names in [`FeaturesReply`] and in rollout rules.
pub mod protectors {
    /// A passkey whose PRF extension derives the key (on the device; the vault is not involved).
    pub const PASSKEY: &str = "passkey";
    /// A passkey without PRF: the vault holds the key and releases it to a verified assertion.
    pub const VAULT_PASSKEY: &str = "vault_passkey";
    /// A password held by the vault (OPAQUE, guess limit).
    pub const PASSWORD: &str = "password";
    /// Every protector a rollout rule may name.
    pub const ALL: [&str; 3] = [PASSKEY, VAULT_PASSKEY, PASSWORD];
}

/// `POST /v1/features`: which protectors this client may offer its person. The answer for an
/// account is stable: the same rules give the same answer on every call.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FeaturesRequest {
    /// The account (only hashed into its rollout bucket; never logged).
    pub account: String,
    /// `android`, `ios`, `web`, `desktop`, ...
    pub platform: String,
    /// ISO 3166-1 alpha-2 country or region code (`DE`, `US`).
    pub region: String,
    /// The app's version, dotted numbers (`2.24.1`).
    pub app_version: String,
}

/// Reply to [`FeaturesRequest`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FeaturesReply {
    /// One entry per protector the vault knows.
    pub protectors: Vec<FeatureOffer>,
    /// Identifies the rules that answered (changes when the operator changes them).
    pub rules_version: String,
}

impl FeaturesReply {
    /// Whether `protector` is offered.
    pub fn offers(&self, protector: &str) -> bool {
        self.protectors
            .iter()
            .any(|p| p.protector == protector && p.offered)
    }
    /// Why `protector` is not offered, if it is not.
    pub fn reason(&self, protector: &str) -> Option<&str> {
        self.protectors
            .iter()
            .find(|p| p.protector == protector)
            .and_then(|p| p.reason.as_deref())
    }
}

/// Whether one protector is offered.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FeatureOffer {
    /// A name from [`protectors`].
    pub protector: String,
    /// Offered to this client.
    pub offered: bool,
    /// For people, when not offered ("not available on ios yet").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An account's rollout bucket for a protector, 0..10,000 (basis points): the first 8 bytes of
/// SHA-256("sealback rollout 2026-11-26" ‖ 0x00 ‖ protector ‖ 0x00 ‖ account), big-endian, modulo
/// 10,000. Stable across vaults and restarts; independent between protectors; raising a
/// percentage only adds accounts.
pub fn rollout_bucket(protector: &str, account: &str) -> u32 {
    use sha2_010::Digest;
    let mut h = sha2_010::Sha256::new();
    h.update(b"sealback rollout 2026-11-26\0");
    h.update(protector.as_bytes());
    h.update([0u8]);
    h.update(account.as_bytes());
    let d = h.finalize();
    let n = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
    (n % 10_000) as u32
}

/// The prefix of a passkey sign-in session token (`sbs1.` followed by 64 hex digits).
pub const SESSION_TOKEN_PREFIX: &str = "sbs1.";

/// `POST /v1/passkey/register/start`: registers a passkey to an account. With an account proof
/// alone it starts a new passkey record (replacing any, with a new vault share); with a passkey
/// session token of the same account as `session_token` it adds a passkey to the existing record.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeyRegisterStart {
    /// The account.
    pub account: String,
    /// Proof of account ownership (scope `register`), or a passkey session token where the
    /// operator lets one stand in for it.
    #[serde(default)]
    pub proof: String,
    /// A passkey session token of this account: add a passkey instead of replacing the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

/// Reply to [`PasskeyRegisterStart`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeyRegisterStartReply {
    /// Names this ceremony for [`PasskeyRegisterFinish`].
    pub session: String,
    /// WebAuthn `CredentialCreationOptions` (`{"publicKey": …}`) for `navigator.credentials.create`.
    pub options: serde_json::Value,
}

/// `POST /v1/passkey/register/finish`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeyRegisterFinish {
    /// From [`PasskeyRegisterStartReply`].
    pub session: String,
    /// The `PublicKeyCredential` the client made, as JSON (`toJSON()`), without any PRF result.
    pub credential: serde_json::Value,
}

/// Reply to [`PasskeyRegisterFinish`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeyRegisterFinishReply {
    /// The registered credential's id.
    #[serde(with = "b64")]
    pub credential_id: Vec<u8>,
    /// The vault's half of the keyslot secret (32 bytes), kept sealed by the vault's HSM key
    /// and released again only to a verified assertion of a passkey of this account.
    #[serde(with = "b64")]
    pub vault_share: Vec<u8>,
}

/// `POST /v1/passkey/login/start`: counts one guess (the same count as passwords) before
/// answering with a challenge for the account's passkeys.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeyLoginStart {
    /// The account.
    pub account: String,
    /// Proof of account ownership (scope `login` or `register`).
    #[serde(default)]
    pub proof: String,
}

/// Reply to [`PasskeyLoginStart`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeyLoginStartReply {
    /// Names this ceremony for [`PasskeyLoginFinish`].
    pub session: String,
    /// WebAuthn `CredentialRequestOptions` for `navigator.credentials.get`.
    pub options: serde_json::Value,
    /// Guesses left if this assertion fails.
    pub attempts_remaining: u32,
}

/// `POST /v1/passkey/login/finish` and `POST /v1/passkey/signin/finish`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeyAssertion {
    /// From the start reply.
    pub session: String,
    /// The assertion `PublicKeyCredential` as JSON, without any PRF result.
    pub credential: serde_json::Value,
}

/// Reply to a verified [`PasskeyLoginStart`] assertion.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeyLoginFinishReply {
    /// The vault's half of the keyslot secret.
    #[serde(with = "b64")]
    pub vault_share: Vec<u8>,
    /// A short-lived session for account operations ([`SESSION_TOKEN_PREFIX`]).
    pub session_token: String,
    /// When the session token expires (Unix seconds).
    pub expires_at: i64,
}

/// Reply to `POST /v1/passkey/signin/start` (no request body: the passkey names the account).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeySigninStartReply {
    /// Names this ceremony for the finish request.
    pub session: String,
    /// WebAuthn `CredentialRequestOptions` with no allowed credentials (discoverable).
    pub options: serde_json::Value,
}

/// Reply to a verified sign-in assertion: a session, never key material.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PasskeySigninReply {
    /// The account the passkey belongs to.
    pub account: String,
    /// A short-lived session for account operations ([`SESSION_TOKEN_PREFIX`]).
    pub session_token: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

/// Whether a client's WebAuthn JSON carries a PRF result, in any spelling a WebAuthn library
/// reads: `prf`, or CTAP's `hmacGetSecret` / `hmac_get_secret`, under `clientExtensionResults`,
/// `client_extension_results` or the credential's `extensions` (webauthn-rs reads both), with
/// any value, `null` included. PRF outputs are client-side secrets: the vault refuses such a
/// request before reading anything else of it.
pub fn carries_prf_result(credential: &serde_json::Value) -> bool {
    const PLACES: [&str; 3] = [
        "clientExtensionResults",
        "client_extension_results",
        "extensions",
    ];
    const NAMES: [&str; 3] = ["prf", "hmacGetSecret", "hmac_get_secret"];
    PLACES
        .iter()
        .filter_map(|place| credential.get(place))
        .any(|ext| NAMES.iter().any(|name| ext.get(name).is_some()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_confirm_debug_leaves_the_tag_out() {
        let confirm = super::TvrConfirm {
            account: "alice".into(),
            proof: String::new(),
            version: vec![1; 16],
            tag: vec![0xab; 32],
            session: "tvr-eval.x".into(),
        };
        let shown = format!("{confirm:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("171"), "the tag's bytes are shown: {shown}");
    }
}
