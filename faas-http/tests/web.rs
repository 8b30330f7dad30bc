//! Web actions (`/api/v1/web/{namespace}/{package|default}/{action}[.ext][/path]`), as
//! OpenWhisk's `WebActionsApiTests.scala` pins them: extensions and their default field
//! projections, the `.http` result form, the request context (`__ow_*`), body decoding,
//! `raw-http`, `final`, `require-whisk-auth`, CORS and `web-custom-options`, the activation id
//! header, the blocking wait, errors, and which actions are served at all (exported, in a
//! binding of a published package of another namespace, never a private one).
//!
//! A scripted invoker answers by action name: `echo*` returns its arguments, `res*` returns
//! its parameter `res`, `apperr*` fails with the application error `res`, `deverr*` with a
//! developer error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::limits::SystemLimits;
use faas_core::message::ActivationMessage;
use faas_http::ControllerConfig;
use support::*;

const WEB: &str = "/api/v1/web/guest/default";
const NOT_FOUND: &str = "The requested resource does not exist.";
const PROCESSING: &str = "There was an error processing your request.";

fn respond(msg: &ActivationMessage) -> ActivationResponse {
    let args = msg.content.clone().unwrap_or_else(|| json!({}));
    let name = msg.action.name.as_str();
    if name.starts_with("echo") {
        ActivationResponse::success(args)
    } else if name.starts_with("res") {
        ActivationResponse::success(args["res"].clone())
    } else if name.starts_with("apperr") {
        ActivationResponse::application_error(args["res"].clone())
    } else {
        ActivationResponse::developer_error("the action failed")
    }
}

struct Web {
    e: Env,
    invoker: tokio::task::JoinHandle<()>,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.invoker.abort();
    }
}

async fn served() -> Web {
    served_with(ControllerConfig::default()).await
}

async fn served_with(config: ControllerConfig) -> Web {
    let e = env_with(config).await;
    let invoker = FakeInvoker::start(&e).await.serve(&e, respond);
    Web { e, invoker }
}

fn web_export() -> Value {
    json!({"key": "web-export", "value": true})
}

/// Creates `name` as guest, exported unless `annotations` says otherwise, with parameter
/// `res` when given.
async fn web_action(w: &Web, name: &str, res: Option<Value>, annotations: Value) {
    let mut ann = annotations.as_array().cloned().unwrap_or_default();
    if !ann.iter().any(|a| a["key"] == "web-export") {
        ann.push(web_export());
    }
    let params = match res {
        Some(v) => json!([{"key": "res", "value": v}]),
        None => json!([]),
    };
    with_action(
        &w.e,
        name,
        json!({"annotations": ann, "parameters": params}),
    )
    .await;
}

fn req(method: Method, uri: &str) -> http::request::Builder {
    Request::builder().method(method).uri(uri)
}

async fn send(w: &Web, r: Request<Body>) -> Reply {
    call(&w.e.router, r).await
}

async fn get_web(w: &Web, uri: &str) -> Reply {
    send(w, req(Method::GET, uri).body(Body::empty()).unwrap()).await
}

fn text(r: &Reply) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

