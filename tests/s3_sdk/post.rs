//! POST object: browser form uploads allowed by a signed policy, over a real server, built
//! as s3-tests builds them (form fields, then the file). Ports from ceph/s3-tests
//! (`s3tests_boto3/functional/test_s3.py`), each named at its test; the SigV2 forms are
//! s3-tests' own, the SigV4 ones what browsers' SDK helpers (boto3 `generate_presigned_post`,
//! MinIO's `presigned_post_policy`) make.

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use reqwest::multipart::{Form, Part};
use ring::hmac;

use super::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct Post {
    sdk: Sdk,
    http: reqwest::Client,
}

async fn setup() -> Post {
    let sdk = start().await;
    let pem = std::fs::read(support::cert_dir().join("cert.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    Post { sdk, http }
}

/// An expiration `secs` from now, as S3 policies write it.
fn expiration(secs: i64) -> String {
    let t = std::time::SystemTime::now();
    let t = if secs >= 0 {
        t + std::time::Duration::from_secs(secs as u64)
    } else {
        t - std::time::Duration::from_secs((-secs) as u64)
    };
    let (amz, _) = crate::s3_sign::amz_date_at(t);
    format!("{}-{}-{}T{}:{}:{}Z", &amz[0..4], &amz[4..6], &amz[6..8], &amz[9..11], &amz[11..13], &amz[13..15])
}

fn policy(conditions: serde_json::Value) -> String {
    B64.encode(serde_json::json!({ "expiration": expiration(6000), "conditions": conditions }).to_string())
}

/// The default conditions of s3-tests' authenticated POST.
fn conditions() -> serde_json::Value {
    serde_json::json!([
        {"bucket": "bkt"},
        ["starts-with", "$key", "foo"],
        {"acl": "private"},
        ["starts-with", "$Content-Type", "text/plain"],
        ["content-length-range", 0, 1024]
    ])
}

impl Post {
    /// SigV2 fields for `policy` (s3-tests' own form).
    fn v2(&self, policy: &str) -> Vec<(String, String)> {
        let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, self.sdk.secret.as_bytes());
        let signature = B64.encode(hmac::sign(&k, policy.as_bytes()));
        vec![
            ("AWSAccessKeyId".into(), self.sdk.key.clone()),
            ("policy".into(), policy.into()),
            ("signature".into(), signature),
        ]
    }

    async fn send(&self, fields: Vec<(String, String)>, file: Vec<u8>, file_name: &str) -> reqwest::Response {
        let mut form = Form::new();
        for (k, v) in fields {
            form = form.text(k, v);
        }
        form = form.part("file", Part::bytes(file).file_name(file_name.to_owned()));
        self.http.post(self.sdk.s.url("/bkt")).multipart(form).send().await.unwrap()
    }

    /// The usual form: key, acl, Content-Type and SigV2 fields, with extra fields.
    async fn form(&self, policy: &str, extra: &[(&str, &str)], file: &[u8]) -> reqwest::Response {
        let mut fields: Vec<(String, String)> =
            vec![("key".into(), "foo.txt".into()), ("acl".into(), "private".into())];
        fields.extend(self.v2(policy));
        fields.push(("Content-Type".into(), "text/plain".into()));
        fields.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self.send(fields, file.to_vec(), "foo.txt").await
    }

    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let r = self.sdk.c.get_object().bucket("bkt").key(key).send().await.ok()?;
        Some(body(r).await)
    }
}

/// test_post_object_authenticated_request, test_post_object_authenticated_no_content_type
/// (here with one), test_post_object_set_success_code, test_post_object_set_invalid_success_code.
#[tokio::test]
async fn post_object_signed_v2_stores_the_file_and_answers_as_asked() {
    let t = setup().await;
    let p = policy(conditions());
    let r = t.form(&p, &[], b"bar").await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(t.object("foo.txt").await.as_deref(), Some(&b"bar"[..]));
    let head = t.sdk.c.head_object().bucket("bkt").key("foo.txt").send().await.unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.e_tag(), Some("\"37b51d194a7513e45b56f6524f2d51f2\""), "the MD5 of bar");

    let mut c = conditions();
    c.as_array_mut().unwrap().push(serde_json::json!(["eq", "$success_action_status", "201"]));
    let r = t.form(&policy(c), &[("success_action_status", "201")], b"bar").await;
    assert_eq!(r.status(), 201);
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<Key>foo.txt</Key>") && xml.contains("<Bucket>bkt</Bucket>"), "{xml}");
    assert!(xml.contains("<ETag>&quot;37b51d194a7513e45b56f6524f2d51f2&quot;</ETag>"), "{xml}");

    let mut c = conditions();
    c.as_array_mut().unwrap().push(serde_json::json!(["eq", "$success_action_status", "404"]));
    let r = t.form(&policy(c), &[("success_action_status", "404")], b"bar").await;
    assert_eq!(r.status(), 204, "an invalid status answers 204");

    // test_post_object_success_redirect_action (the redirect itself; following it needs a
    // public bucket).
    let mut c = conditions();
    c.as_array_mut().unwrap().push(serde_json::json!(["eq", "$success_action_redirect", "http://example.com/done"]));
    let r = t.form(&policy(c), &[("success_action_redirect", "http://example.com/done")], b"bar").await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "http://example.com/done?bucket=bkt&key=foo.txt&etag=%2237b51d194a7513e45b56f6524f2d51f2%22"
    );
}

