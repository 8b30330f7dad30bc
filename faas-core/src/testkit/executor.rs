//! The [`Executor`] conformance suite.
//!
//! Every case is a `pub async fn` taking `&dyn Executor`. For each family among `nodejs` and
//! `python` that the executor's [`runtimes`](crate::Executor::runtimes) offers, a case runs a
//! small action written for that family against the family's default kind
//! (`ContainerSpec::new(name, kind, 256)`); families the suite has no source for are skipped.
//! Cases create their own containers and destroy them, so they can run concurrently.
//!
//! Run the whole suite with [`executor_conformance!`](crate::executor_conformance), which
//! expands to one `#[tokio::test]` per case:
//!
//! ```text
//! async fn setup() -> Option<std::sync::Arc<dyn faas_core::Executor>> {
//!     Some(std::sync::Arc::new(MyExecutor::new())) // `None` skips: runtime not available
//! }
//! faas_core::executor_conformance!(setup);
//! ```
//!
//! The expansion needs nothing but `faas-core` with the `testkit` feature in the adapter's
//! `dev-dependencies` (it runs on the tokio re-exported by [`store`](super::store), named through
//! the path `faas_core`). Invoke the macro in a module of its own, since the test functions are
//! named after the cases.
//!
//! What the suite checks is the `# Contract` of [`Executor`]:
//!
//! | area | cases |
//! |---|---|
//! | manifest and refusals | [`runtimes_and_capabilities`] |
//! | the action proxy protocol (one `/init`, then `/run`s: [OpenWhisk's action interface](https://github.com/apache/openwhisk/blob/master/docs/actions-new.md)) | [`init_and_run_echo`], [`environment_visible`], [`second_init_forbidden`], [`init_and_run_failures`] |
//! | logs (stdout/stderr lines up to the `XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX` sentinels) | [`logs_per_activation`], [`logs_limit_truncates`] |
//! | failures | [`run_timeout`], [`action_exit_reported`] |
//! | lifecycle | [`destroy_is_final`], [`pause_and_resume`] (when `capabilities().pause_resume`), [`containers_are_isolated`] |

// Test support: a panic is how a case reports a failure.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::executor::{
    Container, ContainerSpec, Executor, LogCollection, LogStream, ProxyError, ProxyResponse,
};

/// Time allowed for `/init` and `/run` of the fast actions (cold starts included).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Log limit that never truncates in these cases.
const LOG_LIMIT: u64 = 1024 * 1024;
/// How long one case may take before it fails (cold starts of every family included).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(180);

/// The actions of one runtime family.
#[derive(Debug)]
struct Sources {
    family: &'static str,
    /// Returns its argument.
    echo: &'static str,
    /// Returns `{k: env[k] or null}` for `k` in `args.keys`.
    env: &'static str,
    /// Prints `args.out` on stdout and `args.err` on stderr, one line each; returns `{}`.
    print: &'static str,
    /// Sleeps `args.ms` milliseconds, then returns `{}`.
    sleep: &'static str,
    /// Exits the process with status 1.
    exit: &'static str,
    /// Returns `{"n": <calls so far in this sandbox>}`.
    counter: &'static str,
    /// Fails with the error message `boom`.
    throw: &'static str,
    /// Does not compile.
    broken: &'static str,
}

const NODEJS: Sources = Sources {
    family: "nodejs",
    echo: "function main(args) { return args; }",
    env: "function main(args) {\n  const out = {};\n  for (const k of args.keys) out[k] = process.env[k] === undefined ? null : process.env[k];\n  return out;\n}",
    print: "function main(args) {\n  for (const l of args.out) console.log(l);\n  for (const l of args.err) console.error(l);\n  return {};\n}",
    sleep: "function main(args) { return new Promise((resolve) => setTimeout(() => resolve({}), args.ms)); }",
    exit: "function main(args) { process.exit(1); }",
    counter: "let n = 0;\nfunction main(args) { n += 1; return { n }; }",
    throw: "function main(args) { throw new Error('boom'); }",
    broken: "function main(args) { return {; }",
};

