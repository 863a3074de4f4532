//! Object lock as aws-sdk-s3 sees it, ported from ceph/s3-tests
//! (`s3tests_boto3/functional/test_s3.py`, the `test_object_lock_*` functions; each test names
//! those it covers), and the same rules reached over WebDAV and REST.

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, Delete, ObjectIdentifier, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    ObjectLockRule, VersioningConfiguration,
};
use reqwest::Method;

use super::*;
use crate::support::PASSWORD;

/// 2030-01-01T00:00:00Z and two days later, the dates s3-tests uses.
const Y2030: i64 = 1_893_456_000;
const Y2030_JAN3: i64 = Y2030 + 2 * 86_400;

async fn locked_bucket(c: &Client, name: &str) {
    c.create_bucket().bucket(name).object_lock_enabled_for_bucket(true).send().await.unwrap();
}

async fn put(c: &Client, bucket: &str, key: &str) -> String {
    let out = c.put_object().bucket(bucket).key(key).body(ByteStream::from_static(b"abc")).send().await.unwrap();
    out.version_id().expect("a version id").to_owned()
}

fn config(mode: &str, days: Option<i32>, years: Option<i32>, enabled: &str) -> ObjectLockConfiguration {
    let d = DefaultRetention::builder().mode(ObjectLockRetentionMode::from(mode)).set_days(days).set_years(years);
    ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::from(enabled))
        .rule(ObjectLockRule::builder().default_retention(d.build()).build())
        .build()
}

fn retention(mode: &str, secs: i64) -> ObjectLockRetention {
    ObjectLockRetention::builder()
        .mode(ObjectLockRetentionMode::from(mode))
        .retain_until_date(DateTime::from_secs(secs))
        .build()
}

fn hold(status: &str) -> ObjectLockLegalHold {
    ObjectLockLegalHold::builder().status(ObjectLockLegalHoldStatus::from(status)).build()
}

async fn set_retention(c: &Client, key: &str, v: &str, mode: &str, secs: i64, bypass: bool) -> (u16, String) {
    let r = c
        .put_object_retention()
        .bucket("lockb")
        .key(key)
        .version_id(v)
        .retention(retention(mode, secs))
        .bypass_governance_retention(bypass)
        .send()
        .await;
    match r {
        Ok(_) => (200, String::new()),
        Err(e) => refusal::<(), _>(Err(e)),
    }
}

/// test_object_lock_put_obj_lock, _get_obj_lock, _put_obj_lock_invalid_bucket,
/// _put_obj_lock_with_days_and_years, _put_obj_lock_invalid_days, _put_obj_lock_invalid_years,
/// _put_obj_lock_invalid_mode, _put_obj_lock_invalid_status, _suspend_versioning,
/// _get_obj_lock_invalid_bucket.
#[tokio::test]
async fn bucket_lock_configuration() {
    let Sdk { s, c, .. } = start().await;
    locked_bucket(&c, "lockb").await;
    let v = c.get_bucket_versioning().bucket("lockb").send().await.unwrap();
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    for conf in [config("GOVERNANCE", Some(1), None, "Enabled"), config("COMPLIANCE", None, Some(1), "Enabled")] {
        c.put_object_lock_configuration().bucket("lockb").object_lock_configuration(conf.clone()).send().await.unwrap();
        let got = c.get_object_lock_configuration().bucket("lockb").send().await.unwrap();
        assert_eq!(got.object_lock_configuration(), Some(&conf));
    }
    let bad = [
        (config("GOVERNANCE", Some(1), Some(1), "Enabled"), "MalformedXML"),
        (config("GOVERNANCE", Some(0), None, "Enabled"), "InvalidRetentionPeriod"),
        (config("GOVERNANCE", None, Some(-1), "Enabled"), "InvalidRetentionPeriod"),
        (config("abc", Some(1), None, "Enabled"), "MalformedXML"),
        (config("governance", Some(1), None, "Enabled"), "MalformedXML"),
        (config("GOVERNANCE", Some(1), None, "Disabled"), "MalformedXML"),
    ];
    for (conf, code) in bad {
        let r = c.put_object_lock_configuration().bucket("lockb").object_lock_configuration(conf).send().await;
        assert_eq!(refusal(r), (400, code.to_owned()));
    }
    let suspend = VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build();
    let r = c.put_bucket_versioning().bucket("lockb").versioning_configuration(suspend).send().await;
    assert_eq!(refusal(r), (409, "InvalidBucketState".to_owned()));

    c.create_bucket().bucket("plain").send().await.unwrap();
    let conf = config("GOVERNANCE", Some(1), None, "Enabled");
    let r = c.put_object_lock_configuration().bucket("plain").object_lock_configuration(conf).send().await;
    assert_eq!(refusal(r), (409, "InvalidBucketState".to_owned()));
    let r = c.get_object_lock_configuration().bucket("plain").send().await;
    assert_eq!(refusal(r), (404, "ObjectLockConfigurationNotFoundError".to_owned()));
    s.stop().await;
}

