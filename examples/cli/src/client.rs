//! The HTTP side: OpenWhisk's REST API over reqwest (rustls), with `wsk`'s reading of answers
//! (`openwhisk-client-go/whisk/client.go`, `Do` and `parseErrorResponse`).
//!
//! An error answer `{"error", "code"}` becomes `<error> (code <code>)` with exit code
//! `status - 256`. A route the platform does not serve (404 from its router, whose message is
//! `The requested resource could not be found.`, unlike a missing entity's `The requested
//! resource does not exist.`; or 405) becomes one line saying so.

use std::io::Write;
use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

use crate::config::Settings;
use crate::error::{CliError, Kind, Result, exit};

/// The text of a 404 for a path nobody serves (pekko's and this platform's router).
pub(crate) const ROUTE_NOT_FOUND: &str = "The requested resource could not be found.";

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may take in all (a blocking invoke waits at most 60 s on the server,
/// OpenWhisk's default; an action may run five minutes).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(330);

/// An answer with a 2xx status, or any answer from [`Client::send`].
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// HTTP status.
    pub(crate) status: u16,
    /// The body as JSON (`Null` when empty or not JSON).
    pub(crate) body: Value,
}

/// One request: where, what, and which family of commands it serves (for "not served" messages).
#[derive(Debug, Clone)]
pub(crate) struct Req {
    method: Method,
    url: Url,
    body: Option<Value>,
    auth: bool,
    family: &'static str,
}

impl Req {
    /// With a JSON body.
    pub(crate) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// With query parameters.
    pub(crate) fn query<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        {
            let mut q = self.url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k.as_ref(), v.as_ref());
            }
        }
        if self.url.query() == Some("") {
            self.url.set_query(None);
        }
        self
    }

    /// Without credentials (`GET /api/v1`).
    pub(crate) fn no_auth(mut self) -> Self {
        self.auth = false;
        self
    }

    /// The URL.
    #[cfg(test)]
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }
}

/// The API client of one run.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    version: String,
    auth: Option<String>,
    verbose: bool,
    debug: bool,
}

