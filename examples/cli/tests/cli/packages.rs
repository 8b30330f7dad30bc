//! `faas package ...` against the platform: create, update, bind (to the `whisk.system`
//! catalog), get, list, delete, and invoking an action through a binding.

use crate::support::{Home, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_commands() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    let ok = |args: &'static [&'static str]| {
        let home = &home;
        async move { home.run(args).await.ok().to_string() }
    };
    assert_eq!(
        ok(&["package", "create", "pkg", "-p", "greeting", "\"hello\""]).await,
        "ok: created package pkg\n"
    );
    assert_eq!(
        ok(&["package", "update", "pkg", "--shared", "yes"]).await,
        "ok: updated package pkg\n"
    );
    let got = home.run(&["--json", "package", "get", "pkg"]).await.json();
    assert_eq!(got["publish"], true);
    assert_eq!(got["version"], "0.0.2");
    assert_eq!(got["parameters"][0]["value"], "hello");
    assert_eq!(got["actions"], serde_json::json!([]));
    let text = ok(&["package", "get", "pkg"]).await;
    assert!(text.starts_with("ok: got package pkg\n{"), "{text}");
    assert_eq!(
        ok(&["package", "get", "pkg", "--summary"]).await,
        "package /guest/pkg: Returns a result based on parameter greeting\n   (parameters: *greeting)\n"
    );

    // A binding to the catalog: its actions are listed and run with the binding's parameters.
    assert_eq!(
        ok(&[
            "package",
            "bind",
            "/whisk.system/utils",
            "myUtils",
            "-p",
            "from",
            "\"binding\""
        ])
        .await,
        "ok: created binding myUtils\n"
    );
    let summary = ok(&["package", "get", "myUtils", "--summary"]).await;
    assert!(
        summary.starts_with("package /guest/myUtils: Returns a result based on parameter from\n"),
        "{summary}"
    );
    assert!(
        summary
            .contains(" action /guest/myUtils/echo: Returns the input\n   (parameters: payload)\n"),
        "{summary}"
    );
    let out = home
        .run(&[
            "action",
            "invoke",
            "myUtils/echo",
            "--result",
            "-p",
            "x",
            "1",
        ])
        .await;
    assert_eq!(out.json(), serde_json::json!({"from": "binding", "x": 1}));

    // Lists: own packages and bindings; another namespace's published packages.
    let list = ok(&["package", "list"]).await;
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines[0], "packages");
    assert!(
        lines[1].starts_with("/guest/myUtils") && lines[1].ends_with("private"),
        "{list}"
    );
    assert!(
        lines[2].starts_with("/guest/pkg") && lines[2].ends_with("shared"),
        "{list}"
    );
    let catalog = ok(&["package", "list", "/whisk.system"]).await;
    assert!(catalog.contains("/whisk.system/utils"), "{catalog}");
    assert!(catalog.contains("/whisk.system/samples"), "{catalog}");

    // Errors carry the server's words and wsk's exit codes.
    let out = home
        .run(&["package", "bind", "/whisk.system/nothing", "b"])
        .await;
    let err = out.fails(147);
    assert!(
        err.starts_with("error: Binding creation failed: The supplied authentication is not authorized to access 'whisk.system/nothing'."),
        "{err}"
    );
    assert_eq!(
        ok(&["package", "delete", "myUtils"]).await,
        "ok: deleted package myUtils\n"
    );
    let out = home.run(&["package", "get", "myUtils"]).await;
    assert!(
        out.fails(148).starts_with(
            "error: Unable to get package 'myUtils': The requested resource does not exist."
        ),
        "{out:?}"
    );
    assert_eq!(
        ok(&["package", "delete", "pkg"]).await,
        "ok: deleted package pkg\n"
    );
    p.stop().await;
}
