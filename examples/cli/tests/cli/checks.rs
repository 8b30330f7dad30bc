//! Checks the CLI makes before it calls the platform: bad arguments and wrong entity kinds
//! answer one clear line and `wsk`'s exit code, with no request sent.
//!
//! (Every command family now has a route on the reference platform; the "does not serve …
//! yet" answer the CLI gives a platform without one is no longer exercised here.)

use crate::support::{DEMO_JS, Home, Platform};

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
