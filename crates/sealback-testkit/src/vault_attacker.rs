//! A key vault client nobody here wrote, for attack tests against a real vault (issue 14):
//! plain HTTP (reqwest) and opaque-ke's client API driven by hand, never
//! `sealback-vault-client`. Every helper sends what an attacker can send and returns what the
//! vault answered, so tests count from the attacker's side.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand08::rngs::OsRng;
use sealback_proto::{self as proto, Suite};
use serde_json::{json, Value};

/// Base64url without padding, as the vault's JSON carries bytes.
pub fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// The bytes of a base64url JSON string.
pub fn unb64(v: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(v.as_str().expect("a base64url string"))
        .expect("base64url")
}

/// Posts JSON; the status and the JSON body (`null` if none), or the transport error (a vault
/// that was killed mid-request).
pub async fn try_post_json(url: &str, path: &str, body: &Value) -> Result<(u16, Value), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or_default()))
}

/// [`try_post_json`] to a vault that is up.
pub async fn post_json(url: &str, path: &str, body: &Value) -> (u16, Value) {
    try_post_json(url, path, body)
        .await
        .unwrap_or_else(|e| panic!("POST {url}{path}: {e}"))
}

/// `GET /v1/info`.
pub async fn info(url: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("{url}/v1/info"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A `register/start` body for `password`, and the client's state to finish with.
pub fn register_start_body(
    account: &str,
    proof: &str,
    password: &[u8],
) -> (ClientRegistration<Suite>, Value) {
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password).unwrap();
    let body = json!({
        "account": account, "proof": proof,
        "request": b64(&start.message.serialize()),
    });
    (start.state, body)
}

/// `register/start` for `password` (development proof): the client state and the vault's reply.
pub async fn register_start(
    url: &str,
    account: &str,
    password: &[u8],
) -> (ClientRegistration<Suite>, Value) {
    let (state, body) = register_start_body(account, "dev", password);
    let (status, reply) = post_json(url, "/v1/register/start", &body).await;
    assert_eq!(status, 200, "{reply}");
    (state, reply)
}

/// The client's half of a registration: the upload for `register/finish`
/// (RegistrationUpload = client public key (32) ‖ masking key (64) ‖ envelope).
pub fn finish_registration(
    state: ClientRegistration<Suite>,
    password: &[u8],
    reply: &Value,
) -> Vec<u8> {
    let response = RegistrationResponse::<Suite>::deserialize(&unb64(&reply["response"])).unwrap();
    let ksf = proto::ksf();
    state
        .finish(
            &mut OsRng,
            password,
            response,
            ClientRegistrationFinishParameters::new(Default::default(), Some(&ksf)),
        )
        .unwrap()
        .message
        .serialize()
        .to_vec()
}

/// Registers `password` for `account` (development proof).
pub async fn register(url: &str, account: &str, password: &[u8]) {
    let (state, reply) = register_start(url, account, password).await;
    let upload = finish_registration(state, password, &reply);
    let body = json!({
        "session": reply["session"], "account": account, "proof": "dev",
        "upload": b64(&upload), "wrapped_key": b64(&[7u8; 60]),
    });
    let (status, reply) = post_json(url, "/v1/register/finish", &body).await;
    assert_eq!(status, 204, "{reply}");
}

/// A `login/start` body (KE1 for `password`), and the client's state to finish with.
pub fn login_start_body(
    account: &str,
    proof: &str,
    password: &[u8],
) -> (ClientLogin<Suite>, Value) {
    let start = ClientLogin::<Suite>::start(&mut OsRng, password).unwrap();
    let body = json!({
        "account": account, "proof": proof,
        "request": b64(&start.message.serialize()),
    });
    (start.state, body)
}

/// The `login/finish` body for a `login/start` `reply`: the real KE3 when `password` is right,
/// otherwise 64 zero bytes (what a careless client sends when it cannot finish).
pub fn login_finish_body(state: ClientLogin<Suite>, password: &[u8], reply: &Value) -> Value {
    let ke2 = CredentialResponse::<Suite>::deserialize(&unb64(&reply["response"])).unwrap();
    let ksf = proto::ksf();
    let params = ClientLoginFinishParameters::new(None, Default::default(), Some(&ksf));
    let finalization = match state.finish(&mut OsRng, password, ke2, params) {
        Ok(done) => done.message.serialize().to_vec(),
        Err(_) => vec![0u8; 64],
    };
    json!({"session": reply["session"], "finalization": b64(&finalization)})
}

/// A whole password login (development proof): the status of `login/start` when it was not
/// answered 200, else that of `login/finish`, with its body.
pub async fn login(url: &str, account: &str, password: &[u8]) -> (u16, Value) {
    let (state, body) = login_start_body(account, "dev", password);
    let (status, reply) = post_json(url, "/v1/login/start", &body).await;
    if status != 200 {
        return (status, reply);
    }
    let finish = login_finish_body(state, password, &reply);
    post_json(url, "/v1/login/finish", &finish).await
}

/// A WebAuthn credential that parses but verifies as nothing: a wrong passkey's assertion (or
/// attestation) for any passkey finish route.
pub fn bogus_credential() -> Value {
    json!({
        "id": "AA", "rawId": "AA", "type": "public-key",
        "response": {"clientDataJSON": "AA", "authenticatorData": "AA",
            "signature": "AA", "attestationObject": "AA"},
        "clientExtensionResults": {},
    })
}
