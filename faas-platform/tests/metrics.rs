//! The platform's metrics wiring: `/metrics` on a standalone platform's API listener (with
//! the bearer token) and on a listener of its own, and on an invoker-only node's listener
//! (`--metrics-listen`), each scraped over a real socket on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use faas_platform::config::NodeConfig;
use faas_platform::standalone::{self, Adapters};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "platform-metrics-token-0123";
const GUEST: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// One `GET` over a fresh connection: (status line, body).
async fn get(addr: SocketAddr, path: &str, auth: Option<&str>) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth.map_or(String::new(), |a| format!("authorization: {a}\r\n"));
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn node() -> NodeConfig {
    let mut c = NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        guest_auth: Some(GUEST.into()),
        catalog: false,
        ..NodeConfig::default()
    };
    c.alarms.enabled = false;
    c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    c
}

#[tokio::test]
async fn standalone_serves_metrics_on_its_api_with_the_token_and_on_its_own_listener() {
    let mut config = node();
    config.metrics.token = Some(TOKEN.into());
    let running = within("start", standalone::start(&config, &Adapters::default()))
        .await
        .unwrap();
    let own = running.metrics_addr().expect("a metrics listener");
    let bearer = format!("Bearer {TOKEN}");

    let (status, _) = within("api", get(running.addr, "/api/v1", None)).await;
    assert!(status.contains(" 200"), "{status}");
    let (status, _) = within("no token", get(running.addr, "/metrics", None)).await;
    assert!(status.contains(" 401"), "{status}");
    let (status, text) = within("api scrape", get(running.addr, "/metrics", Some(&bearer))).await;
    assert!(status.contains(" 200"), "{status}");
    assert!(
        text.contains(
            "faas_http_requests_total{route=\"/api/v1\",method=\"GET\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("faas_invokers{state=\"up\"} 1"), "{text}");
    assert!(text.contains("# TYPE faas_pool_containers gauge"), "{text}");

    // The listener of its own needs no token and shows the same registry.
    let (status, text) = within("own scrape", get(own, "/metrics", None)).await;
    assert!(status.contains(" 200"), "{status}");
    assert!(
        text.contains("route=\"/metrics\",method=\"GET\",status=\"401\"} 1"),
        "{text}"
    );
    within("shutdown", running.shutdown()).await;
}

#[tokio::test]
async fn an_invoker_node_has_a_metrics_listener_of_its_own() {
    let config = node();
    let node = within(
        "start",
        standalone::start_invoker(&config, &Adapters::default()),
    )
    .await
    .unwrap();
    let addr = node
        .metrics_server
        .as_ref()
        .expect("a metrics listener")
        .addr;
    // Its health pings are bus publishes, once a second.
    let text = faas_core::testkit::wait_for(
        "a health ping recorded",
        Duration::from_secs(30),
        async || {
            let (status, text) = get(addr, "/metrics", None).await;
            assert!(status.contains(" 200"), "{status}");
            text.contains("faas_bus_publish_duration_seconds_count{topic=\"health\"}")
                .then_some(text)
        },
    )
    .await;
    assert!(text.contains("faas_pool_memory_free_bytes"), "{text}");
    assert!(
        text.contains("faas_pool_acquires_total{how=\"cold\"} 0"),
        "{text}"
    );
    within("shutdown", node.invoker.shutdown()).await;
}
