//! `faas trigger ...` and `faas rule ...` against the platform: the lifecycle of both, fires
//! that run the rules' actions, and feeds (`--feed`): the feed action's `CREATE`, `READ`,
//! `DELETE`, and the trigger taken back out when the feed refuses.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{DEMO_JS, Home, Platform, id_in};

/// The record of activation `id` once stored (bounded wait).
async fn activation(home: &Home, id: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let out = home.run(&["activation", "get", id, "--json"]).await;
            if out.code == 0 {
                return out.json();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("activation {id} was not stored in time"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_and_rules_run_actions() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);
    home.run(&["action", "create", "myDemo", "demo.js"])
        .await
        .ok();

    assert_eq!(
        home.run(&["trigger", "create", "t", "-p", "name", "trigger"])
            .await
            .ok(),
        "ok: created trigger t\n"
    );
    let got = home.run(&["trigger", "get", "t", "--json"]).await.json();
    assert_eq!(
        got["parameters"],
        json!([{"key": "name", "value": "trigger"}])
    );
    assert!(
        home.run(&["trigger", "list"])
            .await
            .ok()
            .starts_with("triggers\n/guest/t ")
    );
    // No rule yet: fired, but nothing runs.
    assert_eq!(
        home.run(&["trigger", "fire", "t"]).await.ok(),
        "ok: triggered /_/t (no active rule; no activation)\n"
    );

    assert_eq!(
        home.run(&["rule", "create", "r", "t", "myDemo"]).await.ok(),
        "ok: created rule r\n"
    );
    assert_eq!(
        home.run(&["rule", "status", "r"]).await.ok(),
        "ok: rule r is active\n"
    );
    let rules = home.run(&["rule", "list"]).await;
    assert!(rules.ok().starts_with("rules\n/guest/r "), "{rules:?}");
    assert!(rules.stdout.contains("active"), "{rules:?}");

    // A fire runs the action with the trigger's parameters under the payload.
    let out = home
        .run(&["trigger", "fire", "t", "-p", "name", "fire"])
        .await;
    assert!(
        out.ok().starts_with("ok: triggered /_/t with id "),
        "{out:?}"
    );
    let fire = activation(&home, &id_in(&out.stdout)).await;
    assert_eq!(fire["name"], "t");
    assert_eq!(fire["response"]["result"], json!({"name": "fire"}));
    let logs = fire["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{fire}");
    let line: Value = serde_json::from_str(logs[0].as_str().unwrap()).unwrap();
    assert_eq!(line["rule"], "guest/r");
    assert_eq!(line["action"], "guest/myDemo");
    assert_eq!(line["success"], true);
    let ran = activation(&home, line["activationId"].as_str().unwrap()).await;
    assert_eq!(
        ran["response"]["result"],
        json!({"payload": "Hello, fire!"})
    );

    // Disabled, the rule runs nothing; enabled again, it does.
    assert_eq!(
        home.run(&["rule", "disable", "r"]).await.ok(),
        "ok: disabled rule r\n"
    );
    assert_eq!(
        home.run(&["rule", "status", "r"]).await.ok(),
        "ok: rule r is inactive\n"
    );
    assert_eq!(
        home.run(&["trigger", "fire", "t"]).await.ok(),
        "ok: triggered /_/t (no active rule; no activation)\n"
    );
    assert_eq!(
        home.run(&["rule", "enable", "r"]).await.ok(),
        "ok: enabled rule r\n"
    );
    let got = home.run(&["rule", "get", "r", "--json"]).await.json();
    assert_eq!(got["status"], "active");
    assert_eq!(got["trigger"], json!({"path": "guest", "name": "t"}));

    // Refusals.
    let out = home.run(&["rule", "create", "r2", "t", "nope"]).await;
    assert!(
        out.fails(144)
            .starts_with("error: Unable to create rule 'r2': action /guest/nope does not exist"),
        "{out:?}"
    );
    let out = home.run(&["trigger", "get", "nope"]).await;
    assert!(
        out.fails(148).starts_with(
            "error: Unable to get trigger 'nope': The requested resource does not exist."
        ),
        "{out:?}"
    );

    assert_eq!(
        home.run(&["rule", "delete", "r", "--disable"]).await.ok(),
        "ok: deleted rule r\n"
    );
    assert_eq!(
        home.run(&["trigger", "delete", "t"]).await.ok(),
        "ok: deleted trigger t\n"
    );
    assert_eq!(home.run(&["trigger", "list"]).await.ok(), "triggers\n");
    p.stop().await;
}

/// A feed action that tells what it was asked, and refuses to `CREATE` when `fail` is set.
const FEED_JS: &str = "function main(p) {\n  if (p.fail && p.lifecycleEvent === 'CREATE') { return { error: 'feed refused' }; }\n  return { event: p.lifecycleEvent, trigger: p.triggerName, keyed: typeof p.authKey === 'string' && p.authKey.length > 0, cron: p.cron };\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_run_their_lifecycle() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("feed.js", FEED_JS);
    home.run(&[
        "action", "create", "myFeed", "feed.js", "-a", "feed", "true",
    ])
    .await
    .ok();

    // The feed refuses: the trigger is taken back out.
    let out = home
        .run(&[
            "trigger", "create", "ft", "--feed", "myFeed", "-p", "fail", "true",
        ])
        .await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("Unable to create trigger 'ft'") && out.stderr.contains("feed refused"),
        "{out:?}"
    );
    let out = home.run(&["trigger", "get", "ft"]).await;
    assert_eq!(out.code, 148, "rolled back: {out:?}");

    // The feed accepts: CREATE with the parameters, the trigger's name and the key.
    let out = home
        .run(&[
            "trigger",
            "create",
            "ft",
            "--feed",
            "myFeed",
            "-p",
            "cron",
            "* * * * *",
        ])
        .await;
    let text = out.ok();
    assert!(text.starts_with("ok: invoked /_/myFeed with id "), "{text}");
    assert!(text.ends_with("ok: created trigger ft\n"), "{text}");
    let created = activation(&home, &id_in(text)).await;
    assert_eq!(
        created["response"]["result"],
        json!({"event": "CREATE", "trigger": "/_/ft", "keyed": true, "cron": "* * * * *"})
    );
    let got = home.run(&["trigger", "get", "ft", "--json"]).await.json();
    assert_eq!(got["response"]["result"]["event"], "READ", "{got}");

    // Deleting the trigger runs DELETE.
    assert_eq!(
        home.run(&["trigger", "delete", "ft"]).await.ok(),
        "ok: deleted trigger ft\n"
    );
    let list = home
        .run(&["activation", "list", "myFeed", "--json"])
        .await
        .json();
    let mut events = Vec::new();
    for a in list.as_array().unwrap() {
        let rec = activation(&home, a["activationId"].as_str().unwrap()).await;
        if let Some(e) = rec["response"]["result"]["event"].as_str() {
            events.push(e.to_string());
        }
    }
    events.sort();
    assert_eq!(events, ["CREATE", "DELETE", "READ"]);
    assert_eq!(home.run(&["trigger", "get", "ft"]).await.code, 148);
    p.stop().await;
}

