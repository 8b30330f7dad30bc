//! The API gateway: routes managed through the URLs the clients call
//! (`/api/v1/web/whisk.system/apimgmt/{createApi,getApi,deleteApi}.http`, with the bodies the
//! `openwhisk` npm client's `routes` sends), stored in the store, and served by the controller
//! at `/api/{namespace}/{basepath}/{relpath}` with verbs, path parameters and response types.
//!
//! A scripted invoker answers by action name: `echo*` returns its arguments, `body*` returns
//! them as `{body: <arguments>}` (an HTTP response), anything else fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::message::ActivationMessage;
use support::*;

const MGMT: &str = "/api/v1/web/whisk.system/apimgmt";

fn respond(msg: &ActivationMessage) -> ActivationResponse {
    let args = msg.content.clone().unwrap_or_else(|| json!({}));
    let name = msg.action.name.as_str();
    if name.starts_with("echo") {
        ActivationResponse::success(args)
    } else if name.starts_with("body") {
        ActivationResponse::success(json!({ "body": args }))
    } else {
        ActivationResponse::developer_error("the action failed")
    }
}

struct Gw {
    e: Env,
    invoker: tokio::task::JoinHandle<()>,
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.invoker.abort();
    }
}

async fn gw() -> Gw {
    let e = env().await;
    let invoker = FakeInvoker::start(&e).await.serve(&e, respond);
    for (name, ann) in [
        ("echo", json!([{"key": "web-export", "value": true}])),
        ("body", json!([{"key": "web-export", "value": true}])),
        (
            "body_secret",
            json!([{"key": "web-export", "value": true}, {"key": "require-whisk-auth", "value": "s3"}]),
        ),
        ("echo_private", json!([])),
    ] {
        with_action(&e, name, json!({ "annotations": ann })).await;
    }
    Gw { e, invoker }
}

/// What the npm client's `routes.create({basepath, relpath, operation, action, name})` sends.
fn route_doc(base: &str, rel: &str, verb: &str, action: &str, name: Option<&str>) -> Value {
    let params: Vec<Value> = rel
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|p| json!({"name": p, "in": "path", "description": "Default description for 'p'", "required": true, "type": "string"}))
        .collect();
    let mut apidoc = json!({
        "namespace": "_",
        "gatewayBasePath": base,
        "gatewayPath": rel,
        "gatewayMethod": verb,
        "id": format!("API:_:{base}"),
        "action": {
            "name": action,
            "namespace": "guest",
            "backendMethod": "GET",
            "backendUrl": format!("http://127.0.0.1:3233/api/v1/web/guest/default/{action}.http"),
            "authkey": GUEST,
        },
    });
    if !params.is_empty() {
        apidoc["pathParameters"] = Value::Array(params);
    }
    if let Some(n) = name {
        apidoc["apiName"] = json!(n);
    }
    json!({ "apidoc": apidoc })
}

async fn mgmt(g: &Gw, method: Method, op: &str, query: &str, body: Option<Value>) -> Reply {
    call(
        &g.e.router,
        request(
            method,
            &format!("{MGMT}/{op}.http?{query}"),
            Some(GUEST),
            body,
        ),
    )
    .await
}

async fn create(g: &Gw, doc: Value, response_type: &str) -> Reply {
    mgmt(
        g,
        Method::POST,
        "createApi",
        &format!("responsetype={response_type}"),
        Some(doc),
    )
    .await
}

async fn hit(g: &Gw, method: Method, uri: &str, body: Option<Value>) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:3233");
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(serde_json::to_vec(&v).unwrap())
        }
        None => Body::empty(),
    };
    call(&g.e.router, b.body(body).unwrap()).await
}

