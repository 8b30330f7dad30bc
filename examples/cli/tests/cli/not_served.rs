//! Commands whose routes the platform does not serve yet answer one clear line and a non-zero
//! exit (148: the router's 404, as `wsk` maps it).
//!
//! To extend when a route lands: delete its rows from [`NOT_SERVED`] and add a test of the
//! working command next to the others (`actions.rs` shows the pattern; `namespaces.rs` checks
//! `faas list`, whose notes go away as the collections appear).

use crate::support::{DEMO_JS, Home, Platform};

/// `(arguments, family named in the message, the request that met no route)`, one row per
/// command: the method and path are the ones `wsk` uses.
const NOT_SERVED: &[(&[&str], &str, &str)] = &[
    // Triggers (with and without a feed).
    (
        &["trigger", "create", "t", "-p", "a", "1"],
        "triggers",
        "PUT /api/v1/namespaces/_/triggers/t",
    ),
    (
        &[
            "trigger",
            "create",
            "t",
            "--feed",
            "/whisk.system/alarms/alarm",
            "-p",
            "cron",
            "* * * * *",
        ],
        "triggers",
        "PUT /api/v1/namespaces/_/triggers/t",
    ),
    (
        &["trigger", "update", "t"],
        "triggers",
        "GET /api/v1/namespaces/_/triggers/t",
    ),
    (
        &["trigger", "get", "t"],
        "triggers",
        "GET /api/v1/namespaces/_/triggers/t",
    ),
    (
        &["trigger", "fire", "t", "-p", "a", "1"],
        "triggers",
        "POST /api/v1/namespaces/_/triggers/t",
    ),
    (
        &["trigger", "list"],
        "triggers",
        "GET /api/v1/namespaces/_/triggers",
    ),
    (
        &["trigger", "delete", "t"],
        "triggers",
        "GET /api/v1/namespaces/_/triggers/t",
    ),
    // Rules.
    (
        &["rule", "create", "r", "t", "myDemo"],
        "rules",
        "PUT /api/v1/namespaces/_/rules/r",
    ),
    (
        &["rule", "update", "r", "t", "myDemo"],
        "rules",
        "PUT /api/v1/namespaces/_/rules/r",
    ),
    (
        &["rule", "enable", "r"],
        "rules",
        "POST /api/v1/namespaces/_/rules/r",
    ),
    (
        &["rule", "disable", "r"],
        "rules",
        "POST /api/v1/namespaces/_/rules/r",
    ),
    (
        &["rule", "status", "r"],
        "rules",
        "GET /api/v1/namespaces/_/rules/r",
    ),
    (
        &["rule", "get", "r"],
        "rules",
        "GET /api/v1/namespaces/_/rules/r",
    ),
    (&["rule", "list"], "rules", "GET /api/v1/namespaces/_/rules"),
    (
        &["rule", "delete", "r"],
        "rules",
        "DELETE /api/v1/namespaces/_/rules/r",
    ),
    (
        &["rule", "delete", "r", "--disable"],
        "rules",
        "POST /api/v1/namespaces/_/rules/r",
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
    let out = home.run(&["trigger", "list", "--json"]).await;
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
