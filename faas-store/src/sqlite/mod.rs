//! [`SqliteStore`]: a durable [`Store`] in one SQLite file, the standalone platform's default.
//!
//! # Why SQLite
//!
//! One file, crash-safe transactions (write-ahead log), readers that never wait for the
//! writer, real indexes for the activation listings (by namespace, by name, by time, newest
//! first) and a tool everyone has (`sqlite3 faas.db`). The library is compiled into the binary
//! (`rusqlite` with `bundled`), so nothing needs installing. `DESIGN-NOTES.md` compares it with
//! redb and fjall.
//!
//! # Threads
//!
//! SQLite calls block, so none runs on a tokio worker:
//!
//! * **Writes** go to one dedicated OS thread that owns the only writing connection (SQLite
//!   allows one writer at a time anyway) and commits them in groups: everything queued while
//!   the previous commit was flushing is committed together, in one transaction with one flush,
//!   and each caller is answered only after that commit. See the `writer` module source.
//! * **Reads** run on tokio's blocking pool (`spawn_blocking`) over a small pool of read
//!   connections (`readers`, 4 by default). In WAL mode they read a consistent snapshot in
//!   parallel with each other and with the writer; a semaphore bounds how many run at once.
//!
//! # Durability (`synchronous`)
//!
//! The file is in WAL mode. With `synchronous=full` (the default) every commit is flushed to
//! disk (`fsync` of the log) before any write in it is acknowledged: an acknowledged write
//! survives `kill -9`, an OS crash and a power loss. With `synchronous=normal` the log is
//! flushed only at checkpoints: an acknowledged write survives `kill -9` (it is in the OS's
//! page cache), but a power loss or OS crash may roll back the last commits; the file stays
//! consistent either way.
//!
//! Activation records are the exception under `synchronous=full`: a commit that holds only
//! records is not flushed on its own, but with the next commit of anything else or within
//! `activation_flush` (1 s by default), whichever is first. A record survives `kill -9` at
//! once; a power loss or OS crash may lose the records of that last second. Records are
//! written after the activation has ended and are never acknowledged to an API client, and
//! the flush per invoke was most of this store's cost on the invoke path. `activation_flush=0`
//! flushes every commit.
//!
//! # One platform per file
//!
//! Opening takes an exclusive lock (`flock`) on `PATH.lock`, held until the store is closed or
//! the process ends; a second store on the same file, in this process or another, is refused
//! with [`StoreFileError::Locked`] naming the holder's pid. The lock dies with its process, so
//! a `kill -9` never leaves a stale lock behind.
//!
//! # Activation retention
//!
//! At most `max_activations` records (default 1 000 000, all namespaces together), enforced on
//! every write: the records *written* earliest go first. Records older than `activation_ttl`
//! (default 30 days, counted from when they were written, as OpenWhisk's CosmosDB store counts
//! its TTL) are removed by a background task every `sweep_interval` (default 60 s), in chunks of
//! 10 000 per transaction so writes are never held up for long; [`SqliteStore::sweep`] runs
//! the same removal on demand.
//!
//! # Schema versions
//!
//! The file carries its layout version (`PRAGMA user_version`) and faas's application id. An
//! older file is upgraded on open, in one transaction; a file of a newer version than this
//! build knows is refused ([`StoreFileError::TooNew`]); a foreign or damaged file is refused
//! with a message saying so ([`StoreFileError::Foreign`], [`StoreFileError::Unreadable`]).
//!
//! # Example
//!
//! ```
//! use faas_core::Store;
//! use faas_core::identity::{AuthKey, Subject};
//! use faas_core::names::EntityName;
//! use faas_store::sqlite::SqliteStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let url = format!("sqlite:{}?activation_ttl=7d", dir.path().join("faas.db").display());
//! let store = SqliteStore::from_url(&url).await?;
//! let key = AuthKey::generate();
//! store.put_subject(&Subject::single(EntityName::new("guest")?, &key), None).await?;
//! store.close().await;
//!
//! let again = SqliteStore::from_url(&url).await?;               // the data is still there
//! assert_eq!(again.find_identity(&key).await?.namespace.name.as_str(), "guest");
//! # Ok::<(), faas_core::Error>(())
//! # }).unwrap();
//! ```

mod config;
mod error;
mod schema;
mod writer;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use faas_core::activation::{Activation, ActivationId};
use faas_core::entity::{Entity, EntityKind};
use faas_core::identity::{AuthKey, Identity, Namespace, Subject};
use faas_core::limits::UserLimits;
use faas_core::lockfile::LockError;
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::store::{
    ActivationQuery, Document, ListQuery, Revision, Store, Versioned, check_document_key,
};
use faas_core::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use config::{
    DEFAULT_ACTIVATION_FLUSH, DEFAULT_ACTIVATION_LINGER, DEFAULT_ACTIVATION_TTL,
    DEFAULT_MAX_ACTIVATIONS, DEFAULT_READERS, DEFAULT_SWEEP_INTERVAL, SqliteBuilder, Synchronous,
};
pub use error::StoreFileError;
use error::sqlite_error;
pub use schema::SCHEMA_VERSION;
use writer::{ActivationRow, EntityRow, Job, SubjectRow, Writer};

