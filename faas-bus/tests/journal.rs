//! The in-process bus with a journal (feature `journal`): what survives closing the bus, and a
//! crash of the process; the journal's size; files it must refuse; and the conformance suite
//! on a journaled bus.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use faas_bus::InProcessBus;
use faas_bus::inproc::JournalSync;
use faas_core::{Consumer, Delivery, MessageBus, TopicConfig};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);
/// How long a check that nothing (more) arrives watches.
const QUIET: Duration = Duration::from_millis(200);

async fn recv(c: &dyn Consumer) -> Delivery {
    timeout(WAIT, c.recv()).await.expect("no message").unwrap()
}

async fn nothing_more(c: &dyn Consumer) {
    if let Ok(d) = timeout(QUIET, c.recv()).await {
        panic!("unexpected delivery: {d:?}");
    }
}

fn payload(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.payload).into_owned()
}

async fn open(path: &Path) -> InProcessBus {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || InProcessBus::with_journal(path))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn uncommitted_messages_are_delivered_again_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.journal");
    let config = TopicConfig::default().with_partitions(2);
    let committed: BTreeSet<String>;
    let mut before: Vec<(u32, u64)> = Vec::new();
    {
        let bus = open(&path).await;
        assert!(bus.capabilities().durable);
        bus.create_topic("jobs", &config).await.unwrap();
        let c = bus.subscribe("jobs", "workers").await.unwrap();
        for i in 0..10 {
            let key = format!("k{}", i % 3);
            bus.publish("jobs", Some(key.as_bytes()), Bytes::from(format!("m{i}")))
                .await
                .unwrap();
        }
        // Receive six, commit three of them (out of order), leave the rest.
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(recv(&*c).await);
        }
        for d in &got {
            before.push((d.partition, d.offset));
        }
        let mut done = BTreeSet::new();
        for d in [&got[4], &got[0], &got[2]] {
            c.commit(d).await.unwrap();
            done.insert(payload(d));
        }
        committed = done;
    }
    let bus = open(&path).await;
    bus.create_topic("jobs", &config).await.unwrap();
    let c = bus.subscribe("jobs", "workers").await.unwrap();
    let mut again = Vec::new();
    for _ in 0..7 {
        again.push(recv(&*c).await);
    }
    nothing_more(&*c).await;
    let names: BTreeSet<String> = again.iter().map(payload).collect();
    let want: BTreeSet<String> = (0..10)
        .map(|i| format!("m{i}"))
        .filter(|m| !committed.contains(m))
        .collect();
    assert_eq!(names, want, "exactly the uncommitted messages come back");
    assert!(
        again.iter().all(|d| d.redelivered),
        "restored messages may have been handed out before: flagged"
    );
    // Each partition's messages come back in offset order, with their old offsets and keys.
    for p in 0..2 {
        let offsets: Vec<u64> = again
            .iter()
            .filter(|d| d.partition == p)
            .map(|d| d.offset)
            .collect();
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        assert_eq!(offsets, sorted, "partition {p}");
    }
    for d in &again {
        let i: usize = payload(d)[1..].parse().unwrap();
        assert_eq!(d.key.as_deref(), Some(format!("k{}", i % 3).as_bytes()));
    }
    // New messages get offsets above every earlier one of their partition.
    bus.publish("jobs", None, Bytes::from_static(b"new"))
        .await
        .unwrap();
    bus.publish("jobs", None, Bytes::from_static(b"new"))
        .await
        .unwrap();
    for _ in 0..2 {
        let d = recv(&*c).await;
        assert_eq!(payload(&d), "new");
        assert!(
            !d.redelivered,
            "a message published after the restart is not flagged"
        );
        let earlier = before
            .iter()
            .copied()
            .chain(again.iter().map(|a| (a.partition, a.offset)))
            .filter(|(p, _)| *p == d.partition)
            .map(|(_, o)| o)
            .max();
        assert!(
            earlier.is_none_or(|e| d.offset > e),
            "{d:?} after {earlier:?}"
        );
        c.commit(&d).await.unwrap();
    }
    // Commit everything: a third bus delivers nothing.
    for d in &again {
        c.commit(d).await.unwrap();
    }
    drop(c);
    drop(bus);
    let bus = open(&path).await;
    bus.create_topic("jobs", &config).await.unwrap();
    let c = bus.subscribe("jobs", "workers").await.unwrap();
    nothing_more(&*c).await;
}

