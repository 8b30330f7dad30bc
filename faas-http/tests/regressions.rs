//! Regression tests for defects found by probing the platform (issue 9).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use faas_core::RuntimeManifest;
use faas_http::ControllerConfig;
use http::StatusCode;
use serde_json::json;
use support::{env_with, put};

/// Blackbox actions were accepted although the executor could not run them (every invoke of
/// one was then a 500): they are offered only when the executor runs images.
#[tokio::test]
async fn blackbox_actions_only_where_images_run() {
    let blackbox = json!({"exec": {"kind": "blackbox", "image": "example/action"}});
    let env = env_with(ControllerConfig::default()).await;
    let r = put(
        &env.router,
        "/api/v1/namespaces/_/actions/bb",
        blackbox.clone(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let e = r.error();
    assert!(e.contains("'blackbox' is not supported"), "{e}");
    assert!(
        !e.contains("blackbox,"),
        "blackbox is not listed as valid: {e}"
    );

    let manifest = RuntimeManifest::default_local().with_blackbox(true);
    let env = env_with(ControllerConfig::default().with_manifest(manifest)).await;
    let r = put(&env.router, "/api/v1/namespaces/_/actions/bb", blackbox).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}
