//! `faas-platform admin`: the operator CLI, with `wskadmin`'s commands, output, messages and
//! exit codes (OpenWhisk's `tools/admin`).
//!
//! It has two ways to reach the data, and both speak the admin API
//! ([`faas_http::admin`]), so they behave the same:
//!
//! * `--url http://controller:3233 --admin-auth CREDENTIAL` — a running controller's admin API
//!   (the only way into a platform whose store is embedded, such as `standalone`);
//! * `--store couchdb://…` — straight at a shared store, as `wskadmin` works on CouchDB: the CLI
//!   runs the admin API in-process over that store. Add `--bus kafka://…` (the controllers' bus)
//!   so that its changes are announced on `cacheInvalidation` and reach the controllers' caches
//!   at once; without it they notice when their cache entries expire (5 minutes).
//!
//! Exit codes (as `wskadmin`'s): 0 success; 1 the operation is not possible in the current state
//! (missing subject, namespace or limits, existing namespace, blocked subject); 2 bad arguments
//! or input; 3 the platform or store could not be reached, or refused the operator credential.
//! `user block`/`unblock` exit with the number of subjects that failed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

use faas_core::{MessageBus, Store};
use faas_http::admin::{AdminConfig, AdminCredential};

use crate::config::parse_admin_credential;
use crate::registry::AdapterUrl;
use crate::standalone::Adapters;

/// How long one call may take (`wskadmin`'s default `--timeout`).
const TIMEOUT: Duration = Duration::from_secs(30);

/// `faas-platform admin [--url U --admin-auth A | --store S [--bus B]] <command>`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// A running controller's base URL (`http://127.0.0.1:3233`): use its admin API.
    #[arg(
        long,
        env = "FAAS_ADMIN_URL",
        global = true,
        help_heading = "Connection"
    )]
    pub url: Option<String>,
    /// The operator credential of that controller (`--admin-auth` it was started with).
    #[arg(long, env = "FAAS_ADMIN_AUTH", hide_env_values = true, global = true,
          allow_hyphen_values = true, value_parser = parse_admin_credential,
          help_heading = "Connection")]
    pub admin_auth: Option<AdminCredential>,
    /// Work straight on this shared store (`couchdb://…`) instead of through a controller.
    #[arg(
        long,
        env = "FAAS_STORE",
        hide_env_values = true,
        global = true,
        help_heading = "Connection"
    )]
    pub store: Option<String>,
    /// With `--store`: the controllers' bus (`kafka://…`), to announce the changes to them.
    #[arg(
        long,
        env = "FAAS_BUS",
        hide_env_values = true,
        global = true,
        help_heading = "Connection"
    )]
    pub bus: Option<String>,
    /// A platform config file (TOML): `store`, `bus` and `admin_auth` are read from it.
    #[arg(long, env = "FAAS_CONFIG", global = true, help_heading = "Connection")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users (subjects), their namespaces and keys.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage namespace-specific limits.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// Namespaces.
    #[command(subcommand)]
    Namespace(NamespaceCommand),
}

impl AdminCommand {
    /// Whether the command changes anything.
    pub fn writes(&self) -> bool {
        match self {
            AdminCommand::User(u) => !matches!(
                u,
                UserCommand::Get { .. } | UserCommand::List { .. } | UserCommand::Whois { .. }
            ),
            AdminCommand::Limits(l) => !matches!(l, LimitsCommand::Get { .. }),
            AdminCommand::Namespace(_) => false,
        }
    }
}

