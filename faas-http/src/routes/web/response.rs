//! From an action's result to an HTTP response, by the URL's extension (OpenWhisk's
//! `WhiskWebActionsApi` transcoders `resultAsHttp`, `resultAsJson`, `resultAsHtml`,
//! `resultAsSvg`, `resultAsText`).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;

use super::media::{Charset, MediaType};
use crate::error::ApiError;

/// 404 for a missing projected property.
pub(crate) const PROPERTY_NOT_FOUND: &str = "Response does not include requested property.";
/// 400 for a `.http` result with a `Content-Type` that does not parse.
pub(crate) const HTTP_UNKNOWN_CONTENT_TYPE: &str = "Response did not specify a known content-type.";
/// 400 for a `.http` body that does not fit its `Content-Type`.
pub(crate) const HTTP_CONTENT_TYPE_ERROR: &str =
    "Response type in header did not match generated content type.";

/// 400 for a result that is not of the extension's type.
pub(crate) fn invalid_media(media: &str) -> ApiError {
    ApiError::bad_request(format!("Response is not valid '{media}'."))
}

/// Java's basic base64 decoder: the standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The extensions of web action URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extension {
    /// `.http` (also the default): the result is the HTTP response.
    Http,
    /// `.json`: the result as JSON.
    Json,
    /// `.html`: the `body` (or `html`) string as HTML.
    Html,
    /// `.svg`: the `body` (or `svg`) string as SVG.
    Svg,
    /// `.text`: the `body` (or `text`) value as plain text.
    Text,
}

impl Extension {
    const ALL: [(&'static str, Self); 5] = [
        (".http", Self::Http),
        (".json", Self::Json),
        (".html", Self::Html),
        (".svg", Self::Svg),
        (".text", Self::Text),
    ];

    /// Splits `name.ext` into the action name and its extension; a name without a known
    /// extension is the action name itself, served as `.http`
    /// (`mediaTranscoderForName` without `enforceExtension`).
    pub(crate) fn split(segment: &str) -> (&str, Self) {
        for (suffix, ext) in Self::ALL {
            if let Some(base) = segment.strip_suffix(suffix) {
                return (base, ext);
            }
        }
        (segment, Self::Http)
    }

    /// The extension named `name` (`json`, `http`, ...), as API routes write it.
    pub(crate) fn named(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(s, _)| &s[1..] == name)
            .map(|(_, e)| *e)
    }

    /// Its name without the dot.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Json => "json",
            Self::Html => "html",
            Self::Svg => "svg",
            Self::Text => "text",
        }
    }
}

/// A response made from a result.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) status: StatusCode,
    /// Headers the action set (never `Content-Type` or framing headers).
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// `None` for an empty response.
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
}

impl Rendered {
    fn ok(content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            content_type: Some(content_type.to_string()),
            body: body.into(),
        }
    }
}

/// JSON as OpenWhisk prints its web responses (indented by two spaces).
pub(crate) fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_else(|_| b"null".to_vec())
}

/// Renders `result` for `ext`.
pub(crate) fn render(ext: Extension, result: &Value) -> Result<Rendered, ApiError> {
    match ext {
        Extension::Http => as_http(result),
        Extension::Json => match result {
            Value::Object(_) | Value::Array(_) => {
                Ok(Rendered::ok("application/json", pretty(result)))
            }
            _ => Err(invalid_media("application/json")),
        },
        Extension::Html => match field(result, "html") {
            Some(Value::String(s)) => Ok(Rendered::ok("text/html; charset=UTF-8", s.clone())),
            _ => Err(invalid_media("text/html")),
        },
        Extension::Svg => match field(result, "svg") {
            Some(Value::String(s)) => Ok(Rendered::ok("image/svg+xml", s.clone())),
            _ => Err(invalid_media("image/svg+xml")),
        },
        Extension::Text => {
            let text = match field(result, "text") {
                None => return Err(ApiError::new(StatusCode::NOT_FOUND, PROPERTY_NOT_FOUND)),
                Some(v @ (Value::Object(_) | Value::Array(_))) => pretty(v),
                Some(Value::String(s)) => s.clone().into_bytes(),
                Some(other) => other.to_string().into_bytes(),
            };
            Ok(Rendered::ok("text/plain; charset=UTF-8", text))
        }
    }
}

