//! CORS: the configuration through the SDK, preflights answered by a bucket's rules, and the
//! `Access-Control-*` headers of actual requests, over a real server. Ports from ceph/s3-tests
//! (`s3tests_boto3/functional/test_s3.py`): test_set_cors, test_cors_origin_response,
//! test_cors_origin_wildcard, test_cors_header_option, test_cors_origin_response_with_credentials
//! (signed here: anonymous reads need a public bucket, which davit does not make by default).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use reqwest::Method;

use super::*;

fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
    let mut b = CorsRule::builder();
    for o in origins {
        b = b.allowed_origins(*o);
    }
    for m in methods {
        b = b.allowed_methods(*m);
    }
    for h in headers {
        b = b.allowed_headers(*h);
    }
    b.build().unwrap()
}

async fn set(c: &Client, bucket: &str, rules: Vec<CorsRule>) {
    let cfg = CorsConfiguration::builder().set_cors_rules(Some(rules)).build().unwrap();
    c.put_bucket_cors().bucket(bucket).cors_configuration(cfg).send().await.unwrap();
}

/// An unsigned request with the given headers: (status, Allow-Origin, Allow-Methods, Allow-Headers).
async fn raw(
    url: &str,
    method: Method,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Option<String>, Option<String>) {
    let mut r = support::tls_client().request(method, url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    (
        r.status().as_u16(),
        h("access-control-allow-origin"),
        h("access-control-allow-methods"),
        h("access-control-allow-headers"),
    )
}

fn some(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// test_set_cors: put, get back, delete, and NoSuchCORSConfiguration (404) around it.
#[tokio::test]
async fn sdk_bucket_cors_is_set_read_and_deleted() {
    let Sdk { s: _server, c, .. } = start().await;
    let e = c.get_bucket_cors().bucket("bkt").send().await;
    assert_eq!(refusal(e), (404, "NoSuchCORSConfiguration".into()));
    let mut r = rule(&["origin1", "origin2"], &["GET", "PUT"], &[]);
    r.id = Some("first".into());
    r.max_age_seconds = Some(600);
    r.expose_headers = Some(vec!["ETag".into()]);
    set(&c, "bkt", vec![r]).await;
    let got = c.get_bucket_cors().bucket("bkt").send().await.unwrap();
    let rules = got.cors_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].allowed_methods(), ["GET", "PUT"]);
    assert_eq!(rules[0].allowed_origins(), ["origin1", "origin2"]);
    assert_eq!((rules[0].id(), rules[0].max_age_seconds()), (Some("first"), Some(600)));
    assert_eq!(rules[0].expose_headers(), ["ETag"]);
    c.delete_bucket_cors().bucket("bkt").send().await.unwrap();
    assert_eq!(refusal(c.get_bucket_cors().bucket("bkt").send().await), (404, "NoSuchCORSConfiguration".into()));

    // What S3 refuses.
    let put = |rules: Vec<CorsRule>| {
        let cfg = CorsConfiguration::builder().set_cors_rules(Some(rules)).build().unwrap();
        c.put_bucket_cors().bucket("bkt").cors_configuration(cfg).send()
    };
    assert_eq!(refusal(put(vec![rule(&["*"], &["PATCH"], &[])]).await), (400, "InvalidRequest".into()));
    assert_eq!(refusal(put(vec![rule(&["*.*"], &["GET"], &[])]).await), (400, "InvalidRequest".into()));
    assert_eq!(refusal(put(vec![]).await).0, 400);
    // Another user's bucket of the same name is theirs: no rules there.
    let e = c.get_bucket_cors().bucket("nobucket").send().await;
    assert_eq!(refusal(e), (404, "NoSuchBucket".into()));
}

