//! The platform side of OpenWhisk's action-proxy protocol (its
//! [action interface](https://github.com/apache/openwhisk/blob/master/docs/actions-new.md#action-interface)):
//! the `/init` and
//! `/run` request bodies, and the interpretation of the proxy's replies into an
//! [`ActivationResponse`].
//!
//! Everything here is pure: no I/O, no clocks (callers pass the elapsed time). The bodies are
//! serialized straight from borrowed data, so building them copies the action's code and the
//! arguments once, into the body, and nowhere else.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use faas_core::entity::Exec;
use faas_core::params::SemVer;
use faas_core::{ActivationResponse, ProxyError, ProxyResponse};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// `The action did not initialize and exited unexpectedly.`
pub const ABNORMAL_INITIALIZATION: &str = "The action did not initialize and exited unexpectedly.";
/// `The action did not produce a valid response and exited unexpectedly.`
pub const ABNORMAL_RUN: &str =
    "The action did not produce a valid response and exited unexpectedly.";
/// `The action exhausted its memory and was aborted.`
pub const MEMORY_EXHAUSTED: &str = "The action exhausted its memory and was aborted.";

/// `The action exceeded its time limits of N milliseconds.` (or `... during initialization.`).
pub fn timed_out_message(timeout: Duration, init: bool) -> String {
    format!(
        "The action exceeded its time limits of {} milliseconds{}",
        timeout.as_millis(),
        if init { " during initialization." } else { "." }
    )
}

/// `The action failed during initialization: <body>` (a period instead when the body is empty).
pub fn invalid_init_response(body: &str) -> String {
    if body.is_empty() {
        "The action failed during initialization.".to_string()
    } else {
        format!("The action failed during initialization: {body}")
    }
}

/// `The action did not produce a valid JSON or JSON Array response: <body>` (a period instead
/// when the body is empty).
pub fn invalid_run_response(body: &str) -> String {
    if body.is_empty() {
        "The action did not produce a valid JSON or JSON Array response.".to_string()
    } else {
        format!("The action did not produce a valid JSON or JSON Array response: {body}")
    }
}

/// `The action produced a response that exceeded the allowed length: X > Y bytes. The truncated
/// response was: <trunk>`.
pub fn truncated_response(trunk: &str, length: u64, max_length: u64) -> String {
    format!(
        "The action produced a response that exceeded the allowed length: {length} > {max_length} bytes. The truncated response was: {trunk}"
    )
}

/// The per-activation facts both bodies carry (all sent as strings).
#[derive(Debug, Clone, Copy)]
pub struct ActivationContext<'a> {
    /// The invoking namespace (`__OW_NAMESPACE`).
    pub namespace: &'a str,
    /// The action's fully qualified name with a leading slash: `/ns/[pkg/]name`.
    pub action_name: &'a str,
    /// The action's version.
    pub action_version: &'a SemVer,
    /// The activation id.
    pub activation_id: &'a str,
    /// The transaction id.
    pub transaction_id: &'a str,
    /// Epoch ms by which the run must end.
    pub deadline_ms: u64,
    /// `uuid:key`, only when the action may see the key (see [`provides_api_key`]).
    pub api_key: Option<&'a str>,
}

/// Whether an action's code receives the invoker's API key: its `provide-api-key` annotation is
/// truthy, or absent (OpenWhisk's rule for actions created before the annotation existed; new
/// actions get `provide-api-key: false`).
pub fn provides_api_key(annotations: &faas_core::params::Annotations) -> bool {
    annotations.get("provide-api-key").is_none() || annotations.is_truthy("provide-api-key")
}

/// Serializes a `Display` value as a JSON string without an intermediate `String`.
struct AsString<T>(T);

impl<T: fmt::Display> Serialize for AsString<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// An init parameter's value in the `env` map: strings as they are, `null` as `""`, anything
/// else as compact JSON text.
struct EnvValue<'a>(&'a Value);

impl Serialize for EnvValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::String(v) => s.serialize_str(v),
            Value::Null => s.serialize_str(""),
            // `Value`'s Display is compact JSON.
            other => s.collect_str(other),
        }
    }
}

struct InitEnv<'a> {
    ctx: &'a ActivationContext<'a>,
    params: &'a [(&'a str, &'a Value)],
}