const PYTHON: Sources = Sources {
    family: "python",
    echo: "def main(args):\n    return args\n",
    env: "import os\n\ndef main(args):\n    return {k: os.environ.get(k) for k in args['keys']}\n",
    print: "import sys\n\ndef main(args):\n    for l in args['out']:\n        print(l)\n    for l in args['err']:\n        print(l, file=sys.stderr)\n    return {}\n",
    sleep: "import time\n\ndef main(args):\n    time.sleep(args['ms'] / 1000.0)\n    return {}\n",
    exit: "import os\n\ndef main(args):\n    os._exit(1)\n",
    counter: "n = 0\n\ndef main(args):\n    global n\n    n += 1\n    return {'n': n}\n",
    throw: "def main(args):\n    raise Exception('boom')\n",
    broken: "def main(args)\n    return {}\n",
};

const ALL_SOURCES: [&Sources; 2] = [&NODEJS, &PYTHON];

/// The families under test, with their default kinds.
fn families(executor: &dyn Executor) -> Vec<(&'static Sources, String)> {
    let manifest = executor.runtimes();
    let found: Vec<_> = ALL_SOURCES
        .into_iter()
        .filter_map(|s| Some((s, manifest.default_kind(s.family)?.to_string())))
        .collect();
    if found.is_empty() {
        eprintln!("executor conformance: no nodejs or python runtime offered; nothing to run");
    }
    found
}

/// The `/init` body of OpenWhisk's action interface (`{"value": {name, main, binary, code, env}}`).
fn init_body(name: &str, code: &str, env: Value) -> Bytes {
    let body =
        json!({"value": {"name": name, "main": "main", "binary": false, "code": code, "env": env}});
    Bytes::from(body.to_string())
}

/// The `/run` body of OpenWhisk's action interface (`{"value": params, "activation_id", ...}`).
fn run_body(value: Value, activation_id: &str) -> Bytes {
    let body = json!({
        "value": value,
        "namespace": "guest",
        "action_name": "/guest/conformance",
        "action_version": "0.0.1",
        "activation_id": activation_id,
        "transaction_id": "tid-conformance",
        "deadline": "4102444800000",
    });
    Bytes::from(body.to_string())
}

fn spec(name: &str, kind: &str) -> ContainerSpec {
    ContainerSpec::new(name, kind, 256)
}

/// Creates a container and initializes it with `code`, asserting success.
async fn start(
    executor: &dyn Executor,
    spec: &ContainerSpec,
    code: &str,
    env: Value,
) -> Arc<dyn Container> {
    let c = executor
        .create(spec)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", spec.kind));
    let r = c
        .init(init_body(&spec.name, code, env), CALL_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("init {}: {e}", spec.kind));
    assert_eq!(r.status, 200, "init {}: {:?}", spec.kind, r.body);
    c
}

/// Runs and parses the reply as JSON.
async fn run(c: &dyn Container, value: Value, activation_id: &str) -> (u16, Value) {
    let r = c
        .run(run_body(value, activation_id), CALL_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("run: {e}"));
    (r.status, json_of(&r))
}

fn json_of(r: &ProxyResponse) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", r.body))
}

async fn destroy(c: &dyn Container) {
    c.destroy().await.unwrap_or_else(|e| panic!("destroy: {e}"));
}

fn messages(logs: &LogCollection, stream: LogStream) -> Vec<&str> {
    logs.lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.message.as_str())
        .collect()
}

