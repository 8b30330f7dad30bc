//! `faas-platform admin`, the real binary: against a running standalone platform's admin API
//! (`--url`), and straight against a CouchDB store (`--store`, needs `FAAS_TEST_COUCHDB_URL`);
//! `wskadmin`'s output, messages and exit codes; the `whisk.system` identity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::time::Duration;

use faas_core::identity::AuthKey;
use faas_core::store::Store;
use faas_core::testkit;
use faas_platform::config::NodeConfig;
use faas_platform::standalone::{
    Adapters, Running, SYSTEM_NAMESPACE, ensure_system_identity, start,
};
use faas_store::MemoryStore;

const BIN: &str = env!("CARGO_BIN_EXE_faas-platform");
// Starts with '-', as random base64url credentials may: a value, not a flag.
const TOKEN: &str = "-cli-test-credential-0123456789abcdef012345";
const GUEST: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// Runs `faas-platform admin <connection…> <args…>` (bounded), with a clean environment for
/// the `FAAS_*` variables it reads.
async fn admin(connection: &[&str], args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("admin").args(connection).args(args);
    for v in [
        "FAAS_ADMIN_URL",
        "FAAS_ADMIN_AUTH",
        "FAAS_STORE",
        "FAAS_BUS",
        "FAAS_CONFIG",
    ] {
        cmd.env_remove(v);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("admin finished in time")
        .expect("admin ran")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim_end().to_string()
}

/// Asserts success and returns standard output.
fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Asserts exit `code` with `message` on standard error, nothing on standard output.
fn fails(o: &Output, code: i32, message: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    assert_eq!(stderr(o), format!("[faas-platform admin] Error: {message}"));
    assert_eq!(stdout(o), "");
}

async fn platform() -> Running {
    let config = NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        guest_auth: Some(GUEST.into()),
        admin_auth: Some(faas_platform::config::parse_admin_credential(TOKEN).unwrap()),
        prewarm_nodejs: 0,
        ..NodeConfig::default()
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        start(&config, &Adapters::default()),
    )
    .await
    .expect("started in time")
    .expect("platform starts")
}

/// `GET /api/v1/namespaces` with `key`: the status and body.
async fn namespaces_of(running: &Running, key: &str) -> (u16, String) {
    use base64::Engine;
    use http_body_util::BodyExt;
    let call = async {
        let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get("/api/v1/namespaces")
            .header("host", running.addr.to_string())
            .header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(key)
                ),
            )
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).to_string())
    };
    tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .unwrap()
}