/// test_cors_origin_response and test_cors_origin_response_with_credentials: preflights are
/// decided by the rules (403 when none matches), and actual requests get the matching rule's
/// headers, on errors too. Actual requests are signed (presigned URLs).
#[tokio::test]
async fn sdk_preflights_and_actual_requests_follow_the_first_matching_rule() {
    let Sdk { s, c, key, secret } = start().await;
    let bucket_url = format!("{}/bkt", s.base);
    // No rules yet: a preflight is refused.
    let (st, o, ..) =
        raw(&bucket_url, Method::OPTIONS, &[("origin", "http://a.example"), ("access-control-request-method", "GET")])
            .await;
    assert_eq!((st, o), (403, None));
    set(
        &c,
        "bkt",
        vec![
            rule(&["http://www.example1.com"], &["PUT", "DELETE"], &["*"]),
            rule(&["*"], &["GET"], &["*"]),
            rule(&["http://www.example2.com", "http://www.example3.com"], &["DELETE"], &["*"]),
        ],
    )
    .await;
    let pre = |origin: &'static str, method: &'static str| {
        let url = bucket_url.clone();
        async move {
            let (st, o, m, _) =
                raw(&url, Method::OPTIONS, &[("origin", origin), ("access-control-request-method", method)]).await;
            (st, o, m)
        }
    };
    assert_eq!(pre("http://www.example1.com", "GET").await, (200, some("*"), some("GET")));
    assert_eq!(
        pre("http://www.example1.com", "DELETE").await,
        (200, some("http://www.example1.com"), some("PUT, DELETE"))
    );
    assert_eq!(pre("http://www.example2.com", "DELETE").await, (200, some("http://www.example2.com"), some("DELETE")));
    assert_eq!(pre("http://www.example2.com", "PUT").await, (403, None, None));
    assert_eq!(pre("http://not.exists", "GET").await, (200, some("*"), some("GET")));
    assert_eq!(pre("http://not.exists", "PUT").await, (403, None, None));
    // A preflight without Origin is a bad request; one on a bucket nobody has is refused.
    let (st, ..) = raw(&bucket_url, Method::OPTIONS, &[("access-control-request-method", "GET")]).await;
    assert_eq!(st, 400);
    let (st, ..) = raw(&bucket_url, Method::OPTIONS, &[("origin", "http://www.example1.com")]).await;
    assert_eq!(st, 400, "a preflight names its method");
    let (st, ..) = raw(
        &format!("{}/nobucket/k", s.base),
        Method::OPTIONS,
        &[("origin", "http://x"), ("access-control-request-method", "GET")],
    )
    .await;
    assert_eq!(st, 403);

    // Actual requests, signed: the object exists for GET, not for the others.
    c.put_object().bucket("bkt").key("bar").body(ByteStream::from_static(b"x")).send().await.unwrap();
    let signer = crate::s3_sign::Signer { base: s.base.clone(), key, secret, client: support::tls_client() };
    let actual = |method: Method, path: &'static str, origin: &'static str| {
        let url = signer.presign(method.clone(), path, 300);
        async move {
            let (st, o, m, _) = raw(&url, method, &[("origin", origin)]).await;
            (st, o, m)
        }
    };
    // Signed requests carry credentials: `*` is answered with the origin itself.
    assert_eq!(
        actual(Method::GET, "/bkt/bar", "http://www.example1.com").await,
        (200, some("http://www.example1.com"), some("GET"))
    );
    assert_eq!(
        actual(Method::GET, "/bkt/nope", "http://www.example1.com").await,
        (404, some("http://www.example1.com"), some("GET"))
    );
    assert_eq!(actual(Method::PUT, "/bkt/put", "http://www.example3.com").await.1, None, "rule 3 allows DELETE only");
    let (st, o, m) = actual(Method::DELETE, "/bkt/bar", "http://www.example3.com").await;
    assert_eq!((st, o, m), (204, some("http://www.example3.com"), some("DELETE")));
    assert_eq!(actual(Method::DELETE, "/bkt/bar", "http://not.exists").await.1, None);
    // An actual request naming Access-Control-Request-Method is decided for that method.
    let url = signer.presign(Method::PUT, "/bkt/put", 300);
    let named = |m: &'static str| {
        let url = url.clone();
        async move { raw(&url, Method::PUT, &[("origin", "http://not.exists"), ("access-control-request-method", m)]).await }
    };
    assert_eq!(named("GET").await.2, some("GET"));
    assert_eq!(named("PUT").await.2, None);
    // Without Origin, no CORS headers at all.
    let url = signer.presign(Method::GET, "/bkt", 300);
    let (st, o, ..) = raw(&url, Method::GET, &[]).await;
    assert_eq!((st, o), (200, None));
    // CORS is S3's only: the REST API answers a preflight with no CORS grant.
    let (_, o, ..) = raw(
        &s.url("/api/v1/me"),
        Method::OPTIONS,
        &[("origin", "http://www.example1.com"), ("access-control-request-method", "GET")],
    )
    .await;
    assert_eq!(o, None);
}

