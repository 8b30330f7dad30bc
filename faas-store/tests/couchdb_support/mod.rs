//! Helpers shared by the CouchDB tests: the server named by `FAAS_TEST_COUCHDB_URL`, databases
//! of their own per test process (deleted when the store is dropped, and swept when a crashed
//! run left them behind), raw HTTP to the server, and a fault-injecting HTTP proxy.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use faas_core::Result;
use faas_core::activation::{Activation, ActivationId};
use faas_core::entity::{Entity, EntityKind};
use faas_core::identity::{AuthKey, Identity, Subject};
use faas_core::limits::UserLimits;
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::store::{ActivationQuery, ListQuery, Revision, Store, Versioned};
use faas_store::couchdb::{CouchDbBuilder, CouchDbStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The variable naming the test server (`couchdb://127.0.0.1:5984/`).
pub const URL_VAR: &str = "FAAS_TEST_COUCHDB_URL";

/// The test server's URL, if configured.
pub fn server_url() -> Option<String> {
    std::env::var(URL_VAR).ok().filter(|s| !s.trim().is_empty())
}

/// The server as an `http://` URL ending in `/`, and its credentials.
pub fn http_base(url: &str) -> (reqwest::Url, Option<(String, String)>) {
    let url = url.trim();
    let http = match url.split_once("://") {
        Some(("couchdb", rest)) => format!("http://{rest}"),
        _ => url.to_string(),
    };
    let mut u = reqwest::Url::parse(&http).expect("FAAS_TEST_COUCHDB_URL must be a URL");
    let creds = (!u.username().is_empty()).then(|| {
        (
            u.username().to_string(),
            u.password().unwrap_or_default().to_string(),
        )
    });
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_path("/");
    (u, creds)
}

/// A database prefix no other test process uses: `faas_test_<pid>_<n>_`.
pub fn unique_prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "faas_test_{}_{:x}{}_",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Raw HTTP against the test server (paths relative to its root); `(status, JSON body)`.
pub async fn raw(method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = server_url().expect("FAAS_TEST_COUCHDB_URL");
    raw_at(&url, method, path, body).await
}

/// Raw HTTP against the server at `url`.
pub async fn raw_at(
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (base, creds) = http_base(url);
    // reqwest may be built with rustls and no provider (cargo's feature unification with the
    // `faas` CLI): install one, as the store itself does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = reqwest::Client::new()
        .request(method, base.join(path).expect("path"))
        .timeout(Duration::from_secs(20));
    if let Some((u, p)) = creds {
        req = req.basic_auth(u, Some(p));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request to the test server");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Deletes databases that test processes which are gone left behind (a crashed or killed run).
async fn sweep_stale(url: &str) {
    let (_, dbs) = raw_at(url, reqwest::Method::GET, "_all_dbs", None).await;
    for name in dbs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let Some(rest) = name.strip_prefix("faas_test_") else {
            continue;
        };
        let pid = rest.split('_').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            raw_at(url, reqwest::Method::DELETE, name, None).await;
        }
    }
}

/// A builder for the test server with `prefix`, or `None` when no server is configured.
pub async fn builder(prefix: &str) -> Option<CouchDbBuilder> {
    let url = server_url()?;
    static SWEPT: OnceLock<()> = OnceLock::new();
    if SWEPT.set(()).is_ok() {
        sweep_stale(&url).await;
    }
    Some(CouchDbBuilder::new().with_url(url).with_prefix(prefix))
}

/// A store on the test server in databases of its own, deleted when the store is dropped.
pub async fn open() -> Option<Arc<TestStore>> {
    let prefix = unique_prefix();
    let store = builder(&prefix)
        .await?
        .build()
        .await
        .expect("connect to the test server");
    Some(Arc::new(TestStore::new(store)))
}

/// A [`CouchDbStore`] that deletes its databases when dropped.
#[derive(Debug)]
pub struct TestStore {
    pub store: CouchDbStore,
    cleanup: Cleanup,
}

impl TestStore {
    pub fn new(store: CouchDbStore) -> Self {
        let dbs = store.database_names().map(str::to_string).to_vec();
        Self {
            store,
            cleanup: Cleanup { dbs },
        }
    }
}

#[derive(Debug)]
struct Cleanup {
    dbs: Vec<String>,
}

impl Drop for Cleanup {
    // Drop cannot await, and it may run on a single-threaded runtime: delete from a thread
    // with a runtime of its own, and wait for it (bounded by the request timeouts).
    fn drop(&mut self) {
        let Some(url) = server_url() else { return };
        let dbs = std::mem::take(&mut self.dbs);
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                for db in dbs {
                    raw_at(&url, reqwest::Method::DELETE, &db, None).await;
                }
            });
        });
        let _ = done.join();
    }
}