/// Times (epoch ms) as SQLite integers: values beyond `i64::MAX` are stored as `i64::MAX`
/// (the record itself keeps the exact value; only the index column is clamped).
pub(crate) type SqlTime = i64;

pub(crate) fn sql_time(t: u64) -> SqlTime {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A durable [`Store`] in one SQLite file; see the [module documentation](self).
///
/// Cloning is cheap; clones share the connections. Built with [`SqliteStore::builder`] or
/// [`SqliteStore::from_url`] (`sqlite:PATH?key=value`, see [`SqliteBuilder`]).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    file: String,
    synchronous: Synchronous,
    reader_count: usize,
    writes: mpsc::Sender<Job>,
    readers: Arc<Readers>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// What the writer did (tests read it).
    #[cfg_attr(not(test), allow(dead_code))]
    stats: Arc<writer::Stats>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("synchronous", &self.inner.synchronous)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqliteStore({})", self.inner.file)
    }
}

/// The read connections.
struct Readers {
    file: String,
    conns: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Runs `f` on a read connection on the blocking pool.
    async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::unavailable("the SQLite store is closed"))?;
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = me
                .conns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .ok_or_else(|| Error::internal("no free SQLite read connection"))?;
            let r = f(&conn, &me.file);
            me.conns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            r
        })
        .await
        .map_err(|e| Error::internal(format!("an SQLite read failed: {e}")))?
    }

    /// Drops every connection once the reads in progress are done.
    async fn close(&self, readers: usize) {
        if let Ok(all) = self
            .permits
            .acquire_many(u32::try_from(readers).unwrap_or(u32::MAX))
            .await
        {
            all.forget();
        }
        self.permits.close();
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl SqliteStore {
    /// A builder for the file at `path`; see [`SqliteBuilder`].
    pub fn builder(path: impl Into<PathBuf>) -> SqliteBuilder {
        SqliteBuilder::new(path)
    }

    /// Opens `sqlite:PATH[?key=value&…]`; see [`SqliteBuilder`] for the keys.
    pub async fn from_url(url: &str) -> Result<Self> {
        SqliteBuilder::from_url(url)?.build().await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Opens the file: creates it (and its directory) if missing, takes the lock, upgrades
    /// the layout, starts the writer thread and, if enabled, the background sweeps.
    pub(crate) async fn open(b: SqliteBuilder) -> Result<Self> {
        let opened = {
            let b = b.clone();
            tokio::task::spawn_blocking(move || open_blocking(&b))
                .await
                .map_err(|e| Error::internal(format!("opening the SQLite store failed: {e}")))??
        };
        let Opened {
            file,
            writer,
            readers,
            stats,
        } = opened;
        let readers = Arc::new(Readers {
            file: file.clone(),
            conns: Mutex::new(readers),
            permits: Arc::new(Semaphore::new(b.readers)),
        });
        let (tx, rx) = mpsc::channel(writer::MAX_BATCH * 4);
        let thread = std::thread::Builder::new()
            .name("faas-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::internal(format!("cannot start the SQLite writer thread: {e}")))?;
        let store = Self {
            inner: Arc::new(Inner {
                path: b.path.clone(),
                file,
                synchronous: b.synchronous,
                reader_count: b.readers,
                writes: tx,
                readers,
                writer_thread: Mutex::new(Some(thread)),
                stats,
            }),
        };
        if let (Synchronous::Full, Some(within)) = (b.synchronous, b.activation_flush) {
            tokio::spawn(flush_loop(Arc::downgrade(&store.inner), within));
        }
        if b.background_sweeps && (b.activation_ttl.is_some() || b.max_activations.is_some()) {
            tokio::spawn(sweep_loop(Arc::downgrade(&store.inner), b.sweep_interval));
        }
        Ok(store)
    }

    /// Removes activation records beyond the retention bounds now (expired ones, then those
    /// over the count bound, oldest written first), in steps of at most 10 000 records; returns
    /// how many were removed. The background task does the same every sweep interval.
    pub async fn sweep(&self) -> Result<u64> {
        sweep_all(&self.inner).await
    }

    /// Finishes the writes already queued, closes the file (folding the write-ahead log into
    /// it) and releases its lock, so that another store may open it. Every later call on this
    /// store, or a clone of it, fails with `Unavailable`.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.inner.writes.send(Job::Close { reply }).await.is_ok() {
            let _ = done.await;
        }
        self.inner.readers.close(self.inner.reader_count).await;
        let thread = self
            .inner
            .writer_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    async fn write<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T>>) -> Job) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writes
            .send(job(reply))
            .await
            .map_err(|_| Error::unavailable("the SQLite store is closed"))?;
        answer
            .await
            .map_err(|_| Error::unavailable("the SQLite store closed before the write finished"))?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T> + Send + 'static,
    {
        self.inner.readers.run(f).await
    }
}

async fn sweep_all(inner: &Inner) -> Result<u64> {
    let mut removed = 0;
    loop {
        let (reply, answer) = oneshot::channel();
        inner
            .writes
            .send(Job::Sweep { reply })
            .await
            .map_err(|_| Error::unavailable("the SQLite store is closed"))?;
        let swept = answer
            .await
            .map_err(|_| Error::unavailable("the SQLite store is closed"))??;
        removed += swept.expired + swept.over_count;
        if !swept.more {
            return Ok(removed);
        }
    }
}