#[tokio::test]
async fn routes_are_created_served_listed_and_deleted() {
    let g = gw().await;
    let r = create(
        &g,
        route_doc("/club", "/books/{isbn}", "get", "body", Some("Book Club")),
        "http",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let api = r.json();
    assert_eq!(api["namespace"], "guest");
    assert_eq!(api["gwApiActivated"], true);
    assert_eq!(api["gwApiUrl"], "http://localhost/api/guest/club");
    assert_eq!(api["apidoc"]["basePath"], "/club");
    assert_eq!(api["apidoc"]["info"]["title"], "Book Club");
    let op = &api["apidoc"]["paths"]["/books/{isbn}"]["get"];
    assert_eq!(op["operationId"], "getBooksIsbn");
    assert_eq!(op["x-openwhisk"]["action"], "body");
    assert_eq!(op["x-openwhisk"]["namespace"], "guest");
    let r = create(
        &g,
        route_doc("/club", "/books", "post", "echo", None),
        "json",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());

    // Served: path parameters reach an http action in __ow_path, with the query and body.
    let r = hit(&g, Method::GET, "/api/guest/club/books/978-3?q=1", None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let args = r.json();
    assert_eq!(args["__ow_path"], "/club/books/978-3");
    assert_eq!(args["__ow_method"], "get");
    assert_eq!(args["q"], "1");
    assert!(r.header("x-openwhisk-activation-id").is_some());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // A json route renders the result itself, with an empty __ow_path.
    let r = hit(
        &g,
        Method::POST,
        "/api/guest/club/books",
        Some(json!({"title": "Dune"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (&r.json()["title"], &r.json()["__ow_path"]),
        (&json!("Dune"), &json!(""))
    );

    // Wrong verb, unknown path, unknown namespace.
    let r = hit(&g, Method::PUT, "/api/guest/club/books/1", None).await;
    r.assert_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET",
    );
    for uri in [
        "/api/guest/club/novels",
        "/api/guest/other",
        "/api/other/club/books/1",
        "/api/nobody/club/books",
    ] {
        hit(&g, Method::GET, uri, None).await.assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    }
    let r = hit(&g, Method::OPTIONS, "/api/guest/club/books/1", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // Listed (all, by base path, by name), as the clients read them.
    for query in ["", "basepath=%2Fclub", "basepath=Book+Club"] {
        let r = mgmt(&g, Method::GET, "getApi", query, None).await;
        assert_eq!(r.status, StatusCode::OK, "{query}");
        let apis = r.json()["apis"].as_array().unwrap().clone();
        assert_eq!(apis.len(), 1, "{query}");
        assert_eq!(
            apis[0]["value"]["gwApiUrl"],
            "http://localhost/api/guest/club"
        );
        let paths = apis[0]["value"]["apidoc"]["paths"].as_object().unwrap();
        assert!(paths["/books/{isbn}"].get("get").is_some());
        assert!(paths["/books"].get("post").is_some());
    }
    let r = mgmt(&g, Method::GET, "getApi", "basepath=%2Fnone", None).await;
    assert_eq!(r.json(), json!({"apis": []}));
    // Another namespace sees none of them.
    let r = call(
        &g.e.router,
        request(
            Method::GET,
            &format!("{MGMT}/getApi.http"),
            Some(OTHER),
            None,
        ),
    )
    .await;
    assert_eq!(r.json(), json!({"apis": []}));

    // Deleted: one operation, then the API.
    let r = mgmt(
        &g,
        Method::DELETE,
        "deleteApi",
        "basepath=%2Fclub&relpath=%2Fbooks&operation=post&force=true",
        None,
    )
    .await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    let r = hit(&g, Method::POST, "/api/guest/club/books", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        hit(&g, Method::GET, "/api/guest/club/books/1", None)
            .await
            .status,
        StatusCode::OK
    );
    let r = mgmt(&g, Method::DELETE, "deleteApi", "basepath=%2Fclub", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        hit(&g, Method::GET, "/api/guest/club/books/1", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = mgmt(&g, Method::GET, "getApi", "", None).await;
    assert_eq!(r.json(), json!({"apis": []}));
    let r = mgmt(&g, Method::DELETE, "deleteApi", "basepath=%2Fclub", None).await;
    r.assert_error(
        StatusCode::NOT_FOUND,
        "API deletion failure: API '/club' does not exist.",
    );
}

#[tokio::test]
async fn management_needs_credentials_and_good_input() {
    let g = gw().await;
    let r = call(
        &g.e.router,
        request(
            Method::POST,
            &format!("{MGMT}/createApi.http"),
            None,
            Some(route_doc("/a", "/b", "get", "echo", None)),
        ),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "A valid auth key is required.");
    let r = call(
        &g.e.router,
        request(Method::GET, &format!("{MGMT}/getApi.http"), None, None),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "Invalid authentication.");
    let r = mgmt(&g, Method::GET, "nothing", "", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    for (doc, rt, message) in [
        (json!({}), "json", "apidoc is required."),
        (
            json!({"apidoc": {"gatewayBasePath": "/a"}}),
            "json",
            "apidoc is missing the namespace field",
        ),
        (
            route_doc("/a", "/b", "fetch", "echo", None),
            "json",
            "'fetch' is not a valid API verb. Valid values are: GET, PUT, POST, DELETE, PATCH, HEAD, OPTIONS",
        ),
        (
            route_doc("/a", "/b", "get", "echo", None),
            "xml",
            "'xml' is not a valid response type. Valid values are: http, json, html, text, svg",
        ),
        (
            route_doc("/a", "/b", "get", "echo_private", None),
            "json",
            "API creation failure: the action '/guest/echo_private' of operation 'get /b' does not exist or is not a web action.",
        ),
        (
            route_doc("/a", "/b", "get", "missing", None),
            "json",
            "API creation failure: the action '/guest/missing' of operation 'get /b' does not exist or is not a web action.",
        ),
        (
            route_doc("/a", "/b/{id}", "get", "echo", None),
            "json",
            "API creation failure: operation 'get /b/{id}': The action must use a response type of '.http' in order to receive the path parameters.",
        ),
        (
            route_doc("/a/{x}", "/b", "get", "echo", None),
            "json",
            "The base path (/a/{x}) cannot have parameters. Only the relative path supports path parameters.",
        ),
        (
            route_doc("/a", "b", "get", "echo", None),
            "json",
            "The path 'b' must begin with '/'.",
        ),
    ] {
        create(&g, doc, rt)
            .await
            .assert_error(StatusCode::BAD_REQUEST, message);
    }
    // A route another API serves already.
    assert_eq!(
        create(&g, route_doc("/a", "/b/{id}", "get", "echo", None), "http")
            .await
            .status,
        StatusCode::OK
    );
    let r = create(
        &g,
        route_doc("/", "/a/b/{isbn}", "get", "echo", None),
        "http",
    )
    .await;
    r.assert_error(
        StatusCode::CONFLICT,
        "API creation failure: GET /a/b/{isbn} is already served by the API '/a' (path '/b/{id}').",
    );
}

#[tokio::test]
async fn routes_follow_the_rules_of_web_actions() {
    let g = gw().await;
    // A require-whisk-auth secret given at creation is presented by the route.
    let mut doc = route_doc("/s", "/x", "get", "body_secret", None);
    doc["apidoc"]["action"]["secureKey"] = json!("s3");
    assert_eq!(create(&g, doc, "http").await.status, StatusCode::OK);
    let r = hit(&g, Method::GET, "/api/guest/s/x", None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["__ow_headers"].get("x-require-whisk-auth"), None);
    // Without the secret the action refuses the route's callers.
    assert_eq!(
        create(
            &g,
            route_doc("/s", "/y", "get", "body_secret", None),
            "http"
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = hit(&g, Method::GET, "/api/guest/s/y", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // An action no longer exported answers as missing.
    assert_eq!(
        create(&g, route_doc("/t", "/x", "get", "echo", None), "json")
            .await
            .status,
        StatusCode::OK
    );
    let r = put(
        &g.e.router,
        &format!("{ACTIONS}/echo?overwrite=true"),
        json!({"exec": {"kind": "nodejs:default", "code": "x"},
               "annotations": [{"key": "web-export", "value": false}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    hit(&g, Method::GET, "/api/guest/t/x", None)
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
    // Another namespace's exported action is public at its web URL, so a route may name it
    // (it runs as its owner; the route adds nothing a caller could not do with the URL).
    let other = |uri: &str, body: Value| {
        call(
            &g.e.router,
            request(Method::PUT, uri, Some(OTHER), Some(body)),
        )
    };
    let exported = json!({"exec": {"kind": "nodejs:default", "code": "x"}, "annotations": [{"key": "web-export", "value": true}]});
    assert_eq!(
        other("/api/v1/namespaces/_/packages/priv", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        other("/api/v1/namespaces/_/actions/priv/echo", exported.clone())
            .await
            .status,
        StatusCode::OK
    );
    let mut doc = route_doc("/o", "/x", "get", "priv/echo", None);
    doc["apidoc"]["action"]["namespace"] = json!("other");
    let r = create(&g, doc.clone(), "json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(
        hit(&g, Method::GET, "/api/guest/o/x", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn swagger_documents_are_imported_or_refused_with_reasons() {
    let g = gw().await;
    let swagger = json!({
        "swagger": "2.0",
        "info": {"title": "Imported", "version": "1.0.0"},
        "basePath": "/imp",
        "paths": {
            "/items/{id}": {"get": {
                "operationId": "getItem",
                "parameters": [{"name": "id", "in": "path", "required": true, "type": "string"}],
                "x-openwhisk": {"namespace": "_", "package": "", "action": "body",
                                "url": "http://h/api/v1/web/_/default/body.http"},
                "responses": {"default": {"description": "ok"}}
            }},
            "/list": {"get": {"operationId": "getList", "responses": {}}}
        },
        "x-ibm-configuration": {"assembly": {"execute": [{"operation-switch": {"case": [
            {"operations": ["getList"], "execute": [{"invoke": {"target-url": "http://h/api/v1/web/guest/default/echo.json", "verb": "keep"}}]}
        ]}}]}}
    });
    let r = create(
        &g,
        json!({"apidoc": {"namespace": "_", "swagger": swagger}}),
        "json",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let r = hit(&g, Method::GET, "/api/guest/imp/items/7", None).await;
    assert_eq!(r.json()["__ow_path"], "/imp/items/7");
    let r = hit(&g, Method::GET, "/api/guest/imp/list?x=y", None).await;
    assert_eq!(r.json()["x"], "y");
    // The stored document names the action of the operation that had only a target-url.
    let r = mgmt(&g, Method::GET, "getApi", "basepath=%2Fimp", None).await;
    assert_eq!(
        r.json()["apis"][0]["value"]["apidoc"]["paths"]["/list"]["get"]["x-openwhisk"]["action"],
        "echo"
    );

    let refused = json!({
        "swagger": "2.0", "info": {"title": "x", "version": "1"}, "basePath": "/bad",
        "securityDefinitions": {"key": {"type": "apiKey"}},
        "paths": {"/a": {"get": {"operationId": "getA"}}},
        "x-ibm-configuration": {"assembly": {"execute": [{"operation-switch": {"case": [
            {"operations": ["getA"], "execute": [{"invoke": {"target-url": "https://backend.invalid/a"}}]}
        ]}}]}}
    });
    let r = create(
        &g,
        json!({"apidoc": {"namespace": "_", "swagger": refused}}),
        "json",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.error();
    assert!(e.starts_with("API creation failure: the swagger document has parts this platform's API gateway does not support:"), "{e}");
    assert!(e.contains("'securityDefinitions' is not supported"), "{e}");
    assert!(e.contains("other backends are not supported"), "{e}");
    // CORS turned off for an API: no CORS headers of the platform's.
    let closed = json!({
        "swagger": "2.0", "info": {"title": "closed", "version": "1"}, "basePath": "/closed",
        "paths": {"/a": {"get": {"operationId": "getA",
            "x-openwhisk": {"namespace": "_", "package": "", "action": "echo", "url": "http://h/api/v1/web/_/default/echo.json"}}}},
        "x-ibm-configuration": {"cors": {"enabled": false}}
    });
    let r = create(
        &g,
        json!({"apidoc": {"namespace": "_", "swagger": closed}}),
        "json",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let r = hit(&g, Method::GET, "/api/guest/closed/a", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("access-control-allow-origin").is_none());
    let r = hit(&g, Method::OPTIONS, "/api/guest/closed/a", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        hit(&g, Method::GET, "/api/guest/imp/list", None)
            .await
            .header("access-control-allow-origin"),
        Some("*")
    );
    let r = create(
        &g,
        json!({"apidoc": {"namespace": "_", "swagger": "{not json"}}),
        "json",
    )
    .await;
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "swagger field cannot be parsed. Ensure it is valid JSON.",
    );
    assert_eq!(
        mgmt(&g, Method::GET, "getApi", "basepath=%2Fbad", None)
            .await
            .json(),
        json!({"apis": []})
    );
}
