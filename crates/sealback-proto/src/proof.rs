//! Account proofs (SPEC §7c): a short-lived token, signed with Ed25519 by the messaging app's
//! operator, saying "this client owns `account`" for one purpose at one vault.
//!
//! ```text
//! token   = "sbp2." ‖ b64url(payload) ‖ "." ‖ b64url(signature)
//! payload = JSON {"account": str, "scope": "register" | "login", "aud": vault id (32 hex),
//!                 "iat": int, "exp": int}
//! signature = Ed25519(operator key, PROOF_CONTEXT ‖ payload)
//! ```
//!
//! The signature covers the payload's exact bytes (no re-encoding), prefixed by a dated context
//! string so that a signature made for anything else never verifies as a proof. A `register`
//! proof also admits logins; a `login` proof admits only logins (what a new device gets after
//! the app has verified the phone number), so leaking one never lets anyone replace a record.
//!
//! The audience (`aud`) is the [`VaultId`] of the one vault the proof is for: a proof shown to
//! one vault (or its operator, or its logs) is refused by every other vault that trusts the same
//! operator key. Version 1 tokens (`sbp1.`, no audience, [`PROOF_CONTEXT_V1`]) are still read,
//! for logins only: a vault refuses them for registration (fail closed, SPEC §7c).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

pub use sealback_core::vault::VaultId;

/// What every version 2 signature is made over, before the payload.
pub const PROOF_CONTEXT: &[u8] = b"sealback 2026-12-02 account proof v2\n";
/// The prefix of the tokens issued now (format version 2: with an audience).
pub const PREFIX: &str = "sbp2.";
/// What a version 1 signature was made over (read only).
pub const PROOF_CONTEXT_V1: &[u8] = b"sealback 2026-11-26 account proof\n";
/// The prefix of version 1 tokens (no audience; read only, never for registration).
pub const PREFIX_V1: &str = "sbp1.";
/// A proof is refused when it is valid for longer than this from now (seconds).
pub const MAX_LIFETIME: i64 = 24 * 3600;
/// Clock skew tolerated between the operator and the vault (seconds).
pub const SKEW: i64 = 60;
/// Longest token accepted (bytes), so that parsing is bounded.
pub const MAX_TOKEN_LEN: usize = 2048;

/// What a proof allows.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Create or replace the account's record (and log in).
    Register,
    /// Log in only.
    Login,
}

impl Scope {
    /// Whether a proof of this scope admits `wanted`.
    pub fn admits(self, wanted: Scope) -> bool {
        self == Scope::Register || wanted == Scope::Login
    }
}

/// A proof's payload.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The account.
    pub account: String,
    /// What it allows.
    pub scope: Scope,
    /// The vault the proof is for. Required in version 2 tokens (what [`OperatorSigner::issue`]
    /// writes when it is set); `None` only in a version 1 token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "audience_hex"
    )]
    pub aud: Option<VaultId>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

/// Why a proof was refused. Every reason is safe to tell the client: none depends on whether
/// the account has a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// No proof was given.
    #[error("an account proof is required")]
    Missing,
    /// The token is not `sbp2.<payload>.<signature>` (or `sbp1.`) with a valid payload.
    #[error("the account proof is malformed")]
    Malformed,
    /// No configured operator key verifies the signature.
    #[error("the account proof is not signed by this vault's operator")]
    BadSignature,
    /// The proof is for another account.
    #[error("the account proof is for another account")]
    WrongAccount,
    /// The proof names another vault as its audience.
    #[error("the account proof is for another key vault; ask the app for a proof for this one")]
    WrongAudience,
    /// A version 1 proof (no audience) was shown to register.
    #[error("the account proof names no key vault (an sbp1 proof): registering needs a proof for this vault; ask the app for a new one")]
    NoAudience,
    /// The proof does not allow this request.
    #[error("the account proof does not allow this (it is a login-only proof)")]
    WrongScope,
    /// Expired, not yet valid, or valid for too long.
    #[error("the account proof has expired or is not valid now; ask the app for a new one")]
    Expired,
}

/// An operator's Ed25519 public key (32 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorKey([u8; 32]);

impl OperatorKey {
    /// From 32 raw bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
    /// From base64url or hex text (what `sealback vault operator-key` prints).
    pub fn parse(text: &str) -> Result<Self, ProofError> {
        let t = text.trim();
        let bytes = hex::decode(t)
            .ok()
            .or_else(|| URL_SAFE_NO_PAD.decode(t).ok())
            .ok_or(ProofError::Malformed)?;
        Ok(Self(bytes.try_into().map_err(|_| ProofError::Malformed)?))
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Base64url text.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl core::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OperatorKey({})", self.to_text())
    }
}

/// The operator's signing key (PKCS#8). It belongs to the messaging app's servers; sealback
/// holds it only in the operator tool and in tests.
pub struct OperatorSigner(Ed25519KeyPair);

