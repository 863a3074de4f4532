//! Shares in S3's words: bucket policies and ACLs over the core's shares, with two users
//! (alice owns `bkt`, bob is the other), the grantee reaching the bucket by its name, over
//! WebDAV and REST too; and public read, off unless the server allows it.
//!
//! Ported from ceph/s3-tests (`s3tests_boto3/functional/test_s3.py`), named at each test.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, Grant, Grantee, ObjectCannedAcl, Owner, Permission, Type,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::support::PASSWORD;

/// Alice's client and bucket `bkt` with `a.txt` and `docs/d.txt`, and bob's client.
async fn two_users(public_read: bool) -> (Sdk, Client, String) {
    let configure: fn(&mut davit::Config) = if public_read { |c| c.s3_public_read = true } else { |_| {} };
    let sdk = start_with(Options { configure, ..Default::default() }).await;
    sdk.c.create_bucket().bucket("bkt").send().await.unwrap();
    for (k, v) in [("a.txt", "a"), ("docs/d.txt", "d")] {
        sdk.c.put_object().bucket("bkt").key(k).body(ByteStream::from_static(v.as_bytes())).send().await.unwrap();
    }
    let (key, secret) = key_of(&sdk.s, "bob").await;
    let bob = client(&sdk.s.base, &key, &secret, false);
    let bob_id = sdk.s.storage.canonical_id(sdk.s.storage.find_user("bob").await.unwrap().id);
    (sdk, bob, bob_id)
}

fn policy(principal: Value, actions: &[&str], resources: &[&str]) -> String {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": principal, "Action": actions, "Resource": resources,
    }]})
    .to_string()
}

const READ: &[&str] = &["s3:GetObject", "s3:ListBucket"];
const BUCKET: &[&str] = &["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"];

