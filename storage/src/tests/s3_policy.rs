//! Shares in S3's words, in the core: a policy or ACL grant is a share and a share is in the
//! policy; a bucket name reaches another owner's bucket only through grants or its
//! audience; public read only where the server allows it.

use super::{assert_consistent, body, open, open_with, read_all, user};
use crate::access::s3_grants::Within;
use crate::access::s3_policy::{
    ALL_USERS, AclWho, Asked, Audience, Refusal, Shown, Wanted, Who, acl_grants, canned, check_owner_kept,
    parse_policy, policy_document,
};
use crate::access::s3_view::S3Reach;
use crate::meta::model::Role;
use crate::{Error, Principal, Storage, WriteOptions};
use serde_json::{Value, json};

fn policy(principal: &str, actions: &[&str], resources: &[&str]) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": [principal]}, "Action": actions, "Resource": resources,
    }]})
    .to_string()
}

const READ: &[&str] = &["s3:GetObject", "s3:ListBucket"];

async fn routed(s: &Storage, p: Option<&Principal>, bucket: &str) -> Principal {
    match s.s3_principal(p, bucket).await.unwrap() {
        S3Reach::Routed(r) => r,
        other => panic!("{bucket}: {other:?}"),
    }
}

async fn put(s: &Storage, p: &Principal, path: &str, data: &[u8]) {
    s.write(p, path, body(data), WriteOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_grant_is_a_share_and_a_share_is_in_the_policy() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let carol = user(s, "carol", Role::User, None).await;
    s.mkdir(&alice, "/photos").await.unwrap();
    put(s, &alice, "/photos/a.txt", b"a").await;
    s.mkdir(&alice, "/photos/docs").await.unwrap();
    put(s, &alice, "/photos/docs/d.txt", b"d").await;

    let asked = parse_policy(
        "photos",
        &policy("arn:aws:iam:::user/bob", READ, &["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"]),
    )
    .unwrap();
    s.set_bucket_sharing(&alice, "photos", Within::Everything, asked).await.unwrap();
    // Bob sees it as any share: in his list, under /shared, read-only.
    let (_, with_bob) = s.list_shares(&bob).await.unwrap();
    assert_eq!(with_bob.iter().map(|i| i.path.as_str()).collect::<Vec<_>>(), ["/shared/alice/photos"]);
    assert_eq!(read_all(s, &bob, "/shared/alice/photos/a.txt", None).await.unwrap(), b"a");
    let r = s.write(&bob, "/shared/alice/photos/b.txt", body(b"b"), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");

    // A share made the REST way is a statement of the policy, and what it reads back as is
    // the same set of shares.
    s.share(&alice, "/photos/docs", "carol", true).await.unwrap();
    let sharing = s.bucket_sharing(&alice, "photos", Within::Everything).await.unwrap();
    let doc = sharing.policy("photos").unwrap();
    assert!(doc.contains("arn:aws:iam:::user/carol") && doc.contains("arn:aws:s3:::photos/docs/*"), "{doc}");
    let again = parse_policy("photos", &doc).unwrap();
    assert_eq!(again.grants.len(), 2);
    s.set_bucket_sharing(&alice, "photos", Within::Everything, again).await.unwrap();
    let after = s.bucket_sharing(&alice, "photos", Within::Everything).await.unwrap();
    let mut ids: Vec<u64> = after.shares.iter().map(|x| x.share).collect();
    let mut before: Vec<u64> = sharing.shares.iter().map(|x| x.share).collect();
    ids.sort();
    before.sort();
    assert_eq!(ids, before, "putting back what was read changes no grant");
    // The bucket ACL shows the bucket's own grants only; its canonical ids name the users.
    let acl = s.bucket_sharing(&alice, "photos", Within::Bucket).await.unwrap();
    assert_eq!(acl.shares.len(), 1);
    assert_eq!(acl.shares[0].grantee_id, s.canonical_id(bob.user_id));
    assert_eq!(acl.owner_id, s.canonical_id(alice.user_id));

    // A new policy replaces: bob's grant ends, carol's narrows to read.
    let asked = parse_policy("photos", &policy("carol", READ, &["arn:aws:s3:::photos/docs/*"])).unwrap();
    s.set_bucket_sharing(&alice, "photos", Within::Everything, asked).await.unwrap();
    assert!(s.list_shares(&bob).await.unwrap().1.is_empty());
    let r = s.write(&carol, "/shared/alice/docs/x.txt", body(b"x"), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    // Unknown users, missing prefixes and a grantee's attempt are refused.
    let asked = parse_policy("photos", &policy("nobody", READ, &["arn:aws:s3:::photos"])).unwrap();
    let r = s.set_bucket_sharing(&alice, "photos", Within::Everything, asked).await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
    let asked = parse_policy("photos", &policy("bob", READ, &["arn:aws:s3:::photos/none/*"])).unwrap();
    let r = s.set_bucket_sharing(&alice, "photos", Within::Everything, asked).await;
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    let carol_in = routed(s, Some(&carol), "photos").await;
    let r = s.bucket_sharing(&carol_in, "photos", Within::Everything).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    // Deleting the policy ends every grant in the bucket.
    s.set_bucket_sharing(&alice, "photos", Within::Everything, Asked::default()).await.unwrap();
    assert!(s.list_shares(&alice).await.unwrap().0.is_empty());
    assert!(s.bucket_sharing(&alice, "photos", Within::Everything).await.unwrap().policy("photos").is_none());
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_name_reaches_another_owners_bucket_only_through_grants() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let eve = user(s, "eve", Role::User, None).await;
    s.mkdir(&alice, "/photos").await.unwrap();
    put(s, &alice, "/photos/a.txt", b"a").await;
    s.mkdir(&alice, "/photos/docs").await.unwrap();
    put(s, &alice, "/photos/docs/d.txt", b"d").await;
    // Nothing granted: the name reaches nothing (eve's request answers NoSuchBucket).
    assert!(matches!(s.s3_principal(Some(&eve), "photos").await.unwrap(), S3Reach::Nothing));
    assert!(matches!(s.s3_principal(Some(&alice), "photos").await.unwrap(), S3Reach::Own));

    // A prefix grant: the keys under it, nothing else.
    s.share(&alice, "/photos/docs", "bob", true).await.unwrap();
    let b = routed(s, Some(&bob), "photos").await;
    assert_eq!(read_all(s, &b, "/photos/docs/d.txt", None).await.unwrap(), b"d");
    put(s, &b, "/photos/docs/new.txt", b"n").await;
    assert_eq!(read_all(s, &alice, "/photos/docs/new.txt", None).await.unwrap(), b"n");
    let r = s.stat(&b, "/photos/a.txt").await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    // Listed inside the prefix only.
    let q = |prefix| crate::ListQuery { prefix, start_after: None, delimiter: None, max: 10 };
    let keys: Vec<String> =
        s.list_keys(&b, "/photos", q("docs/")).await.unwrap().objects.into_iter().map(|o| o.0).collect();
    assert_eq!(keys, ["docs/d.txt", "docs/new.txt"]);
    for around in ["", "doc", "a"] {
        let r = s.list_keys(&b, "/photos", q(around)).await;
        assert!(matches!(r, Err(Error::Forbidden(_))), "{around}: {:?}", r.map(|l| l.objects.len()));
    }
    // Other names are still bob's own drive.
    s.mkdir(&b, "/mine").await.unwrap();
    assert!(s.stat(&bob, "/mine").await.unwrap().is_folder());

    // Revoked in between: the routed principal reaches nothing more.
    let share = s.list_shares(&alice).await.unwrap().0.remove(0);
    s.delete_share(&alice, share.share.id).await.unwrap();
    assert!(s.stat(&b, "/photos/docs/d.txt").await.is_err());

    // A request naming two other owners' buckets (a copy) reaches both.
    s.mkdir(&eve, "/inbox").await.unwrap();
    s.share(&eve, "/inbox", "bob", true).await.unwrap();
    s.share(&alice, "/photos/docs", "bob", false).await.unwrap();
    let both = routed(s, Some(&routed(s, Some(&bob), "photos").await), "inbox").await;
    s.copy(&both, "/photos/docs/d.txt", "/inbox/d.txt", false).await.unwrap();
    assert_eq!(read_all(s, &eve, "/inbox/d.txt", None).await.unwrap(), b"d");
    assert!(matches!(s.s3_principal(Some(&both), "photos").await.unwrap(), S3Reach::Routed(_)));
    let share = s.list_shares(&alice).await.unwrap().0.remove(0);
    s.delete_share(&alice, share.share.id).await.unwrap();
    // Two owners with a bucket of that name: refused, naming the shared bucket.
    s.share(&alice, "/photos", "bob", false).await.unwrap();
    s.mkdir(&eve, "/photos").await.unwrap();
    s.share(&eve, "/photos", "bob", false).await.unwrap();
    let r = s.s3_principal(Some(&bob), "photos").await;
    assert!(matches!(&r, Err(Error::Forbidden(m)) if m.contains("shared/alice")), "{r:?}");
    // One's own bucket of that name comes first.
    s.mkdir(&bob, "/photos").await.unwrap();
    assert!(matches!(s.s3_principal(Some(&bob), "photos").await.unwrap(), S3Reach::Own));
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_read_only_where_the_server_allows_it() {
    // Off by default: refused, and an unsigned request reaches nothing.
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/site").await.unwrap();
    let public = Asked { grants: Vec::new(), audience: canned("public-read", false).unwrap() };
    let r = s.set_bucket_sharing(&alice, "site", Within::Bucket, public.clone()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    assert!(matches!(s.s3_principal(None, "site").await, Err(Error::Unauthenticated(_))));

    let f = open_with(|c| c.s3_public_read = true);
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let carol = user(s, "carol", Role::User, None).await;
    s.mkdir(&alice, "/site").await.unwrap();
    put(s, &alice, "/site/index.html", b"<p>hi</p>").await;
    s.set_bucket_sharing(&alice, "site", Within::Bucket, public.clone()).await.unwrap();
    let anon = routed(s, None, "site").await;
    assert_eq!(read_all(s, &anon, "/site/index.html", None).await.unwrap(), b"<p>hi</p>");
    let r = s.write(&anon, "/site/x.html", body(b"x"), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    let r = s.stat(&anon, "/other/x").await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    // It is no share: nobody's /shared shows it.
    assert!(s.list_shares(&carol).await.unwrap().1.is_empty());
    // One readable bucket per name across the server.
    s.mkdir(&carol, "/site").await.unwrap();
    let r = s.set_bucket_sharing(&carol, "site", Within::Bucket, public.clone()).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    // Made private again: the principal made before reaches nothing more.
    s.set_bucket_sharing(&alice, "site", Within::Bucket, Asked::default()).await.unwrap();
    assert!(s.stat(&anon, "/site/index.html").await.is_err());
    assert!(matches!(s.s3_principal(None, "site").await, Err(Error::Unauthenticated(_))));

    // authenticated-read: every signed-in user, never unsigned.
    let every = Asked { grants: Vec::new(), audience: Audience::Authenticated };
    s.set_bucket_sharing(&alice, "site", Within::Bucket, every).await.unwrap();
    let dora = user(s, "dora", Role::User, None).await;
    let d = routed(s, Some(&dora), "site").await;
    assert_eq!(read_all(s, &d, "/site/index.html", None).await.unwrap(), b"<p>hi</p>");
    // Copied out into her own drive (checked again as the copy commits); not in.
    s.mkdir(&dora, "/mine").await.unwrap();
    s.copy(&d, "/site/index.html", "/mine/copy.html", false).await.unwrap();
    assert_eq!(read_all(s, &dora, "/mine/copy.html", None).await.unwrap(), b"<p>hi</p>");
    let r = s.copy(&d, "/mine/copy.html", "/site/in.html", false).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    assert!(matches!(s.s3_principal(None, "site").await, Err(Error::Unauthenticated(_))));
    let acl = s.bucket_sharing(&alice, "site", Within::Bucket).await.unwrap();
    assert_eq!(acl.audience, Audience::Authenticated);
    // Renamed, it is readable by neither name (as it says); deleted, its row goes.
    s.rename(&alice, "/site", "/site2", false).await.unwrap();
    assert!(s.stat(&d, "/site/index.html").await.is_err());
    assert!(matches!(s.s3_principal(Some(&dora), "site2").await.unwrap(), S3Reach::Nothing));
    assert_eq!(s.bucket_sharing(&alice, "site2", Within::Bucket).await.unwrap().audience, Audience::Private);
    s.rename(&alice, "/site2", "/site", false).await.unwrap();
    assert!(matches!(s.s3_principal(Some(&dora), "site").await.unwrap(), S3Reach::Routed(_)));
    s.delete(&alice, "/site", crate::Conditions::default()).await.unwrap();
    s.mkdir(&alice, "/site").await.unwrap();
    assert!(matches!(s.s3_principal(Some(&dora), "site").await.unwrap(), S3Reach::Nothing), "a new bucket is private");
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_owner_shares_nothing_until_enabled_again() {
    let f = open_with(|c| c.s3_public_read = true);
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    s.mkdir(&alice, "/box").await.unwrap();
    s.mkdir(&alice, "/site").await.unwrap();
    put(s, &alice, "/box/a.txt", b"a").await;
    put(s, &alice, "/site/index.html", b"i").await;
    s.share(&alice, "/box", "bob", true).await.unwrap();
    let public = Asked { grants: Vec::new(), audience: canned("public-read", false).unwrap() };
    s.set_bucket_sharing(&alice, "site", Within::Bucket, public).await.unwrap();
    let anon = routed(s, None, "site").await;
    let by_bucket = routed(s, Some(&bob), "box").await;
    // An upload link opened before the account is disabled, as a write in flight holds it.
    let new = crate::NewLink { expires_in: Some(600), upload: true, ..Default::default() };
    let (_, token) = s.create_link(&alice, "/box", new).await.unwrap();
    let dropped = s.open_link(&token, crate::LinkProof::None, None).await.unwrap().principal;

    let set = |status| {
        s.update_user(alice.user_id, move |u| {
            u.status = status;
            Ok(())
        })
    };
    set(crate::meta::model::Status::Disabled).await.unwrap();
    // The grant: not listed, not read, not written, by path or by bucket name.
    assert!(s.list(&bob, "/shared", None, 100).await.unwrap().is_empty());
    assert!(matches!(s.stat(&bob, "/shared/alice/box/a.txt").await, Err(Error::NotFound(_))));
    let r = s.write(&bob, "/shared/alice/box/b.txt", body(b"b"), WriteOptions::default()).await;
    assert!(r.is_err(), "{r:?}");
    assert!(matches!(s.s3_principal(Some(&bob), "box").await.unwrap(), S3Reach::Nothing));
    assert!(s.stat(&by_bucket, "/box/a.txt").await.is_err());
    let r = s.write(&by_bucket, "/box/c.txt", body(b"c"), WriteOptions::default()).await;
    assert!(r.is_err(), "{r:?}");
    let r = s.write(&dropped, "/late.txt", body(b"l"), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::Gone(_))), "{r:?}");
    // The public bucket: private meanwhile.
    assert!(matches!(s.s3_principal(None, "site").await, Err(Error::Unauthenticated(_))));
    assert!(s.stat(&anon, "/site/index.html").await.is_err());

    set(crate::meta::model::Status::Active).await.unwrap();
    assert_eq!(read_all(s, &bob, "/shared/alice/box/a.txt", None).await.unwrap(), b"a");
    s.write(&bob, "/shared/alice/box/b.txt", body(b"b"), WriteOptions::default()).await.unwrap();
    assert_eq!(read_all(s, &routed(s, None, "site").await, "/site/index.html", None).await.unwrap(), b"i");
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_grants_by_canonical_id_and_object_acls() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    put(s, &alice, "/b/k.txt", b"k").await;
    let bob_id = s.canonical_id(bob.user_id);
    assert_eq!(bob_id.len(), 64);
    assert_eq!(s.canonical_id(bob.user_id), bob_id, "stable");
    assert_ne!(s.canonical_id(alice.user_id), bob_id);
    assert_eq!(s.user_by_canonical_id(&bob_id).await.unwrap().id, bob.user_id);

    // An object ACL's READ is a share of that file.
    let g = [(AclWho::Canonical(bob_id.clone()), "READ".to_owned())];
    let asked = acl_grants(&g, &s.canonical_id(alice.user_id), true).unwrap();
    s.set_bucket_sharing(&alice, "b", Within::Object("k.txt".into()), asked).await.unwrap();
    assert_eq!(read_all(s, &bob, "/shared/alice/k.txt", None).await.unwrap(), b"k");
    let acl = s.bucket_sharing(&alice, "b", Within::Object("k.txt".into())).await.unwrap();
    assert_eq!(acl.shares.len(), 1);
    assert!(s.bucket_sharing(&alice, "b", Within::Bucket).await.unwrap().shares.is_empty());
    // Canned private on the object ends it.
    let private = Asked { grants: Vec::new(), audience: canned("private", true).unwrap() };
    s.set_bucket_sharing(&alice, "b", Within::Object("k.txt".into()), private).await.unwrap();
    assert!(s.list_shares(&bob).await.unwrap().1.is_empty());
    // A bucket ACL with READ and WRITE is read-write.
    let g = [(AclWho::Email("bob".into()), "READ".to_owned()), (AclWho::Email("bob".into()), "WRITE".to_owned())];
    let asked = acl_grants(&g, &s.canonical_id(alice.user_id), false).unwrap();
    s.set_bucket_sharing(&alice, "b", Within::Bucket, asked).await.unwrap();
    put(s, &bob, "/shared/alice/b/new.txt", b"n").await;
    assert_consistent(s).await;
}

// The translation alone, both ways (`access::s3_policy`).

fn doc(principal: Value, action: Value, resource: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource}]}).to_string()
}

#[test]
fn policies_become_shares_or_are_refused() {
    let read = doc(
        json!({"AWS": "arn:aws:iam:::user/bob"}),
        json!(["s3:GetObject", "s3:ListBucket"]),
        json!(["arn:aws:s3:::b", "arn:aws:s3:::b/*"]),
    );
    let asked = parse_policy("b", &read).unwrap();
    assert_eq!(
        asked.grants,
        vec![Wanted { who: Who::User("bob".into()), path: "".into(), object: false, write: false }]
    );
    let rw =
        doc(json!({"CanonicalUser": "abc"}), json!(["s3:*Object", "s3:ListBucket"]), json!("arn:aws:s3:::b/docs/*"));
    assert!(matches!(parse_policy("b", &rw), Err(Refusal::Unsupported(_))), "patterns in actions are refused");
    let rw = doc(
        json!({"CanonicalUser": "abc"}),
        json!(["s3:GetObject", "s3:listbucket", "s3:PutObject", "s3:DeleteObject"]),
        json!("arn:aws:s3:::b/docs/*"),
    );
    let asked = parse_policy("b", &rw).unwrap();
    assert_eq!(
        asked.grants,
        vec![Wanted { who: Who::Canonical("abc".into()), path: "docs".into(), object: false, write: true }]
    );
    // Never widened: list alone, put alone.
    for acts in [json!("s3:ListBucket"), json!("s3:PutObject"), json!(["s3:GetObject", "s3:PutObject"])] {
        let p = doc(json!({"AWS": "bob"}), acts.clone(), json!("arn:aws:s3:::b"));
        assert!(matches!(parse_policy("b", &p), Err(Refusal::Unsupported(_))), "{acts}");
    }
    // One object: GetObject alone is read.
    let one = doc(json!({"AWS": "bob"}), json!("s3:GetObject"), json!("arn:aws:s3:::b/a/x.txt"));
    assert_eq!(parse_policy("b", &one).unwrap().grants[0].path, "a/x.txt");
    // Another bucket is malformed; Deny and Condition are not built.
    let other = doc(json!({"AWS": "bob"}), json!("s3:GetObject"), json!("arn:aws:s3:::c/*"));
    assert!(matches!(parse_policy("b", &other), Err(Refusal::Malformed(_))));
    let deny = read.replace("Allow", "Deny");
    assert!(matches!(parse_policy("b", &deny), Err(Refusal::Unsupported(_))));
    let mut cond: Value = serde_json::from_str(&read).unwrap();
    cond["Statement"][0]["Condition"] = json!({"StringEquals": {"s3:prefix": "x"}});
    assert!(matches!(parse_policy("b", &cond.to_string()), Err(Refusal::Unsupported(_))));
    assert!(matches!(parse_policy("b", "{"), Err(Refusal::Malformed(_))));
    // Anyone: read of the whole bucket only.
    let public =
        doc(json!("*"), json!(["s3:GetObject", "s3:ListBucket"]), json!(["arn:aws:s3:::b", "arn:aws:s3:::b/*"]));
    assert_eq!(parse_policy("b", &public).unwrap().audience, Audience::Public);
    let public_write = doc(
        json!({"AWS": "*"}),
        json!(["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject"]),
        json!("arn:aws:s3:::b"),
    );
    assert!(matches!(parse_policy("b", &public_write), Err(Refusal::Unsupported(_))));
}

#[test]
fn a_policy_read_back_reads_as_the_same_shares() {
    let shown = [
        Shown { share: 1, grantee: "bob".into(), path: "".into(), folder: true, write: false },
        Shown { share: 2, grantee: "carol".into(), path: "docs".into(), folder: true, write: true },
        Shown { share: 3, grantee: "dan".into(), path: "docs/x.txt".into(), folder: false, write: true },
    ];
    let doc = policy_document("b", &shown, Audience::Authenticated).unwrap();
    let asked = parse_policy("b", &doc).unwrap();
    assert_eq!(asked.audience, Audience::Authenticated);
    let mut got: Vec<_> = asked.grants.iter().map(|w| (w.who.clone(), w.path.clone(), w.object, w.write)).collect();
    got.sort();
    let user = |n: &str| Who::User(n.into());
    assert_eq!(
        got,
        vec![
            (user("bob"), "".into(), false, false),
            (user("carol"), "docs".into(), false, true),
            (user("dan"), "docs/x.txt".into(), true, true)
        ]
    );
    assert_eq!(policy_document("b", &[], Audience::Private), None);
}

#[test]
fn acls_become_shares_or_are_refused() {
    let c = |id: &str| AclWho::Canonical(id.into());
    let g = |who: AclWho, p: &str| (who, p.to_owned());
    let asked = acl_grants(
        &[g(c("own"), "FULL_CONTROL"), g(c("bob"), "READ"), g(c("eve"), "READ"), g(c("eve"), "WRITE")],
        "own",
        false,
    )
    .unwrap();
    assert_eq!(asked.grants.iter().map(|w| w.write).collect::<Vec<_>>(), [false, true]);
    for bad in [vec![g(c("bob"), "WRITE")], vec![g(c("bob"), "FULL_CONTROL")], vec![g(c("bob"), "READ_ACP")]] {
        assert!(matches!(acl_grants(&bad, "own", false), Err(Refusal::Unsupported(_))), "{bad:?}");
    }
    let public = acl_grants(&[g(AclWho::Group(ALL_USERS.into()), "READ")], "own", false).unwrap();
    assert_eq!(public.audience, Audience::Public);
    assert!(acl_grants(&[g(AclWho::Group(ALL_USERS.into()), "WRITE")], "own", false).is_err());
    assert!(acl_grants(&[g(c("bob"), "READ"), g(c("bob"), "WRITE")], "own", true).is_err(), "objects: READ only");
    assert_eq!(canned("authenticated-read", false).unwrap(), Audience::Authenticated);
    assert!(canned("public-read-write", false).is_err() && canned("public-read", true).is_err());
    assert_eq!(canned("bucket-owner-full-control", true).unwrap(), Audience::Private);
    // A whole ACL keeps the owner's FULL_CONTROL, or is refused.
    assert!(check_owner_kept(&[g(c("own"), "FULL_CONTROL"), g(c("bob"), "READ")], "own").is_ok());
    assert!(matches!(check_owner_kept(&[g(c("bob"), "READ")], "own"), Err(Refusal::Unsupported(_))));
    assert!(check_owner_kept(&[], "own").is_err());
}

crate::tests::also_on_postgres!(
    a_policy_grant_is_a_share_and_a_share_is_in_the_policy,
    a_bucket_name_reaches_another_owners_bucket_only_through_grants,
    public_read_only_where_the_server_allows_it,
    acl_grants_by_canonical_id_and_object_acls,
);

/// A multipart upload into another owner's bucket ends with the grant that allowed it: the
/// bucket's name then leads into the grantee's own drive, where no part goes and no
/// completion makes a bucket of that name.
#[tokio::test]
async fn an_upload_through_a_grant_ends_with_the_grant() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    s.mkdir(&alice, "/box").await.unwrap();
    let share = s.share(&alice, "/box", "bob", true).await.unwrap();
    let by_bucket = routed(s, Some(&bob), "box").await;
    let up = s.create_upload(&by_bucket, "/box/m.bin", WriteOptions::default()).await.unwrap();
    let part = s.upload_part(&by_bucket, up.id, 1, body(b"part one"), Default::default()).await.unwrap();

    s.delete_share(&alice, share.share.id).await.unwrap();
    assert!(matches!(s.s3_principal(Some(&bob), "box").await.unwrap(), S3Reach::Nothing | S3Reach::Own));
    let r = s.upload_part(&bob, up.id, 2, body(b"part two"), Default::default()).await;
    assert!(r.is_err(), "{r:?}");
    let r = s.complete_upload(&bob, up.id, vec![(1, part.etag.clone())]).await;
    assert!(r.is_err(), "{r:?}");
    assert!(s.stat(&bob, "/box").await.is_err(), "no bucket made in bob's drive");
    // Nor into a bucket of that name bob makes now (within the clocks' slack, so only the
    // drive the upload began in tells it apart): alice's usage holds its parts, not his.
    s.mkdir(&bob, "/box").await.unwrap();
    let r = s.upload_part(&bob, up.id, 2, body(b"part two"), Default::default()).await;
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    let r = s.complete_upload(&bob, up.id, vec![(1, part.etag)]).await;
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    assert!(s.stat(&bob, "/box/m.bin").await.is_err());
    assert!(s.stat(&alice, "/box/m.bin").await.is_err());
    assert_consistent(s).await;
}
