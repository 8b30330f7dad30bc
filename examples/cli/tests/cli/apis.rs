//! `faas api ...` against the platform's own API gateway: create (arguments and a swagger
//! file), list, get, delete, and calling the route over plain HTTP.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::{DEMO_JS, Home, Platform};

/// `GET path` on `host:port` over a plain socket: (status, body).
fn http_get(apihost: &str, path: &str) -> (u16, String) {
    let addr = apihost.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn get_async(apihost: String, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || http_get(&apihost, path))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_commands() {
    let p = Platform::start().await;
    let home = Home::for_platform(&p);
    home.file("demo.js", DEMO_JS);
    home.run(&["action", "create", "webDemo", "demo.js", "--web", "true"])
        .await
        .ok();
    let host = p.apihost();
    let out = home
        .run(&["api", "create", "/hello", "/world", "get", "webDemo"])
        .await;
    assert_eq!(
        out.ok(),
        format!(
            "ok: created API /hello/world GET for action /_/webDemo\n{host}/api/guest/hello/world\n"
        )
    );
    let out = home
        .run(&[
            "api",
            "create",
            "-n",
            "Book Club",
            "/club",
            "/books/{isbn}",
            "get",
            "webDemo",
            "--response-type",
            "http",
        ])
        .await;
    assert!(out.ok().contains("/api/guest/club/books/{isbn}"), "{out:?}");

    // The route runs the web action (json response type by default).
    let (status, body) = get_async(host.clone(), "/api/guest/hello/world?name=Bob").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["payload"], "Hello, Bob!");

    let list = home.run(&["api", "list"]).await.ok().to_string();
    assert!(list.starts_with("ok: APIs\n"), "{list}");
    assert!(
        list.contains(&format!("{host}/api/guest/hello/world")),
        "{list}"
    );
    assert!(list.contains("Book Club"), "{list}");
    assert!(list.contains("/guest/webDemo"), "{list}");
    let full = home
        .run(&["api", "list", "/club", "--full"])
        .await
        .ok()
        .to_string();
    assert!(full.contains("   Path: /books/{isbn}\n"), "{full}");
    assert!(!full.contains("/hello"), "{full}");

    let got = home.run(&["api", "get", "/hello"]).await;
    let doc = got.json();
    assert_eq!(doc["basePath"], "/hello");
    assert_eq!(
        doc["paths"]["/world"]["get"]["x-openwhisk"]["action"],
        "webDemo"
    );
    let got = home.run(&["api", "get", "Book Club"]).await;
    assert_eq!(got.json()["basePath"], "/club");

    assert_eq!(
        home.run(&["api", "delete", "/hello", "/world", "GET"])
            .await
            .ok(),
        "ok: deleted /world GET from /hello\n"
    );
    let (status, _) = get_async(host.clone(), "/api/guest/hello/world").await;
    assert_eq!(status, 404);
    assert_eq!(
        home.run(&["api", "get", "/hello"]).await.fails(1),
        "error: API does not exist for basepath /hello"
    );
    assert_eq!(
        home.run(&["api", "delete", "/club"]).await.ok(),
        "ok: deleted API /club\n"
    );
    let list = home.run(&["api", "list"]).await.ok().to_string();
    assert_eq!(list.lines().count(), 2, "only the header: {list}");

    // A swagger file.
    home.file(
        "api.json",
        serde_json::json!({
            "swagger": "2.0",
            "info": {"title": "From file", "version": "1.0"},
            "basePath": "/file",
            "paths": {"/x": {"get": {
                "operationId": "getX",
                "x-openwhisk": {"namespace": "guest", "package": "", "action": "webDemo",
                                "url": format!("{host}/api/v1/web/guest/default/webDemo.json")},
                "responses": {"default": {"description": "ok"}}
            }}}
        })
        .to_string(),
    );
    let out = home
        .run(&["api", "create", "--config-file", "api.json"])
        .await;
    assert!(
        out.ok().contains("created API /file/x get for action"),
        "{out:?}"
    );
    let (status, body) = get_async(host.clone(), "/api/guest/file/x").await;
    assert_eq!(
        (status, body.contains("Hello, World!")),
        (200, true),
        "{body}"
    );
    p.stop().await;
}