/// The whole `wskadmin` session through a running platform's admin API.
#[tokio::test]
async fn through_a_running_platform() {
    let running = platform().await;
    let url = format!("http://{}", running.addr);
    let c: &[&str] = &["--url", &url, "--admin-auth", TOKEN];

    // The guest is as before; whisk.system has its own identity, which works.
    assert_eq!(
        ok(&admin(c, &["namespace", "list"]).await),
        "guest\nwhisk.system"
    );
    assert_eq!(ok(&admin(c, &["user", "get", "guest"]).await), GUEST);
    let system = running.system.compact();
    assert_eq!(
        ok(&admin(c, &["user", "get", SYSTEM_NAMESPACE]).await),
        system
    );
    assert_ne!(system, GUEST);
    assert_eq!(
        namespaces_of(&running, &system).await,
        (200, "[\"whisk.system\"]".into())
    );

    // user create prints the key; it works at once, in its namespace only.
    let alice = ok(&admin(c, &["user", "create", "alice-user", "--namespace", "alice"]).await);
    let parsed = AuthKey::parse_strict(&alice).expect("a key in OpenWhisk's form");
    assert_eq!(
        namespaces_of(&running, &alice).await,
        (200, "[\"alice\"]".into())
    );
    fails(
        &admin(c, &["user", "create", "alice-user", "-n", "alice"]).await,
        1,
        "Namespace already exists",
    );
    // A given key, and bad ones (exit 2, nothing written).
    let given = "11111111-2222-4333-8444-555555555555:".to_string() + &"x".repeat(64);
    assert_eq!(
        ok(&admin(c, &["user", "create", "bobby", "--auth", &given]).await),
        given
    );
    fails(
        &admin(
            c,
            &[
                "user",
                "create",
                "carol",
                "-u",
                "11111111-2222-4333-8444-555555555555:short",
            ],
        )
        .await,
        2,
        "authorization key must be at least 64 characters long",
    );
    fails(
        &admin(
            c,
            &[
                "user",
                "create",
                "carol",
                "-u",
                &format!("nope:{}", "x".repeat(64)),
            ],
        )
        .await,
        2,
        "authorization id is not a valid UUID",
    );
    fails(
        &admin(c, &["user", "create", "carl"]).await,
        2,
        "Subject name must be at least 5 characters",
    );
    fails(
        &admin(c, &["user", "create", "carol", "-u", &given]).await,
        1,
        "authorization key is already in use",
    );
    fails(
        &admin(c, &["user", "get", "carol"]).await,
        1,
        "Subject not found",
    );

    // get --all, list, whois.
    ok(&admin(c, &["user", "create", "alice-user", "-n", "shared"]).await);
    ok(&admin(c, &["user", "create", "bobby", "-n", "shared"]).await);
    let all = ok(&admin(c, &["user", "get", "alice-user", "--all"]).await);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], format!("alice\t{alice}"));
    assert!(lines[1].starts_with("shared\t"));
    fails(
        &admin(c, &["user", "get", "alice-user"]).await,
        1,
        "Namespace 'alice-user' does not exist for 'alice-user'",
    );
    let listed = ok(&admin(c, &["user", "list", "shared"]).await);
    let subjects: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(subjects, ["alice-user", "bobby"]);
    assert_eq!(
        ok(&admin(c, &["user", "list", "shared", "--pick", "1", "--key"]).await)
            .lines()
            .count(),
        1
    );
    assert!(!ok(&admin(c, &["user", "list", "shared", "-k"]).await).contains('\t'));
    fails(
        &admin(c, &["user", "list", "nowhere"]).await,
        1,
        "no identities found for namespace 'nowhere'",
    );
    assert_eq!(
        ok(&admin(c, &["user", "whois", &alice]).await),
        "subject: alice-user\nnamespace: alice"
    );

    // Rotation: the old key stops at once.
    let rotated = ok(&admin(
        c,
        &["user", "create", "alice-user", "-n", "alice", "--revoke"],
    )
    .await);
    assert_eq!(AuthKey::parse_strict(&rotated).unwrap().uuid, parsed.uuid);
    assert_eq!(namespaces_of(&running, &alice).await.0, 401);
    assert_eq!(namespaces_of(&running, &rotated).await.0, 200);

    // block / unblock: each subject reported; exit code = failures.
    let o = admin(c, &["user", "block", "alice-user", "nobody-here", "bobby"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "'alice-user' blocked successfully\n'bobby' blocked successfully"
    );
    assert_eq!(
        stderr(&o),
        "[faas-platform admin] Error: 'nobody-here' missing"
    );
    assert_eq!(namespaces_of(&running, &rotated).await.0, 401);
    assert_eq!(namespaces_of(&running, &given).await.0, 401);
    fails(
        &admin(c, &["user", "create", "alice-user", "-n", "more"]).await,
        1,
        "The subject you want to edit is blocked",
    );
    assert_eq!(
        ok(&admin(c, &["user", "unblock", "alice-user", "bobby"]).await),
        "'alice-user' unblocked successfully\n'bobby' unblocked successfully"
    );
    assert_eq!(namespaces_of(&running, &rotated).await.0, 200);

    // Limits: wskadmin's messages and format; values checked; unknown namespaces refused.
    assert_eq!(
        ok(&admin(c, &["limits", "get", "alice"]).await),
        "No limits found, default system limits apply"
    );
    fails(
        &admin(c, &["limits", "get", "nowhere"]).await,
        1,
        "Namespace 'nowhere' does not exist",
    );
    fails(
        &admin(c, &["limits", "set", "nowhere", "--firesPerMinute", "1"]).await,
        1,
        "Namespace 'nowhere' does not exist",
    );
    assert_eq!(
        ok(&admin(
            c,
            &[
                "limits",
                "set",
                "alice",
                "--invocationsPerMinute",
                "3",
                "--allowedKinds",
                "nodejs:20",
                "python:3"
            ]
        )
        .await),
        "Limits successfully set for 'alice'"
    );
    assert_eq!(
        ok(&admin(
            c,
            &[
                "limits",
                "set",
                "alice",
                "--concurrentInvocations",
                "2",
                "--storeActivations",
                "false"
            ]
        )
        .await),
        "Limits successfully updated for 'alice'"
    );
    assert_eq!(
        ok(&admin(c, &["limits", "get", "alice"]).await),
        "concurrentInvocations = 2\ninvocationsPerMinute = 3\nallowedKinds = nodejs:20, python:3\nstoreActivations = false"
    );
    fails(
        &admin(
            c,
            &["limits", "set", "alice", "--invocationsPerMinute", "-5"],
        )
        .await,
        2,
        "invocationsPerMinute must be between 0 and 2147483647, not -5",
    );
    fails(
        &admin(
            c,
            &["limits", "set", "alice", "--firesPerMinute", "2147483648"],
        )
        .await,
        2,
        "firesPerMinute must be between 0 and 2147483647, not 2147483648",
    );
    fails(
        &admin(c, &["limits", "set", "alice"]).await,
        2,
        "Give at least one limit to set",
    );
    let o = admin(
        c,
        &["limits", "set", "alice", "--storeActivations", "maybe"],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "clap's usage error");
    assert_eq!(
        ok(&admin(c, &["limits", "get", "alice"]).await)
            .lines()
            .count(),
        4,
        "refused changes wrote nothing"
    );
    assert_eq!(
        ok(&admin(c, &["limits", "delete", "alice"]).await),
        "Limits deleted"
    );
    fails(
        &admin(c, &["limits", "delete", "alice"]).await,
        1,
        "Limits not found for 'alice'",
    );

    // delete: a namespace, then the subject.
    fails(
        &admin(c, &["user", "delete", "alice-user", "-n", "nowhere"]).await,
        1,
        "Namespace 'nowhere' does not exist for 'alice-user'",
    );
    assert_eq!(
        ok(&admin(
            c,
            &["user", "delete", "alice-user", "--namespace", "shared"]
        )
        .await),
        "Namespace deleted"
    );
    assert_eq!(
        ok(&admin(c, &["user", "delete", "alice-user"]).await),
        "Subject deleted"
    );
    assert_eq!(namespaces_of(&running, &rotated).await.0, 401);
    fails(
        &admin(c, &["user", "delete", "alice-user"]).await,
        1,
        "Subject to delete not found",
    );

    // The operator credential: wrong, missing, or a tenant key instead.
    let wrong = [
        "--url",
        &url,
        "--admin-auth",
        "wrong-credential-0123456789abcdef01234",
    ];
    fails(
        &admin(&wrong, &["namespace", "list"]).await,
        3,
        "the admin API refused the operator credential: The supplied authentication is invalid",
    );
    fails(
        &admin(&["--url", &url], &["namespace", "list"]).await,
        2,
        "--url needs the operator credential: --admin-auth or FAAS_ADMIN_AUTH",
    );
    let o = admin(
        &["--url", &url, "--admin-auth", GUEST],
        &["namespace", "list"],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "a tenant key is not an operator credential"
    );
    // Nothing to talk to.
    fails(
        &admin(
            &["--url", "http://127.0.0.1:1", "--admin-auth", TOKEN],
            &["namespace", "list"],
        )
        .await,
        3,
        "cannot reach 127.0.0.1:1: Connection refused (os error 111)",
    );
    fails(
        &admin(&[], &["namespace", "list"]).await,
        2,
        "give --url (a running controller's admin API, with --admin-auth) or --store (a shared store)",
    );
    fails(
        &admin(&["--store", "memory:"], &["namespace", "list"]).await,
        2,
        "a memory: store lives inside its platform process: use --url and --admin-auth",
    );
    running.shutdown().await;
}

