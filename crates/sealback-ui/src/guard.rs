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

use crate::origin::PageOrigin;

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

/// A one-time launch code: traded at most once, before it expires, by a page of `origin`.
struct Launch {
    code: Token,
    origin: String,
    expires: Instant,
    spent: bool,
}

/// Most hand-off codes outstanding at once; the oldest is dropped beyond this.
const MAX_LAUNCHES: usize = 8;

/// The rules, fixed at start.
#[derive(Clone)]
pub struct Guard {
    token: Token,
    launches: Arc<Mutex<Vec<Launch>>>,
    /// `sb-LABEL.localhost:PORT`: the page's own host.
    installation_host: String,
    installation_origin: String,
    /// `localhost:PORT` and `127.0.0.1:PORT`: only to unlock with passkeys of the RP `localhost`.
    shared_hosts: [String; 2],
    shared_origins: [String; 2],
}

impl Guard {
    /// The session `token`, obtained only by trading the one-time `launch_code` at the page
    /// served as `installation_host` (`sb-LABEL.localhost`) on `port`.
    pub fn new(token: Token, launch_code: Token, installation_host: &str, port: u16) -> Self {
        let installation_origin = format!("http://{installation_host}:{port}");
        Self {
            token,
            launches: Arc::new(Mutex::new(vec![Launch {
                code: launch_code,
                origin: installation_origin.clone(),
                expires: Instant::now() + LAUNCH_TTL,
                spent: false,
            }])),
            installation_host: format!("{installation_host}:{port}"),
            installation_origin,
            shared_hosts: [format!("localhost:{port}"), format!("127.0.0.1:{port}")],
            shared_origins: [
                format!("http://localhost:{port}"),
                format!("http://127.0.0.1:{port}"),
            ],
        }
    }

    fn page_origin_of_host(&self, host: &str) -> Option<PageOrigin> {
        if host == self.installation_host {
            Some(PageOrigin::Installation)
        } else if self.shared_hosts.iter().any(|h| h == host) {
            Some(PageOrigin::Shared)
        } else {
            None
        }
    }

    fn page_origin_of_origin(&self, origin: &str) -> Option<PageOrigin> {
        if origin == self.installation_origin {
            Some(PageOrigin::Installation)
        } else if self.shared_origins.iter().any(|o| o == origin) {
            Some(PageOrigin::Shared)
        } else {
            None
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

/// `POST /api/session`: trades a one-time launch code for the session token. (The guard
/// has already checked Host, Origin and JSON, as for every request that changes state.) A
/// code is good only at the origin it was made for.
pub async fn open_session(
    State(guard): State<Guard>,
    headers: HeaderMap,
    Json(req): Json<LaunchCode>,
) -> Response {
    let origin = header_str(&headers, header::ORIGIN).unwrap_or_default();
    let mut launches = guard.launches.lock().expect("launch lock");
    let now = Instant::now();
    let found = launches
        .iter_mut()
        .find(|l| !l.spent && now < l.expires && l.origin == origin && l.code.matches(&req.code));
    let Some(launch) = found else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({
                "error": "link_used",
                "message": "this address was already opened, or it is too old",
                "hint": "stop sealback ui (Ctrl+C), start it again and open the new address it prints",
            })),
        )
            .into_response();
    };
    launch.spent = true;
    Json(serde_json::json!({"token": guard.token.as_str()})).into_response()
}

/// How long a hand-off code (to the page's other origin) can be traded.
pub const HANDOFF_TTL: Duration = Duration::from_secs(60);

/// `POST /api/session/handoff` (with the token): a one-time address of the page at its other
/// origin, `http://localhost:PORT` from `http://sb-LABEL.localhost:PORT` and back, to unlock
/// with a passkey of the RP `localhost` and return. The code in it is good once, for a
/// minute, and only at that origin.
pub async fn handoff(
    State(guard): State<Guard>,
    axum::Extension(from): axum::Extension<PageOrigin>,
) -> Response {
    let to = match from {
        PageOrigin::Installation => guard.shared_origins[0].clone(),
        PageOrigin::Shared => guard.installation_origin.clone(),
    };
    let code = Token::random();
    let url = format!("{to}/?code={}", code.as_str());
    let mut launches = guard.launches.lock().expect("launch lock");
    let now = Instant::now();
    launches.retain(|l| !l.spent && now < l.expires);
    if launches.len() >= MAX_LAUNCHES {
        launches.remove(0);
    }
    launches.push(Launch {
        code,
        origin: to,
        expires: now + HANDOFF_TTL,
        spent: false,
    });
    Json(serde_json::json!({"url": url})).into_response()
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
pub async fn check(State(guard): State<Guard>, mut request: Request<Body>, next: Next) -> Response {
    let headers = request.headers();
    let Some(page_origin) =
        header_str(headers, header::HOST).and_then(|h| guard.page_origin_of_host(h))
    else {
        return with_headers(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "foreign_host",
            "this server answers only to the address sealback ui printed",
        ));
    };
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
        // The origin must be the very one the Host names (not just another spelling of the
        // same address, as 127.0.0.1 is of localhost): a page at one of the UI's origins
        // never acts at another.
        let origin_ok = header_str(headers, header::ORIGIN).is_some_and(|o| {
            guard.page_origin_of_origin(o) == Some(page_origin)
                && header_str(headers, header::HOST)
                    .is_some_and(|h| o.strip_prefix("http://") == Some(h))
        });
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
    request.extensions_mut().insert(page_origin);
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
