//! Log capture for one runner process: a reader task frames both pipes (stdout, stderr) into
//! lines and appends them to a shared buffer that [`LogBuffer::take`] cuts at the sentinels
//! (the line `XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX` a runtime prints on stdout and stderr
//! after each activation, as in OpenWhisk's
//! [action interface](https://github.com/apache/openwhisk/blob/master/docs/actions-new.md#logging)).
//!
//! The buffer is a `std::sync::Mutex` (never held across an `.await`, critical sections are a few
//! pointer moves) plus a `tokio::sync::Notify` that is signalled only when a sentinel or the end of
//! a stream arrives, the only events a waiting collector cares about.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use faas_core::executor::{LOG_SENTINEL, LogCollection, LogLine, LogStream};
use tokio::io::{AsyncBufRead, AsyncRead, BufReader};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What Node prints on stderr when the V8 heap limit (`--max-old-space-size`) is hit.
const NODE_OOM_MESSAGE: &str = "JavaScript heap out of memory";

/// Uncollected activations kept at most; older ones are discarded whole. Bounds memory when
/// nobody collects (log limit 0).
const MAX_PENDING_ACTIVATIONS: usize = 16;

/// Bytes charged per buffered line on top of its message, for the memory bound.
const LINE_OVERHEAD: usize = 64;

/// Read buffer of each pipe reader.
const READ_BUFFER: usize = 64 * 1024;

/// One thing read from a pipe, in arrival order.
#[derive(Debug)]
enum Event {
    Line(LogLine),
    /// The end-of-activation marker of one stream.
    Sentinel(LogStream),
    /// Lines of this stream were dropped here because the buffer was full.
    Dropped(LogStream),
}

impl Event {
    fn stream(&self) -> LogStream {
        match self {
            Self::Line(l) => l.stream,
            Self::Sentinel(s) | Self::Dropped(s) => *s,
        }
    }
}

fn index(stream: LogStream) -> usize {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
    }
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Event>,
    /// Sentinels buffered per stream.
    sentinels: [usize; 2],
    /// A `Dropped` marker is already the last event of this stream's current activation.
    dropping: [bool; 2],
    /// The stream reached end of file (the process closed it or died).
    eof: [bool; 2],
    /// Bytes buffered (messages plus per-line overhead).
    bytes: usize,
    /// The runtime reported running out of memory.
    oom: bool,
}

impl State {
    fn sentinels_or_eof(&self) -> bool {
        (0..2).all(|i| self.sentinels[i] > 0 || self.eof[i])
    }

    /// Removes and returns the lines of the oldest activation (see [`LogBuffer::take`]).
    fn take(&mut self, limit_bytes: u64, stop_at_sentinels: bool) -> LogCollection {
        let mut lines = Vec::new();
        let mut kept: u64 = 0;
        let mut truncated = false;
        let mut full = false;
        // Whether the stream's sentinel was reached (its later lines belong to the next activation).
        let mut ended = [false; 2];
        // Events of ended streams met before both streams ended; they go back in front.
        let mut later: Vec<Event> = Vec::new();
        while !(stop_at_sentinels && ended[0] && ended[1]) {
            let Some(event) = self.events.pop_front() else {
                break;
            };
            let i = index(event.stream());
            if stop_at_sentinels && ended[i] {
                later.push(event);
                continue;
            }
            match event {
                Event::Line(line) => {
                    self.bytes = self
                        .bytes
                        .saturating_sub(line.message.len() + LINE_OVERHEAD);
                    let len = line.message.len() as u64;
                    if !full && kept + len <= limit_bytes {
                        kept += len;
                        lines.push(line);
                    } else {
                        full = true;
                        truncated = true;
                    }
                }
                Event::Sentinel(_) => {
                    ended[i] = true;
                    self.sentinels[i] = self.sentinels[i].saturating_sub(1);
                }
                Event::Dropped(_) => truncated = true,
            }
        }
        for event in later.into_iter().rev() {
            self.events.push_front(event);
        }
        for (i, dropping) in self.dropping.iter_mut().enumerate() {
            // A stream that did not reach a sentinel was taken whole: its next line starts afresh.
            if !ended[i] {
                *dropping = false;
            }
        }
        LogCollection {
            lines,
            truncated,
            incomplete: !(ended[0] && ended[1]),
        }
    }
}

/// The shared log buffer of one container.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    state: Mutex<State>,
    /// Signalled when a sentinel or an end of stream arrives.
    notify: Notify,
    /// Most bytes buffered; lines beyond it are dropped (and reported as truncation).
    capacity: usize,
}

