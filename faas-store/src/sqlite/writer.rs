//! The writer: one OS thread that owns the only writing connection and commits in groups.
//!
//! SQLite lets one connection write at a time. Rather than having tasks compete for that lock
//! (and block on it), every write is a [`Job`] sent to this thread. The thread takes the first
//! queued job and every job already waiting behind it (up to [`MAX_BATCH`]), applies each in a
//! savepoint of one transaction, commits once, and only then answers each caller. So a lone
//! write is committed at once (no timer adds latency), and under load many writes share one
//! commit and its flush to disk: OpenWhisk's activation batching, for every write.
//!
//! A caller's `Ok` therefore always means "committed" (and, with `synchronous=full`, flushed,
//! except for activation records, below). If the commit fails, every job of the group gets
//! the error, even one whose own statements succeeded: nothing is reported written that is
//! not.
//!
//! **Activation records are flushed late** (with `synchronous=full` and `activation_flush`
//! set, the default): a group that holds only activation records is committed at
//! `synchronous=NORMAL`, a `write` into the log without an `fsync`. It survives a crash of the
//! process at once (the operating system holds the pages) and reaches the disk with the next
//! commit of anything else (an `fsync` of the log flushes every frame before it) or with a
//! flush of the log at most `activation_flush` later ([`Job::Flush`], sent by a ticker, and
//! checked after every group). Records are never acknowledged to an API client (the invoker
//! writes them after the activation ends), so this changes no acknowledgement; it saves the
//! `fsync` per invoke, which is most of the store's cost on the invoke path.
//!
//! **Activation records linger** (`activation_linger`, 2 ms by default): a group that holds
//! only records waits that long for more records before its commit, so that records written
//! close together share one transaction — one set of log frames for the pages they share (the
//! table's and the time-ordered indexes' last pages) and fewer checkpoints. Any other write
//! ends the wait at once. CouchDB's adapter lingers the same way (`batch_linger_ms`).
//!
//! The thread also keeps the activation-record bounds: after each group it drops the records
//! written earliest beyond `max_activations` (in the same transaction), and a [`Job::Sweep`]
//! removes records older than the TTL, in chunks of [`RETENTION_CHUNK`] so that writes are
//! never held up for long.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faas_core::store::Revision;
use faas_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::config::{Synchronous, WallClock};
use super::error::sqlite_error;
use super::{SqlTime, sql_time};

/// Most jobs committed together.
pub(crate) const MAX_BATCH: usize = 256;
/// Most records one retention step removes (one transaction).
pub(crate) const RETENTION_CHUNK: u64 = 10_000;

/// An entity row, serialized by the caller.
#[derive(Debug)]
pub(crate) struct EntityRow {
    pub(crate) id: String,
    pub(crate) ns: String,
    pub(crate) path: String,
    pub(crate) kind: &'static str,
    pub(crate) updated: SqlTime,
    pub(crate) doc: String,
}

/// An activation row, serialized by the caller.
#[derive(Debug)]
pub(crate) struct ActivationRow {
    pub(crate) ns: String,
    pub(crate) activation_id: String,
    pub(crate) start: SqlTime,
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) bare_name: Option<String>,
    pub(crate) doc: String,
}

/// A subject with its keys, serialized by the caller.
#[derive(Debug)]
pub(crate) struct SubjectRow {
    pub(crate) subject: String,
    pub(crate) blocked: bool,
    pub(crate) doc: String,
    /// (namespace, uuid, key)
    pub(crate) keys: Vec<(String, String, String)>,
}

/// What one sweep step removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    pub(crate) expired: u64,
    pub(crate) over_count: u64,
    /// Whether another step may find more.
    pub(crate) more: bool,
}

