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

    // `list` shows what the platform serves; collections it does not serve yet are named on
    // stderr. (When the platform serves triggers and rules, their tables appear here and the
    // notes go.)
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
        assert!(!out.stderr.contains("packages"), "{args:?}: {out:?}");
        for family in ["triggers", "rules"] {
            assert!(
                out.stderr.contains(&format!(
                    "note: the platform does not serve {family} yet; they are not listed"
                )),
                "{args:?}: {out:?}"
            );
        }
    }
    let out = home.run(&["--json", "list"]).await;
    let all = out.json();
    assert_eq!(all["actions"][0]["name"], "myDemo");

    let out = home.run(&["namespace", "get", "/other"]).await;
    assert_eq!(
        out.fails(1),
        "error: Invalid argument(s): /other. No arguments are required."
    );
    p.stop().await;
}