/// Checks `2024-01-31T12:34:56.123456789Z  stdout: hello` (timestamp padded to 30 columns).
fn assert_formatted(line: &str, stream: &str, message: &str) {
    const SHAPE: &str = "dddd-dd-ddTdd:dd:dd.dddddddddZ";
    let ok_stamp = line.len() > SHAPE.len()
        && line.bytes().zip(SHAPE.bytes()).all(|(c, s)| {
            if s == b'd' {
                c.is_ascii_digit()
            } else {
                c == s
            }
        });
    assert!(ok_stamp, "bad timestamp in {line:?}");
    let rest = &line[SHAPE.len()..];
    assert!(rest.starts_with(char::is_whitespace), "{line:?}");
    assert_eq!(
        rest.trim_start(),
        format!("{stream}: {message}"),
        "{line:?}"
    );
}

/// Awaits `case`, failing the test if it takes longer than [`CASE_TIMEOUT`] (a hanging
/// adapter fails instead of blocking the run).
pub async fn run_case<F: Future<Output = ()>>(name: &str, case: F) {
    if tokio::time::timeout(CASE_TIMEOUT, case).await.is_err() {
        panic!("executor conformance case `{name}` did not finish within {CASE_TIMEOUT:?}");
    }
}

/// The manifest offers defaults, unknown kinds are rejected, blackbox is refused when not offered.
pub async fn runtimes_and_capabilities(executor: &dyn Executor) {
    let manifest = executor.runtimes();
    let kinds: Vec<_> = manifest.kinds().collect();
    assert!(!kinds.is_empty(), "an executor offers at least one kind");
    for k in &kinds {
        let default = manifest.default_kind(k.family());
        assert!(default.is_some(), "family {} has no default", k.family());
    }
    let e = executor
        .create(&spec("conformance-unknown", "no-such-runtime:1"))
        .await
        .err();
    assert!(e.is_some(), "an unknown kind must be rejected");
    if !executor.capabilities().blackbox {
        let e = executor
            .create(&spec("conformance-blackbox", "blackbox").with_image("example/none"))
            .await
            .err();
        assert!(
            e.is_some(),
            "blackbox without the capability must be refused"
        );
    }
}

/// `/init` then `/run` of an echo action returns 200 and the parameters.
pub async fn init_and_run_echo(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let c = start(
            executor,
            &spec("conformance-echo", &kind),
            src.echo,
            json!({}),
        )
        .await;
        let params = json!({"name": "Ada", "n": 42, "nested": {"list": [1, "two", null]}});
        let (status, body) = run(&*c, params.clone(), "a1").await;
        assert_eq!(status, 200, "{kind}");
        assert_eq!(body, params, "{kind}");
        // Warm: the same container serves again.
        let (status, body) = run(&*c, json!({"again": true}), "a2").await;
        assert_eq!((status, body), (200, json!({"again": true})), "{kind}");
        destroy(&*c).await;
    }
}

/// The action sees the creation environment, `value.env` of `/init`, and the `/run` context as
/// `__OW_*` variables, updated on every run.
pub async fn environment_visible(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let s = spec("conformance-env", &kind).with_env("FAAS_SPEC_VAR", "from-spec");
        let c = start(executor, &s, src.env, json!({"FAAS_INIT_VAR": "from-init"})).await;
        let keys = json!({"keys": ["FAAS_SPEC_VAR", "FAAS_INIT_VAR", "__OW_ACTIVATION_ID", "__OW_NAMESPACE", "__OW_ACTION_NAME", "FAAS_UNSET_VAR"]});
        let (status, body) = run(&*c, keys.clone(), "act-1").await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["FAAS_SPEC_VAR"], "from-spec", "{kind}: {body}");
        assert_eq!(body["FAAS_INIT_VAR"], "from-init", "{kind}: {body}");
        assert_eq!(body["__OW_ACTIVATION_ID"], "act-1", "{kind}: {body}");
        assert_eq!(body["__OW_NAMESPACE"], "guest", "{kind}: {body}");
        assert_eq!(
            body["__OW_ACTION_NAME"], "/guest/conformance",
            "{kind}: {body}"
        );
        assert_eq!(body["FAAS_UNSET_VAR"], Value::Null, "{kind}: {body}");
        let (_, body) = run(&*c, keys, "act-2").await;
        assert_eq!(body["__OW_ACTIVATION_ID"], "act-2", "{kind}: {body}");
        destroy(&*c).await;
    }
}

