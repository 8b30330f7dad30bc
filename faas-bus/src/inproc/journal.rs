//! The journal of a durable [`InProcessBus`](super::InProcessBus): every message of a durable
//! topic that a consumer group has not committed yet, in one SQLite file, so that a bus opened
//! again on the file (after a clean stop or a crash of the process) delivers them again.
//!
//! # What is written, and when
//!
//! * **publish** (durable topic with at least one group): one row per group, in one
//!   transaction that is committed **before** the message becomes visible to consumers and
//!   before `publish` returns. With [`JournalSync::Normal`] (the default) the commit is a
//!   `write` into SQLite's write-ahead log, not flushed to the disk: it survives a crash of the
//!   process (the kernel holds the page), not a power loss or a crash of the machine (the last
//!   commits may then be lost; the file stays consistent). [`JournalSync::Full`] flushes every
//!   commit (`fsync`) and survives a power loss too, at the price of a disk flush per publish.
//! * **publish_deferred**: nothing. **persist** of such a message: the rows a publish writes,
//!   for the groups that have not committed it yet, in one transaction, before `persist`
//!   returns.
//! * **subscribe** of a new group: one row naming the group, so that the group outlives the
//!   process too (it keeps receiving what is published before its first member of the next
//!   run subscribes).
//! * **commit**: the row is deleted **lazily**, with the next publish's transaction or by the
//!   maintenance thread within [`MAINTENANCE_INTERVAL`]. A commit lost in a crash means the
//!   message is delivered again, which at-least-once delivery allows (the invoker skips work
//!   whose record exists); nothing acknowledged is ever lost.
//! * **retention**: queued messages dropped for age are deleted like committed ones, and rows
//!   older than their topic's retention are dropped when the topic is restored.
//!
//! # Size
//!
//! The write-ahead log is checkpointed by the maintenance thread (on its own connection,
//! without holding publishers up) whenever there were writes, and SQLite truncates it to
//! [`WAL_LIMIT_BYTES`] when it starts over; free pages of the database are given back to the
//! file system by incremental vacuum once they are most of it. So the files hold what is not
//! yet committed plus a few MiB, whatever went through them.
//!
//! # Files
//!
//! `PATH` (the database, created `0600`: activation messages carry their caller's key),
//! `PATH-wal` and `PATH-shm` (SQLite's), and `PATH.lock`, locked for the life of the journal
//! with the process's pid in it: a second bus on the same journal is refused. A file that is not
//! a journal (another SQLite database, or not SQLite at all, or damaged) is refused with a
//! message that says so.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faas_core::lockfile::LockError;

use super::JournalSync;
use bytes::Bytes;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use faas_core::{Error, Result};

/// The backend name in errors.
const BACKEND: &str = "inproc-journal";
/// `PRAGMA application_id` of a journal: "fbus" in ASCII.
const APPLICATION_ID: i32 = 0x6662_7573;
/// The layout version this build writes.
const SCHEMA_VERSION: u32 = 1;
/// How often the maintenance thread deletes committed rows and checkpoints.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(200);
/// The size the write-ahead log is truncated to when it starts over.
pub const WAL_LIMIT_BYTES: u64 = 4 << 20;

const SCHEMA: &str = r#"
CREATE TABLE groups (
    topic TEXT NOT NULL,
    grp   TEXT NOT NULL,
    PRIMARY KEY (topic, grp)
) WITHOUT ROWID;
CREATE TABLE messages (
    row       INTEGER PRIMARY KEY,  -- one row per (message, group), assigned by the bus
    topic     TEXT NOT NULL,
    grp       TEXT NOT NULL,
    part      INTEGER NOT NULL,
    off       INTEGER NOT NULL,
    key       BLOB,
    payload   BLOB NOT NULL,
    published INTEGER NOT NULL      -- epoch ms
);
"#;

/// A message read back from the journal.
#[derive(Debug)]
pub(crate) struct RestoredRow {
    pub(crate) row: i64,
    pub(crate) group: String,
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) key: Option<Bytes>,
    pub(crate) payload: Bytes,
    pub(crate) published_ms: u64,
}

/// What the journal held for one topic when it was opened.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// Every group that ever subscribed.
    pub(crate) groups: Vec<String>,
    /// Uncommitted messages, by group, partition and offset.
    pub(crate) rows: Vec<RestoredRow>,
}

