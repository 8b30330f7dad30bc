//! The database layout, its versions and the migrations between them.
//!
//! The file records which layout it holds in two header fields: `PRAGMA application_id`
//! ([`APPLICATION_ID`], so that another program's SQLite file is never taken for a store) and
//! `PRAGMA user_version` (the layout version). Opening a file
//!
//! * with neither and no tables creates the newest layout;
//! * of an older version applies the missing [`MIGRATIONS`] in order, in one transaction
//!   (all or nothing), and logs the upgrade;
//! * of a newer version than this build knows is refused: an older binary must not write a
//!   layout it does not understand;
//! * of another application, or that is not an SQLite database at all, is refused.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::{StoreFileError, sqlite_error};
use faas_core::Result;

/// `PRAGMA application_id` of a faas store: "faas" in ASCII.
pub(crate) const APPLICATION_ID: i32 = 0x6661_6173;

/// Migration `i` takes a file from version `i` to version `i + 1`.
///
/// * 1 — the base layout: entities, activation records with their list indexes, subjects and
///   their keys, namespace limits.
/// * 2 — retention bookkeeping: each record's write time (`written`, set to `start` for records
///   of version 1), an index on it for age-based removal, and per-namespace record counts kept
///   by triggers (so an unfiltered count is one row read).
/// * 3 — subject records carry a revision (optimistic concurrency, as entities): existing
///   records get a fresh one.
/// * 4 — documents of platform components (the alarms provider's schedules and lease), by
///   collection and id, with revisions.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The layout version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const V1: &str = r#"
CREATE TABLE entities (
    id      TEXT NOT NULL UNIQUE,      -- ns[/pkg]/name: one id space for every kind
    ns      TEXT NOT NULL,             -- root namespace
    path    TEXT NOT NULL,             -- ns or ns/pkg
    kind    TEXT NOT NULL,             -- action | package | trigger | rule
    updated INTEGER NOT NULL,          -- epoch ms, the list order
    rev     TEXT NOT NULL,             -- N-<32 hex>
    doc     TEXT NOT NULL              -- the entity's JSON (with entityType)
);
CREATE INDEX entities_by_ns   ON entities (ns, kind, updated, id);
CREATE INDEX entities_by_path ON entities (path, kind, updated, id);

CREATE TABLE activations (
    seq           INTEGER PRIMARY KEY, -- write order
    ns            TEXT NOT NULL,       -- invoking root namespace
    activation_id TEXT NOT NULL,
    start         INTEGER NOT NULL,    -- epoch ms, the list order
    name          TEXT NOT NULL,       -- the record's action name
    path          TEXT,                -- the path annotation without its namespace
    bare_name     TEXT,                -- `name` when `path` does not already say it, else NULL
    doc           TEXT NOT NULL        -- the record's JSON
);
CREATE UNIQUE INDEX activations_by_id ON activations (ns, activation_id);
CREATE INDEX activations_by_start ON activations (ns, start, seq);
CREATE INDEX activations_by_path  ON activations (ns, path, start, seq);
CREATE INDEX activations_by_bare_name ON activations (ns, bare_name, start, seq)
    WHERE bare_name IS NOT NULL;

CREATE TABLE subjects (
    subject TEXT PRIMARY KEY NOT NULL,
    blocked INTEGER NOT NULL,
    doc     TEXT NOT NULL              -- the subject's JSON
);
CREATE TABLE subject_keys (
    seq     INTEGER PRIMARY KEY,       -- the latest write of a uuid or namespace wins
    subject TEXT NOT NULL REFERENCES subjects (subject),
    ns      TEXT NOT NULL,
    uuid    TEXT NOT NULL,
    key     TEXT NOT NULL
);
CREATE INDEX subject_keys_by_uuid    ON subject_keys (uuid);
CREATE INDEX subject_keys_by_ns      ON subject_keys (ns);
CREATE INDEX subject_keys_by_subject ON subject_keys (subject);

CREATE TABLE limits (
    ns  TEXT PRIMARY KEY NOT NULL,
    doc TEXT NOT NULL                  -- UserLimits JSON
);
"#;

const V2: &str = r#"
ALTER TABLE activations ADD COLUMN written INTEGER NOT NULL DEFAULT 0;
UPDATE activations SET written = start;
CREATE INDEX activations_by_written ON activations (written);

