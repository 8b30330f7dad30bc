//! The shipped `whisk.system` catalog behaves as documented: every action whose manifest
//! gives a `sampleInput` and a `sampleOutput` is run with Node.js on that input and must
//! answer that output; the rest are run on chosen inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn catalog_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")
}

/// Runs `main(input)` of the action file with Node.js (as `guest` on a local API host).
fn run(file: &Path, input: &Value) -> Value {
    let script = format!(
        // Logs go to stderr so that stdout holds only the result.
        "console.log = console.error;\n{}\nPromise.resolve(main({})).then(r => process.stdout.write(JSON.stringify(r)))",
        std::fs::read_to_string(file).unwrap(),
        input
    );
    let out = Command::new("node")
        .arg("-e")
        .arg(script)
        .env("__OW_API_HOST", "http://127.0.0.1:3233")
        .env("__OW_NAMESPACE", "guest")
        .output()
        .expect("node on PATH");
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn annotation<'a>(action: &'a Value, key: &str) -> Option<&'a Value> {
    action["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[test]
fn samples_of_every_manifest_hold() {
    let mut checked = 0;
    for pkg in ["utils", "samples"] {
        let dir = catalog_dir().join(pkg);
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                .unwrap();
        for action in manifest["actions"].as_array().unwrap() {
            let (Some(input), Some(output)) = (
                annotation(action, "sampleInput"),
                annotation(action, "sampleOutput"),
            ) else {
                continue;
            };
            let file = dir.join(action["file"].as_str().unwrap());
            assert_eq!(
                &run(&file, input),
                output,
                "{pkg}/{}",
                action["name"].as_str().unwrap()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "every action with a documented sample was run");
}

#[test]
fn the_other_utilities_answer_as_documented() {
    let utils = catalog_dir().join("utils");
    let date = run(&utils.join("date.js"), &json!({}));
    let text = date["date"].as_str().unwrap();
    assert!(
        text.len() == 24 && text.ends_with('Z') && text.contains('T'),
        "{text}"
    );
    assert_eq!(
        run(&utils.join("namespace.js"), &json!({})),
        json!({"namespace": "guest"})
    );
    let url = |args: Value| run(&utils.join("hosturl.js"), &args);
    assert_eq!(
        url(json!({"path": "pkg/a"})),
        json!({"url": "http://127.0.0.1:3233/api/v1/namespaces/guest/actions/pkg/a"})
    );
    assert_eq!(
        url(json!({"web": true, "path": "a", "ext": ".json"})),
        json!({"url": "http://127.0.0.1:3233/api/v1/web/guest/default/a.json"})
    );
    assert_eq!(
        url(json!({"trigger": true, "path": "t"})),
        json!({"url": "http://127.0.0.1:3233/api/v1/namespaces/guest/triggers/t"})
    );
    assert!(
        url(json!({"trigger": true, "web": true}))
            .get("error")
            .is_some()
    );
    assert!(
        url(json!({"web": true, "path": "a", "ext": ".exe"}))
            .get("error")
            .is_some()
    );
    assert!(
        url(json!({"trigger": true, "path": "p/t"}))
            .get("error")
            .is_some()
    );
    assert_eq!(
        run(&utils.join("split.js"), &json!({"payload": "a\nb\r\nc"})),
        json!({"lines": ["a", "b", "c"], "payload": "a\nb\r\nc"})
    );
    assert!(
        run(&utils.join("smash.js"), &json!({"a": 1}))
            .get("error")
            .is_some()
    );
    assert_eq!(
        run(&utils.join("head.js"), &json!({"lines": [1, 2, 3]})),
        json!({"lines": [1], "num": 1})
    );
    assert_eq!(
        run(&catalog_dir().join("samples/greeting.js"), &json!({})),
        json!({"payload": "Hello, stranger from somewhere!"})
    );
}