async fn rest(s: &TestServer, user: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut r = support::tls_client().request(method, s.url(path)).basic_auth(user, Some(PASSWORD));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn dav_get(s: &TestServer, user: &str, path: &str) -> (StatusCode, String) {
    let r = support::tls_client().get(s.url(&format!("/dav{path}"))).basic_auth(user, Some(PASSWORD));
    let r = r.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// An unsigned request, as a browser or `curl` sends it.
async fn anonymous(s: &TestServer, method: Method, path: &str) -> (u16, String) {
    xml_code(support::tls_client().request(method, s.url(path)).send().await.unwrap()).await
}

#[tokio::test]
async fn a_policy_grant_is_a_share_over_every_protocol() {
    let (Sdk { s, c, .. }, bob, _) = two_users(false).await;
    let doc = policy(json!({"AWS": ["arn:aws:iam:::user/bob"]}), READ, BUCKET);
    c.put_bucket_policy().bucket("bkt").policy(doc).send().await.unwrap();

    // Bob's shares, WebDAV and REST see it under shared/alice/.
    let (status, shares) = rest(&s, "bob", Method::GET, "/api/v1/shares", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shares["shared_with_me"][0]["path"], "/shared/alice/bkt", "{shares}");
    assert_eq!(dav_get(&s, "bob", "/shared/alice/bkt/a.txt").await, (StatusCode::OK, "a".into()));
    let r = support::tls_client()
        .get(s.url("/api/v1/files/shared/alice/bkt/docs/d.txt"))
        .basic_auth("bob", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "d");
    // And over S3, by the `shared` bucket and by the owner's bucket name.
    let got = bob.get_object().bucket("shared").key("alice/bkt/a.txt").send().await.unwrap();
    assert_eq!(body(got).await, b"a");
    let got = bob.get_object().bucket("bkt").key("docs/d.txt").send().await.unwrap();
    assert_eq!(body(got).await, b"d");
    let listed = bob.list_objects_v2().bucket("bkt").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a.txt", "docs/d.txt"]);
    // A copy out of it into his own bucket names it as the source.
    bob.create_bucket().bucket("bobs").send().await.unwrap();
    bob.copy_object().bucket("bobs").key("copy.txt").copy_source("bkt/a.txt").send().await.unwrap();
    assert_eq!(body(bob.get_object().bucket("bobs").key("copy.txt").send().await.unwrap()).await, b"a");
    let r = bob.copy_object().bucket("bkt").key("in.txt").copy_source("bobs/copy.txt").send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    // Read only: writes and the bucket's policy stay the owner's.
    let r = bob.put_object().bucket("bkt").key("x").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    assert_eq!(refusal(bob.get_bucket_policy().bucket("bkt").send().await), (403, "AccessDenied".into()));
    assert_eq!(refusal(bob.delete_bucket().bucket("bkt").send().await), (403, "AccessDenied".into()));

    // DeleteBucketPolicy ends the share.
    c.delete_bucket_policy().bucket("bkt").send().await.unwrap();
    let (_, shares) = rest(&s, "bob", Method::GET, "/api/v1/shares", None).await;
    assert_eq!(shares["shared_with_me"], json!([]));
    assert_eq!(refusal(bob.get_object().bucket("bkt").key("a.txt").send().await), (404, "NoSuchBucket".into()));
    let r = bob.copy_object().bucket("bobs").key("again.txt").copy_source("bkt/a.txt").send().await;
    assert_eq!(refusal(r).0, 404);
    assert_eq!(refusal(c.get_bucket_policy().bucket("bkt").send().await), (404, "NoSuchBucketPolicy".into()));
}

#[tokio::test]
async fn a_rest_share_is_in_the_bucket_policy_and_acl() {
    let (Sdk { s, c, .. }, bob, bob_id) = two_users(false).await;
    let (status, _) = rest(
        &s,
        "alice",
        Method::POST,
        "/api/v1/shares",
        Some(json!({"path": "/bkt/docs", "user": "bob", "permission": "read-write"})),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let doc = c.get_bucket_policy().bucket("bkt").send().await.unwrap().policy().unwrap().to_owned();
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let st = &doc["Statement"][0];
    assert_eq!(st["Principal"]["AWS"][0], "arn:aws:iam:::user/bob", "{doc}");
    assert_eq!(st["Resource"], json!(["arn:aws:s3:::bkt/docs/*"]), "{doc}");
    assert_eq!(st["Action"].as_array().unwrap().len(), 4, "read-write: {doc}");
    // Bob writes under the prefix by the bucket's name, nowhere else.
    bob.put_object().bucket("bkt").key("docs/new.txt").body(ByteStream::from_static(b"n")).send().await.unwrap();
    let got = c.get_object().bucket("bkt").key("docs/new.txt").send().await.unwrap();
    assert_eq!(body(got).await, b"n");
    assert_eq!(refusal(bob.get_object().bucket("bkt").key("a.txt").send().await), (403, "AccessDenied".into()));
    // A multipart upload too: each call names the bucket and reaches the grant again.
    let up = bob.create_multipart_upload().bucket("bkt").key("docs/mp.bin").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let part = bob.upload_part().bucket("bkt").key("docs/mp.bin").upload_id(id).part_number(1);
    let tag = part.body(ByteStream::from_static(b"mp")).send().await.unwrap().e_tag().unwrap().to_owned();
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(aws_sdk_s3::types::CompletedPart::builder().part_number(1).e_tag(tag).build())
        .build();
    let complete = bob.complete_multipart_upload().bucket("bkt").key("docs/mp.bin").upload_id(id);
    complete.multipart_upload(done).send().await.unwrap();
    assert_eq!(body(c.get_object().bucket("bkt").key("docs/mp.bin").send().await.unwrap()).await, b"mp");
    bob.delete_object().bucket("bkt").key("docs/mp.bin").send().await.unwrap();
    // He lists inside the prefix, not around it.
    let listed = bob.list_objects_v2().bucket("bkt").prefix("docs/").delimiter("/").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["docs/d.txt", "docs/new.txt"]);
    let page = bob.list_objects_v2().bucket("bkt").prefix("docs/").max_keys(1).send().await.unwrap();
    let token = page.next_continuation_token().unwrap().to_owned();
    assert_eq!(page.contents()[0].key(), Some("docs/d.txt"));
    let next = bob.list_objects_v2().bucket("bkt").prefix("docs/").continuation_token(token).send().await.unwrap();
    assert_eq!(next.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["docs/new.txt"]);
    assert_eq!(refusal(bob.list_objects_v2().bucket("bkt").send().await), (403, "AccessDenied".into()));
    let r = bob.list_objects_v2().bucket("bkt").prefix("doc").send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    // A grant on the bucket itself is in its ACL, under bob's canonical id and name.
    rest(
        &s,
        "alice",
        Method::POST,
        "/api/v1/shares",
        Some(json!({"path": "/bkt", "user": "bob", "permission": "read"})),
    )
    .await;
    let acl = c.get_bucket_acl().bucket("bkt").send().await.unwrap();
    let bob_grants: Vec<_> = acl
        .grants()
        .iter()
        .filter(|g| g.grantee().and_then(|g| g.id()) == Some(bob_id.as_str()))
        .map(|g| (g.grantee().unwrap().display_name().unwrap().to_owned(), g.permission().unwrap().as_str().to_owned()))
        .collect();
    assert_eq!(bob_grants, [("bob".to_owned(), "READ".to_owned())]);
}

#[tokio::test]
async fn statements_a_share_cannot_say_are_refused() {
    // The server lives as long as `_s`.
    let (Sdk { s: _s, c, .. }, _, bob_id) = two_users(false).await;
    let put = |doc: String| c.put_bucket_policy().bucket("bkt").policy(doc).send();
    let bob = json!({"AWS": "arn:aws:iam:::user/bob"});
    // Would need widening: list alone, write alone.
    for actions in [&["s3:ListBucket"][..], &["s3:PutObject"], &["s3:GetObject", "s3:PutObject"]] {
        assert_eq!(refusal(put(policy(bob.clone(), actions, BUCKET)).await), (501, "NotImplemented".into()));
    }
    assert_eq!(refusal(put(policy(bob.clone(), &["s3:*"], BUCKET)).await), (501, "NotImplemented".into()));
    let mut deny: Value = serde_json::from_str(&policy(bob.clone(), READ, BUCKET)).unwrap();
    deny["Statement"][0]["Effect"] = json!("Deny");
    assert_eq!(refusal(put(deny.to_string()).await), (501, "NotImplemented".into()));
    let mut cond: Value = serde_json::from_str(&policy(bob.clone(), READ, BUCKET)).unwrap();
    cond["Statement"][0]["Condition"] = json!({"StringEquals": {"s3:prefix": "docs"}});
    assert_eq!(refusal(put(cond.to_string()).await), (501, "NotImplemented".into()));
    // s3-tests: test_bucket_policy_allow_notprincipal (400, MalformedPolicy or InvalidArgument).
    let not_principal = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::s3tenant1:root"},
        "Action": "s3:ListBucket", "Resource": BUCKET,
    }]});
    assert_eq!(refusal(put(not_principal.to_string()).await), (400, "MalformedPolicy".into()));
    // Not valid at all: another bucket, bad JSON, an unknown user.
    assert_eq!(
        refusal(put(policy(bob.clone(), READ, &["arn:aws:s3:::other/*"])).await),
        (400, "MalformedPolicy".into())
    );
    assert_eq!(refusal(put("{".into()).await), (400, "MalformedPolicy".into()));
    let nobody = json!({"AWS": "arn:aws:iam:::user/nobody"});
    assert_eq!(refusal(put(policy(nobody, READ, BUCKET)).await), (400, "MalformedPolicy".into()));
    let r =
        c.put_bucket_policy().bucket("shared").policy(policy(bob.clone(), READ, &["arn:aws:s3:::shared"])).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    // Nothing refused was kept.
    assert_eq!(refusal(c.get_bucket_policy().bucket("bkt").send().await), (404, "NoSuchBucketPolicy".into()));
    // ACLs alike: WRITE without READ, FULL_CONTROL for another, narrowing the owner.
    let r = c.put_bucket_acl().bucket("bkt").grant_write(format!("id=\"{bob_id}\"")).send().await;
    assert_eq!(refusal(r), (501, "NotImplemented".into()));
    let r = c.put_bucket_acl().bucket("bkt").grant_full_control(format!("id=\"{bob_id}\"")).send().await;
    assert_eq!(refusal(r), (501, "NotImplemented".into()));
    let r = c.put_bucket_acl().bucket("bkt").acl(BucketCannedAcl::PublicReadWrite).send().await;
    assert_eq!(refusal(r), (501, "NotImplemented".into()));
    let r = c.put_object_acl().bucket("bkt").key("a.txt").acl(ObjectCannedAcl::PublicRead).send().await;
    assert_eq!(refusal(r), (501, "NotImplemented".into()));
    let r = c.put_object().bucket("bkt").key("p.txt").acl(ObjectCannedAcl::PublicRead).send().await;
    assert_eq!(refusal(r), (501, "NotImplemented".into()), "never stored as if private");
    // A whole ACL without the owner's FULL_CONTROL would take the owner's rights away
    // (s3-tests' test_bucket_acl_revoke_all, test_bucket_acl_no_grants).
    let (alice, alice_id) = owner_of(&c).await;
    let owner = Owner::builder().id(alice_id).display_name(alice).build();
    let empty = AccessControlPolicy::builder().owner(owner).set_grants(Some(Vec::new())).build();
    let r = c.put_bucket_acl().bucket("bkt").access_control_policy(empty).send().await;
    assert_eq!(refusal(r), (501, "NotImplemented".into()));
}

