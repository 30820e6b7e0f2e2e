//! The vault's HTTP API (`/v1`, docs/openapi.yaml) as an axum Router.

use crate::service::{Vault, VaultError};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sealback_proto as proto;
use std::net::SocketAddr;
use std::sync::Arc;

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            VaultError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        let (status, code, remaining) = match &self {
            VaultError::Locked => (StatusCode::LOCKED, "locked", Some(0)),
            VaultError::LoginFailed { remaining } => {
                (StatusCode::UNAUTHORIZED, "login_failed", Some(*remaining))
            }
            VaultError::SessionExpired => (StatusCode::GONE, "session_expired", None),
            VaultError::Unauthorized(_) => (StatusCode::FORBIDDEN, "unauthorized", None),
            VaultError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", None),
            VaultError::PasskeyRefused(_) => (StatusCode::BAD_REQUEST, "passkey_refused", None),
            VaultError::NotConfigured(_) => (StatusCode::NOT_IMPLEMENTED, "not_configured", None),
            VaultError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            VaultError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", None),
            VaultError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            VaultError::Integrity(_) => (StatusCode::CONFLICT, "integrity", Some(0)),
            VaultError::TagRefused => (StatusCode::UNAUTHORIZED, "tag_refused", None),
            VaultError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None)
            }
            VaultError::Config(detail) | VaultError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        let body = proto::ErrorReply {
            error: code.into(),
            message: self.to_string(),
            attempts_remaining: remaining,
            retry_after_seconds: retry_after,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

async fn info(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
) -> Result<Json<proto::Info>, VaultError> {
    v.limit_source(&source_key(&addr), v.clock.now_unix())?;
    Ok(Json(v.info()))
}

/// A JSON request body whose rejection (not JSON, wrong content type, a missing field, too
/// large) is answered as the API's JSON error, like every other error.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = VaultError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, VaultError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(VaultError::TooLarge)
            }
            Err(rejection) => Err(VaultError::BadRequest(rejection.body_text())),
        }
    }
}

async fn no_such_route() -> VaultError {
    VaultError::NotFound("no such route".into())
}

async fn method_not_allowed() -> VaultError {
    VaultError::MethodNotAllowed
}

/// The client address that rate limits and the audit monitor key on: the IPv4 address, or the
/// /64 of an IPv6 address (one host typically holds a whole /64, so per-address limits on full
/// IPv6 addresses would be no limit at all).
pub fn source_key(addr: &SocketAddr) -> String {
    match addr.ip().to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Runs a handler and records its time under `route`.
async fn timed<T>(v: &Vault, route: &'static str, f: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = f.await;
    v.metrics()
        .request_seconds
        .get_or_create(&crate::metrics::RouteLabel { route })
        .observe(started.elapsed().as_secs_f64());
    out
}

async fn register_start(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::RegisterStart>,
) -> Result<Json<proto::RegisterStartReply>, VaultError> {
    let source = source_key(&addr);
    timed(&v, "/v1/register/start", async {
        v.register_start(&req, &source).await.map(Json)
    })
    .await
}

async fn register_finish(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::RegisterFinish>,
) -> Result<StatusCode, VaultError> {
    let source = source_key(&addr);
    timed(&v, "/v1/register/finish", async {
        v.register_finish(req, &source)
            .await
            .map(|_| StatusCode::NO_CONTENT)
    })
    .await
}

async fn login_start(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::LoginStart>,
) -> Result<Json<proto::LoginStartReply>, VaultError> {
    timed(&v, "/v1/login/start", async {
        v.login_start(req, source_key(&addr)).await.map(Json)
    })
    .await
}

async fn login_finish(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::LoginFinish>,
) -> Result<Json<proto::LoginFinishReply>, VaultError> {
    timed(&v, "/v1/login/finish", async {
        v.login_finish(req, source_key(&addr)).await.map(Json)
    })
    .await
}

async fn features(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::FeaturesRequest>,
) -> Result<Json<proto::FeaturesReply>, VaultError> {
    let source = source_key(&addr);
    timed(&v, "/v1/features", async {
        v.features(&req, &source).map(Json)
    })
    .await
}

async fn passkey_register_start(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::PasskeyRegisterStart>,
) -> Result<Json<proto::PasskeyRegisterStartReply>, VaultError> {
    let source = source_key(&addr);
    timed(&v, "/v1/passkey/register/start", async {
        v.passkey_register_start(&req, &source).await.map(Json)
    })
    .await
}

async fn passkey_register_finish(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::PasskeyAssertion>,
) -> Result<Json<proto::PasskeyRegisterFinishReply>, VaultError> {
    let source = source_key(&addr);
    timed(&v, "/v1/passkey/register/finish", async {
        v.passkey_register_finish(req, &source).await.map(Json)
    })
    .await
}

async fn passkey_login_start(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::PasskeyLoginStart>,
) -> Result<Json<proto::PasskeyLoginStartReply>, VaultError> {
    timed(&v, "/v1/passkey/login/start", async {
        v.passkey_login_start(req, source_key(&addr))
            .await
            .map(Json)
    })
    .await
}

async fn passkey_login_finish(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::PasskeyAssertion>,
) -> Result<Json<proto::PasskeyLoginFinishReply>, VaultError> {
    timed(&v, "/v1/passkey/login/finish", async {
        v.passkey_login_finish(req, source_key(&addr))
            .await
            .map(Json)
    })
    .await
}

async fn passkey_signin_start(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
) -> Result<Json<proto::PasskeySigninStartReply>, VaultError> {
    let source = source_key(&addr);
    timed(&v, "/v1/passkey/signin/start", async {
        v.passkey_signin_start(&source).await.map(Json)
    })
    .await
}

async fn passkey_signin_finish(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::PasskeyAssertion>,
) -> Result<Json<proto::PasskeySigninReply>, VaultError> {
    timed(&v, "/v1/passkey/signin/finish", async {
        v.passkey_signin_finish(req, source_key(&addr))
            .await
            .map(Json)
    })
    .await
}

async fn tvr_register(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::TvrRegister>,
) -> Result<StatusCode, VaultError> {
    let source = source_key(&addr);
    timed(&v, "/v1/tvr/register", async {
        v.tvr_register(req, &source)
            .await
            .map(|_| StatusCode::NO_CONTENT)
    })
    .await
}

async fn tvr_evaluate(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::TvrEvaluate>,
) -> Result<Json<proto::TvrEvaluateReply>, VaultError> {
    timed(&v, "/v1/tvr/evaluate", async {
        v.tvr_evaluate(req, source_key(&addr)).await.map(Json)
    })
    .await
}

async fn tvr_confirm(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::TvrConfirm>,
) -> Result<StatusCode, VaultError> {
    timed(&v, "/v1/tvr/confirm", async {
        v.tvr_confirm(req, source_key(&addr))
            .await
            .map(|_| StatusCode::NO_CONTENT)
    })
    .await
}

async fn tvr_delete(
    State(v): State<Arc<Vault>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<proto::TvrDelete>,
) -> Result<StatusCode, VaultError> {
    let source = source_key(&addr);
    timed(&v, "/v1/tvr/delete", async {
        v.tvr_delete(req, &source)
            .await
            .map(|_| StatusCode::NO_CONTENT)
    })
    .await
}

async fn metrics(State(v): State<Arc<Vault>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        v.metrics().encode(),
    )
        .into_response()
}

