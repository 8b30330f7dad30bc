//! A complete platform in one `main`, all in memory: the controller, an invoker running
//! actions as local Node.js processes, the in-memory store and the in-process bus. It creates
//! an action and invokes it through the REST API, prints the result and shuts down.
//!
//! Run: `cargo run -p faas-platform --example embedded` (needs `node` on `PATH`).

use http::{Method, StatusCode};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The builder's defaults are `memory:`, `inproc:` and `process:`; serve on any free port
    // and skip the `whisk.system` catalog (nothing here uses it).
    let config = faas_platform::config::NodeConfig {
        listen: "127.0.0.1:0".parse()?,
        catalog: false,
        ..Default::default()
    };
    let running = faas_platform::Platform::builder()
        .config(config)
        .start()
        .await?;
    println!(
        "platform on http://{} (guest key {})",
        running.addr,
        running.guest.compact()
    );

    // `wsk action create hello hello.js`: `call` sends one request, as the guest, to the HTTP
    // application the socket serves (any HTTP client on `running.addr` does the same).
    let code = "function main(args) { return { greeting: `Hello, ${args.name}!` }; }";
    let exec = json!({ "exec": { "kind": "nodejs:default", "code": code } });
    let (status, _) = running
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/hello",
            Some(exec),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "create");

    // `wsk action invoke hello --result --param name embedded`.
    let path = "/api/v1/namespaces/_/actions/hello?blocking=true&result=true";
    let (status, result) = running
        .call(Method::POST, path, Some(json!({ "name": "embedded" })))
        .await?;
    println!("{status}: {result}");

    // Stops taking requests, lets work in flight finish, stops the invoker.
    running.shutdown().await;
    if result["greeting"] != "Hello, embedded!" {
        return Err(format!("unexpected result {result}").into());
    }
    Ok(())
}
