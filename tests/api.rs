//! The REST API over real HTTP: accounts with mailed codes over real SMTP, tokens, second
//! factor, app passwords, keys, admin, roles and policy, JSON refusals, OpenAPI.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::smtp::Smtp;
use crate::support::{self, Options, PASSWORD, TestServer};

mod openapi;

async fn post(c: &Client, s: &TestServer, path: &str, body: Value, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut r = c.post(s.url(path)).json(&body);
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(c: &Client, s: &TestServer, path: &str, bearer: &str) -> (StatusCode, Value) {
    let resp = c.get(s.url(path)).bearer_auth(bearer).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn login(c: &Client, s: &TestServer, user: &str, password: &str) -> Value {
    let (status, v) = post(c, s, "/api/v1/auth/login", json!({ "username": user, "password": password }), None).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn token(c: &Client, s: &TestServer, user: &str) -> String {
    login(c, s, user, PASSWORD).await["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn register_verify_login_upload_then_admin_deletes_the_user() {
    let smtp = Smtp::start();
    let s = support::start(Options { smtp_url: Some(smtp.url()), ..Default::default() }).await;
    let c = support::client();
    let (status, v) = post(
        &c,
        &s,
        "/api/v1/auth/register",
        json!({ "username": "carol", "email": "carol@example.test", "password": "carol-password" }),
        None,
    )
    .await;
    assert_eq!(status, 202, "{v}");
    // The account exists once its code is mailed; pending accounts cannot sign in.
    let code = smtp.code("carol@example.test", 1).await;
    let (status, _) =
        post(&c, &s, "/api/v1/auth/login", json!({ "username": "carol", "password": "carol-password" }), None).await;
    assert_eq!(status, 403);
    let (status, v) =
        post(&c, &s, "/api/v1/auth/verify", json!({ "email": "carol@example.test", "code": code }), None).await;
    assert_eq!(status, 200, "{v}");
    // Single use.
    let (status, v) = post(&c, &s, "/api/v1/auth/verify", json!({ "username": "carol", "code": code }), None).await;
    assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_code")));

    let tokens = login(&c, &s, "carol@example.test", "carol-password").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_u64().unwrap() > 60);
    let t = tokens["access_token"].as_str().unwrap().to_owned();
    let data = support::pseudo_random(3 * 1024 * 1024, 42);
    let r = c.put(s.url("/api/v1/files/report.pdf")).bearer_auth(&t).body(data.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let (_, list) = get(&c, &s, "/api/v1/files", &t).await;
    assert_eq!(list["items"][0]["name"], "report.pdf");
    let r = c.get(s.url("/api/v1/files/report.pdf")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), data);
    let (status, ap) = post(&c, &s, "/api/v1/me/app-passwords", json!({ "name": "laptop" }), Some(&t)).await;
    assert_eq!(status, 201);
    let app_pw = ap["password"].as_str().unwrap().to_owned();
    let r = c.get(s.url("/api/v1/me")).basic_auth("carol", Some(&app_pw)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Bob holds the same content.
    let bob = token(&c, &s, "bob").await;
    c.put(s.url("/api/v1/files/same.pdf")).bearer_auth(&bob).body(data.clone()).send().await.unwrap();

    let admin = token(&c, &s, "admin").await;
    let (_, me) = get(&c, &s, "/api/v1/me", &t).await;
    let carol_id = me["id"].as_u64().unwrap();
    let r = c.delete(s.url(&format!("/api/v1/admin/users/{carol_id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (status, _) = get(&c, &s, "/api/v1/me", &t).await;
    assert_eq!(status, 401, "the deleted user's token fails at once");
    let r = c.get(s.url("/api/v1/me")).basic_auth("carol", Some(&app_pw)).send().await.unwrap();
    assert_eq!(r.status(), 401, "and so does the app password");
    let (status, _) = get(&c, &s, &format!("/api/v1/admin/users/{carol_id}"), &admin).await;
    assert_eq!(status, 404);
    let r = c.get(s.url("/api/v1/files/same.pdf")).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), data, "shared content survives in another drive");
    let report = s.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    s.stop().await;
}

// Multi-threaded: reset and resend mail in the background, while this test blocks in
// `Smtp::wait_message`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_reset_do_not_reveal_accounts() {
    let smtp = Smtp::start();
    let s = support::start(Options { smtp_url: Some(smtp.url()), ..Default::default() }).await;
    let c = support::client();
    let (st1, v1) = post(
        &c,
        &s,
        "/api/v1/auth/register",
        json!({ "username": "dave", "email": "dave@example.test", "password": "dave-password" }),
        None,
    )
    .await;
    let (st2, v2) = post(
        &c,
        &s,
        "/api/v1/auth/register",
        json!({ "username": "dave2", "email": "alice@example.test", "password": "dave-password" }),
        None,
    )
    .await;
    assert_eq!((st1, &v1), (st2, &v2), "same answer whether the address has an account");
    let m = smtp.wait_message("alice@example.test", 1).await;
    assert!(m.contains("already has one"), "{m}");
    let (st, v) = post(
        &c,
        &s,
        "/api/v1/auth/register",
        json!({ "username": "dave", "email": "other@example.test", "password": "dave-password" }),
        None,
    )
    .await;
    assert_eq!((st, &v), (st1, &v1), "a taken username answers alike too (the mail says it)");
    assert!(smtp.wait_message("other@example.test", 1).await.contains("is taken"));

    let (r1, b1) = post(&c, &s, "/api/v1/auth/password-reset", json!({ "email": "alice@example.test" }), None).await;
    let (r2, b2) = post(&c, &s, "/api/v1/auth/password-reset", json!({ "email": "nobody@example.test" }), None).await;
    assert_eq!((r1, &b1), (r2, &b2));
    assert!(smtp.wait_message("nobody@example.test", 1).await.contains("no account uses it"));
    let code = smtp.code("alice@example.test", 2).await;
    // Wrong codes use up tries; the right one still works before they run out.
    let (st, _) = post(
        &c,
        &s,
        "/api/v1/auth/password-reset/confirm",
        json!({ "email": "alice@example.test", "code": "000000", "new_password": "brand-new-password" }),
        None,
    )
    .await;
    assert_eq!(st, 400);
    let (st, v) = post(
        &c,
        &s,
        "/api/v1/auth/password-reset/confirm",
        json!({ "email": "alice@example.test", "code": code, "new_password": "brand-new-password" }),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    login(&c, &s, "alice", "brand-new-password").await;

    // Five wrong tries kill a code.
    c.post(s.url("/api/v1/auth/resend")).json(&json!({ "username": "dave" })).send().await.unwrap();
    let code = smtp.code("dave@example.test", 2).await;
    for _ in 0..5 {
        let (st, _) = post(&c, &s, "/api/v1/auth/verify", json!({ "username": "dave", "code": "999999" }), None).await;
        assert_eq!(st, 400);
    }
    let (st, _) = post(&c, &s, "/api/v1/auth/verify", json!({ "username": "dave", "code": code }), None).await;
    assert_eq!(st, 400, "a code is dead after 5 wrong tries");
    // Resending is rate limited, invisibly: the same answer, and no third mail this minute.
    let r = c.post(s.url("/api/v1/auth/resend")).json(&json!({ "username": "dave" })).send().await.unwrap();
    assert_eq!(r.status(), 202);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(smtp.messages_to("dave@example.test").len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn tokens_refresh_logout_cookies_and_forgeries() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let v = login(&c, &s, "alice", PASSWORD).await;
    let (access, refresh) =
        (v["access_token"].as_str().unwrap().to_owned(), v["refresh_token"].as_str().unwrap().to_owned());
    let (st, _) = get(&c, &s, "/api/v1/me", &access).await;
    assert_eq!(st, 200);

    let (st, v2) = post(&c, &s, "/api/v1/auth/refresh", json!({ "refresh_token": refresh }), None).await;
    assert_eq!(st, 200);
    let (st, _) = post(&c, &s, "/api/v1/auth/refresh", json!({ "refresh_token": refresh }), None).await;
    assert_eq!(st, 401, "a refresh token works once");
    let access2 = v2["access_token"].as_str().unwrap().to_owned();
    let refresh2 = v2["refresh_token"].as_str().unwrap().to_owned();

    // The cookie works as well as the header.
    let r = c.get(s.url("/api/v1/me")).header("Cookie", format!("davit_access={access2}")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Forged tokens: alg none, another key, tampered payload.
    let parts: Vec<&str> = access2.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    for forged in [
        format!("{none_header}.{}.", parts[1]),
        format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(br#"{"sub":"1","sid":1,"iat":1,"nbf":1,"exp":99999999999}"#),
            parts[2]
        ),
        "x".to_owned(),
    ] {
        let (st, v) = get(&c, &s, "/api/v1/me", &forged).await;
        assert_eq!(st, 401, "forged token {forged}");
        // In davit's words, not the token library's (its parser names JSON and base64).
        assert_eq!(v["detail"], "invalid token", "{forged}");
    }
    let other_key = jsonwebtoken::EncodingKey::from_secret(b"not the server key");
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({ "sub": "2", "sid": 1, "iat": now, "nbf": now, "exp": now + 600 });
    let forged =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &other_key).unwrap();
    assert_eq!(get(&c, &s, "/api/v1/me", &forged).await.0, 401);
    let hs512 =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512), &claims, &other_key).unwrap();
    assert_eq!(get(&c, &s, "/api/v1/me", &hs512).await.0, 401);

    let r = c.post(s.url("/api/v1/auth/logout")).bearer_auth(&access2).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get(&c, &s, "/api/v1/me", &access2).await.0, 401, "logout ends the access token");
    let (st, _) = post(&c, &s, "/api/v1/auth/refresh", json!({ "refresh_token": refresh2 }), None).await;
    assert_eq!(st, 401, "and the refresh token");
    s.stop().await;
}

// Multi-threaded: an email change mails in the background, while this test blocks in
// `Smtp::wait_message`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_password_change_and_app_passwords() {
    let smtp = Smtp::start();
    let s = support::start(Options { smtp_url: Some(smtp.url()), ..Default::default() }).await;
    let c = support::client();
    let t = token(&c, &s, "alice").await;
    let other_session = token(&c, &s, "alice").await;
    let (st, _) = post(&c, &s, "/api/v1/me/second-factor/code", json!({}), Some(&t)).await;
    assert_eq!(st, 202);
    let code = smtp.code("alice@example.test", 1).await;
    let (st, v) = post(&c, &s, "/api/v1/me/second-factor", json!({ "enabled": true, "code": code }), Some(&t)).await;
    assert_eq!((st, v["second_factor"].as_bool()), (StatusCode::OK, Some(true)));

    let (st, v) = post(&c, &s, "/api/v1/auth/login", json!({ "username": "alice", "password": PASSWORD }), None).await;
    assert_eq!((st, v["otp_required"].as_bool()), (StatusCode::OK, Some(true)));
    assert!(v.get("access_token").is_none());
    let code = smtp.code("alice@example.test", 2).await;
    let (st, v) = post(&c, &s, "/api/v1/auth/login/otp", json!({ "username": "alice", "code": code }), None).await;
    assert_eq!(st, 200);
    assert!(v["access_token"].is_string());

    // With the second factor on, Basic takes app passwords only.
    let r = c.get(s.url("/api/v1/me")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (_, ap) = post(&c, &s, "/api/v1/me/app-passwords", json!({ "name": "davfs" }), Some(&t)).await;
    let pw = ap["password"].as_str().unwrap().to_owned();
    let r = c.get(s.url("/api/v1/me")).basic_auth("alice", Some(&pw)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, list) = get(&c, &s, "/api/v1/me/app-passwords", &t).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("password").is_none(), "shown once only");
    let id = ap["id"].as_u64().unwrap();
    let r = c.delete(s.url(&format!("/api/v1/me/app-passwords/{id}"))).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get(s.url("/api/v1/me")).basic_auth("alice", Some(&pw)).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Changing the password ends the other sessions, keeps this one.
    let (st, _) = post(
        &c,
        &s,
        "/api/v1/me/password",
        json!({ "current_password": "wrong-one", "new_password": "x-new-password" }),
        Some(&t),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = post(
        &c,
        &s,
        "/api/v1/me/password",
        json!({ "current_password": PASSWORD, "new_password": "x-new-password" }),
        Some(&t),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(get(&c, &s, "/api/v1/me", &t).await.0, 200);
    assert_eq!(get(&c, &s, "/api/v1/me", &other_session).await.0, 401);

    // Email change, confirmed at the new address.
    let (st, _) = post(&c, &s, "/api/v1/me/email", json!({ "email": "alice.new@example.test" }), Some(&t)).await;
    assert_eq!(st, 202);
    let code = smtp.code("alice.new@example.test", 1).await;
    let (st, v) = post(&c, &s, "/api/v1/me/email/confirm", json!({ "code": code }), Some(&t)).await;
    assert_eq!((st, v["email"].as_str()), (StatusCode::OK, Some("alice.new@example.test")));
    // The old address hears of it (its third mail: two sign-in codes came before).
    let notice = smtp.wait_message("alice@example.test", 3).await;
    assert!(notice.contains("changed to alice.new@example.test"), "{notice}");

    // An app password signs in, but cannot change how the account is reached: a leaked one
    // would otherwise take the account (a new address, then a reset) or mint credentials
    // that outlive its revocation.
    let (_, ap) = post(&c, &s, "/api/v1/me/app-passwords", json!({ "name": "script" }), Some(&t)).await;
    let pw = ap["password"].as_str().unwrap().to_owned();
    for (path, body) in [
        ("/api/v1/me/email", json!({ "email": "mallory@example.test" })),
        ("/api/v1/me/email/confirm", json!({ "code": "123456" })),
        ("/api/v1/me/app-passwords", json!({ "name": "another" })),
        ("/api/v1/me/keys", json!({})),
        ("/api/v1/me/second-factor/code", json!({})),
        ("/api/v1/me/second-factor", json!({ "enabled": false, "code": "123456" })),
    ] {
        let r = c.post(s.url(path)).basic_auth("alice", Some(&pw)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["detail"].as_str().unwrap().contains("app password cannot"), "{path}: {v}");
    }
    assert!(smtp.messages_to("mallory@example.test").is_empty());
    let r = c.get(s.url("/api/v1/me")).basic_auth("alice", Some(&pw)).send().await.unwrap();
    assert_eq!(r.status(), 200, "it still signs in");

    // S3 keys for oneself.
    let (st, k) = post(&c, &s, "/api/v1/me/keys", json!({}), Some(&t)).await;
    assert_eq!(st, 201);
    assert_eq!(k["secret_access_key"].as_str().unwrap().len(), 40);
    let key = s.storage.access_key_secret(k["access_key_id"].as_str().unwrap()).await.unwrap();
    let owner = key.owner.unwrap();
    assert_eq!((owner.username(), key.secret.as_str()), ("alice", k["secret_access_key"].as_str().unwrap()));
    let r = c
        .delete(s.url(&format!("/api/v1/me/keys/{}", k["access_key_id"].as_str().unwrap())))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get(&c, &s, "/api/v1/me/keys", &t).await.1["items"].as_array().unwrap().len(), 0);
    s.stop().await;
}

#[tokio::test]
async fn failed_logins_are_throttled_on_every_path() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (st, _) =
            post(&c, &s, "/api/v1/auth/login", json!({ "username": "bob", "password": "wrong-password" }), None).await;
        statuses.push(st.as_u16());
    }
    assert!(statuses[..5].iter().all(|&s| s == 401), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    let r = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({ "username": "bob", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "from the address that failed, even the right password waits");
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Basic attempts count against the same account and address.
    let r = c.get(s.url("/api/v1/me")).basic_auth("bob", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 429);
    // The count is per (account, address): another account from here is not refused, and a
    // few failures (under the per-address threshold) slow nobody else.
    let r = c.get(s.url("/api/v1/me")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // And Basic failures slow their pair like logins do.
    for _ in 0..5 {
        let r = c.get(s.url("/api/v1/me")).basic_auth("admin", Some("wrong-password")).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let (st, _) = post(&c, &s, "/api/v1/auth/login", json!({ "username": "admin", "password": PASSWORD }), None).await;
    assert_eq!(st, 429);
    s.stop().await;
}

#[tokio::test]
async fn json_bodies_are_checked() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let send = |body: &'static str| {
        c.post(s.url("/api/v1/auth/login")).header("content-type", "application/json").body(body).send()
    };
    for bad in ["{", r#"{"username": 5, "password": "x"}"#, r#"{"username": "a", "password": "b", "extra": 1}"#, "[]"] {
        let r = send(bad).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "invalid_json", "{bad}");
    }
    let huge = format!(r#"{{"username": "{}", "password": "x"}}"#, "a".repeat(100_000));
    let r = c.post(s.url("/api/v1/auth/login")).header("content-type", "application/json").body(huge).send().await;
    assert_eq!(r.unwrap().status(), 413);
    let r = c.delete(s.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // Path ids and query fields axum reads are refused as problem+json too (found by
    // probing: they were axum's plain text).
    for (method, path) in [
        ("POST", "/api/v1/trash/abc/restore"),
        ("DELETE", "/api/v1/links/abc"),
        ("DELETE", "/api/v1/shares/99999999999999999999999"),
        ("GET", "/api/v1/files/?limit=abc"),
        ("GET", "/api/v1/shares/by-path"),
    ] {
        let r = c.request(method.parse().unwrap(), s.url(path)).basic_auth("alice", Some(PASSWORD)).send().await;
        let r = r.unwrap();
        assert_eq!(r.status(), 400, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json", "{method} {path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "invalid_input", "{method} {path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn admin_manages_accounts_and_sees_metadata_only() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let admin = token(&c, &s, "admin").await;
    let alice = token(&c, &s, "alice").await;
    assert_eq!(get(&c, &s, "/api/v1/admin/users", &alice).await.0, 403);
    assert_eq!(get(&c, &s, "/api/v1/admin/stats", &alice).await.0, 403);

    let (st, u) = post(&c, &s, "/api/v1/admin/users", json!({ "username": "erin", "password": "erin-password", "email": "erin@example.test", "role": "uploader", "quota": 1000000 }), Some(&admin)).await;
    assert_eq!(st, 201, "{u}");
    let erin = u["id"].as_u64().unwrap();
    let (st, _) =
        post(&c, &s, "/api/v1/admin/users", json!({ "username": "erin", "password": "erin-password" }), Some(&admin))
            .await;
    assert_eq!(st, 409);
    let (st, _) =
        post(&c, &s, "/api/v1/admin/users", json!({ "username": "x", "password": "erin-password" }), Some(&admin))
            .await;
    assert_eq!(st, 400);

    let (_, page) = get(&c, &s, "/api/v1/admin/users?limit=2", &admin).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_u64().unwrap();
    let (_, page2) = get(&c, &s, &format!("/api/v1/admin/users?limit=10&after={after}"), &admin).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    let (_, found) = get(&c, &s, "/api/v1/admin/users?q=erin@", &admin).await;
    assert_eq!(found["items"][0]["username"], "erin");

    let data = support::pseudo_random(100_000, 5);
    c.put(s.url("/api/v1/files/a.bin")).bearer_auth(&alice).body(data.clone()).send().await.unwrap();
    c.put(s.url("/api/v1/files/b.bin")).bearer_auth(&alice).body(data.clone()).send().await.unwrap();
    let (_, stats) = get(&c, &s, "/api/v1/admin/stats", &admin).await;
    assert_eq!(stats["files"], 2);
    assert_eq!(stats["logical_bytes"], 200_000);
    assert!(stats["stored_bytes"].as_u64().unwrap() < 150_000, "{stats}");
    assert!(stats["dedup_ratio"].as_f64().unwrap() > 1.5, "{stats}");
    let (_, alice_meta) = get(&c, &s, "/api/v1/admin/users?q=alice", &admin).await;
    assert_eq!(alice_meta["items"][0]["usage"]["bytes"], 200_000);
    // Metadata only: the admin cannot read alice's files through the API.
    let r = c.get(s.url("/api/v1/files/a.bin")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let r = c
        .patch(s.url(&format!("/api/v1/admin/users/{erin}")))
        .bearer_auth(&admin)
        .json(&json!({ "role": "downloader", "quota": 5 }))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["role"].as_str(), v["quota"].as_u64()), (Some("downloader"), Some(5)));
    let erin_token = login(&c, &s, "erin", "erin-password").await["access_token"].as_str().unwrap().to_owned();
    let r = c
        .patch(s.url(&format!("/api/v1/admin/users/{erin}")))
        .bearer_auth(&admin)
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&c, &s, "/api/v1/me", &erin_token).await.0, 401, "disabling ends tokens at once");
    let (st, _) =
        post(&c, &s, "/api/v1/auth/login", json!({ "username": "erin", "password": "erin-password" }), None).await;
    assert_eq!(st, 403);
    c.patch(s.url(&format!("/api/v1/admin/users/{erin}")))
        .bearer_auth(&admin)
        .json(&json!({ "disabled": false }))
        .send()
        .await
        .unwrap();
    let (st, _) = post(
        &c,
        &s,
        &format!("/api/v1/admin/users/{erin}/password"),
        json!({ "password": "erin-reset-pw" }),
        Some(&admin),
    )
    .await;
    assert_eq!(st, 200);
    login(&c, &s, "erin", "erin-reset-pw").await;
    // Admins do not mint credentials for others (tests/security/auth.rs); they list and revoke.
    let (st, _) = post(&c, &s, &format!("/api/v1/admin/users/{erin}/keys"), json!({}), Some(&admin)).await;
    assert_eq!(st, 403);
    let (key, _) = s.storage.create_access_key(erin).await.unwrap();
    assert_eq!(
        get(&c, &s, &format!("/api/v1/admin/users/{erin}/keys"), &admin).await.1["items"][0]["access_key_id"],
        key.id.as_str()
    );
    let (st, _) =
        post(&c, &s, &format!("/api/v1/admin/users/{erin}/app-passwords"), json!({ "name": "ops" }), Some(&admin))
            .await;
    assert_eq!(st, 403);
    let me_id = get(&c, &s, "/api/v1/me", &admin).await.1["id"].as_u64().unwrap();
    let r = c.delete(s.url(&format!("/api/v1/admin/users/{me_id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 403, "no self-deletion");
    // An admin's own password changes with the current one, at /me/password: through the
    // admin route a session left open (or an app password) would take the account.
    let (st, v) = post(
        &c,
        &s,
        &format!("/api/v1/admin/users/{me_id}/password"),
        json!({ "password": "taken-over-1" }),
        Some(&admin),
    )
    .await;
    assert_eq!(st, 403, "{v}");
    // Nor does an app password mint an admin's own credentials through the admin routes.
    let (_, ap) = post(&c, &s, "/api/v1/me/app-passwords", json!({ "name": "ops" }), Some(&admin)).await;
    let pw = ap["password"].as_str().unwrap().to_owned();
    for (path, body) in [("keys", json!({})), ("app-passwords", json!({ "name": "more" }))] {
        let url = s.url(&format!("/api/v1/admin/users/{me_id}/{path}"));
        let r = c.post(url).basic_auth("admin", Some(&pw)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = c.delete(s.url("/api/v1/admin/users/9999")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn roles_and_upload_policy_are_enforced() {
    use davit_storage::Role;
    use davit_storage::policy::{Policy, Rule};
    let mut policy = Policy::default();
    policy.roles.insert(
        Role::Uploader,
        Rule {
            max_file_size: Some(1_000_000),
            allowed_extensions: Some(vec!["docx".into(), "pptx".into(), "xlsx".into()]),
            allowed_types: None,
        },
    );
    let s = support::start(Options {
        users: vec![("ops", Role::Uploader), ("client", Role::Downloader), ("alice", Role::User)],
        policy,
        ..Default::default()
    })
    .await;
    let c = support::client();
    let ops = token(&c, &s, "ops").await;
    let client = token(&c, &s, "client").await;
    let r = c.put(s.url("/api/v1/files/plan.docx")).bearer_auth(&ops).body("doc").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c.put(s.url("/api/v1/files/tool.exe")).bearer_auth(&ops).body("exe").send().await.unwrap();
    assert_eq!(r.status(), 415);
    let v: Value = r.json().await.unwrap();
    assert!(v["detail"].as_str().unwrap().contains(".docx"), "{v}");
    let r = c.put(s.url("/api/v1/files/big.xlsx")).bearer_auth(&ops).body(vec![0u8; 1_500_000]).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let (st, _) = post(&c, &s, "/api/v1/move", json!({ "from": "/plan.docx", "to": "/plan.exe" }), Some(&ops)).await;
    assert_eq!(st, 415, "a rename cannot dodge the policy");
    let r = c.get(s.url("/api/v1/files/plan.docx")).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(r.status(), 403, "uploaders cannot download");
    assert_eq!(get(&c, &s, "/api/v1/files", &ops).await.0, 200, "but can list");
    let r = c.put(s.url("/api/v1/files/x.docx")).bearer_auth(&client).body("x").send().await.unwrap();
    assert_eq!(r.status(), 403, "downloaders cannot upload");
    let alice = token(&c, &s, "alice").await;
    let r = c.put(s.url("/api/v1/files/tool.exe")).bearer_auth(&alice).body("exe").send().await.unwrap();
    assert_eq!(r.status(), 201, "the rule is the uploader role's only");
    s.stop().await;
}

#[tokio::test]
async fn file_operations_over_rest() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let t = token(&c, &s, "alice").await;
    let (st, _) = post(&c, &s, "/api/v1/mkdir", json!({ "path": "/docs" }), Some(&t)).await;
    assert_eq!(st, 201);
    let (st, _) = post(&c, &s, "/api/v1/mkdir", json!({ "path": "/docs" }), Some(&t)).await;
    assert_eq!(st, 409);
    let form = reqwest::multipart::Form::new()
        .part(
            "a",
            reqwest::multipart::Part::bytes(b"first file".to_vec()).file_name("a.txt").mime_str("text/plain").unwrap(),
        )
        .part("b", reqwest::multipart::Part::bytes(support::pseudo_random(2_000_000, 8)).file_name("b.bin"));
    let r = c.post(s.url("/api/v1/files/docs")).bearer_auth(&t).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let r = c.get(s.url("/api/v1/files/docs/a.txt")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "first file");

    let (st, _) = post(&c, &s, "/api/v1/copy", json!({ "from": "/docs", "to": "/docs2" }), Some(&t)).await;
    assert_eq!(st, 201);
    let (st, _) = post(&c, &s, "/api/v1/move", json!({ "from": "/docs2/a.txt", "to": "/moved.txt" }), Some(&t)).await;
    assert_eq!(st, 201);
    let (st, _) = post(&c, &s, "/api/v1/move", json!({ "from": "/docs/a.txt", "to": "/moved.txt" }), Some(&t)).await;
    assert_eq!(st, 409, "no silent overwrite");
    let (st, _) =
        post(&c, &s, "/api/v1/move", json!({ "from": "/docs/a.txt", "to": "/moved.txt", "overwrite": true }), Some(&t))
            .await;
    assert_eq!(st, 200);
    let (_, u) = get(&c, &s, "/api/v1/usage", &t).await;
    assert_eq!(u["files"], 3);
    assert_eq!(u["bytes"], 2_000_000 * 2 + 10);

    for i in 0..5 {
        c.put(s.url(&format!("/api/v1/files/docs/f{i}"))).bearer_auth(&t).body("x").send().await.unwrap();
    }
    let (_, p1) = get(&c, &s, "/api/v1/files/docs?limit=3", &t).await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    let next = p1["next"].as_str().unwrap().to_owned();
    let (_, p2) = get(&c, &s, &format!("/api/v1/files/docs?limit=3&after={next}"), &t).await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 3);
    assert_ne!(p1["items"][0]["name"], p2["items"][0]["name"]);
    let r = c.delete(s.url("/api/v1/files/docs")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 204);
    s.stop().await;
}

#[tokio::test]
async fn outbox_receives_mail_without_smtp() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let (st, _) = post(
        &c,
        &s,
        "/api/v1/auth/register",
        json!({ "username": "frank", "email": "frank@example.test", "password": "frank-password" }),
        None,
    )
    .await;
    assert_eq!(st, 202);
    // The mail is written after the answer.
    let outbox = s.data_dir().join("outbox");
    let read_outbox = || -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&outbox) else { return Vec::new() };
        dir.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while read_outbox().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mails = read_outbox();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("frank@example.test"));
    let code = mails[0]
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned();
    let (st, _) = post(&c, &s, "/api/v1/auth/verify", json!({ "username": "frank", "code": code }), None).await;
    assert_eq!(st, 200);
    s.stop().await;
}