#[async_trait]
impl Store for TestStore {
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>> {
        self.store.get_entity(id).await
    }
    async fn put_entity(&self, entity: &Entity, rev: Option<&Revision>) -> Result<Revision> {
        self.store.put_entity(entity, rev).await
    }
    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()> {
        self.store.delete_entity(id, rev).await
    }
    async fn list_entities(
        &self,
        path: &EntityPath,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<Vec<Entity>> {
        self.store.list_entities(path, kind, query).await
    }
    async fn count_entities(&self, path: &EntityPath, kind: EntityKind) -> Result<u64> {
        self.store.count_entities(path, kind).await
    }
    async fn put_activation(&self, activation: &Activation) -> Result<bool> {
        self.store.put_activation(activation).await
    }
    async fn get_activation(&self, ns: &EntityName, id: &ActivationId) -> Result<Activation> {
        self.store.get_activation(ns, id).await
    }
    async fn list_activations(
        &self,
        ns: &EntityName,
        q: &ActivationQuery,
    ) -> Result<Vec<Activation>> {
        self.store.list_activations(ns, q).await
    }
    async fn count_activations(&self, ns: &EntityName, q: &ActivationQuery) -> Result<u64> {
        self.store.count_activations(ns, q).await
    }
    async fn get_subject(&self, subject: &str) -> Result<Versioned<Subject>> {
        self.store.get_subject(subject).await
    }
    async fn put_subject(&self, subject: &Subject, rev: Option<&Revision>) -> Result<Revision> {
        self.store.put_subject(subject, rev).await
    }
    async fn delete_subject(&self, subject: &str, rev: &Revision) -> Result<()> {
        self.store.delete_subject(subject, rev).await
    }
    async fn list_subjects(&self, ns: &EntityName) -> Result<Vec<Subject>> {
        self.store.list_subjects(ns).await
    }
    async fn list_namespaces(&self) -> Result<Vec<EntityName>> {
        self.store.list_namespaces().await
    }
    async fn find_identity(&self, key: &AuthKey) -> Result<Identity> {
        self.store.find_identity(key).await
    }
    async fn identity_for_namespace(&self, ns: &EntityName) -> Result<Identity> {
        self.store.identity_for_namespace(ns).await
    }
    async fn get_limits(&self, ns: &EntityName) -> Result<UserLimits> {
        self.store.get_limits(ns).await
    }
    async fn put_limits(&self, ns: &EntityName, limits: &UserLimits) -> Result<()> {
        self.store.put_limits(ns, limits).await
    }
    async fn delete_limits(&self, ns: &EntityName) -> Result<()> {
        self.store.delete_limits(ns).await
    }

    async fn get_document(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<faas_core::store::Versioned<serde_json::Value>> {
        self.store.get_document(collection, id).await
    }
    async fn put_document(
        &self,
        collection: &str,
        id: &str,
        value: &serde_json::Value,
        rev: Option<&faas_core::store::Revision>,
    ) -> Result<faas_core::store::Revision> {
        self.store.put_document(collection, id, value, rev).await
    }
    async fn delete_document(
        &self,
        collection: &str,
        id: &str,
        rev: &faas_core::store::Revision,
    ) -> Result<()> {
        self.store.delete_document(collection, id, rev).await
    }
    async fn list_documents(&self, collection: &str) -> Result<Vec<faas_core::store::Document>> {
        self.store.list_documents(collection).await
    }
}

// ---------------------------------------------------------------------------------------------
// Fault injection
// ---------------------------------------------------------------------------------------------

/// What the proxy does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and relay the answer.
    Pass,
    /// Answer `500` with a CouchDB-style JSON error, without forwarding.
    Status500,
    /// Close the connection without forwarding or answering.
    Close,
    /// Forward it (the server applies it), then close without relaying the answer.
    ForwardThenClose,
}

/// A fault for the next `times` requests whose `METHOD path` contains `needle`.
#[derive(Debug, Clone)]
struct Rule {
    needle: String,
    fault: Fault,
    times: usize,
}

/// An HTTP proxy on 127.0.0.1 in front of the real server, injecting faults by rule. It
/// handles one request per connection and tells both sides to close afterwards.
#[derive(Debug)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    rules: Arc<Mutex<VecDeque<Rule>>>,
    /// Every request seen, as `METHOD path`.
    pub seen: Arc<Mutex<Vec<String>>>,
    pub injected: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy to the server at `url` (`couchdb://` or `http://`).
    pub async fn start(url: &str) -> Self {
        let (base, _) = http_base(url);
        let upstream = format!(
            "{}:{}",
            base.host_str().unwrap_or("127.0.0.1"),
            base.port_or_known_default().unwrap_or(5984)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let rules = Arc::new(Mutex::new(VecDeque::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let injected = Arc::new(AtomicUsize::new(0));
        let (r, s, i) = (Arc::clone(&rules), Arc::clone(&seen), Arc::clone(&injected));
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (r, s, i, up) = (
                    Arc::clone(&r),
                    Arc::clone(&s),
                    Arc::clone(&i),
                    upstream.clone(),
                );
                tokio::spawn(async move {
                    let _ = handle(conn, &up, &r, &s, &i).await;
                });
            }
        });
        Self {
            addr,
            rules,
            seen,
            injected,
            task,
        }
    }

