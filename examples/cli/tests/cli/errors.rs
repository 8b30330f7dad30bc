//! Bad input gets one clear line on stderr and `wsk`'s exit code.

use crate::support::{DEMO_JS, Home, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_kinds_and_parameters() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);

    let out = home.run(&["action", "create", "x", "missing.js"]).await;
    assert_eq!(
        out.fails(2),
        "error: Invalid argument(s). File 'missing.js' is not a valid file or it does not exist"
    );
    let out = home.run(&["action", "create", "x"]).await;
    assert_eq!(
        out.fails(2),
        "error: Invalid argument(s). An action name and code artifact are required."
    );
    home.file("notes.txt", "hello");
    let out = home.run(&["action", "create", "x", "notes.txt"]).await;
    assert_eq!(
        out.fails(2),
        "error: Invalid argument(s). '.txt' is not a supported action runtime"
    );

    // A kind the platform does not offer: its 400 and message.
    let out = home
        .run(&["action", "create", "x", "demo.js", "--kind", "cobol:9"])
        .await;
    let line = out.fails(144);
    assert!(
        line.starts_with(
            "error: Unable to create action 'x': The specified runtime 'cobol:9' is not supported"
        ),
        "{line}"
    );
    assert!(line.contains("(code "), "{line}");

    // A key without a value.
    let out = home.run(&["action", "invoke", "x", "-p", "name"]).await;
    assert_eq!(
        out.fails(1),
        "error: Failed to parse arguments: The parameter arguments are invalid: Arguments for '--param' must be a key/value pair"
    );
    let out = home
        .run(&["action", "create", "x", "demo.js", "-a", "only"])
        .await;
    assert_eq!(
        out.fails(1),
        "error: Failed to parse arguments: The annotation arguments are invalid: Arguments for '--annotation' must be a key/value pair"
    );
    // A parameter file that is not a JSON object.
    home.file("bad.json", "{\"a\": ");
    let out = home.run(&["action", "invoke", "x", "-P", "bad.json"]).await;
    let line = out.fails(1);
    assert!(
        line.starts_with("error: Invalid parameter argument 'bad.json': "),
        "{line}"
    );
    let out = home
        .run(&["action", "invoke", "x", "-P", "nothere.json"])
        .await;
    assert_eq!(
        out.fails(2),
        "error: File 'nothere.json' is not a valid file or it does not exist"
    );

    // Names OpenWhisk does not accept.
    let out = home.run(&["action", "get", "/a/b/c/d"]).await;
    assert_eq!(
        out.fails(1),
        "error: '/a/b/c/d' is not a valid qualified name: A valid qualified name must be specified."
    );
    let out = home.run(&["action", "get", "bad$name"]).await;
    assert_eq!(
        out.fails(1),
        "error: 'bad$name' is not a valid qualified name: The name of the entity contains illegal characters."
    );
    let out = home.run(&["action", "get", "hello", "bogus"]).await;
    assert_eq!(out.fails(2), "error: Invalid field filter 'bogus'.");

    // A conflict: creating an action that exists.
    home.run(&["action", "create", "x", "demo.js"]).await.ok();
    let out = home.run(&["action", "create", "x", "demo.js"]).await;
    let line = out.fails(153);
    assert!(
        line.starts_with("error: Unable to create action 'x': resource already exists (code "),
        "{line}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_unreachable_host() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    let out = home
        .run(&[
            "action",
            "list",
            "--auth",
            "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong",
        ])
        .await;
    let line = out.fails(145);
    assert!(
        line.starts_with("error: Unable to obtain the list of actions for namespace 'default': The supplied authentication is invalid (code "),
        "{line}"
    );
    let out = home
        .run(&["action", "invoke", "x", "--auth", "not-even-a-key"])
        .await;
    assert_eq!(out.code, 145, "{out:?}");

    // Nothing listens on port 1 of the loopback.
    let out = home
        .run(&["action", "list", "--apihost", "http://127.0.0.1:1"])
        .await;
    let line = out.fails(3);
    assert!(
        line.starts_with("error: Unable to obtain the list of actions for namespace 'default': GET http://127.0.0.1:1/api/v1/namespaces/_/actions: cannot connect: "),
        "{line}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_commands_and_flags_are_usage_errors() {
    let home = Home::empty();
    let out = home.run(&["action", "frobnicate"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    let out = home.run(&["action", "list", "--no-such-flag"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    let out = home.run(&["--help"]).await;
    assert!(out.ok().contains("work with actions"), "{out:?}");
}
