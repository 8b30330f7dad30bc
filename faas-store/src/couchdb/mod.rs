//! [`CouchDbStore`]: a durable [`Store`] on CouchDB (or any server speaking its API, such as
//! `pouchdb-server`), laid out the way OpenWhisk lays out its databases, so the two can share
//! data and tools.
//!
//! # Layout (OpenWhisk's databases and views)
//!
//! | database | holds | document id |
//! |---|---|---|
//! | `<prefix>subjects` | subjects and namespace limits | subject name; `ns/limits` |
//! | `<prefix>whisks` | actions, packages, triggers, rules | `ns/name`, `ns/pkg/name` |
//! | `<prefix>activations` | activation records | `ns/<activationId>` |
//!
//! Documents carry `entityType`, `_id` and `_rev` beside OpenWhisk's JSON. Lists, counts and
//! identity lookups run on OpenWhisk's design documents and views (see the table in the
//! `design` module source), newest first, with `_count` reduces for counts. The store creates
//! missing databases and design documents on start-up and replaces a design document whose
//! views differ from this version's, so a rolling upgrade brings its views along.
//!
//! # Configuration
//!
//! By URL, `couchdb://user:pass@127.0.0.1:5984/?prefix=whisk_local_`, through
//! [`CouchDbBuilder`] (`with_*` setters, [`CouchDbBuilder::from_env`] reading `FAAS_COUCHDB_*`).
//! Credentials never appear in `Debug` output, errors or logs.
//!
//! # Failures
//!
//! | the server... | the store |
//! |---|---|
//! | answers 404 for a document | `NotFound` (create/update/delete keep the [`Store`] contract) |
//! | answers 409 | `AlreadyExists` on create, `Conflict` on a stale revision |
//! | refuses the credentials (401/403) | `Unavailable`, naming the credentials |
//! | answers 5xx, times out, or closes the connection | retries with jittered exponential backoff for up to the retry timeout (5 s by default), then a retryable `Backend` error |
//! | lost its database (deleted under the running store) | recreates the database and its design documents, logs a warning, and carries on |
//! | holds a document this store cannot read | a non-retryable `Backend` error naming database, document and problem; lists skip such documents with a warning |
//!
//! Retrying stops starting new attempts when the retry timeout is used up, so an operation
//! takes at most about the retry timeout plus one request timeout (10 s by default).
//!
//! A write is reported done only when the server confirmed it. When an attempt failed in a
//! way that may still have applied it (the answer was lost) and the retry then meets a
//! conflict, the store reads the document back: if it holds exactly what was written, the
//! write is reported done with the stored revision; otherwise the conflict stands.
//!
//! Databases are recreated *empty*: what was in a deleted database is gone with it, and a
//! deleted subjects database means no key authenticates until subjects are written again
//! (the platform writes its guest subject on start-up).
//!
//! # Activation records
//!
//! [`put_activation`](Store::put_activation) goes through a batch writer: concurrent records
//! share one `_bulk_docs` request (those arriving within `batch_linger_ms`, up to
//! `batch_size`, with `batch_concurrency` requests in flight), each caller waiting only for
//! the server's answer about its own record.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use faas_core::Store;
//! use faas_store::couchdb::CouchDbStore;
//!
//! # async fn run() -> faas_core::Result<()> {
//! let store: Arc<dyn Store> = Arc::new(
//!     CouchDbStore::builder()
//!         .with_url("couchdb://127.0.0.1:5984/?prefix=whisk_local_")
//!         .build()
//!         .await?,
//! );
//! # Ok(()) }
//! ```

mod bulk;
mod client;
mod config;
mod design;
mod layout;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use couch_rs::types::query::QueryParams;
use couch_rs::types::view::ViewItem;
use faas_core::activation::{Activation, ActivationId};
use faas_core::entity::{Entity, EntityKind};
use faas_core::identity::{AuthKey, Identity, Namespace, Subject};
use faas_core::limits::UserLimits;
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::store::{
    ActivationQuery, Document, ListQuery, Revision, Store, Versioned, check_document_key,
};
use faas_core::{Error, Result};
use reqwest::Method;
use serde_json::{Value, json};

use bulk::{BulkWriter, Job};
pub use client::CouchDbError;
use client::{Attempt, Couch, Failure, classify, duplicate, layout_error, to_error};

use config::CouchDbConfig;
pub use config::{CouchDbBuilder, CouchDbConfigKey, DEFAULT_PREFIX};
use design::DesignDoc;

/// A durable [`Store`] on CouchDB with OpenWhisk's database layout; see the
/// [module documentation](self).
///
/// Built with [`CouchDbStore::builder`] (or [`CouchDbBuilder::from_env`]), shared as
/// `Arc<dyn Store>`. Cloning is cheap and clones share the connection pool and batch writer.
#[derive(Clone)]
pub struct CouchDbStore {
    inner: Arc<Inner>,
    writer: BulkWriter,
}

/// One database and the design documents it must hold.
pub(crate) struct Db {
    name: String,
    handle: couch_rs::database::Database,
    design: Vec<DesignDoc>,
}