/// A secret given on the command line (`--auth`, `whois`); `Debug` hides it.
#[derive(Clone)]
pub struct SecretArg(pub String);

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// `user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (or give it another namespace) and print its key `uuid:key`.
    Create {
        /// The subject (at least 5 characters).
        subject: String,
        /// Create the key for this namespace (default: the subject's name).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// The `uuid:key` to use instead of a random one.
        #[arg(long, short = 'u')]
        auth: Option<SecretArg>,
        /// The namespace exists: give it a new secret (same uuid), or the `--auth` key.
        #[arg(long, short = 'r')]
        revoke: bool,
        /// The namespace exists: replace its key with `--auth` or a new random one.
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Print a user's key for a namespace.
    Get {
        /// The subject.
        subject: String,
        /// The namespace (default: the subject's name).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Every namespace and its key.
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// Delete a user, or only its key for one namespace.
    Delete {
        /// The subject.
        subject: String,
        /// Delete only the key for this namespace.
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// List the keys of a namespace's (unblocked) users.
    List {
        /// The namespace.
        namespace: String,
        /// Show no more than N identities.
        #[arg(long, short = 'p', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        pick: Option<u32>,
        /// Show all identities (the default).
        #[arg(long, short = 'a')]
        all: bool,
        /// Show only the keys.
        #[arg(long, short = 'k')]
        key: bool,
    },
    /// Print the subject and namespace a key `uuid:key` belongs to.
    Whois {
        /// The key.
        authkey: SecretArg,
    },
    /// Block one or more users: none of their keys works any more.
    Block {
        /// The subjects.
        #[arg(required = true)]
        subjects: Vec<String>,
    },
    /// Unblock one or more users.
    Unblock {
        /// The subjects.
        #[arg(required = true)]
        subjects: Vec<String>,
    },
}

/// `limits …`.
#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Set limits for a namespace (the others it has stay).
    Set {
        /// The namespace.
        namespace: String,
        /// Invocations per minute allowed.
        #[arg(long = "invocationsPerMinute", allow_negative_numbers = true)]
        invocations_per_minute: Option<i64>,
        /// Concurrent invocations allowed.
        #[arg(long = "concurrentInvocations", allow_negative_numbers = true)]
        concurrent_invocations: Option<i64>,
        /// Trigger fires per minute allowed.
        #[arg(long = "firesPerMinute", allow_negative_numbers = true)]
        fires_per_minute: Option<i64>,
        /// Runtime kinds allowed in this namespace.
        #[arg(long = "allowedKinds", num_args = 1..)]
        allowed_kinds: Option<Vec<String>>,
        /// Whether activations of this namespace are stored (true or false).
        #[arg(long = "storeActivations", value_parser = parse_bool)]
        store_activations: Option<bool>,
    },
    /// Print a namespace's limits (system values apply to the others).
    Get {
        /// The namespace.
        namespace: String,
    },
    /// Delete a namespace's limits (the system values apply).
    Delete {
        /// The namespace.
        namespace: String,
    },
}

/// `namespace …`.
#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// List every namespace some user owns.
    List,
}

/// `true`/`false` (and `yes`/`no`, as `wskadmin` takes).
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(format!("'{s}' is not a valid boolean (true or false)")),
    }
}

/// What a command printed and how it ends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Lines for standard output.
    pub out: Vec<String>,
    /// Lines for standard error.
    pub err: Vec<String>,
    /// The exit code.
    pub code: u8,
}

impl Outcome {
    fn ok(lines: Vec<String>) -> Self {
        Self {
            out: lines,
            ..Self::default()
        }
    }

    fn fail(code: u8, message: impl Into<String>) -> Self {
        Self {
            err: vec![message.into()],
            code,
            ..Self::default()
        }
    }
}

/// A failed call: the answer's message and the exit code it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// From an error answer of the admin API.
    fn from_status(status: StatusCode, message: String) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => 2,
            StatusCode::NOT_FOUND | StatusCode::CONFLICT => 1,
            _ => 3,
        };
        let message = if status == StatusCode::UNAUTHORIZED {
            format!("the admin API refused the operator credential: {message}")
        } else {
            message
        };
        Self { code, message }
    }
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        Outcome::fail(f.code, f.message)
    }
}