/// Logs come back per activation, in order, on the right stream, in OpenWhisk's format.
pub async fn logs_per_activation(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let c = start(
            executor,
            &spec("conformance-logs", &kind),
            src.print,
            json!({}),
        )
        .await;
        let first = json!({"out": ["hello", "out 2", "out 3"], "err": ["oops", "err 2"]});
        let (status, _) = run(&*c, first, "l1").await;
        assert_eq!(status, 200, "{kind}");
        let logs = c.logs(LOG_LIMIT, true).await.unwrap();
        assert!(!logs.incomplete, "{kind}: sentinels must arrive: {logs:?}");
        assert!(!logs.truncated, "{kind}");
        assert_eq!(
            messages(&logs, LogStream::Stdout),
            ["hello", "out 2", "out 3"],
            "{kind}"
        );
        assert_eq!(
            messages(&logs, LogStream::Stderr),
            ["oops", "err 2"],
            "{kind}"
        );
        assert_eq!(logs.lines.len(), 5, "{kind}: {logs:?}");
        let hello = logs.lines.iter().find(|l| l.message == "hello").unwrap();
        assert_formatted(&hello.format(), "stdout", "hello");
        let oops = logs.lines.iter().find(|l| l.message == "oops").unwrap();
        assert_formatted(&oops.format(), "stderr", "oops");

        let (status, _) = run(&*c, json!({"out": ["second"], "err": []}), "l2").await;
        assert_eq!(status, 200, "{kind}");
        let logs = c.logs(LOG_LIMIT, true).await.unwrap();
        assert!(!logs.incomplete, "{kind}");
        assert_eq!(messages(&logs, LogStream::Stdout), ["second"], "{kind}");
        assert!(
            messages(&logs, LogStream::Stderr).is_empty(),
            "{kind}: {logs:?}"
        );
        destroy(&*c).await;
    }
}

/// Messages are kept while their byte sum stays within the limit; the rest sets `truncated`.
pub async fn logs_limit_truncates(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let c = start(
            executor,
            &spec("conformance-loglimit", &kind),
            src.print,
            json!({}),
        )
        .await;
        let lines: Vec<String> = (0..10).map(|i| format!("line-{i}-xx")).collect(); // 10 bytes each
        let (status, _) = run(&*c, json!({"out": lines, "err": []}), "t1").await;
        assert_eq!(status, 200, "{kind}");
        let logs = c.logs(35, true).await.unwrap();
        assert!(logs.truncated, "{kind}: {logs:?}");
        assert!(!logs.incomplete, "{kind}");
        assert_eq!(
            messages(&logs, LogStream::Stdout),
            ["line-0-xx", "line-1-xx", "line-2-xx"],
            "{kind}"
        );
        // The next activation is not affected.
        run(&*c, json!({"out": ["after"], "err": []}), "t2").await;
        let logs = c.logs(35, true).await.unwrap();
        assert!(!logs.truncated, "{kind}: {logs:?}");
        assert_eq!(messages(&logs, LogStream::Stdout), ["after"], "{kind}");
        destroy(&*c).await;
    }
}

/// A second `/init` is refused with 403.
pub async fn second_init_forbidden(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let c = start(
            executor,
            &spec("conformance-reinit", &kind),
            src.echo,
            json!({}),
        )
        .await;
        let r = c
            .init(init_body("again", src.echo, json!({})), CALL_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{kind}");
        // The first action still runs.
        let (status, body) = run(&*c, json!({"k": 1}), "r1").await;
        assert_eq!((status, body), (200, json!({"k": 1})), "{kind}");
        destroy(&*c).await;
    }
}