/// test_object_lock_put_obj_retention, _get_obj_retention, _get_obj_retention_iso8601,
/// _put_obj_retention_versionid, _put_obj_retention_invalid_bucket,
/// _get_obj_retention_invalid_bucket, _put_obj_retention_invalid_mode,
/// _put_obj_retention_override_default_retention, _put_obj_retention_increase_period,
/// _put_obj_retention_shorten_period, _put_obj_retention_shorten_period_bypass,
/// _changing_mode_from_governance_with_bypass, _changing_mode_from_governance_without_bypass,
/// _changing_mode_from_compliance.
#[tokio::test]
async fn object_retention() {
    let Sdk { s, c, .. } = start().await;
    locked_bucket(&c, "lockb").await;
    let conf = config("GOVERNANCE", Some(1), None, "Enabled");
    c.put_object_lock_configuration().bucket("lockb").object_lock_configuration(conf).send().await.unwrap();
    let v1 = put(&c, "lockb", "file1").await;
    let v2 = put(&c, "lockb", "file1").await;
    // The default retention applied to the new version; a later date overrides it.
    let got = c.get_object_retention().bucket("lockb").key("file1").send().await.unwrap();
    assert_eq!(got.retention().and_then(|r| r.mode()), Some(&ObjectLockRetentionMode::Governance));
    assert_eq!(set_retention(&c, "file1", &v1, "GOVERNANCE", Y2030, false).await.0, 200);
    let got = c.get_object_retention().bucket("lockb").key("file1").version_id(&v1).send().await.unwrap();
    assert_eq!(got.retention(), Some(&retention("GOVERNANCE", Y2030)));
    // Increase, then shorten (refused), then shorten with the bypass.
    assert_eq!(set_retention(&c, "file1", &v1, "GOVERNANCE", Y2030_JAN3, false).await.0, 200);
    let got = c.get_object_retention().bucket("lockb").key("file1").version_id(&v1).send().await.unwrap();
    assert_eq!(got.retention(), Some(&retention("GOVERNANCE", Y2030_JAN3)));
    assert_eq!(set_retention(&c, "file1", &v1, "GOVERNANCE", Y2030, false).await, (403, "AccessDenied".into()));
    assert_eq!(set_retention(&c, "file1", &v1, "GOVERNANCE", Y2030, true).await.0, 200);
    // GOVERNANCE -> COMPLIANCE: only with the bypass; COMPLIANCE -> GOVERNANCE: never.
    assert_eq!(set_retention(&c, "file1", &v1, "COMPLIANCE", Y2030, false).await, (403, "AccessDenied".into()));
    assert_eq!(set_retention(&c, "file1", &v1, "COMPLIANCE", Y2030, true).await.0, 200);
    assert_eq!(set_retention(&c, "file1", &v1, "GOVERNANCE", Y2030, true).await, (403, "AccessDenied".into()));
    // Invalid mode.
    assert_eq!(set_retention(&c, "file1", &v2, "governance", Y2030, false).await, (400, "MalformedXML".into()));

    c.create_bucket().bucket("plain").send().await.unwrap();
    c.put_object().bucket("plain").key("k").body(ByteStream::from_static(b"x")).send().await.unwrap();
    let r = c.put_object_retention().bucket("plain").key("k").retention(retention("GOVERNANCE", Y2030)).send().await;
    assert_eq!(refusal(r), (400, "InvalidRequest".to_owned()));
    let r = c.get_object_retention().bucket("plain").key("k").send().await;
    assert_eq!(refusal(r), (400, "InvalidRequest".to_owned()));
    s.stop().await;
}

