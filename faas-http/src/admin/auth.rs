//! The operator credential and its check: `Authorization: Bearer <credential>`, compared in
//! constant time. Tenant credentials (`Basic`) are never accepted, whatever they hold.

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, StatusCode, header};
use tower_http::auth::AsyncAuthorizeRequest;

use faas_core::{Error, Result};

use crate::error::{ApiError, messages};

/// The shortest operator credential accepted.
pub const MIN_CREDENTIAL_LENGTH: usize = 32;
/// The longest operator credential accepted.
pub const MAX_CREDENTIAL_LENGTH: usize = 1024;

/// The operator credential of the admin API: a bearer token of 32 to 1024 characters from
/// RFC 6750's token alphabet (`A–Z a–z 0–9 - . _ ~ + /`, trailing `=`). That alphabet has no
/// `:`, so a tenant key (`uuid:key`) can never be an operator credential. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredential(Arc<str>);

impl AdminCredential {
    /// Checks and wraps `s`.
    pub fn new(s: &str) -> Result<Self> {
        let n = s.len();
        let body = s.trim_end_matches('=');
        let alphabet = body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
        if !(MIN_CREDENTIAL_LENGTH..=MAX_CREDENTIAL_LENGTH).contains(&n)
            || !alphabet
            || body.is_empty()
        {
            return Err(Error::bad_request(format!(
                "the admin credential must be {MIN_CREDENTIAL_LENGTH} to {MAX_CREDENTIAL_LENGTH} \
                 characters of A-Z a-z 0-9 - . _ ~ + / (and trailing =); a tenant key (uuid:key) \
                 cannot be one"
            )));
        }
        Ok(Self(Arc::from(s)))
    }

    /// A random credential (43 characters, 256 bits), for callers that need one for a
    /// private, in-process use of the admin API.
    pub fn generate() -> Self {
        use rand::Rng;
        let s: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(43)
            .map(char::from)
            .collect();
        Self(Arc::from(s))
    }

    /// The credential itself, to send as `Authorization: Bearer <it>`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this credential, in time independent of where they differ.
    fn matches(&self, candidate: &[u8]) -> bool {
        let mine = self.0.as_bytes();
        mine.len() == candidate.len()
            && mine
                .iter()
                .zip(candidate)
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
    }
}

impl fmt::Debug for AdminCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminCredential(<redacted>)")
    }
}

/// What an `Authorization` header holds, for the admin API.
#[derive(Debug, PartialEq, Eq)]
enum Presented<'a> {
    Missing,
    Bearer(&'a [u8]),
    Other,
}

fn presented(req_headers: &http::HeaderMap) -> Presented<'_> {
    let Some(v) = req_headers.get(header::AUTHORIZATION) else {
        return Presented::Missing;
    };
    let bytes = v.as_bytes();
    match bytes.iter().position(|b| *b == b' ') {
        Some(i) if bytes[..i].eq_ignore_ascii_case(b"bearer") => {
            Presented::Bearer(bytes[i + 1..].trim_ascii())
        }
        _ => Presented::Other,
    }
}

/// Checks the operator credential (a tower-http [`AsyncAuthorizeRequest`]).
#[derive(Debug, Clone)]
pub(crate) struct AdminAuth {
    credential: AdminCredential,
}

impl AdminAuth {
    pub(crate) fn new(credential: AdminCredential) -> Self {
        Self { credential }
    }
}

fn refuse(message: &'static str) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"faas admin\""),
    );
    res
}

impl<B: Send + 'static> AsyncAuthorizeRequest<B> for AdminAuth {
    type RequestBody = B;
    type ResponseBody = Body;
    type Future = BoxFuture<'static, std::result::Result<Request<B>, Response<Body>>>;

    fn authorize(&mut self, request: Request<B>) -> Self::Future {
        let verdict = match presented(request.headers()) {
            Presented::Bearer(token) if self.credential.matches(token) => Ok(()),
            Presented::Missing => Err(refuse(messages::AUTH_MISSING)),
            Presented::Bearer(_) | Presented::Other => {
                // No value logged: it may be a mistyped credential, or a tenant's key.
                tracing::warn!(path = %request.uri().path(), "admin API: credentials refused");
                Err(refuse(messages::AUTH_INVALID))
            }
        };
        Box::pin(async move { verdict.map(|()| request) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let ok = "a".repeat(32);
        assert!(AdminCredential::new(&ok).is_ok());
        assert!(AdminCredential::new(&format!("{}==", "A-._~+/9".repeat(4))).is_ok());
        for bad in [
            "short".to_string(),
            "a".repeat(1025),
            format!("{}:{}", "a".repeat(20), "b".repeat(20)),
            format!("{} {}", "a".repeat(20), "b".repeat(20)),
            "=".repeat(40),
            "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP".to_string(),
        ] {
            assert!(AdminCredential::new(&bad).is_err(), "{bad}");
        }
        let c = AdminCredential::new(&ok).unwrap();
        assert!(!format!("{c:?}").contains(&ok));
        assert!(c.matches(ok.as_bytes()));
        assert!(!c.matches(&ok.as_bytes()[1..]));
        assert!(!c.matches(b""));
        let g = AdminCredential::generate();
        assert!(AdminCredential::new(g.expose()).is_ok());
        assert_ne!(g, AdminCredential::generate());
    }

    #[test]
    fn headers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(presented(&h), Presented::Missing);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dTprZXk="),
        );
        assert_eq!(presented(&h), Presented::Other);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  tok "),
        );
        assert_eq!(presented(&h), Presented::Bearer(b"tok"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(presented(&h), Presented::Other);
    }
}
