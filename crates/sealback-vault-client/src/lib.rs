//! # sealback-vault-client: unlocking through the Backup Key Vault
//!
//! This crate owns the client side of the vault's protectors. The password protector: OPAQUE
//! registration and login against a vault over HTTP, pinning the vault's OPAQUE public key,
//! wrapping the keyslot's secret under a key derived from the OPAQUE export key (so the vault
//! holds it but cannot open it), and the [`VaultPasswordProtector`]. The vault-passkey protector
//! (for passkey providers without PRF): the vault's WebAuthn ceremonies driven through a
//! [`WebAuthnClient`], the storage share kept in the slot, and the [`VaultPasskeyProtector`].
//!
//! It must not touch the repository or storage, and must never send or log the password, the
//! export key, a PRF output, the storage share or the unwrapped secret.

use hkdf::Hkdf;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand08::rngs::OsRng;
use rand08::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType, SlotTemplate};
use sealback_core::protector::{Protector, ProtectorError};
use sealback_core::ProtectorSecret;
use sealback_proto::{self as proto, Suite};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// HKDF info for the wrapping key derived from the OPAQUE export key.
pub const WRAP_LABEL: &[u8] = b"sealback 2026-11-25 vault wrap";

pub use sealback_core::vault::{VaultId, VaultParams, VaultPasskeyParams};

pub mod realms;
use sealback_passkey::{PasskeyError, WebAuthnClient};

/// What went wrong talking to the vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// Wrong password; the guess was counted.
    #[error("{}", wrong_password_message(*remaining))]
    WrongPassword {
        /// Guesses left.
        remaining: u32,
    },
    /// The passkey assertion was refused (or no passkey of the account was at hand); the guess
    /// was counted.
    #[error("{}", wrong_passkey_message(*remaining, detail))]
    WrongPasskey {
        /// Guesses left.
        remaining: u32,
        /// What happened.
        detail: String,
    },
    /// The passkey provider failed or the person cancelled.
    #[error("{0}")]
    Passkey(PasskeyError),
    /// The vault does not offer this (no passkeys configured, nothing registered).
    #[error("the key vault: {0}")]
    NotAvailable(String),
    /// The vault destroyed the key after too many wrong guesses.
    #[error("the key vault has destroyed this key after too many wrong passwords; it cannot be recovered")]
    Locked,
    /// The vault limits requests for now.
    #[error("the key vault is limiting requests: try again in {} s", retry_after.unwrap_or(60))]
    RateLimited {
        /// Seconds to wait, as the vault said.
        retry_after: Option<u64>,
    },
    /// The vault presented another key than the pinned one.
    #[error("the key vault at {url} presented a different key than the one pinned for this backup: refusing to talk to it (a wrong URL, or someone impersonating the vault)")]
    PinMismatch {
        /// The vault.
        url: String,
    },
    /// The vault refused the account proof.
    #[error("the key vault refused: {0}")]
    Unauthorized(String),
    /// Network or protocol failure.
    #[error("cannot reach the key vault at {url}: {detail}")]
    Unreachable {
        /// The vault.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The vault answered something unexpected.
    #[error("the key vault answered unexpectedly: {0}")]
    Protocol(String),
    /// The vault refused a passkey just made for it (made on a page whose origin the vault
    /// does not accept, or without user verification): the browser should forget it.
    #[error("the key vault did not accept the new passkey: {0}")]
    PasskeyRefused(String),
    /// The vault's address is not one this client may use (plain HTTP off loopback, not a URL).
    #[error("{0}")]
    BadAddress(String),
    /// The backup's key of this kind is held by another vault than the configured one. Slots
    /// never say where a vault is (the cloud drive could point them anywhere): only the
    /// client's own configuration does.
    #[error("this backup's {kind} key is held by another key vault (id {slot_vault}) than the one this device is set up for ({configured_url}, id {configured})")]
    OtherVault {
        /// "password" or "vault passkey".
        kind: &'static str,
        /// The vault a slot names (the first one).
        slot_vault: VaultId,
        /// The configured vault's id.
        configured: VaultId,
        /// The configured vault's address.
        configured_url: String,
    },
    /// Threshold realms: the password was not added or cannot be used, and why.
    #[error("{0}")]
    Realms(String),
    /// The vault asks for passkeys of a relying party that is not the vault's own site.
    #[error("the key vault at {url} asks for passkeys of {rp_id:?}, which is not its own site: refusing (a passkey is only used for the site the client actually contacts)")]
    ForeignRelyingParty {
        /// The vault contacted.
        url: String,
        /// The relying party its options named.
        rp_id: String,
    },
}