/// Sweeps every `every` while the store lives (it holds only a weak reference).
async fn sweep_loop(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match sweep_all(&inner).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(removed = n, file = %inner.file, "removed activation records past retention")
            }
            Err(Error::Unavailable { .. }) => return,
            Err(e) => {
                tracing::warn!(error = %e, file = %inner.file, "activation retention sweep failed")
            }
        }
    }
}

/// Asks the writer every `every` to flush activation records committed without a flush, while
/// the store lives (it holds only a weak reference). The writer flushes only if some wait.
async fn flush_loop(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        // A full queue means a busy writer, which checks the age itself after every group.
        if let Err(mpsc::error::TrySendError::Closed(_)) = inner.writes.try_send(Job::Flush) {
            return;
        }
    }
}

struct Opened {
    file: String,
    writer: Writer,
    readers: Vec<Connection>,
    stats: Arc<writer::Stats>,
}

fn io_error(file: &str, what: &str, e: std::io::Error) -> Error {
    StoreFileError::Io {
        file: file.into(),
        detail: format!("{what}: {e}"),
    }
    .into()
}

/// Takes `PATH.lock` for this process's life (or until the writer closes it).
fn lock(path: &Path, file: &str) -> Result<File> {
    faas_core::lockfile::lock(path).map_err(|e| match e {
        LockError::Held { holder } => StoreFileError::Locked {
            file: file.into(),
            holder,
        }
        .into(),
        LockError::Io { what, error } => io_error(file, what, error),
    })
}

fn open_blocking(b: &SqliteBuilder) -> Result<Opened> {
    let path = &b.path;
    let file = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(&file, "cannot create its directory", e))?;
    }
    let lock = lock(path, &file)?;
    // Create the file private to its owner: it holds every key of every subject.
    if !path.exists() {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(path)
            .map_err(|e| io_error(&file, "cannot create it", e))?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite_error(e, &file))?;
    configure(&conn, b.synchronous).map_err(|e| sqlite_error(e, &file))?;
    let journal: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| sqlite_error(e, &file))?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(StoreFileError::Io {
            file,
            detail: format!(
                "the file system does not allow write-ahead logging (journal mode {journal})"
            ),
        }
        .into());
    }
    schema::prepare(&mut conn, &file)?;
    let total = writer::count_all(&conn).map_err(|e| sqlite_error(e, &file))?;
    let mut readers = Vec::with_capacity(b.readers);
    for _ in 0..b.readers {
        let r = Connection::open_with_flags(path, flags).map_err(|e| sqlite_error(e, &file))?;
        configure(&r, b.synchronous).map_err(|e| sqlite_error(e, &file))?;
        r.pragma_update(None, "query_only", true)
            .map_err(|e| sqlite_error(e, &file))?;
        readers.push(r);
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let stats = Arc::new(writer::Stats::default());
    let writer = Writer {
        conn,
        file: file.clone(),
        max_activations: b.max_activations,
        activation_ttl: b.activation_ttl,
        clock: Arc::clone(&b.clock),
        lock,
        total,
        synchronous: b.synchronous,
        activation_flush: b.activation_flush,
        activation_linger: b.activation_linger,
        conn_sync: b.synchronous,
        unflushed_since: None,
        wal: PathBuf::from(wal),
        stats: Arc::clone(&stats),
    };
    Ok(Opened {
        file,
        writer,
        readers,
        stats,
    })
}

fn configure(conn: &Connection, sync: Synchronous) -> rusqlite::Result<()> {
    // Only this process uses the file (see the lock), so waiting on SQLite's own locks happens
    // only around checkpoints; wait rather than fail then.
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", sync.pragma())?;
    conn.pragma_update(None, "foreign_keys", false)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

fn kind_str(k: EntityKind) -> &'static str {
    match k {
        EntityKind::Action => "action",
        EntityKind::Package => "package",
        EntityKind::Trigger => "trigger",
        EntityKind::Rule => "rule",
    }
}

fn to_json<T: serde::Serialize>(v: &T, what: &str) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| Error::internal(format!("cannot encode {what} for the store: {e}")))
}

/// Decodes a stored document (`what` names it in the error).
fn from_json<T: serde::de::DeserializeOwned>(doc: &str, file: &str, what: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(|e| bad_doc(file, what, e))
}

/// A stored document that does not decode: the file was changed by hand or is damaged.
fn bad_doc(file: &str, what: &str, e: serde_json::Error) -> Error {
    Error::backend(
        "sqlite",
        false,
        format!("{file}: the stored {what} cannot be read: {e}"),
    )
}

fn entity_row(e: &Entity) -> Result<EntityRow> {
    let path = e.namespace();
    Ok(EntityRow {
        id: e.doc_id(),
        ns: path.root().to_string(),
        path: path.as_str().to_string(),
        kind: kind_str(e.kind()),
        updated: sql_time(e.updated()),
        doc: to_json(e, "an entity")?,
    })
}

/// The `path` annotation without its namespace (`pkg/name` or `name`), which the name filter
/// matches first.
fn path_key(a: &Activation) -> Option<String> {
    let p = a.annotations.get("path").and_then(|v| v.as_str())?;
    Some(p.split_once('/').map_or(p, |(_, rest)| rest).to_string())
}