    /// The store URL for this proxy (`couchdb://127.0.0.1:<port>/`), with the credentials of
    /// the test server.
    pub fn url(&self) -> String {
        let (_, creds) = http_base(&server_url().unwrap_or_default());
        match creds {
            Some((u, p)) => format!("couchdb://{u}:{p}@{}/", self.addr),
            None => format!("couchdb://{}/", self.addr),
        }
    }

    /// Injects `fault` into the next `times` requests whose `METHOD path` contains `needle`.
    pub fn inject(&self, needle: &str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push_back(Rule {
            needle: needle.to_string(),
            fault,
            times,
        });
    }

    /// Drops every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// How many requests so far contained `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

async fn read_request(conn: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..].to_vec();
    Ok(Some((head, body)))
}

async fn handle(
    mut conn: TcpStream,
    upstream: &str,
    rules: &Mutex<VecDeque<Rule>>,
    seen: &Mutex<Vec<String>>,
    injected: &AtomicUsize,
) -> std::io::Result<()> {
    let Some((head, body)) = read_request(&mut conn).await? else {
        return Ok(());
    };
    let line = head.lines().next().unwrap_or_default().to_string();
    let what = line
        .rsplit_once(' ')
        .map_or(line.as_str(), |(l, _)| l)
        .to_string();
    seen.lock().unwrap().push(what.clone());
    let fault = {
        let mut rules = rules.lock().unwrap();
        let hit = rules
            .iter_mut()
            .find(|r| r.times > 0 && what.contains(&r.needle));
        match hit {
            Some(r) => {
                r.times -= 1;
                r.fault
            }
            None => Fault::Pass,
        }
    };
    rules.lock().unwrap().retain(|r| r.times > 0);
    if fault != Fault::Pass {
        injected.fetch_add(1, Ordering::Relaxed);
    }
    match fault {
        Fault::Close => return Ok(()),
        Fault::Status500 => {
            let body =
                br#"{"error":"internal_server_error","reason":"injected by the test proxy"}"#;
            let resp = format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(resp.as_bytes()).await?;
            conn.write_all(body).await?;
            return conn.shutdown().await;
        }
        Fault::Pass | Fault::ForwardThenClose => {}
    }
    // Forward with `Connection: close`, read the whole answer.
    let mut up = TcpStream::connect(upstream).await?;
    let mut out = String::new();
    for l in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes()).await?;
    up.write_all(&body).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    if fault == Fault::ForwardThenClose {
        return Ok(());
    }
    conn.write_all(&answer).await?;
    conn.shutdown().await
}