#[tokio::test]
async fn groups_outlive_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.journal");
    {
        let bus = open(&path).await;
        bus.create_topic("t", &TopicConfig::default())
            .await
            .unwrap();
        drop(bus.subscribe("t", "g").await.unwrap());
    }
    let bus = open(&path).await;
    bus.create_topic("t", &TopicConfig::default())
        .await
        .unwrap();
    // Published before the group's first member of this run subscribes: still the group's.
    bus.publish("t", None, Bytes::from_static(b"early"))
        .await
        .unwrap();
    let c = bus.subscribe("t", "g").await.unwrap();
    assert_eq!(payload(&recv(&*c).await), "early");
    // A group that never subscribed still sees nothing published before it did.
    let late = bus.subscribe("t", "other").await.unwrap();
    nothing_more(&*late).await;
}

#[tokio::test]
async fn transient_topics_and_expired_messages_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.journal");
    let short = TopicConfig::default().with_retention(Duration::from_millis(50));
    {
        let bus = open(&path).await;
        bus.create_topic("acks", &TopicConfig::default().transient())
            .await
            .unwrap();
        bus.create_topic("short", &short).await.unwrap();
        let _a = bus.subscribe("acks", "g").await.unwrap();
        let _s = bus.subscribe("short", "g").await.unwrap();
        bus.publish("acks", None, Bytes::from_static(b"a"))
            .await
            .unwrap();
        bus.publish("short", None, Bytes::from_static(b"s"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    let bus = open(&path).await;
    bus.create_topic("acks", &TopicConfig::default().transient())
        .await
        .unwrap();
    bus.create_topic("short", &short).await.unwrap();
    let a = bus.subscribe("acks", "g").await.unwrap();
    let s = bus.subscribe("short", "g").await.unwrap();
    nothing_more(&*a).await;
    nothing_more(&*s).await;
}

#[tokio::test]
async fn a_second_bus_on_the_same_journal_and_damaged_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.journal");
    let first = open(&path).await;
    let e = faas_core::Chain(&InProcessBus::with_journal(&path).unwrap_err()).to_string();
    assert!(
        e.contains("in use by another faas-platform")
            && e.contains(&format!("(pid {})", std::process::id())),
        "{e}"
    );
    drop(first);
    // Garbage is refused, with what to do about it, and not overwritten.
    let garbage = dir.path().join("garbage.journal");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let e = faas_core::Chain(&InProcessBus::with_journal(&garbage).unwrap_err()).to_string();
    assert!(
        e.contains("cannot be used")
            && e.contains("damaged or not an SQLite database")
            && e.contains("move it away"),
        "{e}"
    );
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5a; 8192]);
    // The journal is private to its owner: activation messages carry their caller's key.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_messages_leave_the_files_small() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.journal");
    let bus = open(&path).await;
    bus.create_topic("t", &TopicConfig::default())
        .await
        .unwrap();
    let c = bus.subscribe("t", "g").await.unwrap();
    let body = Bytes::from(vec![b'x'; 4096]);
    let n = 3000;
    for _ in 0..n {
        bus.publish("t", None, body.clone()).await.unwrap();
        let d = recv(&*c).await;
        c.commit(&d).await.unwrap();
    }
    let written = n * body.len() as u64;
    // The maintenance thread deletes, checkpoints and truncates on its own (bounded wait)...
    let limit = 6 << 20;
    let shrunk = faas_core::testkit::eventually(Duration::from_secs(20), || {
        bus.journal_bytes().unwrap() < limit
    })
    .await;
    assert!(
        shrunk,
        "the journal still holds {} bytes after {written} bytes went through it",
        bus.journal_bytes().unwrap()
    );
    // ... and compaction on demand leaves almost nothing.
    let b = bus.clone();
    tokio::task::spawn_blocking(move || b.compact_journal())
        .await
        .unwrap()
        .unwrap();
    let size = bus.journal_bytes().unwrap();
    assert!(size < 256 << 10, "{size} bytes after compaction");
    // Nothing was lost on the way: an uncommitted message is still there after a reopen.
    bus.publish("t", None, Bytes::from_static(b"last"))
        .await
        .unwrap();
    drop(c);
    drop(bus);
    let bus = open(&path).await;
    bus.create_topic("t", &TopicConfig::default())
        .await
        .unwrap();
    let c = bus.subscribe("t", "g").await.unwrap();
    assert_eq!(payload(&recv(&*c).await), "last");
    nothing_more(&*c).await;
}

