//! `faas activation ...` against the platform.

use std::time::Duration;

use serde_json::Value;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{DEMO_JS, Home, Platform, id_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_last() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);
    home.file(
        "other.js",
        "function main() { console.log('other'); return {} }\n",
    );
    home.run(&["action", "create", "myDemo", "demo.js"])
        .await
        .ok();
    home.run(&["action", "create", "other", "other.js"])
        .await
        .ok();

    let out = home.run(&["activation", "get", "--last"]).await;
    assert_eq!(
        out.fails(1),
        "error: Unable to get activation: Activation list does not contain any activations."
    );
    // An empty list prints the table header only.
    let out = home.run(&["activation", "list"]).await;
    assert_eq!(out.ok().lines().count(), 1, "{out:?}");

    let first = id_in(home.run(&["action", "invoke", "myDemo", "-b"]).await.ok());
    let second = id_in(home.run(&["action", "invoke", "other", "-b"]).await.ok());

    // --last is the newest.
    let out = home.run(&["activation", "logs", "--last", "--strip"]).await;
    assert_eq!(out.ok(), "other\n");
    let out = home.run(&["activation", "get", "--last", "name"]).await;
    assert_eq!(
        out.ok(),
        format!("ok: got activation {second}, displaying field name\n\"other\"\n")
    );
    let out = home.run(&["activation", "result", "--last"]).await;
    assert_eq!(out.ok(), "{}\n");
    let out = home.run(&["activation", "get", &first, "--logs"]).await;
    assert_eq!(out.ok(), "hello World\n");
    let out = home.run(&["activation", "get", &first, "--summary"]).await;
    let text = out.ok();
    assert!(
        text.starts_with("activation result for '/guest/myDemo' (success at "),
        "{text}"
    );
    assert!(
        text.ends_with("{\n    \"payload\": \"Hello, World!\"\n}\n"),
        "{text}"
    );

    // Filters: by name, skip/limit, since/upto.
    let ids = |text: &str| -> Vec<String> {
        text.lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
            .collect()
    };
    let out = home.run(&["activation", "list", "myDemo"]).await;
    assert_eq!(ids(out.ok()), [first.as_str()]);
    let out = home.run(&["activation", "list", "--limit", "1"]).await;
    assert_eq!(ids(out.ok()), [second.as_str()]);
    let out = home
        .run(&["activation", "list", "--skip", "1", "--limit", "1"])
        .await;
    assert_eq!(ids(out.ok()), [first.as_str()]);
    let out = home.run(&["--json", "activation", "list"]).await;
    let all = out.json();
    let starts: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["start"].as_i64().unwrap())
        .collect();
    let newest = starts[0];
    let out = home
        .run(&["activation", "list", "--since", &(newest + 1).to_string()])
        .await;
    assert!(ids(out.ok()).is_empty(), "{out:?}");
    let out = home
        .run(&["activation", "list", "--upto", &(starts[1] - 1).to_string()])
        .await;
    assert!(ids(out.ok()).is_empty(), "{out:?}");
    let out = home
        .run(&[
            "activation",
            "list",
            "--since",
            &starts[1].to_string(),
            "--upto",
            &newest.to_string(),
        ])
        .await;
    assert_eq!(ids(out.ok()).len(), 2);

    // --full prints whole records.
    let out = home
        .run(&["activation", "list", "--full", "--limit", "1"])
        .await;
    let text = out.ok();
    assert!(text.starts_with("activations\n"), "{text}");
    let record: Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
    assert_eq!(record["activationId"], second);
    assert!(record["logs"].is_array(), "{record}");

    // A bad id is the server's error.
    let out = home.run(&["activation", "get", "nope"]).await;
    let line = out.fails(144);
    assert!(
        line.starts_with("error: Unable to get activation 'nope': "),
        "{line}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_streams_new_activations_until_its_time_is_up() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);
    home.run(&["action", "create", "myDemo", "demo.js"])
        .await
        .ok();
    // An activation from before the poll is not shown.
    let old = id_in(home.run(&["action", "invoke", "myDemo", "-b"]).await.ok());

    let mut poll = home.spawn(&["activation", "poll", "--exit", "6"]);
    // Invoke once the poll has taken its starting point (it says so).
    let mut lines = BufReader::new(poll.stdout.take().unwrap()).lines();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            text.push_str(&line);
            text.push('\n');
            if line == "Polling for activation logs" {
                break;
            }
        }
    })
    .await
    .expect("the poll started");
    let out = home
        .run(&["action", "invoke", "myDemo", "-b", "-p", "name", "poll"])
        .await;
    let new = id_in(out.ok());
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            text.push_str(&line);
            text.push('\n');
        }
    })
    .await
    .expect("the poll stopped after its --exit time");
    let status = tokio::time::timeout(Duration::from_secs(10), poll.wait())
        .await
        .expect("the poll exited")
        .unwrap();
    assert!(status.success(), "{status:?}: {text}");
    assert!(
        text.starts_with("Enter Ctrl-c to exit.\nPolling for activation logs\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("\nActivation: 'myDemo' ({new})\n[\n    \"")),
        "{text}"
    );
    assert!(text.contains("stdout: hello poll\"\n]\n"), "{text}");
    assert!(!text.contains(&old), "{text}");
    assert_eq!(text.matches("Activation: ").count(), 1, "{text}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_with_json_prints_one_line_per_activation() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);
    home.run(&["action", "create", "myDemo", "demo.js"])
        .await
        .ok();
    let id = id_in(home.run(&["action", "invoke", "myDemo", "-b"]).await.ok());
    // --since-minutes looks back, so the existing activation is shown.
    let out = home
        .run(&[
            "activation",
            "poll",
            "myDemo",
            "--since-minutes",
            "5",
            "--exit",
            "1",
            "--json",
        ])
        .await;
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["activationId"], id);
    assert_eq!(v["name"], "myDemo");
    assert!(
        v["logs"][0]
            .as_str()
            .unwrap()
            .ends_with("stdout: hello World"),
        "{v}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_fails_fast_on_bad_credentials() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    let out = home
        .run(&[
            "activation",
            "poll",
            "--exit",
            "5",
            "--auth",
            "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong",
        ])
        .await;
    let line = out.fails(145);
    assert!(
        line.starts_with(
            "error: Unable to poll for activations: The supplied authentication is invalid (code "
        ),
        "{line}"
    );
    p.stop().await;
}