/// One request to the writer.
#[derive(Debug)]
pub(crate) enum Job {
    PutEntity {
        row: EntityRow,
        rev: Option<Revision>,
        reply: oneshot::Sender<Result<Revision>>,
    },
    DeleteEntity {
        id: String,
        rev: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
    PutActivation {
        row: ActivationRow,
        reply: oneshot::Sender<Result<bool>>,
    },
    PutSubject {
        row: SubjectRow,
        rev: Option<Revision>,
        reply: oneshot::Sender<Result<Revision>>,
    },
    DeleteSubject {
        subject: String,
        rev: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
    PutLimits {
        ns: String,
        doc: String,
        reply: oneshot::Sender<Result<()>>,
    },
    DeleteLimits {
        ns: String,
        reply: oneshot::Sender<Result<()>>,
    },
    PutDocument {
        collection: String,
        id: String,
        doc: String,
        rev: Option<Revision>,
        reply: oneshot::Sender<Result<Revision>>,
    },
    DeleteDocument {
        collection: String,
        id: String,
        rev: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
    /// One retention step (expired records, then records over the count bound).
    Sweep {
        reply: oneshot::Sender<Result<Swept>>,
    },
    /// Flush the log if activation records committed without a flush wait for one.
    Flush,
    /// Finish, close the connection and release the file lock, then answer.
    Close { reply: oneshot::Sender<()> },
}

/// What the writer did, for tests and diagnostics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Groups committed with a flush (`synchronous` as configured).
    pub(crate) flushed_commits: AtomicU64,
    /// Groups of activation records only, committed without a flush.
    pub(crate) deferred_commits: AtomicU64,
    /// Flushes of the log on their own (`fsync`), for deferred groups.
    pub(crate) log_flushes: AtomicU64,
    /// Whether deferred groups wait for a flush now.
    pub(crate) unflushed: AtomicBool,
}

/// An answer held back until the group's commit.
type Pending = Box<dyn FnOnce(Option<&str>) + Send>;

fn hold<T: Send + 'static>(reply: oneshot::Sender<Result<T>>, outcome: Result<T>) -> Pending {
    Box::new(move |commit_failed: Option<&str>| {
        let answer = match commit_failed {
            Some(why) => Err(Error::backend(
                "sqlite",
                true,
                format!("the write was not committed: {why}"),
            )),
            None => outcome,
        };
        // The caller may have gone away (timeout); nothing to do then.
        let _ = reply.send(answer);
    })
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) file: String,
    pub(crate) max_activations: Option<u64>,
    pub(crate) activation_ttl: Option<Duration>,
    pub(crate) clock: WallClock,
    /// The lock that keeps other platforms off the file; released when the thread ends, after
    /// the connection is closed.
    pub(crate) lock: File,
    /// Activation records in the file (all namespaces).
    pub(crate) total: u64,
    /// The configured `synchronous`.
    pub(crate) synchronous: Synchronous,
    /// With [`Synchronous::Full`]: the longest a group of records only waits for its flush
    /// (`None`: every group is flushed).
    pub(crate) activation_flush: Option<Duration>,
    /// The connection's `synchronous` now.
    pub(crate) conn_sync: Synchronous,
    /// When the earliest group not yet flushed was committed.
    pub(crate) unflushed_since: Option<Instant>,
    /// How long a group of records only waits for more records before its commit.
    pub(crate) activation_linger: Option<Duration>,
    /// The write-ahead log, `PATH-wal`.
    pub(crate) wal: PathBuf,
    pub(crate) stats: Arc<Stats>,
}