fn wrong_password_message(remaining: u32) -> String {
    if remaining == 0 {
        "wrong password, and that was the last attempt: the key vault has destroyed this key; it cannot be recovered".into()
    } else {
        format!("wrong password: {remaining} attempts remain before the vault destroys this key")
    }
}

fn wrong_passkey_message(remaining: u32, detail: &str) -> String {
    if remaining == 0 {
        format!("{detail}; that was the last attempt: the key vault destroys this key once the attempt is over; it cannot be recovered")
    } else {
        format!("{detail}: {remaining} attempts remain before the vault destroys this key")
    }
}

/// The origin a client of the vault's passkeys claims: the relying party's own HTTPS origin
/// (an app embeds its passkey provider for its relying party, as native apps do). The relying
/// party must be the site of the vault actually contacted (`vault_url`, from the client's own
/// configuration): its host or a parent domain of it, or `localhost` for a vault on loopback.
/// A relying party named anywhere else (options from a relay, a slot on the drive) is refused.
pub fn passkey_origin(rp_id: &str, vault_url: &str) -> Result<url::Url, VaultError> {
    let foreign = || VaultError::ForeignRelyingParty {
        url: vault_url.into(),
        rp_id: rp_id.into(),
    };
    let contacted = url::Url::parse(vault_url).map_err(|_| foreign())?;
    let own_site = match contacted.host() {
        Some(url::Host::Domain(host)) => {
            let host = host.to_ascii_lowercase();
            let rp = rp_id.to_ascii_lowercase();
            !rp.is_empty() && (host == rp || host.ends_with(&format!(".{rp}")))
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() && rp_id == "localhost",
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() && rp_id == "localhost",
        None => false,
    };
    if !own_site {
        return Err(foreign());
    }
    url::Url::parse(&format!("https://{rp_id}")).map_err(|_| foreign())
}

/// Checks that `url` is an address a vault client may use: `https://…`, or plain
/// `http://` to a loopback address (a vault on this machine). Returns it without a trailing `/`.
pub fn checked_vault_url(url: &str) -> Result<String, VaultError> {
    let parsed = url::Url::parse(url).map_err(|e| {
        VaultError::BadAddress(format!(
            "{url:?} is not a key vault address ({e}); it looks like https://vault.example.org"
        ))
    })?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => {}
        "http" if loopback => {}
        "http" => {
            return Err(VaultError::BadAddress(format!(
                "refusing plain HTTP to the key vault at {url}: use https:// (plain HTTP is only for a vault on this machine)"
            )))
        }
        _ => {
            return Err(VaultError::BadAddress(format!(
                "{url:?} is not a key vault address: it must start with https://"
            )))
        }
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The vault share from a reply, which is wiped.
fn share(bytes: &mut Vec<u8>) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let arr: Result<[u8; 32], _> = bytes.as_slice().try_into();
    zeroize::Zeroize::zeroize(bytes);
    arr.map(Zeroizing::new)
        .map_err(|_| VaultError::Protocol("the vault share is not 32 bytes".into()))
}

/// A password, zeroized on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(p: String) -> Self {
        Self(Zeroizing::new(p))
    }
    /// The password itself (for the device's partial check verifier, engine `password_check`).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
    fn clone_secret(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.as_str().to_owned())
    }
}

impl core::fmt::Debug for Password {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

fn wrap_key(export_key: &[u8]) -> LessSafeKey {
    let mut k = Zeroizing::new([0u8; 32]);
    Hkdf::<sha2::Sha256>::new(None, export_key)
        .expand(WRAP_LABEL, &mut k[..])
        .expect("32 bytes");
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k[..]).expect("32 bytes"))
}

/// `nonce ‖ AES-256-GCM(wrap key, nonce, aad = account, secret)` (SPEC §7b).
fn wrap_secret(
    export_key: &[u8],
    account: &str,
    secret: &ProtectorSecret,
    nonce: [u8; 12],
) -> Vec<u8> {
    let mut buf = secret.expose_secret().to_vec();
    let tag = wrap_key(export_key)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(account.as_bytes()),
            &mut buf,
        )
        .expect("small message");
    let mut wrapped = nonce.to_vec();
    wrapped.extend_from_slice(&buf);
    wrapped.extend_from_slice(tag.as_ref());
    wrapped
}