// ------------------------------------------------------------------------------------- crash

/// The environment variable that makes [`crashing_publisher`] act.
/// `publish_deferred` delivers like `publish` but journals nothing until `persist`, which
/// journals the message for the groups that have not committed it (queued or in flight) and
/// for no other; a message every group committed needs nothing.
#[tokio::test]
async fn deferred_messages_are_kept_once_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.journal");
    let config = TopicConfig::default().with_partitions(1);
    {
        let bus = open(&path).await;
        bus.create_topic("jobs", &config).await.unwrap();
        let a = bus.subscribe("jobs", "a").await.unwrap();
        let b = bus.subscribe("jobs", "b").await.unwrap();
        let deferred = |m: &'static str| bus.publish_deferred("jobs", None, Bytes::from(m));
        let _m1 = deferred("m1").await.unwrap(); // never persisted
        let m2 = deferred("m2").await.unwrap();
        assert!(m2.pending.is_some(), "a journaled bus defers: {m2:?}");
        bus.persist(&m2).await.unwrap(); // queued at both groups
        let m3 = deferred("m3").await.unwrap();
        bus.publish("jobs", None, Bytes::from_static(b"m4"))
            .await
            .unwrap();
        let m5 = deferred("m5").await.unwrap();
        // Group a receives everything in publish order, deferred or not.
        let got: Vec<Delivery> = [recv(&*a).await, recv(&*a).await, recv(&*a).await]
            .into_iter()
            .chain([recv(&*a).await, recv(&*a).await])
            .collect();
        let names: Vec<String> = got.iter().map(payload).collect();
        assert_eq!(names, ["m1", "m2", "m3", "m4", "m5"]);
        assert!(got.iter().all(|d| !d.redelivered));
        // m3: persisted while in flight at a and queued at b; then a commits it.
        bus.persist(&m3).await.unwrap();
        a.commit(&got[2]).await.unwrap();
        // m5: committed by both groups before it is persisted: nothing to keep.
        for _ in 0..5 {
            let d = recv(&*b).await;
            if payload(&d) == "m5" {
                b.commit(&d).await.unwrap();
            }
        }
        a.commit(&got[4]).await.unwrap();
        bus.persist(&m5).await.unwrap();
        // Persisting twice changes nothing.
        bus.persist(&m2).await.unwrap();
    }
    let bus = open(&path).await;
    bus.create_topic("jobs", &config).await.unwrap();
    for (group, want) in [("a", vec!["m2", "m4"]), ("b", vec!["m2", "m3", "m4"])] {
        let c = bus.subscribe("jobs", group).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let d = recv(&*c).await;
            got.push(payload(&d));
            c.commit(&d).await.unwrap();
        }
        nothing_more(&*c).await;
        assert_eq!(got, want, "group {group}");
    }
}

/// Without a journal, and on a transient topic, nothing is pending.
#[tokio::test]
async fn deferred_messages_of_memory_buses_and_transient_topics_are_settled() {
    let bus = InProcessBus::new();
    bus.create_topic("t", &TopicConfig::default())
        .await
        .unwrap();
    let c = bus.subscribe("t", "g").await.unwrap();
    let p = bus
        .publish_deferred("t", None, Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(p.pending, None);
    bus.persist(&p).await.unwrap();
    assert_eq!(payload(&recv(&*c).await), "x");

    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("j")).await;
    bus.create_topic("t", &TopicConfig::default().transient())
        .await
        .unwrap();
    let c = bus.subscribe("t", "g").await.unwrap();
    let p = bus
        .publish_deferred("t", None, Bytes::from_static(b"y"))
        .await
        .unwrap();
    assert_eq!(p.pending, None);
    assert_eq!(payload(&recv(&*c).await), "y");
    let e = bus
        .publish_deferred("missing", None, Bytes::from_static(b"z"))
        .await
        .unwrap_err();
    assert!(matches!(e, faas_core::Error::NotFound { .. }), "{e:?}");
}