/// Where the admin API is.
enum Target {
    /// In this process, over a store.
    Local(Router),
    /// A controller at `host:port`, under `base` (a path prefix, usually empty).
    Remote {
        authority: String,
        host: String,
        port: u16,
        base: String,
    },
}

/// Calls the admin API with the operator credential.
struct Client {
    target: Target,
    credential: AdminCredential,
}

impl Client {
    /// `method` on `/admin/v1{path}`; the JSON answer of a 2xx, else a [`Failure`].
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let path = format!("{}{path}", faas_http::admin::PREFIX);
        let body = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
        let (status, bytes) = tokio::time::timeout(TIMEOUT, self.send(method, &path, body))
            .await
            .map_err(|_| Failure::new(3, format!("no answer within {TIMEOUT:?}")))??;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return json.ok_or_else(|| {
                Failure::new(3, "the admin API answered something that is not JSON")
            });
        }
        let message = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("the admin API answered {status}"));
        Err(Failure::from_status(status, message))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let bearer = format!("Bearer {}", self.credential.expose());
        match &self.target {
            Target::Local(router) => {
                let req = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::AUTHORIZATION, bearer)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(axum::body::Body::from(body))
                    .map_err(|e| Failure::new(2, format!("bad request: {e}")))?;
                let res = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| Failure::new(3, format!("admin API failed: {e}")))?;
                let status = res.status();
                let bytes = res
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| Failure::new(3, format!("admin API answer: {e}")))?
                    .to_bytes();
                Ok((status, bytes))
            }
            Target::Remote {
                authority,
                host,
                port,
                base,
            } => {
                let unreachable = |e: &dyn fmt::Display| {
                    Failure::new(3, format!("cannot reach {authority}: {e}"))
                };
                let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| unreachable(&e))?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await
                        .map_err(|e| unreachable(&e))?;
                let driver = tokio::spawn(conn);
                let req = Request::builder()
                    .method(method)
                    .uri(format!("{base}{path}"))
                    .header(header::HOST, authority.as_str())
                    .header(header::AUTHORIZATION, bearer)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body))
                    .map_err(|e| Failure::new(2, format!("bad request: {e}")))?;
                let res = sender
                    .send_request(req)
                    .await
                    .map_err(|e| unreachable(&e))?;
                let status = res.status();
                let bytes = res
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| unreachable(&e))?
                    .to_bytes();
                driver.abort();
                Ok((status, bytes))
            }
        }
    }
}

/// What the file config may say about the admin CLI.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileSettings {
    store: Option<String>,
    bus: Option<String>,
    admin_auth: Option<String>,
}

/// Percent-encodes one path segment (subject and namespace names may hold spaces, `@`, `&`).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs `faas-platform admin …`: connects as the arguments say, runs the command, and returns
/// what to print and the exit code.
pub async fn run(args: AdminArgs, adapters: &Adapters) -> Outcome {
    match connect(&args, adapters).await {
        Ok(client) => execute(&client, args.command).await,
        Err(f) => f.into(),
    }
}

