use bytes::Bytes;

use crate::meta::model::Role;
use crate::{Error, WriteOptions};

#[tokio::test]
async fn new_names_with_control_characters_are_refused_everywhere_in_the_core() {
    let f = crate::tests::open_with(|_| {});
    let (s, p) = (&f.storage, crate::tests::user(&f.storage, "alice", Role::User, None).await);
    let bad = |r: crate::Result<_>| matches!(r, Err(Error::InvalidName(_)));
    let empty = || futures::stream::empty::<std::io::Result<Bytes>>();
    assert!(bad(s.write(&p, "/c\u{1}.txt", empty(), WriteOptions::default()).await.map(|_| ())));
    assert!(bad(s.mkdir(&p, "/d\u{7f}").await.map(|_| ())));
    assert!(bad(s.mkdir_all(&p, "/e\u{85}/f").await.map(|_| ())));
    let s3 = WriteOptions { create_parents: true, ..Default::default() };
    assert!(bad(s.write(&p, "/b/g\u{1b}/k.txt", empty(), s3.clone()).await.map(|_| ())));
    assert!(bad(s.create_upload(&p, "/b/h\n.bin", s3).await.map(|_| ())));
    s.write(&p, "/ok.txt", empty(), WriteOptions::default()).await.unwrap();
    assert!(bad(s.rename(&p, "/ok.txt", "/ok\t.txt", false).await.map(|_| ())));
    assert!(bad(s.copy(&p, "/ok.txt", "/ok\u{9f}.txt", false).await.map(|_| ())));
    // Looking a name up is not making one: a missing item is just missing.
    assert!(matches!(s.stat(&p, "/c\u{1}.txt").await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn names_stored_before_the_rule_still_list_read_move_and_delete() {
    use futures::StreamExt;
    let f = crate::tests::open_with(|_| {});
    let (s, p) = (&f.storage, crate::tests::user(&f.storage, "alice", Role::User, None).await);
    let opts = WriteOptions { create_parents: true, ..Default::default() };
    let body = futures::stream::iter(vec![Ok(Bytes::from_static(b"old"))]);
    s.write(&p, "/b/legacy.txt", body, opts).await.unwrap();
    // Give it the name an earlier version accepted, as that version stored it.
    let root = p.root;
    s.core
        .db
        .write((), move |ctx| {
            let mut w = crate::meta::txn::W::open(ctx)?;
            let item = w.resolve(root, &crate::meta::names::DrivePath::parse("/b/legacy.txt")?)?.unwrap();
            w.unlink(&item)?;
            let renamed = crate::Item { name: "legacy\u{1}.txt".into(), ..item };
            w.put(&renamed)?;
            w.link(&renamed)
        })
        .await
        .unwrap();
    let q = crate::ListQuery { prefix: "", start_after: None, delimiter: None, max: 10 };
    let listing = s.list_keys(&p, "/b", q).await.unwrap();
    assert_eq!(listing.objects.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["legacy\u{1}.txt"]);
    let mut r = s.read(&p, "/b/legacy\u{1}.txt", None).await.unwrap();
    assert_eq!(r.body.next().await.unwrap().unwrap().as_ref(), b"old");
    // It can be moved to a valid name, or deleted, but nothing new takes such a name.
    let empty = || futures::stream::empty::<std::io::Result<Bytes>>();
    assert!(matches!(
        s.write(&p, "/b/legacy\u{1}.txt", empty(), WriteOptions::default()).await,
        Err(Error::InvalidName(_))
    ));
    s.rename(&p, "/b/legacy\u{1}.txt", "/b/fixed.txt", false).await.unwrap();
    s.copy(&p, "/b/fixed.txt", "/b/copy.txt", false).await.unwrap();
    s.delete(&p, "/b/copy.txt", Default::default()).await.unwrap();
    assert_eq!(s.stat(&p, "/b/fixed.txt").await.unwrap().size, 3);
}

/// An object's key never names a folder: S3's delete of such a key deletes nothing, its copy
/// onto one is refused, and both check the write's conditions as they commit.
#[tokio::test]
async fn object_deletes_and_copies_leave_folders_and_keep_conditions() {
    let f = crate::tests::open_with(|_| {});
    let (s, p) = (&f.storage, crate::tests::user(&f.storage, "alice", Role::User, None).await);
    let s3 = || WriteOptions { create_parents: true, ..Default::default() };
    let body = |b: &'static [u8]| crate::tests::body(b);
    s.mkdir(&p, "/b").await.unwrap();
    s.write(&p, "/b/docs/a.txt", body(b"a"), s3()).await.unwrap();
    let one = s.write(&p, "/b/one", body(b"one"), s3()).await.unwrap();
    assert_eq!(s.delete_object(&p, "/b/docs", 1).await.unwrap(), None);
    assert!(s.stat(&p, "/b/docs/a.txt").await.is_ok(), "a delete of the folder's key kept what is in it");
    let onto_folder = s.copy_object(&p, "/b/one", "/b/docs", crate::ObjectCopy::default()).await;
    assert!(matches!(onto_folder, Err(Error::Conflict(_))), "{onto_folder:?}");
    assert!(s.stat(&p, "/b/docs/a.txt").await.is_ok());

    let absent = crate::Conditions { if_none_match: Some(vec!["*".into()]), ..Default::default() };
    let object = |conditions| crate::ObjectCopy { conditions, ..Default::default() };
    let r = s.copy_object(&p, "/b/docs/a.txt", "/b/one", object(absent.clone())).await;
    assert!(matches!(r, Err(Error::PreconditionFailed(_))), "{r:?}");
    let matching = crate::Conditions { if_match: Some(vec![one.etag.clone()]), ..Default::default() };
    let (copy, created) = s.copy_object(&p, "/b/docs/a.txt", "/b/one", object(matching)).await.unwrap();
    assert!(!created && copy.etag != one.etag);

    let up = s.create_upload(&p, "/b/docs/a.txt", Default::default()).await.unwrap();
    let part = s.upload_part(&p, up.id, 1, body(b"part"), Default::default()).await.unwrap();
    let complete = |conditions| {
        s.complete_upload_with(&p, up.id, vec![(1, part.etag.clone())], None, Default::default(), conditions)
    };
    assert!(matches!(complete(absent).await, Err(Error::PreconditionFailed(_))));
    assert_eq!(crate::tests::read_all(s, &p, "/b/docs/a.txt", None).await.unwrap(), b"a");
    complete(crate::Conditions::default()).await.unwrap();
    assert_eq!(crate::tests::read_all(s, &p, "/b/docs/a.txt", None).await.unwrap(), b"part");
}
