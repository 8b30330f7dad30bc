//! [`CouchDbBuilder`]: where the server is, how to log in, and how hard to try.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use faas_core::{Error, Result};
use reqwest::Url;

use super::CouchDbStore;

/// OpenWhisk's default database prefix (`db_prefix` in its deployment: `whisk_local_`).
pub const DEFAULT_PREFIX: &str = "whisk_local_";

/// A setting of [`CouchDbBuilder`], by name, for [`CouchDbBuilder::with_config`].
///
/// Each key has a name for URLs (`?prefix=…`) and an environment variable
/// ([`CouchDbBuilder::from_env`]); both are accepted by `FromStr`, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CouchDbConfigKey {
    /// The server URL (`couchdb://`, `http://` or `https://`), `FAAS_COUCHDB_URL`.
    Url,
    /// The user name, `FAAS_COUCHDB_USERNAME` (overrides one in the URL).
    Username,
    /// The password, `FAAS_COUCHDB_PASSWORD` (overrides one in the URL).
    Password,
    /// The database name prefix, `prefix`, `FAAS_COUCHDB_PREFIX` (default `whisk_local_`).
    Prefix,
    /// How long one HTTP request may take, in ms: `request_timeout_ms`,
    /// `FAAS_COUCHDB_REQUEST_TIMEOUT_MS` (default 10 000).
    RequestTimeout,
    /// How long an operation may keep retrying transient failures, in ms: `retry_timeout_ms`,
    /// `FAAS_COUCHDB_RETRY_TIMEOUT_MS` (default 5 000; 0 disables retries).
    RetryTimeout,
    /// Most activation records written in one `_bulk_docs` request: `batch_size`,
    /// `FAAS_COUCHDB_BATCH_SIZE` (default 128).
    BatchSize,
    /// Most `_bulk_docs` requests in flight at once: `batch_concurrency`,
    /// `FAAS_COUCHDB_BATCH_CONCURRENCY` (default 4).
    BatchConcurrency,
    /// How long the batch writer waits, after a record arrives, for more to join its
    /// `_bulk_docs` request, in ms: `batch_linger_ms`, `FAAS_COUCHDB_BATCH_LINGER_MS` (default
    /// 2; 0 sends at once what is waiting). Callers of the platform never wait for it.
    BatchLinger,
    /// Activation records older than this many seconds (by `start`) are deleted by a sweep
    /// that runs every minute (or every TTL, if shorter): `activation_ttl_s`,
    /// `FAAS_COUCHDB_ACTIVATION_TTL_S` (default: none, records are kept). OpenWhisk's
    /// `time-to-live` for activations.
    ActivationTtl,
}

impl CouchDbConfigKey {
    const ALL: [Self; 10] = [
        Self::Url,
        Self::Username,
        Self::Password,
        Self::Prefix,
        Self::RequestTimeout,
        Self::RetryTimeout,
        Self::BatchSize,
        Self::BatchConcurrency,
        Self::BatchLinger,
        Self::ActivationTtl,
    ];

    /// The name in URL query strings (`prefix`, `request_timeout_ms`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::Username => "username",
            Self::Password => "password",
            Self::Prefix => "prefix",
            Self::RequestTimeout => "request_timeout_ms",
            Self::RetryTimeout => "retry_timeout_ms",
            Self::BatchSize => "batch_size",
            Self::BatchConcurrency => "batch_concurrency",
            Self::BatchLinger => "batch_linger_ms",
            Self::ActivationTtl => "activation_ttl_s",
        }
    }

    /// The environment variable [`CouchDbBuilder::from_env`] reads.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::Url => "FAAS_COUCHDB_URL",
            Self::Username => "FAAS_COUCHDB_USERNAME",
            Self::Password => "FAAS_COUCHDB_PASSWORD",
            Self::Prefix => "FAAS_COUCHDB_PREFIX",
            Self::RequestTimeout => "FAAS_COUCHDB_REQUEST_TIMEOUT_MS",
            Self::RetryTimeout => "FAAS_COUCHDB_RETRY_TIMEOUT_MS",
            Self::BatchSize => "FAAS_COUCHDB_BATCH_SIZE",
            Self::BatchConcurrency => "FAAS_COUCHDB_BATCH_CONCURRENCY",
            Self::BatchLinger => "FAAS_COUCHDB_BATCH_LINGER_MS",
            Self::ActivationTtl => "FAAS_COUCHDB_ACTIVATION_TTL_S",
        }
    }
}

