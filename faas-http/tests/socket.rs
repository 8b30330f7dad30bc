//! One real-socket test: `serve` on 127.0.0.1:0, spoken to with plain HTTP/1.1 over TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::*;

async fn http(addr: std::net::SocketAddr, raw: String) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn the_real_deal() {
    let e = env().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = e.controller.clone();
    let server = tokio::spawn(async move {
        controller
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });

    let (status, head, body) = within(
        "ping",
        http(
            addr,
            "GET /ping HTTP/1.1\r\nhost: x\r\nx-request-id: sock-1\r\nconnection: close\r\n\r\n"
                .into(),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, "pong");
    assert!(head.contains("x-request-id: sock-1"), "{head}");

    let auth = basic(GUEST);
    let (status, _, body) = within(
        "namespaces",
        http(
            addr,
            format!("GET /api/v1/namespaces HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\nconnection: close\r\n\r\n"),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, "[\"guest\"]");

    let payload = r#"{"exec":{"kind":"nodejs:default","code":"function main(a){return a}"}}"#;
    let (status, head, body) = within(
        "put",
        http(
            addr,
            format!(
                "PUT /api/v1/namespaces/_/actions/sock HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                payload.len()
            ),
        ),
    )
    .await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(body.contains("\"name\":\"sock\""));

    let (status, _, body) = within(
        "unauthenticated",
        http(
            addr,
            "GET /api/v1/namespaces/_/actions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
                .into(),
        ),
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("\"code\""));

    stop.send(()).unwrap();
    within("server stops", server).await.unwrap().unwrap();
}
