//! A spinner on stderr for waits longer than a second (indicatif). It draws only on a terminal
//! and never with `--json`, so scripts and pipes see nothing of it.

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How long a wait runs before the spinner appears.
const DELAY: Duration = Duration::from_secs(1);

/// Whether spinners may be drawn in this run.
pub(crate) fn enabled(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A spinner showing `message`, or a hidden one.
pub(crate) fn spinner(message: impl Into<String>, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        pb.set_style(style);
    }
    pb.set_message(message.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Awaits `fut`; if it takes longer than a second, shows a spinner with `message` until it ends.
pub(crate) async fn wait<T>(message: &str, show: bool, fut: impl Future<Output = T>) -> T {
    tokio::pin!(fut);
    if !show {
        return fut.await;
    }
    tokio::select! {
        out = &mut fut => out,
        () = tokio::time::sleep(DELAY) => {
            let pb = spinner(message, true);
            let out = fut.await;
            pb.finish_and_clear();
            out
        }
    }
}
