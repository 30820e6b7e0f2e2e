//! Who may talk to the UI: a request must name this server as its Host (against DNS
//! rebinding), carry the token, and, when it changes anything, come from the UI's own origin
//! as JSON (against cross-site requests). Every answer carries headers that keep the page from
//! being framed, cached or loading anything from elsewhere.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// The header that carries the token on API requests.
pub const TOKEN_HEADER: &str = "x-sealback-token";

/// The access token: 32 random bytes, base64url. Only the URL printed at start holds it.
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

/// The rules, fixed at start.
#[derive(Clone)]
pub struct Guard {
    token: Token,
    hosts: [String; 2],
    origins: [String; 2],
}

impl Guard {
    pub fn new(token: Token, port: u16) -> Self {
        Self {
            token,
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

fn token_in_query(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
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
    let path = request.uri().path();
    let public_asset = request.method() == Method::GET && path.starts_with("/assets/");
    if !public_asset {
        let given = if path.starts_with("/api/") {
            header_str(headers, TOKEN_HEADER)
        } else {
            token_in_query(request.uri().query())
        };
        if !given.is_some_and(|t| guard.token.matches(t)) {
            return with_headers(refuse(
                StatusCode::UNAUTHORIZED,
                "no_token",
                "open the address that `sealback ui` printed: it carries the access token",
            ));
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