CREATE TABLE activation_counts (
    ns TEXT PRIMARY KEY NOT NULL,
    n  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO activation_counts (ns, n) SELECT ns, count(*) FROM activations GROUP BY ns;
CREATE TRIGGER activations_counted AFTER INSERT ON activations BEGIN
    INSERT INTO activation_counts (ns, n) VALUES (new.ns, 1)
        ON CONFLICT (ns) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER activations_uncounted AFTER DELETE ON activations BEGIN
    UPDATE activation_counts SET n = n - 1 WHERE ns = old.ns;
    DELETE FROM activation_counts WHERE ns = old.ns AND n <= 0;
END;
"#;

const V4: &str = r#"
CREATE TABLE documents (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    rev        TEXT NOT NULL,          -- N-<32 hex>
    doc        TEXT NOT NULL,          -- the document's JSON
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
"#;

const V3: &str = r#"
ALTER TABLE subjects ADD COLUMN rev TEXT NOT NULL DEFAULT '';
UPDATE subjects SET rev = '1-' || lower(hex(randomblob(16)));
"#;

/// Brings the database on `conn` to [`SCHEMA_VERSION`], or explains why it cannot.
/// Returns the version the file had (0 for a new file).
pub(crate) fn prepare(conn: &mut Connection, file: &str) -> Result<u32> {
    prepare_to(conn, file, SCHEMA_VERSION)
}

/// As [`prepare`], stopping at version `target` (tests build old files with it).
pub(crate) fn prepare_to(conn: &mut Connection, file: &str, target: u32) -> Result<u32> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sqlite_error(e, file))?;
    let app: i32 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| sqlite_error(e, file))?;
    let version: u32 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| sqlite_error(e, file))?;
    if app == 0 && version == 0 {
        let foreign: Option<String> = tx
            .query_row(
                "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sqlite_error(e, file))?;
        if let Some(table) = foreign {
            return Err(StoreFileError::Foreign {
                file: file.into(),
                detail: format!("it holds tables (such as '{table}') but no faas layout"),
            }
            .into());
        }
    } else if app != APPLICATION_ID {
        return Err(StoreFileError::Foreign {
            file: file.into(),
            detail: format!("its application id is {app:#x}, not faas's {APPLICATION_ID:#x}"),
        }
        .into());
    }
    if version > SCHEMA_VERSION {
        return Err(StoreFileError::TooNew {
            file: file.into(),
            found: version,
            known: SCHEMA_VERSION,
        }
        .into());
    }
    if version >= target {
        return Ok(version);
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(version as usize)
    {
        tx.execute_batch(sql).map_err(|e| {
            faas_core::Error::internal(format!(
                "cannot upgrade the store {file} from schema version {i} to {}: {e}",
                i + 1
            ))
        })?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .and_then(|()| tx.pragma_update(None, "user_version", target))
        .and_then(|()| tx.commit())
        .map_err(|e| sqlite_error(e, file))?;
    if version > 0 {
        tracing::info!(
            file,
            from = version,
            to = target,
            "upgraded the store's schema"
        );
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(dir: &tempfile::TempDir) -> (Connection, String) {
        let p = dir.path().join("s.db");
        (Connection::open(&p).unwrap(), p.display().to_string())
    }

    #[test]
    fn new_file_gets_the_newest_layout_and_reopening_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, f) = conn(&dir);
        assert_eq!(prepare(&mut c, &f).unwrap(), 0);
        let v: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        assert_eq!(prepare(&mut c, &f).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn newer_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, f) = conn(&dir);
        prepare(&mut c, &f).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let e = prepare(&mut c, &f).unwrap_err().to_string();
        assert!(
            e.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
                && e.contains("newer faas"),
            "{e}"
        );

        let other = tempfile::tempdir().unwrap();
        let (mut c, f) = conn(&other);
        c.execute_batch("CREATE TABLE notes (x TEXT)").unwrap();
        let e = prepare(&mut c, &f).unwrap_err().to_string();
        assert!(e.contains("not a faas store") && e.contains("notes"), "{e}");
        c.pragma_update(None, "application_id", 7).unwrap();
        let e = prepare(&mut c, &f).unwrap_err().to_string();
        assert!(e.contains("application id is 0x7"), "{e}");
    }
}