/// The secret a vault released, opened under the export key of this login (SPEC §7b).
fn unwrap_secret(
    export_key: &[u8],
    account: &str,
    wrapped: &[u8],
) -> Result<ProtectorSecret, VaultError> {
    if wrapped.len() < 12 + 16 {
        return Err(VaultError::Protocol("wrapped key too short".into()));
    }
    let mut buf = Zeroizing::new(wrapped[12..].to_vec());
    let n = wrap_key(export_key)
        .open_in_place(
            Nonce::assume_unique_for_key(wrapped[..12].try_into().expect("12 bytes")),
            Aad::from(account.as_bytes()),
            &mut buf[..],
        )
        .map_err(|_| {
            VaultError::Protocol(
                "the released key does not open under this password's export key".into(),
            )
        })?
        .len();
    Ok(ProtectorSecret::new(buf[..n].to_vec()))
}

/// A client for one vault.
#[derive(Clone)]
pub struct VaultClient {
    url: String,
    http: reqwest::Client,
    timeout: std::time::Duration,
}

impl VaultClient {
    /// A client for the vault at `url` (from the client's own configuration, never from
    /// storage): `https://…` checked against the public web PKI, or against the CA in
    /// `SEALBACK_VAULT_CA` (a PEM file; one that cannot be read is an error, never a silent
    /// fall back to the web PKI); plain `http://` only on loopback.
    pub fn new(url: &str) -> Result<Self, VaultError> {
        let ca = match std::env::var_os("SEALBACK_VAULT_CA") {
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                VaultError::BadAddress(format!(
                    "cannot read the key vault's CA certificate file {} (SEALBACK_VAULT_CA): {e}",
                    std::path::Path::new(&path).display()
                ))
            })?),
            None => None,
        };
        Self::with_ca(url, ca.as_deref())
    }

    /// A client that trusts only the CA certificates in `ca_pem` (when given) for TLS.
    pub fn with_ca(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, VaultError> {
        let url = checked_vault_url(url)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                for cert in rustls_pemfile::certs(&mut &pem[..]) {
                    let cert = cert.map_err(|e| VaultError::Protocol(format!("CA file: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| VaultError::Protocol(format!("CA certificate: {e}")))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| VaultError::Protocol(format!("HTTP client: {e}")))?;
        Ok(Self {
            url,
            http,
            timeout: std::time::Duration::from_secs(30),
        })
    }

    /// How long one request may take (30 s unless set); a realm client waits less, so that a
    /// frozen realm is replaced by another quickly.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The vault's address, as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The id of the vault at this address (from its `/v1/info`): what a slot made with this
    /// vault names.
    pub async fn vault_id(&self) -> Result<VaultId, VaultError> {
        Ok(VaultId::of_server_key(
            &self.info().await?.server_public_key,
        ))
    }

    pub(crate) async fn post<Req: serde::Serialize, Rep: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
    ) -> Result<Option<Rep>, VaultError> {
        let unreachable = |e: reqwest::Error| VaultError::Unreachable {
            url: self.url.clone(),
            detail: e.to_string(),
        };
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .timeout(self.timeout)
            .json(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if status.is_success() {
            if status == reqwest::StatusCode::NO_CONTENT {
                return Ok(None);
            }
            return resp.json().await.map(Some).map_err(unreachable);
        }
        let err: proto::ErrorReply = resp
            .json()
            .await
            .map_err(|e| VaultError::Protocol(format!("HTTP {status}: {e}")))?;
        Err(match err.error.as_str() {
            "locked" => VaultError::Locked,
            "login_failed" => VaultError::WrongPassword {
                remaining: err.attempts_remaining.unwrap_or(0),
            },
            "rate_limited" => VaultError::RateLimited {
                retry_after: err.retry_after_seconds,
            },
            "unauthorized" => VaultError::Unauthorized(err.message),
            "not_configured" | "not_found" => VaultError::NotAvailable(err.message),
            "passkey_refused" => VaultError::PasskeyRefused(err.message),
            _ => VaultError::Protocol(err.message),
        })
    }

    /// `GET /v1/info`.
    pub async fn info(&self) -> Result<proto::Info, VaultError> {
        let unreachable = |e: reqwest::Error| VaultError::Unreachable {
            url: self.url.clone(),
            detail: e.to_string(),
        };
        self.http
            .get(format!("{}/v1/info", self.url))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)
    }

    /// `POST /v1/features`: which protectors the vault's operator offers this client now.
    pub async fn features(
        &self,
        request: &proto::FeaturesRequest,
    ) -> Result<proto::FeaturesReply, VaultError> {
        self.post("/v1/features", request)
            .await?
            .ok_or_else(|| VaultError::Protocol("/v1/features answered without a body".into()))
    }

    /// Registers `password` for `account` and stores `secret` at the vault, wrapped under the
    /// export key. Returns the slot parameters (with the vault's key pinned). With `pin`, the
    /// vault must present that key.
    pub async fn register(
        &self,
        account: &str,
        proof: &str,
        password: &Password,
        secret: &ProtectorSecret,
        pin: Option<&[u8]>,
    ) -> Result<VaultParams, VaultError> {
        let start = ClientRegistration::<Suite>::start(&mut OsRng, password.0.as_bytes())
            .map_err(|e| VaultError::Protocol(format!("{e:?}")))?;
        let reply: proto::RegisterStartReply = self
            .post(
                "/v1/register/start",
                &proto::RegisterStart {
                    account: account.into(),
                    proof: proof.into(),
                    request: start.message.serialize().to_vec(),
                },
            )
            .await?
            .ok_or_else(|| VaultError::Protocol("empty reply".into()))?;
        let response = RegistrationResponse::<Suite>::deserialize(&reply.response)
            .map_err(|e| VaultError::Protocol(format!("{e:?}")))?;
        let pw = password.clone_secret();
        // Argon2id (64 MiB) runs off the async runtime's threads.
        let finish = tokio::task::spawn_blocking(move || {
            let ksf = proto::ksf();
            start.state.finish(
                &mut OsRng,
                pw.as_bytes(),
                response,
                ClientRegistrationFinishParameters::new(Default::default(), Some(&ksf)),
            )
        })
        .await
        .map_err(|e| VaultError::Protocol(format!("key stretching task: {e}")))?
        .map_err(|e| VaultError::Protocol(format!("{e:?}")))?;
        let server_public_key = finish.server_s_pk.serialize().to_vec();
        if let Some(pinned) = pin {
            if !bool::from(pinned.ct_eq(&server_public_key)) {
                return Err(VaultError::PinMismatch {
                    url: self.url.clone(),
                });
            }
        }
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let wrapped = wrap_secret(&finish.export_key, account, secret, nonce);
        let _: Option<serde_json::Value> = self
            .post(
                "/v1/register/finish",
                &proto::RegisterFinish {
                    session: reply.session.clone(),
                    account: account.into(),
                    proof: proof.into(),
                    upload: finish.message.serialize().to_vec(),
                    wrapped_key: wrapped,
                },
            )
            .await?;
        Ok(VaultParams::new(account, server_public_key))
    }

    /// Registers a new `password` (and `secret`) for the account of an existing password slot,
    /// at that slot's vault only: the vault must present the key `params` pins. A password
    /// change; the new record replaces the old one there.
    pub async fn register_again(
        &self,
        params: &VaultParams,
        proof: &str,
        password: &Password,
        secret: &ProtectorSecret,
    ) -> Result<(), VaultError> {
        let pin = Some(params.server_public_key.as_slice());
        self.register(&params.account, proof, password, secret, pin)
            .await
            .map(|_| ())
    }

    /// Logs in with `password` and returns the keyslot secret. The vault counts the guess first;
    /// the vault's key must be the pinned one. `proof` is the operator's account proof (scope
    /// `login`), which a vault in development mode does not need.
    pub async fn login(
        &self,
        params: &VaultParams,
        password: &Password,
        proof: &str,
    ) -> Result<ProtectorSecret, VaultError> {
        let start = ClientLogin::<Suite>::start(&mut OsRng, password.0.as_bytes())
            .map_err(|e| VaultError::Protocol(format!("{e:?}")))?;
        let reply: proto::LoginStartReply = self
            .post(
                "/v1/login/start",
                &proto::LoginStart {
                    account: params.account.clone(),
                    proof: proof.into(),
                    request: start.message.serialize().to_vec(),
                },
            )
            .await?
            .ok_or_else(|| VaultError::Protocol("empty reply".into()))?;
        let response = CredentialResponse::<Suite>::deserialize(&reply.response)
            .map_err(|e| VaultError::Protocol(format!("{e:?}")))?;
        let pw = password.clone_secret();
        let finished = tokio::task::spawn_blocking(move || {
            let ksf = proto::ksf();
            start.state.finish(
                &mut OsRng,
                pw.as_bytes(),
                response,
                ClientLoginFinishParameters::new(None, Default::default(), Some(&ksf)),
            )
        })
        .await
        .map_err(|e| VaultError::Protocol(format!("key stretching task: {e}")))?;
        let finish = match finished {
            Ok(f) => f,
            // The envelope did not open: a wrong password (or a vault with another setup).
            Err(_) => {
                return Err(VaultError::WrongPassword {
                    remaining: reply.attempts_remaining,
                })
            }
        };
        if !bool::from(
            finish
                .server_s_pk
                .serialize()
                .as_slice()
                .ct_eq(&params.server_public_key),
        ) {
            return Err(VaultError::PinMismatch {
                url: self.url.clone(),
            });
        }
        let done: proto::LoginFinishReply = self
            .post(
                "/v1/login/finish",
                &proto::LoginFinish {
                    session: reply.session,
                    finalization: finish.message.serialize().to_vec(),
                },
            )
            .await?
            .ok_or_else(|| VaultError::Protocol("empty reply".into()))?;
        unwrap_secret(&finish.export_key, &params.account, &done.wrapped_key)
    }
}

/// The result of a passkey sign-in or login: a short-lived session at the vault.
#[derive(Debug, Clone)]
pub struct PasskeySession {
    /// The account the passkey belongs to.
    pub account: String,
    /// The session token (`sbs1.…`), usable in place of an account proof where the vault
    /// allows it.
    pub token: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

fn passkey_refused(e: VaultError) -> VaultError {
    match e {
        VaultError::WrongPassword { remaining } => VaultError::WrongPasskey {
            remaining,
            detail: "the key vault refused the passkey".into(),
        },
        other => other,
    }
}

/// A new vault-passkey slot's parameters and secret from the vault share a registration
/// released: the storage share is drawn here and stays in the slot.
pub fn new_vault_passkey_slot(
    vault_id: VaultId,
    account: &str,
    rp_id: &str,
    vault_share: &[u8; 32],
) -> (VaultPasskeyParams, ProtectorSecret) {
    let mut storage_share = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut storage_share[..]);
    let secret = sealback_core::vault::vault_passkey_secret(vault_share, &storage_share);
    (
        VaultPasskeyParams {
            vault_id: Some(vault_id),
            legacy_url: None,
            account: account.into(),
            rp_id: rp_id.into(),
            storage_share,
        },
        secret,
    )
}

/// The relying party id named in WebAuthn options from the vault: creation options name it
/// in `publicKey.rp.id`, request options in `publicKey.rpId`.
pub fn options_rp_id(options: &serde_json::Value) -> Result<String, VaultError> {
    options
        .pointer("/publicKey/rp/id")
        .or_else(|| options.pointer("/publicKey/rpId"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| VaultError::Protocol("the options name no relying party".into()))
}

impl VaultClient {
    /// The first half of a passkey registration: the vault's creation options, for a
    /// WebAuthn client (a browser, an app's provider). See [`Self::passkey_register`].
    pub async fn passkey_register_start(
        &self,
        account: &str,
        proof: &str,
        session_token: Option<&str>,
    ) -> Result<proto::PasskeyRegisterStartReply, VaultError> {
        self.post(
            "/v1/passkey/register/start",
            &proto::PasskeyRegisterStart {
                account: account.into(),
                proof: proof.into(),
                session_token: session_token.map(Into::into),
            },
        )
        .await?
        .ok_or_else(|| VaultError::Protocol("empty reply".into()))
    }

    /// The second half: posts the new credential (any PRF result removed first) and returns
    /// the vault share.
    pub async fn passkey_register_finish(
        &self,
        session: String,
        mut credential: serde_json::Value,
    ) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        sealback_passkey::strip_prf(&mut credential);
        let mut done: proto::PasskeyRegisterFinishReply = self
            .post(
                "/v1/passkey/register/finish",
                &proto::PasskeyAssertion {
                    session,
                    credential,
                },
            )
            .await?
            .ok_or_else(|| VaultError::Protocol("empty reply".into()))?;
        share(&mut done.vault_share)
    }

    /// Registers a new passkey (from `authenticator`) to `account` and returns a new
    /// vault-passkey slot's parameters and secret. With `session_token` (from a passkey login
    /// of the same account) the passkey joins the account's existing record and the slot shares
    /// its vault share; with the account proof alone the vault starts a new record (a new vault
    /// share: slots made with the old one stop opening).
    pub async fn passkey_register(
        &self,
        account: &str,
        proof: &str,
        session_token: Option<&str>,
        authenticator: &mut impl WebAuthnClient,
    ) -> Result<(VaultPasskeyParams, ProtectorSecret), VaultError> {
        let start = self
            .passkey_register_start(account, proof, session_token)
            .await?;
        let rp_id = options_rp_id(&start.options)?;
        let credential = authenticator
            .create_credential(&passkey_origin(&rp_id, &self.url)?, &start.options)
            .await
            .map_err(VaultError::Passkey)?;
        let vault_share = self
            .passkey_register_finish(start.session, credential)
            .await?;
        let vault_id = self.vault_id().await?;
        Ok(new_vault_passkey_slot(
            vault_id,
            account,
            &rp_id,
            &vault_share,
        ))
    }

    /// The first half of a passkey login: counts a guess and returns the vault's request
    /// options. See [`Self::passkey_login`].
    pub async fn passkey_login_start(
        &self,
        account: &str,
        proof: &str,
    ) -> Result<proto::PasskeyLoginStartReply, VaultError> {
        self.post(
            "/v1/passkey/login/start",
            &proto::PasskeyLoginStart {
                account: account.into(),
                proof: proof.into(),
            },
        )
        .await?
        .ok_or_else(|| VaultError::Protocol("empty reply".into()))
    }

    /// The second half: posts the assertion (any PRF result removed first) and returns the
    /// vault share and a passkey session of `account`.
    pub async fn passkey_login_finish(
        &self,
        account: &str,
        session: String,
        mut credential: serde_json::Value,
    ) -> Result<(Zeroizing<[u8; 32]>, PasskeySession), VaultError> {
        sealback_passkey::strip_prf(&mut credential);
        let mut done: proto::PasskeyLoginFinishReply = self
            .post(
                "/v1/passkey/login/finish",
                &proto::PasskeyAssertion {
                    session,
                    credential,
                },
            )
            .await
            .map_err(passkey_refused)?
            .ok_or_else(|| VaultError::Protocol("empty reply".into()))?;
        Ok((
            share(&mut done.vault_share)?,
            PasskeySession {
                account: account.into(),
                token: done.session_token,
                expires_at: done.expires_at,
            },
        ))
    }

    /// Logs in with a passkey of the slot's account: the vault counts the guess, then releases
    /// its share to a verified assertion. Returns the slot's secret and a passkey session.
    pub async fn passkey_login(
        &self,
        params: &VaultPasskeyParams,
        proof: &str,
        authenticator: &mut impl WebAuthnClient,
    ) -> Result<(ProtectorSecret, PasskeySession), VaultError> {
        let (vault_share, session) = self
            .passkey_login_share(params, proof, authenticator)
            .await?;
        Ok((
            sealback_core::vault::vault_passkey_secret(&vault_share, &params.storage_share),
            session,
        ))
    }

    async fn passkey_login_share(
        &self,
        params: &VaultPasskeyParams,
        proof: &str,
        authenticator: &mut impl WebAuthnClient,
    ) -> Result<(Zeroizing<[u8; 32]>, PasskeySession), VaultError> {
        let start = self.passkey_login_start(&params.account, proof).await?;
        // The relying party of the vault contacted, never the one the slot names.
        let rp_id = options_rp_id(&start.options)?;
        let assertion = match authenticator
            .get_assertion(&passkey_origin(&rp_id, &self.url)?, &start.options)
            .await
        {
            Ok(a) => a,
            // The guess is spent either way; say how many remain.
            Err(PasskeyError::NoCredential) => {
                return Err(VaultError::WrongPasskey {
                    remaining: start.attempts_remaining,
                    detail: "no passkey in this passkey store is registered for this backup's account at the key vault".into(),
                })
            }
            Err(e) => return Err(VaultError::Passkey(e)),
        };
        self.passkey_login_finish(&params.account, start.session, assertion)
            .await
    }

    /// Signs in with any passkey of the vault's relying party `rp_id` (no account named: the
    /// passkey says whose it is). Releases no key material.
    pub async fn passkey_signin(
        &self,
        rp_id: &str,
        authenticator: &mut impl WebAuthnClient,
    ) -> Result<PasskeySession, VaultError> {
        let start: proto::PasskeySigninStartReply = self
            .post("/v1/passkey/signin/start", &serde_json::json!({}))
            .await?
            .ok_or_else(|| VaultError::Protocol("empty reply".into()))?;
        let mut assertion = authenticator
            .get_assertion(&passkey_origin(rp_id, &self.url)?, &start.options)
            .await
            .map_err(VaultError::Passkey)?;
        sealback_passkey::strip_prf(&mut assertion);
        let done: proto::PasskeySigninReply = self
            .post(
                "/v1/passkey/signin/finish",
                &proto::PasskeyAssertion {
                    session: start.session,
                    credential: assertion,
                },
            )
            .await?
            .ok_or_else(|| VaultError::Protocol("empty reply".into()))?;
        Ok(PasskeySession {
            account: done.account,
            token: done.session_token,
            expires_at: done.expires_at,
        })
    }
}

/// The slots of one protector type with their parameters (slots whose parameters do not
/// parse are skipped, like slots of an unknown type).
fn slots_of<P>(
    file: &KeySlotFile,
    protector_type: ProtectorType,
    decode: impl Fn(&[u8]) -> Result<P, sealback_core::FormatError>,
) -> Vec<(&KeySlot, P)> {
    file.slots
        .iter()
        .filter(|s| s.protector_type == protector_type)
        .filter_map(|s| decode(&s.params).ok().map(|p| (s, p)))
        .collect()
}

/// The vault-passkey slots of a keyslot file with their parameters.
pub fn vault_passkey_slots(file: &KeySlotFile) -> Vec<(&KeySlot, VaultPasskeyParams)> {
    slots_of(
        file,
        ProtectorType::VAULT_PASSKEY,
        VaultPasskeyParams::decode,
    )
}

/// The one slot of `slots` for `account` (the first slot's account when none is named) held
/// by the vault `configured`; when slots exist but every one names another vault, says so
/// (the client never connects to a vault a slot names: only to its configured one).
fn slot_for_vault<'a, P>(
    slots: &'a [(&KeySlot, P)],
    account: Option<&str>,
    client: &VaultClient,
    configured: VaultId,
    kind: &'static str,
    account_of: impl Fn(&P) -> &str,
    held_by: impl Fn(&P) -> Option<VaultId>,
) -> Result<&'a P, VaultError> {
    let of_account: Vec<&P> = slots
        .iter()
        .map(|(_, p)| p)
        .filter(|p| account.is_none_or(|a| a == account_of(p)))
        .collect();
    if let Some(p) = of_account
        .iter()
        .find(|p| held_by(p).is_none_or(|id| id == configured))
    {
        return Ok(p);
    }
    match of_account.first().and_then(|p| held_by(p)) {
        Some(slot_vault) => Err(VaultError::OtherVault {
            kind,
            slot_vault,
            configured,
            configured_url: client.url.clone(),
        }),
        None => Err(VaultError::Protocol(format!(
            "this backup has no {kind} key for that account"
        ))),
    }
}

/// The vault share released by one passkey login. It opens the vault-passkey slots of that
/// account held by that vault (each with its own storage share).
pub struct VaultPasskeyProtector {
    vault_id: VaultId,
    account: String,
    vault_share: Zeroizing<[u8; 32]>,
    session: PasskeySession,
}

impl VaultPasskeyProtector {
    /// Logs in to the configured vault (`client`) with a passkey from `authenticator`, for the
    /// first vault-passkey slot of `account` (any account when `None`) that this vault holds.
    /// The slot chooses nothing about where to connect.
    pub async fn login(
        file: &KeySlotFile,
        account: Option<&str>,
        client: &VaultClient,
        proof: &str,
        authenticator: &mut impl WebAuthnClient,
    ) -> Result<Self, VaultError> {
        let vault_id = client.vault_id().await?;
        let slots = vault_passkey_slots(file);
        let params = slot_for_vault(
            &slots,
            account,
            client,
            vault_id,
            "vault passkey",
            |p| &p.account,
            |p| p.vault_id,
        )?;
        let (vault_share, session) = client
            .passkey_login_share(params, proof, authenticator)
            .await?;
        Ok(Self {
            vault_id,
            account: params.account.clone(),
            vault_share,
            session,
        })
    }

    /// A protector from a vault share released elsewhere (the web UI relays the browser's
    /// assertion to the vault itself) by the vault `vault_id`.
    pub fn from_share(
        vault_id: VaultId,
        account: &str,
        vault_share: Zeroizing<[u8; 32]>,
        session: PasskeySession,
    ) -> Self {
        Self {
            vault_id,
            account: account.into(),
            vault_share,
            session,
        }
    }

    /// The passkey session the login issued.
    pub fn session(&self) -> &PasskeySession {
        &self.session
    }
}

impl Protector for VaultPasskeyProtector {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::VAULT_PASSKEY
    }
    fn secret_for(&mut self, slot: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        match VaultPasskeyParams::decode(&slot.params) {
            Ok(p) if p.account == self.account && p.held_by(self.vault_id) => Ok(Some(
                sealback_core::vault::vault_passkey_secret(&self.vault_share, &p.storage_share),
            )),
            _ => Ok(None),
        }
    }
}