/// The open journal. Shared (`Arc`) by the bus and its durable topics; closed (committed rows
/// deleted, log checkpointed) when the last handle goes.
pub(crate) struct Journal {
    shared: Arc<Shared>,
    maintenance: Option<JoinHandle<()>>,
}

struct Shared {
    file: String,
    path: PathBuf,
    sync: JournalSync,
    writer: Mutex<Writer>,
    /// Rows committed by consumers, deleted lazily.
    deletes: Mutex<Vec<i64>>,
    /// Written since the last checkpoint.
    dirty: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
    restored: Mutex<HashMap<String, Restored>>,
    /// Held for the journal's life.
    _lock: File,
}

/// The writing connection. Its lock also orders publishes to durable topics (see the bus).
pub(crate) struct Writer {
    conn: Connection,
    file: String,
    next_row: i64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("file", &self.shared.file)
            .field("sync", &self.shared.sync)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a journal cannot be used, said so that an operator knows what to do.
fn unusable(file: &str, detail: impl std::fmt::Display) -> Error {
    Error::backend(
        BACKEND,
        false,
        format!(
            "the bus journal {file} cannot be used: {detail}; move it away to start with an empty journal (messages in it are then lost), or give another journal path"
        ),
    )
}

fn io_error(file: &str, what: &str, e: std::io::Error) -> Error {
    Error::backend(
        BACKEND,
        false,
        format!("cannot open the bus journal {file}: {what}: {e}"),
    )
}

/// An SQLite failure while opening: damaged and foreign files are [`unusable`].
fn open_error(e: rusqlite::Error, file: &str) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => unusable(
            file,
            format!("it is damaged or not an SQLite database ({e})"),
        ),
        _ => Error::backend(
            BACKEND,
            false,
            format!("cannot open the bus journal {file}: {e}"),
        ),
    }
}

/// An SQLite failure while running: a full disk or a busy file may pass.
fn write_error(e: rusqlite::Error, file: &str) -> Error {
    let retryable = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DiskFull | ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    Error::backend(
        BACKEND,
        retryable,
        format!("cannot write the bus journal {file}: {e}"),
    )
}

/// The size of `file`'s write-ahead log, bytes.
fn wal_bytes(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Takes `PATH.lock` for the journal's life, writing the pid into it.
fn take_lock(path: &Path, file: &str) -> Result<File> {
    faas_core::lockfile::lock(path).map_err(|e| match e {
        LockError::Held { holder } => Error::backend(
            BACKEND,
            false,
            format!(
                "the bus journal {file} is in use by another faas-platform{holder}; two buses cannot share one journal"
            ),
        ),
        LockError::Io { what, error } => io_error(file, what, error),
    })
}

fn connect(path: &Path, sync: JournalSync) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            JournalSync::Normal => "NORMAL",
            JournalSync::Full => "FULL",
        },
    )?;
    // Checkpoints are the maintenance thread's, never a publisher's.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES as i64)?;
    Ok(conn)
}

/// Checks the file's identity and creates the layout on a new file.
fn prepare(conn: &mut Connection, file: &str) -> Result<()> {
    let e = |e| open_error(e, file);
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(e)?;
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(e)?;
    if app == 0 && version == 0 {
        let foreign: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        if let Some(table) = foreign {
            return Err(unusable(
                file,
                format!("it is an SQLite database of another program (it holds '{table}')"),
            ));
        }
        // Before the first table: only then can incremental vacuum be chosen.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(e)?;
        let tx = conn.transaction().map_err(e)?;
        tx.execute_batch(SCHEMA).map_err(e)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(e)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(e)?;
        tx.commit().map_err(e)?;
        return Ok(());
    }
    if app != APPLICATION_ID {
        return Err(unusable(
            file,
            format!(
                "it is not a bus journal (application id {app:#x}, a journal's is {APPLICATION_ID:#x})"
            ),
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(unusable(
            file,
            format!(
                "it has layout version {version}, this faas knows up to {SCHEMA_VERSION}: it was written by a newer faas"
            ),
        ));
    }
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(e)?;
    if check != "ok" {
        return Err(unusable(file, format!("it is damaged ({check})")));
    }
    Ok(())
}

/// Reads every group and uncommitted message, by topic.
fn read_all(conn: &Connection, file: &str) -> Result<(HashMap<String, Restored>, i64)> {
    let e = |e| open_error(e, file);
    let mut out: HashMap<String, Restored> = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT topic, grp FROM groups ORDER BY topic, grp")
        .map_err(e)?;
    let groups = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(e)?;
    for g in groups {
        let (topic, group) = g.map_err(e)?;
        out.entry(topic).or_default().groups.push(group);
    }
    let mut stmt = conn
        .prepare(
            "SELECT row, topic, grp, part, off, key, payload, published FROM messages \
             ORDER BY topic, grp, part, off",
        )
        .map_err(e)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                RestoredRow {
                    row: r.get(0)?,
                    group: r.get(2)?,
                    partition: r.get(3)?,
                    offset: r.get::<_, i64>(4)?.max(0) as u64,
                    key: r.get::<_, Option<Vec<u8>>>(5)?.map(Bytes::from),
                    payload: Bytes::from(r.get::<_, Vec<u8>>(6)?),
                    published_ms: r.get::<_, i64>(7)?.max(0) as u64,
                },
            ))
        })
        .map_err(e)?;
    for row in rows {
        let (topic, row) = row.map_err(e)?;
        let t = out.entry(topic).or_default();
        if !t.groups.contains(&row.group) {
            t.groups.push(row.group.clone());
        }
        t.rows.push(row);
    }
    let next: i64 = conn
        .query_row("SELECT coalesce(max(row), 0) + 1 FROM messages", [], |r| {
            r.get(0)
        })
        .map_err(e)?;
    Ok((out, next))
}

