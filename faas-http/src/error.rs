//! HTTP errors in OpenWhisk's shape: `{"error": "<message>", "code": "<transaction id>"}`.
//!
//! Handlers and layers do not know the transaction id when they fail, so an [`ApiError`] turns
//! into a bodiless response that carries its message as an [`ErrorMessage`] extension; the
//! request-id layer (outermost) renders every such response, and every other error response
//! that is not JSON (axum's rejections, tower-http's time-out and size-limit answers), into
//! the JSON body with the request's transaction id. OpenWhisk does the same with its
//! `customRejectionHandler`.

use std::borrow::Cow;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use faas_core::Error;

/// The message of an error response, rendered into the JSON body by the request-id layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage(pub Cow<'static, str>);

/// Marks a response whose status and body an action chose (web actions, API routes): the
/// request-id layer leaves it as it is, even with an error status and no JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verbatim;

/// OpenWhisk's messages used by the controller.
pub mod messages {
    /// 404 for entities and activations.
    pub const RESOURCE_DOES_NOT_EXIST: &str = "The requested resource does not exist.";
    /// 404 for routes nobody serves (pekko's default text).
    pub const ROUTE_NOT_FOUND: &str = "The requested resource could not be found.";
    /// 401 without credentials.
    pub const AUTH_MISSING: &str =
        "The resource requires authentication, which was not supplied with the request";
    /// 401 with wrong credentials.
    pub const AUTH_INVALID: &str = "The supplied authentication is invalid";
    /// 400 when payload keys hit `final` parameters.
    pub const PARAMETERS_NOT_ALLOWED: &str =
        "Request defines parameters that are not allowed (e.g., reserved properties).";
    /// 400 when `docs` and `count` are both asked for.
    pub const DOCS_NOT_ALLOWED_WITH_COUNT: &str =
        "The parameter 'docs' is not permitted with 'count'.";
    /// 400 for actions created or deleted inside a binding.
    pub const NOT_ALLOWED_ON_BINDING: &str = "Operation not permitted on package binding.";
    /// 400 for malformed activation ids.
    pub const ACTIVATION_ID_ILLEGAL: &str = "The activation id is not valid.";
    /// 503 when the request did not finish within the controller's request timeout.
    pub const REQUEST_TIMEOUT: &str = "The server was not able to produce a timely response to your request.\r\nPlease try again in a short while!";
    /// 503 when no invoker can take the work.
    pub const UNAVAILABLE: &str =
        "The server is currently unavailable (because it is overloaded or down for maintenance).";
    /// 500.
    pub const INTERNAL: &str = "There was an internal server error.";
    /// 400 when a body cannot be read.
    pub const BODY_UNREADABLE: &str = "Failed extracting request body.";

    /// 403 for another namespace's resources.
    pub fn not_authorized(resource: &str) -> String {
        format!("The supplied authentication is not authorized to access '{resource}'.")
    }
    /// 403 for kinds the namespace may not use.
    pub fn kind_not_allowed(kind: &str) -> String {
        format!("The supplied authentication is not authorized to access actions of kind '{kind}'.")
    }
    /// 413 for bodies over a limit.
    pub fn request_too_large(size: u64, allowed: u64) -> String {
        format!("Request larger than allowed: {size} > {allowed} bytes.")
    }
    /// 400 for a query parameter that does not parse (pekko's wording around OpenWhisk's).
    pub fn malformed_query(name: &str, detail: &str) -> String {
        format!("The query parameter '{name}' was malformed:\n{detail}")
    }
    /// 400 for `timeout` out of range.
    pub fn invalid_timeout(max_ms: u64) -> String {
        format!("Timeout must be number of milliseconds up to {max_ms}.")
    }
    /// 400 for `limit` out of range.
    pub fn list_limit_out_of_range(collection: &str, value: i64, max: u32) -> String {
        format!("The value '{value}' is not in the range of 0 to {max} for {collection}.")
    }
    /// 400 for a negative `skip`.
    pub fn list_skip_out_of_range(collection: &str, value: i64) -> String {
        format!("The value '{value}' is not greater than or equal to 0 for {collection}.")
    }
    /// 400 for a `skip`/`limit` that is not an integer.
    pub fn argument_not_integer(collection: &str, value: &str) -> String {
        format!("The value '{value}' is not an integer for {collection}.")
    }
    /// 400 for an activation `name` filter with more than two segments.
    pub fn bad_name_filter(value: &str) -> String {
        format!("Parameter may be a 'simple' name or 'package-name/simple' name: {value}")
    }
    /// 400 for `since`/`upto` that are not epoch milliseconds.
    pub fn bad_epoch(value: &str) -> String {
        format!("Parameter is not a valid value for epoch seconds: {value}")
    }
    /// 400 for a boolean query parameter that is not one.
    pub fn bad_boolean(value: &str) -> String {
        format!("'{value}' is not a valid Boolean value")
    }
    /// 405 listing the methods the path supports.
    pub fn method_not_allowed(allow: &str) -> String {
        format!("HTTP method not allowed, supported methods: {allow}")
    }
}