/// The template of a vault-password slot named `name` for the account and vault of `params`:
/// what adding a password and changing one both store.
pub fn password_template(name: String, params: &VaultParams) -> SlotTemplate {
    SlotTemplate {
        protector_type: ProtectorType::VAULT_PASSWORD,
        name,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        params: params.encode(),
    }
}

/// The vault-password slots of a keyslot file with their parameters.
pub fn vault_slots(file: &KeySlotFile) -> Vec<(&KeySlot, VaultParams)> {
    slots_of(file, ProtectorType::VAULT_PASSWORD, VaultParams::decode)
}

/// The secret released by one successful vault login; it opens that vault account's slot.
pub struct VaultPasswordProtector {
    account: String,
    vault_id: VaultId,
    secret: ProtectorSecret,
}

impl VaultPasswordProtector {
    /// Logs in to the configured vault (`client`) for the first password slot of `account`
    /// (any account when `None`) that this vault holds (the slot's pinned key is the vault's).
    pub async fn login(
        file: &KeySlotFile,
        account: Option<&str>,
        client: &VaultClient,
        password: &Password,
        proof: &str,
    ) -> Result<Self, VaultError> {
        let vault_id = client.vault_id().await?;
        let slots = vault_slots(file);
        let params = slot_for_vault(
            &slots,
            account,
            client,
            vault_id,
            "password",
            |p| &p.account,
            |p| Some(p.vault_id()),
        )?;
        let secret = client.login(params, password, proof).await?;
        Ok(Self {
            account: params.account.clone(),
            vault_id,
            secret,
        })
    }
}

