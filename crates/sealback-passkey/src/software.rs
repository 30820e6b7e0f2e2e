//! The software passkey provider: 1Password's passkey-rs authenticator and client, with
//! credentials kept in the encrypted [`store`](crate::store) file.
//!
//! It stands for a synced password manager (copy the store file to "sync" it) and is what the
//! CLI uses headless. The PIN that decrypts the store is its user verification.

use crate::store::{self, b64, unb64, CredentialRecord, Pin, StoreContents};
use crate::{CreatedPasskey, PasskeyError, PrfAssertion, PrfAuthenticator, WebAuthnClient};
use passkey_authenticator::extensions::HmacSecretConfig;
use passkey_authenticator::{Authenticator, MemoryStore, UiHint, UserCheck, UserValidationMethod};
use passkey_client::{Client, WebauthnError};
use passkey_crypto::coset::{CborSerializable, CoseKey};
use passkey_crypto::iana;
use passkey_crypto::AvailableBackend;
use passkey_types::ctap2::{Aaguid, Ctap2Error};
use passkey_types::webauthn;
use passkey_types::{CredentialExtensions, Passkey, StoredHmacSecret};
use sealback_core::passkey::KdfParams;
use sealback_core::ProtectorSecret;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// User verification already happened: the PIN decrypted the store.
struct PinVerified;

#[async_trait::async_trait]
impl UserValidationMethod for PinVerified {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }
    fn is_presence_enabled(&self) -> bool {
        true
    }
    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// A software passkey provider backed by one store file.
pub struct SoftwareAuthenticator {
    path: PathBuf,
    pin: Pin,
    contents: StoreContents,
    kdf: KdfParams,
}

impl core::fmt::Debug for SoftwareAuthenticator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "SoftwareAuthenticator({}, {:?})",
            self.path.display(),
            self.contents
        )
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand_core::Rng::fill_bytes(&mut rand_core::UnwrapErr(rand::rngs::SysRng), &mut v);
    v
}

fn to_passkey(r: &CredentialRecord) -> Option<Passkey> {
    Some(Passkey {
        key: CoseKey::from_slice(&unb64(&r.cose_key)?).ok()?,
        credential_id: unb64(&r.credential_id)?.into(),
        rp_id: r.rp_id.clone(),
        user_handle: r.user_handle.as_deref().and_then(unb64).map(Into::into),
        username: r.username.clone(),
        user_display_name: None,
        counter: r.counter,
        extensions: CredentialExtensions {
            hmac_secret: r
                .hmac_with_uv
                .as_deref()
                .and_then(unb64)
                .map(|uv| StoredHmacSecret {
                    cred_with_uv: uv,
                    cred_without_uv: r.hmac_without_uv.as_deref().and_then(unb64),
                }),
        },
    })
}

fn to_record(p: &Passkey, created_unix: u64) -> CredentialRecord {
    CredentialRecord {
        credential_id: b64(&p.credential_id),
        rp_id: p.rp_id.clone(),
        user_handle: p.user_handle.as_ref().map(|h| b64(h)),
        username: p.username.clone(),
        cose_key: b64(&p.key.clone().to_vec().expect("a COSE key encodes")),
        counter: p.counter,
        hmac_with_uv: p
            .extensions
            .hmac_secret
            .as_ref()
            .map(|h| b64(&h.cred_with_uv)),
        hmac_without_uv: p
            .extensions
            .hmac_secret
            .as_ref()
            .and_then(|h| h.cred_without_uv.as_deref().map(b64)),
        created_unix,
    }
}

fn map_webauthn(e: WebauthnError) -> PasskeyError {
    match e {
        WebauthnError::CredentialNotFound => PasskeyError::NoCredential,
        WebauthnError::AuthenticatorError(code) if code == u8::from(Ctap2Error::NoCredentials) => {
            PasskeyError::NoCredential
        }
        WebauthnError::AuthenticatorError(code)
            if code == u8::from(Ctap2Error::OperationDenied)
                || code == u8::from(Ctap2Error::KeepAliveCancel) =>
        {
            PasskeyError::Cancelled
        }
        other => PasskeyError::Provider(format!("{other:?}")),
    }
}