/// The built-in alarms feed through `--feed`: a malformed cron takes the trigger back out with
/// the provider's message; a good one is created, read back and deleted with its trigger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_feed_through_the_cli() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    let out = home
        .run(&[
            "trigger",
            "create",
            "nightly",
            "--feed",
            "/whisk.system/alarms/alarm",
            "-p",
            "cron",
            "at midnight",
        ])
        .await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("Unable to create trigger 'nightly'")
            && out
                .stderr
                .contains("cron pattern 'at midnight' is not valid"),
        "{out:?}"
    );
    assert_eq!(home.run(&["trigger", "get", "nightly"]).await.code, 148);

    let out = home
        .run(&[
            "trigger",
            "create",
            "nightly",
            "--feed",
            "/whisk.system/alarms/alarm",
            "-p",
            "cron",
            "0 0 * * *",
            "-p",
            "timezone",
            "Europe/Paris",
        ])
        .await;
    assert!(
        out.ok().ends_with("ok: created trigger nightly\n"),
        "{out:?}"
    );
    let got = home
        .run(&["trigger", "get", "nightly", "--json"])
        .await
        .json();
    let config = &got["response"]["result"]["config"];
    assert_eq!(config["cron"], "0 0 * * *", "{got}");
    assert_eq!(config["timezone"], "Europe/Paris", "{got}");
    assert_eq!(
        home.run(&["trigger", "delete", "nightly"]).await.ok(),
        "ok: deleted trigger nightly\n"
    );
    // The alarm went with it: creating it again works.
    let out = home
        .run(&[
            "trigger",
            "create",
            "nightly",
            "--feed",
            "/whisk.system/alarms/alarm",
            "-p",
            "cron",
            "0 0 * * *",
        ])
        .await;
    assert!(
        out.ok().ends_with("ok: created trigger nightly\n"),
        "{out:?}"
    );
    p.stop().await;
}