/// test_object_lock_delete_object_with_retention, _delete_object_with_retention_and_marker,
/// _multi_delete_object_with_retention, _delete_multipart_object_with_retention.
#[tokio::test]
async fn retained_versions_are_not_deleted() {
    let Sdk { s, c, .. } = start().await;
    locked_bucket(&c, "lockb").await;
    let v = put(&c, "lockb", "file1").await;
    assert_eq!(set_retention(&c, "file1", &v, "GOVERNANCE", Y2030, false).await.0, 200);
    let r = c.delete_object().bucket("lockb").key("file1").version_id(&v).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".to_owned()));
    // A plain delete leaves a marker (allowed); the marker itself can go.
    let del = c.delete_object().bucket("lockb").key("file1").send().await.unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del.version_id().unwrap().to_owned();
    c.delete_object().bucket("lockb").key("file1").version_id(&marker).send().await.unwrap();
    let r = c.delete_object().bucket("lockb").key("file1").version_id(&v).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".to_owned()));
    c.delete_object()
        .bucket("lockb")
        .key("file1")
        .version_id(&v)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();

    // DeleteObjects: the refusal per key, then the bypass.
    let v = put(&c, "lockb", "file2").await;
    assert_eq!(set_retention(&c, "file2", &v, "GOVERNANCE", Y2030, false).await.0, 200);
    let one = || {
        let id = ObjectIdentifier::builder().key("file2").version_id(&v).build().unwrap();
        Delete::builder().objects(id).build().unwrap()
    };
    let out = c.delete_objects().bucket("lockb").delete(one()).send().await.unwrap();
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
    let out = c.delete_objects().bucket("lockb").delete(one()).bypass_governance_retention(true).send().await.unwrap();
    assert!(out.errors().is_empty() && out.deleted().len() == 1);

    // A multipart object under the retention CreateMultipartUpload asked for.
    let up = c
        .create_multipart_upload()
        .bucket("lockb")
        .key("mp")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(DateTime::from_secs(Y2030))
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = c.upload_part().bucket("lockb").key("mp").upload_id(id).part_number(1);
    let etag = part.body(ByteStream::from_static(b"part")).send().await.unwrap().e_tag().unwrap().to_owned();
    let done = aws_sdk_s3::types::CompletedPart::builder().part_number(1).e_tag(etag).build();
    let mpu = aws_sdk_s3::types::CompletedMultipartUpload::builder().parts(done).build();
    let out = c.complete_multipart_upload().bucket("lockb").key("mp").upload_id(id).multipart_upload(mpu);
    let v = out.send().await.unwrap().version_id().unwrap().to_owned();
    let got = c.get_object_retention().bucket("lockb").key("mp").version_id(&v).send().await.unwrap();
    assert_eq!(got.retention(), Some(&retention("GOVERNANCE", Y2030)));
    let r = c.delete_object().bucket("lockb").key("mp").version_id(&v).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".to_owned()));
    c.delete_object().bucket("lockb").key("mp").version_id(&v).bypass_governance_retention(true).send().await.unwrap();
    s.stop().await;
}