#[tokio::test]
async fn public_read_is_off_by_default() {
    let (Sdk { s, c, .. }, _, _) = two_users(false).await;
    let r = c.put_bucket_acl().bucket("bkt").acl(BucketCannedAcl::PublicRead).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    let r = c.put_bucket_policy().bucket("bkt").policy(policy(json!("*"), READ, BUCKET)).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    let r = c.create_bucket().bucket("pub").acl(BucketCannedAcl::PublicRead).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    assert_eq!(refusal(c.head_bucket().bucket("pub").send().await).0, 404, "a refused ACL makes no bucket");
    // s3-tests: test_bucket_list_objects_anonymous_fail, test_bucket_listv2_objects_anonymous_fail,
    // test_object_anon_put.
    assert_eq!(anonymous(&s, Method::GET, "/bkt").await, (403, "AccessDenied".into()));
    assert_eq!(anonymous(&s, Method::GET, "/bkt?list-type=2").await, (403, "AccessDenied".into()));
    assert_eq!(anonymous(&s, Method::GET, "/bkt/a.txt").await, (403, "AccessDenied".into()));
    assert_eq!(anonymous(&s, Method::PUT, "/bkt/new").await, (403, "AccessDenied".into()));
    // s3-tests: test_get_bucket_policy_status.
    let st = c.get_bucket_policy_status().bucket("bkt").send().await.unwrap();
    assert_eq!(st.policy_status().unwrap().is_public(), Some(false));
}

