//! Buckets: the life cycle, naming rules, reserved names, and other users' buckets.

use aws_sdk_s3::primitives::ByteStream;

use super::*;

async fn bucket_names(c: &Client) -> Vec<String> {
    let out = c.list_buckets().send().await.unwrap();
    out.buckets().iter().map(|b| b.name().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn bucket_lifecycle_create_list_head_locate_delete() {
    let Sdk { s, c, .. } = start().await;
    c.create_bucket().bucket("photos.2024").send().await.unwrap();
    let out = c.list_buckets().send().await.unwrap();
    let names: Vec<_> = out.buckets().iter().map(|b| b.name().unwrap()).collect();
    // `shared` is where other users' shares appear; it is always listed.
    assert_eq!(names, ["bkt", "photos.2024", "shared"]);
    assert!(out.buckets().iter().all(|b| b.creation_date().is_some()), "{out:?}");
    assert_eq!(out.owner().and_then(|o| o.display_name()), Some("alice"));

    c.head_bucket().bucket("photos.2024").send().await.unwrap();
    let loc = c.get_bucket_location().bucket("photos.2024").send().await.unwrap();
    // us-east-1 is the empty LocationConstraint.
    assert_eq!(loc.location_constraint().map(|l| l.as_str()).unwrap_or(""), "", "{loc:?}");
    let v = c.get_bucket_versioning().bucket("photos.2024").send().await.unwrap();
    assert_eq!(v.status(), None, "versioning was never enabled");

    c.put_object().bucket("photos.2024").key("a/b.jpg").body(ByteStream::from_static(b"jpeg")).send().await.unwrap();
    let r = c.delete_bucket().bucket("photos.2024").send().await;
    assert_eq!(refusal(r), (409, "BucketNotEmpty".into()));
    c.delete_object().bucket("photos.2024").key("a/b.jpg").send().await.unwrap();
    // The folder `a` the key implied went with it, so the bucket is empty now.
    c.delete_bucket().bucket("photos.2024").send().await.unwrap();
    assert_eq!(bucket_names(&c).await, ["bkt", "shared"]);

    // HEAD answers have no body: the SDK names a bare 404 NotFound.
    assert_eq!(refusal(c.head_bucket().bucket("photos.2024").send().await), (404, "NotFound".into()));
    let r = c.get_bucket_location().bucket("photos.2024").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = c.get_bucket_versioning().bucket("photos.2024").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = c.delete_bucket().bucket("photos.2024").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    s.stop().await;
}

#[tokio::test]
async fn bucket_names_follow_s3_rules_and_reserved_names_are_refused() {
    let Sdk { s, c, .. } = start().await;
    for bad in ["ab", "Upper", "under_score", "a..b", "-dash", "dash-", "192.168.1.1", &"x".repeat(64)] {
        let r = c.create_bucket().bucket(bad).send().await;
        assert_eq!(refusal(r), (400, "InvalidBucketName".into()), "{bad}");
    }
    for good in ["abc", "my.bucket-1", &"x".repeat(63)] {
        c.create_bucket().bucket(good).send().await.unwrap_or_else(|e| panic!("{good}: {e:?}"));
    }
    // Again, one's own: 200, as us-east-1 answers (s3-tests' test_bucket_recreate_not_overriding).
    c.create_bucket().bucket("bkt").send().await.unwrap();
    // `shared` always exists and is the user's own, and it cannot go.
    let r = c.create_bucket().bucket("shared").send().await;
    assert_eq!(refusal(r), (409, "BucketAlreadyOwnedByYou".into()));
    let r = c.delete_bucket().bucket("shared").send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    c.head_bucket().bucket("shared").send().await.unwrap();

    // Path style, `/api` and `/dav` belong to REST and WebDAV: the request never reaches S3
    // (REST has no such endpoint, WebDAV takes no SigV4), and no bucket appears.
    // Virtual-host style, S3 gets them and refuses them: see vhost.rs.
    for (reserved, status) in [("api", 404), ("dav", 401)] {
        let r = c.create_bucket().bucket(reserved).send().await;
        assert_eq!(refusal(r).0, status, "{reserved}");
    }
    let names = bucket_names(&c).await;
    assert!(!names.iter().any(|n| n == "api" || n == "dav"), "{names:?}");
    s.stop().await;
}

#[tokio::test]
async fn another_users_bucket_is_simply_not_there() {
    let Sdk { s, c, .. } = start().await;
    c.put_object().bucket("bkt").key("secret.txt").body(ByteStream::from_static(b"alice's")).send().await.unwrap();
    let (key, secret) = key_of(&s, "bob").await;
    let bob = client(&s.base, &key, &secret, false);
    assert_eq!(bucket_names(&bob).await, ["shared"]);
    assert_eq!(refusal(bob.head_bucket().bucket("bkt").send().await), (404, "NotFound".into()));
    let r = bob.list_objects_v2().bucket("bkt").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = bob.get_object().bucket("bkt").key("secret.txt").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = bob.put_object().bucket("bkt").key("x").body(ByteStream::from_static(b"bob's")).send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = bob.delete_bucket().bucket("bkt").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    // Bucket names are per user (a bucket is a folder of one's own drive): bob's `bkt` is
    // another bucket, and alice's is untouched.
    bob.create_bucket().bucket("bkt").send().await.unwrap();
    let listed = bob.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
    let out = c.get_object().bucket("bkt").key("secret.txt").send().await.unwrap();
    assert_eq!(body(out).await, b"alice's");
    s.stop().await;
}