/// test_cors_origin_wildcard, test_cors_header_option (and the wildcard origins of the older
/// test_cors_origin_response): requested headers must all be allowed; expose headers and max
/// age are answered.
#[tokio::test]
async fn sdk_preflight_headers_and_wildcards() {
    let Sdk { s, c, .. } = start().await;
    let mut exposing = rule(&["*"], &["GET"], &["x-amz-meta-header1"]);
    exposing.expose_headers = Some(vec!["x-amz-request-id".into(), "ETag".into()]);
    exposing.max_age_seconds = Some(3000);
    set(
        &c,
        "bkt",
        vec![
            exposing,
            rule(&["http://www.example.com"], &["PUT"], &["x-amz-meta-header2", "x-amz-meta-header3"]),
            rule(&["http://www.example1.com"], &["DELETE"], &[]),
            rule(&["start*end"], &["POST"], &["*"]),
        ],
    )
    .await;
    let url = format!("{}/bkt", s.base);
    let pre = |origin: &'static str, method: &'static str, headers: &'static str| {
        let url = url.clone();
        async move {
            let mut h = vec![("origin", origin), ("access-control-request-method", method)];
            if !headers.is_empty() {
                h.push(("access-control-request-headers", headers));
            }
            raw(&url, Method::OPTIONS, &h).await
        }
    };
    assert_eq!(
        pre("http://any.origin", "GET", "x-amz-meta-header1").await,
        (200, some("*"), some("GET"), some("x-amz-meta-header1"))
    );
    assert_eq!(pre("http://www.example.com", "PUT", "x-amz-meta-header1").await, (403, None, None, None));
    assert_eq!(
        pre("http://www.example.com", "PUT", "x-amz-meta-header2").await,
        (200, some("http://www.example.com"), some("PUT"), some("x-amz-meta-header2"))
    );
    assert_eq!(
        pre("http://www.example.com", "PUT", "x-amz-meta-header2, x-amz-meta-header3").await.3,
        some("x-amz-meta-header2, x-amz-meta-header3")
    );
    assert_eq!(pre("http://www.example1.com", "DELETE", "x-amz-meta-header1").await.0, 403, "no header allowed");
    assert_eq!(pre("http://www.example1.com", "DELETE", "").await.0, 200);
    assert_eq!(pre("start-and-end", "POST", "content-type, x-amz-date").await.0, 200);
    assert_eq!(pre("0start-and-end", "POST", "").await.0, 403);
    let r = support::tls_client()
        .request(Method::OPTIONS, &url)
        .header("origin", "http://any.origin")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(h("access-control-expose-headers"), some("x-amz-request-id, ETag"));
    assert_eq!(h("access-control-max-age"), some("3000"));
    assert!(h("vary").is_some_and(|v| v.contains("Origin")), "{:?}", h("vary"));
}

/// A preflight names no user: it is decided by every bucket of that name, a later change of
/// the rules takes effect at once, and a deleted bucket's rules go with it (a new bucket of
/// the same name starts without any).
#[tokio::test]
async fn sdk_preflight_follows_the_bucket_not_its_name() {
    let Sdk { s, c, .. } = start().await;
    let url = format!("{}/bkt/k", s.base);
    let pre =
        || raw(&url, Method::OPTIONS, &[("origin", "http://app.example"), ("access-control-request-method", "PUT")]);
    set(&c, "bkt", vec![rule(&["http://app.example"], &["PUT"], &[])]).await;
    assert_eq!(pre().await.0, 200);
    set(&c, "bkt", vec![rule(&["http://other.example"], &["PUT"], &[])]).await;
    assert_eq!(pre().await.0, 403, "replaced");
    set(&c, "bkt", vec![rule(&["http://app.example"], &["PUT"], &[])]).await;
    c.delete_bucket().bucket("bkt").send().await.unwrap();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    assert_eq!(pre().await.0, 403, "a new bucket of the name has no rules");
    assert_eq!(refusal(c.get_bucket_cors().bucket("bkt").send().await).1, "NoSuchCORSConfiguration");
    // Bob's bucket of the same name with rules: the preflight is his bucket's to answer.
    let (bk, bs) = key_of(&s, "bob").await;
    let bob = client(&s.base, &bk, &bs, false);
    bob.create_bucket().bucket("bkt").send().await.unwrap_or_else(|e| panic!("{e:?}"));
    set(&bob, "bkt", vec![rule(&["http://app.example"], &["PUT"], &[])]).await;
    assert_eq!(pre().await.0, 200);
}

/// Under a base domain, the bucket of a preflight and of a POST object comes from Host
/// (`<bucket>.<domain>`), as for every other S3 request.
#[tokio::test]
async fn sdk_virtual_host_preflight_and_post_object() {
    let Sdk { s, c, key, secret } = start_with(Options { base_domain: Some("s3.test"), ..Default::default() }).await;
    c.create_bucket().bucket("vbkt").send().await.unwrap();
    set(&c, "vbkt", vec![rule(&["https://app.example"], &["POST"], &["*"])]).await;
    let host = format!("vbkt.s3.test:{}", s.addr.port());
    let preflight = |origin: &'static str| {
        support::tls_client()
            .request(Method::OPTIONS, s.url("/"))
            .header("host", host.clone())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let r = preflight("https://app.example").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(preflight("https://evil.example").await.unwrap().status(), 403);

    // The form the preflight allowed: a SigV2 policy, posted to the bucket's host.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let doc = serde_json::json!({
        "expiration": "2099-01-01T00:00:00Z",
        "conditions": [{"bucket": "vbkt"}, ["starts-with", "$key", "in/"]]
    });
    let policy = b64.encode(doc.to_string());
    let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let form = reqwest::multipart::Form::new()
        .text("key", "in/${filename}")
        .text("AWSAccessKeyId", key)
        .text("policy", policy.clone())
        .text("signature", b64.encode(ring::hmac::sign(&mac, policy.as_bytes())))
        .part("file", reqwest::multipart::Part::bytes(b"from a browser".to_vec()).file_name("note.txt"));
    let r = support::tls_client()
        .post(s.url("/"))
        .header("host", host.clone())
        .header("origin", "https://app.example")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example", "the answer is readable by the page");
    let got = c.get_object().bucket("vbkt").key("in/note.txt").send().await.unwrap();
    assert_eq!(body(got).await, b"from a browser");
}
