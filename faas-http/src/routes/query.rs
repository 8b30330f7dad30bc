//! Query strings, parsed by hand so that every malformed value gets OpenWhisk's 400 message
//! (axum's `Query` rejection would answer in its own words).

use std::borrow::Cow;

use crate::error::{ApiError, messages};

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Default)]
pub(crate) struct QueryParams<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; invalid
/// escapes are kept as they are and invalid UTF-8 is replaced.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

impl<'a> QueryParams<'a> {
    /// Parses `query` (without the `?`).
    pub(crate) fn parse(query: Option<&'a str>) -> Self {
        let Some(q) = query else {
            return Self::default();
        };
        let pairs = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Self { pairs }
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// A boolean parameter, pekko's way: `true/yes/on/1`, `false/no/off/0` (any case).
    pub(crate) fn boolean(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(ApiError::malformed_query(name, &messages::bad_boolean(v))),
        }
    }

    /// `limit` of a list of `collection`: 0 means the maximum, default `default`.
    pub(crate) fn limit(&self, collection: &str, default: u32, max: u32) -> Result<u64, ApiError> {
        let Some(v) = self.get("limit") else {
            return Ok(u64::from(default));
        };
        match v.trim().parse::<i64>() {
            Ok(0) => Ok(u64::from(max)),
            Ok(n) if n > 0 && n <= i64::from(max) => Ok(n as u64),
            Ok(n) => Err(ApiError::malformed_query(
                "limit",
                &messages::list_limit_out_of_range(collection, n, max),
            )),
            Err(_) => Err(ApiError::malformed_query(
                "limit",
                &messages::argument_not_integer(collection, v),
            )),
        }
    }

    /// `skip` of a list of `collection`: an integer ≥ 0, default 0.
    pub(crate) fn skip(&self, collection: &str) -> Result<u64, ApiError> {
        let Some(v) = self.get("skip") else {
            return Ok(0);
        };
        match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n as u64),
            Ok(n) => Err(ApiError::malformed_query(
                "skip",
                &messages::list_skip_out_of_range(collection, n),
            )),
            Err(_) => Err(ApiError::malformed_query(
                "skip",
                &messages::argument_not_integer(collection, v),
            )),
        }
    }

    /// `timeout` of an invoke: milliseconds in `1..=max_ms`, default `max_ms`.
    pub(crate) fn timeout_ms(&self, max_ms: u64) -> Result<u64, ApiError> {
        let Some(v) = self.get("timeout") else {
            return Ok(max_ms);
        };
        match v.trim().parse::<i64>() {
            Ok(n) if n > 0 && (n as u64) <= max_ms => Ok(n as u64),
            _ => Err(ApiError::malformed_query(
                "timeout",
                &messages::invalid_timeout(max_ms),
            )),
        }
    }

    /// An epoch-milliseconds parameter (`since`, `upto`); negative values count as 0.
    pub(crate) fn epoch_ms(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match v.trim().parse::<i64>() {
            Ok(n) => Ok(Some(n.max(0) as u64)),
            Err(_) => Err(ApiError::malformed_query(name, &messages::bad_epoch(v))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        let q = QueryParams::parse(Some("a=1&b=x+y&c=%41%zz&d&e=%"));
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get("b"), Some("x y"));
        assert_eq!(q.get("c"), Some("A%zz"));
        assert_eq!(q.get("d"), Some(""));
        assert_eq!(q.get("e"), Some("%"));
        assert_eq!(q.get("z"), None);
    }

    #[test]
    fn list_params() {
        let q = QueryParams::parse(Some("limit=0&skip=3"));
        assert_eq!(q.limit("actions", 30, 200).unwrap(), 200);
        assert_eq!(q.skip("actions").unwrap(), 3);
        let q = QueryParams::parse(Some("limit=201&skip=-1"));
        assert_eq!(
            q.limit("actions", 30, 200).unwrap_err().message(),
            "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for actions."
        );
        assert_eq!(
            q.skip("actions").unwrap_err().message(),
            "The query parameter 'skip' was malformed:\nThe value '-1' is not greater than or equal to 0 for actions."
        );
        let q = QueryParams::parse(Some("limit=abc"));
        assert!(
            q.limit("activations", 30, 200)
                .unwrap_err()
                .message()
                .ends_with("The value 'abc' is not an integer for activations.")
        );
        assert_eq!(QueryParams::parse(None).limit("a", 30, 200).unwrap(), 30);
    }

    #[test]
    fn booleans_and_timeouts() {
        let q = QueryParams::parse(Some("blocking=TRUE&result=no&x=maybe&timeout=60001"));
        assert!(q.boolean("blocking", false).unwrap());
        assert!(!q.boolean("result", true).unwrap());
        assert!(q.boolean("missing", true).unwrap());
        assert!(q.boolean("x", false).is_err());
        assert!(
            q.timeout_ms(60_000)
                .unwrap_err()
                .message()
                .ends_with("Timeout must be number of milliseconds up to 60000.")
        );
        let q = QueryParams::parse(Some("timeout=100&since=12&upto=x"));
        assert_eq!(q.timeout_ms(60_000).unwrap(), 100);
        assert_eq!(q.epoch_ms("since").unwrap(), Some(12));
        assert!(q.epoch_ms("upto").is_err());
        assert!(
            QueryParams::parse(Some("timeout=0"))
                .timeout_ms(60_000)
                .is_err()
        );
    }
}