/// SigV4 POST, as boto3's generate_presigned_post and browser SDKs sign it; x-amz-meta-*
/// fields are kept (test_post_object_user_specified_header), `${filename}` names the key
/// (test_post_object_set_key_from_filename), x-ignore-* need no condition
/// (test_post_object_ignored_header), condition and field names ignore case
/// (test_post_object_case_insensitive_condition_fields), and a file larger than a read
/// chunk arrives whole (test_post_object_upload_larger_than_chunk).
#[tokio::test]
async fn post_object_signed_v4_with_metadata_filename_and_large_file() {
    let t = setup().await;
    let now = std::time::SystemTime::now();
    let (date, day) = crate::s3_sign::amz_date_at(now);
    let credential = format!("{}/{day}/us-east-1/s3/aws4_request", t.sdk.key);
    let data = support::pseudo_random(3 * 1024 * 1024 + 17, 9);
    let p = policy(serde_json::json!([
        {"bucket": "bkt"},
        ["starts-with", "$KeY", "up/"],
        ["starts-with", "$x-amz-meta-foo", "bar"],
        ["eq", "$Content-Type", "application/octet-stream"],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": credential},
        {"x-amz-date": date},
        ["content-length-range", 0, 4 * 1024 * 1024]
    ]));
    let mut k = sign(format!("AWS4{}", t.sdk.secret).as_bytes(), &day);
    for part in ["us-east-1", "s3", "aws4_request"] {
        k = sign(&k, part);
    }
    let signature = hex::encode(sign(&k, &p));
    let fields = |key: &str| {
        vec![
            ("kEy".to_owned(), key.to_owned()),
            ("Content-Type".into(), "application/octet-stream".into()),
            ("x-amz-meta-foo".into(), "barclamp".into()),
            ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
            ("X-Amz-Credential".into(), credential.clone()),
            ("X-Amz-Date".into(), date.clone()),
            ("x-ignore-foo".into(), "bar".into()),
            ("Policy".into(), p.clone()),
            ("X-Amz-Signature".into(), signature.clone()),
        ]
    };
    let r = t.send(fields("up/${filename}"), data.clone(), "photo.jpg").await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(t.object("up/photo.jpg").await.unwrap(), data);
    let head = t.sdk.c.head_object().bucket("bkt").key("up/photo.jpg").send().await.unwrap();
    assert_eq!(head.metadata().unwrap()["foo"], "barclamp");
    // The file is the same over REST: the core stored it, in alice's drive.
    let p2 = t.sdk.s.principal("alice").await;
    assert_eq!(t.sdk.s.storage.stat(&p2, "/bkt/up/photo.jpg").await.unwrap().size, data.len() as u64);
    // `${filename}` is the name after the last `/` or `\`, as S3 takes it: not the client's path.
    for (sent, kept) in [("a/b/c.txt", "up/c.txt"), ("..\\..\\x.txt", "up/x.txt"), ("C:\\Users\\me\\y.txt", "up/y.txt")]
    {
        let r = t.send(fields("up/${filename}"), b"f".to_vec(), sent).await;
        assert_eq!(r.status(), 204, "{sent}: {}", r.text().await.unwrap());
        assert_eq!(t.object(kept).await.as_deref(), Some(&b"f"[..]), "{sent}");
    }

    // A key outside the policy's prefix is refused, and a wrong signature too.
    let r = t.send(fields("elsewhere.txt"), b"x".to_vec(), "x").await;
    assert_eq!(xml_code(r).await, (403, "AccessDenied".into()));
    let mut bad = fields("up/bad.txt");
    bad.last_mut().unwrap().1 = "0".repeat(64);
    let r = t.send(bad, b"x".to_vec(), "x").await;
    assert_eq!(xml_code(r).await, (403, "SignatureDoesNotMatch".into()));
    assert!(t.object("up/bad.txt").await.is_none());
}

fn sign(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes()).as_ref().to_vec()
}

