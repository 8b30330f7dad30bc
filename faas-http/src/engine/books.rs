//! The books: every activation this controller dispatched and that has not completed yet.
//!
//! An entry is made **before** the activation message is published (so an acknowledgement can
//! never overtake its entry) and removed by the completion acknowledgement (`Completion` or
//! `Combined`), by a failed publish, or by the forced completion time-out. Removing an entry
//! releases the scheduler slot (by the caller, see `Inner::finish`) and the namespace's
//! in-flight throttle slot (the entry owns the [`Ticket`]).
//!
//! Blocking callers wait on a `oneshot` registered in the entry: a result acknowledgement
//! carrying the activation sends it; when the entry goes away without one (shrunk
//! acknowledgement, completion first, forced time-out) the sender is dropped and the caller
//! reads the record from the store. `GET /activations/{id}` callers that find an entry whose
//! result arrived but whose record is not stored yet register a reader that is woken (by the
//! drop) when the entry goes away.
//!
//! The map is split into 16 shards by the activation id's last hex digit, each behind a `std`
//! mutex held only for a map operation (never across an await): contention stays low and the
//! hot path needs no async lock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use faas_core::message::InvokerInstanceId;
use faas_core::{Activation, ActivationId, FullyQualifiedName};

use super::throttle::Ticket;

const SHARDS: usize = 16;

/// One activation in flight.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Where it was scheduled.
    pub(crate) invoker: InvokerInstanceId,
    /// Memory reserved there, MB.
    pub(crate) memory_mb: u64,
    /// The action's intra-container concurrency.
    pub(crate) max_concurrent: u32,
    /// The action (as scheduled).
    pub(crate) action: FullyQualifiedName,
    /// When it is forced to complete.
    pub(crate) deadline: Instant,
    /// When it entered the books (just before its publish).
    pub(crate) dispatched: Instant,
    /// The activation message as published (shared with the bus, not copied): what a record
    /// written at shutdown is made from.
    pub(crate) message: Bytes,
    waiter: Option<oneshot::Sender<Box<Activation>>>,
    result_seen: bool,
    readers: Vec<oneshot::Sender<()>>,
    _ticket: Option<Ticket>,
}

impl Entry {
    /// An entry; `waiter` for blocking callers, `ticket` to release on removal.
    pub(crate) fn new(
        invoker: InvokerInstanceId,
        memory_mb: u64,
        max_concurrent: u32,
        action: FullyQualifiedName,
        deadline: Instant,
        waiter: Option<oneshot::Sender<Box<Activation>>>,
        ticket: Option<Ticket>,
    ) -> Self {
        Self {
            invoker,
            memory_mb,
            max_concurrent,
            action,
            deadline,
            dispatched: Instant::now(),
            message: Bytes::new(),
            waiter,
            result_seen: false,
            readers: Vec::new(),
            _ticket: ticket,
        }
    }

    /// With the activation message as published.
    pub(crate) fn with_message(mut self, message: Bytes) -> Self {
        self.message = message;
        self
    }

    /// Hands `activation` to the blocking caller, if one waits.
    pub(crate) fn deliver(&mut self, activation: Box<Activation>) {
        self.result_seen = true;
        if let Some(w) = self.waiter.take() {
            // The caller may have stopped waiting (202 already sent): nothing to do then.
            let _ = w.send(activation);
        }
    }
}

/// The in-flight activations of one controller.
#[derive(Debug)]
pub(crate) struct Books {
    shards: Box<[Mutex<HashMap<ActivationId, Entry>>]>,
}

impl Default for Books {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Books {
    fn shard(&self, id: &ActivationId) -> MutexGuard<'_, HashMap<ActivationId, Entry>> {
        // Ids are random hex: the last digit spreads them evenly over the 16 shards.
        let i = match id.as_str().as_bytes().last() {
            Some(&b @ b'0'..=b'9') => usize::from(b - b'0'),
            Some(&b @ b'a'..=b'f') => usize::from(b - b'a' + 10),
            _ => 0,
        } % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `entry` for `id`.
    pub(crate) fn insert(&self, id: ActivationId, entry: Entry) {
        self.shard(&id).insert(id, entry);
    }

    /// Removes and returns the entry of `id`.
    pub(crate) fn remove(&self, id: &ActivationId) -> Option<Entry> {
        self.shard(id).remove(id)
    }