impl fmt::Display for CouchDbConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CouchDbConfigKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s) || k.env_var().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "unknown CouchDB setting '{s}'; known: {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }
}

/// Builds a [`CouchDbStore`]: `new()` or `from_env()`, then `with_*`, then `build().await`.
///
/// Nothing is checked before [`build`](Self::build), which parses the URL, connects, and
/// creates the databases and design documents that are missing.
///
/// ```no_run
/// use faas_store::couchdb::CouchDbBuilder;
///
/// # async fn run() -> faas_core::Result<()> {
/// let store = CouchDbBuilder::new()
///     .with_url("couchdb://admin:secret@127.0.0.1:5984/?prefix=whisk_local_")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
///
/// Credentials may be given in the URL or with [`with_username`](Self::with_username) /
/// [`with_password`](Self::with_password); they are sent as HTTP Basic authentication and never
/// appear in `Debug` output, error messages or logs. A URL without credentials talks to a
/// server in "admin party" mode (pouchdb-server's default).
#[derive(Clone, Default)]
pub struct CouchDbBuilder {
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    prefix: Option<String>,
    request_timeout: Option<String>,
    retry_timeout: Option<String>,
    batch_size: Option<String>,
    batch_concurrency: Option<String>,
    batch_linger: Option<String>,
    activation_ttl: Option<String>,
}

impl fmt::Debug for CouchDbBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CouchDbBuilder")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("username", &self.username.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("request_timeout_ms", &self.request_timeout)
            .field("retry_timeout_ms", &self.retry_timeout)
            .field("batch_size", &self.batch_size)
            .field("batch_concurrency", &self.batch_concurrency)
            .field("batch_linger_ms", &self.batch_linger)
            .field("activation_ttl_s", &self.activation_ttl)
            .finish_non_exhaustive()
    }
}

impl CouchDbBuilder {
    /// A builder with nothing set (the URL is required before [`build`](Self::build)).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from the `FAAS_COUCHDB_*` environment variables (see [`CouchDbConfigKey`]);
    /// unset variables leave the defaults.
    pub fn from_env() -> Self {
        let mut b = Self::new();
        for key in CouchDbConfigKey::ALL {
            if let Ok(v) = std::env::var(key.env_var()) {
                b = b.with_config(key, v);
            }
        }
        b
    }

    /// Sets one setting by key; values are checked by [`build`](Self::build).
    pub fn with_config(mut self, key: CouchDbConfigKey, value: impl Into<String>) -> Self {
        let v = Some(value.into());
        match key {
            CouchDbConfigKey::Url => self.url = v,
            CouchDbConfigKey::Username => self.username = v,
            CouchDbConfigKey::Password => self.password = v,
            CouchDbConfigKey::Prefix => self.prefix = v,
            CouchDbConfigKey::RequestTimeout => self.request_timeout = v,
            CouchDbConfigKey::RetryTimeout => self.retry_timeout = v,
            CouchDbConfigKey::BatchSize => self.batch_size = v,
            CouchDbConfigKey::BatchConcurrency => self.batch_concurrency = v,
            CouchDbConfigKey::BatchLinger => self.batch_linger = v,
            CouchDbConfigKey::ActivationTtl => self.activation_ttl = v,
        }
        self
    }

    /// The server: `couchdb://[user:pass@]host[:port]/[?prefix=…&request_timeout_ms=…]`
    /// (`couchdb` means plain HTTP), or an `http://` URL. Query parameters are settings by
    /// their [`CouchDbConfigKey`] names; settings made with `with_*` win over them.
    pub fn with_url(self, url: impl Into<String>) -> Self {
        self.with_config(CouchDbConfigKey::Url, url)
    }

    /// The user name for HTTP Basic authentication.
    pub fn with_username(self, username: impl Into<String>) -> Self {
        self.with_config(CouchDbConfigKey::Username, username)
    }

    /// The password for HTTP Basic authentication.
    pub fn with_password(self, password: impl Into<String>) -> Self {
        self.with_config(CouchDbConfigKey::Password, password)
    }

    /// The database name prefix: the store uses `<prefix>subjects`, `<prefix>whisks` and
    /// `<prefix>activations`. Lowercase letters, digits and `_$()+-` only, starting with a letter.
    pub fn with_prefix(self, prefix: impl Into<String>) -> Self {
        self.with_config(CouchDbConfigKey::Prefix, prefix)
    }

