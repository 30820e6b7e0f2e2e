//! # sealback-vault-client: unlocking with a password through the Backup Key Vault
//!
//! This crate owns the client side of the password protector: OPAQUE registration and login
//! against a vault over HTTP, pinning the vault's OPAQUE public key, wrapping the keyslot's
//! secret under a key derived from the OPAQUE export key (so the vault holds it but cannot open
//! it), the slot parameters, and the [`VaultPasswordProtector`].
//!
//! It must not touch the repository or storage, and must never send or log the password, the
//! export key or the unwrapped secret.

use hkdf::Hkdf;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand08::rngs::OsRng;
use rand08::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType};
use sealback_core::protector::{Protector, ProtectorError};
use sealback_core::ProtectorSecret;
use sealback_proto::{self as proto, Suite};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// HKDF info for the wrapping key derived from the OPAQUE export key.
pub const WRAP_LABEL: &[u8] = b"sealback 2026-11-25 vault wrap";

pub use sealback_core::vault::VaultParams;

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
}

fn wrong_password_message(remaining: u32) -> String {
    if remaining == 0 {
        "wrong password, and that was the last attempt: the key vault has destroyed this key; it cannot be recovered".into()
    } else {
        format!("wrong password: {remaining} attempts remain before the vault destroys this key")
    }
}

/// A password, zeroized on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(p: String) -> Self {
        Self(Zeroizing::new(p))
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

/// A client for one vault.
pub struct VaultClient {
    url: String,
    http: reqwest::Client,
}

impl VaultClient {
    /// A client for the vault at `url`: `https://…` checked against the public web PKI (or the
    /// CA in `SEALBACK_VAULT_CA`, a PEM file), or `http://127.0.0.1:PORT` on loopback.
    pub fn new(url: &str) -> Self {
        let ca = std::env::var_os("SEALBACK_VAULT_CA").and_then(|p| std::fs::read(p).ok());
        Self::with_ca(url, ca.as_deref()).expect("HTTP client")
    }

    /// A client that trusts only the CA certificates in `ca_pem` (when given) for TLS.
    pub fn with_ca(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, VaultError> {
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
            url: url.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn post<Req: serde::Serialize, Rep: serde::de::DeserializeOwned>(
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
        let key = wrap_key(&finish.export_key);
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let mut buf = secret.expose_secret().to_vec();
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(account.as_bytes()),
                &mut buf,
            )
            .expect("small message");
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&buf);
        wrapped.extend_from_slice(tag.as_ref());
        let _: Option<serde_json::Value> = self
            .post(
                "/v1/register/finish",
                &proto::RegisterFinish {
                    account: account.into(),
                    proof: proof.into(),
                    upload: finish.message.serialize().to_vec(),
                    wrapped_key: wrapped,
                },
            )
            .await?;
        Ok(VaultParams {
            url: self.url.clone(),
            account: account.into(),
            server_public_key,
        })
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
        let w = &done.wrapped_key;
        if w.len() < 12 + 16 {
            return Err(VaultError::Protocol("wrapped key too short".into()));
        }
        let key = wrap_key(&finish.export_key);
        let mut buf = Zeroizing::new(w[12..].to_vec());
        let n = key
            .open_in_place(
                Nonce::assume_unique_for_key(w[..12].try_into().expect("12 bytes")),
                Aad::from(params.account.as_bytes()),
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
}

/// The vault-password slots of a keyslot file with their parameters.
pub fn vault_slots(file: &KeySlotFile) -> Vec<(&KeySlot, VaultParams)> {
    file.slots
        .iter()
        .filter(|s| s.protector_type == ProtectorType::VAULT_PASSWORD)
        .filter_map(|s| VaultParams::decode(&s.params).ok().map(|p| (s, p)))
        .collect()
}

/// The secret released by one successful vault login; it opens that vault account's slot.
pub struct VaultPasswordProtector {
    account: String,
    url: String,
    secret: ProtectorSecret,
}

impl VaultPasswordProtector {
    /// Logs in to the vault of the first vault slot (of `account`, when given).
    pub async fn login(
        file: &KeySlotFile,
        account: Option<&str>,
        password: &Password,
        proof: &str,
    ) -> Result<Self, VaultError> {
        let slots = vault_slots(file);
        let (_, params) = slots
            .iter()
            .find(|(_, p)| account.is_none_or(|a| a == p.account))
            .ok_or_else(|| {
                VaultError::Protocol("this backup has no password key for that account".into())
            })?;
        let secret = VaultClient::new(&params.url)
            .login(params, password, proof)
            .await?;
        Ok(Self {
            account: params.account.clone(),
            url: params.url.clone(),
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
            Ok(p) if p.account == self.account && p.url == self.url => Ok(Some(
                ProtectorSecret::new(self.secret.expose_secret().to_vec()),
            )),
            _ => Ok(None),
        }
    }
}