/// An error answer of the REST API: a status and OpenWhisk's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 400 for a malformed query parameter.
    pub fn malformed_query(name: &str, detail: &str) -> Self {
        Self::bad_request(messages::malformed_query(name, detail))
    }
    /// 403 for `resource`.
    pub fn forbidden(resource: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, messages::not_authorized(resource))
    }
    /// 404.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, messages::RESOURCE_DOES_NOT_EXIST)
    }
    /// 413 for a body of `size` bytes over `allowed`.
    pub fn too_large(size: u64, allowed: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            messages::request_too_large(size, allowed),
        )
    }
    /// 401 with `message` (see [`messages::AUTH_MISSING`], [`messages::AUTH_INVALID`]).
    pub fn unauthorized(message: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %faas_core::Chain(&e), "request failed");
        }
        let message = match &e {
            Error::Backend { .. } | Error::Internal { .. } | Error::Timeout { .. } => {
                Cow::Borrowed(messages::INTERNAL)
            }
            Error::NotSupported { .. } => Cow::Owned(e.to_string()),
            // The one unavailability the caller can act on: its action's kind has no invoker.
            Error::Unavailable { message }
                if message.starts_with(faas_core::sharding::NO_INVOKER_FOR_KIND) =>
            {
                Cow::Owned(message.clone())
            }
            Error::Unavailable { .. } => Cow::Borrowed(messages::UNAVAILABLE),
            _ => Cow::Owned(e.public_message()),
        };
        Self { status, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self.status;
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"OpenWhisk secure realm\""),
            );
        }
        res.extensions_mut().insert(ErrorMessage(self.message));
        res
    }
}

/// The message for an error response that carries none: OpenWhisk's text for 403/404,
/// pekko's default text for the rest.
pub(crate) fn default_message(
    status: StatusCode,
    allow: Option<&str>,
    request_len: Option<u64>,
    max_request: u64,
) -> Cow<'static, str> {
    match status {
        StatusCode::NOT_FOUND => Cow::Borrowed(messages::ROUTE_NOT_FOUND),
        StatusCode::FORBIDDEN => {
            Cow::Borrowed("The supplied authentication is not authorized to access this resource.")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            Cow::Owned(messages::method_not_allowed(allow.unwrap_or("")))
        }
        StatusCode::PAYLOAD_TOO_LARGE => match request_len {
            Some(n) => Cow::Owned(messages::request_too_large(n, max_request)),
            None => Cow::Borrowed("The request content was too large."),
        },
        StatusCode::SERVICE_UNAVAILABLE => Cow::Borrowed(messages::REQUEST_TIMEOUT),
        StatusCode::UNAUTHORIZED => Cow::Borrowed(messages::AUTH_MISSING),
        StatusCode::BAD_REQUEST => {
            Cow::Borrowed("The request contains bad syntax or cannot be fulfilled.")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            Cow::Borrowed("The request's Content-Type is not supported.")
        }
        StatusCode::INTERNAL_SERVER_ERROR => Cow::Borrowed(messages::INTERNAL),
        other => Cow::Borrowed(other.canonical_reason().unwrap_or("Error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_openwhisk_statuses() {
        let e = ApiError::from(Error::not_found("guest/x"));
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(e.message(), messages::RESOURCE_DOES_NOT_EXIST);
        let e = ApiError::from(Error::AlreadyExists { id: "x".into() });
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.message(), "resource already exists");
        let e = ApiError::from(Error::backend("memory", false, "disk on fire"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("fire"));
        let e = ApiError::from(Error::unavailable("No invokers available"));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn unauthorized_carries_the_realm() {
        let r = ApiError::unauthorized(messages::AUTH_INVALID).into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"OpenWhisk secure realm\""
        );
        assert_eq!(
            r.extensions().get::<ErrorMessage>().map(|m| m.0.as_ref()),
            Some(messages::AUTH_INVALID)
        );
    }
}