impl Protector for VaultPasswordProtector {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::VAULT_PASSWORD
    }
    fn secret_for(&mut self, slot: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        match VaultParams::decode(&slot.params) {
            Ok(p) if p.account == self.account && p.vault_id() == self.vault_id => Ok(Some(
                ProtectorSecret::new(self.secret.expose_secret().to_vec()),
            )),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claimed_origin_is_the_contacted_vaults_own_site() {
        let ok = |rp: &str, url: &str| passkey_origin(rp, url).map(|u| u.to_string());
        assert_eq!(
            ok("vault.example.org", "https://vault.example.org").unwrap(),
            "https://vault.example.org/"
        );
        assert_eq!(
            ok("example.org", "https://vault.example.org:8443").unwrap(),
            "https://example.org/"
        );
        assert_eq!(
            ok("localhost", "http://127.0.0.1:8443").unwrap(),
            "https://localhost/"
        );
        for (rp, url) in [
            ("evil.example", "https://vault.example.org"),
            ("ample.org", "https://vault.example.org"),
            ("vault.example.org.evil", "https://vault.example.org"),
            ("localhost", "https://vault.example.org"),
            ("", "https://vault.example.org"),
            ("example.org", "http://192.0.2.7"),
        ] {
            assert!(
                matches!(
                    passkey_origin(rp, url),
                    Err(VaultError::ForeignRelyingParty { .. })
                ),
                "{rp} at {url}"
            );
        }
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for good in [
            "https://vault.example.org",
            "https://vault.example.org:8443/",
            "http://127.0.0.1:8443",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(checked_vault_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://vault.example.org",
            "http://192.0.2.7:8443",
            "http://10.0.0.1",
            "ftp://vault.example.org",
            "vault.example.org",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(checked_vault_url(bad), Err(VaultError::BadAddress(_))),
                "{bad}"
            );
        }
        assert_eq!(
            checked_vault_url("https://vault.example.org/").unwrap(),
            "https://vault.example.org"
        );
    }
}

#[cfg(test)]
mod wrap_vectors {
    //! `tests/vectors/vault_wrap.json` (SPEC §7b) against the client's own wrapping.
    use super::*;

    fn load() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/vectors/vault_wrap.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn hx(v: &serde_json::Value) -> Vec<u8> {
        let s = v.as_str().unwrap();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn wrapping_gives_the_vector_and_unwrapping_opens_it() {
        let v = load();
        let export_key = hx(&v["export_key"]);
        let account = v["account"].as_str().unwrap();
        let secret = ProtectorSecret::new(hx(&v["secret"]));
        let nonce: [u8; 12] = hx(&v["nonce"]).try_into().unwrap();
        assert_eq!(
            wrap_secret(&export_key, account, &secret, nonce),
            hx(&v["wrapped"])
        );
        let opened = unwrap_secret(&export_key, account, &hx(&v["wrapped"])).unwrap();
        assert_eq!(opened.expose_secret(), secret.expose_secret());
        for c in v["invalid"].as_array().unwrap() {
            let account = c["account"].as_str().unwrap();
            assert!(
                unwrap_secret(&export_key, account, &hx(&c["wrapped"])).is_err(),
                "{}",
                c["why"]
            );
        }
    }
}