impl Writer {
    /// Runs until every sender is gone or a [`Job::Close`] arrives.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut closing = Vec::new();
        // Only for the linger's timed wait; built once, used on this thread alone.
        let timer = match self.activation_linger {
            Some(_) => tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| tracing::warn!(file = %self.file, error = %e, "no linger for activation records"))
                .ok(),
            None => None,
        };
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            drain(&mut rx, &mut jobs);
            if let (Some(linger), Some(timer)) = (self.activation_linger, &timer) {
                linger_for_records(&mut rx, &mut jobs, linger, timer);
            }
            let mut writes = Vec::with_capacity(jobs.len());
            let mut sweeps = Vec::new();
            let mut flush = false;
            for job in jobs {
                match job {
                    Job::Sweep { reply } => sweeps.push(reply),
                    Job::Close { reply } => closing.push(reply),
                    Job::Flush => flush = true,
                    write => writes.push(write),
                }
            }
            if !writes.is_empty() {
                self.commit_group(writes);
            }
            for reply in sweeps {
                let _ = reply.send(self.sweep_step());
            }
            // The ticker's flush, or an overdue one (the ticker may be late, or its job
            // dropped while the queue was full).
            let overdue = match (self.unflushed_since, self.activation_flush) {
                (Some(since), Some(within)) => since.elapsed() >= within,
                _ => false,
            };
            if flush || overdue {
                self.flush_log();
            }
            if !closing.is_empty() {
                break;
            }
        }
        self.flush_log();
        // Refuse what is still queued, then close: later writes get a clear error.
        rx.close();
        while let Ok(job) = rx.try_recv() {
            refuse(job);
        }
        let Self { conn, lock, .. } = self;
        // Folds the WAL back into the database so the file stands alone; failure is harmless.
        let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
        if let Err((_, e)) = conn.close() {
            tracing::warn!(error = %e, "closing the SQLite store");
        }
        drop(lock);
        for reply in closing {
            let _ = reply.send(());
        }
    }

    /// Applies `jobs` in one transaction and answers them after the commit.
    fn commit_group(&mut self, jobs: Vec<Job>) {
        let now = (self.clock)();
        let file = self.file.clone();
        let defer = self.synchronous == Synchronous::Full
            && self.activation_flush.is_some()
            && jobs.iter().all(|j| matches!(j, Job::PutActivation { .. }));
        self.set_sync(if defer {
            Synchronous::Normal
        } else {
            self.synchronous
        });
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let why = sqlite_error(e, &file).to_string();
                for job in jobs {
                    fail(job, &why);
                }
                return;
            }
        };
        let mut pending: Vec<Pending> = Vec::with_capacity(jobs.len());
        let mut added = 0u64;
        for job in jobs {
            pending.push(apply(&mut tx, job, now, &file, &mut added));
        }
        let mut removed = 0u64;
        let mut trim_failed = None;
        if let Some(max) = self.max_activations {
            let over = (self.total + added).saturating_sub(max);
            if over > 0 {
                match delete_oldest(&tx, over.min(RETENTION_CHUNK)) {
                    Ok(n) => removed = n,
                    Err(e) => trim_failed = Some(sqlite_error(e, &file).to_string()),
                }
            }
        }
        let failed = match trim_failed {
            Some(why) => {
                let _ = tx.rollback();
                Some(why)
            }
            None => tx
                .commit()
                .err()
                .map(|e| sqlite_error(e, &file).to_string()),
        };
        match &failed {
            None => {
                self.total = (self.total + added).saturating_sub(removed);
                self.committed();
            }
            Some(why) => {
                tracing::error!(file = %self.file, error = %why, "a group of writes was not committed");
                self.total = count_all(&self.conn).unwrap_or(self.total);
            }
        }
        for answer in pending {
            answer(failed.as_deref());
        }
    }

    /// Sets the connection's `synchronous` for the next commit (outside a transaction).
    fn set_sync(&mut self, mode: Synchronous) {
        if self.conn_sync == mode {
            return;
        }
        match self.conn.pragma_update(None, "synchronous", mode.pragma()) {
            Ok(()) => self.conn_sync = mode,
            // The connection keeps its mode: at worst a group is flushed that need not be, or
            // a group of records waits for the next flush like a deferred one.
            Err(e) => tracing::warn!(file = %self.file, error = %e, "cannot set synchronous"),
        }
    }

    /// Books a successful commit: a flushed one flushed every frame before it too.
    fn committed(&mut self) {
        if self.conn_sync == Synchronous::Full {
            self.stats.flushed_commits.fetch_add(1, Ordering::Relaxed);
            self.unflushed_since = None;
            self.stats.unflushed.store(false, Ordering::Relaxed);
            return;
        }
        self.stats.deferred_commits.fetch_add(1, Ordering::Relaxed);
        // With `synchronous=normal` configured nothing waits for a flush but a checkpoint.
        if self.synchronous == Synchronous::Full && self.unflushed_since.is_none() {
            self.unflushed_since = Some(Instant::now());
            self.stats.unflushed.store(true, Ordering::Relaxed);
        }
    }

    /// Flushes the log (`fdatasync` of `PATH-wal`) if deferred groups wait for it.
    fn flush_log(&mut self) {
        if self.unflushed_since.is_none() {
            return;
        }
        let flushed = match File::open(&self.wal).and_then(|f| f.sync_data()) {
            Ok(()) => true,
            // No log: a checkpoint folded it into the database and flushed that.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                // Left to the next flushed commit or the next tick.
                tracing::error!(file = %self.file, error = %e, "cannot flush the SQLite log");
                false
            }
        };
        if flushed {
            self.stats.log_flushes.fetch_add(1, Ordering::Relaxed);
            self.unflushed_since = None;
            self.stats.unflushed.store(false, Ordering::Relaxed);
        }
    }

    /// One retention step in its own transaction.
    fn sweep_step(&mut self) -> Result<Swept> {
        let file = self.file.clone();
        let cutoff = self.activation_ttl.map(|ttl| {
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            sql_time((self.clock)().saturating_sub(ttl_ms))
        });
        let over = self
            .max_activations
            .map_or(0, |max| self.total.saturating_sub(max));
        if cutoff.is_none() && over == 0 {
            return Ok(Swept::default());
        }
        self.set_sync(self.synchronous);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_error(e, &file))?;
        let mut swept = Swept::default();
        if let Some(cutoff) = cutoff {
            swept.expired = tx
                .execute(
                    "DELETE FROM activations WHERE seq IN \
                     (SELECT seq FROM activations WHERE written < ?1 ORDER BY written LIMIT ?2)",
                    params![cutoff, RETENTION_CHUNK as i64],
                )
                .map_err(|e| sqlite_error(e, &file))? as u64;
        }
        let over = over.saturating_sub(swept.expired);
        if over > 0 {
            swept.over_count = delete_oldest(&tx, over.min(RETENTION_CHUNK))
                .map_err(|e| sqlite_error(e, &file))?;
        }
        tx.commit().map_err(|e| sqlite_error(e, &file))?;
        self.committed();
        self.total = self.total.saturating_sub(swept.expired + swept.over_count);
        swept.more = swept.expired == RETENTION_CHUNK || swept.over_count == RETENTION_CHUNK;
        Ok(swept)
    }
}

