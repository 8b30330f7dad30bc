//! OTLP trace export: a standalone platform with `otlp_endpoint` set sends the spans of an
//! activation, one trace from the request (its W3C `traceparent` honoured) through the bus
//! to the invoker, to an in-process OTLP/HTTP collector on loopback, which decodes the
//! protobuf requests.
#![cfg(feature = "otlp")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use faas_platform::config::NodeConfig;
use faas_platform::standalone::{self, Adapters};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const GUEST: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// An OTLP/HTTP collector: every `POST /v1/traces` body, decoded, goes to the channel.
async fn collector() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<(String, ExportTraceServiceRequest)>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut conn = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut len, mut ctype) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        conn.read_line(&mut h).await.unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap(),
                            "content-type" => ctype = v.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; len];
                    conn.read_exact(&mut body).await.unwrap();
                    assert!(line.starts_with("POST /v1/traces "), "{line}");
                    let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                    let _ = tx.send((ctype, req));
                    conn.get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                }
            });
        }
    });
    (addr, rx)
}

async fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(GUEST);
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Basic {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}connection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn spans_of_one_activation_reach_an_otlp_collector_as_one_trace() {
    let (addr, mut rx) = collector().await;
    let mut config = NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        guest_auth: Some(GUEST.into()),
        catalog: false,
        otlp_endpoint: Some(format!("http://{addr}")),
        ..NodeConfig::default()
    };
    config.alarms.enabled = false;
    let running = within("start", standalone::start(&config, &Adapters::default()))
        .await
        .unwrap();
    let put = http(
        running.addr,
        "PUT",
        "/api/v1/namespaces/_/actions/hello",
        "",
        r#"{"exec":{"kind":"nodejs:default","code":"function main() { return {}; }"}}"#,
    )
    .await;
    assert!(put.starts_with("HTTP/1.1 200"), "{put}");
    let post = http(
        running.addr,
        "POST",
        "/api/v1/namespaces/_/actions/hello?blocking=true",
        &format!("traceparent: {PARENT}\r\n"),
        "{}",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 200"), "{post}");

    let trace = hex_id("4bf92f3577b34da6a3ce929d0e0e4736");
    let mut spans: Vec<Span> = Vec::new();
    let wanted = [
        "http.request",
        "controller.dispatch",
        "invoker.activation",
        "invoker.run",
        "invoker.store",
    ];
    within("the activation's spans at the collector", async {
        while !wanted
            .iter()
            .all(|w| spans.iter().any(|s| s.name == *w && s.trace_id == trace))
        {
            let (ctype, req) = rx.recv().await.unwrap();
            assert_eq!(ctype, "application/x-protobuf");
            for rs in req.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                    .map(|a| format!("{:?}", a.value));
                assert!(service.is_some_and(|s| s.contains("faas-platform")));
                for ss in rs.scope_spans {
                    spans.extend(ss.spans);
                }
            }
        }
    })
    .await;
    let one = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.trace_id == trace)
            .unwrap()
            .clone()
    };
    let (request, dispatch, activation, run) = (
        one("http.request"),
        one("controller.dispatch"),
        one("invoker.activation"),
        one("invoker.run"),
    );
    assert_eq!(request.parent_span_id, hex_id("00f067aa0ba902b7"));
    assert_eq!(dispatch.parent_span_id, request.span_id);
    assert_eq!(activation.parent_span_id, dispatch.span_id);
    assert_eq!(run.parent_span_id, activation.span_id);
    assert!(run.end_time_unix_nano >= run.start_time_unix_nano && run.start_time_unix_nano > 0);
    within("shutdown", running.shutdown()).await;
}

fn hex_id(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
