//! Media types as OpenWhisk's web actions see them (pekko-http's `MediaType` model).
//!
//! Whether a body is text or binary decides how it travels: request bodies of binary types
//! reach the action base64-encoded, response bodies of binary types are base64-decoded. Pekko
//! registers a fixed list of types; a registered type is binary or text by the list, an
//! unregistered one is text only when it names a `charset` (`CommonActions.getMediaType`).
//! Here every `text/*` type counts as text, registered or not (pekko treats an unregistered
//! `text/x-foo` without a charset as binary); the `application/*` text types are pekko's.

use http::HeaderMap;
use http::header::ACCEPT;

/// How a media type carries text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    /// Bytes: base64 in JSON.
    Binary,
    /// Text in any charset, UTF-8 unless it says (`text/html; charset=UTF-8` when rendered).
    Open,
    /// Text always in UTF-8, rendered without a charset (`application/json`).
    Fixed,
}

/// A parsed media type.
#[derive(Debug, Clone)]
pub(crate) struct MediaType {
    mime: mime::Mime,
}

/// `application/*` types pekko registers as text in any charset.
const APPLICATION_OPEN: &[&str] = &[
    "atom+xml",
    "base64",
    "javascript",
    "problem+xml",
    "rss+xml",
    "soap+xml",
    "vnd.google-earth.kml+xml",
    "x-www-form-urlencoded",
    "xhtml+xml",
    "xml",
];

/// `application/*` types pekko registers as UTF-8 text.
const APPLICATION_FIXED: &[&str] = &[
    "json",
    "json-patch+json",
    "merge-patch+json",
    "problem+json",
    "vnd.api+json",
];

impl MediaType {
    /// Parses a `Content-Type` value; `None` when it is not `type/subtype[; params]`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        s.trim()
            .parse::<mime::Mime>()
            .ok()
            .map(|mime| Self { mime })
    }

    /// `application/octet-stream`, what pekko assumes for a body without a type.
    pub(crate) fn octet_stream() -> Self {
        Self {
            mime: mime::APPLICATION_OCTET_STREAM,
        }
    }

    /// `type/subtype`, lowercase.
    pub(crate) fn essence(&self) -> String {
        self.mime.essence_str().to_ascii_lowercase()
    }

    fn has_charset(&self) -> bool {
        self.mime.get_param(mime::CHARSET).is_some()
    }

    /// Binary, or text in an open or a fixed charset.
    pub(crate) fn charset(&self) -> Charset {
        let main = self.mime.type_().as_str().to_ascii_lowercase();
        let sub = self.mime.subtype().as_str().to_ascii_lowercase();
        let sub = match self.mime.suffix() {
            Some(suffix) => format!("{sub}+{}", suffix.as_str().to_ascii_lowercase()),
            None => sub,
        };
        match main.as_str() {
            "text" | "multipart" => Charset::Open,
            "application" if APPLICATION_FIXED.contains(&sub.as_str()) => Charset::Fixed,
            "application" if APPLICATION_OPEN.contains(&sub.as_str()) => Charset::Open,
            _ if self.has_charset() => Charset::Open,
            _ => Charset::Binary,
        }
    }

    /// Whether it is `application/json` or a `+json` type (`WhiskWebActionsApi.isJsonFamily`).
    pub(crate) fn is_json_family(&self) -> bool {
        let essence = self.essence();
        essence == "application/json" || essence.ends_with("+json")
    }

    /// The `Content-Type` of a response of this type: binary types as written, text types in
    /// an open charset with their charset (UTF-8 unless given), text types in a fixed charset
    /// without one.
    pub(crate) fn render(&self) -> String {
        match self.charset() {
            Charset::Binary => self.mime.to_string(),
            Charset::Fixed => self.essence(),
            Charset::Open if self.has_charset() => self.mime.to_string(),
            Charset::Open => format!("{}; charset=UTF-8", self.mime),
        }
    }
}

/// Whether a request's `Accept` header admits a response of `content_type` (pekko's content
/// negotiation: a media range `*/*`, `type/*` or `type/subtype` with a `q` above 0). No header,
/// or one that does not parse, admits everything.
pub(crate) fn accepts(headers: &HeaderMap, content_type: &str) -> bool {
    let values: Vec<&str> = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return true;
    }
    let Some(offered) = MediaType::parse(content_type) else {
        return true;
    };
    let offered = offered.essence();
    let (main, sub) = offered.split_once('/').unwrap_or((offered.as_str(), ""));
    let mut any_range = false;
    for range in values.iter().flat_map(|v| v.split(',')) {
        let mut parts = range.split(';');
        let Some(kind) = parts.next().map(|k| k.trim().to_ascii_lowercase()) else {
            continue;
        };
        if kind.is_empty() {
            continue;
        }
        let Some((rmain, rsub)) = kind.split_once('/') else {
            // Not a media range: the header does not parse, so it does not restrict.
            return true;
        };
        any_range = true;
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(1.0));
        if q <= 0.0 {
            continue;
        }
        let matches =
            (rmain == "*" && rsub == "*") || (rmain == main && (rsub == "*" || rsub == sub));
        if matches {
            return true;
        }
    }
    !any_range
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn mt(s: &str) -> MediaType {
        MediaType::parse(s).unwrap()
    }

    #[test]
    fn binary_or_text() {
        assert_eq!(mt("text/html").charset(), Charset::Open);
        assert_eq!(mt("text/x-anything").charset(), Charset::Open);
        assert_eq!(mt("application/json").charset(), Charset::Fixed);
        assert_eq!(mt("application/json-patch+json").charset(), Charset::Fixed);
        assert_eq!(mt("application/hal+json").charset(), Charset::Binary);
        assert_eq!(
            mt("application/hal+json; charset=utf-8").charset(),
            Charset::Open
        );
        assert_eq!(mt("application/xml").charset(), Charset::Open);
        assert_eq!(mt("image/png").charset(), Charset::Binary);
        assert_eq!(mt("image/svg+xml").charset(), Charset::Binary);
        assert_eq!(mt("application/octet-stream").charset(), Charset::Binary);
        assert!(MediaType::parse("xyzbar").is_none());
    }

    #[test]
    fn json_family() {
        assert!(mt("application/json").is_json_family());
        assert!(mt("application/cloudevents+json; charset=utf-8").is_json_family());
        assert!(mt("application/hal+json").is_json_family());
        assert!(!mt("text/json5").is_json_family());
    }

    #[test]
    fn rendering() {
        assert_eq!(mt("text/html").render(), "text/html; charset=UTF-8");
        assert_eq!(
            mt("text/plain; charset=iso-8859-1").render(),
            "text/plain; charset=iso-8859-1"
        );
        assert_eq!(mt("application/json").render(), "application/json");
        assert_eq!(mt("image/png").render(), "image/png");
    }

    #[test]
    fn negotiation() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
            h
        };
        let html = "text/html; charset=UTF-8";
        assert!(accepts(&HeaderMap::new(), html));
        assert!(accepts(&with("*/*"), html));
        assert!(accepts(&with("text/*"), html));
        assert!(accepts(&with("application/json, text/html;q=0.5"), html));
        assert!(!accepts(&with("application/json"), html));
        assert!(!accepts(&with("text/html;q=0"), html));
        assert!(!accepts(&with("text/xml"), html));
        assert!(accepts(&with("garbage"), html));
    }
}