    /// How long one HTTP request may take (whole request, connect to last body byte; rounded
    /// up to whole seconds, as `couch_rs` takes it).
    pub fn with_request_timeout(self, timeout: Duration) -> Self {
        self.with_config(
            CouchDbConfigKey::RequestTimeout,
            timeout.as_millis().to_string(),
        )
    }

    /// How long one operation may keep retrying transient failures (network errors, 5xx);
    /// `Duration::ZERO` disables retries.
    pub fn with_retry_timeout(self, timeout: Duration) -> Self {
        self.with_config(
            CouchDbConfigKey::RetryTimeout,
            timeout.as_millis().to_string(),
        )
    }

    /// Most activation records per `_bulk_docs` request (at least 1).
    pub fn with_batch_size(self, n: usize) -> Self {
        self.with_config(CouchDbConfigKey::BatchSize, n.to_string())
    }

    /// Most `_bulk_docs` requests in flight at once (at least 1).
    pub fn with_batch_concurrency(self, n: usize) -> Self {
        self.with_config(CouchDbConfigKey::BatchConcurrency, n.to_string())
    }

    /// How long a record waits for others to share its `_bulk_docs` request (default 2 ms).
    pub fn with_batch_linger(self, linger: Duration) -> Self {
        self.with_config(
            CouchDbConfigKey::BatchLinger,
            linger.as_millis().to_string(),
        )
    }

    /// Deletes activation records older than `ttl` (OpenWhisk's activation `time-to-live`),
    /// checked every minute or every `ttl` if shorter; whole seconds.
    pub fn with_activation_ttl(self, ttl: Duration) -> Self {
        self.with_config(CouchDbConfigKey::ActivationTtl, ttl.as_secs().to_string())
    }

    /// Parses and checks the settings (no I/O).
    pub(crate) fn config(&self) -> Result<CouchDbConfig> {
        let raw = self
            .url
            .as_deref()
            .ok_or_else(|| bad("no CouchDB URL given (set FAAS_COUCHDB_URL or use with_url)"))?;
        let parsed = parse_url(raw)?;
        let pick = |explicit: &Option<String>, key: CouchDbConfigKey| {
            explicit.clone().or_else(|| parsed.params.get(key).cloned())
        };
        let prefix = pick(&self.prefix, CouchDbConfigKey::Prefix)
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        validate_prefix(&prefix)?;
        let ms = |key, explicit: &Option<String>, default: u64| -> Result<Duration> {
            pick(explicit, key).map_or(Ok(Duration::from_millis(default)), |s| {
                s.trim()
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| {
                        bad(format!(
                            "CouchDB setting {key}: '{s}' is not a number of ms"
                        ))
                    })
            })
        };
        let count = |key, explicit: &Option<String>, default: usize| -> Result<usize> {
            pick(explicit, key).map_or(Ok(default), |s| match s.trim().parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(bad(format!(
                    "CouchDB setting {key}: '{s}' is not a positive number"
                ))),
            })
        };
        let request_timeout = ms(
            CouchDbConfigKey::RequestTimeout,
            &self.request_timeout,
            10_000,
        )?;
        if request_timeout.is_zero() {
            return Err(bad("CouchDB setting request_timeout_ms must be above 0"));
        }
        Ok(CouchDbConfig {
            base: parsed.base,
            username: self.username.clone().or(parsed.username),
            password: self.password.clone().or(parsed.password),
            prefix,
            request_timeout,
            retry_timeout: ms(CouchDbConfigKey::RetryTimeout, &self.retry_timeout, 5_000)?,
            batch_size: count(CouchDbConfigKey::BatchSize, &self.batch_size, 128)?,
            batch_concurrency: count(
                CouchDbConfigKey::BatchConcurrency,
                &self.batch_concurrency,
                4,
            )?,
            batch_linger: ms(CouchDbConfigKey::BatchLinger, &self.batch_linger, 2)?,
            activation_ttl: match pick(&self.activation_ttl, CouchDbConfigKey::ActivationTtl) {
                None => None,
                Some(s) => match s.trim().parse::<u64>() {
                    Ok(n) if n >= 1 => Some(Duration::from_secs(n)),
                    _ => {
                        return Err(bad(format!(
                            "CouchDB setting activation_ttl_s: '{s}' is not a positive number of seconds"
                        )));
                    }
                },
            },
        })
    }

    /// Connects, creates the databases and design documents that are missing (upgrading
    /// design documents whose views changed), and starts the activation batch writer.
    ///
    /// Fails with `BadRequest` for bad settings and `Unavailable` when the server cannot be
    /// reached or refuses the credentials (after retrying for the retry timeout). Must be
    /// called inside a tokio runtime: the batch writer runs as a task on it, so use the store
    /// on that runtime.
    pub async fn build(self) -> Result<CouchDbStore> {
        // See the `rustls` dependency in Cargo.toml: a no-op when a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        CouchDbStore::connect(self.config()?).await
    }
}