impl LogBuffer {
    /// A buffer holding at most `capacity` bytes of lines.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent in a way that
        // matters more than losing logs, so poisoning is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line (without its newline). A line that ends with the sentinel is split into
    /// its text (if any) and the sentinel, so output without a final newline keeps the framing.
    pub(crate) fn push(&self, stream: LogStream, mut message: String) {
        let time = SystemTime::now();
        let sentinel = message.ends_with(LOG_SENTINEL);
        if sentinel {
            message.truncate(message.len() - LOG_SENTINEL.len());
        }
        let i = index(stream);
        let mut st = self.lock();
        if stream == LogStream::Stderr && message.contains(NODE_OOM_MESSAGE) {
            st.oom = true;
        }
        if !sentinel || !message.is_empty() {
            let cost = message.len() + LINE_OVERHEAD;
            if st.bytes + cost <= self.capacity {
                st.bytes += cost;
                st.events.push_back(Event::Line(LogLine {
                    time,
                    stream,
                    message,
                }));
            } else if !st.dropping[i] {
                st.dropping[i] = true;
                st.events.push_back(Event::Dropped(stream));
            }
        }
        if sentinel {
            st.dropping[i] = false;
            st.sentinels[i] += 1;
            st.events.push_back(Event::Sentinel(stream));
            if st.sentinels.iter().all(|&n| n > MAX_PENDING_ACTIVATIONS) {
                // Nobody collects: forget the oldest activation.
                st.take(0, true);
            }
            drop(st);
            self.notify.notify_waiters();
        }
    }

    /// Marks `stream` as ended.
    pub(crate) fn close(&self, stream: LogStream) {
        self.lock().eof[index(stream)] = true;
        self.notify.notify_waiters();
    }

    /// Whether the runtime reported running out of memory.
    pub(crate) fn oom(&self) -> bool {
        self.lock().oom
    }

    /// Waits until both streams have a sentinel (or ended), at most `max`. Returns whether they did.
    pub(crate) async fn wait_for_sentinels(&self, max: Duration) -> bool {
        self.wait_until(max, State::sentinels_or_eof).await
    }

    /// Waits until both streams ended, at most `max`. Returns whether they did.
    pub(crate) async fn wait_for_eof(&self, max: Duration) -> bool {
        self.wait_until(max, |st| st.eof[0] && st.eof[1]).await
    }

    async fn wait_until(&self, max: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + max;
        loop {
            // Created before the check: `notify_waiters` wakes futures that exist, polled or not.
            let notified = self.notify.notified();
            if done(&self.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.lock());
            }
        }
    }

    /// Takes the lines of one activation.
    ///
    /// With `stop_at_sentinels`, each stream is taken up to and excluding its first sentinel
    /// (later lines stay for the next activation); a stream without a sentinel is taken whole
    /// and the collection is `incomplete`. Without it, everything buffered is taken.
    /// Messages are kept while their running byte sum stays within `limit_bytes`.
    pub(crate) fn take(&self, limit_bytes: u64, stop_at_sentinels: bool) -> LogCollection {
        self.lock().take(limit_bytes, stop_at_sentinels)
    }
}

/// Frames one stream's bytes into lines (shared with the Docker executor, whose output arrives
/// as chunks of a multiplexed stream).
#[derive(Debug)]
pub(crate) struct Framer {
    stream: LogStream,
    max_line: usize,
    line: Vec<u8>,
    /// The last bytes of a line cut at `max_line`, to find a sentinel at its end.
    tail: Vec<u8>,
    cut: bool,
}

impl Framer {
    pub(crate) fn new(stream: LogStream, max_line: usize) -> Self {
        Self {
            stream,
            max_line,
            line: Vec::new(),
            tail: Vec::new(),
            cut: false,
        }
    }

    /// Takes all of `chunk`, emitting every line it completes.
    pub(crate) fn feed(&mut self, mut chunk: &[u8], buffer: &LogBuffer) {
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            let part = &chunk[..newline.unwrap_or(chunk.len())];
            self.append(part);
            match newline {
                Some(i) => {
                    self.emit(buffer);
                    chunk = &chunk[i + 1..];
                }
                None => break,
            }
        }
    }

    fn append(&mut self, part: &[u8]) {
        let room = self.max_line.saturating_sub(self.line.len());
        if !self.cut && part.len() <= room {
            self.line.extend_from_slice(part);
            return;
        }
        if !self.cut {
            self.cut = true;
            let keep_from = self.line.len().saturating_sub(LOG_SENTINEL.len());
            self.tail.extend_from_slice(&self.line[keep_from..]);
            self.line.extend_from_slice(&part[..room.min(part.len())]);
        }
        self.tail.extend_from_slice(part);
        let excess = self.tail.len().saturating_sub(LOG_SENTINEL.len());
        self.tail.drain(..excess);
    }

    /// Emits the line being framed, if any (at end of file).
    pub(crate) fn finish(&mut self, buffer: &LogBuffer) {
        if !self.line.is_empty() || self.cut {
            self.emit(buffer);
        }
    }

    fn emit(&mut self, buffer: &LogBuffer) {
        if self.line.last() == Some(&b'\r') && !self.cut {
            self.line.pop();
        }
        let mut message = String::from_utf8_lossy(&self.line).into_owned();
        if self.cut {
            if self.tail.last() == Some(&b'\r') {
                self.tail.pop();
            }
            if self.tail.ends_with(LOG_SENTINEL.as_bytes()) && !message.ends_with(LOG_SENTINEL) {
                message.push_str(LOG_SENTINEL);
            }
            self.tail.clear();
            self.cut = false;
        }
        buffer.push(self.stream, message);
        self.line.clear();
        if self.line.capacity() > READ_BUFFER {
            self.line.shrink_to(1024);
        }
    }
}