/// test_object_lock_put_legal_hold, _get_legal_hold, _put_legal_hold_invalid_bucket,
/// _put_legal_hold_invalid_status, _get_legal_hold_invalid_bucket,
/// _delete_object_with_legal_hold_on, _delete_object_with_legal_hold_off,
/// _get_obj_metadata, _uploading_obj.
#[tokio::test]
async fn legal_hold_and_lock_headers() {
    let Sdk { s, c, .. } = start().await;
    locked_bucket(&c, "lockb").await;
    let v = put(&c, "lockb", "file1").await;
    c.put_object_legal_hold().bucket("lockb").key("file1").legal_hold(hold("ON")).send().await.unwrap();
    let got = c.get_object_legal_hold().bucket("lockb").key("file1").send().await.unwrap();
    assert_eq!(got.legal_hold(), Some(&hold("ON")));
    let r =
        c.delete_object().bucket("lockb").key("file1").version_id(&v).bypass_governance_retention(true).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".to_owned()));
    let r = c.put_object_legal_hold().bucket("lockb").key("file1").legal_hold(hold("abc")).send().await;
    assert_eq!(refusal(r), (400, "MalformedXML".to_owned()));
    // HEAD answers the lock (with a retention too).
    assert_eq!(set_retention(&c, "file1", &v, "GOVERNANCE", Y2030, false).await.0, 200);
    let head = c.head_object().bucket("lockb").key("file1").send().await.unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(head.object_lock_retain_until_date(), Some(&DateTime::from_secs(Y2030)));
    assert_eq!(head.object_lock_legal_hold_status(), Some(&ObjectLockLegalHoldStatus::On));
    c.put_object_legal_hold().bucket("lockb").key("file1").legal_hold(hold("OFF")).send().await.unwrap();
    let got = c.get_object_legal_hold().bucket("lockb").key("file1").send().await.unwrap();
    assert_eq!(got.legal_hold(), Some(&hold("OFF")));
    c.delete_object()
        .bucket("lockb")
        .key("file1")
        .version_id(&v)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();

    // A PUT with the lock headers; GET answers them.
    let out = c
        .put_object()
        .bucket("lockb")
        .key("file2")
        .body(ByteStream::from_static(b"abc"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(DateTime::from_secs(Y2030))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap();
    let v = out.version_id().unwrap().to_owned();
    let got = c.get_object().bucket("lockb").key("file2").send().await.unwrap();
    assert_eq!(got.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(got.object_lock_retain_until_date(), Some(&DateTime::from_secs(Y2030)));
    assert_eq!(got.object_lock_legal_hold_status(), Some(&ObjectLockLegalHoldStatus::On));
    c.put_object_legal_hold().bucket("lockb").key("file2").version_id(&v).legal_hold(hold("OFF")).send().await.unwrap();
    c.delete_object()
        .bucket("lockb")
        .key("file2")
        .version_id(&v)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();

    // Lock headers need a bucket with object lock, and both mode and date.
    c.create_bucket().bucket("plain").send().await.unwrap();
    let r = c.put_object_legal_hold().bucket("plain").key("k").legal_hold(hold("ON")).send().await;
    assert_eq!(refusal(r), (400, "InvalidRequest".to_owned()));
    let r = c.get_object_legal_hold().bucket("plain").key("k").send().await;
    assert_eq!(refusal(r), (400, "InvalidRequest".to_owned()));
    let r = c
        .put_object()
        .bucket("plain")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await;
    assert_eq!(refusal(r), (400, "InvalidRequest".to_owned()));
    let r = c
        .put_object()
        .bucket("lockb")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .object_lock_mode(ObjectLockMode::Governance)
        .send()
        .await;
    assert_eq!(refusal(r), (400, "InvalidArgument".to_owned()));
    s.stop().await;
}

/// S3's rule that a request setting a lock carries Content-MD5 or an `x-amz-checksum-*`
/// (InvalidRequest otherwise), which the SDK meets on its own (it sends CRC32) and s3-tests'
/// boto3 too (test_object_lock_uploading_obj, _put_obj_retention, _put_legal_hold pass above
/// with the SDK's defaults).
#[tokio::test]
async fn lock_requests_need_an_integrity_header() {
    let Sdk { s, c, key, secret } = start().await;
    locked_bucket(&c, "lockb").await;
    // An SDK told to send checksums only where the API requires them sends none on PutObject.
    let bare = Client::from_conf(
        super::config(&s.base, &key, &secret, false)
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .build(),
    );
    let locked_put = |c: &Client, k: &str| {
        c.put_object()
            .bucket("lockb")
            .key(k)
            .body(ByteStream::from_static(b"abc"))
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(DateTime::from_secs(Y2030))
    };
    assert_eq!(refusal(locked_put(&bare, "k").send().await), (400, "InvalidRequest".to_owned()));
    let r = bare
        .put_object()
        .bucket("lockb")
        .key("k")
        .body(ByteStream::from_static(b"abc"))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await;
    assert_eq!(refusal(r), (400, "InvalidRequest".to_owned()), "a legal hold alone needs it too");
    let listed = c.list_object_versions().bucket("lockb").send().await.unwrap();
    assert!(listed.versions().is_empty(), "a refused PUT stored nothing");
    // Content-MD5 alone, or the SDK's default CRC32, is enough; a PUT without lock headers
    // needs neither.
    locked_put(&bare, "md5").content_md5("kAFQmDzST7DWlj99KOF/cg==").send().await.unwrap();
    locked_put(&c, "crc").send().await.unwrap();
    bare.put_object().bucket("lockb").key("plain").body(ByteStream::from_static(b"abc")).send().await.unwrap();
    let head = c.head_object().bucket("lockb").key("md5").send().await.unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));

    // PutObjectRetention, PutObjectLegalHold and PutObjectLockConfiguration, sent bare.
    let signer = crate::s3_sign::Signer { base: s.base.clone(), key, secret, client: support::tls_client() };
    let ns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
    let cases = [
        (
            "retention",
            "/lockb/plain",
            format!(
                "<Retention {ns}><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>"
            ),
        ),
        ("legal-hold", "/lockb/plain", format!("<LegalHold {ns}><Status>ON</Status></LegalHold>")),
        (
            "object-lock",
            "/lockb",
            format!(
                "<ObjectLockConfiguration {ns}><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>"
            ),
        ),
    ];
    for (q, path, xml) in cases {
        let payload = crate::s3_sign::sha256_hex(xml.as_bytes());
        let r = signer.request(Method::PUT, path, &[(q, "")], &[], &payload).body(xml.clone()).send().await.unwrap();
        assert_eq!(xml_code(r).await, (400, "InvalidRequest".into()), "{q} without an integrity header");
        let digest = <md5::Md5 as md5::Digest>::digest(xml.as_bytes());
        let md5 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, digest);
        let r =
            signer.request(Method::PUT, path, &[(q, "")], &[("content-md5", &md5)], &payload).body(xml).send().await;
        assert_eq!(r.unwrap().status(), 200, "{q} with Content-MD5");
    }
    let got = c.get_object_legal_hold().bucket("lockb").key("plain").send().await.unwrap();
    assert_eq!(got.legal_hold(), Some(&hold("ON")));
    s.stop().await;
}