/// s3-tests: test_bucket_list_objects_anonymous, test_bucket_listv2_objects_anonymous,
/// test_bucket_acl_canned_during_create, test_bucket_acl_canned, test_get_public_acl_bucket_policy_status,
/// test_get_authpublic_acl_bucket_policy_status, test_bucket_acl_canned_authenticatedread.
#[tokio::test]
async fn public_and_authenticated_read_where_the_server_allows_it() {
    let (Sdk { s, c, .. }, bob, _) = two_users(true).await;
    let (_, alice_id) = owner_of(&c).await;
    c.create_bucket().bucket("site").acl(BucketCannedAcl::PublicRead).send().await.unwrap();
    c.put_object().bucket("site").key("index.html").body(ByteStream::from_static(b"hi")).send().await.unwrap();
    let acl = c.get_bucket_acl().bucket("site").send().await.unwrap();
    assert_eq!(
        grants(&acl),
        [
            (Some(alice_id.clone()), None, "FULL_CONTROL".into()),
            (None, Some("http://acs.amazonaws.com/groups/global/AllUsers".into()), "READ".into())
        ]
    );
    // Unsigned: read and list, nothing else; nothing of other buckets.
    let r = support::tls_client().get(s.url("/site/index.html")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "hi".into()));
    let r = support::tls_client().get(s.url("/site?list-type=2")).send().await.unwrap();
    assert!(r.status().is_success() && r.text().await.unwrap().contains("<Key>index.html</Key>"));
    let r = support::tls_client().get(s.url("/site")).send().await.unwrap();
    assert!(r.status().is_success() && r.text().await.unwrap().contains("<Key>index.html</Key>"));
    assert_eq!(anonymous(&s, Method::PUT, "/site/x").await, (403, "AccessDenied".into()));
    assert_eq!(anonymous(&s, Method::DELETE, "/site/index.html").await, (403, "AccessDenied".into()));
    assert_eq!(anonymous(&s, Method::GET, "/bkt/a.txt").await, (403, "AccessDenied".into()));
    // Bob reads it by name too, but it is no share of his.
    assert_eq!(body(bob.get_object().bucket("site").key("index.html").send().await.unwrap()).await, b"hi");
    let r = bob.put_object().bucket("site").key("x").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    let st = c.get_bucket_policy_status().bucket("site").send().await.unwrap();
    assert_eq!(st.policy_status().unwrap().is_public(), Some(true));
    let doc = c.get_bucket_policy().bucket("site").send().await.unwrap().policy().unwrap().to_owned();
    assert!(doc.contains(r#""Principal":"*""#), "{doc}");

    // Back to private: unsigned reads end.
    c.put_bucket_acl().bucket("site").acl(BucketCannedAcl::Private).send().await.unwrap();
    assert_eq!(anonymous(&s, Method::GET, "/site/index.html").await, (403, "AccessDenied".into()));
    assert_eq!(grants(&c.get_bucket_acl().bucket("site").send().await.unwrap()).len(), 1);

    // authenticated-read: every signed-in user, never unsigned.
    c.put_bucket_acl().bucket("site").acl(BucketCannedAcl::AuthenticatedRead).send().await.unwrap();
    assert_eq!(body(bob.get_object().bucket("site").key("index.html").send().await.unwrap()).await, b"hi");
    assert_eq!(anonymous(&s, Method::GET, "/site/index.html").await, (403, "AccessDenied".into()));
    let acl = c.get_bucket_acl().bucket("site").send().await.unwrap();
    assert_eq!(grants(&acl)[1].1.as_deref(), Some("http://acs.amazonaws.com/groups/global/AuthenticatedUsers"));
    let st = c.get_bucket_policy_status().bucket("site").send().await.unwrap();
    assert_eq!(st.policy_status().unwrap().is_public(), Some(true));
}

async fn owner_of(c: &Client) -> (String, String) {
    let out = c.list_buckets().send().await.unwrap();
    let o = out.owner().unwrap();
    (o.display_name().unwrap().to_owned(), o.id().unwrap().to_owned())
}

type Row = (Option<String>, Option<String>, String);

fn grants(acl: &aws_sdk_s3::operation::get_bucket_acl::GetBucketAclOutput) -> Vec<Row> {
    acl.grants()
        .iter()
        .map(|g| {
            let who = g.grantee().unwrap();
            (who.id().map(str::to_owned), who.uri().map(str::to_owned), g.permission().unwrap().as_str().to_owned())
        })
        .collect()
}

/// s3-tests: test_bucket_acl_default, test_bucket_acl_canned_private_to_private, test_object_acl_default,
/// test_object_acl (the owner's FULL_CONTROL put back).
#[tokio::test]
async fn default_acls_name_the_owner_by_canonical_id() {
    let (Sdk { s, c, .. }, _, _) = two_users(false).await;
    let (name, id) = owner_of(&c).await;
    assert_eq!(name, "alice");
    assert_eq!(id, s.storage.canonical_id(s.storage.find_user("alice").await.unwrap().id));
    assert_eq!(id.len(), 64);
    let acl = c.get_bucket_acl().bucket("bkt").send().await.unwrap();
    assert_eq!(acl.owner().unwrap().id(), Some(id.as_str()));
    assert_eq!(acl.owner().unwrap().display_name(), Some("alice"));
    assert_eq!(grants(&acl), [(Some(id.clone()), None, "FULL_CONTROL".into())]);
    assert_eq!(acl.grants()[0].grantee().unwrap().r#type(), &Type::CanonicalUser);
    c.put_bucket_acl().bucket("bkt").acl(BucketCannedAcl::Private).send().await.unwrap();
    assert_eq!(grants(&c.get_bucket_acl().bucket("bkt").send().await.unwrap()).len(), 1);

    let acl = c.get_object_acl().bucket("bkt").key("a.txt").send().await.unwrap();
    assert_eq!(acl.owner().unwrap().id(), Some(id.as_str()));
    assert_eq!(acl.grants().len(), 1);
    assert_eq!(acl.grants()[0].permission(), Some(&Permission::FullControl));
    // What was read, put back, changes nothing.
    let policy =
        AccessControlPolicy::builder().set_owner(acl.owner().cloned()).set_grants(Some(acl.grants().to_vec())).build();
    c.put_object_acl().bucket("bkt").key("a.txt").access_control_policy(policy).send().await.unwrap();
    let again = c.get_object_acl().bucket("bkt").key("a.txt").send().await.unwrap();
    assert_eq!(again.grants(), acl.grants());
    let r = c.get_object_acl().bucket("bkt").key("missing").send().await;
    assert_eq!(refusal(r), (404, "NoSuchKey".into()));
}

/// s3-tests: test_bucket_acl_grant_userid_read (and its checks: the grantee can read the
/// bucket by name, cannot write it, read or write its ACL), test_bucket_acl_grant_nonexist_user,
/// test_bucket_acl_grant_email_not_exist.
#[tokio::test]
async fn acl_grants_to_canonical_users_are_shares() {
    let (Sdk { s, c, .. }, bob, bob_id) = two_users(true).await;
    let (_, alice_id) = owner_of(&c).await;
    let acl = c.get_bucket_acl().bucket("bkt").send().await.unwrap();
    let bob_read = Grant::builder()
        .grantee(Grantee::builder().r#type(Type::CanonicalUser).id(&bob_id).build().unwrap())
        .permission(Permission::Read)
        .build();
    let mut all = acl.grants().to_vec();
    all.push(bob_read.clone());
    let owner = Owner::builder().id(&alice_id).display_name("alice").build();
    let body_acl = AccessControlPolicy::builder().owner(owner.clone()).set_grants(Some(all)).build();
    c.put_bucket_acl().bucket("bkt").access_control_policy(body_acl).send().await.unwrap();
    let mut got = grants(&c.get_bucket_acl().bucket("bkt").send().await.unwrap());
    got.sort();
    let mut want =
        vec![(Some(alice_id.clone()), None, "FULL_CONTROL".to_owned()), (Some(bob_id.clone()), None, "READ".into())];
    want.sort();
    assert_eq!(got, want);
    bob.head_bucket().bucket("bkt").send().await.unwrap();
    let r = bob.put_object().bucket("bkt").key("foo-write").body(ByteStream::from_static(b"bar")).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    assert_eq!(refusal(bob.get_bucket_acl().bucket("bkt").send().await), (403, "AccessDenied".into()));
    let r = bob.put_bucket_acl().bucket("bkt").acl(BucketCannedAcl::PublicRead).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".into()));
    // It is a share like any other.
    let (_, shares) = rest(&s, "bob", Method::GET, "/api/v1/shares", None).await;
    assert_eq!(shares["shared_with_me"][0]["permission"], "read", "{shares}");

    // READ with WRITE, by header, is read-write.
    c.put_bucket_acl()
        .bucket("bkt")
        .grant_read(format!("id=\"{bob_id}\""))
        .grant_write(format!("id=\"{bob_id}\""))
        .send()
        .await
        .unwrap();
    bob.put_object().bucket("bkt").key("foo-write").body(ByteStream::from_static(b"bar")).send().await.unwrap();

    // s3-tests: test_bucket_acl_grant_nonexist_user, test_bucket_acl_grant_email_not_exist:
    // an unknown grantee is told as such whatever the permission.
    // As s3-tests' add_bucket_user_grant: the ACL read back, and one grant more.
    let to = |grantee: Grantee| {
        let read_back = Grantee::builder().r#type(Type::CanonicalUser).id(&alice_id).build().unwrap();
        AccessControlPolicy::builder()
            .owner(owner.clone())
            .grants(Grant::builder().grantee(read_back).permission(Permission::FullControl).build())
            .grants(Grant::builder().grantee(grantee).permission(Permission::FullControl).build())
            .build()
    };
    let unknown = Grantee::builder().r#type(Type::CanonicalUser).id("_foo").build().unwrap();
    let r = c.put_bucket_acl().bucket("bkt").access_control_policy(to(unknown)).send().await;
    assert_eq!(refusal(r), (400, "InvalidArgument".into()));
    let nobody = Grantee::builder()
        .r#type(Type::AmazonCustomerByEmail)
        .email_address("doesnotexist@dreamhost.com.invalid")
        .build()
        .unwrap();
    let r = c.put_bucket_acl().bucket("bkt").access_control_policy(to(nobody)).send().await;
    assert_eq!(refusal(r), (400, "UnresolvableGrantByEmailAddress".into()));

    // An object ACL's READ shares that object, and shows in its ACL.
    c.put_object_acl().bucket("bkt").key("docs/d.txt").grant_read(format!("id=\"{bob_id}\"")).send().await.unwrap();
    let acl = c.get_object_acl().bucket("bkt").key("docs/d.txt").send().await.unwrap();
    assert!(acl.grants().iter().any(|g| g.grantee().and_then(|g| g.id()) == Some(bob_id.as_str())));
    // Inside the bucket bob was given: it shows there.
    assert_eq!(dav_get(&s, "bob", "/shared/alice/bkt/docs/d.txt").await, (StatusCode::OK, "d".into()));
}

/// Two owners share a bucket of the same name with bob: the name is ambiguous, the
/// `shared` bucket tells them apart.
#[tokio::test]
async fn a_name_two_owners_share_is_refused_and_the_shared_bucket_tells_them_apart() {
    let (Sdk { s, c, .. }, bob, _) = two_users(false).await;
    let admin = s.storage.find_user("admin").await.unwrap();
    let (k, sec) = s.storage.create_access_key(admin.id).await.unwrap();
    let other = client(&s.base, &k.id, &sec, false);
    other.create_bucket().bucket("bkt").send().await.unwrap();
    let doc = policy(json!({"AWS": "bob"}), READ, BUCKET);
    c.put_bucket_policy().bucket("bkt").policy(doc.clone()).send().await.unwrap();
    other.put_bucket_policy().bucket("bkt").policy(doc).send().await.unwrap();
    assert_eq!(refusal(bob.list_objects_v2().bucket("bkt").send().await), (403, "AccessDenied".into()));
    let listed = bob.list_objects_v2().bucket("shared").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&"alice/bkt/a.txt"), "{keys:?}");
}
