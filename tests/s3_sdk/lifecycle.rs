//! Bucket lifecycle as the SDK sees it: configurations kept and refused as S3 does, and the
//! background pass expiring objects (in versioned buckets too) and aborting uploads, with a "day" of one second (the
//! test setting `--lifecycle-day-seconds`). Ported from ceph/s3-tests
//! (`s3tests/functional/test_s3.py`); each test names the cases it covers.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration,
    Tag, Transition, TransitionStorageClass, VersioningConfiguration,
};

use super::*;

/// A server whose lifecycle pass runs every 200 ms with a day of one second.
async fn fast() -> Sdk {
    let sdk = start_with(Options {
        configure: |c| {
            c.ops.lifecycle_interval = Some(Duration::from_millis(200));
            c.ops.lifecycle_day = Duration::from_secs(1);
        },
        ..Default::default()
    })
    .await;
    sdk.c.create_bucket().bucket("bkt").send().await.unwrap();
    sdk
}

fn rule(id: Option<&str>, filter: LifecycleRuleFilter, days: i32) -> LifecycleRule {
    LifecycleRule::builder()
        .set_id(id.map(str::to_owned))
        .filter(filter)
        .status(ExpirationStatus::Enabled)
        .expiration(LifecycleExpiration::builder().days(days).build())
        .build()
        .unwrap()
}

fn prefix(p: &str) -> LifecycleRuleFilter {
    LifecycleRuleFilter::builder().prefix(p).build()
}

fn config(rules: Vec<LifecycleRule>) -> BucketLifecycleConfiguration {
    BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().unwrap()
}

async fn put(c: &Client, key: &str) {
    c.put_object().bucket("bkt").key(key).body(ByteStream::from_static(b"x")).send().await.unwrap();
}

async fn exists(c: &Client, key: &str) -> bool {
    match c.head_object().bucket("bkt").key(key).send().await {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(refusal::<(), _>(Err(e)).0, 404, "{key}");
            false
        }
    }
}