impl Journal {
    /// Opens (or creates) the journal at `path`, reads what it holds and starts the
    /// maintenance thread. Blocking.
    pub(crate) fn open(path: &Path, sync: JournalSync) -> Result<Self> {
        let file = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_error(&file, "cannot create its directory", e))?;
        }
        let lock_file = take_lock(path, &file)?;
        if !path.exists() {
            let mut o = OpenOptions::new();
            o.write(true).create(true).truncate(false);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(path)
                .map_err(|e| io_error(&file, "cannot create it", e))?;
        }
        let mut conn = connect(path, sync).map_err(|e| open_error(e, &file))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| open_error(e, &file))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(unusable(
                &file,
                format!("its file system does not allow write-ahead logging (mode {mode})"),
            ));
        }
        prepare(&mut conn, &file)?;
        let (restored, next_row) = read_all(&conn, &file)?;
        let pending: usize = restored.values().map(|r| r.rows.len()).sum();
        if pending > 0 {
            tracing::info!(
                journal = %file,
                messages = pending,
                "the bus journal holds messages not yet committed; they are delivered again"
            );
        }
        let checkpointer = connect(path, sync).map_err(|e| open_error(e, &file))?;
        let shared = Arc::new(Shared {
            file: file.clone(),
            path: path.to_path_buf(),
            sync,
            writer: Mutex::new(Writer {
                conn,
                file,
                next_row,
            }),
            deletes: Mutex::new(Vec::new()),
            dirty: AtomicBool::new(true),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            restored: Mutex::new(restored),
            _lock: lock_file,
        });
        let s = Arc::clone(&shared);
        let maintenance = std::thread::Builder::new()
            .name("faas-bus-journal".into())
            .spawn(move || maintain(&s, &checkpointer))
            .map_err(|e| io_error(&shared.file, "cannot start its maintenance thread", e))?;
        Ok(Self {
            shared,
            maintenance: Some(maintenance),
        })
    }

    /// The journal's file.
    pub(crate) fn file(&self) -> &str {
        &self.shared.file
    }

    /// The flush policy.
    pub(crate) fn sync(&self) -> JournalSync {
        self.shared.sync
    }

    /// The writing connection; publishes to durable topics hold it from choosing the offset
    /// until the message is queued, so that queues stay in offset order.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Writer> {
        lock(&self.shared.writer)
    }

    /// Takes what the journal held for `topic` when it was opened (once).
    pub(crate) fn take_restored(&self, topic: &str) -> Option<Restored> {
        lock(&self.shared.restored).remove(topic)
    }

    /// Forgets `row` (committed, or dropped for age): deleted with the next write.
    pub(crate) fn forget(&self, row: i64) {
        lock(&self.shared.deletes).push(row);
    }

    /// Forgets every row of `rows`.
    pub(crate) fn forget_all(&self, rows: impl IntoIterator<Item = i64>) {
        lock(&self.shared.deletes).extend(rows);
    }

    /// Deletes forgotten rows, checkpoints the log (truncating it) and gives free pages back
    /// to the file system, now. Blocking.
    pub(crate) fn compact(&self) -> Result<()> {
        let mut w = self.writer();
        let deletes = std::mem::take(&mut *lock(&self.shared.deletes));
        w.delete(&deletes)?;
        let file = w.file.clone();
        let e = |e| write_error(e, &file);
        w.conn
            .execute_batch("PRAGMA incremental_vacuum")
            .map_err(e)?;
        w.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(e)?;
        self.shared.dirty.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes on disk: the database and its write-ahead log.
    pub(crate) fn disk_bytes(&self) -> u64 {
        std::fs::metadata(&self.shared.path).map_or(0, |m| m.len()) + wal_bytes(&self.shared.path)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.maintenance.take() {
            let _ = t.join();
        }
    }
}

