//! The controller with the real invoker (`faas_exec::invoker`) and local-process containers:
//! the whole OpenWhisk invoke path in one process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use faas_core::Executor;
use faas_core::message::InvokerInstanceId;
use faas_exec::invoker::{InvokerConfig, InvokerHandle, InvokerService};
use faas_exec::pool::ContainerPool;
use faas_exec::process::ProcessExecutor;
use faas_http::ControllerConfig;
use support::*;

struct Platform {
    env: Env,
    invoker: Option<InvokerHandle>,
}

impl Platform {
    async fn start() -> Self {
        let exec = ProcessExecutor::detect().expect("node and python3 on PATH");
        let config = ControllerConfig::default().with_manifest(exec.runtimes());
        let env = env_with(config).await;
        let config = InvokerConfig::new(InvokerInstanceId::new(0, 2048))
            .with_api_host("http://127.0.0.1:1")
            .with_health_interval(Duration::from_millis(50))
            .with_shutdown_timeout(Duration::from_secs(10));
        let pool = ContainerPool::new(Arc::new(exec), config.pool_config()).unwrap();
        let svc = InvokerService::new(config, Arc::clone(&env.store), Arc::clone(&env.bus), pool);
        let invoker = start_invoker(&env, svc).await;
        Self {
            env,
            invoker: Some(invoker),
        }
    }