pub(crate) struct Inner {
    couch: Couch,
    url: String,
    username: Option<String>,
    prefix: String,
    subjects: Db,
    whisks: Db,
    activations: Db,
    /// Documents of platform components (`Store::put_document`), ids `collection/id`.
    documents: Db,
}

impl fmt::Debug for CouchDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CouchDbStore")
            .field("url", &self.inner.url)
            .field("authenticated", &self.inner.username.is_some())
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for CouchDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CouchDbStore({}, prefix {})",
            self.inner.url, self.inner.prefix
        )
    }
}

/// Largest `skip`/`limit` sent to the server (JavaScript's largest safe integer).
const MAX_PAGE: u64 = (1 << 53) - 1;

impl CouchDbStore {
    /// A builder; see [`CouchDbBuilder`].
    pub fn builder() -> CouchDbBuilder {
        CouchDbBuilder::new()
    }

    /// The names of the three databases: subjects, whisks (entities), activations.
    pub fn database_names(&self) -> [&str; 3] {
        [
            &self.inner.subjects.name,
            &self.inner.whisks.name,
            &self.inner.activations.name,
        ]
    }

    /// The name of the database of documents of platform components (the alarms provider's
    /// schedules and lease): `<prefix>documents`.
    pub fn documents_database_name(&self) -> &str {
        &self.inner.documents.name
    }

    /// **Deletes the four databases and everything in them.** For tests and tear-down; the
    /// store recreates them (empty) on its next use.
    pub async fn delete_databases(&self) -> Result<()> {
        let couch = &self.inner.couch;
        let names = self.database_names();
        for name in names.into_iter().chain([self.documents_database_name()]) {
            couch
                .retry("DELETE database", |_| couch.delete_database(name))
                .await
                .map_err(|f| to_error(f, "DELETE", name))?;
        }
        Ok(())
    }

    pub(crate) async fn connect(config: CouchDbConfig) -> Result<Self> {
        let couch = Couch::new(&config)?;
        let url = config.base.to_string();
        couch
            .retry("GET /", |_| couch.send(couch.req(Method::GET, "")))
            .await
            .map_err(|f| match f {
                Failure::Transport { .. } | Failure::Protocol { .. } => {
                    Error::unavailable(format!(
                        "CouchDB at {url} is not reachable: {}",
                        faas_core::Chain(&CouchDbError::new("GET", "/", f))
                    ))
                }
                f => to_error(f, "GET", "/"),
            })?;
        let db = |suffix: &str, design| {
            let name = format!("{}{suffix}", config.prefix);
            Db {
                handle: couch.database(&name),
                name,
                design,
            }
        };
        let inner = Inner {
            subjects: db("subjects", design::subjects()),
            whisks: db("whisks", design::whisks()),
            activations: db("activations", design::activations()),
            documents: db("documents", Vec::new()),
            couch: couch.clone(),
            url,
            username: config.username.clone(),
            prefix: config.prefix.clone(),
        };
        for db in [
            &inner.subjects,
            &inner.whisks,
            &inner.activations,
            &inner.documents,
        ] {
            inner
                .ensure(db)
                .await
                .map_err(|f| to_error(f, "prepare database", &db.name))?;
        }
        let inner = Arc::new(inner);
        let writer = BulkWriter::start(
            Arc::clone(&inner),
            config.batch_size,
            config.batch_concurrency,
            config.batch_linger,
        );
        if let Some(ttl) = config.activation_ttl {
            tokio::spawn(expire_loop(Arc::downgrade(&inner), ttl));
        }
        tracing::info!(url = %inner.url, prefix = %inner.prefix, "couchdb: store ready");
        Ok(Self { inner, writer })
    }

    /// Deletes the activation records whose `start` is before `cutoff_ms` (milliseconds since
    /// the epoch), through the `activations/byDate` view, `batch` at a time; how many were
    /// deleted. The activation TTL (`activation_ttl_s`) runs this periodically.
    pub async fn expire_activations(&self, cutoff_ms: u64, batch: usize) -> Result<usize> {
        expire(&self.inner, cutoff_ms, batch.max(1))
            .await
            .map_err(|f| to_error(f, "expire activations", &self.inner.activations.name))
    }
}

/// Records deleted per round of the TTL sweep.
const EXPIRE_BATCH: usize = 500;

/// The TTL sweep: every minute (or every `ttl`, if shorter), deletes records older than
/// `ttl`; ends when the store is gone.
async fn expire_loop(inner: std::sync::Weak<Inner>, ttl: std::time::Duration) {
    let every = ttl.min(std::time::Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let cutoff = faas_core::entity::now_ms().saturating_sub(ttl.as_millis() as u64);
        // Whole batches until the old records are gone (bounded per round).
        for _ in 0..100 {
            match expire(&inner, cutoff, EXPIRE_BATCH).await {
                Ok(n) if n == EXPIRE_BATCH => continue,
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(deleted = n, "couchdb: expired activation records");
                    }
                    break;
                }
                Err(f) => {
                    tracing::warn!(error = %CouchDbError::new("expire", "activations", f), "couchdb: activation TTL sweep failed");
                    break;
                }
            }
        }
    }
}