impl Serialize for InitEnv<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.ctx;
        let mut m = s.serialize_map(None)?;
        if let Some(key) = c.api_key {
            m.serialize_entry("__OW_API_KEY", key)?;
        }
        m.serialize_entry("__OW_NAMESPACE", c.namespace)?;
        m.serialize_entry("__OW_ACTION_NAME", c.action_name)?;
        m.serialize_entry("__OW_ACTION_VERSION", c.action_version)?;
        m.serialize_entry("__OW_ACTIVATION_ID", c.activation_id)?;
        m.serialize_entry("__OW_TRANSACTION_ID", c.transaction_id)?;
        m.serialize_entry("__OW_DEADLINE", &AsString(c.deadline_ms))?;
        for (k, v) in self.params {
            m.serialize_entry(k, &EnvValue(v))?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct InitValue<'a> {
    name: &'a str,
    main: &'a str,
    binary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    env: InitEnv<'a>,
}

#[derive(Serialize)]
struct InitBody<'a> {
    value: InitValue<'a>,
}

/// The `/init` body: `{"value": {"name", "main", "binary", "code", "env": {...}}}`.
///
/// `name` is the action's simple name; `env` holds the `__OW_*` context variables and the init
/// parameters (`init_params`, stringified). `code` is left out for a blackbox without code.
pub fn init_body(
    name: &str,
    exec: &Exec,
    ctx: &ActivationContext<'_>,
    init_params: &[(&str, &Value)],
) -> Bytes {
    let body = InitBody {
        value: InitValue {
            name,
            main: exec.main(),
            binary: exec.binary(),
            code: exec.code(),
            env: InitEnv {
                ctx,
                params: init_params,
            },
        },
    };
    // Serializing borrowed strings and `Value`s into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// The arguments of a run: the message content without the init parameters.
struct RunArgs<'a> {
    content: Option<&'a Value>,
    skip: &'a [String],
}

impl Serialize for RunArgs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.content {
            None => s.serialize_map(Some(0))?.end(),
            Some(Value::Object(o)) if !self.skip.is_empty() => {
                let mut m = s.serialize_map(None)?;
                for (k, v) in o {
                    if !self.skip.iter().any(|x| x == k) {
                        m.serialize_entry(k, v)?;
                    }
                }
                m.end()
            }
            Some(v) => v.serialize(s),
        }
    }
}

#[derive(Serialize)]
struct RunBody<'a> {
    value: RunArgs<'a>,
    namespace: &'a str,
    action_name: &'a str,
    action_version: &'a SemVer,
    activation_id: &'a str,
    transaction_id: &'a str,
    deadline: AsString<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a str>,
}