/// One pipe being read.
struct Pipe<R> {
    reader: BufReader<R>,
    framer: Framer,
    done: bool,
}

impl<R: AsyncRead + Unpin> Pipe<R> {
    fn new(reader: R, stream: LogStream, max_line: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(READ_BUFFER, reader),
            framer: Framer::new(stream, max_line),
            done: false,
        }
    }

    /// Takes whatever the pipe has; `Ready` when something happened (data or end of file).
    fn poll_once(&mut self, cx: &mut Context<'_>, buffer: &LogBuffer) -> Poll<()> {
        if self.done {
            return Poll::Pending;
        }
        match Pin::new(&mut self.reader).poll_fill_buf(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(chunk)) if !chunk.is_empty() => {
                let n = chunk.len();
                self.framer.feed(chunk, buffer);
                Pin::new(&mut self.reader).consume(n);
                Poll::Ready(())
            }
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => Poll::Ready(()),
            // End of file, or a read error: the stream is over either way.
            Poll::Ready(_) => {
                self.framer.finish(buffer);
                self.done = true;
                buffer.close(self.framer.stream);
                Poll::Ready(())
            }
        }
    }
}

/// Reads stdout and stderr line by line into `buffer` until both end, then marks them ended.
///
/// One task reads both pipes, stdout first: lines of the two streams keep the order in which
/// they became readable (exact across streams unless both pipes were ready at the same wake-up),
/// and the two sentinels of an activation cost one wake-up. A line longer than `max_line` bytes
/// is cut at `max_line`; a sentinel glued to its end is still recognised.
pub(crate) async fn read_pipes<O, E>(
    stdout: O,
    stderr: E,
    buffer: std::sync::Arc<LogBuffer>,
    max_line: usize,
) where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let mut out = Pipe::new(stdout, LogStream::Stdout, max_line);
    let mut err = Pipe::new(stderr, LogStream::Stderr, max_line);
    poll_fn(|cx| {
        loop {
            // tokio's cooperative budget makes the pipes return `Pending` after a while, so
            // this loop yields even under a flood of output.
            let a = out.poll_once(cx, &buffer).is_ready();
            let b = err.poll_once(cx, &buffer).is_ready();
            if out.done && err.done {
                return Poll::Ready(());
            }
            if !a && !b {
                return Poll::Pending;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn messages(c: &LogCollection) -> Vec<(LogStream, &str)> {
        c.lines
            .iter()
            .map(|l| (l.stream, l.message.as_str()))
            .collect()
    }

    const OUT: LogStream = LogStream::Stdout;
    const ERR: LogStream = LogStream::Stderr;

    #[test]
    fn cuts_at_each_streams_sentinel() {
        let b = LogBuffer::new(1 << 20);
        b.push(OUT, "a".into());
        b.push(ERR, "e".into());
        b.push(OUT, LOG_SENTINEL.into());
        b.push(OUT, "next".into()); // the next activation's stdout
        b.push(ERR, "e2".into());
        b.push(ERR, LOG_SENTINEL.into());
        let c = b.take(1000, true);
        assert_eq!(messages(&c), vec![(OUT, "a"), (ERR, "e"), (ERR, "e2")]);
        assert!(!c.truncated && !c.incomplete);
        // The line after stdout's sentinel stays; no sentinels left, so incomplete.
        let c = b.take(1000, true);
        assert_eq!(messages(&c), vec![(OUT, "next")]);
        assert!(c.incomplete);
    }

    #[test]
    fn glued_sentinel_is_split() {
        let b = LogBuffer::new(1 << 20);
        b.push(OUT, format!("partial{LOG_SENTINEL}"));
        b.push(ERR, LOG_SENTINEL.into());
        let c = b.take(1000, true);
        assert_eq!(messages(&c), vec![(OUT, "partial")]);
        assert!(!c.incomplete);
    }

    #[test]
    fn limit_keeps_a_prefix_and_flags_truncation() {
        let b = LogBuffer::new(1 << 20);
        for m in ["1234", "5678", "9", "0"] {
            b.push(OUT, m.into());
        }
        b.push(OUT, LOG_SENTINEL.into());
        b.push(ERR, LOG_SENTINEL.into());
        let c = b.take(9, true);
        // 4 + 4 = 8 fits, + 1 = 9 fits, the last one would exceed.
        assert_eq!(messages(&c), vec![(OUT, "1234"), (OUT, "5678"), (OUT, "9")]);
        assert!(c.truncated);
        let c = b.take(9, true);
        assert!(c.lines.is_empty() && c.incomplete && !c.truncated);
    }

    #[test]
    fn full_buffer_drops_lines_but_keeps_sentinels() {
        let b = LogBuffer::new(2 * (LINE_OVERHEAD + 1));
        for _ in 0..5 {
            b.push(OUT, "x".into());
        }
        b.push(OUT, LOG_SENTINEL.into());
        b.push(ERR, LOG_SENTINEL.into());
        let c = b.take(1000, true);
        assert_eq!(c.lines.len(), 2);
        assert!(c.truncated && !c.incomplete);
        // Space was freed: the next activation is whole.
        b.push(OUT, "y".into());
        b.push(OUT, LOG_SENTINEL.into());
        b.push(ERR, LOG_SENTINEL.into());
        let c = b.take(1000, true);
        assert_eq!(messages(&c), vec![(OUT, "y")]);
        assert!(!c.truncated);
    }

    #[test]
    fn uncollected_activations_are_bounded() {
        let b = LogBuffer::new(1 << 20);
        for n in 0..100 {
            b.push(OUT, format!("{n}"));
            b.push(OUT, LOG_SENTINEL.into());
            b.push(ERR, LOG_SENTINEL.into());
        }
        let st = b.lock();
        assert!(st.sentinels[0] <= MAX_PENDING_ACTIVATIONS + 1);
        assert!(st.events.len() <= 3 * (MAX_PENDING_ACTIVATIONS + 1));
    }

    #[test]
    fn without_sentinels_takes_everything() {
        let b = LogBuffer::new(1 << 20);
        b.push(OUT, "a".into());
        b.push(OUT, LOG_SENTINEL.into());
        b.push(OUT, "b".into());
        let c = b.take(1000, false);
        assert_eq!(messages(&c), vec![(OUT, "a"), (OUT, "b")]);
        assert!(c.incomplete);
        assert!(b.lock().events.is_empty());
    }

    #[tokio::test]
    async fn reader_frames_lines_and_waits_end() {
        let b = Arc::new(LogBuffer::new(1 << 20));
        let input: &[u8] = b"one\r\ntwo\nXXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\nthree";
        read_pipes(input, tokio::io::empty(), Arc::clone(&b), 1024).await;
        assert!(b.wait_for_sentinels(Duration::from_millis(10)).await);
        let c = b.take(1000, true);
        assert_eq!(messages(&c), vec![(OUT, "one"), (OUT, "two")]);
        assert!(c.incomplete, "stderr had no sentinel");
        let c = b.take(1000, true);
        assert_eq!(messages(&c), vec![(OUT, "three")]);
    }

    #[tokio::test]
    async fn reader_cuts_long_lines_and_keeps_a_glued_sentinel() {
        let b = Arc::new(LogBuffer::new(1 << 20));
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(LOG_SENTINEL.as_bytes());
        input.extend_from_slice(b"\nshort\n");
        let err = format!("{LOG_SENTINEL}\n");
        read_pipes(&input[..], err.as_bytes(), Arc::clone(&b), 100).await;
        let c = b.take(1 << 20, true);
        assert_eq!(c.lines.len(), 1);
        assert_eq!(c.lines[0].message.len(), 100);
        assert!(!c.incomplete);
        let c = b.take(1 << 20, false);
        assert_eq!(messages(&c), vec![(OUT, "short")]);
    }

    #[tokio::test]
    async fn wait_is_bounded_and_woken() {
        let b = Arc::new(LogBuffer::new(1 << 20));
        let started = Instant::now();
        assert!(!b.wait_for_sentinels(Duration::from_millis(30)).await);
        assert!(started.elapsed() >= Duration::from_millis(30));
        let b2 = Arc::clone(&b);
        let waiter =
            tokio::spawn(async move { b2.wait_for_sentinels(Duration::from_secs(10)).await });
        tokio::task::yield_now().await;
        b.push(OUT, LOG_SENTINEL.into());
        b.push(ERR, LOG_SENTINEL.into());
        let woke = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(woke);
    }

    #[test]
    fn oom_message_is_noticed() {
        let b = LogBuffer::new(1 << 20);
        assert!(!b.oom());
        b.push(
            ERR,
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
                .into(),
        );
        assert!(b.oom());
    }
}
