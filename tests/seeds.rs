//! The flows of the services davit replaces that needed something new: a downloader's
//! download URL (re-share), sign-in by a mailed code alone, and the one-click verification
//! link. The whole flows, with curl and real SMTP, are `conformance/seeds/run.sh`.

use davit_storage::Role;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::smtp::Smtp;
use crate::support::{self, Options, PASSWORD, TestServer};

async fn api(c: &Client, s: &TestServer, method: &str, path: &str, user: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = c.request(method.parse().unwrap(), s.url(path)).basic_auth(user, Some(PASSWORD));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

async fn post(c: &Client, s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let resp = c.post(s.url(path)).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

async fn fetch(c: &Client, url: &str) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn people() -> Vec<(&'static str, Role)> {
    vec![("admin", Role::Admin), ("ops", Role::Uploader), ("bob", Role::User), ("client", Role::Downloader)]
}

#[tokio::test]
async fn a_grantee_makes_download_links_only_when_the_grant_allows_and_they_end_with_it() {
    let s = support::start(Options { users: people(), ..Default::default() }).await;
    let c = support::client();
    let r = c.put(s.url("/api/v1/files/plan.docx")).basic_auth("ops", Some(PASSWORD)).body("the plan");
    assert_eq!(r.send().await.unwrap().status(), StatusCode::CREATED);
    let share = json!({ "path": "/plan.docx", "user": "client" });
    let (st, to_client) = api(&c, &s, "POST", "/api/v1/shares", "ops", Some(share)).await;
    assert_eq!((st, &to_client["reshare"]), (201, &json!(true)), "a downloader's grant allows links: {to_client}");
    let past = json!({ "path": "/plan.docx", "user": "bob", "expires_at": "2020-01-01T00:00:00Z" });
    assert_eq!(api(&c, &s, "POST", "/api/v1/shares", "ops", Some(past)).await.0, 400, "a grant ends in the future");
    let to_bob = json!({ "path": "/plan.docx", "user": "bob", "expires_in": 3600 });
    let (st, to_bob) = api(&c, &s, "POST", "/api/v1/shares", "ops", Some(to_bob)).await;
    assert_eq!((st, &to_bob["reshare"]), (201, &json!(false)), "off unless the owner gives it");
    assert!(to_bob["expires_at"].is_string() && to_bob["expired"] == json!(false), "{to_bob}");
    assert!(to_client["expires_at"].is_null(), "no end unless given");

    // The client asks for a download URL of the shared file; anyone holding it downloads.
    let link = json!({ "path": "/shared/ops/plan.docx", "expires_in": 600 });
    let (st, made) = api(&c, &s, "POST", "/api/v1/links", "client", Some(link.clone())).await;
    assert_eq!(st, 201, "{made}");
    let url = made["url"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&c, &url).await, (200, "the plan".into()));
    let upload = json!({ "path": "/shared/ops/plan.docx", "permission": "upload" });
    assert_eq!(api(&c, &s, "POST", "/api/v1/links", "client", Some(upload)).await.0, 403);
    // Bob's grant does not allow it until the owner says so.
    let (st, v) = api(&c, &s, "POST", "/api/v1/links", "bob", Some(link.clone())).await;
    assert_eq!((st, v["code"].as_str()), (403, Some("forbidden")));
    let bob_share = format!("/api/v1/shares/{}", to_bob["id"]);
    let (st, v) = api(&c, &s, "PATCH", &bob_share, "ops", Some(json!({ "reshare": true }))).await;
    assert_eq!((st, &v["reshare"], &v["permission"]), (200, &json!(true), &json!("read")), "{v}");
    let (st, bobs) = api(&c, &s, "POST", "/api/v1/links", "bob", Some(link)).await;
    assert_eq!(st, 201, "{bobs}");

    // The owner lists both, with their makers; each maker lists their own.
    let (_, mine) = api(&c, &s, "GET", "/api/v1/links", "ops", None).await;
    let makers: Vec<&str> = mine["links"].as_array().unwrap().iter().map(|l| l["made_by"].as_str().unwrap()).collect();
    assert_eq!(makers, ["client", "bob"]);
    assert_eq!(mine["links"][0]["path"], "/plan.docx");
    let (_, theirs) = api(&c, &s, "GET", "/api/v1/links", "client", None).await;
    assert_eq!(theirs["links"][0]["path"], "/shared/ops/plan.docx");
    assert_eq!(theirs["links"].as_array().unwrap().len(), 1);

    // Narrowing the client's grant ends its link at once; revoking bob's grant ends his.
    let client_share = format!("/api/v1/shares/{}", to_client["id"]);
    assert_eq!(api(&c, &s, "PATCH", &client_share, "ops", Some(json!({ "reshare": false }))).await.0, 200);
    assert_eq!(fetch(&c, &url).await.0, 410);
    let bob_url = bobs["url"].as_str().unwrap();
    assert_eq!(fetch(&c, bob_url).await.0, 200);
    assert_eq!(api(&c, &s, "DELETE", &bob_share, "ops", None).await.0, 204);
    assert_eq!(fetch(&c, bob_url).await.0, 410);
    let (_, mine) = api(&c, &s, "GET", "/api/v1/links", "ops", None).await;
    let states: Vec<&str> = mine["links"].as_array().unwrap().iter().map(|l| l["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["revoked", "revoked"]);
    s.stop().await;
}

// Multi-threaded: codes are mailed in the background while this test waits for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_code_alone_signs_in_and_tells_nothing_about_accounts() {
    let smtp = Smtp::start();
    let s = support::start(Options { smtp_url: Some(smtp.url()), ..Default::default() }).await;
    let c = support::client();
    let (st1, v1) = post(&c, &s, "/api/v1/auth/login/code", json!({ "email": "alice@example.test" })).await;
    let (st2, v2) = post(&c, &s, "/api/v1/auth/login/code", json!({ "email": "nobody@example.test" })).await;
    let (st3, v3) = post(&c, &s, "/api/v1/auth/login/code", json!({ "username": "nobody" })).await;
    assert_eq!(st1, 202, "{v1}");
    assert_eq!([(st1, &v1), (st1, &v1)], [(st2, &v2), (st3, &v3)], "the same answer for unknown names");
    let code = smtp.code("alice@example.test", 1).await;
    assert!(smtp.wait_message("alice@example.test", 1).await.contains("sign-in code"));
    let (st, v) = post(&c, &s, "/api/v1/auth/login/otp", json!({ "username": "alice", "code": "000000" })).await;
    assert_eq!((st, v["code"].as_str()), (400, Some("invalid_code")));
    let (st, v) = post(&c, &s, "/api/v1/auth/login/otp", json!({ "username": "alice", "code": code })).await;
    assert_eq!(st, 200, "{v}");
    let t = v["access_token"].as_str().unwrap();
    let r = c.get(s.url("/api/v1/me")).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["username"], "alice");
    let (st, _) = post(&c, &s, "/api/v1/auth/login/otp", json!({ "username": "alice", "code": code })).await;
    assert_eq!(st, 400, "single use");
    // Nothing was mailed for the unknown names.
    assert!(smtp.messages_to("nobody@example.test").is_empty());
    s.stop().await;

    let s = support::start(Options {
        smtp_url: Some(smtp.url()),
        configure: |c| c.login_by_code = false,
        ..Default::default()
    })
    .await;
    let (st, v) = post(&c, &s, "/api/v1/auth/login/code", json!({ "username": "alice" })).await;
    assert_eq!((st, v["code"].as_str()), (403, Some("forbidden")), "{v}");
    s.stop().await;
}

/// The link in a verification mail.
fn link_in(mail: &str) -> String {
    mail.lines()
        .map(str::trim)
        .find(|l| l.contains("/api/v1/auth/verify-link/"))
        .expect("a link in the mail")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailed_link_verifies_only_by_its_page_s_form_from_our_origin() {
    let smtp = Smtp::start();
    let s = support::start(Options { smtp_url: Some(smtp.url()), ..Default::default() }).await;
    let c = support::client();
    let reg = json!({ "username": "erin", "email": "erin@example.test", "password": "erin-password" });
    assert_eq!(post(&c, &s, "/api/v1/auth/register", reg).await.0, 202);
    let mail = smtp.wait_message("erin@example.test", 1).await;
    let link = link_in(&mail);
    assert!(link.starts_with(&s.base), "the link points at this server: {link}");
    let login = json!({ "username": "erin", "password": "erin-password" });

    // A scanner's GET shows the page and changes nothing.
    let r = c.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("form-action 'self'") && !csp.contains("sandbox"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(page.contains("<form method=\"post\"") && page.contains("name=\"confirm\""), "{page}");
    assert_eq!(post(&c, &s, "/api/v1/auth/login", login.clone()).await.0, 403, "still pending");

    let form = |origin: Option<&str>, ct: &str| {
        let mut r = c.post(&link).header("content-type", ct).body("confirm=yes");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r
    };
    let form_type = "application/x-www-form-urlencoded";
    let ours = s.base.clone();
    for (origin, why) in [(None, "no origin"), (Some("https://evil.example"), "another site"), (Some("null"), "null")] {
        let r = form(origin, form_type).send().await.unwrap();
        assert_eq!(r.status(), 403, "{why}");
    }
    assert_eq!(form(Some(&ours), "application/json").send().await.unwrap().status(), 415);
    let r = c.post(&link).header("origin", &ours).header("content-type", form_type).body("confirm=no");
    assert_eq!(r.send().await.unwrap().status(), 400, "the button's value only");
    assert_eq!(post(&c, &s, "/api/v1/auth/login", login.clone()).await.0, 403, "refusals verified nothing");
    let r = form(Some(&ours), form_type).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("is confirmed"));
    assert_eq!(post(&c, &s, "/api/v1/auth/login", login).await.0, 200);
    let r = c.post(&link).header("sec-fetch-site", "same-origin").header("content-type", form_type).body("confirm=yes");
    assert_eq!(r.send().await.unwrap().status(), 400, "single use");
    // The code mailed beside it went with it.
    let code = smtp.code("erin@example.test", 1).await;
    let (st, _) = post(&c, &s, "/api/v1/auth/verify", json!({ "username": "erin", "code": code })).await;
    assert_eq!(st, 400);
    s.stop().await;
}