/// The projected value of `.html`, `.svg` and `.text`: an object's `body`, else its `name`
/// field; any other result is itself.
fn field<'a>(result: &'a Value, name: &str) -> Option<&'a Value> {
    match result {
        Value::Object(o) => o.get("body").or_else(|| o.get(name)),
        other => Some(other),
    }
}

fn not_http() -> ApiError {
    invalid_media("message/http")
}

/// `.http`: `{statusCode, headers, body}`.
fn as_http(result: &Value) -> Result<Rendered, ApiError> {
    let Value::Object(o) = result else {
        return Err(not_http());
    };
    let mut headers = Vec::new();
    let mut content_type: Option<String> = None;
    if let Some(h) = o.get("headers") {
        let Value::Object(h) = h else {
            return Err(not_http());
        };
        for (k, v) in h {
            header_values(k, v, &mut headers, &mut content_type)?;
        }
    }
    let status = match o.get("statusCode") {
        None => None,
        Some(v) => Some(status_code(v).ok_or_else(not_http)?),
    };
    match o.get("body") {
        Some(Value::String(s)) if !s.is_empty() => {
            text_body(status.unwrap_or(StatusCode::OK), headers, content_type, s)
        }
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(Rendered {
            status: status.unwrap_or(StatusCode::NO_CONTENT),
            headers,
            content_type: None,
            body: Bytes::new(),
        }),
        Some(js) => json_body(status.unwrap_or(StatusCode::OK), headers, content_type, js),
    }
}

/// Framing headers the connection owns; an action's values for them are dropped (pekko
/// ignores them too).
fn reserved_header(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || name.as_str() == "keep-alive"
        || name == header::UPGRADE
}

/// One header of the result: a string, number or boolean, or an array of them (one header
/// line each). The first `Content-Type` is kept apart: it types the body.
fn header_values(
    name: &str,
    v: &Value,
    out: &mut Vec<(HeaderName, HeaderValue)>,
    content_type: &mut Option<String>,
) -> Result<(), ApiError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            for item in items {
                header_values(name, item, out, content_type)?;
            }
            return Ok(());
        }
        _ => return Err(not_http()),
    };
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| not_http())?;
    if name == header::CONTENT_TYPE {
        if content_type.is_none() {
            *content_type = Some(text);
        }
        return Ok(());
    }
    let value = HeaderValue::from_str(&text).map_err(|_| not_http())?;
    if !reserved_header(&name) {
        out.push((name, value));
    }
    Ok(())
}

/// A `statusCode`: a whole number or a string of one, of a final response (200–999).
fn status_code(v: &Value) -> Option<StatusCode> {
    let code: i64 = match v {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e9 => f as i64,
            _ => return None,
        },
        Value::String(s) => {
            let digits = s.strip_prefix('+').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        }
        _ => return None,
    };
    let code = u16::try_from(code)
        .ok()
        .filter(|c| (200..=999).contains(c))?;
    StatusCode::from_u16(code).ok()
}

/// `Exec.isBinaryCode`: a trimmed, non-empty string of base64 quads.
fn looks_base64(s: &str) -> bool {
    let t = s.trim();
    if t.is_empty() || !t.len().is_multiple_of(4) {
        return false;
    }
    let b = t.as_bytes();
    let body = match (b.len().checked_sub(2).map(|i| &b[i..]), b.last()) {
        (Some(b"=="), _) => &b[..b.len() - 2],
        (_, Some(b'=')) => &b[..b.len() - 1],
        _ => b,
    };
    body.iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/'))
}