/// Waits (at most 20 s) until none of `keys` exists.
async fn until_gone(c: &Client, keys: &[&str]) {
    let start = Instant::now();
    for key in keys {
        while exists(c, key).await {
            assert!(start.elapsed() < Duration::from_secs(20), "{key} was not expired in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// test_lifecycle_set, test_lifecycle_get, test_lifecycle_get_no_id, test_lifecycle_set_filter,
/// test_lifecycle_set_empty_filter, test_lifecycle_set_date, test_lifecycle_set_noncurrent,
/// test_lifecycle_set_deletemarker, test_lifecycle_set_multipart.
#[tokio::test]
async fn configurations_are_kept_and_answered_as_sent() {
    let Sdk { s: _s, c, .. } = start().await;
    let (status, code) = refusal(c.get_bucket_lifecycle_configuration().bucket("bkt").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchLifecycleConfiguration"));
    let tag = Tag::builder().key("key1").value("value1").build().unwrap();
    let and = LifecycleRuleAndOperator::builder().prefix("logs/").tags(tag.clone()).build();
    let rules = vec![
        rule(Some("rule1"), prefix("test1/"), 31),
        rule(Some("rule2"), LifecycleRuleFilter::builder().tag(tag.clone()).build(), 120),
        rule(None, LifecycleRuleFilter::builder().and(and).build(), 7),
        rule(None, LifecycleRuleFilter::builder().build(), 3),
        LifecycleRule::builder()
            .id("date")
            .filter(prefix("dated/"))
            .status(ExpirationStatus::Disabled)
            .expiration(LifecycleExpiration::builder().date(DateTime::from_secs(1_767_225_600)).build())
            .build()
            .unwrap(),
        LifecycleRule::builder()
            .id("noncurrent")
            .filter(prefix("old/"))
            .status(ExpirationStatus::Enabled)
            .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(2).build())
            .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
            .build()
            .unwrap(),
        LifecycleRule::builder()
            .id("multipart")
            .filter(prefix("uploads/"))
            .status(ExpirationStatus::Enabled)
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(2).build(),
            )
            .build()
            .unwrap(),
    ];
    c.put_bucket_lifecycle_configuration()
        .bucket("bkt")
        .lifecycle_configuration(config(rules.clone()))
        .send()
        .await
        .unwrap();
    let got = c.get_bucket_lifecycle_configuration().bucket("bkt").send().await.unwrap();
    let got = got.rules();
    assert_eq!(got.len(), rules.len());
    // Rules without an ID got one; everything else is as sent.
    for (i, (sent, back)) in rules.iter().zip(got).enumerate() {
        assert!(back.id().is_some_and(|id| !id.is_empty()), "rule {i}");
        let mut sent = sent.clone();
        sent.id = back.id.clone();
        assert_eq!(&sent, back, "rule {i}");
    }
    assert_ne!(got[2].id(), got[3].id());
    c.delete_bucket_lifecycle().bucket("bkt").send().await.unwrap();
    let (status, code) = refusal(c.get_bucket_lifecycle_configuration().bucket("bkt").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchLifecycleConfiguration"));
    let r = c.get_bucket_lifecycle_configuration().bucket("nobucket").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".to_owned()));
}

/// test_lifecycle_id_too_long, test_lifecycle_same_id, test_lifecycle_invalid_status,
/// test_lifecycle_expiration_days0; transitions are refused (one storage class).
#[tokio::test]
async fn invalid_configurations_are_refused_as_s3_refuses_them() {
    let Sdk { s: _s, c, .. } = start().await;
    let send = |rules: Vec<LifecycleRule>| {
        c.put_bucket_lifecycle_configuration().bucket("bkt").lifecycle_configuration(config(rules)).send()
    };
    let long = "a".repeat(256);
    let (status, code) = refusal(send(vec![rule(Some(&long), prefix("x/"), 1)]).await);
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"), "ID too long");
    let (status, code) =
        refusal(send(vec![rule(Some("same"), prefix("a/"), 1), rule(Some("same"), prefix("b/"), 2)]).await);
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"), "same ID");
    let (status, code) = refusal(send(vec![rule(Some("zero"), prefix("a/"), 0)]).await);
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"), "Days 0");
    for status_text in ["enabled", "disabled", "invalid"] {
        let mut bad = rule(Some("s"), prefix("a/"), 1);
        bad.status = ExpirationStatus::from(status_text);
        let (status, code) = refusal(send(vec![bad]).await);
        assert_eq!((status, code.as_str()), (400, "MalformedXML"), "{status_text}");
    }
    let transition = LifecycleRule::builder()
        .id("t")
        .filter(prefix("a/"))
        .status(ExpirationStatus::Enabled)
        .transitions(Transition::builder().days(1).storage_class(TransitionStorageClass::Glacier).build())
        .build()
        .unwrap();
    let (status, code) = refusal(send(vec![transition]).await);
    assert_eq!((status, code.as_str()), (400, "InvalidStorageClass"));
    let many: Vec<LifecycleRule> = (0..1001).map(|i| rule(Some(&format!("r{i}")), prefix("a/"), 1)).collect();
    let (status, code) = refusal(send(many).await);
    assert_eq!((status, code.as_str()), (400, "MalformedXML"), "1001 rules");
    // Nothing was stored by any of them.
    assert_eq!(refusal(c.get_bucket_lifecycle_configuration().bucket("bkt").send().await).0, 404);
}

/// test_lifecycle_expiration, test_lifecyclev2_expiration, test_lifecycle_expiration_tags1,
/// test_lifecycle_expiration_date.
#[tokio::test]
async fn objects_expire_by_days_prefix_tag_and_date() {
    let Sdk { s: _s, c, .. } = fast().await;
    for key in ["expire1/foo", "expire1/bar", "keep2/foo", "keep2/bar", "expire3/foo", "dated/a"] {
        put(&c, key).await;
    }
    c.put_object()
        .bucket("bkt")
        .key("tagged/yes")
        .tagging("key1=value1")
        .body(ByteStream::from_static(b"t"))
        .send()
        .await
        .unwrap();
    c.put_object()
        .bucket("bkt")
        .key("tagged/no")
        .tagging("key1=other")
        .body(ByteStream::from_static(b"t"))
        .send()
        .await
        .unwrap();
    let tag = Tag::builder().key("key1").value("value1").build().unwrap();
    let past = LifecycleRule::builder()
        .id("date")
        .filter(prefix("dated/"))
        .status(ExpirationStatus::Enabled)
        .expiration(LifecycleExpiration::builder().date(DateTime::from_secs(1_577_836_800)).build())
        .build()
        .unwrap();
    let rules = vec![
        rule(Some("rule1"), prefix("expire1/"), 1),
        rule(Some("rule3"), prefix("expire3/"), 3),
        rule(Some("tag"), LifecycleRuleFilter::builder().tag(tag).build(), 1),
        past,
    ];
    c.put_bucket_lifecycle_configuration().bucket("bkt").lifecycle_configuration(config(rules)).send().await.unwrap();
    until_gone(&c, &["expire1/foo", "expire1/bar", "tagged/yes", "dated/a"]).await;
    // One day has passed, not three: expire3 is still there, and so is what no rule names.
    for key in ["expire3/foo", "keep2/foo", "keep2/bar", "tagged/no"] {
        assert!(exists(&c, key).await, "{key}");
    }
    until_gone(&c, &["expire3/foo"]).await;
    for key in ["keep2/foo", "keep2/bar", "tagged/no"] {
        assert!(exists(&c, key).await, "{key}");
    }
    let listed = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["keep2/bar", "keep2/foo", "tagged/no"]);
}

/// test_lifecycle_multipart_expiration.
#[tokio::test]
async fn old_multipart_uploads_are_aborted() {
    let Sdk { s: _s, c, .. } = fast().await;
    let old = c.create_multipart_upload().bucket("bkt").key("mpu/obj").send().await.unwrap();
    let other = c.create_multipart_upload().bucket("bkt").key("keep/obj").send().await.unwrap();
    let rule = LifecycleRule::builder()
        .id("abort")
        .filter(prefix("mpu/"))
        .status(ExpirationStatus::Enabled)
        .abort_incomplete_multipart_upload(AbortIncompleteMultipartUpload::builder().days_after_initiation(2).build())
        .build()
        .unwrap();
    c.put_bucket_lifecycle_configuration()
        .bucket("bkt")
        .lifecycle_configuration(config(vec![rule]))
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let uploads = c.list_multipart_uploads().bucket("bkt").send().await.unwrap();
        let ids: Vec<&str> = uploads.uploads().iter().filter_map(|u| u.upload_id()).collect();
        if !ids.contains(&old.upload_id().unwrap()) {
            assert_eq!(ids, [other.upload_id().unwrap()], "the upload outside the prefix stays");
            // Not before its two days.
            assert!(start.elapsed() >= Duration::from_millis(1500), "aborted after {:?}", start.elapsed());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the upload was not aborted in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The date and rule of `x-amz-expiration` (`expiry-date="<HTTP date>", rule-id="<id>"`).
fn expiration(header: Option<&str>) -> Option<(std::time::SystemTime, String)> {
    let h = header?;
    let date = h.split("expiry-date=\"").nth(1)?.split('"').next()?;
    let rule = h.split("rule-id=\"").nth(1)?.split('"').next()?;
    Some((davit_http::parse_http_date(date)?, rule.to_owned()))
}

/// test_lifecycle_expiration_header_put, test_lifecycle_expiration_header_head,
/// test_lifecycle_expiration_header_tags_head, test_lifecycle_expiration_header_and_tags_head.
#[tokio::test]
async fn objects_tell_when_a_rule_expires_them() {
    let Sdk { s: _s, c, .. } = start().await;
    let tag = Tag::builder().key("key1").value("value1").build().unwrap();
    let and = LifecycleRuleAndOperator::builder().prefix("both/").tags(tag.clone()).build();
    let rules = vec![
        rule(Some("rule1"), prefix("days1/"), 1),
        rule(Some("tags"), LifecycleRuleFilter::builder().tag(tag).build(), 3),
        rule(Some("and"), LifecycleRuleFilter::builder().and(and).build(), 5),
    ];
    c.put_bucket_lifecycle_configuration().bucket("bkt").lifecycle_configuration(config(rules)).send().await.unwrap();
    let now = std::time::SystemTime::now();
    // As S3 (and s3-tests' check): the next midnight UTC after n days, so n whole days away.
    let days = |n: u64, at: std::time::SystemTime| {
        let midnight = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().is_multiple_of(86_400);
        midnight && at.duration_since(now).unwrap().as_secs() / 86_400 == n
    };
    let out = c.put_object().bucket("bkt").key("days1/foo").body(ByteStream::from_static(b"x")).send().await.unwrap();
    let (at, rule) = expiration(out.expiration()).expect("x-amz-expiration on the PUT");
    assert_eq!(rule, "rule1");
    assert!(days(1, at));
    let head = c.head_object().bucket("bkt").key("days1/foo").send().await.unwrap();
    assert_eq!(expiration(head.expiration()).map(|e| e.1).as_deref(), Some("rule1"));
    let get = c.get_object().bucket("bkt").key("days1/foo").send().await.unwrap();
    assert_eq!(expiration(get.expiration()).map(|e| e.1).as_deref(), Some("rule1"));

    c.put_object()
        .bucket("bkt")
        .key("tagged")
        .tagging("key1=value1")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let head = c.head_object().bucket("bkt").key("tagged").send().await.unwrap();
    let (at, rule) = expiration(head.expiration()).expect("x-amz-expiration on the HEAD");
    assert_eq!(rule, "tags");
    assert!(days(3, at));
    // And{prefix, tags}: the prefix with another tag matches no rule; with the tag, the
    // earlier of the two rules that match is told.
    c.put_object()
        .bucket("bkt")
        .key("both/x")
        .tagging("key1=other")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    assert!(c.head_object().bucket("bkt").key("both/x").send().await.unwrap().expiration().is_none());
    c.put_object_tagging()
        .bucket("bkt")
        .key("both/x")
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(Tag::builder().key("key1").value("value1").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let head = c.head_object().bucket("bkt").key("both/x").send().await.unwrap();
    assert_eq!(expiration(head.expiration()).map(|e| e.1).as_deref(), Some("tags"));
    let out = c.put_object().bucket("bkt").key("nothing/x").body(ByteStream::from_static(b"x")).send().await.unwrap();
    assert!(out.expiration().is_none());
}

/// test_lifecycle_expiration_size_gt, test_lifecycle_expiration_size_lt: filters by size.
#[tokio::test]
async fn objects_expire_by_size() {
    let Sdk { s: _s, c, .. } = fast().await;
    let sized = |key: &'static str, len: usize| {
        c.put_object().bucket("bkt").key(key).body(ByteStream::from(vec![b'x'; len])).send()
    };
    sized("big/large", 2000).await.unwrap();
    sized("big/small", 10).await.unwrap();
    sized("little/large", 2000).await.unwrap();
    sized("little/small", 10).await.unwrap();
    let gt = LifecycleRuleAndOperator::builder().prefix("big/").object_size_greater_than(1000).build();
    let rules = vec![
        rule(Some("gt"), LifecycleRuleFilter::builder().and(gt).build(), 1),
        rule(Some("lt"), LifecycleRuleFilter::builder().object_size_less_than(1000).build(), 1),
    ];
    c.put_bucket_lifecycle_configuration()
        .bucket("bkt")
        .lifecycle_configuration(config(rules.clone()))
        .send()
        .await
        .unwrap();
    let got = c.get_bucket_lifecycle_configuration().bucket("bkt").send().await.unwrap();
    assert_eq!(got.rules(), rules.as_slice());
    until_gone(&c, &["big/large", "big/small", "little/small"]).await;
    assert!(exists(&c, "little/large").await);
}

async fn enable_versioning(c: &Client) {
    let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    c.put_bucket_versioning().bucket("bkt").versioning_configuration(conf).send().await.unwrap();
}

/// (key, is a delete marker) of every version in the bucket, in listing order.
async fn all_versions(c: &Client) -> Vec<(String, bool)> {
    let out = c.list_object_versions().bucket("bkt").send().await.unwrap();
    assert!(!out.is_truncated().unwrap_or(false));
    let mut v: Vec<(String, bool)> =
        out.versions().iter().map(|v| (v.key().unwrap_or_default().to_owned(), false)).collect();
    v.extend(out.delete_markers().iter().map(|m| (m.key().unwrap_or_default().to_owned(), true)));
    v.sort();
    v
}

/// Waits (at most 20 s) until the bucket's versions are `want` (sorted).
async fn until_versions(c: &Client, want: &[(&str, bool)]) {
    let want: Vec<(String, bool)> = want.iter().map(|(k, m)| ((*k).to_owned(), *m)).collect();
    let start = Instant::now();
    loop {
        let now = all_versions(c).await;
        if now == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "versions are {now:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn noncurrent_rule(prefix_: &str, days: i32) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id("rule1")
        .filter(prefix(prefix_))
        .status(ExpirationStatus::Enabled)
        .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(days).build())
}

/// test_lifecycle_noncur_expiration.
#[tokio::test]
async fn noncurrent_versions_expire() {
    let Sdk { s: _s, c, .. } = fast().await;
    enable_versioning(&c).await;
    for _ in 0..3 {
        put(&c, "test1/a").await;
        put(&c, "test2/abc").await;
    }
    let written = Instant::now();
    assert_eq!(all_versions(&c).await.len(), 6);
    let rules = vec![noncurrent_rule("test1/", 2).build().unwrap()];
    c.put_bucket_lifecycle_configuration().bucket("bkt").lifecycle_configuration(config(rules)).send().await.unwrap();
    until_versions(&c, &[("test1/a", false), ("test2/abc", false), ("test2/abc", false), ("test2/abc", false)]).await;
    assert!(written.elapsed() >= Duration::from_millis(1500), "removed after {:?}, before two days", written.elapsed());
    // What stays of test1/a is its current version.
    let head = c.head_object().bucket("bkt").key("test1/a").send().await.unwrap();
    let listed = c.list_object_versions().bucket("bkt").prefix("test1/").send().await.unwrap();
    assert_eq!(listed.versions()[0].version_id(), head.version_id());
    assert_eq!(listed.versions()[0].is_latest(), Some(true));
}

/// test_lifecycle_deletemarker_expiration.
#[tokio::test]
async fn lone_delete_markers_expire() {
    let Sdk { s: _s, c, .. } = fast().await;
    enable_versioning(&c).await;
    for key in ["test1/a", "test2/abc"] {
        put(&c, key).await;
        c.delete_object().bucket("bkt").key(key).send().await.unwrap();
    }
    assert_eq!(all_versions(&c).await.len(), 4);
    let rule = noncurrent_rule("test1/", 1)
        .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
        .build()
        .unwrap();
    c.put_bucket_lifecycle_configuration()
        .bucket("bkt")
        .lifecycle_configuration(config(vec![rule]))
        .send()
        .await
        .unwrap();
    // test1/a's version goes after a day, and then its marker, alone.
    until_versions(&c, &[("test2/abc", false), ("test2/abc", true)]).await;
}

/// test_lifecycle_expiration_versioning_enabled: expiring a current object in a versioned
/// bucket leaves a delete marker over it, and a marker over a version is not removed.
#[tokio::test]
async fn expiration_in_a_versioned_bucket_leaves_a_delete_marker() {
    let Sdk { s: _s, c, .. } = fast().await;
    enable_versioning(&c).await;
    put(&c, "test1/a").await;
    c.delete_object().bucket("bkt").key("test1/a").send().await.unwrap();
    put(&c, "test1/b").await;
    let rules = vec![rule(Some("rule1"), prefix("test1/"), 1)];
    c.put_bucket_lifecycle_configuration().bucket("bkt").lifecycle_configuration(config(rules)).send().await.unwrap();
    until_gone(&c, &["test1/b"]).await;
    let want = [("test1/a", false), ("test1/a", true), ("test1/b", false), ("test1/b", true)];
    assert_eq!(all_versions(&c).await, want.map(|(k, m)| (k.to_owned(), m)));
    let b = c.list_object_versions().bucket("bkt").prefix("test1/b").send().await.unwrap();
    assert_eq!(b.delete_markers()[0].is_latest(), Some(true), "the marker is the latest version");
    // Two more days: the markers cover a version each, and stay.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(all_versions(&c).await, want.map(|(k, m)| (k.to_owned(), m)));
}

/// NoncurrentVersionExpiration filtered by tag reaches old versions by the tags they kept
/// (after test_lifecycle_noncur_expiration, with a tag filter as S3 documents it).
#[tokio::test]
async fn tag_filtered_noncurrent_expiration_reaches_old_versions() {
    let Sdk { s: _s, c, .. } = fast().await;
    enable_versioning(&c).await;
    let put_tagged = |key: &'static str, t: &'static str| {
        c.put_object().bucket("bkt").key(key).tagging(t).body(ByteStream::from_static(b"x")).send()
    };
    put_tagged("a", "class=temp").await.unwrap();
    put_tagged("a", "class=keep").await.unwrap();
    put_tagged("b", "class=keep").await.unwrap();
    put_tagged("b", "class=keep").await.unwrap();
    let filter = LifecycleRuleFilter::builder().tag(Tag::builder().key("class").value("temp").build().unwrap()).build();
    let rule = LifecycleRule::builder()
        .id("temp")
        .filter(filter)
        .status(ExpirationStatus::Enabled)
        .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(1).build())
        .build()
        .unwrap();
    c.put_bucket_lifecycle_configuration()
        .bucket("bkt")
        .lifecycle_configuration(config(vec![rule]))
        .send()
        .await
        .unwrap();
    // a's old version, tagged class=temp, goes; b's two versions (class=keep) stay.
    until_versions(&c, &[("a", false), ("b", false), ("b", false)]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(all_versions(&c).await.len(), 3, "versions tagged otherwise stay");
}