impl SoftwareAuthenticator {
    /// Opens an existing store; a wrong PIN fails here.
    pub fn open(path: &Path, pin: Pin) -> Result<Self, PasskeyError> {
        if !path.exists() {
            return Err(PasskeyError::Store {
                path: path.display().to_string(),
                detail:
                    "no passkey store there (set SEALBACK_PASSKEY_STORE, or enroll a passkey first)"
                        .into(),
            });
        }
        let contents = store::load(path, &pin)?;
        let kdf = store::kdf_of(path).unwrap_or(KdfParams::DEFAULT);
        Ok(Self {
            path: path.to_path_buf(),
            pin,
            contents,
            kdf,
        })
    }

    /// Opens the store, or creates an empty one protected by `pin`. `prf` says whether a new
    /// provider offers PRF (false simulates a provider without it).
    pub fn open_or_create(
        path: &Path,
        pin: Pin,
        prf: bool,
        kdf: KdfParams,
    ) -> Result<Self, PasskeyError> {
        if path.exists() {
            return Self::open(path, pin);
        }
        let contents = StoreContents {
            version: 1,
            prf,
            credentials: vec![],
        };
        store::save(
            path,
            &pin,
            &contents,
            kdf,
            &mut rand_core::UnwrapErr(rand::rngs::SysRng),
        )?;
        Ok(Self {
            path: path.to_path_buf(),
            pin,
            contents,
            kdf,
        })
    }

    /// The decrypted contents (for tests and `passkey list`).
    pub fn contents(&self) -> &StoreContents {
        &self.contents
    }

    fn client_store(&self) -> MemoryStore {
        let mut store = MemoryStore::new();
        for record in &self.contents.credentials {
            match to_passkey(record) {
                Some(p) => {
                    store.insert(p.credential_id.to_vec(), p);
                }
                // Kept in the file as it is by `absorb`; never offered to a relying party.
                None => tracing::warn!(
                    rp_id = %record.rp_id,
                    "a passkey in the store cannot be read by this version; it is kept, unused"
                ),
            }
        }
        store
    }

    /// The records the authenticator never saw (see [`Self::client_store`]).
    fn undecodable_records(&self) -> impl Iterator<Item = &CredentialRecord> {
        self.contents
            .credentials
            .iter()
            .filter(|r| to_passkey(r).is_none())
    }

    /// Takes back what the authenticator changed (new credentials, counters) and saves.
    fn absorb(&mut self, mem: &MemoryStore) -> Result<(), PasskeyError> {
        let mut created: HashMap<String, u64> = self
            .contents
            .credentials
            .iter()
            .map(|r| (r.credential_id.clone(), r.created_unix))
            .collect();
        let mut records: Vec<CredentialRecord> = mem
            .values()
            .map(|p| {
                let id = b64(&p.credential_id);
                let when = created.remove(&id).unwrap_or_else(now_unix);
                to_record(p, when)
            })
            .collect();
        records.extend(self.undecodable_records().cloned());
        records.sort_by(|a, b| {
            (a.created_unix, &a.credential_id).cmp(&(b.created_unix, &b.credential_id))
        });
        self.contents.credentials = records;
        store::save(
            &self.path,
            &self.pin,
            &self.contents,
            self.kdf,
            &mut rand_core::UnwrapErr(rand::rngs::SysRng),
        )
    }

    fn authenticator(&self) -> Authenticator<DiscoverableStore, PinVerified, AvailableBackend> {
        let mut auth = Authenticator::new(
            Aaguid::new_empty(),
            DiscoverableStore(self.client_store()),
            PinVerified,
            AvailableBackend,
        );
        // A signature counter lets a relying party notice a cloned credential.
        auth.set_make_credentials_with_signature_counter(true);
        if self.contents.prf {
            auth.hmac_secret(HmacSecretConfig::new_with_uv_only().enable_on_make_credential())
        } else {
            auth
        }
    }
}

/// The credentials of the store, found by id or, when the relying party names none (a
/// discoverable sign-in), by relying party and user handle.
struct DiscoverableStore(MemoryStore);