/// Checked settings.
#[derive(Clone)]
pub(crate) struct CouchDbConfig {
    /// `http(s)://host:port/` without credentials, query or fragment.
    pub(crate) base: Url,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) prefix: String,
    pub(crate) request_timeout: Duration,
    pub(crate) retry_timeout: Duration,
    pub(crate) batch_size: usize,
    pub(crate) batch_concurrency: usize,
    pub(crate) batch_linger: Duration,
    pub(crate) activation_ttl: Option<Duration>,
}

impl fmt::Debug for CouchDbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CouchDbConfig")
            .field("url", &self.base.as_str())
            .field("username", &self.username.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("request_timeout", &self.request_timeout)
            .field("retry_timeout", &self.retry_timeout)
            .field("batch_size", &self.batch_size)
            .field("batch_concurrency", &self.batch_concurrency)
            .field("batch_linger", &self.batch_linger)
            .field("activation_ttl", &self.activation_ttl)
            .finish()
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::bad_request(msg)
}

/// Query parameters of a store URL.
#[derive(Default)]
struct UrlParams(Vec<(CouchDbConfigKey, String)>);

impl UrlParams {
    fn get(&self, key: CouchDbConfigKey) -> Option<&String> {
        self.0.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

struct ParsedUrl {
    base: Url,
    username: Option<String>,
    password: Option<String>,
    params: UrlParams,
}

fn parse_url(raw: &str) -> Result<ParsedUrl> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://").ok_or_else(|| {
        bad(format!(
            "CouchDB URL '{}' must start with couchdb://",
            redact_url(raw)
        ))
    })?;
    let http_scheme = match scheme.to_ascii_lowercase().as_str() {
        "couchdb" | "http" => "http",
        "https" | "couchdbs" => {
            return Err(bad(
                "HTTPS to CouchDB is not built into this faas-store (plain HTTP only); \
                 put a TLS-terminating proxy on the loopback interface",
            ));
        }
        other => {
            return Err(bad(format!(
                "CouchDB URL scheme '{other}:' is not supported; use couchdb:// or http://"
            )));
        }
    };
    let mut url = Url::parse(&format!("{http_scheme}://{rest}")).map_err(|e| {
        bad(format!(
            "CouchDB URL '{}' is not valid: {e}",
            redact_url(raw)
        ))
    })?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!(
            "CouchDB URL '{}' has no host",
            redact_url(raw)
        )));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad("CouchDB URL credentials are not valid UTF-8"))
    };
    let username = match url.username() {
        "" => None,
        u => Some(decode(u)?),
    };
    let password = url.password().map(decode).transpose()?;
    let mut params = UrlParams::default();
    for (k, v) in url.query_pairs() {
        let key: CouchDbConfigKey = k.parse()?;
        if matches!(
            key,
            CouchDbConfigKey::Url | CouchDbConfigKey::Username | CouchDbConfigKey::Password
        ) {
            return Err(bad(format!(
                "CouchDB URL parameter '{k}' is not allowed; put credentials before the host"
            )));
        }
        params.0.push((key, v.into_owned()));
    }
    // The base keeps scheme, host, port and path only: credentials go into a header.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(ParsedUrl {
        base: url,
        username,
        password,
        params,
    })
}

/// Database names as CouchDB allows them: `^[a-z][a-z0-9_$()+/-]*$` (we leave out `/`).
fn validate_prefix(prefix: &str) -> Result<()> {
    let mut chars = prefix.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let ok_rest = chars.all(|c| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '_' | '$' | '(' | ')' | '+' | '-')
    });
    if ok_first && ok_rest && prefix.len() <= 200 {
        Ok(())
    } else {
        Err(bad(format!(
            "CouchDB database prefix '{prefix}' is not valid: it must start with a lowercase \
             letter and hold only lowercase letters, digits and _$()+-"
        )))
    }
}