/// Moves every job already queued into `jobs`, up to [`MAX_BATCH`].
fn drain(rx: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>) {
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
}

/// While `jobs` holds activation records only, waits up to `linger` (from now) for more
/// jobs, so that records written close together share one commit: fewer log frames and
/// checkpoints per record. Any other job ends the wait (it is committed at once, with the
/// records); so does a full batch or a closed channel.
fn linger_for_records(
    rx: &mut mpsc::Receiver<Job>,
    jobs: &mut Vec<Job>,
    linger: Duration,
    timer: &tokio::runtime::Runtime,
) {
    let records_only = |jobs: &[Job]| jobs.iter().all(|j| matches!(j, Job::PutActivation { .. }));
    let until = tokio::time::Instant::now() + linger;
    while jobs.len() < MAX_BATCH && records_only(jobs) {
        // The timeout is made inside the timer's runtime (it needs its clock).
        let next = timer.block_on(async { tokio::time::timeout_at(until, rx.recv()).await });
        match next {
            Ok(Some(job)) => {
                jobs.push(job);
                drain(rx, jobs);
            }
            // Time is up, or every sender is gone (the outer loop ends then).
            Ok(None) | Err(_) => break,
        }
    }
}

/// Applies one write in a savepoint of `tx`; returns its answer, held until the commit.
fn apply(tx: &mut Transaction<'_>, job: Job, now: u64, file: &str, added: &mut u64) -> Pending {
    let sp = match tx.savepoint() {
        Ok(sp) => sp,
        Err(e) => {
            let why = sqlite_error(e, file).to_string();
            return Box::new(move |_: Option<&str>| fail(job, &why));
        }
    };
    let pending = match job {
        Job::PutEntity { row, rev, reply } => {
            let r = put_entity(&sp, &row, rev.as_ref()).map_err(|e| e.into_error(file));
            hold(reply, r)
        }
        Job::DeleteEntity { id, rev, reply } => {
            let r = delete_entity(&sp, &id, &rev).map_err(|e| e.into_error(file));
            hold(reply, r)
        }
        Job::PutActivation { row, reply } => {
            let r = sp
                .prepare_cached(
                    "INSERT INTO activations \
                     (ns, activation_id, start, name, path, bare_name, written, doc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (ns, activation_id) DO NOTHING",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        row.ns,
                        row.activation_id,
                        row.start,
                        row.name,
                        row.path,
                        row.bare_name,
                        sql_time(now),
                        row.doc
                    ])
                })
                .map(|n| n == 1)
                .map_err(|e| sqlite_error(e, file));
            if let Ok(true) = r {
                *added += 1;
            }
            hold(reply, r)
        }
        Job::PutSubject { row, rev, reply } => {
            let r = put_subject(&sp, &row, rev.as_ref()).map_err(|e| e.into_error(file));
            hold(reply, r)
        }
        Job::DeleteSubject {
            subject,
            rev,
            reply,
        } => {
            let r = delete_subject(&sp, &subject, &rev).map_err(|e| e.into_error(file));
            hold(reply, r)
        }
        Job::DeleteLimits { ns, reply } => {
            let r = sp
                .execute("DELETE FROM limits WHERE ns = ?1", params![ns])
                .map_err(|e| sqlite_error(e, file))
                .and_then(|n| {
                    if n == 1 {
                        Ok(())
                    } else {
                        Err(Error::not_found(format!("{ns}/limits")))
                    }
                });
            hold(reply, r)
        }
        Job::PutLimits { ns, doc, reply } => {
            let r = sp
                .execute(
                    "INSERT INTO limits (ns, doc) VALUES (?1, ?2) \
                     ON CONFLICT (ns) DO UPDATE SET doc = excluded.doc",
                    params![ns, doc],
                )
                .map(|_| ())
                .map_err(|e| sqlite_error(e, file));
            hold(reply, r)
        }
        Job::PutDocument {
            collection,
            id,
            doc,
            rev,
            reply,
        } => {
            let r = put_document(&sp, &collection, &id, &doc, rev.as_ref())
                .map_err(|e| e.into_error(file));
            hold(reply, r)
        }
        Job::DeleteDocument {
            collection,
            id,
            rev,
            reply,
        } => {
            let r = delete_document(&sp, &collection, &id, &rev).map_err(|e| e.into_error(file));
            hold(reply, r)
        }
        Job::Sweep { reply } => hold(reply, Ok(Swept::default())),
        Job::Flush => Box::new(|_: Option<&str>| {}),
        Job::Close { reply } => {
            let _ = reply.send(());
            Box::new(|_: Option<&str>| {})
        }
    };
    // A failed savepoint rolls back on drop; a successful one is released into the group.
    if let Err(e) = sp.commit() {
        let why = sqlite_error(e, file).to_string();
        return Box::new(move |_| pending(Some(&why)));
    }
    pending
}

