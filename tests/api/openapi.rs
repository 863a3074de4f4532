//! The OpenAPI document: every route in it, bodies described by schemas derived from the
//! Rust types, and the check every REST answer of the tests passes through.

use serde_json::{Value, json};

use super::{get, token};
use crate::support::{self, Options};

#[tokio::test]
async fn openapi_documents_every_route() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let doc: Value = c.get(s.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, davit_api::openapi(), "the tests check answers against the document the server serves");
    // Bodies are described by schemas derived from the Rust types.
    let login = &doc["paths"]["/api/v1/auth/login"]["post"];
    assert_eq!(login["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/LoginReq");
    assert_eq!(
        login["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/LoginAnswer"
    );
    let user = &doc["components"]["schemas"]["UserJson"];
    assert_eq!(user["properties"]["id"]["type"], "integer");
    assert!(user["required"].as_array().unwrap().contains(&json!("username")));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/register",
        "/api/v1/auth/verify",
        "/api/v1/auth/resend",
        "/api/v1/auth/login",
        "/api/v1/auth/login/otp",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/password-reset",
        "/api/v1/auth/password-reset/confirm",
        "/api/v1/me",
        "/api/v1/me/app-passwords",
        "/api/v1/me/keys",
        "/api/v1/files/{path}",
        "/api/v1/admin/users",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    // Every documented operation is served (not the router's fallback).
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let url =
                s.url(&path.replace("{path}", "x").replace("{id}", "1").replace("{key}", "k").replace("{ap}", "1"));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = c.request(m, &url).send().await.unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert!(status != 405 && !body.contains("no such API endpoint"), "{method} {path}: {status} {body}");
        }
    }
    s.stop().await;
}

/// The check every REST answer of these tests passes through (tests/support/openapi.rs)
/// refuses answers that disagree with their schema: directly, on deliberately wrong bodies,
/// and at a server whose document was made to disagree with what it answers.
#[tokio::test]
async fn answers_that_disagree_with_their_schema_are_caught() {
    use crate::support::openapi::OpenApiCheck;
    let s = support::start(Options::default()).await;
    let c = support::client();
    let t = token(&c, &s, "alice").await;
    let (status, me) = get(&c, &s, "/api/v1/me", &t).await;
    assert_eq!(status, 200);
    let doc: Value = c.get(s.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let check = OpenApiCheck::new(doc.clone());
    let json_of = |v: &Value| serde_json::to_vec(v).unwrap();
    let ct = Some("application/json");
    assert_eq!(check.check("GET", "/api/v1/me", 200, ct, false, &json_of(&me)), Ok(true), "the real answer passes");
    let wrong: Vec<(&str, Value)> = vec![
        ("an id that is a string", {
            let mut v = me.clone();
            v["id"] = json!("1");
            v
        }),
        ("a required field missing", {
            let mut v = me.clone();
            v.as_object_mut().unwrap().remove("username");
            v
        }),
        ("an undocumented field", {
            let mut v = me.clone();
            v["password_hash"] = json!("$argon2id$…");
            v
        }),
        ("a role the schema does not list", {
            let mut v = me.clone();
            v["role"] = json!("root");
            v
        }),
        ("a quota below zero", {
            let mut v = me.clone();
            v["quota"] = json!(-1);
            v
        }),
    ];
    for (what, body) in &wrong {
        let r = check.check("GET", "/api/v1/me", 200, ct, false, &json_of(body));
        assert!(r.is_err(), "{what} passed the check: {body}");
    }
    assert!(check.check("GET", "/api/v1/me", 200, ct, false, b"{not json").is_err());
    assert!(check.check("GET", "/api/v1/me", 201, ct, false, &json_of(&me)).is_err(), "a status not documented");
    assert!(
        check.check("GET", "/api/v1/me", 200, Some("text/html"), false, b"<p>").is_err(),
        "a media type not documented"
    );
    assert_eq!(check.check("DELETE", "/api/v1/me/keys/k", 204, None, false, b""), Ok(false));
    assert!(check.check("POST", "/api/v1/mkdir", 201, ct, false, b"").is_err(), "no body where JSON is documented");
    let problem =
        json!({ "type": "https://davit.dev/problems/not_found", "title": "Not Found", "status": 404, "detail": "x" });
    let pt = Some("application/problem+json");
    assert!(
        check.check("GET", "/api/v1/me", 404, pt, false, &json_of(&problem)).is_err(),
        "a problem without its code"
    );
    let mut problem = problem;
    problem["code"] = json!("not_found");
    assert_eq!(check.check("GET", "/api/v1/me", 404, pt, false, &json_of(&problem)), Ok(true));
    assert_eq!(check.check("GET", "/api/v1/nothing/here", 404, pt, false, &json_of(&problem)), Ok(true));
    // Requests the server accepted are checked against the request schemas.
    assert_eq!(check.check_request("POST", "/api/v1/mkdir", br#"{"path":"/docs"}"#), Ok(true));
    assert!(check.check_request("POST", "/api/v1/mkdir", br#"{"path":5}"#).is_err());
    assert!(check.check_request("POST", "/api/v1/mkdir", br#"{"path":"/d","mode":1}"#).is_err());
    assert_eq!(check.check_request("POST", "/api/v1/me/keys", b"{}"), Ok(false), "no body documented: ignored");
    // A file's bytes, even of a JSON file, are the file's: not checked against a schema.
    assert_eq!(check.check("GET", "/api/v1/files/a/b.json", 200, ct, true, b"[1]"), Ok(false));
    s.stop().await;

    // The same through the layer: a document that wants a field the server does not send.
    let mut doc = doc;
    doc["components"]["schemas"]["UserJson"]["required"].as_array_mut().unwrap().push(json!("nickname"));
    let s = support::start(Options { openapi: Some(doc), ..Default::default() }).await;
    let t = token(&c, &s, "alice").await;
    let (status, _) = get(&c, &s, "/api/v1/me", &t).await;
    assert_eq!(status, 200, "the check reports; it does not change the answer");
    let failures = s.openapi.take_failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("GET /api/v1/me") && failures[0].contains("nickname"), "{failures:?}");
    s.stop().await;
}