/// One round of deletions: up to `batch` records with `start < cutoff_ms`.
async fn expire(inner: &Inner, cutoff_ms: u64, batch: usize) -> Result<usize, Failure> {
    let couch = &inner.couch;
    let db = &inner.activations.name;
    let view = format!("{}/_design/activations/_view/byDate", client::segment(db));
    // `byDate` emits `start → [_id, _rev]`; `endkey` is inclusive, hence `cutoff - 1`.
    let endkey = cutoff_ms.saturating_sub(1).to_string();
    let limit = batch.to_string();
    let (_, rows) = couch
        .retry("GET byDate", |_| {
            couch.send(
                couch
                    .req(Method::GET, &view)
                    .query(&[("endkey", endkey.as_str()), ("limit", limit.as_str())]),
            )
        })
        .await?;
    let docs: Vec<serde_json::Value> = rows
        .get("rows")
        .and_then(serde_json::Value::as_array)
        .map(|rows| {
            rows.iter()
                .filter_map(|r| {
                    let v = r.get("value")?.as_array()?;
                    Some(serde_json::json!({
                        "_id": v.first()?.as_str()?,
                        "_rev": v.get(1)?.as_str()?,
                        "_deleted": true,
                    }))
                })
                .collect()
        })
        .unwrap_or_default();
    if docs.is_empty() {
        return Ok(0);
    }
    let n = docs.len();
    let body = serde_json::json!({ "docs": docs });
    let path = format!("{}/_bulk_docs", client::segment(db));
    couch
        .retry("POST _bulk_docs", |_| {
            couch.send(couch.req(Method::POST, &path).json(&body))
        })
        .await?;
    Ok(n)
}

impl Inner {
    /// Creates `db` if it is missing and writes its design documents where they are missing
    /// or differ.
    async fn ensure(&self, db: &Db) -> Result<(), Failure> {
        let couch = &self.couch;
        let exists = couch
            .retry("HEAD database", |_| couch.database_exists(&db.name))
            .await?;
        if !exists {
            couch
                .retry("PUT database", |_| couch.create_database(&db.name))
                .await?;
            tracing::info!(database = %db.name, "couchdb: created database");
        }
        for d in &db.design {
            self.ensure_design(db, d).await?;
        }
        Ok(())
    }

    async fn ensure_design(&self, db: &Db, d: &DesignDoc) -> Result<(), Failure> {
        let couch = &self.couch;
        let id = d.id();
        // A few rounds: other processes may be writing the same document at start-up.
        for _ in 0..5 {
            let stored = couch
                .retry("GET design", |_| couch.get_doc(&db.name, &id))
                .await?;
            let mut doc = d.doc();
            match &stored {
                Some(s) if d.matches(s) => return Ok(()),
                Some(s) => {
                    doc["_rev"] = s.get("_rev").cloned().unwrap_or(Value::Null);
                    tracing::info!(database = %db.name, design = %id, "couchdb: upgrading design document");
                }
                None => {}
            }
            match couch
                .retry("PUT design", |_| couch.put_doc(&db.name, &id, &doc))
                .await
            {
                Ok(_) => return Ok(()),
                Err(f) if f.status() == Some(409) => continue,
                Err(f) => return Err(f),
            }
        }
        Err(Failure::Status {
            status: 409,
            error: "conflict".into(),
            reason: format!("design document {id} kept changing while being written"),
        })
    }

