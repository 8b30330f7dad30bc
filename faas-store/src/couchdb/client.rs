//! The wire layer: requests, failure classification, retries with backoff, and databases that
//! (re)create themselves.
//!
//! `couch_rs` does the bulk of the traffic: `_bulk_docs` (activation records), view queries
//! (lists, counts, identity lookups) and database creation. Single-document reads and writes
//! go through `couch_rs`'s own HTTP client ([`couch_rs::Client::req`], which carries the
//! credentials) with our own path encoding, because `couch_rs` encodes document ids for forms
//! (a space becomes `+`, and OpenWhisk names may hold spaces) and drops CouchDB's error
//! `reason`, which tells a missing document from a missing database.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::Retryable;
use couch_rs::database::Database;
use couch_rs::error::CouchError;
use faas_core::{BoxError, Error};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::config::CouchDbConfig;

/// The adapter's name in [`Error::Backend`].
pub(crate) const BACKEND: &str = "couchdb";

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` encoded as one URL path segment (`/` becomes `%2F`, space `%20`).
pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The path of document `id` in database `db`; design documents keep their `_design/`.
pub(crate) fn doc_path(db: &str, id: &str) -> String {
    match id.strip_prefix("_design/") {
        Some(name) => format!("{}/_design/{}", segment(db), segment(name)),
        None => format!("{}/{}", segment(db), segment(id)),
    }
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server answered with an error status; `error`/`reason` from CouchDB's JSON body.
    Status {
        /// The HTTP status.
        status: u16,
        /// CouchDB's `error` (`conflict`, `not_found`, ...), or the client's message.
        error: String,
        /// CouchDB's `reason` (`missing`, `no_db_file`, `Database does not exist.`, ...).
        reason: String,
    },
    /// No complete answer: refused or reset connection, time-out, truncated body.
    Transport {
        /// Whether the request may have reached the server (false only for connect errors).
        sent: bool,
        /// The cause.
        source: BoxError,
    },
    /// An answer that is not CouchDB's JSON (a proxy's error page, a truncated body).
    Protocol {
        /// The cause.
        source: BoxError,
    },
}

impl Failure {
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again may succeed: network failures, time-outs, 5xx, 408, 429, and
    /// answers that were not JSON.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            Self::Transport { .. } | Self::Protocol { .. } => true,
        }
    }

    /// Whether a write that failed like this may still have been applied by the server.
    pub(crate) fn may_have_applied(&self) -> bool {
        match self {
            Self::Transport { sent, .. } => *sent,
            Self::Protocol { .. } => true,
            // A 5xx from CouchDB can come after the write reached the disk (a node timing out
            // waiting for its peers), so treat it as unknown too.
            Self::Status { status, .. } => *status >= 500,
        }
    }

    /// Whether this says the database itself is missing (not just a document).
    pub(crate) fn is_missing_database(&self) -> bool {
        matches!(self, Self::Status { status: 404, reason, .. }
            if reason == "no_db_file" || reason == "Database does not exist.")
    }

    /// The failure of an operation on a database that does not exist.
    pub(crate) fn missing_database() -> Self {
        Self::Status {
            status: 404,
            error: "not_found".into(),
            reason: "Database does not exist.".into(),
        }
    }

    fn protocol(msg: impl Into<String>) -> Self {
        Self::Protocol {
            source: msg.into().into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status {
                status,
                error,
                reason,
            } => {
                write!(f, "server answered {status}")?;
                if !error.is_empty() {
                    write!(f, " {error}")?;
                }
                if !reason.is_empty() {
                    write!(f, ": {reason}")?;
                }
                Ok(())
            }
            Self::Transport { sent: false, .. } => f.write_str("cannot connect"),
            Self::Transport { sent: true, .. } => f.write_str("no complete answer"),
            Self::Protocol { .. } => f.write_str("answer is not CouchDB's JSON"),
        }
    }
}

/// The error kept as `source` of the core errors this adapter returns: what was done, to
/// which database and document, and how it failed. It holds no credentials.
#[derive(Debug)]
pub struct CouchDbError {
    op: String,
    target: String,
    failure: Failure,
}

impl CouchDbError {
    pub(crate) fn new(op: &str, target: &str, failure: Failure) -> Self {
        Self {
            op: op.to_string(),
            target: target.to_string(),
            failure,
        }
    }

    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.failure.status()
    }
}

impl fmt::Display for CouchDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.target, self.failure)
    }
}

impl std::error::Error for CouchDbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.failure {
            Failure::Transport { source, .. } | Failure::Protocol { source } => Some(&**source),
            Failure::Status { .. } => None,
        }
    }
}

/// The core error for a failure that the caller did not handle itself (404 and 409 are
/// usually handled where their meaning is known).
pub(crate) fn to_error(failure: Failure, op: &str, target: &str) -> Error {
    let retryable = failure.is_retryable();
    let refused = matches!(failure.status(), Some(401 | 403));
    let e = CouchDbError::new(op, target, failure);
    if refused {
        return Error::unavailable(format!(
            "CouchDB refused access ({e}); check the store's credentials"
        ));
    }
    Error::backend(BACKEND, retryable, e)
}

/// An equivalent of `e` for another caller (errors are not `Clone`; the cause chain is kept
/// as text).
pub(crate) fn duplicate(e: &Error) -> Error {
    match e {
        Error::Unavailable { message } => Error::unavailable(message.clone()),
        Error::Backend {
            retryable, source, ..
        } => Error::backend(BACKEND, *retryable, faas_core::Chain(&**source).to_string()),
        other => Error::internal(other.to_string()),
    }
}

/// A layout error: a document that this adapter cannot read.
pub(crate) fn layout_error(db: &str, id: &str, what: impl fmt::Display) -> Error {
    Error::backend(
        BACKEND,
        false,
        format!("document '{id}' in database '{db}' is not in a layout this store reads: {what}"),
    )
}

/// Classifies an error from `couch_rs`.
pub(crate) fn classify(e: CouchError) -> Failure {
    use std::error::Error as _;
    let upstream = e
        .source()
        .and_then(|s| s.downcast_ref::<reqwest::Error>())
        .map(|r| {
            (
                r.status().map(|s| s.as_u16()),
                r.is_connect(),
                r.is_decode(),
            )
        });
    match (&e, upstream) {
        (_, Some((Some(status), _, _))) => Failure::Status {
            status,
            error: String::new(),
            reason: String::new(),
        },
        (_, Some((None, _, true))) | (CouchError::InvalidJson(_), None) => Failure::Protocol {
            source: Box::new(e),
        },
        (_, Some((None, connect, false))) => Failure::Transport {
            sent: !connect,
            source: Box::new(e),
        },
        (CouchError::OperationFailed(d), None) => Failure::Status {
            status: d.status.as_u16(),
            error: d.message.clone(),
            reason: String::new(),
        },
        (_, None) => Failure::Protocol {
            source: Box::new(e),
        },
    }
}

fn classify_reqwest(e: reqwest::Error) -> Failure {
    if e.is_decode() {
        Failure::Protocol {
            source: Box::new(e),
        }
    } else {
        Failure::Transport {
            sent: !e.is_connect(),
            source: Box::new(e),
        }
    }
}

/// One attempt of a retried operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    /// Whether an earlier attempt failed in a way that may have applied its write.
    pub(crate) ambiguous: bool,
}

/// The HTTP side of the store: the `couch_rs` client and the retry policy.
#[derive(Clone)]
pub(crate) struct Couch {
    client: couch_rs::Client,
    retry_timeout: Duration,
}

impl fmt::Debug for Couch {
    // `couch_rs::Client`'s Debug would print the Authorization header.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Couch")
            .field("retry_timeout", &self.retry_timeout)
            .finish_non_exhaustive()
    }
}

impl Couch {
    pub(crate) fn new(config: &CouchDbConfig) -> Result<Self, Error> {
        let secs = config.request_timeout.as_secs_f64().ceil().max(1.0) as u64;
        let client = match &config.username {
            Some(user) => couch_rs::Client::new_with_timeout(
                config.base.as_str(),
                Some(user),
                config.password.as_deref(),
                Some(secs),
            ),
            None => {
                couch_rs::Client::new_with_timeout(config.base.as_str(), None, None, Some(secs))
            }
        }
        .map_err(|e| Error::bad_request(format!("CouchDB client: {e}")))?;
        Ok(Self {
            client,
            retry_timeout: config.retry_timeout,
        })
    }

    /// A `couch_rs` handle on database `name` (no I/O).
    pub(crate) fn database(&self, name: &str) -> Database {
        Database::new(name.to_string(), self.client.clone())
    }

    /// A request to `path` (already encoded, without leading `/`), with credentials and
    /// JSON headers.
    pub(crate) fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.req(method, &format!("/{path}"), None)
    }

    /// Sends `req` and reads the JSON answer; an error status becomes [`Failure::Status`].
    /// `HEAD` answers and empty bodies read as `Value::Null`.
    pub(crate) async fn send(&self, req: RequestBuilder) -> Result<(u16, Value), Failure> {
        let resp = req.send().await.map_err(classify_reqwest)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(classify_reqwest)?;
        let json = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) => v,
                Err(e) if status < 400 => {
                    return Err(Failure::Protocol {
                        source: Box::new(e),
                    });
                }
                // A non-JSON error page (a proxy's, say): keep the status.
                Err(_) => Value::Null,
            }
        };
        if status >= 400 {
            let field = |k: &str| {
                json.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            return Err(Failure::Status {
                status,
                error: field("error"),
                reason: field("reason"),
            });
        }
        Ok((status, json))
    }

    /// `GET` of one document: `Ok(None)` when it does not exist.
    pub(crate) async fn get_doc(&self, db: &str, id: &str) -> Result<Option<Value>, Failure> {
        let path = doc_path(db, id);
        match self.send(self.req(Method::GET, &path)).await {
            Ok((_, v)) if v.is_object() => Ok(Some(v)),
            Ok(_) => Err(Failure::protocol(format!(
                "document {id} is not a JSON object"
            ))),
            Err(f) if f.status() == Some(404) && !f.is_missing_database() => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// `PUT` of one document (with `_rev` inside `doc` for an update); the new revision.
    pub(crate) async fn put_doc(&self, db: &str, id: &str, doc: &Value) -> Result<String, Failure> {
        let path = doc_path(db, id);
        let (_, v) = self.send(self.req(Method::PUT, &path).json(doc)).await?;
        v.get("rev")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Failure::protocol("PUT answer without rev"))
    }

    /// `DELETE` of one document at revision `rev`.
    pub(crate) async fn delete_doc(&self, db: &str, id: &str, rev: &str) -> Result<(), Failure> {
        let path = doc_path(db, id);
        let req = self.req(Method::DELETE, &path).query(&[("rev", rev)]);
        self.send(req).await.map(|_| ())
    }

    /// Whether database `db` exists.
    pub(crate) async fn database_exists(&self, db: &str) -> Result<bool, Failure> {
        match self.send(self.req(Method::HEAD, &segment(db))).await {
            Ok(_) => Ok(true),
            Err(f) if f.status() == Some(404) => Ok(false),
            Err(f) => Err(f),
        }
    }

    /// Creates database `db` unless it exists (through `couch_rs`).
    pub(crate) async fn create_database(&self, db: &str) -> Result<(), Failure> {
        match self.client.make_db(db).await {
            Ok(_) => Ok(()),
            Err(e) => match classify(e) {
                // Created concurrently by another process.
                Failure::Status { status: 412, .. } => Ok(()),
                f => Err(f),
            },
        }
    }

    /// Deletes database `db`; `Ok(false)` if it did not exist.
    pub(crate) async fn delete_database(&self, db: &str) -> Result<bool, Failure> {
        match self.send(self.req(Method::DELETE, &segment(db))).await {
            Ok(_) => Ok(true),
            Err(f) if f.status() == Some(404) => Ok(false),
            Err(f) => Err(f),
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the retry time is used up; transient
    /// failures are retried after an exponential, jittered backoff (25 ms doubling to 1 s,
    /// plus up to as much again at random).
    pub(crate) async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, Failure>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let deadline = Instant::now() + self.retry_timeout;
        // Read by the next attempt, set when a failed one may have applied its write.
        let ambiguous = AtomicBool::new(false);
        let backoff = backon::ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(25))
            .with_max_delay(Duration::from_secs(1))
            .with_jitter()
            .without_max_times();
        (|| {
            op(Attempt {
                ambiguous: ambiguous.load(Ordering::Relaxed),
            })
        })
        .retry(backoff)
        .when(Failure::is_retryable)
        .adjust(|_, pause| pause.filter(|p| Instant::now() + *p <= deadline))
        .notify(|f, pause| {
            ambiguous.fetch_or(f.may_have_applied(), Ordering::Relaxed);
            tracing::debug!(what, failure = %f, ?pause, "couchdb: retrying");
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_encode_slashes_and_spaces() {
        assert_eq!(segment("ns/pkg/a b"), "ns%2Fpkg%2Fa%20b");
        assert_eq!(segment("x@y.z&w-v_~+"), "x%40y.z%26w-v_~%2B");
        assert_eq!(
            doc_path("db", "_design/whisks.v2.1.0"),
            "db/_design/whisks.v2.1.0"
        );
        assert_eq!(doc_path("db", "ns/a b"), "db/ns%2Fa%20b");
    }

    #[test]
    fn classification() {
        let s = |status| Failure::Status {
            status,
            error: String::new(),
            reason: String::new(),
        };
        assert!(s(500).is_retryable() && s(503).is_retryable() && s(429).is_retryable());
        assert!(!s(404).is_retryable() && !s(409).is_retryable() && !s(400).is_retryable());
        assert!(s(500).may_have_applied() && !s(409).may_have_applied());
        let t = |sent| Failure::Transport {
            sent,
            source: "x".into(),
        };
        assert!(t(false).is_retryable() && !t(false).may_have_applied());
        assert!(t(true).may_have_applied());
        let missing = Failure::Status {
            status: 404,
            error: "not_found".into(),
            reason: "no_db_file".into(),
        };
        assert!(missing.is_missing_database());
        assert!(!s(404).is_missing_database());
        let op = classify(CouchError::new("conflict".into(), http_status(409)));
        assert_eq!(op.status(), Some(409));
    }

    fn http_status(n: u16) -> reqwest::StatusCode {
        reqwest::StatusCode::from_u16(n).unwrap()
    }

    #[test]
    fn errors_map_onto_core_errors() {
        let f = Failure::Status {
            status: 401,
            error: "unauthorized".into(),
            reason: "Name or password is incorrect.".into(),
        };
        let e = to_error(f, "GET", "db/doc");
        assert_eq!(e.status(), 503);
        assert!(e.to_string().contains("credentials"), "{e}");
        let e = to_error(
            Failure::Transport {
                sent: false,
                source: "refused".into(),
            },
            "GET",
            "db/doc",
        );
        assert!(e.is_retryable());
        let e = to_error(
            Failure::Status {
                status: 400,
                error: "bad_request".into(),
                reason: "x".into(),
            },
            "PUT",
            "db/doc",
        );
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "couchdb: PUT db/doc: server answered 400 bad_request: x"
        );
    }
}