/// `GET /metrics` for Prometheus, to serve on its own (internal) listener.
pub fn metrics_router(vault: Arc<Vault>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(vault)
}

/// The API. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(vault: Arc<Vault>) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/features", post(features))
        .route("/v1/register/start", post(register_start))
        .route("/v1/register/finish", post(register_finish))
        .route("/v1/login/start", post(login_start))
        .route("/v1/login/finish", post(login_finish))
        .route("/v1/passkey/register/start", post(passkey_register_start))
        .route("/v1/passkey/register/finish", post(passkey_register_finish))
        .route("/v1/passkey/login/start", post(passkey_login_start))
        .route("/v1/passkey/login/finish", post(passkey_login_finish))
        .route("/v1/passkey/signin/start", post(passkey_signin_start))
        .route("/v1/passkey/signin/finish", post(passkey_signin_finish))
        .route("/v1/tvr/register", post(tvr_register))
        .route("/v1/tvr/evaluate", post(tvr_evaluate))
        .route("/v1/tvr/confirm", post(tvr_confirm))
        .route("/v1/tvr/delete", post(tvr_delete))
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(vault)
}

/// Plain HTTP is for loopback only: the error for any other address (check it before
/// announcing a URL).
pub fn refuse_plain_http_off_loopback(addr: SocketAddr) -> std::io::Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!("refusing plain HTTP on {addr}: only loopback addresses may serve without TLS"),
    ))
}

/// Serves the API on a bound listener until `shutdown` resolves. Plain HTTP is refused except on
/// loopback (TLS is not available in this version).
pub async fn serve(
    listener: tokio::net::TcpListener,
    vault: Arc<Vault>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    refuse_plain_http_off_loopback(listener.local_addr()?)?;
    axum::serve(
        listener,
        router(vault).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves the API over TLS (rustls) with a certificate chain and key in PEM files, until
/// `shutdown` resolves.
pub async fn serve_tls(
    addr: SocketAddr,
    vault: Arc<Vault>,
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert_pem, key_pem).await?;
    let handle = axum_server::Handle::new();
    let h2 = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h2.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    on_bound(listener.local_addr()?);
    axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(router(vault).into_make_service_with_connect_info::<SocketAddr>())
        .await
}
