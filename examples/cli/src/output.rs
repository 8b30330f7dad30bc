//! Printing as `wsk` prints: `ok: ...` lines, JSON indented by four spaces, list tables; or,
//! with `--json`, only the JSON the server answered.

use std::io::{IsTerminal, Write};

use serde::Serialize;
use serde_json::Value;

/// `println!` that ignores a closed stdout (`faas ... | head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
pub(crate) use outln;

/// `print!` that ignores a closed stdout.
macro_rules! outp {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
pub(crate) use outp;

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    /// `--json`: print only JSON documents on stdout.
    pub(crate) json: bool,
    color: bool,
}

impl Out {
    /// Output for this run; colour only on a terminal and without `NO_COLOR`.
    pub(crate) fn new(json: bool) -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Self { json, color }
    }

    /// `ok: <msg>` (green `ok:` on a terminal), unless `--json`.
    pub(crate) fn ok(&self, msg: impl AsRef<str>) {
        if !self.json {
            outln!("{} {}", self.green("ok:"), msg.as_ref());
        }
    }

    /// A plain line, unless `--json`.
    pub(crate) fn line(&self, msg: impl AsRef<str>) {
        if !self.json {
            outln!("{}", msg.as_ref());
        }
    }

    /// A header line (bold on a terminal), unless `--json`.
    pub(crate) fn header(&self, msg: impl AsRef<str>) {
        if !self.json {
            outln!("{}", self.bold(msg.as_ref()));
        }
    }

    /// `text` in bold on a terminal.
    pub(crate) fn bold(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn green(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[32m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A JSON document on stdout (always, `--json` or not).
    pub(crate) fn json_doc(&self, v: &impl Serialize) {
        outp!("{}", pretty(v));
    }

    /// An entity as `wsk` prints it: its fields in `wsk`'s order.
    pub(crate) fn entity(&self, v: &Value, shape: Shape) {
        self.json_doc(&Ordered::new(v, shape));
    }
}

/// The entities `wsk` decodes into its own structs before printing them, so that their fields
/// come out in the structs' order (`openwhisk-client-go/whisk/*.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// An action (`whisk.Action`).
    Action,
    /// An activation (`whisk.Activation`).
    Activation,
    /// A package (`whisk.Package`).
    Package,
    /// A trigger (`whisk.Trigger`).
    Trigger,
    /// A rule (`whisk.Rule`).
    Rule,
}

/// The top-level fields of an action, in `wsk`'s order (`whisk.Action`); `get` filters on them.
pub(crate) const ACTION_FIELDS: &[&str] = &[
    "namespace",
    "name",
    "version",
    "exec",
    "annotations",
    "delAnnotations",
    "parameters",
    "limits",
    "error",
    "code",
    "publish",
    "updated",
    "env",
];

/// The top-level fields of an activation, in `wsk`'s order (`whisk.Activation`); `get` filters
/// on them.
pub(crate) const ACTIVATION_FIELDS: &[&str] = &[
    "namespace",
    "name",
    "version",
    "subject",
    "activationId",
    "cause",
    "start",
    "end",
    "duration",
    "statusCode",
    "response",
    "logs",
    "annotations",
    "publish",
];

impl Shape {
    /// The field order of the entity, and of the nested objects that have one.
    fn order(self, path: &str) -> &'static [&'static str] {
        match (self, path) {
            (Self::Action, "") => ACTION_FIELDS,
            (Self::Action, "exec") => &[
                "kind",
                "code",
                "image",
                "init",
                "main",
                "components",
                "binary",
            ],
            (Self::Action | Self::Trigger, "limits") => {
                &["timeout", "memory", "logs", "concurrency"]
            }
            (Self::Activation, "") => ACTIVATION_FIELDS,
            (Self::Activation, "response") => &["status", "statusCode", "success", "result"],
            (Self::Package, "") => &[
                "namespace",
                "name",
                "version",
                "publish",
                "annotations",
                "parameters",
                "binding",
                "actions",
                "feeds",
                "updated",
            ],
            (Self::Trigger, "") => &[
                "namespace",
                "name",
                "version",
                "activationId",
                "annotations",
                "parameters",
                "limits",
                "publish",
                "rules",
                "updated",
            ],
            (Self::Rule, "") => &[
                "namespace",
                "name",
                "version",
                "annotations",
                "status",
                "trigger",
                "action",
                "publish",
                "updated",
            ],
            _ => &[],
        }
    }
}

