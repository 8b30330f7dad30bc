//! An `Executor` that runs Rust closures as actions of kind `rust:closure`.
//!
//! An executor makes sandboxes ("containers") that speak OpenWhisk's action-proxy protocol:
//! `/init` hands over the action's code, `/run` its arguments, and the answer is the result.
//! Here a "container" is a handle on a closure registered in the executor, and an action's
//! `code` names the closure to run. The invoker, its pool and the controller are the real
//! ones: the example creates an action of the new kind through the API and invokes it once.
//!
//! Run: `cargo run -p faas-platform --example custom-executor`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::executor::{ExecCapabilities, LogCollection};
use faas_core::runtimes::RuntimeSpec;
use faas_core::{
    Container, ContainerSpec, Executor, ProxyError, ProxyResponse, Result, RuntimeManifest,
};
use faas_platform::Platform;
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// An action: its arguments in, its result (or an error message) out.
type Function = Arc<dyn Fn(Value) -> std::result::Result<Value, String> + Send + Sync>;

/// Closures by name (`Debug` shows the names).
#[derive(Clone, Default)]
struct Functions(BTreeMap<String, Function>);

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Runs the closures registered with [`with`](Self::with), by name.
#[derive(Debug, Default)]
struct ClosureExecutor {
    functions: Functions,
}

impl ClosureExecutor {
    fn with(
        mut self,
        name: &str,
        f: impl Fn(Value) -> std::result::Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.functions.0.insert(name.to_string(), Arc::new(f));
        self
    }
}

#[async_trait]
impl Executor for ClosureExecutor {
    async fn create(&self, spec: &ContainerSpec) -> Result<Arc<dyn Container>> {
        self.runtimes().resolve(&spec.kind)?; // refuses any other kind
        Ok(Arc::new(ClosureContainer {
            id: spec.name.clone(),
            functions: self.functions.clone(),
            chosen: Mutex::new(None),
            destroyed: AtomicBool::new(false),
        }))
    }

    /// The kinds offered: the controller accepts actions of these kinds only.
    fn runtimes(&self) -> RuntimeManifest {
        let mut manifest = RuntimeManifest::new();
        manifest.add(RuntimeSpec::new("rust:closure", true));
        manifest
    }

    /// No memory limit, no network of its own, no real pause, no images.
    fn capabilities(&self) -> ExecCapabilities {
        ExecCapabilities::new(false, false, false, false)
    }
}

/// One "sandbox": the closure its `/init` chose.
#[derive(Debug)]
struct ClosureContainer {
    id: String,
    functions: Functions,
    chosen: Mutex<Option<String>>,
    destroyed: AtomicBool,
}

/// A proxy answer: `status` and a JSON body.
fn answer(status: u16, body: Value) -> std::result::Result<ProxyResponse, ProxyError> {
    let body = Bytes::from(body.to_string());
    Ok(ProxyResponse {
        status,
        body,
        truncated: None,
    })
}

#[async_trait]
impl Container for ClosureContainer {
    fn id(&self) -> &str {
        &self.id
    }

    /// `{"value": {"code": NAME, ...}}`: picks closure NAME (once, as the protocol says).
    async fn init(
        &self,
        body: Bytes,
        _: Duration,
    ) -> std::result::Result<ProxyResponse, ProxyError> {
        let init: Value = serde_json::from_slice(&body).unwrap_or_default();
        let name = init["value"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut chosen = self.chosen.lock().unwrap_or_else(PoisonError::into_inner);
        if chosen.is_some() {
            return answer(
                403,
                json!({ "error": "Cannot initialize the action more than once." }),
            );
        }
        if !self.functions.0.contains_key(&name) {
            return answer(
                502,
                json!({ "error": format!("no closure named '{name}'") }),
            );
        }
        *chosen = Some(name);
        answer(200, json!({ "ok": true }))
    }

    /// `{"value": ARGS, ...}`: the closure's result, or its error as `{"error": …}`.
    async fn run(
        &self,
        body: Bytes,
        _: Duration,
    ) -> std::result::Result<ProxyResponse, ProxyError> {
        let run: Value = serde_json::from_slice(&body).unwrap_or_default();
        let chosen = self
            .chosen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(f) = chosen.and_then(|name| self.functions.0.get(&name).cloned()) else {
            return answer(500, json!({ "error": "The action was not initialized." }));
        };
        match f(run["value"].clone()) {
            Ok(result) => answer(200, result),
            Err(message) => answer(502, json!({ "error": message })),
        }
    }

    // A closure prints nothing; nothing to pause; destroying forgets it.
    async fn logs(&self, _: u64, _: bool) -> Result<LogCollection> {
        Ok(LogCollection::default())
    }
    async fn pause(&self) -> Result<()> {
        Ok(())
    }
    async fn resume(&self) -> Result<()> {
        Ok(())
    }
    async fn destroy(&self) -> Result<()> {
        self.destroyed.store(true, Ordering::Relaxed);
        Ok(())
    }
    fn is_dead(&self) -> bool {
        self.destroyed.load(Ordering::Relaxed)
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let executor = ClosureExecutor::default().with("add", |args| {
        let n = |k: &str| args[k].as_i64().ok_or(format!("'{k}' must be an integer"));
        Ok(json!({ "sum": n("a")? + n("b")? }))
    });

    // The executor given as a part (it could as well be registered under a scheme of its
    // own: `adapters.executors.register("closure", …)` and `--executor closure:`).
    let config = faas_platform::config::NodeConfig {
        listen: "127.0.0.1:0".parse()?,
        catalog: false,
        ..Default::default()
    };
    let running = Platform::builder()
        .config(config)
        .executor(Arc::new(executor))
        .start()
        .await?;

    let exec = json!({ "exec": { "kind": "rust:closure", "code": "add" } });
    let (status, _) = running
        .call(Method::PUT, "/api/v1/namespaces/_/actions/add", Some(exec))
        .await?;
    assert_eq!(status, StatusCode::OK, "create");
    let path = "/api/v1/namespaces/_/actions/add?blocking=true&result=true";
    let (status, result) = running
        .call(Method::POST, path, Some(json!({ "a": 2, "b": 40 })))
        .await?;
    println!("{status}: {result}");

    running.shutdown().await;
    if result != json!({ "sum": 42 }) {
        return Err(format!("unexpected result {result}").into());
    }
    Ok(())
}