    /// Runs `op` with retries; if it finds the database (or, with `views`, a design document)
    /// missing, recreates them and runs it once more.
    async fn on_db<T, F, Fut>(
        &self,
        db: &Db,
        what: &str,
        views: bool,
        mut op: F,
    ) -> Result<T, Failure>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        match self.couch.retry(what, &mut op).await {
            Err(f)
                if f.is_missing_database()
                    || (views
                        && (f.status() == Some(404) || matches!(f, Failure::Protocol { .. }))) =>
            {
                tracing::warn!(database = %db.name, failure = %f,
                    "couchdb: database or design document missing; recreating it");
                self.ensure(db).await?;
                self.couch.retry(what, op).await
            }
            other => other,
        }
    }

    /// Queries view `ddoc/view` of `db` through `couch_rs`.
    async fn query(
        &self,
        db: &Db,
        ddoc: &str,
        view: &str,
        params: QueryParams<Value>,
    ) -> Result<Vec<ViewItem<Value, Value, Value>>, Failure> {
        self.on_db(db, "query view", true, |_| {
            let params = params.clone();
            async move {
                db.handle
                    .query::<Value, Value, Value>(ddoc, view, Some(params))
                    .await
                    .map(|c| c.rows)
                    .map_err(classify)
            }
        })
        .await
    }

    /// The `_count` of a view range.
    async fn count(
        &self,
        db: &Db,
        ddoc: &str,
        view: &str,
        mut params: QueryParams<Value>,
    ) -> Result<u64, Failure> {
        params.reduce = Some(true);
        let rows = self.query(db, ddoc, view, params).await?;
        Ok(rows.first().and_then(|r| r.value.as_u64()).unwrap_or(0))
    }

    /// Reads a document; `None` if missing.
    async fn get(&self, db: &Db, id: &str) -> Result<Option<Value>, Failure> {
        self.on_db(db, "GET", false, |_| self.couch.get_doc(&db.name, id))
            .await
    }

    /// Writes `doc` under `id` whatever is there (read the revision, write; again on conflict).
    async fn upsert(&self, db: &Db, id: &str, mut doc: Value) -> Result<()> {
        let target = format!("{}/{id}", db.name);
        for _ in 0..8 {
            let current = self
                .get(db, id)
                .await
                .map_err(|f| to_error(f, "GET", &target))?;
            if let Some(o) = doc.as_object_mut() {
                o.insert("_id".into(), json!(id));
                match current.as_ref().and_then(|c| c.get("_rev")) {
                    Some(rev) => o.insert("_rev".into(), rev.clone()),
                    None => o.remove("_rev"),
                };
            }
            let written = self
                .on_db(db, "PUT", false, |_| self.couch.put_doc(&db.name, id, &doc))
                .await;
            match written {
                Ok(_) => return Ok(()),
                // Someone else wrote meanwhile (or our lost write landed): read and write again.
                Err(f) if f.status() == Some(409) => continue,
                Err(f) => return Err(to_error(f, "PUT", &target)),
            }
        }
        Err(Error::conflict(id))
    }

    /// Writes a batch of activation records with one `_bulk_docs`; answers every job.
    pub(crate) async fn write_activations(&self, jobs: Vec<Job>) {
        let db = &self.activations;
        let docs: Vec<Value> = jobs.iter().map(|j| j.doc.clone()).collect();
        let result = self
            .on_db(db, "POST _bulk_docs", true, |attempt| {
                let mut docs = docs.clone();
                async move {
                    match db.handle.bulk_docs(&mut docs).await {
                        Ok(results) => Ok((results, attempt)),
                        // `couch_rs` reads a missing database's 404 as an unexpected answer:
                        // tell that apart now rather than after retrying for nothing.
                        Err(e) => match classify(e) {
                            f @ Failure::Protocol { .. } => {
                                match self.couch.database_exists(&db.name).await {
                                    Ok(false) => Err(Failure::missing_database()),
                                    _ => Err(f),
                                }
                            }
                            f => Err(f),
                        },
                    }
                }
            })
            .await;
        match result {
            Ok((results, attempt)) => {
                for (job, r) in jobs.into_iter().zip(results) {
                    let answer = match r {
                        Ok(_) => Ok(true),
                        Err(e) => {
                            let f = classify(e);
                            if f.status() == Some(409) {
                                self.conflicting_activation(&job, attempt).await
                            } else {
                                Err(to_error(
                                    f,
                                    "POST _bulk_docs",
                                    &format!("{}/{}", db.name, job.id),
                                ))
                            }
                        }
                    };
                    let _ = job.reply.send(answer);
                }
            }
            Err(f) => {
                let e = to_error(f, "POST _bulk_docs", &db.name);
                for job in jobs {
                    let _ = job.reply.send(Err(duplicate(&e)));
                }
            }
        }
    }

    /// A record's id existed. If an earlier attempt of this batch may have written it (its
    /// answer was lost), the stored record decides: ours → written, another → not.
    async fn conflicting_activation(&self, job: &Job, attempt: Attempt) -> Result<bool> {
        if !attempt.ambiguous {
            return Ok(false);
        }
        let db = &self.activations;
        let stored = self
            .get(db, &job.id)
            .await
            .map_err(|f| to_error(f, "GET", &format!("{}/{}", db.name, job.id)))?;
        Ok(stored.is_some_and(|s| layout::same_activation(&s, &job.doc)))
    }

    /// Creates (`rev = None`) or replaces (at `rev`) document `id` with `body` (which carries
    /// `_rev` for a replacement), with the [`Store`] contract's answers: `AlreadyExists` when a
    /// create meets an existing document, `Conflict` when a replacement meets another revision
    /// or none. An earlier attempt whose answer was lost is recognised by its content.
    async fn put_at(
        &self,
        db: &Db,
        id: &str,
        body: &Value,
        rev: Option<&Revision>,
    ) -> Result<Revision> {
        let next_generation = rev.and_then(|r| layout::generation(&r.0)).map(|g| g + 1);
        let written = self
            .on_db(db, "PUT", false, move |attempt| async move {
                match self.couch.put_doc(&db.name, id, body).await {
                    Err(f) if f.status() == Some(409) && attempt.ambiguous => {
                        // An earlier attempt may have landed: is the stored document ours?
                        let stored = self.couch.get_doc(&db.name, id).await?;
                        let stored_rev = stored
                            .as_ref()
                            .filter(|s| layout::same_content(s, body))
                            .and_then(|s| s.get("_rev").and_then(Value::as_str))
                            .filter(|r| {
                                next_generation.is_none_or(|g| layout::generation(r) == Some(g))
                            })
                            .map(str::to_string);
                        stored_rev.ok_or(f)
                    }
                    other => other,
                }
            })
            .await;
        match written {
            Ok(rev) => Ok(Revision(rev)),
            Err(f) if f.status() == Some(409) => Err(match rev {
                None => Error::AlreadyExists { id: id.to_string() },
                Some(_) => Error::conflict(id),
            }),
            Err(f) => Err(to_error(f, "PUT", &format!("{}/{id}", db.name))),
        }
    }

    /// Deletes document `id` at `rev`: `Conflict` for another revision, `NotFound` when it
    /// does not exist.
    async fn delete_at(&self, db: &Db, id: &str, rev: &Revision) -> Result<()> {
        let target = format!("{}/{id}", db.name);
        let deleted = self
            .on_db(db, "DELETE", false, move |attempt| async move {
                match self.couch.delete_doc(&db.name, id, &rev.0).await {
                    Err(f) if matches!(f.status(), Some(404 | 409)) && attempt.ambiguous => {
                        // An earlier attempt may have deleted it (the tombstone then makes
                        // this one a 404, or a 409 on servers that compare revisions first).
                        match self.couch.get_doc(&db.name, id).await? {
                            None => Ok(()),
                            Some(_) => Err(f),
                        }
                    }
                    other => other,
                }
            })
            .await;
        match deleted {
            Ok(()) => Ok(()),
            // A stale revision: CouchDB answers 409, pouchdb-server 404 — and both answer so
            // for a document that was deleted since. Whether it exists now decides.
            Err(f) if matches!(f.status(), Some(404 | 409)) => match self.get(db, id).await {
                Ok(Some(_)) => Err(Error::conflict(id)),
                Ok(None) => Err(Error::not_found(id)),
                Err(f) => Err(to_error(f, "GET", &target)),
            },
            Err(f) => Err(to_error(f, "DELETE", &target)),
        }
    }

    /// Reads subject `name`, or `NotFound`.
    async fn subject(&self, name: &str) -> Result<Versioned<Subject>> {
        let db = &self.subjects;
        // Names a subject cannot have are never looked up (`ns/limits`, `_design/…`).
        if Subject::check_name(name).is_err() {
            return Err(Error::not_found(name));
        }
        let doc = self
            .get(db, name)
            .await
            .map_err(|f| to_error(f, "GET", &format!("{}/{name}", db.name)))?
            .ok_or_else(|| Error::not_found(name))?;
        layout::subject_from_doc(name, doc).map_err(|e| layout_error(&db.name, name, e))
    }

    /// The ids of the rows of view `ddoc/view` of the subjects database with `params`.
    async fn subject_ids(
        &self,
        ddoc: &str,
        view: &str,
        params: QueryParams<Value>,
    ) -> Result<Vec<String>> {
        let db = &self.subjects;
        let rows = self
            .query(db, ddoc, view, params)
            .await
            .map_err(|f| to_error(f, "query", &format!("{}/{ddoc}/{view}", db.name)))?;
        Ok(rows.into_iter().filter_map(|r| r.id).collect())
    }

    fn identity_from_row(&self, row: ViewItem<Value, Value, Value>) -> Result<Identity> {
        let db = &self.subjects.name;
        let row_id = row.id.clone().unwrap_or_default();
        let bad = |what: &str| layout_error(db, &row_id, what);
        let field = |k: &str| row.value.get(k).and_then(Value::as_str).map(str::to_string);
        let ns = field("namespace").ok_or_else(|| bad("identity without a namespace"))?;
        let name = EntityName::new(ns).map_err(|e| bad(&format!("namespace: {e}")))?;
        let uuid = field("uuid").ok_or_else(|| bad("identity without a uuid"))?;
        let key = field("key").ok_or_else(|| bad("identity without a key"))?;
        let subject = field("subject").unwrap_or_else(|| row_id.clone());
        let limits = match row.doc {
            Some(doc) if doc.is_object() => layout::limits_from_doc(doc)
                .map_err(|e| layout_error(db, &layout::limits_id(name.as_str()), e))?,
            _ => UserLimits::default(),
        };
        Ok(Identity {
            subject,
            namespace: Namespace {
                name,
                uuid: uuid.clone(),
            },
            authkey: AuthKey { uuid, key },
            rights: Identity::all_rights(),
            limits,
        })
    }
}