const CHILD: &str = "FAAS_BUS_JOURNAL_CRASH_CHILD";
const CRASH_MESSAGES: usize = 200;

/// Not a test: the child process of [`a_crash_of_the_process_loses_no_published_message`].
/// It publishes, receives and commits some, then aborts (no destructor, no flush).
#[tokio::test]
#[ignore = "helper: run in a child process by a_crash_of_the_process_loses_no_published_message"]
async fn crashing_publisher() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let bus = open(Path::new(&path)).await;
    bus.create_topic("jobs", &TopicConfig::default().with_partitions(3))
        .await
        .unwrap();
    let c = bus.subscribe("jobs", "workers").await.unwrap();
    for i in 0..CRASH_MESSAGES {
        bus.publish(
            "jobs",
            Some(format!("k{}", i % 7).as_bytes()),
            Bytes::from(format!("m{i}")),
        )
        .await
        .unwrap();
    }
    for _ in 0..CRASH_MESSAGES / 2 {
        let d = recv(&*c).await;
        if d.offset % 2 == 0 {
            c.commit(&d).await.unwrap();
            // Say which, on stdout, for the parent.
            println!("committed {}", payload(&d));
        }
    }
    println!("published all");
    use std::io::Write as _;
    std::io::stdout().flush().unwrap();
    std::process::abort();
}

#[tokio::test]
async fn a_crash_of_the_process_loses_no_published_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.journal");
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crashing_publisher", "--ignored", "--nocapture"])
        .env(CHILD, &path)
        .output();
    let out = timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.contains("published all"),
        "the child did not crash after publishing: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let committed: BTreeSet<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("committed "))
        .map(str::to_string)
        .collect();
    assert!(!committed.is_empty());
    let bus = open(&path).await;
    bus.create_topic("jobs", &TopicConfig::default().with_partitions(3))
        .await
        .unwrap();
    let c = bus.subscribe("jobs", "workers").await.unwrap();
    let mut seen = BTreeSet::new();
    while let Ok(d) = timeout(QUIET * 3, c.recv()).await {
        let d = d.unwrap();
        assert!(seen.insert(payload(&d)), "delivered twice: {}", payload(&d));
        c.commit(&d).await.unwrap();
    }
    // Every message the child published and did not commit comes back; committed ones may
    // come back too (their deletion is lazy: at least once), nothing else does.
    for i in 0..CRASH_MESSAGES {
        let m = format!("m{i}");
        if !committed.contains(&m) {
            assert!(
                seen.contains(&m),
                "{m} was published, not committed, and is lost"
            );
        }
    }
    assert!(seen.len() <= CRASH_MESSAGES, "{}", seen.len());
}

// ------------------------------------------------------------------------------- conformance

/// Journals of the conformance cases: one directory per test process (nextest runs each case
/// in a process of its own), under the build's temporary directory.
/// Statics are never dropped, so each process also removes the directories of earlier test
/// processes that are gone (no `/proc/<pid>`).
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    const PREFIX: &str = "faas-bus-journal-conformance-";
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(PREFIX)
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let d = tmp.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
});

/// One journaled bus per process and sync mode, shared by the cases (they use topics of
/// their own).
fn shared(sync: JournalSync) -> Arc<dyn MessageBus> {
    static NORMAL: LazyLock<InProcessBus> = LazyLock::new(|| {
        InProcessBus::with_journal_sync(DIR.join("normal.journal"), JournalSync::Normal).unwrap()
    });
    static FULL: LazyLock<InProcessBus> = LazyLock::new(|| {
        InProcessBus::with_journal_sync(DIR.join("full.journal"), JournalSync::Full).unwrap()
    });
    Arc::new(match sync {
        JournalSync::Full => FULL.clone(),
        _ => NORMAL.clone(),
    })
}

mod conformance_normal {
    async fn setup() -> Option<std::sync::Arc<dyn faas_core::MessageBus>> {
        Some(super::shared(super::JournalSync::Normal))
    }
    faas_core::bus_conformance!(setup);
}

mod conformance_full {
    async fn setup() -> Option<std::sync::Arc<dyn faas_core::MessageBus>> {
        Some(super::shared(super::JournalSync::Full))
    }
    faas_core::bus_conformance!(setup);
}