    /// A result acknowledgement arrived for `id`, with the activation unless it was shrunk.
    pub(crate) fn on_result(&self, id: &ActivationId, activation: Option<Box<Activation>>) {
        let mut shard = self.shard(id);
        if let Some(e) = shard.get_mut(id) {
            e.result_seen = true;
            if let Some(a) = activation {
                e.deliver(a);
            }
        }
    }

    /// If `id` is in flight with its result known but its record possibly not stored yet, a
    /// receiver that resolves (with an error: the sender is dropped) when it completes.
    pub(crate) fn watch_record(&self, id: &ActivationId) -> Option<oneshot::Receiver<()>> {
        let mut shard = self.shard(id);
        let e = shard.get_mut(id)?;
        if !e.result_seen {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        e.readers.push(tx);
        Some(rx)
    }

    /// Removes and returns every entry whose deadline is before `now`.
    pub(crate) fn take_overdue(&self, now: Instant) -> Vec<(ActivationId, Entry)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if map.values().any(|e| e.deadline <= now) {
                let overdue: Vec<ActivationId> = map
                    .iter()
                    .filter(|(_, e)| e.deadline <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in overdue {
                    if let Some(e) = map.remove(&k) {
                        out.push((k, e));
                    }
                }
            }
        }
        out
    }

    /// Removes and returns every entry.
    pub(crate) fn take_all(&self) -> Vec<(ActivationId, Entry)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.lock().unwrap_or_else(PoisonError::into_inner).drain());
        }
        out
    }

    /// How many activations are in flight.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use faas_core::activation::ActivationResponse;
    use faas_core::{EntityName, EntityPath};
    use std::time::Duration;

    fn entry(deadline: Instant, waiter: Option<oneshot::Sender<Box<Activation>>>) -> Entry {
        Entry::new(
            InvokerInstanceId::new(0, 1024),
            256,
            1,
            FullyQualifiedName::resolve("a", "guest").unwrap(),
            deadline,
            waiter,
            None,
        )
    }

    fn activation(id: &ActivationId) -> Box<Activation> {
        Box::new(Activation {
            namespace: EntityPath::new("guest").unwrap(),
            name: EntityName::new("a").unwrap(),
            subject: "guest".into(),
            activation_id: id.clone(),
            start: 1,
            end: 2,
            duration: Some(1),
            cause: None,
            response: ActivationResponse::success(serde_json::json!({"ok": true})),
            logs: vec![],
            version: Default::default(),
            publish: false,
            annotations: Default::default(),
        })
    }

    #[tokio::test]
    async fn result_reaches_the_waiter_and_readers_wake_on_removal() {
        let books = Books::default();
        let id = ActivationId::generate();
        let (tx, rx) = oneshot::channel();
        books.insert(id.clone(), entry(Instant::now(), Some(tx)));
        assert!(books.watch_record(&id).is_none(), "no result yet");
        books.on_result(&id, Some(activation(&id)));
        assert_eq!(rx.await.unwrap().activation_id, id);
        let reader = books.watch_record(&id).unwrap();
        assert_eq!(books.len(), 1);
        assert!(books.remove(&id).is_some());
        drop(books);
        tokio::time::timeout(Duration::from_secs(1), reader)
            .await
            .unwrap()
            .unwrap_err();
    }

    #[tokio::test]
    async fn shrunk_result_then_removal_closes_the_waiter() {
        let books = Books::default();
        let id = ActivationId::generate();
        let (tx, rx) = oneshot::channel();
        books.insert(id.clone(), entry(Instant::now(), Some(tx)));
        books.on_result(&id, None);
        assert!(books.watch_record(&id).is_some());
        drop(books.remove(&id));
        assert!(rx.await.is_err());
    }

    #[test]
    fn overdue_entries_are_taken() {
        let books = Books::default();
        let now = Instant::now();
        let late = ActivationId::generate();
        let fine = ActivationId::generate();
        books.insert(late.clone(), entry(now, None));
        books.insert(fine.clone(), entry(now + Duration::from_secs(60), None));
        let taken = books.take_overdue(now + Duration::from_millis(1));
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].0, late);
        assert_eq!(books.len(), 1);
        assert!(books.remove(&fine).is_some());
    }
}