/// Broken code fails `/init` with an error object; a throwing action fails `/run` with 502.
pub async fn init_and_run_failures(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let c = executor
            .create(&spec("conformance-broken", &kind))
            .await
            .unwrap();
        let r = c
            .init(init_body("broken", src.broken, json!({})), CALL_TIMEOUT)
            .await
            .unwrap();
        assert_ne!(r.status, 200, "{kind}");
        assert!(json_of(&r)["error"].is_string(), "{kind}: {:?}", r.body);
        let logs = c.logs(LOG_LIMIT, true).await.unwrap();
        assert!(
            !logs.incomplete,
            "{kind}: a failed init writes the sentinels"
        );
        destroy(&*c).await;

        let c = start(
            executor,
            &spec("conformance-throw", &kind),
            src.throw,
            json!({}),
        )
        .await;
        let r = c
            .run(run_body(json!({}), "f1"), CALL_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(r.status, 502, "{kind}");
        assert_eq!(json_of(&r)["error"], "boom", "{kind}");
        let logs = c.logs(LOG_LIMIT, true).await.unwrap();
        assert!(!logs.incomplete, "{kind}");
        assert!(
            !messages(&logs, LogStream::Stderr).is_empty(),
            "{kind}: the error goes to stderr"
        );
        destroy(&*c).await;
    }
}

/// A run past its time limit returns `Timeout`, promptly.
pub async fn run_timeout(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let c = start(
            executor,
            &spec("conformance-timeout", &kind),
            src.sleep,
            json!({}),
        )
        .await;
        let limit = Duration::from_millis(500);
        let started = Instant::now();
        let r = c.run(run_body(json!({"ms": 10_000}), "s1"), limit).await;
        let took = started.elapsed();
        assert!(matches!(r, Err(ProxyError::Timeout)), "{kind}: {r:?}");
        assert!(took >= limit, "{kind}: returned early ({took:?})");
        assert!(
            took < limit + Duration::from_secs(1),
            "{kind}: took {took:?}"
        );
        // Whatever was printed is still collectable without waiting.
        c.logs(LOG_LIMIT, false).await.unwrap();
        destroy(&*c).await;
    }
}

/// An action that ends its process yields `Exited`.
pub async fn action_exit_reported(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let c = start(
            executor,
            &spec("conformance-exit", &kind),
            src.exit,
            json!({}),
        )
        .await;
        let r = c.run(run_body(json!({}), "x1"), CALL_TIMEOUT).await;
        assert!(matches!(r, Err(ProxyError::Exited { .. })), "{kind}: {r:?}");
        // Collecting whatever was written does not hang.
        let logs = c.logs(LOG_LIMIT, true).await.unwrap();
        assert!(logs.incomplete, "{kind}: no sentinels after an exit");
        destroy(&*c).await;
    }
}

/// `destroy` is idempotent; afterwards calls fail instead of hanging.
pub async fn destroy_is_final(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let c = start(
            executor,
            &spec("conformance-destroy", &kind),
            src.echo,
            json!({}),
        )
        .await;
        run(&*c, json!({}), "d1").await;
        destroy(&*c).await;
        destroy(&*c).await;
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            c.run(run_body(json!({}), "d2"), Duration::from_secs(3)),
        )
        .await;
        let r = r.unwrap_or_else(|_| panic!("{kind}: run after destroy hung"));
        assert!(r.is_err(), "{kind}: run after destroy answered {r:?}");
    }
}