impl Client {
    /// A client for the configured host. Fails when no valid API host is configured.
    pub(crate) fn new(settings: &Settings) -> Result<Self> {
        // rustls needs one process-wide crypto provider; reqwest is built without a default
        // one, so this binary names ring (an error only means one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = settings.base_url()?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("faas-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .tls_danger_accept_invalid_certs(settings.insecure);
        match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert).map_err(|e| {
                    CliError::general(format!("Unable to read the client cert '{cert}': {e}"))
                })?;
                pem.push(b'\n');
                pem.extend(std::fs::read(key).map_err(|e| {
                    CliError::general(format!("Unable to read the client key '{key}': {e}"))
                })?);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    CliError::general(format!(
                        "Unable to load the X509 key pair due to the following reason: {e}"
                    ))
                })?;
                builder = builder.identity(id);
            }
            (Some(_), None) => {
                return Err(CliError::general(
                    "The Key file is not configured. Please configure the missing Key file.",
                ));
            }
            (None, Some(_)) => {
                return Err(CliError::general(
                    "The Cert file is not configured. Please configure the missing Cert file.",
                ));
            }
            (None, None) => {}
        }
        let http = builder.build().map_err(|e| {
            CliError::general(format!("Unable to initialize server connection: {e}"))
        })?;
        Ok(Self {
            http,
            base,
            version: settings.apiversion.clone(),
            auth: settings.auth.clone(),
            verbose: settings.verbose,
            debug: settings.debug,
        })
    }

    /// The API base URL (`https://host/api`).
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// A request to `/api/<version>/<segments...>` (each segment percent-encoded).
    pub(crate) fn req(&self, method: Method, family: &'static str, segments: &[&str]) -> Req {
        let mut url = self.base.clone();
        if let Ok(mut p) = url.path_segments_mut() {
            p.pop_if_empty().push(&self.version);
            for s in segments {
                p.push(s);
            }
        }
        Req {
            method,
            url,
            body: None,
            auth: true,
            family,
        }
    }

    /// A request to `/api/<version>/namespaces/<ns>/<collection>/<rest...>`.
    pub(crate) fn ns_req(
        &self,
        method: Method,
        family: &'static str,
        namespace: &str,
        collection: &str,
        rest: &[&str],
    ) -> Req {
        let mut segs = vec!["namespaces", namespace, collection];
        segs.extend_from_slice(rest);
        self.req(method, family, &segs)
    }

    /// Sends `req` and returns the answer whatever its status; fails only when there is no
    /// answer (no credentials, host unreachable, connection lost).
    pub(crate) async fn send(&self, req: &Req) -> Result<Reply> {
        let mut rb = self.http.request(req.method.clone(), req.url.clone());
        if req.auth {
            match &self.auth {
                Some(key) => {
                    let (user, pass) = key.split_once(':').unwrap_or((key.as_str(), ""));
                    rb = rb.basic_auth(user, Some(pass));
                }
                None => {
                    return Err(CliError::usage(
                        "Authorization key is not configured (--auth is required)",
                    ));
                }
            }
        }
        let body_bytes = match &req.body {
            Some(b) => Some(
                serde_json::to_vec(b)
                    .map_err(|e| CliError::general(format!("Error encoding request body: {e}")))?,
            ),
            None => None,
        };
        if let Some(b) = &body_bytes {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.clone());
        }
        self.trace_request(req, body_bytes.as_deref());
        let res = rb.send().await.map_err(|e| network_error(req, &e))?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|e| network_error(req, &e))?;
        self.trace_response(status, &bytes);
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Reply { status, body })
    }

    /// Sends `req`; a non-2xx answer is an error in `wsk`'s words.
    pub(crate) async fn call(&self, req: &Req) -> Result<Reply> {
        let reply = self.send(req).await?;
        if (200..300).contains(&reply.status) {
            Ok(reply)
        } else {
            Err(failure(req, reply.status, &reply.body))
        }
    }

    fn trace_request(&self, req: &Req, body: Option<&[u8]>) {
        if !self.verbose {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "REQUEST:\n[{}]\t{}", req.method, req.url);
        let _ = writeln!(
            e,
            "Req Headers\n{{\"Authorization\": [\"{}\"], \"Content-Type\": [\"application/json\"]}}",
            if req.auth { "Basic ******" } else { "" }
        );
        if let Some(b) = body {
            let _ = writeln!(e, "Req Body\n{}", self.shown_body(b));
        }
    }

    fn trace_response(&self, status: u16, body: &[u8]) {
        if !self.verbose {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "RESPONSE:\nGot response with code {status}");
        let _ = writeln!(e, "Response body size is {} bytes", body.len());
        let _ = writeln!(e, "Response body received:\n{}", self.shown_body(body));
    }

    /// A body for the trace: keys named like credentials hidden; cut at 1000 bytes unless
    /// `--debug` (as `wsk -v`).
    fn shown_body(&self, body: &[u8]) -> String {
        let text = match serde_json::from_slice::<Value>(body) {
            Ok(mut v) => {
                redact(&mut v);
                v.to_string()
            }
            Err(_) => String::from_utf8_lossy(body).into_owned(),
        };
        if !self.debug && text.len() > 1000 {
            let mut cut = 1000;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}...", &text[..cut])
        } else {
            text
        }
    }
}

