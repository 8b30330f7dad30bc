//! The adversarial multi-tenant suite: `guest` (the attacker) tries every way across into
//! `other` (the victim) that the API offers — direct reads and invokes, packages, bindings,
//! `_`, encoded slashes, sequence components (at create and at run, nested), conductor steps,
//! activations, limits — and must be denied every time, with an answer identical to the one
//! for an entity that does not exist (so that nothing can be learnt by probing), and without
//! any of the victim's code running or parameters leaking.
//!
//! Both tenants are real users, created the way an operator creates them: through the admin
//! API (`PUT /admin/v1/subjects/{subject}/namespaces/{ns}`, what `faas-platform admin user
//! create` calls), each with the random key it answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_http::ControllerConfig;
use faas_http::admin::AdminCredential;
use support::*;

const SECRET: &str = "s3cret-of-other";
const ADMIN_TOKEN: &str = "tenants-suite-operator-0123456789abcdef0123";

/// A platform with two users, `guest` (the attacker) and `other` (the victim).
struct Tenants {
    env: Env,
    guest: String,
    other: String,
}

impl Deref for Tenants {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

/// Creates `subject` (namespace of the same name) through the admin API; its `uuid:key`.
async fn create_user(e: &Env, subject: &str) -> String {
    let req = Request::builder()
        .method(Method::PUT)
        .uri(format!("/admin/v1/subjects/{subject}/namespaces/{subject}"))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let r = call(&e.router, req).await;
    assert!(
        r.status.is_success(),
        "admin user create {subject}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let js = r.json();
    format!(
        "{}:{}",
        js["uuid"].as_str().unwrap(),
        js["key"].as_str().unwrap()
    )
}

async fn tenants() -> Tenants {
    let env = env_bare(
        ControllerConfig::default()
            .with_admin_credential(AdminCredential::new(ADMIN_TOKEN).unwrap()),
    )
    .await;
    let guest = create_user(&env, "guest").await;
    let other = create_user(&env, "other").await;
    assert_ne!(guest, other);
    Tenants { env, guest, other }
}

async fn as_other(e: &Tenants, method: Method, uri: &str, body: Option<Value>) -> Reply {
    let r = call(&e.router, request(method, uri, Some(&e.other), body)).await;
    assert!(
        r.status.is_success(),
        "victim set-up {uri}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    r
}

async fn as_guest(e: &Tenants, method: Method, uri: &str, body: Option<Value>) -> Reply {
    call(&e.router, request(method, uri, Some(&e.guest), body)).await
}

/// The victim's entities: private action, private package with an action, a private binding,
/// a published package with an open action and sequences over private or missing actions.
async fn victim(e: &Tenants) {
    let secret_action = json!({
        "exec": {"kind": "nodejs:default", "code": "function main(a){return a}"},
        "parameters": [{"key": "secret", "value": SECRET}],
    });
    as_other(
        e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/secret",
        Some(secret_action.clone()),
    )
    .await;
    as_other(
        e,
        Method::PUT,
        "/api/v1/namespaces/_/packages/vault",
        Some(json!({"parameters": [{"key": "secret", "value": SECRET}]})),
    )
    .await;
    as_other(
        e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/vault/get",
        Some(secret_action.clone()),
    )
    .await;
    as_other(
        e,
        Method::PUT,
        "/api/v1/namespaces/_/packages/bind",
        Some(json!({"binding": {"namespace": "other", "name": "vault"}})),
    )
    .await;
    as_other(
        e,
        Method::PUT,
        "/api/v1/namespaces/_/packages/pub",
        Some(json!({"publish": true})),
    )
    .await;
    as_other(
        e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/pub/open",
        Some(node_action("function main(a){return a}")),
    )
    .await;
    // Published sequences whose components the owner may run but others may not.
    for (name, component) in [
        ("seq", "/other/secret"),
        ("seqpkg", "/other/vault/get"),
        ("seqopen", "/other/pub/open"),
    ] {
        as_other(
            e,
            Method::PUT,
            &format!("/api/v1/namespaces/_/actions/pub/{name}"),
            Some(json!({"exec": {"kind": "sequence", "components": [component]}})),
        )
        .await;
    }
}

/// Asserts that probing `existing` and `missing` gave the same answer (the names swapped).
fn assert_indistinguishable(
    what: &str,
    existing: &Reply,
    e_name: &str,
    missing: &Reply,
    m_name: &str,
) {
    assert_eq!(
        existing.status,
        missing.status,
        "{what}: status differs ({} vs {})",
        String::from_utf8_lossy(&existing.body),
        String::from_utf8_lossy(&missing.body)
    );
    assert!(
        existing.status.is_client_error(),
        "{what}: not refused: {} {}",
        existing.status,
        String::from_utf8_lossy(&existing.body)
    );
    let a = existing.error().replace(e_name, "NAME");
    let b = missing.error().replace(m_name, "NAME");
    assert_eq!(a, b, "{what}: messages differ");
    let body = String::from_utf8_lossy(&existing.body);
    assert!(!body.contains(SECRET), "{what}: leaked the secret: {body}");
}

/// Runs `probe` with an existing private name and with a missing one; both must be refused
/// identically.
async fn probe(
    e: &Tenants,
    what: &str,
    method: Method,
    template: &str,
    existing: &str,
    missing: &str,
    body: Option<Value>,
) {
    let a = as_guest(
        e,
        method.clone(),
        &template.replace("NAME", existing),
        body.clone(),
    )
    .await;
    let b = as_guest(e, method, &template.replace("NAME", missing), body).await;
    assert_indistinguishable(what, &a, existing, &b, missing);
}

/// An invoker that answers every activation with its arguments and records what ran.
fn echo_invoker(e: &Env, inv: FakeInvoker) -> Arc<Mutex<Vec<String>>> {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    inv.serve(e, move |msg| {
        seen.lock().unwrap().push(msg.action.fqn().to_string());
        let content = msg.content.clone().unwrap_or(json!({}));
        // A conductor scripted by its arguments: `next` names the step to take.
        match content.get("next") {
            Some(next) if content.get("error").is_none() && content.get("done").is_none() => {
                ActivationResponse::success(json!({"action": next, "params": {"done": true}}))
            }
            _ => ActivationResponse::success(content),
        }
    });
    ran
}

#[tokio::test]
async fn direct_access_is_denied_like_a_missing_entity() {
    let e = tenants().await;
    let inv = FakeInvoker::start(&e).await;
    let ran = echo_invoker(&e, inv);
    victim(&e).await;
    let ns = "/api/v1/namespaces/other";
    for method in [Method::GET, Method::POST, Method::DELETE] {
        probe(
            &e,
            "default-package action",
            method.clone(),
            &format!("{ns}/actions/NAME?blocking=true"),
            "secret",
            "nosuch",
            None,
        )
        .await;
        probe(
            &e,
            "private package action",
            method.clone(),
            &format!("{ns}/actions/NAME/get?blocking=true"),
            "vault",
            "nopkg",
            None,
        )
        .await;
        probe(
            &e,
            "action through their binding",
            method.clone(),
            &format!("{ns}/actions/NAME/get?blocking=true"),
            "bind",
            "nobind",
            None,
        )
        .await;
        probe(
            &e,
            "private package",
            method.clone(),
            &format!("{ns}/packages/NAME"),
            "vault",
            "nopkg",
            None,
        )
        .await;
        probe(
            &e,
            "their binding",
            method,
            &format!("{ns}/packages/NAME"),
            "bind",
            "nobind",
            None,
        )
        .await;
    }
    probe(
        &e,
        "action update",
        Method::PUT,
        &format!("{ns}/actions/NAME?overwrite=true"),
        "secret",
        "nosuch",
        Some(node_action("function main(){return {}}")),
    )
    .await;
    probe(
        &e,
        "package update",
        Method::PUT,
        &format!("{ns}/packages/NAME?overwrite=true"),
        "vault",
        "nopkg",
        Some(json!({"publish": true})),
    )
    .await;
    probe(
        &e,
        "list of a private package",
        Method::GET,
        &format!("{ns}/actions/NAME/"),
        "vault",
        "nopkg",
        None,
    )
    .await;
    // A published package's own actions are shared, but not as a back door to the rest.
    probe(
        &e,
        "published package, private action name",
        Method::GET,
        &format!("{ns}/actions/pub/NAME"),
        "secret",
        "nosuch",
        None,
    )
    .await;

    // Their collections: refused as a whole.
    for path in ["actions", "activations", "limits"] {
        let r = as_guest(&e, Method::GET, &format!("{ns}/{path}"), None).await;
        r.assert_error(
            StatusCode::FORBIDDEN,
            "The supplied authentication is not authorized to access 'other'.",
        );
    }
    // Their activations: a real id and a random one answer alike.
    let real = as_other(
        &e,
        Method::POST,
        "/api/v1/namespaces/_/actions/secret?blocking=true",
        None,
    )
    .await;
    let id = real.json()["activationId"].as_str().unwrap().to_string();
    let fake = faas_core::ActivationId::generate().to_string();
    for suffix in ["", "/logs", "/result"] {
        let a = as_guest(
            &e,
            Method::GET,
            &format!("{ns}/activations/{id}{suffix}"),
            None,
        )
        .await;
        let b = as_guest(
            &e,
            Method::GET,
            &format!("{ns}/activations/{fake}{suffix}"),
            None,
        )
        .await;
        assert_indistinguishable("activation", &a, &id, &b, &fake);
    }
    // Only the victim's own invoke ran.
    assert_eq!(*ran.lock().unwrap(), ["other/secret"]);
}

#[tokio::test]
async fn namespace_tricks_do_not_cross() {
    let e = tenants().await;
    victim(&e).await;
    // Encoded slashes and `_` in odd places are names, never paths into another namespace.
    for (existing, missing) in [
        (
            "/api/v1/namespaces/other%2Fvault/actions/get",
            "/api/v1/namespaces/other%2Fnopkg/actions/get",
        ),
        (
            "/api/v1/namespaces/_/actions/%2Fother%2Fsecret",
            "/api/v1/namespaces/_/actions/%2Fother%2Fnosuch",
        ),
        (
            "/api/v1/namespaces/_/actions/other%2Fsecret",
            "/api/v1/namespaces/_/actions/other%2Fnosuch",
        ),
        (
            "/api/v1/namespaces/_/actions/vault%2Fget",
            "/api/v1/namespaces/_/actions/nopkg%2Fget",
        ),
        (
            "/api/v1/namespaces/_%2Fother/actions/secret",
            "/api/v1/namespaces/_%2Fother/actions/nosuch",
        ),
        (
            "/api/v1/namespaces/other/actions/vault%2F..%2Fsecret",
            "/api/v1/namespaces/other/actions/nopkg%2F..%2Fnosuch",
        ),
    ] {
        for method in [Method::GET, Method::POST] {
            let a = as_guest(&e, method.clone(), existing, None).await;
            let b = as_guest(&e, method, missing, None).await;
            assert_eq!(a.status, b.status, "{existing}");
            assert!(a.status.is_client_error(), "{existing}: {}", a.status);
            assert!(!String::from_utf8_lossy(&a.body).contains(SECRET));
        }
    }
    // `_` is always the caller's own namespace.
    let r = as_guest(&e, Method::GET, "/api/v1/namespaces/_/actions/secret", None).await;
    r.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let r = as_guest(&e, Method::GET, "/api/v1/namespaces/_/packages/vault", None).await;
    r.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
}

#[tokio::test]
async fn bindings_do_not_cross() {
    let e = tenants().await;
    victim(&e).await;
    for (existing, missing) in [("vault", "nopkg"), ("bind", "nobind")] {
        let body = |n: &str| Some(json!({"binding": {"namespace": "other", "name": n}}));
        let a = as_guest(
            &e,
            Method::PUT,
            "/api/v1/namespaces/_/packages/b1",
            body(existing),
        )
        .await;
        let b = as_guest(
            &e,
            Method::PUT,
            "/api/v1/namespaces/_/packages/b2",
            body(missing),
        )
        .await;
        assert_indistinguishable("binding", &a, existing, &b, missing);
        a.assert_error(
            StatusCode::FORBIDDEN,
            &format!("The supplied authentication is not authorized to access 'other/{existing}'."),
        );
    }
    // Nothing was created.
    let r = as_guest(&e, Method::GET, "/api/v1/namespaces/_/packages", None).await;
    assert_eq!(r.json(), json!([]));
}

#[tokio::test]
async fn sequences_do_not_cross() {
    let e = tenants().await;
    let inv = FakeInvoker::start(&e).await;
    let ran = echo_invoker(&e, inv);
    victim(&e).await;
    let seq = |c: &str| Some(json!({"exec": {"kind": "sequence", "components": [c]}}));
    // At create: a direct foreign component, private or missing, is refused alike.
    for (template, existing, missing) in [
        ("/other/NAME", "secret", "nosuch"),
        ("/other/NAME/get", "vault", "nopkg"),
        ("/other/NAME/get", "bind", "nobind"),
        ("/other/pub/NAME", "secret", "nosuch"),
    ] {
        let a = as_guest(
            &e,
            Method::PUT,
            "/api/v1/namespaces/_/actions/s1",
            seq(&template.replace("NAME", existing)),
        )
        .await;
        let b = as_guest(
            &e,
            Method::PUT,
            "/api/v1/namespaces/_/actions/s2",
            seq(&template.replace("NAME", missing)),
        )
        .await;
        assert_indistinguishable(template, &a, existing, &b, missing);
    }
    // A published sequence is no key to its private components: not at create...
    for nested in ["/other/pub/seq", "/other/pub/seqpkg"] {
        let r = as_guest(
            &e,
            Method::PUT,
            "/api/v1/namespaces/_/actions/s3",
            seq(nested),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{nested}: {}", r.json());
    }
    // ...nor when invoked directly.
    for nested in ["seq", "seqpkg"] {
        let r = as_guest(
            &e,
            Method::POST,
            &format!("/api/v1/namespaces/other/actions/pub/{nested}?blocking=true"),
            Some(json!({})),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{nested}: {}", r.json());
    }
    // ...nor when its owner swaps a component after the caller's sequence was accepted: the
    // components are entitled again at every run, at every level, and the refusal reads as a
    // missing component.
    let r = as_guest(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/mine",
        seq("/other/pub/seqopen"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let run = || async {
        let r = as_guest(
            &e,
            Method::POST,
            "/api/v1/namespaces/_/actions/mine?blocking=true",
            Some(json!({"x": 1})),
        )
        .await;
        r.json()
    };
    let before = run().await;
    assert_eq!(before["response"]["status"], "success", "{before}");
    let swap = |c: &str| json!({"exec": {"kind": "sequence", "components": [c]}});
    as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/pub/seqopen?overwrite=true",
        Some(swap("/other/secret")),
    )
    .await;
    let private = run().await;
    // The same component made missing: created, named, then deleted by its owner.
    as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/gone",
        Some(node_action("function main(a){return a}")),
    )
    .await;
    as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/pub/seqopen?overwrite=true",
        Some(swap("/other/gone")),
    )
    .await;
    as_other(
        &e,
        Method::DELETE,
        "/api/v1/namespaces/_/actions/gone",
        None,
    )
    .await;
    let missing = run().await;
    for r in [&private, &missing] {
        assert_eq!(r["response"]["status"], "application error", "{r}");
        assert_eq!(
            r["response"]["result"],
            json!({"error": "Sequence component does not exist."})
        );
    }
    assert!(!private.to_string().contains(SECRET));
    let ran = ran.lock().unwrap().clone();
    assert!(
        !ran.iter()
            .any(|a| a == "other/secret" || a == "other/vault/get"),
        "the victim's private actions never ran for the attacker: {ran:?}"
    );
}

#[tokio::test]
async fn conductor_steps_do_not_cross() {
    let e = tenants().await;
    let inv = FakeInvoker::start(&e).await;
    let ran = echo_invoker(&e, inv);
    victim(&e).await;
    let mut conductor = node_action("function main(a){return a}");
    conductor["annotations"] = json!([{"key": "conductor", "value": true}]);
    let r = as_guest(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/driver",
        Some(conductor),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut answers = Vec::new();
    for next in [
        "/other/secret",
        "/other/nosuch",
        "/other/vault/get",
        "/other/nopkg/get",
    ] {
        let r = as_guest(
            &e,
            Method::POST,
            "/api/v1/namespaces/_/actions/driver?blocking=true",
            Some(json!({"next": next})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
        let error = r.json()["response"]["result"]["error"]
            .as_str()
            .unwrap()
            .to_string();
        answers.push(error.replace(next.trim_start_matches('/'), "NAME"));
        assert!(!r.json().to_string().contains(SECRET));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(
        answers[0],
        "Failed entitlement check for action with name 'NAME' during composition."
    );
    let ran = ran.lock().unwrap().clone();
    assert!(ran.iter().all(|a| a == "guest/driver"), "{ran:?}");
}
