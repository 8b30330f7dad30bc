//! `faas namespace ...` and `faas list`.

use crate::support::{DEMO_JS, Home, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_everything_in_one() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    assert_eq!(
        home.run(&["namespace", "list"]).await.ok(),
        "namespaces\nguest\n"
    );
    home.file("demo.js", DEMO_JS);
    home.run(&["action", "create", "myDemo", "demo.js"])
        .await
        .ok();

    // `list` shows every collection, triggers and rules included (no notes on stderr).
    home.run(&["trigger", "create", "t"]).await.ok();
    home.run(&["rule", "create", "r", "t", "myDemo"]).await.ok();
    for args in [
        &["list"][..],
        &["namespace", "get"][..],
        &["namespace", "get", "/_"][..],
    ] {
        let out = home.run(args).await;
        let text = out.ok();
        assert!(
            text.starts_with("Entities in namespace: default\n"),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("packages\nactions\n/guest/myDemo"),
            "{args:?}: {text}"
        );
        assert!(text.contains("\ntriggers\n/guest/t"), "{args:?}: {text}");
        assert!(text.contains("\nrules\n/guest/r"), "{args:?}: {text}");
        assert_eq!(out.stderr, "", "{args:?}: {out:?}");
    }
    let out = home.run(&["--json", "list"]).await;
    let all = out.json();
    assert_eq!(all["actions"][0]["name"], "myDemo");
    assert_eq!(all["triggers"][0]["name"], "t");
    assert_eq!(all["rules"][0]["name"], "r");

    let out = home.run(&["namespace", "get", "/other"]).await;
    assert_eq!(
        out.fails(1),
        "error: Invalid argument(s): /other. No arguments are required."
    );
    p.stop().await;
}