/// Hides the values of keys that carry credentials (`authKey` of feed calls, `authkey` of API
/// gateway calls, `password`).
fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, val) in o.iter_mut() {
                let lk = k.to_ascii_lowercase();
                if lk == "authkey" || lk == "password" || lk == "accesstoken" {
                    *val = Value::String("******".into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The innermost cause of `e` (`Connection refused (os error 111)`), which says the most.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn network_error(req: &Req, e: &reqwest::Error) -> CliError {
    let what = if e.is_timeout() {
        "the request timed out".to_string()
    } else if e.is_connect() {
        format!("cannot connect: {}", root_cause(e))
    } else {
        root_cause(e)
    };
    let mut url = req.url.clone();
    url.set_query(None);
    CliError::new(format!("{} {url}: {what}", req.method), exit::NETWORK)
}

/// The error for a non-2xx answer, in `wsk`'s words.
pub(crate) fn failure(req: &Req, status: u16, body: &Value) -> CliError {
    let error = body.get("error");
    let code = body.get("code").map(|c| match c {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let message = error.map(|e| match e {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let not_served =
        status == 405 || (status == 404 && message.as_deref() == Some(ROUTE_NOT_FOUND));
    let mut err = if not_served {
        let mut e = CliError::new(
            format!(
                "the platform does not serve {} yet ({} {} answered {status}{})",
                req.family,
                req.method,
                req.url.path(),
                message
                    .as_deref()
                    .map(|m| format!(" {m}"))
                    .unwrap_or_default()
            ),
            exit::http(status),
        );
        e.kind = Kind::NotServed;
        e
    } else {
        let text = match (&message, &code) {
            (Some(m), Some(c)) => format!("{m} (code {c})"),
            (Some(m), None) => m.clone(),
            _ => format!("The connection failed, or timed out. (HTTP status code {status})"),
        };
        let mut e = CliError::new(text, exit::http(status));
        e.kind = Kind::Http;
        e
    };
    err.status = Some(status);
    err.code = code;
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::GlobalArgs;
    use crate::config::{FlagUse, Props};
    use serde_json::json;

    fn client() -> Client {
        let g = GlobalArgs {
            apihost: Some("http://127.0.0.1:9".into()),
            auth: Some("u:p".into()),
            ..GlobalArgs::default()
        };
        let s = Settings::resolve(&g, FlagUse::Connection, None, Props::default(), |_| None);
        Client::new(&s).unwrap()
    }

    #[test]
    fn urls_are_encoded_per_segment() {
        let c = client();
        let r = c
            .ns_req(Method::PUT, "actions", "_", "actions", &["my pkg", "a&b"])
            .query([("overwrite", "true")]);
        assert_eq!(
            r.url().as_str(),
            "http://127.0.0.1:9/api/v1/namespaces/_/actions/my%20pkg/a&b?overwrite=true"
        );
        let r = c
            .req(Method::GET, "namespaces", &["namespaces"])
            .query(Vec::<(&str, &str)>::new());
        assert_eq!(r.url().as_str(), "http://127.0.0.1:9/api/v1/namespaces");
    }

    #[test]
    fn failures_read_like_wsk() {
        let c = client();
        let r = c.ns_req(Method::GET, "actions", "_", "actions", &["x"]);
        let e = failure(
            &r,
            404,
            &json!({"error": "The requested resource does not exist.", "code": "abc"}),
        );
        assert_eq!(
            e.message,
            "The requested resource does not exist. (code abc)"
        );
        assert_eq!(e.exit_code, 148);
        assert!(!e.is_not_served());
        let r = c.ns_req(Method::PUT, "triggers", "_", "triggers", &["t"]);
        let e = failure(&r, 404, &json!({"error": ROUTE_NOT_FOUND, "code": "abc"}));
        assert!(e.is_not_served());
        assert!(
            e.message.starts_with("the platform does not serve triggers yet (PUT /api/v1/namespaces/_/triggers/t answered 404"),
            "{e}"
        );
        let e = failure(&r, 500, &Value::Null);
        assert_eq!(
            e.message,
            "The connection failed, or timed out. (HTTP status code 500)"
        );
        assert_eq!(e.exit_code, 244);
    }

    #[test]
    fn credentials_are_hidden_in_traces() {
        let mut v = json!({"authKey": "u:p", "x": [{"password": "s"}], "keep": 1});
        redact(&mut v);
        assert_eq!(
            v,
            json!({"authKey": "******", "x": [{"password": "******"}], "keep": 1})
        );
    }
}