/// Chooses the target: `--url` (a controller), else `--store` (this process).
async fn connect(args: &AdminArgs, adapters: &Adapters) -> Result<Client, Failure> {
    let file: FileSettings = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::new(2, format!("cannot read config {}: {e}", p.display())))?;
            // The platform's file has more keys: read only ours, ignore the rest.
            toml::from_str(&text)
                .map_err(|e| Failure::new(2, format!("bad config {}: {e}", p.display())))?
        }
        None => FileSettings::default(),
    };
    if let Some(url) = &args.url {
        let credential = match (&args.admin_auth, &file.admin_auth) {
            (Some(c), _) => c.clone(),
            (None, Some(s)) => {
                AdminCredential::new(s).map_err(|e| Failure::new(2, e.to_string()))?
            }
            (None, None) => {
                return Err(Failure::new(
                    2,
                    "--url needs the operator credential: --admin-auth or FAAS_ADMIN_AUTH",
                ));
            }
        };
        return Ok(Client {
            target: remote(url)?,
            credential,
        });
    }
    let Some(store_url) = args.store.clone().or(file.store) else {
        return Err(Failure::new(
            2,
            "give --url (a running controller's admin API, with --admin-auth) or --store (a shared store)",
        ));
    };
    let scheme = AdapterUrl::parse(&store_url)
        .map_err(|e| Failure::new(2, e.to_string()))?
        .scheme;
    if scheme == "memory" {
        return Err(Failure::new(
            2,
            "a memory: store lives inside its platform process: use --url and --admin-auth",
        ));
    }
    let store = adapters.stores.make(&store_url).await.map_err(|e| {
        Failure::new(
            3,
            format!("cannot open the store: {}", faas_core::Chain(&e)),
        )
    })?;
    let bus_url = args.bus.clone().or(file.bus);
    let store: Arc<dyn Store> = match bus_url.filter(|b| !b.starts_with("inproc")) {
        Some(bus_url) => {
            let bus: Arc<dyn MessageBus> = adapters.buses.make(&bus_url).await.map_err(|e| {
                Failure::new(3, format!("cannot open the bus: {}", faas_core::Chain(&e)))
            })?;
            let instance = format!("admin{}", std::process::id());
            let announcing = faas_store::CachedStore::from_arc(store)
                .with_ttl(Duration::ZERO)
                .with_announcer(bus, instance)
                .await
                .map_err(|e| {
                    Failure::new(3, format!("cannot use the bus: {}", faas_core::Chain(&e)))
                })?;
            Arc::new(announcing)
        }
        None => {
            if args.command.writes() {
                eprintln!(
                    "warning: no --bus: running controllers see this change when their cached \
                     identities expire (up to 5 minutes); give the controllers' --bus to tell them at once"
                );
            }
            store
        }
    };
    let credential = AdminCredential::generate();
    let router = faas_http::admin::app(store, &AdminConfig::with_credential(credential.clone()));
    Ok(Client {
        target: Target::Local(router),
        credential,
    })
}

/// Parses `http://host[:port][/prefix]`.
fn remote(url: &str) -> Result<Target, Failure> {
    let bad = |why: &str| Failure::new(2, format!("--url '{url}': {why}"));
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad(
            "only http:// is supported (put a TLS proxy in front for https)",
        ));
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("credentials go in --admin-auth, not in the URL"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        eprintln!(
            "warning: the operator credential goes to {host} over plain HTTP; use a TLS proxy or a tunnel"
        );
    }
    Ok(Target::Remote {
        authority: authority.as_str().to_string(),
        port: authority.port_u16().unwrap_or(80),
        host,
        base: uri.path().trim_end_matches('/').to_string(),
    })
}