/// A refusal for a job that arrives once the store is closing.
fn refuse(job: Job) {
    fail(job, "the store is closed");
}

fn fail(job: Job, why: &str) {
    let e = || Error::unavailable(format!("SQLite store: {why}"));
    match job {
        Job::PutEntity { reply, .. } => drop(reply.send(Err(e()))),
        Job::DeleteEntity { reply, .. } => drop(reply.send(Err(e()))),
        Job::PutActivation { reply, .. } => drop(reply.send(Err(e()))),
        Job::PutSubject { reply, .. } => drop(reply.send(Err(e()))),
        Job::DeleteSubject { reply, .. } => drop(reply.send(Err(e()))),
        Job::PutLimits { reply, .. } => drop(reply.send(Err(e()))),
        Job::DeleteLimits { reply, .. } => drop(reply.send(Err(e()))),
        Job::PutDocument { reply, .. } => drop(reply.send(Err(e()))),
        Job::DeleteDocument { reply, .. } => drop(reply.send(Err(e()))),
        Job::Sweep { reply } => drop(reply.send(Err(e()))),
        Job::Flush => {}
        Job::Close { reply } => drop(reply.send(())),
    }
}

/// Why an entity write did not happen.
enum EntityWriteError {
    AlreadyExists(String),
    Conflict(String),
    NotFound(String),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for EntityWriteError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl EntityWriteError {
    fn into_error(self, file: &str) -> Error {
        match self {
            Self::AlreadyExists(id) => Error::AlreadyExists { id },
            Self::Conflict(id) => Error::conflict(id),
            Self::NotFound(id) => Error::not_found(id),
            Self::Sqlite(e) => sqlite_error(e, file),
        }
    }
}

/// `N-<32 hex>` with fresh random hex, so a recreated document never reuses a revision.
fn revision(generation: u64) -> Revision {
    let r: u128 = rand::random();
    Revision(format!("{generation}-{r:032x}"))
}

fn generation(rev: &Revision) -> u64 {
    rev.0
        .split_once('-')
        .and_then(|(n, _)| n.parse::<u64>().ok())
        .unwrap_or(0)
}

fn put_entity(
    conn: &Connection,
    row: &EntityRow,
    rev: Option<&Revision>,
) -> std::result::Result<Revision, EntityWriteError> {
    match rev {
        None => {
            let new_rev = revision(1);
            let n = conn
                .prepare_cached(
                    "INSERT INTO entities (id, ns, path, kind, updated, rev, doc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![
                    row.id,
                    row.ns,
                    row.path,
                    row.kind,
                    row.updated,
                    new_rev.0,
                    row.doc
                ])?;
            if n == 0 {
                return Err(EntityWriteError::AlreadyExists(row.id.clone()));
            }
            Ok(new_rev)
        }
        Some(current) => {
            let new_rev = revision(generation(current).saturating_add(1));
            let n = conn
                .prepare_cached(
                    "UPDATE entities SET ns = ?2, path = ?3, kind = ?4, updated = ?5, rev = ?6, \
                     doc = ?7 WHERE id = ?1 AND rev = ?8",
                )?
                .execute(params![
                    row.id,
                    row.ns,
                    row.path,
                    row.kind,
                    row.updated,
                    new_rev.0,
                    row.doc,
                    current.0
                ])?;
            if n == 0 {
                // A missing document and a stale revision are both a conflict for an update.
                return Err(EntityWriteError::Conflict(row.id.clone()));
            }
            Ok(new_rev)
        }
    }
}

