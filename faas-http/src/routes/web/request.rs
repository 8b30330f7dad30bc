//! From an HTTP request to a web action's arguments (OpenWhisk's `WebActions.scala`:
//! `Context`, `extractEntityAndProcessRequest`).
//!
//! * `__ow_method` (lowercase), `__ow_headers` (lowercase names; the last of repeated headers),
//!   `__ow_path` (the path after the action and its extension), and `__ow_user` (the caller's
//!   namespace, when the request carried valid credentials).
//! * Not raw: query parameters (strings) and, for a JSON object or a form body, the body's
//!   fields become arguments (body over query); another JSON value is `__ow_body` as it is; any
//!   other body is `__ow_body` as text, or base64 for binary types. Query or body keys that
//!   name an `__ow_` field or a protected (`final`) parameter are refused.
//! * Raw (`raw-http: true`): the query string as `__ow_query`, the body as `__ow_body` (text,
//!   or base64 for binary types and JSON; `""` when empty).

use std::collections::BTreeSet;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, header};
use serde_json::{Map, Value};

use super::media::{Charset, MediaType};
use crate::error::ApiError;

/// `__ow_method`.
pub(crate) const OW_METHOD: &str = "__ow_method";
/// `__ow_headers`.
pub(crate) const OW_HEADERS: &str = "__ow_headers";
/// `__ow_path`.
pub(crate) const OW_PATH: &str = "__ow_path";
/// `__ow_user`.
pub(crate) const OW_USER: &str = "__ow_user";
/// `__ow_query`.
pub(crate) const OW_QUERY: &str = "__ow_query";
/// `__ow_body`.
pub(crate) const OW_BODY: &str = "__ow_body";

/// The fields a request may not set (`WebApiDirectives.reservedProperties`).
pub(crate) const RESERVED: [&str; 6] = [OW_METHOD, OW_HEADERS, OW_PATH, OW_USER, OW_QUERY, OW_BODY];

/// The HTTP side of a web action call.
#[derive(Debug)]
pub(crate) struct Context {
    /// `__ow_method`.
    pub(crate) method: String,
    /// `__ow_headers`.
    pub(crate) headers: Map<String, Value>,
    /// `__ow_path`.
    pub(crate) path: String,
    /// The raw query string (without `?`).
    pub(crate) query: String,
    /// The decoded body, if any.
    pub(crate) body: Option<Value>,
}

/// `__ow_headers`: every request header under its lowercase name (the last of repeated ones),
/// without the framing headers and, when the caller authenticated with its platform key, without
/// `Authorization` (the action sees `__ow_user` instead of another tenant's key).
pub(crate) fn header_map(headers: &HeaderMap, hide_authorization: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || (hide_authorization && name == header::AUTHORIZATION)
        {
            continue;
        }
        out.insert(
            name.as_str().to_string(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    out
}

/// The query parameters, the last of repeated names winning (pekko's `Query.toMap`).
fn query_map(query: &str) -> Map<String, Value> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

/// The request body as the action receives it (see the module docs); `None` when there is
/// none.
///
/// # Errors
///
/// 400 `The request content was malformed:` for a JSON-typed body that is not JSON.
pub(crate) fn decode_body(
    headers: &HeaderMap,
    bytes: &Bytes,
    raw: bool,
) -> Result<Option<Value>, ApiError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let media = match &declared {
        // No body and no type: pekko's empty entity.
        None if bytes.is_empty() => return Ok(None),
        None => MediaType::octet_stream(),
        // A type that does not parse is ignored; the body is then bytes.
        Some(ct) => MediaType::parse(ct).unwrap_or_else(MediaType::octet_stream),
    };
    if !raw && media.is_json_family() {
        if bytes.is_empty() {
            return Ok(None);
        }
        return serde_json::from_slice::<Value>(bytes)
            .map(Some)
            .map_err(|e| {
                ApiError::bad_request(format!("The request content was malformed:\n{e}"))
            });
    }
    if !raw && media.essence() == "application/x-www-form-urlencoded" {
        return Ok(Some(Value::Object(query_map(&String::from_utf8_lossy(
            bytes,
        )))));
    }
    if media.charset() == Charset::Binary || media.essence() == "application/json" {
        return Ok(Some(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )));
    }
    Ok(Some(Value::String(
        String::from_utf8_lossy(bytes).into_owned(),
    )))
}