/// `value` serialized with the fields of `shape` in `wsk`'s order (other fields after them,
/// sorted); `key`/`value` pairs print key first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ordered<'a> {
    value: &'a Value,
    shape: Option<Shape>,
    path: &'a str,
}

impl<'a> Ordered<'a> {
    /// `value` as an entity of `shape`.
    pub(crate) fn new(value: &'a Value, shape: Shape) -> Self {
        Self {
            value,
            shape: Some(shape),
            path: "",
        }
    }
}

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.value {
            Value::Object(o) => {
                let order: &[&str] = match self.shape {
                    Some(shape) => shape.order(self.path),
                    None if o.contains_key("key") => &["key", "value"],
                    None => &[],
                };
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort_by_key(|k| (order.iter().position(|o| o == k).unwrap_or(usize::MAX), *k));
                let mut m = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    // Only the top level and its named children have an order of their own.
                    let (shape, path) = match self.shape {
                        Some(sh) if self.path.is_empty() && !sh.order(k).is_empty() => {
                            (Some(sh), k.as_str())
                        }
                        _ => (None, ""),
                    };
                    m.serialize_entry(
                        k,
                        &Ordered {
                            value: &o[k.as_str()],
                            shape,
                            path,
                        },
                    )?;
                }
                m.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Ordered {
                        value: v,
                        shape: None,
                        path: "",
                    })?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// JSON indented by four spaces with a final newline, as `wsk`'s `printJSON`.
pub(crate) fn pretty(v: &impl Serialize) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        return "null\n".to_string();
    }
    buf.push(b'\n');
    String::from_utf8(buf).unwrap_or_default()
}

/// Prints `v` as pretty JSON on stderr (application errors of blocking invokes).
pub(crate) fn json_to_stderr(v: &impl Serialize) {
    let _ = std::io::stderr().write_all(pretty(v).as_bytes());
}

/// `s` shortened to `max` characters with `...` in the middle (`whisk.TruncateStr`).
pub(crate) fn truncate_middle(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let mut mid = max / 2;
    let upp = chars.len() - mid + 3;
    if !max.is_multiple_of(2) {
        mid += 1;
    }
    let head: String = chars[..mid].iter().collect();
    let tail: String = chars[upp.min(chars.len())..].iter().collect();
    format!("{head}...{tail}")
}

/// A duration in milliseconds the way Go prints a `time.Duration` (`34ms`, `1.5s`,
/// `2m3.004s`, `0s`), which is how `wsk` prints activation durations.
pub(crate) fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let s = (ms / 1000) % 60;
    let frac = ms % 1000;
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:03}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{sign}{m}m{secs}")
    } else {
        format!("{sign}{secs}")
    }
}

/// A log line without its timestamp and stream (`wsk activation logs --strip`): the part after
/// `YYYY-MM-DDTHH:MM:SS.fffZ [stdout:|stderr:] `, or the line itself when it has no such
/// prefix (`stripTimestamp`).
pub(crate) fn strip_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    for start in 0..b.len() {
        if let Some(end) = timestamp_end(&b[start..]) {
            let mut i = start + end;
            // Optional ` *(stdout|stderr):`
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            for stream in [&b"stdout:"[..], &b"stderr:"[..]] {
                if b[j..].starts_with(stream) {
                    i = j + stream.len();
                    break;
                }
            }
            // One whitespace character, then the rest.
            if i < b.len() && (b[i] as char).is_ascii_whitespace() {
                let rest = &line[i + 1..];
                if !rest.is_empty() {
                    return rest;
                }
            }
            return line;
        }
    }
    line
}