#[tokio::test]
async fn json_extension_renders_objects_and_arrays_pretty() {
    let w = served().await;
    web_action(&w, "res_obj", Some(json!({"foobar": "foobar"})), json!([])).await;
    web_action(&w, "res_arr", Some(json!([1, 2])), json!([])).await;
    web_action(&w, "res_str", Some(json!("plain")), json!([])).await;
    let r = get_web(&w, &format!("{WEB}/res_obj.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(text(&r), "{\n  \"foobar\": \"foobar\"\n}");
    // The activation id names a record the namespace owner can read.
    let id = r
        .header("x-openwhisk-activation-id")
        .expect("activation id");
    let a = get(&w.e.router, &format!("{ACTIVATIONS}/{id}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["response"]["result"], json!({"foobar": "foobar"}));

    let r = get_web(&w, &format!("{WEB}/res_arr.json")).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!([1, 2])));
    let r = get_web(&w, &format!("{WEB}/res_str.json")).await;
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "Response is not valid 'application/json'.",
    );
    assert!(r.header("x-openwhisk-activation-id").is_some());
}

#[tokio::test]
async fn html_svg_and_text_project_their_default_fields() {
    let w = served().await;
    web_action(
        &w,
        "res_html",
        Some(json!({"html": "<b>hi</b>"})),
        json!([]),
    )
    .await;
    web_action(
        &w,
        "res_body",
        Some(json!({"body": "from body", "html": "no", "text": "no"})),
        json!([]),
    )
    .await;
    web_action(&w, "res_svg", Some(json!({"svg": "<svg/>"})), json!([])).await;
    web_action(
        &w,
        "res_text",
        Some(json!({"text": "default text"})),
        json!([]),
    )
    .await;
    web_action(&w, "res_num", Some(json!({"text": 42})), json!([])).await;
    web_action(&w, "res_none", Some(json!({"other": 1})), json!([])).await;

    let r = get_web(&w, &format!("{WEB}/res_html.html")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(text(&r), "<b>hi</b>");
    for ext in ["html", "text"] {
        let r = get_web(&w, &format!("{WEB}/res_body.{ext}")).await;
        assert_eq!(text(&r), "from body", ".{ext} prefers body");
    }
    let r = get_web(&w, &format!("{WEB}/res_svg.svg")).await;
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    assert_eq!(text(&r), "<svg/>");
    let r = get_web(&w, &format!("{WEB}/res_text.text")).await;
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(text(&r), "default text");
    assert_eq!(
        text(&get_web(&w, &format!("{WEB}/res_num.text")).await),
        "42"
    );

    get_web(&w, &format!("{WEB}/res_none.text"))
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "Response does not include requested property.",
        );
    get_web(&w, &format!("{WEB}/res_none.html"))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "Response is not valid 'text/html'.",
        );
    get_web(&w, &format!("{WEB}/res_none.svg"))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "Response is not valid 'image/svg+xml'.",
        );
}

#[tokio::test]
async fn http_results_set_status_headers_and_body() {
    let w = served().await;
    web_action(
        &w,
        "res_redirect",
        Some(json!({"headers": {"location": "http://openwhisk.org"}, "statusCode": 302})),
        json!([]),
    )
    .await;
    web_action(
        &w,
        "res_custom",
        Some(json!({"statusCode": 444})),
        json!([]),
    )
    .await;
    web_action(
        &w,
        "res_string_code",
        Some(json!({"statusCode": "201", "body": "made"})),
        json!([]),
    )
    .await;
    web_action(
        &w,
        "res_png",
        Some(json!({"headers": {"content-type": "image/png"}, "body": "AQID"})),
        json!([]),
    )
    .await;
    web_action(&w, "res_jsbody", Some(json!({"body": {"a": 1}})), json!([])).await;
    web_action(&w, "res_empty", Some(json!({})), json!([])).await;
    web_action(
        &w,
        "res_cookies",
        Some(json!({"headers": {"Set-Cookie": ["a=b", "c=d"]}, "body": "x"})),
        json!([]),
    )
    .await;
    web_action(
        &w,
        "res_bad_type",
        Some(json!({"headers": {"content-type": "xyz"}, "body": "x"})),
        json!([]),
    )
    .await;
    web_action(&w, "res_not_obj", Some(json!(["x"])), json!([])).await;
    web_action(
        &w,
        "res_bad_png",
        Some(json!({"headers": {"content-type": "image/png"}, "body": "not base64!"})),
        json!([]),
    )
    .await;

    // With the extension and without (the default is .http).
    for uri in [
        format!("{WEB}/res_redirect.http"),
        format!("{WEB}/res_redirect"),
    ] {
        let r = get_web(&w, &uri).await;
        assert_eq!(r.status, StatusCode::FOUND, "{uri}");
        assert_eq!(r.header("location"), Some("http://openwhisk.org"));
    }
    let r = get_web(&w, &format!("{WEB}/res_custom")).await;
    assert_eq!(r.status.as_u16(), 444);
    assert!(r.body.is_empty());
    let r = get_web(&w, &format!("{WEB}/res_string_code")).await;
    assert_eq!((r.status, text(&r)), (StatusCode::CREATED, "made".into()));
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    let r = get_web(&w, &format!("{WEB}/res_png")).await;
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.body, vec![1, 2, 3]);
    let r = get_web(&w, &format!("{WEB}/res_jsbody")).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"a": 1}));
    let r = get_web(&w, &format!("{WEB}/res_empty")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = get_web(&w, &format!("{WEB}/res_cookies")).await;
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=b", "c=d"]);

    get_web(&w, &format!("{WEB}/res_bad_type"))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "Response did not specify a known content-type.",
        );
    get_web(&w, &format!("{WEB}/res_not_obj"))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "Response is not valid 'message/http'.",
        );
    get_web(&w, &format!("{WEB}/res_bad_png"))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "Response type in header did not match generated content type.",
        );
}