fn sql_err(file: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| sqlite_error(e, file)
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The WHERE clause and parameters of an activation query (after `ns = ?1`), and whether the
/// name filter needs the two-branch form.
struct ActivationFilter {
    since: SqlTime,
    upto: SqlTime,
    name: Option<String>,
}

impl ActivationFilter {
    fn new(q: &ActivationQuery) -> Self {
        Self {
            since: q.since.map_or(i64::MIN, sql_time),
            upto: q.upto.map_or(i64::MAX, sql_time),
            name: q.name.clone(),
        }
    }

    /// `SELECT {cols} FROM activations WHERE …` over one or two index ranges. Parameters:
    /// ?1 ns, ?2 since, ?3 upto, ?4 name (if any).
    fn select(&self, cols: &str) -> String {
        let time = "start BETWEEN ?2 AND ?3";
        match &self.name {
            // `?4 IS NULL` only keeps the parameter numbering the same in every form.
            None => {
                format!("SELECT {cols} FROM activations WHERE ns = ?1 AND {time} AND ?4 IS NULL")
            }
            Some(n) if n.contains('/') => {
                format!("SELECT {cols} FROM activations WHERE ns = ?1 AND path = ?4 AND {time}")
            }
            // `name` matches by path annotation, or by the record's name where the path does
            // not already say it (`bare_name`): two disjoint index ranges, merged in order.
            Some(_) => format!(
                "SELECT {cols} FROM activations WHERE ns = ?1 AND path = ?4 AND {time} \
                 UNION ALL \
                 SELECT {cols} FROM activations WHERE ns = ?1 AND bare_name = ?4 AND {time}"
            ),
        }
    }

    /// ?1 ns, ?2 since, ?3 upto, ?4 name (NULL without one), then `extra` (?5, ?6, …).
    fn params(&self, ns: &str, extra: &[i64]) -> Vec<rusqlite::types::Value> {
        use rusqlite::types::Value as V;
        let name = self.name.clone().map_or(V::Null, V::Text);
        let mut p = vec![
            V::Text(ns.to_string()),
            V::Integer(self.since),
            V::Integer(self.upto),
            name,
        ];
        p.extend(extra.iter().map(|&n| V::Integer(n)));
        p
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>> {
        let doc_id = id.doc_id();
        self.read(move |c, file| {
            let row: Option<(String, String)> = c
                .prepare_cached("SELECT rev, doc FROM entities WHERE id = ?1")
                .and_then(|mut st| {
                    st.query_row(params![doc_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(sql_err(file))?;
            let (rev, doc) = row.ok_or_else(|| Error::not_found(doc_id.clone()))?;
            let value: Entity =
                serde_json::from_str(&doc).map_err(|e| bad_doc(file, &doc_id, e))?;
            Ok(Versioned {
                value,
                rev: Revision(rev),
            })
        })
        .await
    }

    async fn put_entity(&self, entity: &Entity, rev: Option<&Revision>) -> Result<Revision> {
        let row = entity_row(entity)?;
        let rev = rev.cloned();
        self.write(|reply| Job::PutEntity { row, rev, reply }).await
    }

    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()> {
        let id = id.doc_id();
        let rev = rev.clone();
        self.write(|reply| Job::DeleteEntity { id, rev, reply })
            .await
    }

    async fn list_entities(
        &self,
        path: &EntityPath,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<Vec<Entity>> {
        let (column, key) = if path.is_namespace() {
            ("ns", path.root().to_string())
        } else {
            ("path", path.as_str().to_string())
        };
        let kind = kind_str(kind);
        let limit = if query.limit == 0 {
            -1
        } else {
            sql_count(query.limit)
        };
        let skip = sql_count(query.skip);
        self.read(move |c, file| {
            let sql = format!(
                "SELECT id, doc FROM entities WHERE {column} = ?1 AND kind = ?2 \
                 ORDER BY updated DESC, id DESC LIMIT ?3 OFFSET ?4"
            );
            let mut st = c.prepare_cached(&sql).map_err(sql_err(file))?;
            let rows = st
                .query_map(params![key, kind, limit, skip], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sql_err(file))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, doc) = row.map_err(sql_err(file))?;
                out.push(serde_json::from_str(&doc).map_err(|e| bad_doc(file, &id, e))?);
            }
            Ok(out)
        })
        .await
    }

    async fn count_entities(&self, path: &EntityPath, kind: EntityKind) -> Result<u64> {
        let (column, key) = if path.is_namespace() {
            ("ns", path.root().to_string())
        } else {
            ("path", path.as_str().to_string())
        };
        let kind = kind_str(kind);
        self.read(move |c, file| {
            let sql = format!("SELECT count(*) FROM entities WHERE {column} = ?1 AND kind = ?2");
            c.prepare_cached(&sql)
                .and_then(|mut st| st.query_row(params![key, kind], |r| r.get::<_, i64>(0)))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(sql_err(file))
        })
        .await
    }

    async fn put_activation(&self, activation: &Activation) -> Result<bool> {
        let path = path_key(activation);
        let name = activation.name.as_str();
        let row = ActivationRow {
            ns: activation.namespace.root().to_string(),
            activation_id: activation.activation_id.as_str().to_string(),
            start: sql_time(activation.start),
            name: name.to_string(),
            bare_name: (path.as_deref() != Some(name)).then(|| name.to_string()),
            path,
            doc: to_json(activation, "an activation record")?,
        };
        self.write(|reply| Job::PutActivation { row, reply }).await
    }

    async fn get_activation(
        &self,
        namespace: &EntityName,
        id: &ActivationId,
    ) -> Result<Activation> {
        let ns = namespace.as_str().to_string();
        let id = id.as_str().to_string();
        self.read(move |c, file| {
            let doc: Option<String> = c
                .prepare_cached("SELECT doc FROM activations WHERE ns = ?1 AND activation_id = ?2")
                .and_then(|mut st| st.query_row(params![ns, id], |r| r.get(0)).optional())
                .map_err(sql_err(file))?;
            let doc = doc.ok_or_else(|| Error::not_found(format!("{ns}/{id}")))?;
            serde_json::from_str(&doc).map_err(|e| bad_doc(file, &format!("{ns}/{id}"), e))
        })
        .await
    }

    async fn list_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>> {
        let ns = namespace.as_str().to_string();
        let filter = ActivationFilter::new(query);
        let limit = if query.limit == 0 {
            -1
        } else {
            sql_count(query.limit)
        };
        let skip = sql_count(query.skip);
        self.read(move |c, file| {
            let sql = format!(
                "{} ORDER BY start DESC, seq DESC LIMIT ?5 OFFSET ?6",
                filter.select("start, seq, activation_id, doc")
            );
            let mut st = c.prepare_cached(&sql).map_err(sql_err(file))?;
            let rows = st
                .query_map(params_from_iter(filter.params(&ns, &[limit, skip])), |r| {
                    Ok((r.get::<_, String>(2)?, r.get::<_, String>(3)?))
                })
                .map_err(sql_err(file))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, doc) = row.map_err(sql_err(file))?;
                out.push(
                    serde_json::from_str(&doc)
                        .map_err(|e| bad_doc(file, &format!("{ns}/{id}"), e))?,
                );
            }
            Ok(out)
        })
        .await
    }

    async fn count_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<u64> {
        let ns = namespace.as_str().to_string();
        let unfiltered = query.name.is_none() && query.since.is_none() && query.upto.is_none();
        let filter = ActivationFilter::new(query);
        self.read(move |c, file| {
            let n: i64 = if unfiltered {
                c.prepare_cached("SELECT n FROM activation_counts WHERE ns = ?1")
                    .and_then(|mut st| st.query_row(params![ns], |r| r.get(0)).optional())
                    .map_err(sql_err(file))?
                    .unwrap_or(0)
            } else {
                let sql = format!("SELECT count(*) FROM ({})", filter.select("seq"));
                c.prepare_cached(&sql)
                    .and_then(|mut st| {
                        st.query_row(params_from_iter(filter.params(&ns, &[])), |r| r.get(0))
                    })
                    .map_err(sql_err(file))?
            };
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn get_subject(&self, subject: &str) -> Result<Versioned<Subject>> {
        if Subject::check_name(subject).is_err() {
            return Err(Error::not_found(format!("subject {subject}")));
        }
        let name = subject.to_string();
        self.read(move |c, file| {
            let row: Option<(String, String)> = c
                .prepare_cached("SELECT rev, doc FROM subjects WHERE subject = ?1")
                .and_then(|mut st| {
                    st.query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(sql_err(file))?;
            let (rev, doc) = row.ok_or_else(|| Error::not_found(format!("subject {name}")))?;
            Ok(Versioned {
                value: from_json(&doc, file, "a subject")?,
                rev: Revision(rev),
            })
        })
        .await
    }

    async fn put_subject(&self, subject: &Subject, rev: Option<&Revision>) -> Result<Revision> {
        Subject::check_name(&subject.subject)?;
        let row = SubjectRow {
            subject: subject.subject.clone(),
            blocked: subject.blocked,
            doc: to_json(subject, "a subject")?,
            keys: subject
                .namespaces
                .iter()
                .map(|n| (n.name.as_str().to_string(), n.uuid.clone(), n.key.clone()))
                .collect(),
        };
        let rev = rev.cloned();
        self.write(|reply| Job::PutSubject { row, rev, reply })
            .await
    }

    async fn delete_subject(&self, subject: &str, rev: &Revision) -> Result<()> {
        let subject = subject.to_string();
        let rev = rev.clone();
        self.write(|reply| Job::DeleteSubject {
            subject,
            rev,
            reply,
        })
        .await
    }

    async fn list_subjects(&self, namespace: &EntityName) -> Result<Vec<Subject>> {
        let ns = namespace.as_str().to_string();
        self.read(move |c, file| {
            let mut st = c
                .prepare_cached(
                    "SELECT s.doc FROM subjects s WHERE s.subject IN \
                     (SELECT subject FROM subject_keys WHERE ns = ?1) ORDER BY s.subject",
                )
                .map_err(sql_err(file))?;
            let docs = st
                .query_map(params![ns], |r| r.get::<_, String>(0))
                .map_err(sql_err(file))?;
            let mut out = Vec::new();
            for doc in docs {
                out.push(from_json(&doc.map_err(sql_err(file))?, file, "a subject")?);
            }
            Ok(out)
        })
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<EntityName>> {
        self.read(move |c, file| {
            let mut st = c
                .prepare_cached("SELECT DISTINCT ns FROM subject_keys ORDER BY ns")
                .map_err(sql_err(file))?;
            let names = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(sql_err(file))?;
            let mut out = Vec::new();
            for n in names {
                out.push(EntityName::new(n.map_err(sql_err(file))?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn find_identity(&self, key: &AuthKey) -> Result<Identity> {
        let key = key.clone();
        self.read(move |c, file| {
            // Every entry with this uuid: the one whose secret matches answers, unless its
            // subject is blocked. Entries are looked at in subject order, all compared.
            let mut st = c
                .prepare_cached(
                    "SELECT k.subject, k.ns, k.key, s.blocked FROM subject_keys k \
                     JOIN subjects s ON s.subject = k.subject \
                     WHERE k.uuid = ?1 ORDER BY k.subject, k.seq",
                )
                .map_err(sql_err(file))?;
            let rows = st
                .query_map(params![key.uuid], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .map_err(sql_err(file))?;
            let mut found = None;
            for row in rows {
                let (subject, ns, secret, blocked) = row.map_err(sql_err(file))?;
                if same_secret(&secret, &key.key) && !blocked && found.is_none() {
                    found = Some((subject, ns, secret));
                }
            }
            match found {
                Some((subject, ns, secret)) => {
                    identity(c, file, subject, ns, key.uuid.clone(), secret)
                }
                None => Err(Error::not_found(format!("subject with uuid {}", key.uuid))),
            }
        })
        .await
    }

    async fn identity_for_namespace(&self, namespace: &EntityName) -> Result<Identity> {
        let ns = namespace.as_str().to_string();
        self.read(move |c, file| {
            let row: Option<(String, String, String)> = c
                .prepare_cached(
                    "SELECT k.subject, k.uuid, k.key FROM subject_keys k \
                     JOIN subjects s ON s.subject = k.subject \
                     WHERE k.ns = ?1 AND s.blocked = 0 ORDER BY k.subject, k.seq LIMIT 1",
                )
                .and_then(|mut st| {
                    st.query_row(params![ns], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                })
                .map_err(sql_err(file))?;
            match row {
                Some((subject, uuid, key)) => identity(c, file, subject, ns, uuid, key),
                None => Err(Error::not_found(format!("subject of namespace {ns}"))),
            }
        })
        .await
    }

    async fn get_limits(&self, namespace: &EntityName) -> Result<UserLimits> {
        let ns = namespace.as_str().to_string();
        self.read(move |c, file| {
            let doc: Option<String> = c
                .prepare_cached("SELECT doc FROM limits WHERE ns = ?1")
                .and_then(|mut st| st.query_row(params![ns], |r| r.get(0)).optional())
                .map_err(sql_err(file))?;
            let doc = doc.ok_or_else(|| Error::not_found(format!("{ns}/limits")))?;
            from_json(&doc, file, "namespace limits")
        })
        .await
    }

    async fn delete_limits(&self, namespace: &EntityName) -> Result<()> {
        let ns = namespace.as_str().to_string();
        self.write(|reply| Job::DeleteLimits { ns, reply }).await
    }

    async fn put_limits(&self, namespace: &EntityName, limits: &UserLimits) -> Result<()> {
        let ns = namespace.as_str().to_string();
        let doc = to_json(limits, "namespace limits")?;
        self.write(|reply| Job::PutLimits { ns, doc, reply }).await
    }

    async fn get_document(&self, collection: &str, id: &str) -> Result<Versioned<Value>> {
        check_document_key(collection, id)?;
        let (collection, id) = (collection.to_string(), id.to_string());
        self.read(move |c, file| {
            let row: Option<(String, String)> = c
                .prepare_cached("SELECT rev, doc FROM documents WHERE collection = ?1 AND id = ?2")
                .and_then(|mut st| {
                    st.query_row(params![collection, id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(sql_err(file))?;
            let key = format!("{collection}/{id}");
            let (rev, doc) = row.ok_or_else(|| Error::not_found(key.clone()))?;
            let value: Value = serde_json::from_str(&doc).map_err(|e| bad_doc(file, &key, e))?;
            Ok(Versioned {
                value,
                rev: Revision(rev),
            })
        })
        .await
    }

    async fn put_document(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        rev: Option<&Revision>,
    ) -> Result<Revision> {
        check_document_key(collection, id)?;
        let doc = to_json(value, "document")?;
        let (collection, id, rev) = (collection.to_string(), id.to_string(), rev.cloned());
        self.write(|reply| Job::PutDocument {
            collection,
            id,
            doc,
            rev,
            reply,
        })
        .await
    }

    async fn delete_document(&self, collection: &str, id: &str, rev: &Revision) -> Result<()> {
        check_document_key(collection, id)?;
        let (collection, id, rev) = (collection.to_string(), id.to_string(), rev.clone());
        self.write(|reply| Job::DeleteDocument {
            collection,
            id,
            rev,
            reply,
        })
        .await
    }

    async fn list_documents(&self, collection: &str) -> Result<Vec<Document>> {
        check_document_key(collection, "-")?;
        let collection = collection.to_string();
        self.read(move |c, file| {
            let mut st = c
                .prepare_cached(
                    "SELECT id, rev, doc FROM documents WHERE collection = ?1 ORDER BY id",
                )
                .map_err(sql_err(file))?;
            let rows = st
                .query_map(params![collection], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(sql_err(file))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, rev, doc) = row.map_err(sql_err(file))?;
                let value: Value = serde_json::from_str(&doc)
                    .map_err(|e| bad_doc(file, &format!("{collection}/{id}"), e))?;
                out.push(Document {
                    id,
                    value,
                    rev: Revision(rev),
                });
            }
            Ok(out)
        })
        .await
    }
}

/// The identity of `subject` in `ns`, with the namespace's limits.
fn identity(
    c: &Connection,
    file: &str,
    subject: String,
    ns: String,
    uuid: String,
    key: String,
) -> Result<Identity> {
    let limits: Option<String> = c
        .prepare_cached("SELECT doc FROM limits WHERE ns = ?1")
        .and_then(|mut st| st.query_row(params![ns], |r| r.get(0)).optional())
        .map_err(sql_err(file))?;
    let limits = match limits {
        Some(doc) => {
            serde_json::from_str(&doc).map_err(|e| bad_doc(file, &format!("limits of {ns}"), e))?
        }
        None => UserLimits::default(),
    };
    let name = EntityName::new(ns.clone())
        .map_err(|_| bad_doc_msg(file, &format!("namespace name '{ns}' of {subject}")))?;
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

fn bad_doc_msg(file: &str, what: &str) -> Error {
    Error::backend(
        "sqlite",
        false,
        format!("{file}: the stored {what} is not valid"),
    )
}

#[cfg(test)]
mod tests {
    use faas_core::activation::ActivationResponse;
    use faas_core::params::{Parameters, SemVer};
    use serde_json::json;

    use super::*;

    fn activation(ns: &str, start: u64) -> Activation {
        Activation {
            namespace: EntityPath::new(ns).unwrap(),
            name: EntityName::new("hello").unwrap(),
            subject: "s".into(),
            activation_id: ActivationId::generate(),
            start,
            end: start + 1,
            duration: Some(1),
            cause: None,
            response: ActivationResponse::success(json!({})),
            logs: vec!["a line".into()],
            version: SemVer::default(),
            publish: false,
            annotations: Parameters::new().with("path", json!(format!("{ns}/hello"))),
        }
    }

    fn counts(s: &SqliteStore) -> (u64, u64, u64, bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &s.inner.stats;
        (
            st.flushed_commits.load(Relaxed),
            st.deferred_commits.load(Relaxed),
            st.log_flushes.load(Relaxed),
            st.unflushed.load(Relaxed),
        )
    }

    fn subject(name: &str) -> Subject {
        Subject::single(EntityName::new(name).unwrap(), &AuthKey::generate())
    }

    /// Under `synchronous=full`, a commit of records alone is not flushed; the next commit of
    /// anything else (flushed before it is acknowledged) flushes the records with it.
    #[tokio::test]
    async fn records_are_flushed_with_the_next_acknowledged_write() {
        let dir = tempfile::tempdir().unwrap();
        // A ticker far away: only the entity write can flush the record.
        let store = SqliteStore::builder(dir.path().join("f.db"))
            .with_activation_flush(Some(Duration::from_secs(3600)))
            .with_background_sweeps(false)
            .build()
            .await
            .unwrap();
        let (flushed0, deferred0, logs0, waiting0) = counts(&store);
        assert!(!waiting0);
        let a = activation("ns", 1_000);
        assert!(store.put_activation(&a).await.unwrap());
        let (flushed1, deferred1, logs1, waiting1) = counts(&store);
        assert_eq!(
            (flushed1, deferred1, logs1),
            (flushed0, deferred0 + 1, logs0)
        );
        assert!(waiting1, "the record waits for a flush");
        // Readable at once (committed), before any flush.
        let ns = EntityName::new("ns").unwrap();
        assert!(store.get_activation(&ns, &a.activation_id).await.is_ok());

        store.put_subject(&subject("alice"), None).await.unwrap();
        let (flushed2, deferred2, logs2, waiting2) = counts(&store);
        assert_eq!(
            (flushed2, deferred2, logs2),
            (flushed1 + 1, deferred1, logs1)
        );
        assert!(
            !waiting2,
            "the flushed commit flushed the record's frames too"
        );
        store.close().await;
    }

    /// Records alone reach the disk within `activation_flush` without any other write.
    #[tokio::test]
    async fn records_alone_are_flushed_within_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::builder(dir.path().join("f.db"))
            .with_activation_flush(Some(Duration::from_millis(50)))
            .with_background_sweeps(false)
            .build()
            .await
            .unwrap();
        let (flushed0, _, logs0, _) = counts(&store);
        assert!(store.put_activation(&activation("ns", 1)).await.unwrap());
        assert!(counts(&store).3, "the record waits for a flush");
        // Bounded wait for the ticker (50 ms); the record must not wait for another write.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while counts(&store).3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (flushed1, _, logs1, waiting) = counts(&store);
        assert!(!waiting, "not flushed within 10 s");
        assert_eq!(
            (flushed1, logs1),
            (flushed0, logs0 + 1),
            "one flush of the log"
        );
        // Nothing waits: the next ticks flush nothing.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(counts(&store).2, logs1);
        store.close().await;
    }

    /// `activation_flush=0` flushes every commit, records too; `synchronous=normal` flushes
    /// none and leaves nothing waiting (its commits are durable at checkpoints, documented).
    #[tokio::test]
    async fn every_commit_is_flushed_without_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteBuilder::from_url(&format!(
            "sqlite:{}?activation_flush=0",
            dir.path().join("a.db").display()
        ))
        .unwrap()
        .with_background_sweeps(false)
        .build()
        .await
        .unwrap();
        let (flushed0, deferred0, _, _) = counts(&store);
        assert!(store.put_activation(&activation("ns", 1)).await.unwrap());
        let (flushed1, deferred1, _, waiting) = counts(&store);
        assert_eq!(
            (flushed1, deferred1, waiting),
            (flushed0 + 1, deferred0, false)
        );
        store.close().await;

        let normal = SqliteStore::builder(dir.path().join("n.db"))
            .with_synchronous(Synchronous::Normal)
            .with_background_sweeps(false)
            .build()
            .await
            .unwrap();
        let (flushed0, deferred0, _, _) = counts(&normal);
        assert!(normal.put_activation(&activation("ns", 1)).await.unwrap());
        normal.put_subject(&subject("bobby"), None).await.unwrap();
        let (flushed1, deferred1, logs, waiting) = counts(&normal);
        assert_eq!(
            (flushed1, deferred1, logs, waiting),
            (flushed0, deferred0 + 2, 0, false)
        );
        normal.close().await;
    }

    /// A file of schema version 1 with records in it is upgraded on open: its records stay
    /// readable and listable, get counted, and age from their `start`.
    #[tokio::test]
    async fn version_1_files_are_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let file = path.display().to_string();
        let acts: Vec<Activation> = (0..5).map(|i| activation("ns", 1_000 + i)).collect();
        {
            let mut c = Connection::open(&path).unwrap();
            assert_eq!(schema::prepare_to(&mut c, &file, 1).unwrap(), 0);
            for a in &acts {
                c.execute(
                    "INSERT INTO activations (ns, activation_id, start, name, path, bare_name, doc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
                    params![
                        "ns",
                        a.activation_id.as_str(),
                        sql_time(a.start),
                        "hello",
                        path_key(a),
                        serde_json::to_string(a).unwrap()
                    ],
                )
                .unwrap();
            }
            let v: u32 = c
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, 1);
        }
        let (now, clock) = {
            let now = Arc::new(std::sync::atomic::AtomicU64::new(1_002 + 60_000));
            let c = Arc::clone(&now);
            (now, move || c.load(std::sync::atomic::Ordering::SeqCst))
        };
        let store = SqliteStore::builder(&path)
            .with_activation_ttl(Some(Duration::from_secs(60)))
            .with_background_sweeps(false)
            .with_clock(clock)
            .build()
            .await
            .unwrap();
        let ns = EntityName::new("ns").unwrap();
        let all = ActivationQuery::default();
        assert_eq!(store.count_activations(&ns, &all).await.unwrap(), 5);
        let listed = store.list_activations(&ns, &all).await.unwrap();
        let newest_first: Vec<Activation> = acts.iter().rev().cloned().collect();
        assert_eq!(listed, newest_first);
        // Migrated records were "written" at their start: 1000 and 1001 are over 60 s old.
        assert_eq!(store.sweep().await.unwrap(), 2);
        assert_eq!(store.count_activations(&ns, &all).await.unwrap(), 3);
        now.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(store.sweep().await.unwrap(), 1);
        store.close().await;
        let c = Connection::open(&path).unwrap();
        let v: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    /// The activation listings the API serves run on indexes, not on scans of the table.
    #[test]
    fn activation_queries_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let mut c = Connection::open(&path).unwrap();
        schema::prepare(&mut c, &path.display().to_string()).unwrap();
        c.execute_batch("ANALYZE").unwrap();
        let plan = |sql: &str| -> String {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let n = st.parameter_count();
            let rows = st
                .query_map(
                    params_from_iter(vec![rusqlite::types::Value::Null; n]),
                    |r| r.get::<_, String>(3),
                )
                .unwrap();
            rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
        };
        for name in [None, Some("pkg/hello"), Some("hello")] {
            let f = ActivationFilter {
                since: 0,
                upto: i64::MAX,
                name: name.map(String::from),
            };
            let list = plan(&format!(
                "{} ORDER BY start DESC, seq DESC LIMIT ?5 OFFSET ?6",
                f.select("start, seq, activation_id, doc")
            ));
            assert!(!list.contains("SCAN activations"), "{name:?}: {list}");
            assert!(!list.contains("TEMP B-TREE"), "{name:?} sorts: {list}");
            let count = plan(&format!("SELECT count(*) FROM ({})", f.select("seq")));
            assert!(!count.contains("SCAN activations "), "{name:?}: {count}");
        }
        let entities = plan(
            "SELECT id, doc FROM entities WHERE ns = ?1 AND kind = ?2 \
             ORDER BY updated DESC, id DESC LIMIT ?3 OFFSET ?4",
        );
        assert!(
            entities.contains("entities_by_ns") && !entities.contains("TEMP B-TREE"),
            "{entities}"
        );
    }
}
