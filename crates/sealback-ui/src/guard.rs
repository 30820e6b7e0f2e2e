//! Who may talk to the UI: a request must name this server as its Host (against DNS
//! rebinding), carry the session token, and, when it changes anything, come from the UI's own
//! origin as JSON (against cross-site requests). Every answer carries headers that keep the
//! page from being framed, cached or loading anything from elsewhere.
//!
//! The token never travels in an address or on a command line. The printed address (and the
//! 0600 launch file handed to the browser opener) carries a one-time launch code instead; the
//! page trades it once, within [`LAUNCH_TTL`], at `POST /api/session` for the session token,
//! which it keeps in its tab's `sessionStorage` (per origin, so per port: unlike a cookie,
//! another local server on another port never receives it) and sends in a header. A code
//! seen in the process list is useless once the browser has used it, and an attacker who
//! wins the race leaves the person's page refused, so it is noticed.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The header that carries the token on API requests.
pub const TOKEN_HEADER: &str = "x-sealback-token";

/// How long the launch code in the printed address can be traded for a session.
pub const LAUNCH_TTL: Duration = Duration::from_secs(300);

/// A secret: 32 random bytes, base64url (the session token, or the one-time launch code).
#[derive(Clone)]
pub struct Token(zeroize::Zeroizing<String>);

impl Token {
    pub fn random() -> Self {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        rand_core::Rng::fill_bytes(&mut sealback_engine::os_rng(), bytes.as_mut());
        Self(zeroize::Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn matches(&self, given: &str) -> bool {
        self.0.len() == given.len() && bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// The one-time launch code: traded at most once, before it expires.
struct Launch {
    code: Token,
    expires: Instant,
    spent: bool,
}

/// The rules, fixed at start.
#[derive(Clone)]
pub struct Guard {
    token: Token,
    launch: Arc<Mutex<Launch>>,
    hosts: [String; 2],
    origins: [String; 2],
}

impl Guard {
    /// The session `token`, obtained only by trading the one-time `launch_code`.
    pub fn new(token: Token, launch_code: Token, port: u16) -> Self {
        Self {
            token,
            launch: Arc::new(Mutex::new(Launch {
                code: launch_code,
                expires: Instant::now() + LAUNCH_TTL,
                spent: false,
            })),
            hosts: [format!("localhost:{port}"), format!("127.0.0.1:{port}")],
            origins: [
                format!("http://localhost:{port}"),
                format!("http://127.0.0.1:{port}"),
            ],
        }
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

/// The launch code, in the body of `POST /api/session`.
#[derive(serde::Deserialize)]
pub struct LaunchCode {
    code: String,
}

/// `POST /api/session`: trades the one-time launch code for the session token. (The guard
/// has already checked Host, Origin and JSON, as for every request that changes state.)
pub async fn open_session(State(guard): State<Guard>, Json(req): Json<LaunchCode>) -> Response {
    let mut launch = guard.launch.lock().expect("launch lock");
    let usable = !launch.spent && Instant::now() < launch.expires;
    if !(usable && launch.code.matches(&req.code)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({
                "error": "link_used",
                "message": "this address was already opened, or it is too old",
                "hint": "stop sealback ui (Ctrl+C), start it again and open the new address it prints",
            })),
        )
            .into_response();
    }
    launch.spent = true;
    Json(serde_json::json!({"token": guard.token.as_str()})).into_response()
}

/// What anyone on this computer may fetch without the token: the static page and its assets
/// (they hold no secret), and the trade of a launch code.
fn public(method: &Method, path: &str) -> bool {
    let static_page = (*method == Method::GET || *method == Method::HEAD)
        && (path == "/" || path.starts_with("/assets/"));
    static_page || (*method == Method::POST && path == "/api/session")
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The middleware.
pub async fn check(State(guard): State<Guard>, request: Request<Body>, next: Next) -> Response {
    let headers = request.headers();
    let host_ok = header_str(headers, header::HOST)
        .is_some_and(|h| guard.hosts.iter().any(|allowed| allowed == h));
    if !host_ok {
        return with_headers(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "foreign_host",
            "this server answers only to localhost and 127.0.0.1 with its own port",
        ));
    }
    if !public(request.method(), request.uri().path()) {
        let given = header_str(headers, TOKEN_HEADER);
        if !given.is_some_and(|t| guard.token.matches(t)) {
            return with_headers(
                (
                    StatusCode::UNAUTHORIZED,
                    Json(serde_json::json!({
                        "error": "no_token",
                        "message": "this page is not connected to sealback: it was opened without the address sealback printed, or sealback was started again since",
                        "hint": "open the address that sealback ui printed when it started; if you no longer have it, stop sealback ui (Ctrl+C), start it again and open the new address",
                    })),
                )
                    .into_response(),
            );
        }
    }
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state {
        let origin_ok = header_str(headers, header::ORIGIN)
            .is_some_and(|o| guard.origins.iter().any(|allowed| allowed == o));
        let site_ok = header_str(headers, "sec-fetch-site").is_none_or(|s| s == "same-origin");
        let json = header_str(headers, header::CONTENT_TYPE)
            .is_some_and(|c| c.starts_with("application/json"));
        if !(origin_ok && site_ok && json) {
            return with_headers(refuse(
                StatusCode::FORBIDDEN,
                "foreign_origin",
                "changes are accepted only from the sealback page itself",
            ));
        }
    }
    with_headers(next.run(request).await)
}

fn with_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}