/// The length of an ISO timestamp `\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-6]\d:[0-6]\d.\d+Z` at the
/// start of `b`.
fn timestamp_end(b: &[u8]) -> Option<usize> {
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let is = |i: usize, c: u8| b.get(i) == Some(&c);
    let within = |i: usize, lo: u8, hi: u8| b.get(i).is_some_and(|c| (lo..=hi).contains(c));
    let ok = d(0)
        && d(1)
        && d(2)
        && d(3)
        && is(4, b'-')
        && within(5, b'0', b'1')
        && d(6)
        && is(7, b'-')
        && within(8, b'0', b'3')
        && d(9)
        && is(10, b'T')
        && within(11, b'0', b'2')
        && d(12)
        && is(13, b':')
        && within(14, b'0', b'6')
        && d(15)
        && is(16, b':')
        && within(17, b'0', b'6')
        && d(18)
        && b.len() > 19;
    if !ok {
        return None;
    }
    let mut i = 20;
    while d(i) {
        i += 1;
    }
    (i > 20 && is(i, b'Z')).then_some(i + 1)
}

/// `epoch_ms` as local `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn local_datetime(epoch_ms: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(epoch_ms) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%Y-%m-%d %H:%M:%S").to_string()
        }
        chrono::LocalResult::None => "0000-00-00 00:00:00".to_string(),
    }
}

/// `epoch_s` as Go prints a local `time.Time` (`2006-01-02 15:04:05 -0700`).
pub(crate) fn local_time(epoch_s: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(epoch_s, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%Y-%m-%d %H:%M:%S %z").to_string()
        }
        chrono::LocalResult::None => epoch_s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_like_wsk() {
        assert_eq!(
            pretty(&json!({"a": [1]})),
            "{\n    \"a\": [\n        1\n    ]\n}\n"
        );
        assert_eq!(pretty(&json!([])), "[]\n");
        assert_eq!(pretty(&json!({"h": "<&>"})), "{\n    \"h\": \"<&>\"\n}\n");
    }

    #[test]
    fn entities_in_wsk_order() {
        let a = json!({
            "response": {"success": true, "result": {"b": 1, "a": 2}, "status": "success"},
            "name": "hello", "activationId": "x", "namespace": "guest", "zzz": 1,
            "annotations": [{"value": 1, "key": "k"}]
        });
        let text = pretty(&Ordered::new(&a, Shape::Activation));
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "namespace",
                "name",
                "activationId",
                "response",
                "status",
                "success",
                "result",
                "a",
                "b",
                "annotations",
                "key",
                "value",
                "zzz"
            ]
        );
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(34), "34ms");
        assert_eq!(go_duration(1000), "1s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(go_duration(1234), "1.234s");
        assert_eq!(go_duration(62_500), "1m2.5s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
    }

    #[test]
    fn truncation_like_wsk() {
        assert_eq!(truncate_middle("short", 20), "short");
        let t = truncate_middle("abcdefghijklmnopqrstuvwxyz", 10);
        assert_eq!(t.chars().count(), 10);
        assert_eq!(t, "abcde...yz");
        assert_eq!(
            truncate_middle("abcdefghijklmnopqrstuvwxyz", 11),
            "abcdef...yz"
        );
    }

    #[test]
    fn strip() {
        assert_eq!(
            strip_timestamp("2023-05-03T15:18:32.773012345Z stdout: hello there"),
            "hello there"
        );
        assert_eq!(
            strip_timestamp("2023-05-03T15:18:32.7Z stderr: oops"),
            "oops"
        );
        assert_eq!(strip_timestamp("2023-05-03T15:18:32.7Z plain"), "plain");
        assert_eq!(strip_timestamp("no timestamp"), "no timestamp");
        assert_eq!(
            strip_timestamp("2023-05-03T15:18:32Z x"),
            "2023-05-03T15:18:32Z x"
        );
    }
}
