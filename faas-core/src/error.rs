//! The one error type of the SDK and its mapping onto OpenWhisk's HTTP errors.

use std::fmt;

/// A boxed error usable as a `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with the SDK's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a faas building block.
///
/// Each variant maps to one HTTP status through [`Error::status`], and its `Display` text is the
/// message OpenWhisk puts into `{"error": ..., "code": ...}` for that situation. Adapters keep
/// their own private error types and convert into this one, keeping the cause as `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The entity, activation or document does not exist (404).
    #[error("The requested resource does not exist.")]
    NotFound {
        /// What was looked up (a document id), for logs.
        id: String,
    },
    /// The document exists but is another kind of entity than the collection asked for (409).
    #[error("Resource by this name exists but is not in this collection.")]
    WrongCollection {
        /// The document id.
        id: String,
    },
    /// Creating a document that exists already (409, `PUT` without `overwrite`).
    #[error("resource already exists")]
    AlreadyExists {
        /// The document id.
        id: String,
    },
    /// A write with a stale or missing revision (409).
    #[error("Concurrent modification to resource detected.")]
    Conflict {
        /// The document id.
        id: String,
    },
    /// Missing or invalid credentials (401).
    #[error("The supplied authentication is invalid")]
    Unauthenticated,
    /// Authenticated, but not allowed to do this (403).
    #[error("{message}")]
    Forbidden {
        /// OpenWhisk's message.
        message: String,
    },
    /// The request is malformed or violates a limit (400).
    #[error("{message}")]
    BadRequest {
        /// OpenWhisk's message.
        message: String,
    },
    /// A body, payload, parameters or code over the allowed size (413).
    #[error("{message}")]
    TooLarge {
        /// OpenWhisk's message.
        message: String,
    },
    /// Throttled (429).
    #[error("{message}")]
    TooManyRequests {
        /// OpenWhisk's message.
        message: String,
    },
    /// No invoker can take the work, or a required service is down (503).
    #[error("{message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
    },
    /// An operation ran out of time (the caller decides what that means; 504 by default).
    #[error("{operation} timed out")]
    Timeout {
        /// The operation that timed out.
        operation: String,
    },
    /// The adapter does not support this operation.
    #[error("{operation} is not supported by {backend}")]
    NotSupported {
        /// The operation.
        operation: String,
        /// The adapter's name.
        backend: &'static str,
    },
    /// A failure inside an adapter (I/O, protocol, server error).
    #[error("{backend}: {source}")]
    Backend {
        /// The adapter's name (`"memory"`, `"couchdb"`, `"kafka"`, `"process"`, `"docker"`...).
        backend: &'static str,
        /// Whether trying again may succeed (network failures, 5xx, timeouts).
        retryable: bool,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A broken invariant inside the platform (500).
    #[error("{message}")]
    Internal {
        /// What broke.
        message: String,
    },
}

impl Error {
    /// 404 for `id`.
    pub fn not_found(id: impl Into<String>) -> Self {
        Self::NotFound { id: id.into() }
    }
    /// 409 revision conflict for `id`.
    pub fn conflict(id: impl Into<String>) -> Self {
        Self::Conflict { id: id.into() }
    }
    /// 400 with OpenWhisk's `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
        }
    }
    /// 403 with OpenWhisk's `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            message: message.into(),
        }
    }
    /// 413 with OpenWhisk's `message`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::TooLarge {
            message: message.into(),
        }
    }
    /// 503 with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
        }
    }
    /// 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
        }
    }
    /// An adapter failure.
    pub fn backend(backend: &'static str, retryable: bool, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            retryable,
            source: source.into(),
        }
    }

    /// The HTTP status OpenWhisk answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::WrongCollection { .. } | Self::AlreadyExists { .. } | Self::Conflict { .. } => {
                409
            }
            Self::Unauthenticated => 401,
            Self::Forbidden { .. } => 403,
            Self::BadRequest { .. } => 400,
            Self::TooLarge { .. } => 413,
            Self::TooManyRequests { .. } => 429,
            Self::Unavailable { .. } => 503,
            Self::Timeout { .. } => 504,
            Self::NotSupported { .. } => 501,
            Self::Backend { retryable, .. } => {
                if *retryable {
                    503
                } else {
                    500
                }
            }
            Self::Internal { .. } => 500,
        }
    }

    /// Whether the same call may succeed if tried again (network faults, overload, time-outs).
    ///
    /// Retry layers use this and nothing else, so they need no knowledge of the adapter.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Backend { retryable, .. } => *retryable,
            Self::Timeout { .. } | Self::Unavailable { .. } => true,
            _ => false,
        }
    }

    /// The message for the HTTP error body. Internal and backend details are not leaked.
    pub fn public_message(&self) -> String {
        match self {
            Self::Backend { .. } | Self::Internal { .. } => {
                "An internal error occurred. Please try again later.".to_string()
            }
            Self::Unavailable { .. } => {
                "The server is currently unavailable (because it is overloaded or down for maintenance)."
                    .to_string()
            }
            other => other.to_string(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::bad_request(format!("The request content was malformed:\n{e}"))
    }
}

/// Helper to render an error chain on one line for logs.
#[derive(Debug)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cur = self.0.source();
        while let Some(e) = cur {
            write!(f, ": {e}")?;
            cur = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_openwhisk() {
        assert_eq!(Error::not_found("x").status(), 404);
        assert_eq!(Error::conflict("x").status(), 409);
        assert_eq!(
            Error::AlreadyExists { id: "x".into() }.to_string(),
            "resource already exists"
        );
        assert_eq!(Error::Unauthenticated.status(), 401);
        assert_eq!(Error::bad_request("b").status(), 400);
        assert_eq!(Error::too_large("b").status(), 413);
        assert_eq!(Error::unavailable("b").status(), 503);
        assert!(Error::backend("t", true, "io").is_retryable());
        assert!(!Error::backend("t", false, "io").is_retryable());
        assert_eq!(
            Error::backend("t", false, "secret detail").public_message(),
            "An internal error occurred. Please try again later."
        );
    }
}