fn delete_entity(
    conn: &Connection,
    id: &str,
    rev: &Revision,
) -> std::result::Result<(), EntityWriteError> {
    let n = conn
        .prepare_cached("DELETE FROM entities WHERE id = ?1 AND rev = ?2")?
        .execute(params![id, rev.0])?;
    if n == 1 {
        return Ok(());
    }
    let exists = conn
        .prepare_cached("SELECT 1 FROM entities WHERE id = ?1")?
        .query_row(params![id], |_| Ok(()))
        .optional()?
        .is_some();
    Err(if exists {
        EntityWriteError::Conflict(id.to_string())
    } else {
        EntityWriteError::NotFound(id.to_string())
    })
}

/// Creates (`rev = None`) or replaces at `rev` document `collection/id`, as [`put_entity`]
/// does for entities.
fn put_document(
    conn: &Connection,
    collection: &str,
    id: &str,
    doc: &str,
    rev: Option<&Revision>,
) -> std::result::Result<Revision, EntityWriteError> {
    let key = || format!("{collection}/{id}");
    match rev {
        None => {
            let new_rev = revision(1);
            let n = conn
                .prepare_cached(
                    "INSERT INTO documents (collection, id, rev, doc) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (collection, id) DO NOTHING",
                )?
                .execute(params![collection, id, new_rev.0, doc])?;
            if n == 0 {
                return Err(EntityWriteError::AlreadyExists(key()));
            }
            Ok(new_rev)
        }
        Some(current) => {
            let new_rev = revision(generation(current).saturating_add(1));
            let n = conn
                .prepare_cached(
                    "UPDATE documents SET rev = ?3, doc = ?4 \
                     WHERE collection = ?1 AND id = ?2 AND rev = ?5",
                )?
                .execute(params![collection, id, new_rev.0, doc, current.0])?;
            if n == 0 {
                return Err(EntityWriteError::Conflict(key()));
            }
            Ok(new_rev)
        }
    }
}

