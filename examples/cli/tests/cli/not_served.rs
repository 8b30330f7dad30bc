//! Commands whose routes the platform does not serve yet answer one clear line and a non-zero
//! exit (148: the router's 404, as `wsk` maps it).
//!
//! To extend when a route lands: delete its rows from [`NOT_SERVED`] and add a test of the
//! working command next to the others (`actions.rs` shows the pattern; `namespaces.rs` checks
//! `faas list`, whose notes go away as the collections appear).

use crate::support::{DEMO_JS, Home, Platform};

/// The API gateway family, as the CLI names it.
const API_GW: &str = "web actions and the API gateway (whisk.system/apimgmt)";

/// `(arguments, family named in the message, the request that met no route)`, one row per
/// command: the method and path are the ones `wsk` uses.
const NOT_SERVED: &[(&[&str], &str, &str)] = &[
    // The API gateway (web actions of whisk.system/apimgmt).
    (
        &["api", "create", "/hello", "/world", "get", "webDemo"],
        API_GW,
        "POST /api/v1/web/whisk.system/apimgmt/createApi.http",
    ),
    (
        &["api", "list"],
        API_GW,
        "GET /api/v1/web/whisk.system/apimgmt/getApi.http",
    ),
    (
        &["api", "list", "/hello", "/world", "get"],
        API_GW,
        "GET /api/v1/web/whisk.system/apimgmt/getApi.http",
    ),
    (
        &["api", "get", "/hello"],
        API_GW,
        "GET /api/v1/web/whisk.system/apimgmt/getApi.http",
    ),
    (
        &["api", "delete", "/hello"],
        API_GW,
        "DELETE /api/v1/web/whisk.system/apimgmt/deleteApi.http",
    ),
    (
        &["api", "delete", "/hello", "/world", "GET"],
        API_GW,
        "DELETE /api/v1/web/whisk.system/apimgmt/deleteApi.http",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_not_served_yet_say_so() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);
    home.run(&["action", "create", "myDemo", "demo.js"])
        .await
        .ok();
    home.run(&["action", "create", "webDemo", "demo.js", "--web", "true"])
        .await
        .ok();
    for (args, family, request) in NOT_SERVED {
        let out = home.run(args).await;
        let line = out.fails(148);
        assert!(
            line.contains(&format!(
                "the platform does not serve {family} yet ({request} answered 404 The requested resource could not be found.)"
            )),
            "{args:?}: {line}"
        );
        assert_eq!(out.stdout, "", "{args:?}");
    }
    // With --json too.
    let out = home.run(&["api", "list", "--json"]).await;
    assert_eq!(out.code, 148, "{out:?}");
    let err: serde_json::Value = serde_json::from_str(out.stderr.trim()).unwrap();
    assert_eq!(err["status"], 404);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_come_before_the_route() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);
    home.run(&["action", "create", "myDemo", "demo.js"])
        .await
        .ok();
    // An API needs a web action; the CLI checks before calling the gateway.
    let out = home
        .run(&["api", "create", "/hello", "/world", "get", "myDemo"])
        .await;
    assert_eq!(
        out.fails(1),
        "error: Action '/_/myDemo' is not a web action. Issue 'faas action update \"/_/myDemo\" --web true' to convert the action to a web action."
    );
    let out = home
        .run(&["api", "create", "/hello", "world", "get", "myDemo"])
        .await;
    assert_eq!(
        out.fails(1),
        "error: Unable to parse api command arguments: 'world' must begin with '/'."
    );
    let out = home
        .run(&["api", "create", "/hello", "/world", "fetch", "myDemo"])
        .await;
    assert!(
        out.fails(1).contains("'fetch' is not a valid API verb."),
        "{out:?}"
    );
    let out = home.run(&["package", "list", "pkgname"]).await;
    assert_eq!(
        out.fails(1),
        "error: An entity name, 'pkgname', was provided instead of a namespace. Valid namespaces are of the following format: /NAMESPACE."
    );
    let out = home
        .run(&["package", "create", "p", "--shared", "maybe"])
        .await;
    assert_eq!(out.fails(1), "error: Cannot use value 'maybe' for shared.");
    let out = home.run(&["trigger", "create", "t", "-F", "a", "1"]).await;
    assert_eq!(
        out.fails(149),
        "error: Incorrect usage. Trigger without a feed cannot have feed parameters"
    );
    p.stop().await;
}