/// The `/run` body: `{"value": args, "namespace", "action_name", "action_version",
/// "activation_id", "transaction_id", "deadline", "api_key"?}`.
///
/// `args` is the message content (`{}` when absent) without the keys in `init_keys`, which went
/// to `/init` as environment variables.
pub fn run_body(
    content: Option<&Value>,
    init_keys: &[String],
    ctx: &ActivationContext<'_>,
) -> Bytes {
    let body = RunBody {
        value: RunArgs {
            content,
            skip: init_keys,
        },
        namespace: ctx.namespace,
        action_name: ctx.action_name,
        action_version: ctx.action_version,
        activation_id: ctx.activation_id,
        transaction_id: ctx.transaction_id,
        deadline: AsString(ctx.deadline_ms),
        api_key: ctx.api_key,
    };
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// The init parameters to put into the `/init` env: the keys of `init_keys` present in the
/// object `content`, with their values.
pub fn init_params<'a>(
    content: Option<&'a Value>,
    init_keys: &'a [String],
) -> Vec<(&'a str, &'a Value)> {
    match content {
        Some(Value::Object(o)) if !init_keys.is_empty() => init_keys
            .iter()
            .filter_map(|k| o.get(k).map(|v| (k.as_str(), v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A failed `/init`: the activation's response and whether it hit the time limit.
#[derive(Debug, Clone, PartialEq)]
pub struct InitFailure {
    /// A developer error.
    pub response: ActivationResponse,
    /// `true` when the init ran into the time limit (the `timeout` annotation).
    pub timed_out: bool,
}

/// The outcome of a `/run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The activation's response.
    pub response: ActivationResponse,
    /// `true` when the run ran into the time limit (the `timeout` annotation).
    pub timed_out: bool,
}

/// The longest prefix of `bytes` (at most `max` bytes) that is valid UTF-8, as text.
fn utf8_prefix(bytes: &[u8], max: usize) -> &str {
    let cut = &bytes[..bytes.len().min(max)];
    match std::str::from_utf8(cut) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&cut[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// Whether the reply's body is longer than allowed: `Some((full length, allowed))`.
fn over_length(r: &ProxyResponse, max_bytes: u64) -> Option<(u64, u64)> {
    let len = r
        .truncated
        .unwrap_or(r.body.len() as u64)
        .max(r.body.len() as u64);
    (r.truncated.is_some() || len > max_bytes).then_some((len, max_bytes))
}

/// Interprets the reply to `/init` (`ContainerProxy`/`ActivationResult.processInitResponseContent`).
///
/// * `200` (not truncated) → `Ok(())`; the body is ignored.
/// * no reply in time, or `elapsed ≥ timeout` on a failure → `The action exceeded its time
///   limits of N milliseconds during initialization.`
/// * the sandbox died → `The action did not initialize and exited unexpectedly.`, or
///   `The action exhausted its memory and was aborted.` when it was killed for its memory.
/// * other status with a JSON object body → its `error` field when present, else
///   `The action failed during initialization: <body>`; a body that is not an object →
///   `The action failed during initialization: <body>`; an over-long body → the truncation
///   message.
///
/// Every failure is a developer error.
pub fn interpret_init(
    reply: &Result<ProxyResponse, ProxyError>,
    elapsed: Duration,
    timeout: Duration,
    max_bytes: u64,
) -> Result<(), InitFailure> {
    let timed_out = || InitFailure {
        response: ActivationResponse::developer_error(timed_out_message(timeout, true)),
        timed_out: true,
    };
    let fail = |response| InitFailure {
        response,
        timed_out: false,
    };
    match reply {
        Ok(r) if r.status == 200 && r.truncated.is_none() => Ok(()),
        Err(ProxyError::Timeout) => Err(timed_out()),
        _ if elapsed >= timeout => Err(timed_out()),
        Err(ProxyError::Exited { oom: true }) => {
            Err(fail(ActivationResponse::developer_error(MEMORY_EXHAUSTED)))
        }
        Err(_) => Err(fail(ActivationResponse::developer_error(
            ABNORMAL_INITIALIZATION,
        ))),
        Ok(r) => {
            if let Some((len, max)) = over_length(r, max_bytes) {
                let trunk = utf8_prefix(&r.body, max as usize);
                return Err(fail(ActivationResponse::developer_error(
                    truncated_response(trunk, len, max),
                )));
            }
            let text = String::from_utf8_lossy(&r.body);
            let error = match serde_json::from_slice::<Value>(&r.body) {
                Ok(Value::Object(mut o)) => o
                    .remove("error")
                    .unwrap_or_else(|| Value::String(invalid_init_response(&text))),
                _ => Value::String(invalid_init_response(&text)),
            };
            Err(fail(developer_error_value(error)))
        }
    }
}

/// A developer error whose `error` is any JSON value (the runtime's own).
fn developer_error_value(error: Value) -> ActivationResponse {
    let mut r = ActivationResponse::developer_error(String::new());
    r.result = Some(serde_json::json!({ "error": error }));
    r
}

/// Interprets the reply to `/run` as OpenWhisk's `ActivationResult.processRunResponseContent`
/// does ([`ActivationResult.scala`](https://github.com/apache/openwhisk/blob/master/common/scala/src/main/scala/org/apache/openwhisk/core/entity/ActivationResult.scala)).
///
/// * `elapsed ≥ timeout`, or no reply in time → developer error `The action exceeded its time
///   limits of N milliseconds.` with `timed_out`.
/// * the sandbox died → `The action did not produce a valid response and exited unexpectedly.`
///   (`The action exhausted its memory and was aborted.` when killed for its memory).
/// * a body longer than `max_result_bytes` (or cut by the executor) → application error
///   `The action produced a response that exceeded the allowed length: X > Y bytes. The
///   truncated response was: ...`, with `size` = X.
/// * `200` + object without `error` → success; `200` + object with `error` → application error
///   `{"error": <value>}`; `200` + array → success.
/// * other status + object → developer error with its `error` field, else the invalid-response
///   message; anything else (not JSON, other JSON) → developer error `The action did not produce
///   a valid JSON or JSON Array response: <body>`.
pub fn interpret_run(
    reply: Result<ProxyResponse, ProxyError>,
    elapsed: Duration,
    timeout: Duration,
    max_result_bytes: u64,
) -> RunOutcome {
    let outcome = |response| RunOutcome {
        response,
        timed_out: false,
    };
    let r = match reply {
        Err(ProxyError::Timeout) => {
            return RunOutcome {
                response: ActivationResponse::developer_error(timed_out_message(timeout, false)),
                timed_out: true,
            };
        }
        _ if elapsed >= timeout => {
            return RunOutcome {
                response: ActivationResponse::developer_error(timed_out_message(timeout, false)),
                timed_out: true,
            };
        }
        Err(ProxyError::Exited { oom: true }) => {
            return outcome(ActivationResponse::developer_error(MEMORY_EXHAUSTED));
        }
        Err(_) => return outcome(ActivationResponse::developer_error(ABNORMAL_RUN)),
        Ok(r) => r,
    };
    if let Some((len, max)) = over_length(&r, max_result_bytes) {
        let trunk = utf8_prefix(&r.body, max as usize);
        let mut resp = ActivationResponse::application_error(Value::String(truncated_response(
            trunk, len, max,
        )));
        resp.size = Some(len);
        return outcome(resp);
    }
    let ok = r.status == 200;
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(Value::Object(mut o)) => {
            if ok {
                match o.remove("error") {
                    Some(e) => outcome(ActivationResponse::application_error(e)),
                    None => outcome(ActivationResponse::success(Value::Object(o))),
                }
            } else {
                let e = o.remove("error").unwrap_or_else(|| {
                    Value::String(invalid_run_response(&String::from_utf8_lossy(&r.body)))
                });
                outcome(developer_error_value(e))
            }
        }
        Ok(arr @ Value::Array(_)) if ok => outcome(ActivationResponse::success(arr)),
        _ => outcome(ActivationResponse::developer_error(invalid_run_response(
            &String::from_utf8_lossy(&r.body),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::StatusCode;
    use faas_core::params::Parameters;
    use serde_json::json;

    const T: Duration = Duration::from_millis(60_000);
    const FAST: Duration = Duration::from_millis(5);
    const MAX: u64 = 1024 * 1024;

    fn reply(status: u16, body: &str) -> Result<ProxyResponse, ProxyError> {
        Ok(ProxyResponse {
            status,
            body: Bytes::copy_from_slice(body.as_bytes()),
            truncated: None,
        })
    }

    fn run(status: u16, body: &str) -> RunOutcome {
        interpret_run(reply(status, body), FAST, T, MAX)
    }

    fn error_of(r: &ActivationResponse) -> &Value {
        &r.result.as_ref().unwrap()["error"]
    }

    fn ctx<'a>(v: &'a SemVer, api_key: Option<&'a str>) -> ActivationContext<'a> {
        ActivationContext {
            namespace: "guest",
            action_name: "/guest/pkg/hello",
            action_version: v,
            activation_id: "0123456789abcdef0123456789abcdef",
            transaction_id: "tid",
            deadline_ms: 1_700_000_060_000,
            api_key,
        }
    }

    #[test]
    fn init_body_shape() {
        let v = SemVer::default();
        let exec = Exec::Code {
            kind: "nodejs:20".into(),
            code: "function main(a){return a}".into(),
            binary: false,
            main: None,
        };
        let content = json!({"p": "s", "n": null, "o": {"a": [1, 2]}, "b": true, "x": 5, "run": 1});
        let keys: Vec<String> = ["p", "n", "o", "b", "x", "absent"]
            .map(String::from)
            .to_vec();
        let params = init_params(Some(&content), &keys);
        let body = init_body("hello", &exec, &ctx(&v, Some("u:k")), &params);
        let js: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            js,
            json!({"value": {
                "name": "hello", "main": "main", "binary": false,
                "code": "function main(a){return a}",
                "env": {
                    "__OW_API_KEY": "u:k",
                    "__OW_NAMESPACE": "guest",
                    "__OW_ACTION_NAME": "/guest/pkg/hello",
                    "__OW_ACTION_VERSION": "0.0.1",
                    "__OW_ACTIVATION_ID": "0123456789abcdef0123456789abcdef",
                    "__OW_TRANSACTION_ID": "tid",
                    "__OW_DEADLINE": "1700000060000",
                    "p": "s", "n": "", "o": "{\"a\":[1,2]}", "b": "true", "x": "5"
                }
            }})
        );
        // Without the key, and a blackbox without code: no __OW_API_KEY, no code.
        let bb = Exec::Blackbox {
            image: "img".into(),
            code: None,
            binary: false,
            main: Some("go".into()),
        };
        let body = init_body("hello", &bb, &ctx(&v, None), &[]);
        let js: Value = serde_json::from_slice(&body).unwrap();
        assert!(js["value"].get("code").is_none());
        assert_eq!(js["value"]["main"], json!("go"));
        assert!(js["value"]["env"].get("__OW_API_KEY").is_none());
    }

    #[test]
    fn run_body_shape() {
        let v = SemVer::default();
        let content = json!({"a": 1, "secret": "s"});
        let keys = vec!["secret".to_string()];
        let body = run_body(Some(&content), &keys, &ctx(&v, Some("u:k")));
        let js: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            js,
            json!({"value": {"a": 1}, "namespace": "guest", "action_name": "/guest/pkg/hello",
                   "action_version": "0.0.1", "activation_id": "0123456789abcdef0123456789abcdef",
                   "transaction_id": "tid", "deadline": "1700000060000", "api_key": "u:k"})
        );
        let js: Value = serde_json::from_slice(&run_body(None, &[], &ctx(&v, None))).unwrap();
        assert_eq!(js["value"], json!({}));
        assert!(js.get("api_key").is_none());
        let arr = json!([1, 2]);
        let js: Value =
            serde_json::from_slice(&run_body(Some(&arr), &keys, &ctx(&v, None))).unwrap();
        assert_eq!(js["value"], arr);
    }

    #[test]
    fn api_key_annotation() {
        assert!(provides_api_key(&Parameters::new()));
        assert!(provides_api_key(
            &Parameters::new().with("provide-api-key", json!(true))
        ));
        assert!(!provides_api_key(
            &Parameters::new().with("provide-api-key", json!(false))
        ));
    }

    #[test]
    fn run_success_object_and_array() {
        let o = run(200, r#"{"a":1}"#);
        assert_eq!(o.response, ActivationResponse::success(json!({"a": 1})));
        assert!(!o.timed_out);
        let o = run(200, "[1,2]");
        assert_eq!(o.response, ActivationResponse::success(json!([1, 2])));
    }

    #[test]
    fn run_application_error() {
        let o = run(200, r#"{"error":{"code":7}}"#);
        assert_eq!(o.response.status_code, StatusCode::ApplicationError);
        assert_eq!(o.response.result, Some(json!({"error": {"code": 7}})));
    }

    #[test]
    fn run_developer_errors() {
        // non-200 + object with error: the error value is kept
        let o = run(502, r#"{"error":"boom"}"#);
        assert_eq!(o.response, ActivationResponse::developer_error("boom"));
        // non-200 + object without error
        let o = run(500, r#"{"x":1}"#);
        assert_eq!(
            error_of(&o.response),
            &json!(r#"The action did not produce a valid JSON or JSON Array response: {"x":1}"#)
        );
        assert_eq!(o.response.status_code, StatusCode::DeveloperError);
        // not JSON
        let o = run(200, "hello");
        assert_eq!(
            o.response,
            ActivationResponse::developer_error(
                "The action did not produce a valid JSON or JSON Array response: hello"
            )
        );
        // other JSON
        let o = run(200, "5");
        assert_eq!(o.response.status_code, StatusCode::DeveloperError);
        // non-200 array
        let o = run(502, "[1]");
        assert_eq!(o.response.status_code, StatusCode::DeveloperError);
        // empty body
        let o = run(200, "");
        assert_eq!(
            o.response,
            ActivationResponse::developer_error(
                "The action did not produce a valid JSON or JSON Array response."
            )
        );
    }

    #[test]
    fn run_timeouts() {
        let o = interpret_run(Err(ProxyError::Timeout), FAST, T, MAX);
        assert_eq!(
            o.response,
            ActivationResponse::developer_error(
                "The action exceeded its time limits of 60000 milliseconds."
            )
        );
        assert!(o.timed_out);
        // a reply that came at or after the limit still counts as a timeout
        let o = interpret_run(reply(200, "{}"), T, T, MAX);
        assert!(o.timed_out);
        assert_eq!(o.response.status_code, StatusCode::DeveloperError);
    }

    #[test]
    fn run_sandbox_died() {
        let o = interpret_run(Err(ProxyError::Exited { oom: false }), FAST, T, MAX);
        assert_eq!(
            o.response,
            ActivationResponse::developer_error(
                "The action did not produce a valid response and exited unexpectedly."
            )
        );
        assert!(!o.timed_out);
        let o = interpret_run(Err(ProxyError::Exited { oom: true }), FAST, T, MAX);
        assert_eq!(
            o.response,
            ActivationResponse::developer_error("The action exhausted its memory and was aborted.")
        );
        let o = interpret_run(
            Err(ProxyError::Other(faas_core::Error::internal("x"))),
            FAST,
            T,
            MAX,
        );
        assert_eq!(error_of(&o.response), &json!(ABNORMAL_RUN));
    }

    #[test]
    fn run_truncation() {
        // over the limit, body complete
        let o = interpret_run(reply(200, r#"{"a":"0123456789"}"#), FAST, T, 8);
        assert_eq!(o.response.status_code, StatusCode::ApplicationError);
        assert_eq!(
            error_of(&o.response),
            &json!(
                "The action produced a response that exceeded the allowed length: 18 > 8 bytes. The truncated response was: {\"a\":\"01"
            )
        );
        assert_eq!(o.response.size, Some(18));
        // cut by the executor: the full length comes from `truncated`
        let r = Ok(ProxyResponse {
            status: 200,
            body: Bytes::from_static("{\"é\":1".as_bytes()),
            truncated: Some(5000),
        });
        let o = interpret_run(r, FAST, T, 3);
        // the cut falls inside "é" (2 bytes): only whole characters are kept
        assert_eq!(
            error_of(&o.response),
            &json!(
                "The action produced a response that exceeded the allowed length: 5000 > 3 bytes. The truncated response was: {\""
            )
        );
    }

    #[test]
    fn init_rows() {
        let ok = interpret_init(&reply(200, r#"{"ok":true}"#), FAST, T, MAX);
        assert!(ok.is_ok());
        // error field kept as is
        let e = interpret_init(
            &reply(502, r#"{"error":"Initialization has failed due to: x"}"#),
            FAST,
            T,
            MAX,
        )
        .unwrap_err();
        assert_eq!(
            e.response,
            ActivationResponse::developer_error("Initialization has failed due to: x")
        );
        assert!(!e.timed_out);
        // object without error
        let e = interpret_init(&reply(403, r#"{"x":1}"#), FAST, T, MAX).unwrap_err();
        assert_eq!(
            error_of(&e.response),
            &json!(r#"The action failed during initialization: {"x":1}"#)
        );
        // not JSON
        let e = interpret_init(&reply(500, "oops"), FAST, T, MAX).unwrap_err();
        assert_eq!(
            e.response,
            ActivationResponse::developer_error("The action failed during initialization: oops")
        );
        let e = interpret_init(&reply(500, ""), FAST, T, MAX).unwrap_err();
        assert_eq!(
            e.response,
            ActivationResponse::developer_error("The action failed during initialization.")
        );
        // timeout
        let e = interpret_init(&Err(ProxyError::Timeout), FAST, T, MAX).unwrap_err();
        assert_eq!(
            e.response,
            ActivationResponse::developer_error(
                "The action exceeded its time limits of 60000 milliseconds during initialization."
            )
        );
        assert!(e.timed_out);
        let e = interpret_init(&reply(502, "{}"), T, T, MAX).unwrap_err();
        assert!(e.timed_out);
        // a successful init that was slow is still a success
        assert!(interpret_init(&reply(200, "{}"), T, T, MAX).is_ok());
        // died
        let e = interpret_init(&Err(ProxyError::Exited { oom: false }), FAST, T, MAX).unwrap_err();
        assert_eq!(
            e.response,
            ActivationResponse::developer_error(
                "The action did not initialize and exited unexpectedly."
            )
        );
        let e = interpret_init(&Err(ProxyError::Exited { oom: true }), FAST, T, MAX).unwrap_err();
        assert_eq!(error_of(&e.response), &json!(MEMORY_EXHAUSTED));
        // over-long reply
        let e = interpret_init(&reply(502, "abcdef"), FAST, T, 2).unwrap_err();
        assert_eq!(
            error_of(&e.response),
            &json!(
                "The action produced a response that exceeded the allowed length: 6 > 2 bytes. The truncated response was: ab"
            )
        );
        assert_eq!(e.response.status_code, StatusCode::DeveloperError);
    }
}