fn delete_document(
    conn: &Connection,
    collection: &str,
    id: &str,
    rev: &Revision,
) -> std::result::Result<(), EntityWriteError> {
    let n = conn
        .prepare_cached("DELETE FROM documents WHERE collection = ?1 AND id = ?2 AND rev = ?3")?
        .execute(params![collection, id, rev.0])?;
    if n == 1 {
        return Ok(());
    }
    let exists = conn
        .prepare_cached("SELECT 1 FROM documents WHERE collection = ?1 AND id = ?2")?
        .query_row(params![collection, id], |_| Ok(()))
        .optional()?
        .is_some();
    let key = format!("{collection}/{id}");
    Err(if exists {
        EntityWriteError::Conflict(key)
    } else {
        EntityWriteError::NotFound(key)
    })
}

/// Creates (`rev = None`) or replaces at `rev` a subject record and its keys, as
/// [`put_entity`] does for entities.
fn put_subject(
    conn: &Connection,
    row: &SubjectRow,
    rev: Option<&Revision>,
) -> std::result::Result<Revision, EntityWriteError> {
    let new_rev = match rev {
        None => {
            let new_rev = revision(1);
            let n = conn
                .prepare_cached(
                    "INSERT INTO subjects (subject, blocked, doc, rev) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (subject) DO NOTHING",
                )?
                .execute(params![row.subject, row.blocked, row.doc, new_rev.0])?;
            if n == 0 {
                return Err(EntityWriteError::AlreadyExists(row.subject.clone()));
            }
            new_rev
        }
        Some(current) => {
            let new_rev = revision(generation(current).saturating_add(1));
            let n = conn
                .prepare_cached(
                    "UPDATE subjects SET blocked = ?2, doc = ?3, rev = ?4 \
                     WHERE subject = ?1 AND rev = ?5",
                )?
                .execute(params![
                    row.subject,
                    row.blocked,
                    row.doc,
                    new_rev.0,
                    current.0
                ])?;
            if n == 0 {
                return Err(EntityWriteError::Conflict(row.subject.clone()));
            }
            new_rev
        }
    };
    conn.prepare_cached("DELETE FROM subject_keys WHERE subject = ?1")?
        .execute(params![row.subject])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO subject_keys (subject, ns, uuid, key) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (ns, uuid, key) in &row.keys {
        insert.execute(params![row.subject, ns, uuid, key])?;
    }
    Ok(new_rev)
}