/// Runs one command.
async fn execute(c: &Client, command: AdminCommand) -> Outcome {
    let r = match command {
        AdminCommand::User(u) => user(c, u).await,
        AdminCommand::Limits(l) => limits(c, l).await,
        AdminCommand::Namespace(NamespaceCommand::List) => c
            .call(Method::GET, "/namespaces", None)
            .await
            .map(|v| Outcome::ok(strings(&v))),
    };
    r.unwrap_or_else(Outcome::from)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn compact(v: &Value) -> String {
    format!("{}:{}", text(v, "uuid"), text(v, "key"))
}

async fn user(c: &Client, command: UserCommand) -> Result<Outcome, Failure> {
    match command {
        UserCommand::Create {
            subject,
            namespace,
            auth,
            revoke,
            force,
        } => {
            let ns = namespace.unwrap_or_else(|| subject.clone());
            let mut body = serde_json::Map::new();
            if let Some(a) = auth {
                body.insert("auth".into(), json!(a.0));
            }
            if revoke {
                body.insert("revoke".into(), json!(true));
            }
            if force {
                body.insert("force".into(), json!(true));
            }
            let v = c
                .call(
                    Method::PUT,
                    &format!("/subjects/{}/namespaces/{}", seg(&subject), seg(&ns)),
                    Some(Value::Object(body)),
                )
                .await?;
            Ok(Outcome::ok(vec![compact(&v)]))
        }
        UserCommand::Get {
            subject,
            namespace,
            all,
        } => {
            let v = c
                .call(Method::GET, &format!("/subjects/{}", seg(&subject)), None)
                .await?;
            let entries = v
                .get("namespaces")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if all {
                return Ok(Outcome::ok(
                    entries
                        .iter()
                        .map(|n| format!("{}\t{}", text(n, "name"), compact(n)))
                        .collect(),
                ));
            }
            let ns = namespace.unwrap_or_else(|| subject.clone());
            match entries.iter().find(|n| text(n, "name") == ns) {
                Some(n) => Ok(Outcome::ok(vec![compact(n)])),
                None => Err(Failure::new(
                    1,
                    faas_http::admin::ops::messages::namespace_missing_for(&ns, &subject),
                )),
            }
        }
        UserCommand::Delete { subject, namespace } => {
            let path = match &namespace {
                Some(ns) => format!("/subjects/{}/namespaces/{}", seg(&subject), seg(ns)),
                None => format!("/subjects/{}", seg(&subject)),
            };
            let v = c.call(Method::DELETE, &path, None).await?;
            Ok(Outcome::ok(vec![text(&v, "message").to_string()]))
        }
        UserCommand::List {
            namespace,
            pick,
            all,
            key,
        } => {
            let v = c
                .call(
                    Method::GET,
                    &format!("/namespaces/{}/identities", seg(&namespace)),
                    None,
                )
                .await?;
            let rows = v.as_array().cloned().unwrap_or_default();
            let n = match (all, pick) {
                (false, Some(p)) => usize::try_from(p).unwrap_or(usize::MAX),
                _ => usize::MAX,
            };
            Ok(Outcome::ok(
                rows.iter()
                    .take(n)
                    .map(|r| {
                        if key {
                            compact(r)
                        } else {
                            format!("{}\t{}", compact(r), text(r, "subject"))
                        }
                    })
                    .collect(),
            ))
        }
        UserCommand::Whois { authkey } => {
            let v = c
                .call(Method::POST, "/whois", Some(json!({ "auth": authkey.0 })))
                .await?;
            Ok(Outcome::ok(vec![
                format!("subject: {}", text(&v, "subject")),
                format!("namespace: {}", text(&v, "namespace")),
            ]))
        }
        UserCommand::Block { subjects } => Ok(set_blocked(c, &subjects, "block").await),
        UserCommand::Unblock { subjects } => Ok(set_blocked(c, &subjects, "unblock").await),
    }
}

/// Blocks or unblocks each subject in turn; the exit code is the number that failed (as
/// `wskadmin`), or 3 if the platform could not be reached at all.
async fn set_blocked(c: &Client, subjects: &[String], verb: &str) -> Outcome {
    let mut o = Outcome::default();
    let mut failed: u32 = 0;
    for s in subjects {
        match c
            .call(Method::POST, &format!("/subjects/{}/{verb}", seg(s)), None)
            .await
        {
            Ok(v) => o.out.push(text(&v, "message").to_string()),
            Err(f) if f.code == 3 => {
                o.err.push(f.message);
                o.code = 3;
                return o;
            }
            Err(f) => {
                o.err.push(f.message);
                failed += 1;
            }
        }
    }
    o.code = u8::try_from(failed).unwrap_or(u8::MAX);
    o
}

async fn limits(c: &Client, command: LimitsCommand) -> Result<Outcome, Failure> {
    match command {
        LimitsCommand::Set {
            namespace,
            invocations_per_minute,
            concurrent_invocations,
            fires_per_minute,
            allowed_kinds,
            store_activations,
        } => {
            let mut body = serde_json::Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            };
            put(
                "invocationsPerMinute",
                invocations_per_minute.map(|n| json!(n)),
            );
            put(
                "concurrentInvocations",
                concurrent_invocations.map(|n| json!(n)),
            );
            put("firesPerMinute", fires_per_minute.map(|n| json!(n)));
            put("allowedKinds", allowed_kinds.map(|k| json!(k)));
            put("storeActivations", store_activations.map(|b| json!(b)));
            let v = c
                .call(
                    Method::PUT,
                    &format!("/namespaces/{}/limits", seg(&namespace)),
                    Some(Value::Object(body)),
                )
                .await?;
            Ok(Outcome::ok(vec![text(&v, "message").to_string()]))
        }
        LimitsCommand::Get { namespace } => {
            let v = c
                .call(
                    Method::GET,
                    &format!("/namespaces/{}/limits", seg(&namespace)),
                    None,
                )
                .await?;
            let l = &v["limits"];
            if l.is_null() {
                return Ok(Outcome::ok(vec![
                    faas_http::admin::ops::messages::DEFAULT_LIMITS.to_string(),
                ]));
            }
            // `wskadmin`'s order and format.
            let mut lines = Vec::new();
            for k in [
                "concurrentInvocations",
                "invocationsPerMinute",
                "firesPerMinute",
            ] {
                if let Some(n) = l.get(k).and_then(Value::as_u64) {
                    lines.push(format!("{k} = {n}"));
                }
            }
            if let Some(kinds) = l.get("allowedKinds").and_then(Value::as_array) {
                let kinds: Vec<&str> = kinds.iter().filter_map(Value::as_str).collect();
                lines.push(format!("allowedKinds = {}", kinds.join(", ")));
            }
            if let Some(b) = l.get("storeActivations").and_then(Value::as_bool) {
                lines.push(format!("storeActivations = {b}"));
            }
            Ok(Outcome::ok(lines))
        }
        LimitsCommand::Delete { namespace } => {
            let v = c
                .call(
                    Method::DELETE,
                    &format!("/namespaces/{}/limits", seg(&namespace)),
                    None,
                )
                .await?;
            Ok(Outcome::ok(vec![text(&v, "message").to_string()]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_segments() {
        let Ok(Target::Remote {
            authority,
            host,
            port,
            base,
        }) = remote("http://127.0.0.1:3233/")
        else {
            panic!("parsed")
        };
        assert_eq!(
            (authority.as_str(), host.as_str(), port, base.as_str()),
            ("127.0.0.1:3233", "127.0.0.1", 3233, "")
        );
        let Ok(Target::Remote {
            host, port, base, ..
        }) = remote("http://[::1]/faas")
        else {
            panic!("parsed")
        };
        assert_eq!((host.as_str(), port, base.as_str()), ("::1", 80, "/faas"));
        for bad in ["https://h/", "ftp://h", "nonsense url", "http://u:p@h/"] {
            assert_eq!(remote(bad).err().map(|f| f.code), Some(2), "{bad}");
        }
        assert_eq!(seg("a b@c&d/e"), "a%20b%40c%26d%2Fe");
        assert_eq!(seg("whisk.system"), "whisk.system");
    }

    #[test]
    fn statuses_map_to_wskadmin_exit_codes() {
        let code = |s| Failure::from_status(s, String::new()).code;
        assert_eq!(code(StatusCode::BAD_REQUEST), 2);
        assert_eq!(code(StatusCode::NOT_FOUND), 1);
        assert_eq!(code(StatusCode::CONFLICT), 1);
        assert_eq!(code(StatusCode::UNAUTHORIZED), 3);
        assert_eq!(code(StatusCode::SERVICE_UNAVAILABLE), 3);
        assert!(parse_bool("Yes").unwrap() && !parse_bool("false").unwrap());
        assert!(parse_bool("maybe").is_err());
        assert_eq!(format!("{:?}", SecretArg("k".into())), "<redacted>");
    }
}
