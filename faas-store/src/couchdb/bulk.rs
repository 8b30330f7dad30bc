//! The activation batch writer (OpenWhisk's bulk writer, `CouchDbRestStore` with
//! `batchSize`): concurrent `put_activation` calls are written together in one `_bulk_docs`.
//!
//! A background task takes the first queued record and, with it, every record that arrives
//! within the **linger** (`batch_linger_ms`, default 2 ms; 0 sends what is already waiting at
//! once), up to the batch size. While `batch_concurrency` batches are in flight, new records
//! wait in the queue and so form the next, larger batch; under load the number of requests
//! stays bounded. The linger delays only the record write: the invoker answers a blocking
//! caller before it writes the record, so callers never wait for it.
//!
//! Each caller's future resolves only with the server's answer for its own document: `true`
//! when CouchDB created it, `false` when the id existed (`conflict` in the bulk answer), an error
//! when the batch could not be written. Nothing is reported written that the server did not
//! confirm.

use std::sync::Arc;
use std::time::Duration;

use faas_core::{Error, Result};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::Inner;

/// One record waiting to be written.
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) doc: Value,
    pub(crate) reply: oneshot::Sender<Result<bool>>,
}

/// The sending side; dropping it lets the task finish the queued writes and end.
#[derive(Debug, Clone)]
pub(crate) struct BulkWriter {
    tx: mpsc::Sender<Job>,
}

impl BulkWriter {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(
        inner: Arc<Inner>,
        batch_size: usize,
        concurrency: usize,
        linger: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel(batch_size.saturating_mul(concurrency).max(64));
        tokio::spawn(run(rx, inner, batch_size, concurrency, linger));
        Self { tx }
    }

    /// Queues `doc` (an activation document with `_id`) and waits for the server's answer.
    pub(crate) async fn write(&self, id: String, doc: Value) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { id, doc, reply })
            .await
            .map_err(|_| Error::unavailable("the CouchDB activation writer has stopped"))?;
        answer.await.map_err(|_| {
            Error::unavailable("the CouchDB activation writer stopped before the server answered")
        })?
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    inner: Arc<Inner>,
    batch_size: usize,
    slots: usize,
    linger: Duration,
) {
    let slots = Arc::new(Semaphore::new(slots));
    while let Some(first) = rx.recv().await {
        let until = Instant::now() + linger;
        let mut batch = vec![first];
        // Linger: records that come within it join this batch.
        while batch.len() < batch_size {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(job)) => batch.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        // Wait for a free slot: whatever queues up meanwhile joins this batch.
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        while batch.len() < batch_size {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            inner.write_activations(batch).await;
            drop(permit);
        });
    }
}