/// Deletes a subject record and its keys at its current revision (the limits stay).
fn delete_subject(
    conn: &Connection,
    subject: &str,
    rev: &Revision,
) -> std::result::Result<(), EntityWriteError> {
    let current: Option<String> = conn
        .prepare_cached("SELECT rev FROM subjects WHERE subject = ?1")?
        .query_row(params![subject], |r| r.get(0))
        .optional()?;
    match current {
        None => Err(EntityWriteError::NotFound(format!("subject {subject}"))),
        Some(r) if r != rev.0 => Err(EntityWriteError::Conflict(subject.to_string())),
        Some(_) => {
            conn.prepare_cached("DELETE FROM subject_keys WHERE subject = ?1")?
                .execute(params![subject])?;
            conn.prepare_cached("DELETE FROM subjects WHERE subject = ?1")?
                .execute(params![subject])?;
            Ok(())
        }
    }
}

/// Removes the `n` records written earliest.
fn delete_oldest(conn: &Connection, n: u64) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "DELETE FROM activations WHERE seq IN (SELECT seq FROM activations ORDER BY seq LIMIT ?1)",
    )?
    .execute(params![i64::try_from(n).unwrap_or(i64::MAX)])
    .map(|n| n as u64)
}

/// Activation records in the file, from the per-namespace counts.
pub(crate) fn count_all(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COALESCE(SUM(n), 0) FROM activation_counts",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Job {
        let (reply, _) = oneshot::channel();
        Job::PutActivation {
            row: ActivationRow {
                ns: "ns".into(),
                activation_id: id.into(),
                start: 0,
                name: "a".into(),
                path: None,
                bare_name: None,
                doc: "{}".into(),
            },
            reply,
        }
    }

    fn limits() -> Job {
        let (reply, _) = oneshot::channel();
        Job::PutLimits {
            ns: "ns".into(),
            doc: "{}".into(),
            reply,
        }
    }

    fn timer() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// Records wait for more records; the first other write ends the wait at once and joins
    /// the group with everything queued behind it.
    #[test]
    fn other_writes_end_the_linger() {
        let (tx, mut rx) = mpsc::channel(16);
        for job in [record("b"), limits(), record("c")] {
            tx.try_send(job).unwrap();
        }
        let mut jobs = vec![record("a")];
        let started = Instant::now();
        linger_for_records(&mut rx, &mut jobs, Duration::from_secs(30), &timer());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited for the linger"
        );
        assert_eq!(jobs.len(), 4, "everything queued joins the group");

        // A write that arrives during the wait ends it too.
        let late = tx.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            late.blocking_send(record("e")).unwrap();
            late.blocking_send(limits()).unwrap();
        });
        let mut jobs = vec![record("d")];
        let started = Instant::now();
        linger_for_records(&mut rx, &mut jobs, Duration::from_secs(30), &timer());
        sender.join().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited for the linger"
        );
        assert!(
            jobs.iter().any(|j| matches!(j, Job::PutLimits { .. })),
            "ended by the limits write"
        );
    }

    /// Records alone are committed once the linger is over; a group that is not records only
    /// does not wait at all.
    #[test]
    fn records_alone_wait_out_the_linger() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut jobs = vec![record("a")];
        let started = Instant::now();
        linger_for_records(&mut rx, &mut jobs, Duration::from_millis(30), &timer());
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(jobs.len(), 1);

        let mut jobs = vec![limits()];
        tx.try_send(record("b")).unwrap();
        linger_for_records(&mut rx, &mut jobs, Duration::from_secs(30), &timer());
        assert_eq!(jobs.len(), 1, "an acknowledged write does not wait");

        // Every sender gone: no wait either.
        drop(tx);
        let mut jobs = vec![record("c")];
        linger_for_records(&mut rx, &mut jobs, Duration::from_secs(30), &timer());
        assert_eq!(
            jobs.len(),
            2,
            "the queued record joined; the closed channel ended the wait"
        );
    }
}