/// Without an operator credential the platform serves no admin API.
#[tokio::test]
async fn no_credential_no_admin_api() {
    let config = NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        prewarm_nodejs: 0,
        ..NodeConfig::default()
    };
    let running = start(&config, &Adapters::default()).await.unwrap();
    let url = format!("http://{}", running.addr);
    let o = admin(
        &["--url", &url, "--admin-auth", TOKEN],
        &["namespace", "list"],
    )
    .await;
    fails(&o, 1, "The requested resource could not be found.");
    running.shutdown().await;
}

/// `whisk.system`'s identity is created once, whoever starts first, and kept.
#[tokio::test]
async fn system_identity_is_created_once() {
    let store = MemoryStore::new();
    let keys = futures::future::join_all((0..8).map(|_| ensure_system_identity(&store))).await;
    let first = keys[0].as_ref().unwrap().clone();
    for k in &keys {
        assert_eq!(
            k.as_ref().unwrap(),
            &first,
            "every start-up sees the same key"
        );
    }
    assert_eq!(ensure_system_identity(&store).await.unwrap(), first);
    let id = store.find_identity(&first).await.unwrap();
    assert_eq!(id.namespace.name.as_str(), SYSTEM_NAMESPACE);
    assert_eq!(id.subject, SYSTEM_NAMESPACE);
}

