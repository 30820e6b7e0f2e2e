//! Account proofs (SPEC §7c): a short-lived token, signed with Ed25519 by the messaging app's
//! operator, saying "this client owns `account`" for one purpose.
//!
//! ```text
//! token   = "sbp1." ‖ b64url(payload) ‖ "." ‖ b64url(signature)
//! payload = JSON {"account": str, "scope": "register" | "login", "iat": int, "exp": int}
//! signature = Ed25519(operator key, PROOF_CONTEXT ‖ payload)
//! ```
//!
//! The signature covers the payload's exact bytes (no re-encoding), prefixed by a dated context
//! string so that a signature made for anything else never verifies as a proof. A `register`
//! proof also admits logins; a `login` proof admits only logins (what a new device gets after
//! the app has verified the phone number), so leaking one never lets anyone replace a record.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

/// What every signature is made over, before the payload.
pub const PROOF_CONTEXT: &[u8] = b"sealback 2026-11-26 account proof\n";
/// The token's prefix (its format version).
pub const PREFIX: &str = "sbp1.";
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
    /// The token is not `sbp1.<payload>.<signature>` with a valid payload.
    #[error("the account proof is malformed")]
    Malformed,
    /// No configured operator key verifies the signature.
    #[error("the account proof is not signed by this vault's operator")]
    BadSignature,
    /// The proof is for another account.
    #[error("the account proof is for another account")]
    WrongAccount,
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
    /// Issues a proof for `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("serializable");
        let mut message = PROOF_CONTEXT.to_vec();
        message.extend_from_slice(&payload);
        let sig = self.0.sign(&message);
        format!(
            "{PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        )
    }
}

/// The scope a token *claims*, read without checking its signature. Only for a client
/// deciding whether to send its own token (a `register` proof is sent only when registering,
/// SPEC §7c); a vault MUST use [`verify`]. `None` when the token is not an `sbp1` proof.
pub fn claimed_scope(token: &str) -> Option<Scope> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (payload_b64, _) = token.strip_prefix(PREFIX)?.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).ok()?;
    serde_json::from_slice::<Claims>(&payload)
        .ok()
        .map(|c| c.scope)
}

/// Checks `token` for `account` and `wanted` at time `now` against any of `keys`.
pub fn verify(
    token: &str,
    keys: &[OperatorKey],
    account: &str,
    wanted: Scope,
    now: i64,
) -> Result<Claims, ProofError> {
    if token.is_empty() {
        return Err(ProofError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(ProofError::Malformed);
    }
    let rest = token.strip_prefix(PREFIX).ok_or(ProofError::Malformed)?;
    let (payload_b64, sig_b64) = rest.split_once('.').ok_or(ProofError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| ProofError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| ProofError::Malformed)?;
    if sig.len() != 64 {
        return Err(ProofError::Malformed);
    }
    let mut message = PROOF_CONTEXT.to_vec();
    message.extend_from_slice(&payload);
    // The signature is checked before the payload is parsed: unsigned bytes are never parsed.
    if !keys.iter().any(|k| {
        UnparsedPublicKey::new(&ED25519, k.as_bytes())
            .verify(&message, &sig)
            .is_ok()
    }) {
        return Err(ProofError::BadSignature);
    }
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| ProofError::Malformed)?;
    if claims.account != account {
        return Err(ProofError::WrongAccount);
    }
    if !claims.scope.admits(wanted) {
        return Err(ProofError::WrongScope);
    }
    if claims.exp <= now || claims.iat > now + SKEW || claims.exp > now + MAX_LIFETIME + SKEW {
        return Err(ProofError::Expired);
    }
    Ok(claims)
}