#[async_trait::async_trait]
impl passkey_authenticator::CredentialStore for DiscoverableStore {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        allow: Option<&[webauthn::PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, passkey_types::ctap2::StatusCode> {
        if allow.is_some_and(|a| !a.is_empty()) {
            return self.0.find_credentials(allow, rp_id, user_handle).await;
        }
        let mut found: Vec<Passkey> = self
            .0
            .values()
            .filter(|p| p.rp_id == rp_id)
            .filter(|p| {
                user_handle.is_none_or(|h| p.user_handle.as_deref().map(|u| &u[..]) == Some(h))
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| a.credential_id.cmp(&b.credential_id));
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        cred: Passkey,
        user: passkey_types::ctap2::make_credential::PublicKeyCredentialUserEntity,
        rp: passkey_types::ctap2::make_credential::PublicKeyCredentialRpEntity,
        options: passkey_types::ctap2::make_credential::Options,
    ) -> Result<(), passkey_types::ctap2::StatusCode> {
        self.0.save_credential(cred, user, rp, options).await
    }

    async fn update_credential(
        &mut self,
        cred: &Passkey,
    ) -> Result<(), passkey_types::ctap2::StatusCode> {
        self.0.update_credential(cred).await
    }

    async fn get_info(&self) -> passkey_authenticator::StoreInfo {
        self.0.get_info().await
    }
}

fn origin(rp_id: &str) -> url::Url {
    url::Url::parse(&format!("https://{rp_id}"))
        .unwrap_or_else(|_| url::Url::parse("https://localhost").expect("valid"))
}

fn prf_values(salt: &[u8; 32]) -> webauthn::AuthenticationExtensionsPrfValues {
    webauthn::AuthenticationExtensionsPrfValues {
        first: salt.to_vec().into(),
        second: None,
    }
}

impl PrfAuthenticator for SoftwareAuthenticator {
    async fn create(
        &mut self,
        rp_id: &str,
        user_name: &str,
        prf_salt: &[u8; 32],
    ) -> Result<CreatedPasskey, PasskeyError> {
        if !self.contents.prf {
            return Err(PasskeyError::NoPrf);
        }
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let request = webauthn::CredentialCreationOptions {
            public_key: webauthn::PublicKeyCredentialCreationOptions {
                rp: webauthn::PublicKeyCredentialRpEntity {
                    id: Some(rp_id.into()),
                    name: "sealback".into(),
                },
                user: webauthn::PublicKeyCredentialUserEntity {
                    id: random_bytes(16).into(),
                    display_name: user_name.into(),
                    name: user_name.into(),
                },
                challenge: random_bytes(32).into(),
                pub_key_cred_params: vec![webauthn::PublicKeyCredentialParameters {
                    ty: webauthn::PublicKeyCredentialType::PublicKey,
                    alg: iana::Algorithm::ES256,
                }],
                timeout: None,
                exclude_credentials: None,
                authenticator_selection: Some(webauthn::AuthenticatorSelectionCriteria {
                    authenticator_attachment: None,
                    resident_key: Some(webauthn::ResidentKeyRequirement::Required),
                    require_resident_key: true,
                    user_verification: webauthn::UserVerificationRequirement::Required,
                }),
                hints: None,
                attestation: Default::default(),
                attestation_formats: None,
                extensions: Some(webauthn::AuthenticationExtensionsClientInputs {
                    prf: Some(webauthn::AuthenticationExtensionsPrfInputs {
                        eval: Some(prf_values(prf_salt)),
                        eval_by_credential: None,
                    }),
                    ..Default::default()
                }),
            },
        };
        let created = client
            .register(&origin(rp_id), request, None::<Vec<u8>>)
            .await
            .map_err(map_webauthn)?;
        let prf = created.client_extension_results.prf.as_ref();
        if prf.and_then(|p| p.enabled) != Some(true) {
            // Do not keep a passkey that cannot protect anything.
            return Err(PasskeyError::NoPrf);
        }
        let credential_id = created.raw_id.to_vec();
        let at_creation = prf
            .and_then(|p| p.results.as_ref())
            .map(|r| r.first.to_vec());
        self.absorb(&client.authenticator().store().0)?;
        let prf_output = match at_creation {
            Some(out) => ProtectorSecret::new(out),
            // Like browsers whose authenticator cannot evaluate PRF at creation: ask again.
            None => {
                self.get_prf(rp_id, &[(credential_id.clone(), *prf_salt)])
                    .await?
                    .prf_output
            }
        };
        Ok(CreatedPasskey {
            credential_id,
            prf_output,
        })
    }

    async fn get_prf(
        &mut self,
        rp_id: &str,
        offered: &[(Vec<u8>, [u8; 32])],
    ) -> Result<PrfAssertion, PasskeyError> {
        if !self.contents.prf {
            return Err(PasskeyError::NoPrf);
        }
        if offered.is_empty() {
            return Err(PasskeyError::NoCredential);
        }
        let held: Vec<&(Vec<u8>, [u8; 32])> = offered
            .iter()
            .filter(|(id, _)| {
                let id = b64(id);
                self.contents
                    .credentials
                    .iter()
                    .any(|c| c.credential_id == id && c.rp_id == rp_id)
            })
            .collect();
        if held.is_empty() {
            return Err(PasskeyError::NoCredential);
        }
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let by_credential: HashMap<String, webauthn::AuthenticationExtensionsPrfValues> = held
            .iter()
            .map(|(id, salt)| (b64(id), prf_values(salt)))
            .collect();
        let request = webauthn::CredentialRequestOptions {
            public_key: webauthn::PublicKeyCredentialRequestOptions {
                challenge: random_bytes(32).into(),
                timeout: None,
                rp_id: Some(rp_id.into()),
                allow_credentials: Some(
                    held.iter()
                        .map(|(id, _)| webauthn::PublicKeyCredentialDescriptor {
                            ty: webauthn::PublicKeyCredentialType::PublicKey,
                            id: id.clone().into(),
                            transports: None,
                        })
                        .collect(),
                ),
                user_verification: webauthn::UserVerificationRequirement::Required,
                hints: None,
                attestation: Default::default(),
                attestation_formats: None,
                extensions: Some(webauthn::AuthenticationExtensionsClientInputs {
                    prf: Some(webauthn::AuthenticationExtensionsPrfInputs {
                        eval: None,
                        eval_by_credential: Some(by_credential),
                    }),
                    ..Default::default()
                }),
            },
        };
        let asserted = client
            .authenticate(&origin(rp_id), request, None::<Vec<u8>>)
            .await
            .map_err(map_webauthn)?;
        let output = asserted
            .client_extension_results
            .prf
            .as_ref()
            .and_then(|p| p.results.as_ref())
            .map(|r| r.first.to_vec())
            .ok_or(PasskeyError::NoPrf)?;
        let credential_id = asserted.raw_id.to_vec();
        self.absorb(&client.authenticator().store().0)?;
        Ok(PrfAssertion {
            credential_id,
            prf_output: ProtectorSecret::new(output),
        })
    }
}

/// A credential as the JSON a relying party receives, without any PRF result.
fn public_json(credential: &impl serde::Serialize) -> Result<serde_json::Value, PasskeyError> {
    let mut json = serde_json::to_value(credential)
        .map_err(|e| PasskeyError::Provider(format!("credential JSON: {e}")))?;
    crate::strip_prf(&mut json);
    Ok(json)
}

fn bad_options(e: serde_json::Error) -> PasskeyError {
    PasskeyError::Provider(format!(
        "the relying party's WebAuthn options do not parse: {e}"
    ))
}

impl WebAuthnClient for SoftwareAuthenticator {
    async fn create_credential(
        &mut self,
        origin: &url::Url,
        options: &serde_json::Value,
    ) -> Result<serde_json::Value, PasskeyError> {
        let mut request: webauthn::CredentialCreationOptions =
            serde_json::from_value(options.clone()).map_err(bad_options)?;
        // This ceremony never asks for PRF: its result would be posted to a server.
        if let Some(ext) = request.public_key.extensions.as_mut() {
            ext.prf = None;
        }
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let created = client
            .register(origin, request, None::<Vec<u8>>)
            .await
            .map_err(map_webauthn)?;
        self.absorb(&client.authenticator().store().0)?;
        public_json(&created)
    }

    async fn get_assertion(
        &mut self,
        origin: &url::Url,
        options: &serde_json::Value,
    ) -> Result<serde_json::Value, PasskeyError> {
        let mut request: webauthn::CredentialRequestOptions =
            serde_json::from_value(options.clone()).map_err(bad_options)?;
        if let Some(ext) = request.public_key.extensions.as_mut() {
            ext.prf = None;
        }
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let asserted = client
            .authenticate(origin, request, None::<Vec<u8>>)
            .await
            .map_err(map_webauthn)?;
        self.absorb(&client.authenticator().store().0)?;
        public_json(&asserted)
    }
}