/// A paused container does not answer; resumed, it works again.
pub async fn pause_and_resume(executor: &dyn Executor) {
    if !executor.capabilities().pause_resume {
        eprintln!("executor conformance: pause_resume not offered; skipped");
        return;
    }
    for (src, kind) in families(executor) {
        let c = start(
            executor,
            &spec("conformance-pause", &kind),
            src.counter,
            json!({}),
        )
        .await;
        let (_, body) = run(&*c, json!({}), "p1").await;
        assert_eq!(body, json!({"n": 1}), "{kind}");
        c.pause().await.unwrap();
        let r = c
            .run(run_body(json!({}), "p2"), Duration::from_millis(300))
            .await;
        assert!(
            matches!(r, Err(ProxyError::Timeout)),
            "{kind}: paused yet {r:?}"
        );
        c.resume().await.unwrap();
        let (status, body) = run(&*c, json!({}), "p3").await;
        assert_eq!(status, 200, "{kind}");
        // The timed-out request may or may not have reached the action before the pause.
        let n = body["n"].as_u64().unwrap_or(0);
        assert!(n == 2 || n == 3, "{kind}: {body}");
        c.pause().await.unwrap();
        c.resume().await.unwrap();
        let (status, _) = run(&*c, json!({}), "p4").await;
        assert_eq!(status, 200, "{kind}");
        destroy(&*c).await;
    }
}

/// Two containers of the same action share no state.
pub async fn containers_are_isolated(executor: &dyn Executor) {
    for (src, kind) in families(executor) {
        let a = start(
            executor,
            &spec("conformance-iso-a", &kind),
            src.counter,
            json!({}),
        )
        .await;
        let b = start(
            executor,
            &spec("conformance-iso-b", &kind),
            src.counter,
            json!({}),
        )
        .await;
        assert_ne!(a.id(), b.id(), "{kind}");
        assert_eq!(run(&*a, json!({}), "i1").await.1, json!({"n": 1}), "{kind}");
        assert_eq!(run(&*a, json!({}), "i2").await.1, json!({"n": 2}), "{kind}");
        assert_eq!(run(&*b, json!({}), "i3").await.1, json!({"n": 1}), "{kind}");
        destroy(&*a).await;
        // Destroying one leaves the other running.
        assert_eq!(run(&*b, json!({}), "i4").await.1, json!({"n": 2}), "{kind}");
        destroy(&*b).await;
    }
}

/// Expands to one `#[tokio::test]` per [`Executor`] conformance case.
///
/// `$setup` is an async function returning `Option<Arc<E>>` for any `E: Executor` (usually
/// `Arc<dyn Executor>`); `None` skips the case through [`testkit::skip`](crate::testkit::skip),
/// which fails instead when `FAAS_REQUIRE_SERVICES=1`. `$setup` runs once per case.
///
/// ```text
/// mod executor_conformance {
///     async fn setup() -> Option<std::sync::Arc<dyn faas_core::Executor>> {
///         my_crate::MyExecutor::detect().ok().map(|e| std::sync::Arc::new(e) as _)
///     }
///     faas_core::executor_conformance!(setup);
/// }
/// ```
#[macro_export]
macro_rules! executor_conformance {
    ($setup:path) => {
        $crate::__executor_conformance_cases!(
            $setup;
            runtimes_and_capabilities,
            init_and_run_echo,
            environment_visible,
            logs_per_activation,
            logs_limit_truncates,
            second_init_forbidden,
            init_and_run_failures,
            run_timeout,
            action_exit_reported,
            destroy_is_final,
            pause_and_resume,
            containers_are_isolated,
        );
    };
}

/// Implementation detail of [`executor_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __executor_conformance_cases {
    ($setup:path; $($case:ident),* $(,)?) => {
        $(
            #[$crate::testkit::store::__tokio::test(crate = "faas_core::testkit::store::__tokio")]
            async fn $case() {
                let Some(executor) = $setup().await else {
                    $crate::testkit::skip(concat!("executor conformance case ", stringify!($case)));
                    return;
                };
                let executor: ::std::sync::Arc<dyn $crate::Executor> = executor;
                $crate::testkit::executor::run_case(
                    stringify!($case),
                    $crate::testkit::executor::$case(&*executor),
                )
                .await;
            }
        )*
    };
}
