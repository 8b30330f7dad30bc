//! Docker engine errors in terms of [`faas_core::Error`].

use faas_core::Error;

use super::BACKEND;

/// The HTTP status of an engine error reply, if it was one.
pub(crate) fn status(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether the engine said the object does not exist.
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    status(e) == Some(404)
}

/// An engine error as a backend error. Transport failures and 5xx replies may succeed when
/// tried again; 4xx replies will not.
pub(crate) fn api(context: &str, e: bollard::errors::Error) -> Error {
    let retryable = status(&e).is_none_or(|s| s >= 500);
    Error::backend(BACKEND, retryable, format!("{context}: {e}"))
}

/// A Docker API call that did not answer in time.
pub(crate) fn api_timeout(context: &str) -> Error {
    Error::backend(
        BACKEND,
        true,
        format!("{context}: the Docker engine did not answer in time"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_engine_replies() {
        let nf = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "No such container: x".into(),
        };
        assert!(is_not_found(&nf));
        assert!(!api("inspect", nf).is_retryable());
        let busy = bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: "boom".into(),
        };
        assert!(!is_not_found(&busy));
        let e = api("create", busy);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("create: "), "{e}");
    }
}