/// A non-empty string body: typed by the `Content-Type` (default `text/html`), base64-decoded
/// for binary types (and for JSON types when it looks like base64, a legacy OpenWhisk keeps).
fn text_body(
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    content_type: Option<String>,
    s: &str,
) -> Result<Rendered, ApiError> {
    let media = match content_type {
        Some(ct) => {
            MediaType::parse(&ct).ok_or_else(|| ApiError::bad_request(HTTP_UNKNOWN_CONTENT_TYPE))?
        }
        None => MediaType::parse("text/html").ok_or_else(not_http)?,
    };
    let decode = || {
        BASE64
            .decode(s)
            .map(Bytes::from)
            .map_err(|_| ApiError::bad_request(HTTP_CONTENT_TYPE_ERROR))
    };
    let body = match media.charset() {
        Charset::Binary => decode()?,
        _ if media.is_json_family() && looks_base64(s) => decode()?,
        _ => Bytes::from(s.to_string()),
    };
    Ok(Rendered {
        status,
        headers,
        content_type: Some(media.render()),
        body,
    })
}

/// A JSON body: `application/json` unless a `+json` type is named; anything else is refused.
fn json_body(
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    content_type: Option<String>,
    js: &Value,
) -> Result<Rendered, ApiError> {
    let media = match content_type {
        None => None,
        Some(ct) => Some(
            MediaType::parse(&ct).ok_or_else(|| ApiError::bad_request(HTTP_CONTENT_TYPE_ERROR))?,
        ),
    };
    let rendered = match media {
        None => "application/json".to_string(),
        Some(m) if m.is_json_family() => m.essence(),
        Some(_) => return Err(ApiError::bad_request(HTTP_CONTENT_TYPE_ERROR)),
    };
    Ok(Rendered {
        status,
        headers,
        content_type: Some(rendered),
        body: pretty(js).into(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extensions_split_off_the_name() {
        for (suffix, ext) in Extension::ALL {
            for s in ["t", "tt", "t.wxyz", "tt.wxyz"] {
                assert_eq!(Extension::split(&format!("{s}{suffix}")), (s, ext));
            }
        }
        for s in ["t", "tt", "abcde", "t.wxyz"] {
            assert_eq!(Extension::split(s), (s, Extension::Http));
        }
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code(&json!(302)), Some(StatusCode::FOUND));
        assert_eq!(status_code(&json!("444")).unwrap().as_u16(), 444);
        assert_eq!(status_code(&json!(200.0)), Some(StatusCode::OK));
        assert_eq!(status_code(&json!(200.5)), None);
        assert_eq!(status_code(&json!("xyz")), None);
        assert_eq!(status_code(&json!(" 200")), None);
        assert_eq!(status_code(&json!(100)), None);
        assert_eq!(status_code(&json!(1000)), None);
        assert_eq!(status_code(&json!(true)), None);
    }

    #[test]
    fn base64_detection() {
        assert!(looks_base64("eyJhIjoxfQ=="));
        assert!(looks_base64("abcd"));
        assert!(!looks_base64("hello world"));
        assert!(!looks_base64("abc"));
        assert!(!looks_base64(""));
    }

    #[test]
    fn http_defaults() {
        let r = render(Extension::Http, &json!({})).unwrap();
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.content_type.is_none());
        let r = render(Extension::Http, &json!({"body": "<b>hi</b>"})).unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.content_type.as_deref(), Some("text/html; charset=UTF-8"));
        let r = render(Extension::Http, &json!({"body": {"a": 1}})).unwrap();
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let e = render(Extension::Http, &json!([1])).unwrap_err();
        assert_eq!(e.message(), "Response is not valid 'message/http'.");
        let e = render(Extension::Http, &json!({"headers": {"a": {"b": 1}}})).unwrap_err();
        assert_eq!(e.message(), "Response is not valid 'message/http'.");
    }

    #[test]
    fn headers_repeat_and_framing_is_dropped() {
        let r = render(
            Extension::Http,
            &json!({"headers": {"Set-Cookie": ["a=b", "c=d"], "Content-Length": "99", "X-N": 5}}),
        )
        .unwrap();
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["set-cookie", "set-cookie", "x-n"]);
    }
}