impl Context {
    /// The context of a request.
    pub(crate) fn new(
        method: &Method,
        headers: Map<String, Value>,
        path: String,
        query: Option<&str>,
    ) -> Self {
        Self {
            method: method.as_str().to_ascii_lowercase(),
            headers,
            path,
            query: query.unwrap_or("").to_string(),
            body: None,
        }
    }

    /// Whether a query or body-object key names one of `reserved`.
    pub(crate) fn overrides(&self, reserved: &BTreeSet<&str>) -> bool {
        let from_query = form_urlencoded::parse(self.query.as_bytes())
            .any(|(k, _)| reserved.contains(k.as_ref()));
        let from_body = match &self.body {
            Some(Value::Object(o)) => o.keys().any(|k| reserved.contains(k.as_str())),
            _ => false,
        };
        from_query || from_body
    }

    /// The arguments: `__ow_*` fields, then the query and body (see the module docs).
    pub(crate) fn into_arguments(self, user: Option<&str>, raw: bool) -> Map<String, Value> {
        let mut args = Map::new();
        args.insert(OW_METHOD.into(), Value::String(self.method));
        args.insert(OW_HEADERS.into(), Value::Object(self.headers));
        args.insert(OW_PATH.into(), Value::String(self.path));
        if let Some(u) = user {
            args.insert(OW_USER.into(), Value::String(u.to_string()));
        }
        if raw {
            args.insert(OW_QUERY.into(), Value::String(self.query));
        } else {
            args.extend(query_map(&self.query));
        }
        match self.body {
            Some(Value::Object(fields)) if !raw => args.extend(fields),
            Some(v) => {
                args.insert(OW_BODY.into(), v);
            }
            None if raw => {
                args.insert(OW_BODY.into(), Value::String(String::new()));
            }
            None => {}
        }
        args
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn typed(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn bodies_by_type() {
        let b = |s: &str| Bytes::from(s.to_string());
        assert_eq!(decode_body(&HeaderMap::new(), &b(""), false).unwrap(), None);
        assert_eq!(
            decode_body(&typed("application/json"), &b(r#"{"a":1}"#), false).unwrap(),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            decode_body(&typed("application/json"), &b(""), false).unwrap(),
            None
        );
        assert_eq!(
            decode_body(&typed("application/json"), &b(r#"{"a":1}"#), true).unwrap(),
            Some(json!("eyJhIjoxfQ=="))
        );
        assert!(decode_body(&typed("application/json"), &b("{"), false).is_err());
        assert_eq!(
            decode_body(
                &typed("application/x-www-form-urlencoded"),
                &b("a=1&b=x+y"),
                false
            )
            .unwrap(),
            Some(json!({"a": "1", "b": "x y"}))
        );
        assert_eq!(
            decode_body(&typed("text/plain"), &b("Jane"), false).unwrap(),
            Some(json!("Jane"))
        );
        assert_eq!(
            decode_body(&typed("image/png"), &b("\u{1}"), false).unwrap(),
            Some(json!("AQ=="))
        );
        assert_eq!(
            decode_body(&HeaderMap::new(), &b("xy"), false).unwrap(),
            Some(json!("eHk="))
        );
    }

    #[test]
    fn arguments() {
        let mut c = Context::new(&Method::POST, Map::new(), "/p".into(), Some("a=1&b=2&a=3"));
        c.body = Some(json!({"b": "body"}));
        let args = c.into_arguments(Some("guest"), false);
        assert_eq!(args["a"], "3");
        assert_eq!(args["b"], "body");
        assert_eq!(args[OW_METHOD], "post");
        assert_eq!(args[OW_USER], "guest");
        let c = Context::new(&Method::GET, Map::new(), String::new(), Some("x=1"));
        let args = c.into_arguments(None, true);
        assert_eq!(args[OW_QUERY], "x=1");
        assert_eq!(args[OW_BODY], "");
        assert!(!args.contains_key(OW_USER));
        assert!(!args.contains_key("x"));
    }

    #[test]
    fn reserved_keys_are_found_in_query_and_body() {
        let reserved: BTreeSet<&str> = RESERVED.into_iter().collect();
        let c = Context::new(&Method::GET, Map::new(), String::new(), Some("__ow_user=x"));
        assert!(c.overrides(&reserved));
        let mut c = Context::new(&Method::GET, Map::new(), String::new(), None);
        c.body = Some(json!({"__ow_path": 1}));
        assert!(c.overrides(&reserved));
        c.body = Some(json!(["__ow_path"]));
        assert!(!c.overrides(&reserved));
    }
}