/// `url` with any credentials replaced by `***` (for messages about a URL as the user gave it).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_credentials_and_prefix() {
        let c = CouchDbBuilder::new()
            .with_url("couchdb://admin:s%40cret@127.0.0.1:5984/?prefix=whisk_test_&batch_size=7")
            .config()
            .unwrap();
        assert_eq!(c.base.as_str(), "http://127.0.0.1:5984/");
        assert_eq!(c.username.as_deref(), Some("admin"));
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert_eq!(c.prefix, "whisk_test_");
        assert_eq!(c.batch_size, 7);
        assert_eq!(c.batch_concurrency, 4);
        assert_eq!(c.batch_linger, Duration::from_millis(2));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s@cret") && !dbg.contains("s%40cret"),
            "{dbg}"
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let c = CouchDbBuilder::new()
            .with_url("http://localhost:5984")
            .config()
            .unwrap();
        assert_eq!(c.prefix, DEFAULT_PREFIX);
        assert_eq!(c.username, None);
        assert_eq!(c.base.as_str(), "http://localhost:5984/");
        let c = CouchDbBuilder::new()
            .with_url("couchdb://u:p@h:1/?prefix=a_&retry_timeout_ms=0")
            .with_prefix("b_")
            .with_username("v")
            .with_password("q")
            .with_request_timeout(Duration::from_millis(1500))
            .config()
            .unwrap();
        assert_eq!(c.prefix, "b_");
        assert_eq!(c.username.as_deref(), Some("v"));
        assert_eq!(c.password.as_deref(), Some("q"));
        assert_eq!(c.retry_timeout, Duration::ZERO);
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let err = |b: CouchDbBuilder| b.config().unwrap_err().to_string();
        assert!(err(CouchDbBuilder::new()).contains("no CouchDB URL"));
        let e = err(CouchDbBuilder::new().with_url("couchdb://u:topsecret@h/?nope=1"));
        assert!(e.contains("unknown CouchDB setting 'nope'"), "{e}");
        assert!(!e.contains("topsecret"));
        let e = err(CouchDbBuilder::new().with_url("ftp://u:topsecret@h/"));
        assert!(
            e.contains("not supported") && !e.contains("topsecret"),
            "{e}"
        );
        let e = err(CouchDbBuilder::new().with_url("https://h/"));
        assert!(e.contains("HTTPS"), "{e}");
        let e = err(CouchDbBuilder::new().with_url("couchdb://h/?prefix=Bad"));
        assert!(e.contains("prefix 'Bad'"), "{e}");
        let e = err(CouchDbBuilder::new().with_url("couchdb://h/?batch_size=0"));
        assert!(e.contains("batch_size"), "{e}");
        let e = err(CouchDbBuilder::new().with_url("couchdb://h/?request_timeout_ms=x"));
        assert!(e.contains("request_timeout_ms"), "{e}");
        let e = err(CouchDbBuilder::new().with_url("couchdb://h/?password=x"));
        assert!(e.contains("not allowed"), "{e}");
        let e = err(CouchDbBuilder::new().with_url("no-scheme"));
        assert!(e.contains("couchdb://"), "{e}");
    }

    #[test]
    fn keys_parse_by_name_or_env_var() {
        for k in CouchDbConfigKey::ALL {
            assert_eq!(k.as_str().parse::<CouchDbConfigKey>().unwrap(), k);
            assert_eq!(k.env_var().parse::<CouchDbConfigKey>().unwrap(), k);
        }
        assert!("PREFIX".parse::<CouchDbConfigKey>().is_ok());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("couchdb://admin:pw@h:1/?prefix=x"),
            "couchdb://***@h:1/?prefix=x"
        );
        assert_eq!(redact_url("couchdb://h:1/"), "couchdb://h:1/");
        assert_eq!(redact_url("junk"), "junk");
        let b = CouchDbBuilder::new()
            .with_url("couchdb://admin:pw123@h/")
            .with_password("pw456");
        let dbg = format!("{b:?}");
        assert!(!dbg.contains("pw123") && !dbg.contains("pw456"), "{dbg}");
        assert!(!dbg.contains("admin"), "{dbg}");
    }
}
