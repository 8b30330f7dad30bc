//! `faas action ...` against the platform.

use serde_json::{Value, json};

use crate::support::{DEMO_JS, Home, Platform, id_in, zip};

/// The README's quickstart, step by step: create `myDemo` from `demo.js`, invoke it, read its
/// activation and logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_walkthrough() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);

    assert_eq!(
        home.run(&["action", "create", "myDemo", "demo.js"])
            .await
            .ok(),
        "ok: created action myDemo\n"
    );

    let out = home.run(&["action", "invoke", "myDemo"]).await;
    assert!(
        out.ok().starts_with("ok: invoked /_/myDemo with id "),
        "{out:?}"
    );
    let async_id = id_in(&out.stdout);

    let out = home
        .run(&[
            "action", "invoke", "myDemo", "--result", "--param", "name", "faas",
        ])
        .await;
    assert_eq!(out.ok(), "{\n    \"payload\": \"Hello, faas!\"\n}\n");
    assert_eq!(out.stderr, "", "no spinner or noise off a terminal");

    let out = home
        .run(&["action", "invoke", "myDemo", "--blocking"])
        .await;
    let text = out.ok();
    let (header, body) = text.split_once('\n').unwrap();
    assert!(
        header.starts_with("ok: invoked /_/myDemo with id "),
        "{header}"
    );
    let id = id_in(header);
    let activation: Value = serde_json::from_str(body).unwrap();
    assert_eq!(activation["activationId"], json!(id));
    assert_eq!(
        activation["response"]["result"],
        json!({"payload": "Hello, World!"})
    );
    assert_eq!(activation["response"]["status"], json!("success"));

    let out = home.run(&["activation", "get", &id]).await;
    let text = out.ok();
    assert!(
        text.starts_with(&format!("ok: got activation {id}\n")),
        "{text}"
    );
    let record: Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
    assert_eq!(record["name"], "myDemo");
    assert_eq!(record["namespace"], "guest");

    let out = home.run(&["activation", "logs", &id]).await;
    let logs = out.ok();
    assert!(logs.ends_with("stdout: hello World\n"), "{logs:?}");
    assert_eq!(logs.lines().count(), 1, "{logs:?}");
    let out = home.run(&["activation", "logs", &id, "--strip"]).await;
    assert_eq!(out.ok(), "hello World\n");

    let out = home.run(&["activation", "result", &id]).await;
    assert_eq!(out.ok(), "{\n    \"payload\": \"Hello, World!\"\n}\n");

    // The non-blocking activation finishes too.
    let mut result = None;
    for _ in 0..100 {
        let out = home.run(&["activation", "result", &async_id]).await;
        if out.code == 0 {
            result = Some(out.stdout);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        result.as_deref(),
        Some("{\n    \"payload\": \"Hello, World!\"\n}\n")
    );

    let out = home.run(&["activation", "list"]).await;
    let table = out.ok();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("Datetime            Activation ID                    Kind"),
        "{table}"
    );
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.ends_with(" guest/myDemo:0.0.1")),
        "{table}"
    );
    assert!(
        lines[1..].iter().all(|l| l.contains(" success ")),
        "{table}"
    );
    assert!(table.contains(&id), "{table}");

    let out = home.run(&["action", "list"]).await;
    let list = out.ok();
    assert!(list.starts_with("actions\n/guest/myDemo"), "{list}");
    let row = list.lines().nth(1).unwrap();
    assert_eq!(row.find(" private "), Some(70), "{row}");
    assert!(
        row.ends_with(" private nodejs:20") || row.contains(" private nodejs:"),
        "{row}"
    );

    assert_eq!(
        home.run(&["action", "delete", "myDemo"]).await.ok(),
        "ok: deleted action myDemo\n"
    );
    let out = home.run(&["action", "get", "myDemo"]).await;
    let line = out.fails(148);
    assert!(
        line.starts_with(
            "error: Unable to get action 'myDemo': The requested resource does not exist. (code "
        ),
        "{line}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_flags_then_get_update_and_save() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file(
        "source.py",
        "def main(args):\n    return {'greeting': 'hi ' + args.get('who', 'nobody')}\n",
    );
    home.file("params.json", r#"{"who": "file", "n": 2}"#);
    home.file("annotations.json", r#"{"description": "says hi"}"#);

    let out = home
        .run(&[
            "action",
            "create",
            "hello",
            "source.py",
            "--param-file",
            "params.json",
            "-p",
            "who",
            "flag",
            "-a",
            "owner",
            "me",
            "--annotation-file",
            "annotations.json",
            "--timeout",
            "5000",
            "--memory",
            "128",
            "--logsize",
            "5",
            "--concurrency",
            "1",
        ])
        .await;
    assert_eq!(out.ok(), "ok: created action hello\n");

    let out = home.run(&["action", "get", "hello"]).await;
    let text = out.ok();
    assert!(text.starts_with("ok: got action hello\n"), "{text}");
    let action: Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
    // Fields in wsk's order: namespace, name, version, exec, annotations, parameters, limits.
    let at = |k: &str| {
        text.find(&format!("\n    \"{k}\":"))
            .unwrap_or_else(|| panic!("{k}: {text}"))
    };
    assert!(
        at("namespace") < at("name") && at("name") < at("version"),
        "{text}"
    );
    assert!(
        at("version") < at("exec") && at("exec") < at("annotations"),
        "{text}"
    );
    assert!(
        at("annotations") < at("parameters") && at("parameters") < at("limits"),
        "{text}"
    );
    assert!(
        action["exec"]["kind"]
            .as_str()
            .unwrap()
            .starts_with("python:"),
        "{action}"
    );
    assert!(
        action["exec"].get("code").is_none(),
        "get does not fetch the code"
    );
    assert_eq!(action["limits"]["timeout"], 5000);
    assert_eq!(action["limits"]["memory"], 128);
    assert_eq!(action["limits"]["logs"], 5);
    assert_eq!(action["limits"]["concurrency"], 1);
    let params = &action["parameters"];
    assert!(
        params
            .as_array()
            .unwrap()
            .contains(&json!({"key": "who", "value": "flag"})),
        "{params}"
    );
    assert!(
        params
            .as_array()
            .unwrap()
            .contains(&json!({"key": "n", "value": 2})),
        "{params}"
    );
    let ann = action["annotations"].as_array().unwrap();
    assert!(
        ann.contains(&json!({"key": "owner", "value": "me"})),
        "{ann:?}"
    );
    assert!(
        ann.contains(&json!({"key": "description", "value": "says hi"})),
        "{ann:?}"
    );

    // A field filter.
    let out = home.run(&["action", "get", "hello", "limits"]).await;
    let text = out.ok();
    assert!(
        text.starts_with("ok: got action hello, displaying field limits\n"),
        "{text}"
    );
    let limits: Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
    assert_eq!(limits["memory"], 128);

    // The summary.
    let out = home.run(&["action", "get", "hello", "--summary"]).await;
    assert_eq!(
        out.ok(),
        "action /guest/hello: says hi\n   (parameters: *n, *who)\n"
    );

    // The invoke sees the bound parameters.
    let out = home.run(&["action", "invoke", "hello", "-r"]).await;
    assert_eq!(out.ok(), "{\n    \"greeting\": \"hi flag\"\n}\n");

    // Update: new parameters replace, limits merge, annotations go with --del-annotation.
    let out = home
        .run(&[
            "action",
            "update",
            "hello",
            "-p",
            "who",
            "update",
            "-m",
            "256",
            "--del-annotation",
            "owner",
        ])
        .await;
    assert_eq!(out.ok(), "ok: updated action hello\n");
    let out = home.run(&["--json", "action", "get", "hello"]).await;
    let action = out.json();
    assert_eq!(action["limits"]["memory"], 256);
    assert_eq!(action["limits"]["timeout"], 5000);
    assert_eq!(
        action["parameters"],
        json!([{"key": "who", "value": "update"}])
    );
    let ann = action["annotations"].as_array().unwrap();
    assert!(!ann.iter().any(|a| a["key"] == "owner"), "{ann:?}");
    assert_eq!(action["version"], "0.0.2");

    // --save writes the code next to us; a second save refuses to overwrite.
    let out = home.run(&["action", "get", "hello", "--save"]).await;
    let saved = home.work().canonicalize().unwrap().join("hello.py");
    assert_eq!(
        out.ok(),
        format!("ok: saved action code to {}\n", saved.display())
    );
    assert_eq!(
        std::fs::read_to_string(&saved).unwrap(),
        "def main(args):\n    return {'greeting': 'hi ' + args.get('who', 'nobody')}\n"
    );
    let out = home.run(&["action", "get", "hello", "--save"]).await;
    assert_eq!(
        out.fails(2),
        format!("error: The file '{}' already exists", "hello.py")
    );
    let out = home
        .run(&["action", "get", "hello", "--save-as", "copy.py"])
        .await;
    out.ok();
    assert!(home.work().join("copy.py").exists());

    // --url names the REST URL of a plain action.
    let out = home.run(&["action", "get", "hello", "--url"]).await;
    assert_eq!(
        out.ok(),
        format!(
            "ok: got action hello\n{}/api/v1/namespaces/guest/actions/hello\n",
            p.apihost()
        )
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_main_sequence_web_and_docker_actions() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);

    // A zip needs --kind; with it, the archive is uploaded base64 and runs.
    let archive = zip(&[(
        "index.js",
        "exports.main = (p) => ({ zipped: true, n: p.n });\n",
    )]);
    home.file("action.zip", &archive);
    let out = home
        .run(&["action", "create", "zipped", "action.zip"])
        .await;
    assert_eq!(
        out.fails(2),
        "error: Invalid argument(s). creating an action from a .zip artifact requires specifying the action kind explicitly"
    );
    let out = home
        .run(&[
            "action",
            "create",
            "zipped",
            "action.zip",
            "--kind",
            "nodejs:default",
        ])
        .await;
    assert_eq!(out.ok(), "ok: created action zipped\n");
    let out = home
        .run(&["action", "invoke", "zipped", "-r", "-p", "n", "7"])
        .await;
    assert_eq!(out.ok(), "{\n    \"n\": 7,\n    \"zipped\": true\n}\n");
    let out = home.run(&["action", "get", "zipped", "--save"]).await;
    out.ok();
    assert_eq!(
        std::fs::read(home.work().join("zipped.zip")).unwrap(),
        archive
    );

    // --main names another entry point.
    home.file("two.js", "function other(p) { return { from: 'other' } }\nfunction main() { return { from: 'main' } }\n");
    home.run(&["action", "create", "other", "two.js", "--main", "other"])
        .await
        .ok();
    let out = home.run(&["action", "invoke", "other", "-r"]).await;
    assert_eq!(out.ok(), "{\n    \"from\": \"other\"\n}\n");

    // A sequence of two actions.
    home.file(
        "inc.js",
        "function main(p) { return { n: (p.n || 0) + 1 } }\n",
    );
    home.run(&["action", "create", "inc", "inc.js"]).await.ok();
    let out = home
        .run(&["action", "create", "twice", "--sequence", "inc,/_/inc"])
        .await;
    assert_eq!(out.ok(), "ok: created action twice\n");
    let out = home
        .run(&["action", "invoke", "twice", "-r", "-p", "n", "1"])
        .await;
    assert_eq!(out.ok(), "{\n    \"n\": 3\n}\n");
    let out = home.run(&["--json", "action", "get", "twice"]).await;
    let seq = out.json();
    assert_eq!(seq["exec"]["kind"], "sequence");
    assert_eq!(
        seq["exec"]["components"],
        json!(["/guest/inc", "/guest/inc"])
    );
    let out = home.run(&["action", "get", "twice", "--save"]).await;
    assert_eq!(out.fails(2), "error: Cannot save action sequences");

    // --web raw and --web-secure true set the web annotations and a numeric secret.
    let out = home
        .run(&[
            "action",
            "update",
            "inc",
            "--web",
            "raw",
            "--web-secure",
            "true",
        ])
        .await;
    assert_eq!(out.ok(), "ok: updated action inc\n");
    let out = home
        .run(&["--json", "action", "get", "inc", "annotations"])
        .await;
    let ann = out.json();
    let get = |k: &str| {
        ann.as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == k)
            .map(|a| a["value"].clone())
    };
    assert_eq!(get("web-export"), Some(json!(true)));
    assert_eq!(get("raw-http"), Some(json!(true)));
    assert_eq!(get("final"), Some(json!(true)));
    assert!(get("require-whisk-auth").unwrap().is_u64(), "{ann}");
    let out = home.run(&["action", "get", "inc", "--url"]).await;
    assert_eq!(
        out.ok(),
        format!(
            "ok: got action inc\n{}/api/v1/web/guest/default/inc\n",
            p.apihost()
        )
    );
    // --web false and --web-secure together: refused.
    let out = home
        .run(&[
            "action",
            "update",
            "inc",
            "--web",
            "false",
            "--web-secure",
            "s",
        ])
        .await;
    assert_eq!(
        out.fails(2),
        "error: Invalid argument(s). The --web-secure option is only valid when the --web option is enabled."
    );
    let out = home
        .run(&["action", "update", "inc", "--web", "sometimes"])
        .await;
    assert_eq!(
        out.fails(2),
        "error: Invalid argument(s). Invalid argument 'sometimes' for --web flag. Valid input consist of 'yes', 'true', 'raw', 'false', or 'no'."
    );

    // --docker asks for a blackbox action of the image; a platform whose executor runs no
    // images (local processes) refuses the kind, and the CLI reports the server's words.
    let out = home
        .run(&["action", "create", "boxed", "--docker", "example/image:1"])
        .await;
    let err = out.fails(144);
    assert!(
        err.starts_with("error: Unable to create action 'boxed': The specified runtime 'blackbox' is not supported by this platform."),
        "{err}"
    );
    let out = home
        .run(&[
            "action",
            "create",
            "both",
            "--docker",
            "x",
            "--kind",
            "nodejs:default",
        ])
        .await;
    assert_eq!(
        out.fails(149),
        "error: Invalid argument(s). Cannot specify both --kind and --docker at the same time."
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_actions_report_like_wsk() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file(
        "fail.js",
        "function main() { return { error: 'it broke' } }\n",
    );
    home.run(&["action", "create", "fail", "fail.js"])
        .await
        .ok();

    // A blocking invoke of a failing action: the activation on stderr, exit 246 (502 - 256).
    let out = home.run(&["action", "invoke", "fail", "--blocking"]).await;
    assert_eq!(out.code, 246, "{out:?}");
    assert_eq!(out.stdout, "");
    let (header, body) = out.stderr.split_once('\n').unwrap();
    assert!(
        header.starts_with("ok: invoked /_/fail with id "),
        "{header}"
    );
    let activation: Value = serde_json::from_str(body).unwrap();
    assert_eq!(activation["response"]["status"], "application error");
    assert_eq!(
        activation["response"]["result"],
        json!({"error": "it broke"})
    );

    // With --result only the result, still on stderr.
    let out = home.run(&["action", "invoke", "fail", "--result"]).await;
    assert_eq!(out.code, 246, "{out:?}");
    assert_eq!(out.stderr, "{\n    \"error\": \"it broke\"\n}\n");

    // A wait of more than a second: the answer, and no spinner off a terminal.
    home.file("slow.js", SLOW_JS);
    home.run(&["action", "create", "slow", "slow.js"])
        .await
        .ok();
    let out = home.run(&["action", "invoke", "slow", "-r"]).await;
    assert_eq!(out.ok(), "{\n    \"done\": true\n}\n");
    assert_eq!(out.stderr, "", "the spinner draws only on a terminal");
    p.stop().await;
}

/// An action that takes two seconds.
const SLOW_JS: &str =
    "function main() { return new Promise(r => setTimeout(() => r({ done: true }), 2000)) }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_invoke_that_outlasts_the_wait() {
    // The platform stops waiting after half a second and answers 202 with the id.
    let p = Platform::start_with(|c| c.limits.max_blocking_wait_ms = 500).await;
    let home = Home::for_platform(&p);
    home.file("slow.js", SLOW_JS);
    home.run(&["action", "create", "slow", "slow.js"])
        .await
        .ok();
    let out = home.run(&["action", "invoke", "slow", "--blocking"]).await;
    assert_eq!(out.code, 202, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("ok: invoked /_/slow, but the request has not yet finished, with id "),
        "{out:?}"
    );
    let id = id_in(&out.stderr);
    // The activation finishes later and can be read by its id.
    let mut done = None;
    for _ in 0..100 {
        let r = home.run(&["activation", "result", &id]).await;
        if r.code == 0 {
            done = Some(r.stdout);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(done.as_deref(), Some("{\n    \"done\": true\n}\n"));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_list_a_namespace() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", crate::support::DEMO_JS);
    home.run(&[
        "action", "create", "b-first", "demo.js", "-p", "name", "copied",
    ])
    .await
    .ok();
    let out = home
        .run(&["action", "create", "a-copy", "b-first", "--copy"])
        .await;
    assert_eq!(out.ok(), "ok: created action a-copy\n");
    let out = home.run(&["action", "invoke", "a-copy", "-r"]).await;
    assert_eq!(out.ok(), "{\n    \"payload\": \"Hello, copied!\"\n}\n");

    // Newest first by default; --name-sort sorts by name.
    let names = |s: &str| -> Vec<String> {
        s.lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let out = home.run(&["action", "list", "/guest"]).await;
    assert_eq!(names(out.ok()), ["/guest/a-copy", "/guest/b-first"]);
    let out = home
        .run(&[
            "action",
            "list",
            "--name-sort",
            "--limit",
            "1",
            "--skip",
            "1",
        ])
        .await;
    assert_eq!(names(out.ok()), ["/guest/b-first"]);
    p.stop().await;
}
