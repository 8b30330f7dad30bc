//! The SQLite store's own errors, and their conversion into [`faas_core::Error`].

use faas_core::Error;
use rusqlite::ErrorCode;

/// Why the store file cannot be used. Converted into a non-retryable
/// [`Error::Backend`] (`backend: "sqlite"`) whose message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreFileError {
    /// Another process (or another store in this process) holds the file.
    #[error(
        "the store {file} is in use by another faas-platform{holder}; two platforms cannot share one SQLite store: stop the other one, or give this one another --data-dir or --store"
    )]
    Locked {
        /// The database file.
        file: String,
        /// ` (pid N)` when the holder wrote its pid into the lock file.
        holder: String,
    },
    /// The file was written by a newer faas whose layout this build does not know.
    #[error(
        "the store {file} has schema version {found}, but this faas-platform knows versions up to {known}: it was written by a newer faas; run that version (downgrades are not supported) or use another data directory"
    )]
    TooNew {
        /// The database file.
        file: String,
        /// Its version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// An SQLite database of some other application.
    #[error("{file} is not a faas store ({detail}); refusing to use it")]
    Foreign {
        /// The database file.
        file: String,
        /// What gave it away.
        detail: String,
    },
    /// Not an SQLite database, or damaged beyond use.
    #[error(
        "the store {file} is not a usable SQLite database ({detail}); it may be damaged or another kind of file: restore it from a backup or move it away to start empty"
    )]
    Unreadable {
        /// The database file.
        file: String,
        /// SQLite's words.
        detail: String,
    },
    /// The file or its directory cannot be created, opened or locked.
    #[error("cannot open the store {file}: {detail}")]
    Io {
        /// The database file.
        file: String,
        /// What failed.
        detail: String,
    },
}

impl From<StoreFileError> for Error {
    fn from(e: StoreFileError) -> Self {
        Error::backend("sqlite", false, e)
    }
}

/// Converts an SQLite failure on `file`. A damaged or foreign file becomes
/// [`StoreFileError::Unreadable`]; a busy file or a full disk may pass, so they are retryable.
pub(crate) fn sqlite_error(e: rusqlite::Error, file: &str) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreFileError::Unreadable {
            file: file.into(),
            detail: e.to_string(),
        }
        .into(),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            StoreFileError::Io {
                file: file.into(),
                detail: e.to_string(),
            }
            .into()
        }
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure,
        ) => Error::backend("sqlite", true, e),
        _ => Error::backend("sqlite", false, e),
    }
}