/// The refusals of s3-tests' POST cases, each storing nothing.
#[tokio::test]
async fn post_object_refusals() {
    let t = setup().await;
    let p = policy(conditions());
    // test_post_object_invalid_signature, test_post_object_invalid_access_key,
    // test_post_object_authenticated_request_bad_access_key.
    let mut f = t.v2(&p);
    f[2].1 = B64.encode([0u8; 20]);
    f.extend([
        ("key".into(), "foo.txt".into()),
        ("acl".into(), "private".into()),
        ("Content-Type".into(), "text/plain".into()),
    ]);
    assert_eq!(xml_code(t.send(f, b"bar".to_vec(), "x").await).await, (403, "SignatureDoesNotMatch".into()));
    let mut f = t.v2(&p);
    f[0].1 = "AKIANOSUCHKEY0000000".into();
    f.extend([
        ("key".into(), "foo.txt".into()),
        ("acl".into(), "private".into()),
        ("Content-Type".into(), "text/plain".into()),
    ]);
    assert_eq!(xml_code(t.send(f, b"bar".to_vec(), "x").await).await, (403, "InvalidAccessKeyId".into()));
    // test_post_object_missing_signature (400), test_post_object_no_key_specified (400),
    // test_post_object_anonymous_request (davit has no public-write bucket: 403).
    let f = vec![
        ("key".into(), "foo.txt".into()),
        ("AWSAccessKeyId".into(), t.sdk.key.clone()),
        ("policy".into(), p.clone()),
    ];
    assert_eq!(xml_code(t.send(f, b"bar".to_vec(), "x").await).await.0, 400);
    let mut f = t.v2(&p);
    f.extend([("acl".into(), "private".into()), ("Content-Type".into(), "text/plain".into())]);
    assert_eq!(xml_code(t.send(f, b"bar".to_vec(), "x").await).await, (400, "InvalidArgument".into()));
    let f = vec![("key".into(), "foo.txt".into())];
    assert_eq!(xml_code(t.send(f, b"bar".to_vec(), "x").await).await, (403, "AccessDenied".into()));
    // test_post_object_missing_policy_condition: a field no condition names.
    let c = serde_json::json!([{"bucket": "bkt"}, ["starts-with", "$key", "foo"], {"acl": "private"}, ["content-length-range", 0, 1024]]);
    assert_eq!(xml_code(t.form(&policy(c), &[], b"bar").await).await, (403, "AccessDenied".into()));
    // test_post_object_request_missing_policy_specified_field and
    // test_post_object_invalid_request_field_value.
    let mut c = conditions();
    c.as_array_mut().unwrap().push(serde_json::json!(["eq", "$x-amz-meta-foo", "bar"]));
    assert_eq!(xml_code(t.form(&policy(c.clone()), &[], b"bar").await).await, (403, "AccessDenied".into()));
    assert_eq!(
        xml_code(t.form(&policy(c), &[("x-amz-meta-foo", "barclamp")], b"bar").await).await,
        (403, "AccessDenied".into())
    );
    // test_post_object_wrong_bucket.
    let mut c = conditions();
    c[0] = serde_json::json!({"bucket": "other"});
    assert_eq!(xml_code(t.form(&policy(c), &[], b"bar").await).await, (403, "AccessDenied".into()));
    // test_post_object_expired_policy.
    let expired =
        B64.encode(serde_json::json!({"expiration": expiration(-6000), "conditions": conditions()}).to_string());
    assert_eq!(xml_code(t.form(&expired, &[], b"bar").await).await, (403, "AccessDenied".into()));
    // test_post_object_condition_is_case_sensitive, test_post_object_expires_is_case_sensitive,
    // test_post_object_missing_expires_condition, test_post_object_missing_conditions_list,
    // test_post_object_empty_conditions, test_post_object_invalid_date_format,
    // test_post_object_invalid_content_length_argument,
    // test_post_object_missing_content_length_argument: malformed policies.
    for doc in [
        serde_json::json!({"expiration": expiration(6000), "CONDITIONS": conditions()}),
        serde_json::json!({"EXPIRATION": expiration(6000), "conditions": conditions()}),
        serde_json::json!({"conditions": conditions()}),
        serde_json::json!({"expiration": expiration(6000)}),
        serde_json::json!({"expiration": expiration(6000), "conditions": [{}]}),
        serde_json::json!({"expiration": "2026-13-01 00:00:00", "conditions": conditions()}),
        serde_json::json!({"expiration": expiration(6000), "conditions": [["content-length-range", -1, 0]]}),
        serde_json::json!({"expiration": expiration(6000), "conditions": [["content-length-range", 0]]}),
    ] {
        let p = B64.encode(doc.to_string());
        assert_eq!(xml_code(t.form(&p, &[], b"bar").await).await, (400, "InvalidPolicyDocument".into()), "{doc}");
    }
    // test_post_object_upload_size_limit_exceeded, test_post_object_upload_size_below_minimum.
    let mut c = conditions();
    c[4] = serde_json::json!(["content-length-range", 0, 0]);
    assert_eq!(xml_code(t.form(&policy(c), &[], b"bar").await).await, (400, "EntityTooLarge".into()));
    let mut c = conditions();
    c[4] = serde_json::json!(["content-length-range", 512, 1000]);
    assert_eq!(xml_code(t.form(&policy(c), &[], b"bar").await).await, (400, "EntityTooSmall".into()));
    // Nothing of these reached the bucket.
    let listed = t.sdk.c.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0), "{:?}", listed.contents());
    // A form to a key's URL is no POST object; s3s refuses it.
    let r = t.http.post(t.sdk.s.url("/bkt/foo.txt")).multipart(Form::new().text("key", "x")).send().await.unwrap();
    assert!(r.status().is_client_error());
    let _ = t.sdk.c.put_object().bucket("bkt").key("after").body(ByteStream::from_static(b"ok")).send().await.unwrap();
}