/// Straight against a shared CouchDB store, as `wskadmin` works.
#[tokio::test]
async fn straight_against_couchdb() {
    let Some(base) = std::env::var("FAAS_TEST_COUCHDB_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        testkit::skip("straight_against_couchdb (FAAS_TEST_COUCHDB_URL)");
        return;
    };
    let prefix = format!("admin_cli_{}_{:x}_", std::process::id(), rand_suffix());
    let store_url = format!(
        "{}?prefix={prefix}",
        base.trim_end_matches('/').to_string() + "/"
    );
    let c: &[&str] = &["--store", &store_url];
    let key = ok(&admin(c, &["user", "create", "dana-user", "-n", "dana"]).await);
    assert_eq!(
        ok(&admin(c, &["user", "list", "dana"]).await),
        format!("{key}\tdana-user")
    );
    assert_eq!(ok(&admin(c, &["namespace", "list"]).await), "dana");
    assert_eq!(
        ok(&admin(
            c,
            &["limits", "set", "dana", "--concurrentInvocations", "0"]
        )
        .await),
        "Limits successfully set for 'dana'"
    );
    // Without --bus, writes warn that running controllers learn late.
    let o = admin(c, &["user", "block", "dana-user"]).await;
    assert_eq!(stdout(&o), "'dana-user' blocked successfully");
    assert!(stderr(&o).contains("warning: no --bus"), "{}", stderr(&o));
    // What the CLI wrote is what a platform on that store reads.
    let store = faas_store::CouchDbStore::builder()
        .with_url(&store_url)
        .build()
        .await
        .unwrap();
    let record = store.get_subject("dana-user").await.unwrap().value;
    assert!(record.blocked);
    assert_eq!(
        record.namespaces[0].uuid,
        AuthKey::parse(&key).unwrap().uuid
    );
    assert!(
        store
            .find_identity(&AuthKey::parse(&key).unwrap())
            .await
            .is_err()
    );
    assert_eq!(
        ok(&admin(c, &["user", "delete", "dana-user"]).await),
        "Subject deleted"
    );
    store.delete_databases().await.unwrap();
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}
