//! `--json`: only the platform's JSON on stdout; errors as one JSON object on stderr.

use serde_json::Value;

use crate::support::{DEMO_JS, Home, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_for_scripts() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);

    let created = home
        .run(&["--json", "action", "create", "myDemo", "demo.js"])
        .await
        .json();
    assert_eq!(created["name"], "myDemo");
    assert_eq!(created["namespace"], "guest");
    assert!(
        created["exec"]["kind"]
            .as_str()
            .unwrap()
            .starts_with("nodejs:")
    );

    let list = home.run(&["action", "list", "--json"]).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "myDemo");

    let accepted = home
        .run(&["action", "invoke", "myDemo", "--json"])
        .await
        .json();
    assert_eq!(accepted["activationId"].as_str().unwrap().len(), 32);

    let result = home
        .run(&[
            "action", "invoke", "myDemo", "-r", "-p", "name", "json", "--json",
        ])
        .await
        .json();
    assert_eq!(result, serde_json::json!({"payload": "Hello, json!"}));

    let activation = home
        .run(&["action", "invoke", "myDemo", "-b", "--json"])
        .await
        .json();
    let id = activation["activationId"].as_str().unwrap().to_string();
    let logs = home
        .run(&["activation", "logs", &id, "--json"])
        .await
        .json();
    assert!(
        logs["logs"][0]
            .as_str()
            .unwrap()
            .ends_with("stdout: hello World")
    );
    let res = home
        .run(&["activation", "result", &id, "--json"])
        .await
        .json();
    assert_eq!(res["success"], true);
    let acts = home.run(&["activation", "list", "--json"]).await.json();
    assert!(acts.as_array().unwrap().len() >= 2);
    let ns = home.run(&["namespace", "list", "--json"]).await.json();
    assert_eq!(ns, serde_json::json!(["guest"]));
    let props = home
        .run(&["property", "get", "--apihost", "--auth", "--json"])
        .await
        .json();
    assert_eq!(props["apihost"], p.apihost());
    let deleted = home
        .run(&["action", "delete", "myDemo", "--json"])
        .await
        .json();
    assert_eq!(deleted["name"], "myDemo");

    // Errors: one JSON object on stderr, nothing on stdout, wsk's exit code.
    let out = home.run(&["action", "get", "myDemo", "--json"]).await;
    assert_eq!(out.code, 148, "{out:?}");
    assert_eq!(out.stdout, "");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let err: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(err["status"], 404);
    assert_eq!(err["exitCode"], 148);
    assert!(err["code"].as_str().is_some_and(|c| !c.is_empty()), "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("Unable to get action 'myDemo': The requested resource does not exist."),
        "{err}"
    );
    p.stop().await;
}