impl OperatorSigner {
    /// Makes a new key; returns the signer and its PKCS#8 document (to store, secretly).
    pub fn generate() -> (Self, zeroize::Zeroizing<Vec<u8>>) {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).expect("system randomness");
        let pkcs8 = zeroize::Zeroizing::new(doc.as_ref().to_vec());
        (Self::from_pkcs8(&pkcs8).expect("just made"), pkcs8)
    }
    /// From a stored PKCS#8 document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, ProofError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map(Self)
            .map_err(|_| ProofError::Malformed)
    }
    /// From a 32-byte seed (known-answer vectors only).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(Ed25519KeyPair::from_seed_unchecked(seed).expect("32-byte seed"))
    }
    /// The public key vaults are configured with.
    pub fn public_key(&self) -> OperatorKey {
        OperatorKey(
            self.0
                .public_key()
                .as_ref()
                .try_into()
                .expect("32-byte key"),
        )
    }
    /// Issues a proof for `claims`: a version 2 token when `claims.aud` names a vault, a
    /// version 1 token (which vaults take for logins only) when it does not.
    pub fn issue(&self, claims: &Claims) -> String {
        let version = Version::of(claims);
        let payload = serde_json::to_vec(claims).expect("serializable");
        let sig = self.0.sign(&version.signed_message(&payload));
        format!(
            "{}{}.{}",
            version.prefix(),
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        )
    }
}

/// A token's format version.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Version {
    /// `sbp1.`: no audience.
    V1,
    /// `sbp2.`: an audience is required.
    V2,
}

impl Version {
    fn of(claims: &Claims) -> Self {
        if claims.aud.is_some() {
            Self::V2
        } else {
            Self::V1
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Self::V1 => PREFIX_V1,
            Self::V2 => PREFIX,
        }
    }
    fn signed_message(self, payload: &[u8]) -> Vec<u8> {
        let context = match self {
            Self::V1 => PROOF_CONTEXT_V1,
            Self::V2 => PROOF_CONTEXT,
        };
        [context, payload].concat()
    }
    /// The version and the rest of `token`, or `None` when its prefix is neither.
    fn split(token: &str) -> Option<(Self, &str)> {
        [Self::V2, Self::V1]
            .into_iter()
            .find_map(|v| Some((v, token.strip_prefix(v.prefix())?)))
    }
}

/// The payload and signature of a token, decoded (not yet checked).
fn decode(token: &str) -> Result<(Version, Vec<u8>, Vec<u8>), ProofError> {
    if token.is_empty() {
        return Err(ProofError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(ProofError::Malformed);
    }
    let (version, rest) = Version::split(token).ok_or(ProofError::Malformed)?;
    let (payload_b64, sig_b64) = rest.split_once('.').ok_or(ProofError::Malformed)?;
    let decode = |b64: &str| {
        URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| ProofError::Malformed)
    };
    Ok((version, decode(payload_b64)?, decode(sig_b64)?))
}

/// Parses a payload of `version`: a version 2 payload must name its audience, a version 1
/// payload must not (its signature context never covered one).
fn parse_claims(version: Version, payload: &[u8]) -> Result<Claims, ProofError> {
    let claims: Claims = serde_json::from_slice(payload).map_err(|_| ProofError::Malformed)?;
    if Version::of(&claims) != version {
        return Err(ProofError::Malformed);
    }
    Ok(claims)
}

/// The scope a token *claims*, read without checking its signature. Only for a client
/// deciding whether to send its own token (a `register` proof is sent only when registering,
/// SPEC §7c); a vault MUST use [`verify`]. `None` when the token is not a proof.
pub fn claimed_scope(token: &str) -> Option<Scope> {
    let (version, payload, _) = decode(token).ok()?;
    parse_claims(version, &payload).ok().map(|c| c.scope)
}

/// Checks `token` for `account` and `wanted` at the vault `audience` at time `now` against any
/// of `keys`.
pub fn verify(
    token: &str,
    keys: &[OperatorKey],
    audience: VaultId,
    account: &str,
    wanted: Scope,
    now: i64,
) -> Result<Claims, ProofError> {
    let (version, payload, sig) = decode(token)?;
    if sig.len() != 64 {
        return Err(ProofError::Malformed);
    }
    let message = version.signed_message(&payload);
    // The signature is checked before the payload is parsed: unsigned bytes are never parsed.
    if !keys.iter().any(|k| {
        UnparsedPublicKey::new(&ED25519, k.as_bytes())
            .verify(&message, &sig)
            .is_ok()
    }) {
        return Err(ProofError::BadSignature);
    }
    let claims = parse_claims(version, &payload)?;
    if claims.account != account {
        return Err(ProofError::WrongAccount);
    }
    if !claims.scope.admits(wanted) {
        return Err(ProofError::WrongScope);
    }
    match claims.aud {
        Some(aud) if aud != audience => return Err(ProofError::WrongAudience),
        // Version 1 proofs name no vault: whoever saw one at any vault could replace the
        // account's record at every other vault of the operator.
        None if wanted == Scope::Register => return Err(ProofError::NoAudience),
        _ => {}
    }
    if claims.exp <= now || claims.iat > now + SKEW || claims.exp > now + MAX_LIFETIME + SKEW {
        return Err(ProofError::Expired);
    }
    Ok(claims)
}

/// `aud` as 32 lower-case hex digits.
mod audience_hex {
    use super::VaultId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<VaultId>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => s.serialize_str(&id.to_hex()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<VaultId>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("aud is a vault id: 32 lower-case hex digits"))
    }

    /// A vault id from exactly 32 lower-case hex digits.
    pub fn parse(text: &str) -> Option<VaultId> {
        let canonical = text.len() == 32 && !text.bytes().any(|b| b.is_ascii_uppercase());
        let bytes: [u8; 16] = hex::decode(text).ok()?.try_into().ok()?;
        canonical.then_some(VaultId(bytes))
    }
}

/// A vault id from its text form (32 lower-case hex digits, as `VaultId`'s `Display` writes).
pub fn parse_vault_id(text: &str) -> Option<VaultId> {
    audience_hex::parse(text.trim())
}