/// The same rules over WebDAV and REST: a WebDAV DELETE leaves a marker, a MOVE of a held
/// version and a REST delete of a retained version are refused (403), the REST bypass works.
#[tokio::test]
async fn webdav_and_rest_obey_the_lock() {
    let Sdk { s, c, .. } = start().await;
    locked_bucket(&c, "lockb").await;
    let v = put(&c, "lockb", "doc.txt").await;
    assert_eq!(set_retention(&c, "doc.txt", &v, "GOVERNANCE", Y2030, false).await.0, 200);
    let dav = |m: &str, path: &str| {
        let m = Method::from_bytes(m.as_bytes()).unwrap();
        support::tls_client().request(m, s.url(&format!("/dav{path}"))).basic_auth("alice", Some(PASSWORD))
    };
    let rest =
        |m: Method, path: &str| support::tls_client().request(m, s.url(path)).basic_auth("alice", Some(PASSWORD));
    let r = dav("MOVE", "/lockb/doc.txt").header("Destination", s.url("/dav/lockb/moved.txt")).send().await.unwrap();
    assert_eq!(r.status(), 403, "a MOVE would destroy the retained version at its key");
    assert_eq!(dav("DELETE", "/lockb/doc.txt").send().await.unwrap().status(), 204);
    let out = c.list_object_versions().bucket("lockb").send().await.unwrap();
    assert_eq!(out.delete_markers().len(), 1);
    assert_eq!(out.versions().len(), 1, "the retained version stays");

    let url = format!("/api/v1/versions/lockb/doc.txt?version={v}");
    let r = rest(Method::DELETE, &url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/problem+json"));
    let text = r.text().await.unwrap();
    assert!(text.contains("GOVERNANCE retention") && text.contains("object_locked"), "{text}");
    let r = rest(Method::DELETE, &format!("{url}&bypass_governance=true")).send().await.unwrap();
    assert_eq!(r.status(), 204);

    // Deleting the user: refused while a version is retained, naming it; GOVERNANCE yields to
    // the admin's explicit bypass.
    let v = put(&c, "lockb", "g.txt").await;
    assert_eq!(set_retention(&c, "g.txt", &v, "GOVERNANCE", Y2030, false).await.0, 200);
    let me: serde_json::Value = rest(Method::GET, "/api/v1/me").send().await.unwrap().json().await.unwrap();
    let user = format!("/api/v1/admin/users/{}", me["id"].as_u64().unwrap());
    let admin =
        |path: &str| support::tls_client().request(Method::DELETE, s.url(path)).basic_auth("admin", Some(PASSWORD));
    let r = admin(&user).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.contains("g.txt (version"), "the admin is told which objects: {text}");
    assert_eq!(admin(&format!("{user}?bypass_governance=true")).send().await.unwrap().status(), 204);
    s.stop().await;
}