#[tokio::test]
async fn the_action_sees_the_request_context() {
    let w = served().await;
    web_action(&w, "echo", None, json!([])).await;
    let r = send(
        &w,
        req(Method::POST, &format!("{WEB}/echo.json/some/path?a=1&b=q"))
            .header("content-type", "application/json")
            .header("x-custom", "yes")
            .body(Body::from(r#"{"b": "body", "c": [1]}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let args = r.json();
    assert_eq!(args["__ow_method"], "post");
    assert_eq!(args["__ow_path"], "/some/path");
    assert_eq!(args["__ow_headers"]["x-custom"], "yes");
    assert_eq!(args["__ow_headers"]["content-type"], "application/json");
    assert_eq!(
        (&args["a"], &args["b"], &args["c"]),
        (&json!("1"), &json!("body"), &json!([1]))
    );
    assert!(args.get("__ow_user").is_none(), "anonymous: {args}");
    assert!(args.get("__ow_body").is_none());

    // With credentials: __ow_user, and the key is not handed to the action.
    let r = send(
        &w,
        req(Method::GET, &format!("{WEB}/echo.json"))
            .header("authorization", basic(GUEST))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let args = r.json();
    assert_eq!(args["__ow_user"], "guest");
    assert_eq!(args["__ow_method"], "get");
    assert_eq!(args["__ow_path"], "");
    assert!(args["__ow_headers"].get("authorization").is_none());
    // Wrong credentials count as none.
    let r = send(
        &w,
        req(Method::GET, &format!("{WEB}/echo.json"))
            .header("authorization", basic(&GUEST.replace("123z", "999z")))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("__ow_user").is_none());
}

async fn post_typed(w: &Web, uri: &str, ct: &str, body: &'static [u8]) -> Reply {
    send(
        w,
        req(Method::POST, uri)
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn bodies_are_decoded_by_type() {
    let w = served().await;
    web_action(&w, "echo", None, json!([])).await;
    let uri = format!("{WEB}/echo.json");
    let r = post_typed(&w, &uri, "application/x-www-form-urlencoded", b"a=1&b=x+y").await;
    assert_eq!(
        (&r.json()["a"], &r.json()["b"]),
        (&json!("1"), &json!("x y"))
    );
    let r = post_typed(&w, &uri, "text/plain", b"Jane").await;
    assert_eq!(r.json()["__ow_body"], "Jane");
    let r = post_typed(&w, &uri, "image/png", b"\x01\x02\x03").await;
    assert_eq!(r.json()["__ow_body"], "AQID");
    let r = post_typed(&w, &uri, "application/json", b"[1,2]").await;
    assert_eq!(
        r.json()["__ow_body"],
        json!([1, 2]),
        "a JSON value that is not an object"
    );
    let r = post_typed(&w, &uri, "application/json", b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("__ow_body").is_none());
    let r = post_typed(&w, &uri, "application/json", b"{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error().starts_with("The request content was malformed:"),
        "{}",
        r.error()
    );
}

#[tokio::test]
async fn raw_http_actions_get_the_query_and_body_as_they_came() {
    let w = served().await;
    let raw = json!([{"key": "raw-http", "value": true}, {"key": "final", "value": true}]);
    web_action(&w, "echo_raw", Some(json!("fixed")), raw).await;
    let r = post_typed(
        &w,
        &format!("{WEB}/echo_raw.json?a=1&res=2"),
        "application/json",
        br#"{"res": 3}"#,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "final parameters may overlap in raw mode"
    );
    let args = r.json();
    assert_eq!(args["__ow_query"], "a=1&res=2");
    assert_eq!(args["__ow_body"], "eyJyZXMiOiAzfQ==");
    assert_eq!(args["res"], "fixed");
    assert!(args.get("a").is_none());
    let r = get_web(&w, &format!("{WEB}/echo_raw.json")).await;
    assert_eq!(
        (&r.json()["__ow_query"], &r.json()["__ow_body"]),
        (&json!(""), &json!(""))
    );
    let r = post_typed(&w, &format!("{WEB}/echo_raw.json"), "text/plain", b"hello").await;
    assert_eq!(r.json()["__ow_body"], "hello");
}

#[tokio::test]
async fn reserved_and_final_parameters_cannot_be_set_by_a_request() {
    let w = served().await;
    web_action(&w, "echo", None, json!([])).await;
    web_action(
        &w,
        "echo_final",
        Some(json!("fixed")),
        json!([{"key": "final", "value": true}]),
    )
    .await;
    let denied = "Request defines parameters that are not allowed (e.g., reserved properties).";
    get_web(&w, &format!("{WEB}/echo.json?__ow_user=admin"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, denied);
    post_typed(
        &w,
        &format!("{WEB}/echo.json"),
        "application/json",
        br#"{"__ow_method": "x"}"#,
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, denied);
    get_web(&w, &format!("{WEB}/echo_final.json?res=mine"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, denied);
    let r = get_web(&w, &format!("{WEB}/echo_final.json?other=1")).await;
    assert_eq!(
        (&r.json()["res"], &r.json()["other"]),
        (&json!("fixed"), &json!("1"))
    );
}

#[tokio::test]
async fn only_exported_actions_are_served() {
    let w = served().await;
    web_action(&w, "res_ok", Some(json!({"ok": true})), json!([])).await;
    web_action(
        &w,
        "res_hidden",
        Some(json!({})),
        json!([{"key": "web-export", "value": false}]),
    )
    .await;
    web_action(
        &w,
        "res_string",
        Some(json!({})),
        json!([{"key": "web-export", "value": "true"}]),
    )
    .await;
    for path in [
        "guest/default/res_hidden.json",
        "guest/default/res_string.json",
        "guest/default/missing.json",
        "guest/nopkg/res_ok.json",
        "nobody/default/res_ok.json",
        "guest/default/res_ok.xyz",
        "guest/default/res_ok.xyz/content",
    ] {
        for m in [Method::GET, Method::POST, Method::OPTIONS] {
            let r = send(
                &w,
                req(m.clone(), &format!("/api/v1/web/{path}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            r.assert_error(StatusCode::NOT_FOUND, NOT_FOUND);
        }
    }
    for path in [
        "/api/v1/web",
        "/api/v1/web/",
        "/api/v1/web/a",
        "/api/v1/web/guest/default",
        "/api/v1/web/guest//res_ok",
    ] {
        let r = get_web(&w, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = send(
        &w,
        req(Method::TRACE, &format!("{WEB}/res_ok.json"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        get_web(&w, &format!("{WEB}/res_ok.json")).await.json(),
        json!({"ok": true})
    );
}

#[tokio::test]
async fn published_packages_of_other_namespaces_serve_through_bindings_and_private_ones_do_not() {
    let w = served().await;
    let as_other = |uri: &str, body: Value| {
        call(
            &w.e.router,
            request(Method::PUT, uri, Some(OTHER), Some(body)),
        )
    };
    let exported = json!({"exec": {"kind": "nodejs:default", "code": "x"},
        "annotations": [web_export()],
        "parameters": [{"key": "res", "value": {"from": "other"}}]});
    for (uri, body) in [
        (
            "/api/v1/namespaces/_/packages/pub",
            json!({"publish": true}),
        ),
        ("/api/v1/namespaces/_/packages/priv", json!({})),
        (
            "/api/v1/namespaces/_/actions/pub/res_tool",
            exported.clone(),
        ),
        ("/api/v1/namespaces/_/actions/priv/res_tool", exported),
    ] {
        let r = as_other(uri, body).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
    }
    // Other's own URL serves it to anyone (it runs as other).
    let r = get_web(&w, "/api/v1/web/other/pub/res_tool.json").await;
    assert_eq!(r.json(), json!({"from": "other"}));
    let r = get_web(&w, "/api/v1/web/other/priv/res_tool.json").await;
    assert_eq!(
        r.json(),
        json!({"from": "other"}),
        "the owner's own private package"
    );
    // Guest binds the published package: guest's URL serves it, as guest.
    let r = put(
        &w.e.router,
        "/api/v1/namespaces/_/packages/bound",
        json!({"binding": {"namespace": "other", "name": "pub"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get_web(&w, "/api/v1/web/guest/bound/res_tool.json").await;
    assert_eq!(r.json(), json!({"from": "other"}));
    let id = r.header("x-openwhisk-activation-id").unwrap().to_string();
    let a = get(&w.e.router, &format!("{ACTIVATIONS}/{id}")).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "the binding's owner owns the record"
    );
    // Once other makes the package private, the binding answers as a missing action.
    let r = as_other(
        "/api/v1/namespaces/_/packages/pub?overwrite=true",
        json!({"publish": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    get_web(&w, "/api/v1/web/guest/bound/res_tool.json")
        .await
        .assert_error(StatusCode::NOT_FOUND, NOT_FOUND);
    get_web(&w, "/api/v1/web/guest/bound/res_nothing.json")
        .await
        .assert_error(StatusCode::NOT_FOUND, NOT_FOUND);
}

#[tokio::test]
async fn require_whisk_auth_takes_credentials_or_a_secret() {
    let w = served().await;
    web_action(
        &w,
        "echo_auth",
        None,
        json!([{"key": "require-whisk-auth", "value": true}]),
    )
    .await;
    web_action(
        &w,
        "echo_secret",
        None,
        json!([{"key": "require-whisk-auth", "value": "s3cret"}]),
    )
    .await;
    web_action(
        &w,
        "echo_num",
        None,
        json!([{"key": "require-whisk-auth", "value": 1234}]),
    )
    .await;
    let unauthorized = "Authentication is possible but has failed or not yet been provided.";
    let with = |uri: String, h: Option<(&'static str, String)>, m: Method| {
        let mut b = req(m, &uri);
        if let Some((k, v)) = h {
            b = b.header(k, v);
        }
        b.body(Body::empty()).unwrap()
    };
    send(&w, with(format!("{WEB}/echo_auth.json"), None, Method::GET))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, unauthorized);
    let r = send(
        &w,
        with(
            format!("{WEB}/echo_auth.json"),
            Some(("authorization", basic(OTHER))),
            Method::GET,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["__ow_user"], "other", "any valid platform key");
    // OPTIONS is answered without authentication.
    let r = send(
        &w,
        with(format!("{WEB}/echo_auth.json"), None, Method::OPTIONS),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    for (uri, secret) in [("echo_secret", "s3cret"), ("echo_num", "1234")] {
        let uri = format!("{WEB}/{uri}.json");
        send(&w, with(uri.clone(), None, Method::GET))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, unauthorized);
        send(
            &w,
            with(
                uri.clone(),
                Some(("x-require-whisk-auth", format!("{secret}-bad"))),
                Method::GET,
            ),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, unauthorized);
        send(
            &w,
            with(
                uri.clone(),
                Some(("authorization", basic(GUEST))),
                Method::GET,
            ),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, unauthorized);
        let r = send(
            &w,
            with(
                uri,
                Some(("x-require-whisk-auth", secret.to_string())),
                Method::POST,
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["__ow_headers"]["x-require-whisk-auth"], secret);
    }
}

#[tokio::test]
async fn cors_headers_and_options_are_answered_unless_the_action_does() {
    let w = served().await;
    web_action(&w, "res_ok", Some(json!({"body": "ok"})), json!([])).await;
    // A developer error proves the platform answered OPTIONS without running the action.
    web_action(&w, "deverr_opts", None, json!([])).await;
    web_action(
        &w,
        "res_custom",
        Some(json!({"headers": {"Access-Control-Allow-Methods": "OPTIONS, GET, PATCH"}})),
        json!([{"key": "web-custom-options", "value": true}, {"key": "require-whisk-auth", "value": true}]),
    )
    .await;
    let r = get_web(&w, &format!("{WEB}/res_ok")).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent")
    );
    let r = send(
        &w,
        req(Method::OPTIONS, &format!("{WEB}/deverr_opts.json"))
            .header("access-control-request-headers", "x-mine")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.header("access-control-allow-headers"), Some("x-mine"));
    assert!(r.header("x-openwhisk-activation-id").is_none());
    // web-custom-options: OPTIONS runs the action (even without the required credentials)
    // and only its headers are sent.
    let r = send(
        &w,
        req(Method::OPTIONS, &format!("{WEB}/res_custom"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("OPTIONS, GET, PATCH")
    );
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(r.header("x-openwhisk-activation-id").is_some());
    send(
        &w,
        req(Method::GET, &format!("{WEB}/res_custom"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .assert_error(
        StatusCode::UNAUTHORIZED,
        "Authentication is possible but has failed or not yet been provided.",
    );
}

#[tokio::test]
async fn application_and_developer_errors() {
    let w = served().await;
    web_action(
        &w,
        "apperr_http",
        Some(json!({"statusCode": 418, "body": "teapot"})),
        json!([]),
    )
    .await;
    web_action(&w, "apperr_text", Some(json!("plain error")), json!([])).await;
    web_action(&w, "deverr", None, json!([])).await;
    let r = get_web(&w, &format!("{WEB}/apperr_http")).await;
    assert_eq!((r.status.as_u16(), text(&r)), (418, "teapot".into()));
    let r = get_web(&w, &format!("{WEB}/apperr_text.json")).await;
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "Response is not valid 'application/json'.",
    );
    let r = get_web(&w, &format!("{WEB}/apperr_text.text")).await;
    assert_eq!((r.status, text(&r)), (StatusCode::OK, "plain error".into()));
    for ext in ["json", "http", "text"] {
        let r = get_web(&w, &format!("{WEB}/deverr.{ext}")).await;
        r.assert_error(StatusCode::BAD_REQUEST, PROCESSING);
        assert!(r.header("x-openwhisk-activation-id").is_some());
    }
}

#[tokio::test]
async fn accept_headers_that_refuse_the_answer_get_406() {
    let w = served().await;
    web_action(
        &w,
        "res_plain",
        Some(json!({"body": "Plain text"})),
        json!([]),
    )
    .await;
    let r = send(
        &w,
        req(Method::GET, &format!("{WEB}/res_plain.http"))
            .header("accept", "application/json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        text(&r),
        "Resource representation is only available with these types:\ntext/html; charset=UTF-8"
    );
    let r = send(
        &w,
        req(Method::GET, &format!("{WEB}/res_plain.http"))
            .header("accept", "text/*")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn large_bodies_are_refused_with_413() {
    let mut limits = SystemLimits::default();
    limits.max_payload_bytes = 1000;
    let w = served_with(ControllerConfig::default().with_limits(limits)).await;
    web_action(&w, "echo", None, json!([])).await;
    let big = format!("{{\"a\":\"{}\"}}", "a".repeat(1000));
    let n = big.len();
    let r = send(
        &w,
        req(Method::POST, &format!("{WEB}/echo.json"))
            .header("content-type", "application/json")
            .header("content-length", n)
            .body(Body::from(big))
            .unwrap(),
    )
    .await;
    r.assert_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Request larger than allowed: {n} > 1000 bytes."),
    );
    // Without a declared length the body is still counted.
    let r = send(
        &w,
        req(Method::POST, &format!("{WEB}/echo.json"))
            .header("content-type", "text/plain")
            .body(Body::from_stream(futures::stream::iter((0..3).map(|_| {
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 600]))
            }))))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn past_the_blocking_wait_the_answer_is_202_with_the_activation_id() {
    let mut limits = SystemLimits::default();
    limits.max_blocking_wait_ms = 200;
    let e = env_with(ControllerConfig::default().with_limits(limits)).await;
    // An invoker that takes the work and never answers.
    let silent = FakeInvoker::start(&e).await;
    with_action(&e, "slow", json!({"annotations": [web_export()]})).await;
    let r = within(
        "web call",
        call(
            &e.router,
            Request::get(format!("{WEB}/slow.json"))
                .body(Body::empty())
                .unwrap(),
        ),
    )
    .await;
    r.assert_error(StatusCode::ACCEPTED, "Response not yet ready.");
    let id = r
        .header("x-openwhisk-activation-id")
        .expect("activation id");
    let msg = silent.next().await;
    assert_eq!(msg.activation_id.as_str(), id);
}