/// View parameters: newest first within `[low, high]` of one key prefix.
fn newest_first(prefix: &str, low: Value, high: Value) -> QueryParams<Value> {
    QueryParams {
        descending: Some(true),
        start_key: Some(json!([prefix, high])),
        end_key: Some(match low {
            Value::Null => json!([prefix]),
            low => json!([prefix, low]),
        }),
        ..QueryParams::default()
    }
}

fn page(mut p: QueryParams<Value>, skip: u64, limit: u64) -> QueryParams<Value> {
    p.reduce = Some(false);
    p.include_docs = Some(true);
    p.skip = (skip > 0).then_some(skip.min(MAX_PAGE));
    p.limit = (limit > 0).then_some(limit.min(MAX_PAGE));
    p
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl CouchDbStore {
    fn activation_range(
        ns: &EntityName,
        q: &ActivationQuery,
    ) -> (&'static str, QueryParams<Value>) {
        let (ddoc, prefix) = match &q.name {
            Some(n) => (design::FILTERS_DDOC, format!("{ns}/{n}")),
            None => (design::ACTIVATIONS_DDOC, ns.to_string()),
        };
        let low = q.since.map_or(Value::Null, |s| json!(s));
        let high = q.upto.map_or(json!({}), |u| json!(u));
        (ddoc, newest_first(&prefix, low, high))
    }

    async fn identity_by(&self, key: Value, keep: impl Fn(&Identity) -> bool) -> Result<Identity> {
        let inner = &self.inner;
        let p = QueryParams {
            key: Some(key),
            include_docs: Some(true),
            ..QueryParams::default()
        };
        let rows = inner
            .query(
                &inner.subjects,
                design::SUBJECTS_DDOC,
                design::IDENTITIES_VIEW,
                p,
            )
            .await
            .map_err(|f| to_error(f, "query identities", &inner.subjects.name))?;
        for row in rows {
            let identity = inner.identity_from_row(row)?;
            if keep(&identity) {
                return Ok(identity);
            }
        }
        Err(Error::not_found("identity"))
    }
}

#[async_trait]
impl Store for CouchDbStore {
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>> {
        let inner = &self.inner;
        let db = &inner.whisks;
        let doc_id = id.doc_id();
        let doc = inner
            .get(db, &doc_id)
            .await
            .map_err(|f| to_error(f, "GET", &format!("{}/{doc_id}", db.name)))?
            .ok_or_else(|| Error::not_found(&doc_id))?;
        layout::entity_from_doc(&doc_id, doc).map_err(|e| layout_error(&db.name, &doc_id, e))
    }

    async fn put_entity(&self, entity: &Entity, rev: Option<&Revision>) -> Result<Revision> {
        let inner = &self.inner;
        let body = layout::entity_doc(entity, rev);
        inner
            .put_at(&inner.whisks, &entity.doc_id(), &body, rev)
            .await
    }

    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()> {
        let inner = &self.inner;
        inner.delete_at(&inner.whisks, &id.doc_id(), rev).await
    }

    async fn list_entities(
        &self,
        path: &EntityPath,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<Vec<Entity>> {
        let inner = &self.inner;
        let db = &inner.whisks;
        let p = page(
            newest_first(path.as_str(), Value::Null, json!({})),
            query.skip,
            query.limit,
        );
        let rows = inner
            .query(db, design::WHISKS_DDOC, kind.collection(), p)
            .await
            .map_err(|f| to_error(f, "list", &format!("{}/{}", db.name, kind.collection())))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id.unwrap_or_default();
            let Some(doc) = row.doc else { continue };
            match layout::entity_from_doc(&id, doc) {
                Ok(v) if v.value.kind() == kind => out.push(v.value),
                Ok(v) => tracing::warn!(database = %db.name, id, kind = ?v.value.kind(),
                    "couchdb: listed document is of another kind; skipped"),
                Err(e) => tracing::warn!(database = %db.name, id, error = %e,
                    "couchdb: unreadable document skipped in a list"),
            }
        }
        Ok(out)
    }

    async fn count_entities(&self, path: &EntityPath, kind: EntityKind) -> Result<u64> {
        let inner = &self.inner;
        let db = &inner.whisks;
        inner
            .count(
                db,
                design::WHISKS_DDOC,
                kind.collection(),
                newest_first(path.as_str(), Value::Null, json!({})),
            )
            .await
            .map_err(|f| to_error(f, "count", &format!("{}/{}", db.name, kind.collection())))
    }

    async fn put_activation(&self, activation: &Activation) -> Result<bool> {
        let doc = layout::activation_doc(activation, faas_core::entity::now_ms());
        self.writer.write(activation.doc_id(), doc).await
    }

    async fn get_activation(
        &self,
        namespace: &EntityName,
        id: &ActivationId,
    ) -> Result<Activation> {
        let inner = &self.inner;
        let db = &inner.activations;
        let doc_id = format!("{namespace}/{id}");
        let doc = inner
            .get(db, &doc_id)
            .await
            .map_err(|f| to_error(f, "GET", &format!("{}/{doc_id}", db.name)))?
            .ok_or_else(|| Error::not_found(&doc_id))?;
        let a = layout::activation_from_doc(doc).map_err(|e| layout_error(&db.name, &doc_id, e))?;
        if &a.activation_id != id {
            return Err(layout_error(
                &db.name,
                &doc_id,
                "it holds another activation id",
            ));
        }
        Ok(a)
    }

    async fn list_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>> {
        if query.since.zip(query.upto).is_some_and(|(s, u)| s > u) {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let db = &inner.activations;
        let (ddoc, range) = Self::activation_range(namespace, query);
        let rows = inner
            .query(
                db,
                ddoc,
                design::ACTIVATIONS_VIEW,
                page(range, query.skip, query.limit),
            )
            .await
            .map_err(|f| to_error(f, "list", &format!("{}/{ddoc}", db.name)))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id.unwrap_or_default();
            let Some(doc) = row.doc else { continue };
            match layout::activation_from_doc(doc) {
                Ok(a) => out.push(a),
                Err(e) => tracing::warn!(database = %db.name, id, error = %e,
                    "couchdb: unreadable activation skipped in a list"),
            }
        }
        Ok(out)
    }

    async fn count_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<u64> {
        if query.since.zip(query.upto).is_some_and(|(s, u)| s > u) {
            return Ok(0);
        }
        let inner = &self.inner;
        let db = &inner.activations;
        let (ddoc, range) = Self::activation_range(namespace, query);
        inner
            .count(db, ddoc, design::ACTIVATIONS_VIEW, range)
            .await
            .map_err(|f| to_error(f, "count", &format!("{}/{ddoc}", db.name)))
    }

    async fn get_subject(&self, subject: &str) -> Result<Versioned<Subject>> {
        self.inner.subject(subject).await
    }

    async fn put_subject(&self, subject: &Subject, rev: Option<&Revision>) -> Result<Revision> {
        Subject::check_name(&subject.subject)?;
        let inner = &self.inner;
        let body = layout::subject_doc(subject, rev);
        inner
            .put_at(&inner.subjects, &subject.subject, &body, rev)
            .await
    }

    async fn delete_subject(&self, subject: &str, rev: &Revision) -> Result<()> {
        if Subject::check_name(subject).is_err() {
            return Err(Error::not_found(subject));
        }
        let inner = &self.inner;
        inner.delete_at(&inner.subjects, subject, rev).await
    }

    async fn list_subjects(&self, namespace: &EntityName) -> Result<Vec<Subject>> {
        let inner = &self.inner;
        // OpenWhisk's views: unblocked owners from `identities` (key `[ns]`), blocked ones
        // from `blockedNamespaces` (key `ns`; it also lists `ns/limits` when the namespace's
        // limits are 0, which is not a subject).
        let unblocked = QueryParams {
            key: Some(json!([namespace])),
            ..QueryParams::default()
        };
        let blocked = QueryParams {
            key: Some(json!(namespace)),
            reduce: Some(false),
            ..QueryParams::default()
        };
        let mut ids = inner
            .subject_ids(design::SUBJECTS_DDOC, design::IDENTITIES_VIEW, unblocked)
            .await?;
        ids.extend(
            inner
                .subject_ids(design::THROTTLINGS_DDOC, design::BLOCKED_VIEW, blocked)
                .await?,
        );
        ids.retain(|id| !layout::is_limits_id(id));
        ids.sort();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match inner.subject(&id).await {
                // The views may lag a concurrent write: keep only true owners.
                Ok(s) if s.value.namespace(namespace).is_some() => out.push(s.value),
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn list_namespaces(&self) -> Result<Vec<EntityName>> {
        let inner = &self.inner;
        let db = &inner.subjects;
        // Every subject document, a page at a time (`_all_docs` in id order).
        let mut names = std::collections::BTreeSet::new();
        let mut start: Option<String> = None;
        const PAGE: usize = 500;
        loop {
            let path = format!("{}/_all_docs", client::segment(&db.name));
            let mut query = vec![
                ("include_docs", "true".to_string()),
                ("limit", (PAGE + 1).to_string()),
            ];
            if let Some(s) = &start {
                let key = serde_json::to_string(s)
                    .map_err(|e| Error::internal(format!("start key: {e}")))?;
                query.push(("startkey", key));
            }
            let (_, page) = inner
                .on_db(db, "GET _all_docs", false, |_| {
                    inner
                        .couch
                        .send(inner.couch.req(Method::GET, &path).query(&query))
                })
                .await
                .map_err(|f| to_error(f, "GET _all_docs", &db.name))?;
            let rows = page
                .get("rows")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let more = rows.len() > PAGE;
            for row in rows.iter().take(PAGE) {
                let Some(id) = row.get("id").and_then(Value::as_str) else {
                    continue;
                };
                if id.starts_with('_') || layout::is_limits_id(id) {
                    continue;
                }
                let Some(doc) = row.get("doc").filter(|d| d.is_object()) else {
                    continue;
                };
                match layout::subject_from_doc(id, doc.clone()) {
                    Ok(s) => names.extend(s.value.namespaces.into_iter().map(|n| n.name)),
                    Err(e) => tracing::warn!(database = %db.name, id, error = %e,
                        "couchdb: unreadable subject skipped in the namespace list"),
                }
            }
            if !more {
                break;
            }
            start = rows
                .get(PAGE)
                .and_then(|r| r.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if start.is_none() {
                break;
            }
        }
        let mut out: Vec<EntityName> = names.into_iter().collect();
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(out)
    }

    async fn find_identity(&self, key: &AuthKey) -> Result<Identity> {
        self.identity_by(json!([key.uuid, key.key]), |i| {
            i.authkey.uuid == key.uuid && same_secret(&i.authkey.key, &key.key)
        })
        .await
    }

    async fn identity_for_namespace(&self, namespace: &EntityName) -> Result<Identity> {
        self.identity_by(json!([namespace]), |i| &i.namespace.name == namespace)
            .await
    }

    async fn get_limits(&self, namespace: &EntityName) -> Result<UserLimits> {
        let inner = &self.inner;
        let db = &inner.subjects;
        let id = layout::limits_id(namespace.as_str());
        let doc = inner
            .get(db, &id)
            .await
            .map_err(|f| to_error(f, "GET", &format!("{}/{id}", db.name)))?
            .ok_or_else(|| Error::not_found(&id))?;
        layout::limits_from_doc(doc).map_err(|e| layout_error(&db.name, &id, e))
    }

    async fn put_limits(&self, namespace: &EntityName, limits: &UserLimits) -> Result<()> {
        let doc = serde_json::to_value(limits)
            .map_err(|e| Error::internal(format!("limits to JSON: {e}")))?;
        self.inner
            .upsert(
                &self.inner.subjects,
                &layout::limits_id(namespace.as_str()),
                doc,
            )
            .await
    }

    async fn delete_limits(&self, namespace: &EntityName) -> Result<()> {
        let inner = &self.inner;
        let db = &inner.subjects;
        let id = layout::limits_id(namespace.as_str());
        // Read the revision, delete at it; again if someone wrote meanwhile.
        for _ in 0..8 {
            let current = inner
                .get(db, &id)
                .await
                .map_err(|f| to_error(f, "GET", &format!("{}/{id}", db.name)))?
                .ok_or_else(|| Error::not_found(&id))?;
            let rev = current
                .get("_rev")
                .and_then(Value::as_str)
                .map(|r| Revision(r.to_string()))
                .ok_or_else(|| layout_error(&db.name, &id, "document without _rev"))?;
            match inner.delete_at(db, &id, &rev).await {
                Err(Error::Conflict { .. }) => continue,
                other => return other,
            }
        }
        Err(Error::conflict(id))
    }

    async fn get_document(&self, collection: &str, id: &str) -> Result<Versioned<Value>> {
        check_document_key(collection, id)?;
        let inner = &self.inner;
        let db = &inner.documents;
        let doc_id = format!("{collection}/{id}");
        let doc = inner
            .get(db, &doc_id)
            .await
            .map_err(|f| to_error(f, "GET", &format!("{}/{doc_id}", db.name)))?
            .ok_or_else(|| Error::not_found(&doc_id))?;
        layout::document_from_doc(doc).map_err(|e| layout_error(&db.name, &doc_id, e))
    }

    async fn put_document(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        rev: Option<&Revision>,
    ) -> Result<Revision> {
        check_document_key(collection, id)?;
        let inner = &self.inner;
        let doc_id = format!("{collection}/{id}");
        let body = layout::document_doc(&doc_id, collection, value, rev);
        inner.put_at(&inner.documents, &doc_id, &body, rev).await
    }

    async fn delete_document(&self, collection: &str, id: &str, rev: &Revision) -> Result<()> {
        check_document_key(collection, id)?;
        let inner = &self.inner;
        inner
            .delete_at(&inner.documents, &format!("{collection}/{id}"), rev)
            .await
    }

    async fn list_documents(&self, collection: &str) -> Result<Vec<Document>> {
        check_document_key(collection, "-")?;
        let inner = &self.inner;
        let db = &inner.documents;
        let couch = &inner.couch;
        let path = format!("{}/_all_docs", client::segment(&db.name));
        // Ids `collection/…` sort between `collection/` and `collection0` ('0' follows '/').
        let start = json!(format!("{collection}/")).to_string();
        let end = json!(format!("{collection}0")).to_string();
        let (_, body) = inner
            .on_db(db, "GET _all_docs", false, |_| {
                couch.send(couch.req(Method::GET, &path).query(&[
                    ("startkey", start.as_str()),
                    ("endkey", end.as_str()),
                    ("inclusive_end", "false"),
                    ("include_docs", "true"),
                ]))
            })
            .await
            .map_err(|f| to_error(f, "list", &db.name))?;
        let rows = body
            .get("rows")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let prefix = format!("{collection}/");
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(doc_id) = row.get("id").and_then(Value::as_str) else {
                continue;
            };
            let Some(id) = doc_id.strip_prefix(&prefix) else {
                continue;
            };
            let Some(doc) = row.get("doc").filter(|d| d.is_object()).cloned() else {
                continue;
            };
            match layout::document_from_doc(doc) {
                Ok(v) => out.push(Document {
                    id: id.to_string(),
                    value: v.value,
                    rev: v.rev,
                }),
                Err(e) => tracing::warn!(database = %db.name, id = doc_id, error = %e,
                    "couchdb: unreadable document skipped in a list"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let p = newest_first("ns", Value::Null, json!({}));
        assert_eq!(p.start_key, Some(json!(["ns", {}])));
        assert_eq!(p.end_key, Some(json!(["ns"])));
        assert_eq!(p.descending, Some(true));
        let ns = EntityName::new("ns").unwrap();
        let q = ActivationQuery {
            name: Some("pkg/a".into()),
            since: Some(5),
            upto: Some(9),
            ..Default::default()
        };
        let (ddoc, p) = CouchDbStore::activation_range(&ns, &q);
        assert_eq!(ddoc, design::FILTERS_DDOC);
        assert_eq!(p.start_key, Some(json!(["ns/pkg/a", 9])));
        assert_eq!(p.end_key, Some(json!(["ns/pkg/a", 5])));
        let p = page(p, u64::MAX, 0);
        assert_eq!(p.skip, Some(MAX_PAGE));
        assert_eq!(p.limit, None);
        assert_eq!(p.include_docs, Some(true));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