impl Writer {
    /// Records that `group` of `topic` exists.
    pub(crate) fn add_group(&mut self, topic: &str, group: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO groups (topic, grp) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![topic, group]))
            .map_err(|e| write_error(e, &self.file))?;
        Ok(())
    }

    /// Appends one message for each of `groups` in one transaction (deleting the rows
    /// `journal` was asked to forget in the same one); the rows, in the order of `groups`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &mut self,
        journal: &Journal,
        topic: &str,
        groups: &[&str],
        partition: u32,
        offset: u64,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<Vec<i64>> {
        let published = now_ms() as i64;
        let deletes = std::mem::take(&mut *lock(&journal.shared.deletes));
        let first = self.next_row;
        let file = &self.file;
        let e = |e| write_error(e, file);
        let tx = self.conn.transaction().map_err(e)?;
        let mut rows = Vec::with_capacity(groups.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO messages (row, topic, grp, part, off, key, payload, published) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(e)?;
            for (i, group) in groups.iter().enumerate() {
                let row = first + i as i64;
                insert
                    .execute(params![
                        row,
                        topic,
                        group,
                        partition,
                        offset as i64,
                        key,
                        payload,
                        published
                    ])
                    .map_err(e)?;
                rows.push(row);
            }
            let mut delete = tx
                .prepare_cached("DELETE FROM messages WHERE row = ?1")
                .map_err(e)?;
            for row in &deletes {
                delete.execute([row]).map_err(e)?;
            }
        }
        if let Err(err) = tx.commit() {
            // Nothing was written: the rows to forget are still to be deleted.
            lock(&journal.shared.deletes).extend(deletes);
            return Err(write_error(err, file));
        }
        self.next_row = first + groups.len() as i64;
        journal.shared.dirty.store(true, Ordering::Relaxed);
        Ok(rows)
    }

    /// Deletes `rows` in one transaction.
    fn delete(&mut self, rows: &[i64]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let file = &self.file;
        let e = |e| write_error(e, file);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM messages WHERE row = ?1")
                .map_err(e)?;
            for row in rows {
                delete.execute([row]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
}

/// The maintenance thread: deletes committed rows, checkpoints the log after writes and
/// vacuums free pages, every [`MAINTENANCE_INTERVAL`] until the journal closes; then once more.
fn maintain(s: &Shared, checkpointer: &Connection) {
    loop {
        let stopping = {
            let stop = lock(&s.stop);
            let (stop, _) = s
                .wake
                .wait_timeout_while(stop, MAINTENANCE_INTERVAL, |stop| !*stop)
                .unwrap_or_else(PoisonError::into_inner);
            *stop
        };
        if let Err(e) = maintenance_step(s, checkpointer, stopping) {
            tracing::warn!(journal = %s.file, error = %faas_core::Chain(&e), "bus journal maintenance failed");
        }
        if stopping {
            return;
        }
    }
}

fn maintenance_step(s: &Shared, checkpointer: &Connection, last: bool) -> Result<()> {
    let deletes = std::mem::take(&mut *lock(&s.deletes));
    if !deletes.is_empty() {
        let mut w = lock(&s.writer);
        if let Err(e) = w.delete(&deletes) {
            drop(w);
            lock(&s.deletes).extend(deletes);
            return Err(e);
        }
        s.dirty.store(true, Ordering::Relaxed);
    }
    let e = |e| write_error(e, &s.file);
    // Free pages go back to the file system once they are most of the file.
    let (free, pages): (i64, i64) = checkpointer
        .query_row(
            "SELECT (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_count FROM pragma_page_count)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(e)?;
    if free > 64 && free * 2 > pages {
        lock(&s.writer)
            .conn
            .execute_batch("PRAGMA incremental_vacuum")
            .map_err(e)?;
        s.dirty.store(true, Ordering::Relaxed);
    }
    // After writes, a passive checkpoint (publishers go on meanwhile). When there were none
    // since the last one and the log is still long (it starts over, and is cut to
    // `WAL_LIMIT_BYTES`, only at the next write), truncate it: nobody is held up while idle.
    let mode = if last {
        Some("TRUNCATE")
    } else if s.dirty.swap(false, Ordering::Relaxed) {
        Some("PASSIVE")
    } else if wal_bytes(&s.path) > WAL_LIMIT_BYTES {
        Some("TRUNCATE")
    } else {
        None
    };
    if let Some(mode) = mode {
        checkpointer
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
            .map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(e: Error) -> String {
        faas_core::Chain(&e).to_string()
    }

    #[test]
    fn foreign_newer_and_damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("notes.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE notes (x TEXT)")
            .unwrap();
        let e = message(Journal::open(&foreign, JournalSync::Normal).unwrap_err());
        assert!(e.contains("another program") && e.contains("notes"), "{e}");

        let other_app = dir.path().join("app.db");
        Connection::open(&other_app)
            .unwrap()
            .pragma_update(None, "application_id", 7)
            .unwrap();
        let e = message(Journal::open(&other_app, JournalSync::Normal).unwrap_err());
        assert!(e.contains("not a bus journal") && e.contains("0x7"), "{e}");

        let newer = dir.path().join("newer.db");
        drop(Journal::open(&newer, JournalSync::Normal).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let e = message(Journal::open(&newer, JournalSync::Normal).unwrap_err());
        assert!(e.contains("newer faas"), "{e}");

        // A journal whose pages were overwritten in the middle.
        let broken = dir.path().join("broken.db");
        {
            let j = Journal::open(&broken, JournalSync::Normal).unwrap();
            let mut w = j.writer();
            for i in 0..200u64 {
                w.append(&j, "t", &["g"], 0, i, None, &[7u8; 3000]).unwrap();
            }
            drop(w);
            j.compact().unwrap();
        }
        let mut bytes = std::fs::read(&broken).unwrap();
        assert!(bytes.len() > 64 * 1024, "{}", bytes.len());
        for b in &mut bytes[8192..40960] {
            *b = 0x5a;
        }
        std::fs::write(&broken, &bytes).unwrap();
        let e = message(Journal::open(&broken, JournalSync::Normal).unwrap_err());
        assert!(
            e.contains("cannot be used") && e.contains("damaged") && e.contains("move it away"),
            "{e}"
        );
    }

    #[test]
    fn rows_are_read_back_in_order_and_row_ids_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        {
            let j = Journal::open(&path, JournalSync::Normal).unwrap();
            let mut w = j.writer();
            for g in ["a", "b", "idle"] {
                w.add_group("t", g).unwrap();
            }
            let rows = w
                .append(&j, "t", &["a", "b"], 1, 5, Some(b"k"), b"one")
                .unwrap();
            assert_eq!(rows.len(), 2);
            w.append(&j, "t", &["a"], 0, 9, None, b"two").unwrap();
            drop(w);
            j.forget(rows[1]);
        }
        let j = Journal::open(&path, JournalSync::Normal).unwrap();
        let r = j.take_restored("t").unwrap();
        assert!(j.take_restored("t").is_none(), "restored once");
        let mut groups = r.groups.clone();
        groups.sort();
        assert_eq!(groups, ["a", "b", "idle"]);
        let got: Vec<_> = r
            .rows
            .iter()
            .map(|x| (x.group.as_str(), x.partition, x.offset, x.payload.as_ref()))
            .collect();
        // `b`'s row was forgotten (committed) before the close.
        assert_eq!(got, [("a", 0, 9, &b"two"[..]), ("a", 1, 5, &b"one"[..])]);
        assert_eq!(r.rows[1].key.as_deref(), Some(&b"k"[..]));
        let max = r.rows.iter().map(|x| x.row).max().unwrap();
        let mut w = j.writer();
        let next = w.append(&j, "t", &["a"], 0, 10, None, b"three").unwrap();
        assert!(next[0] > max, "row ids continue above the restored ones");
    }
}