    async fn action(&self, name: &str, code: &str) {
        let r = put(
            &self.env.router,
            &format!("{ACTIONS}/{name}"),
            node_action(code),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    }

    async fn stop(mut self) {
        if let Some(h) = self.invoker.take() {
            within("invoker shutdown", h.shutdown()).await;
        }
    }
}

async fn await_record(p: &Platform, id: &str) -> Reply {
    stored_record(&p.env.router, id).await
}

#[tokio::test]
async fn blocking_invokes_through_the_real_invoker() {
    let p = Platform::start().await;
    let router = &p.env.router;
    p.action(
        "echo",
        "function main(a){ console.log('hello from', a.name); return {got: a}; }",
    )
    .await;

    let r = post(
        router,
        &format!("{ACTIONS}/echo?blocking=true"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let js = r.json();
    let id = js["activationId"].as_str().unwrap().to_string();
    assert_eq!(r.header("x-openwhisk-activation-id"), Some(id.as_str()));
    assert_eq!(js["response"]["result"], json!({"got": {"name": "x"}}));
    assert_eq!(js["response"]["status"], "success");
    assert_eq!(js["namespace"], "guest");
    assert_eq!(js["name"], "echo");

    // Read right after the blocking reply: never a spurious 404, and the logs are there.
    let r = get(router, &format!("{ACTIVATIONS}/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let logs = get(router, &format!("{ACTIVATIONS}/{id}/logs"))
        .await
        .json();
    let lines = logs["logs"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().unwrap().contains("stdout: hello from x")),
        "{logs}"
    );

    let r = post(
        router,
        &format!("{ACTIONS}/echo?blocking=true&result=true"),
        Some(json!({"name": "y"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"got": {"name": "y"}}));

    p.action("fail", "function main(a){ return {error: 'boom'}; }")
        .await;
    let r = post(router, &format!("{ACTIONS}/fail?blocking=true"), None).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["response"]["result"], json!({"error": "boom"}));
    assert_eq!(r.json()["response"]["status"], "application error");
    let r = post(
        router,
        &format!("{ACTIONS}/fail?blocking=true&result=true"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json(), json!({"error": "boom"}));
    p.stop().await;
}

#[tokio::test]
async fn expired_waits_and_non_blocking_invokes_finish_later() {
    let p = Platform::start().await;
    let router = &p.env.router;
    p.action(
        "sleepy",
        "function main(a){ return new Promise(r => setTimeout(() => r({slept: true}), 1500)); }",
    )
    .await;
    let started = std::time::Instant::now();
    let r = post(
        router,
        &format!("{ACTIONS}/sleepy?blocking=true&timeout=100"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "did not wait for the action"
    );
    let id = r.json()["activationId"].as_str().unwrap().to_string();
    let rec = await_record(&p, &id).await;
    assert_eq!(rec.json()["response"]["result"], json!({"slept": true}));

    p.action("quick", "function main(a){ return {n: a.n * 2}; }")
        .await;
    let r = post(router, &format!("{ACTIONS}/quick"), Some(json!({"n": 21}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.json()["activationId"].as_str().unwrap().to_string();
    let rec = await_record(&p, &id).await;
    assert_eq!(rec.json()["response"]["result"], json!({"n": 42}));
    drained(&p.env).await;
    let r = get(router, &format!("{ACTIVATIONS}?name=quick")).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    p.stop().await;
}

#[tokio::test]
async fn sequences_run_their_components() {
    let p = Platform::start().await;
    let router = &p.env.router;
    p.action("inc", "function main(a){ return {x: (a.x || 0) + 1}; }")
        .await;
    p.action("dbl", "function main(a){ return {x: a.x * 2}; }")
        .await;
    p.action("oops", "function main(a){ return {error: 'stop here'}; }")
        .await;
    let seq = |c: serde_json::Value| json!({"exec": {"kind": "sequence", "components": c}});
    assert_eq!(
        put(
            router,
            &format!("{ACTIONS}/pipeline"),
            seq(json!(["inc", "dbl", "inc"]))
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = post(
        router,
        &format!("{ACTIONS}/pipeline?blocking=true"),
        Some(json!({"x": 4})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let js = r.json();
    assert_eq!(js["response"]["result"], json!({"x": 11}));
    let components = js["logs"].as_array().unwrap();
    assert_eq!(components.len(), 3);
    let seq_id = js["activationId"].as_str().unwrap().to_string();
    // Each component's record names the sequence as its cause.
    let first = await_record(&p, components[0].as_str().unwrap())
        .await
        .json();
    assert_eq!(first["cause"], seq_id.as_str());
    let stored = await_record(&p, &seq_id).await.json();
    assert_eq!(stored["response"]["result"], json!({"x": 11}));

    // Nested sequences are inlined; the first failure ends the run.
    assert_eq!(
        put(
            router,
            &format!("{ACTIONS}/outer"),
            seq(json!(["pipeline", "oops", "inc"]))
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = post(
        router,
        &format!("{ACTIONS}/outer?blocking=true&result=true"),
        Some(json!({"x": 1})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json(), json!({"error": "stop here"}));

    let r = post(
        router,
        &format!("{ACTIONS}/pipeline"),
        Some(json!({"x": 0})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.json()["activationId"].as_str().unwrap().to_string();
    let rec = await_record(&p, &id).await.json();
    assert_eq!(rec["response"]["result"], json!({"x": 3}));
    p.stop().await;
}

/// An action of a kind this invoker's executor does not run (stored by a controller that
/// knew other invokers, and sent before the kinds were known) is the developer's error, not
/// the platform's: it must never count against the invoker's health.
#[tokio::test]
async fn a_kind_the_invoker_cannot_run_is_a_developer_error() {
    use faas_core::activation::StatusCode as Status;
    use faas_core::entity::{ActionPut, Entity};
    use faas_core::identity::{AuthKey, Identity, Namespace};
    use faas_core::message::{ActionRef, ActivationMessage, ControllerInstanceId, TransactionId};
    use faas_core::{
        ActivationId, EntityName, FullyQualifiedName, RuntimeManifest, RuntimeSpec, SystemLimits,
    };

    let p = Platform::start().await;
    let mut elsewhere = RuntimeManifest::new();
    elsewhere.add(RuntimeSpec::new("nodejs:8", true));
    let fqn = FullyQualifiedName::resolve("/guest/old", "guest").unwrap();
    let put: ActionPut = serde_json::from_value(
        json!({"exec": {"kind": "nodejs:8", "code": "function main() { return {}; }"}}),
    )
    .unwrap();
    let action = put
        .into_action(&fqn, None, &SystemLimits::default(), &elsewhere)
        .unwrap();
    p.env
        .store
        .put_entity(&Entity::Action(action.clone()), None)
        .await
        .unwrap();
    let key = AuthKey::parse(GUEST).unwrap();
    let user = Identity {
        subject: "guest".into(),
        namespace: Namespace {
            name: EntityName::new("guest").unwrap(),
            uuid: key.uuid.clone(),
        },
        authkey: key,
        rights: Identity::all_rights(),
        limits: Default::default(),
    };
    let service = p.invoker.as_ref().unwrap().service().clone();
    for _ in 0..6 {
        let msg = ActivationMessage {
            transid: TransactionId::new("t"),
            action: ActionRef {
                path: action.namespace.clone(),
                name: action.name.clone(),
                version: action.version,
                binding: None,
            },
            revision: None,
            user: user.clone(),
            activation_id: ActivationId::generate(),
            root_controller_index: ControllerInstanceId::new("0"),
            blocking: false,
            content: None,
            init_args: Vec::new(),
            locked_args: Default::default(),
            cause: None,
            trace_context: None,
        };
        let record = within("invoke", service.invoke(msg)).await.unwrap();
        assert_eq!(record.response.status_code, Status::DeveloperError);
        let error = record.response.result.unwrap()["error"].to_string();
        assert!(error.contains("nodejs:8"), "{error}");
    }
    // Six such answers (more than the 3 system errors of 10 that make an invoker unhealthy):
    // still up.
    let r = get(&p.env.router, "/invokers").await;
    assert_eq!(r.json(), json!({"invoker0": "up"}));
    p.stop().await;
}
