//! What every engine below the seam must do the same way: each test runs on redb and on a
//! real PostgreSQL (see `crate::tests::pg`).

use std::sync::Arc;

use super::*;
use crate::meta::db::{CHILDREN, Db, ITEMS, META};

/// A store of each engine, with its tables made.
fn db(postgres: bool) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = if postgres {
        Db::open_postgres(&crate::tests::pg::database(), 4, |_| {}).unwrap()
    } else {
        Db::open(&dir.path().join("kv.redb"), 1 << 20, |_| {}).unwrap()
    };
    assert_eq!(db.is_postgres(), postgres);
    db.write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
    (dir, db)
}

crate::tests::pg::on_both!(
    ranges_are_in_key_order_both_ways_and_keep_their_bounds,
    a_write_sees_its_own_changes_and_a_refused_write_leaves_nothing,
    counters_count_from_one_and_only_commit_with_their_write,
    scans_longer_than_a_page_come_whole_from_either_end,
    a_path_walk_finds_folders_then_a_file_or_a_folder,
    every_key_type_reads_back_as_written,
    a_page_of_children_comes_with_its_items,
    a_big_write_reads_its_own_changes_wherever_they_are,
    what_is_fetched_ahead_reads_as_it_would_have,
);

fn put_children(db: &Db, rows: &[((u64, &'static str), u64)]) {
    db.write_sync(|ctx| {
        let mut t = ctx.txn.open_table(CHILDREN)?;
        for (k, v) in rows {
            t.insert(k, v)?;
        }
        Ok(())
    })
    .unwrap();
}

fn keys<'a>(range: impl Iterator<Item = Result<Row<'a, (u64, &'static str), u64>>>) -> Vec<(u64, String)> {
    range
        .map(|r| {
            let (k, _) = r.unwrap();
            let (a, b) = k.value();
            (a, b.to_owned())
        })
        .collect()
}

fn ranges_are_in_key_order_both_ways_and_keep_their_bounds(pg: bool) {
    let (_dir, db) = db(pg);
    put_children(&db, &[((2, "b"), 5), ((1, "z"), 9), ((2, "a/"), 4), ((2, "a"), 3), ((3, ""), 7)]);
    db.read_sync(|t| {
        let c = t.open_table(CHILDREN)?;
        let two = vec![(2, "a".to_owned()), (2, "a/".to_owned()), (2, "b".to_owned())];
        assert_eq!(keys(c.range((2, "")..(3, ""))?), two, "a parent's rows, byte order");
        let mut back = two.clone();
        back.reverse();
        assert_eq!(keys(c.range((2, "")..(3, ""))?.rev()), back, "and backwards");
        assert_eq!(keys(c.range((2, "a/")..(3, ""))?), two[1..], "an inclusive start");
        assert_eq!(keys(c.range((2, "a")..=(2, "a/"))?), two[..2], "an inclusive end");
        assert_eq!(
            keys(c.range::<(u64, &str)>((Bound::Excluded((2, "a")), Bound::Excluded((2, "b"))))?),
            two[1..2],
            "exclusive both ends"
        );
        assert_eq!(keys(c.range((3, "")..)?), [(3, String::new())], "an open end");
        assert_eq!(keys(c.iter()?).len(), 5);
        assert_eq!(c.len()?, 5);
        assert_eq!(c.get((2, "a/"))?.map(|v| v.value()), Some(4));
        assert!(c.get((2, "c"))?.is_none());
        Ok(())
    })
    .unwrap();
}

fn a_write_sees_its_own_changes_and_a_refused_write_leaves_nothing(pg: bool) {
    let (_dir, db) = db(pg);
    put_children(&db, &[((1, "a"), 1)]);
    let refused = db.write_sync(|ctx| {
        let mut t = ctx.txn.open_table(CHILDREN)?;
        assert!(t.remove((1, "a"))?, "removing a row that is there");
        assert!(!t.remove((1, "a"))?, "and again: it is gone");
        t.insert((1, "b"), 2)?;
        assert_eq!(t.get((1, "b"))?.map(|v| v.value()), Some(2));
        t.insert((1, "b"), 3)?;
        assert_eq!(t.get((1, "b"))?.map(|v| v.value()), Some(3), "an insert replaces");
        assert_eq!(keys(t.iter()?), [(1, "b".to_owned())], "a scan sees the write's own rows");
        Err::<(), _>(Error::Conflict("refused".into()))
    });
    assert!(matches!(refused, Err(Error::Conflict(_))), "the change's own refusal comes back as it is");
    db.read_sync(|t| {
        let c = t.open_table(CHILDREN)?;
        assert_eq!(keys(c.iter()?), [(1, "a".to_owned())], "the refused write left nothing");
        Ok(())
    })
    .unwrap();
}

fn counters_count_from_one_and_only_commit_with_their_write(pg: bool) {
    let (_dir, db) = db(pg);
    let (ids, _) = db.write_sync(|ctx| Ok([ctx.txn.next_id("c")?, ctx.txn.next_id("c")?])).unwrap();
    assert_eq!(ids, [1, 2]);
    let _ = db.write_sync(|ctx| {
        ctx.txn.next_id("c")?;
        Err::<(), _>(Error::Conflict("refused".into()))
    });
    let (next, _) = db.write_sync(|ctx| ctx.txn.next_id("c")).unwrap();
    assert_eq!(next, 3, "the refused write's id was not taken");
    db.read_sync(|t| {
        assert!(t.open_table(META)?.get("c")?.is_some());
        Ok(())
    })
    .unwrap();
}

/// More rows than PostgreSQL's page, read forwards, backwards, from both ends at once, and
/// in bounded ranges that start and end inside pages.
fn scans_longer_than_a_page_come_whole_from_either_end(pg: bool) {
    let (_dir, db) = db(pg);
    let n = (pg::PAGE * 2 + 37) as u64;
    db.write_sync(|ctx| {
        let mut t = ctx.txn.open_table(ITEMS)?;
        for id in 1..=n {
            t.insert(id * 3, id.to_le_bytes().as_slice())?;
        }
        Ok(())
    })
    .unwrap();
    let all: Vec<u64> = (1..=n).map(|i| i * 3).collect();
    fn ids<'a>(r: impl Iterator<Item = Result<Row<'a, u64, &'static [u8]>>>) -> Vec<u64> {
        r.map(|e| {
            let (k, v) = e.unwrap();
            assert_eq!(u64::from_le_bytes(v.value().try_into().unwrap()) * 3, k.value(), "each key with its value");
            k.value()
        })
        .collect()
    }
    db.read_sync(|t| {
        let items = t.open_table(ITEMS)?;
        assert_eq!(ids(items.iter()?), all, "forwards");
        let mut back = all.clone();
        back.reverse();
        assert_eq!(ids(items.iter()?.rev()), back, "backwards");
        assert_eq!(items.len()?, n);
        // Bounds inside pages: 10 ..= 3n-5 (both ends on no key, then on a key).
        let inner: Vec<u64> = all.iter().copied().filter(|&k| (10..=3 * n - 5).contains(&k)).collect();
        assert_eq!(ids(items.range(10..=3 * n - 5)?), inner);
        let inner: Vec<u64> = all.iter().copied().filter(|&k| (9..3 * n).contains(&k)).collect();
        assert_eq!(ids(items.range(9..3 * n)?), inner, "an excluded end on a key");
        // Both ends at once, meeting in the middle: every row exactly once.
        let mut r = items.iter()?;
        let (mut front, mut rear) = (Vec::new(), Vec::new());
        loop {
            let a = r.next().map(|e| e.unwrap().0.value());
            let b = r.next_back().map(|e| e.unwrap().0.value());
            front.extend(a);
            rear.extend(b);
            if a.is_none() && b.is_none() {
                break;
            }
            assert!(front.len() + rear.len() <= all.len(), "no row twice");
        }
        rear.reverse();
        front.extend(rear);
        assert_eq!(front, all, "from both ends");
        Ok(())
    })
    .unwrap();
}

/// Ids above one byte, so that the server's decoding of stored ids is checked too.
fn a_path_walk_finds_folders_then_a_file_or_a_folder(pg: bool) {
    let (_dir, db) = db(pg);
    let (a, b, f, g, h) = (0x0102_0304_0506_0708u64, 300, 70_000, 1 << 40, 5);
    put_children(&db, &[((1, "a/"), a), ((a, "b/"), b), ((b, "f"), f), ((b, "g/"), g), ((b, "h"), h), ((b, "h/"), 6)]);
    db.read_sync(|t| {
        let c = t.open_table(CHILDREN)?;
        let walk = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let mut reached = Vec::new();
            let n = crate::meta::txn::walk(&c, 1, &names, |id| reached.push(id)).unwrap();
            assert_eq!(n, reached.len());
            reached
        };
        assert_eq!(walk(&["a", "b", "f"]), [a, b, f], "a file last");
        assert_eq!(walk(&["a", "b", "g"]), [a, b, g], "a folder last");
        assert_eq!(walk(&["a", "b", "h"]), [a, b, h], "a file before a folder of the same name");
        assert_eq!(walk(&["a", "b", "f", "x"]), [a, b], "a file is no folder");
        assert_eq!(walk(&["a", "x", "f"]), [a], "a missing name stops the walk");
        assert_eq!(walk(&["a"]), [a]);
        assert!(walk(&[]).is_empty());
        Ok(())
    })
    .unwrap();
}

/// Every key type the tables use, read back through the engine in key order.
fn every_key_type_reads_back_as_written(pg: bool) {
    use crate::meta::db::{PARTS, REFRESH, SHARES_BY_ITEM, USERNAMES};
    let (_dir, db) = db(pg);
    let hashes = [[0u8; 32], [1; 32], [255; 32]];
    db.write_sync(|ctx| {
        let mut names = ctx.txn.open_table(USERNAMES)?;
        for (i, n) in ["b", "a", "ä", "a/", ""].iter().enumerate() {
            names.insert(*n, i as u64)?;
        }
        let mut parts = ctx.txn.open_table(PARTS)?;
        for (u, n) in [(2u64, 1u32), (1, 70_000), (1, 2)] {
            parts.insert((u, n), b"p".as_slice())?;
        }
        let mut refresh = ctx.txn.open_table(REFRESH)?;
        for (i, h) in hashes.iter().rev().enumerate() {
            refresh.insert(h, i as u64)?;
        }
        let mut shares = ctx.txn.open_table(SHARES_BY_ITEM)?;
        for k in [(1u64 << 33, 1u64), (1, 1 << 33), (1, 2)] {
            shares.insert(k, 0)?;
        }
        Ok(())
    })
    .unwrap();
    db.read_sync(|t| {
        let names: Vec<String> = t.open_table(USERNAMES)?.iter()?.map(|e| e.unwrap().0.value().to_owned()).collect();
        assert_eq!(names, ["", "a", "a/", "b", "ä"]);
        let parts: Vec<(u64, u32)> = t.open_table(PARTS)?.iter()?.map(|e| e.unwrap().0.value()).collect();
        assert_eq!(parts, [(1, 2), (1, 70_000), (2, 1)]);
        let refresh: Vec<[u8; 32]> = t.open_table(REFRESH)?.iter()?.map(|e| *e.unwrap().0.value()).collect();
        assert_eq!(refresh, hashes);
        let shares: Vec<(u64, u64)> = t.open_table(SHARES_BY_ITEM)?.iter()?.map(|e| e.unwrap().0.value()).collect();
        assert_eq!(shares, [(1, 2), (1, 1 << 33), (1 << 33, 1)]);
        Ok(())
    })
    .unwrap();
}

/// The ordered encoding sorts as redb does, and decodes to redb's own bytes, for every key
/// type the tables use (a string that is a prefix of another included).
#[test]
fn ordered_keys_sort_as_redb_sorts_them() {
    fn check<K: OrderedKey>(samples: &[K::SelfType<'_>]) {
        for a in samples {
            let (ab, ae) = (K::as_bytes(a).as_ref().to_vec(), K::encode(a));
            assert_eq!(K::redb_form(ae.clone()).unwrap(), ab, "decodes to redb's bytes");
            for b in samples {
                let (bb, be) = (K::as_bytes(b).as_ref().to_vec(), K::encode(b));
                assert_eq!(K::compare(&ab, &bb), ae.cmp(&be), "{:?} vs {:?}", ab, bb);
            }
        }
    }
    let ints = [0u64, 1, 255, 256, 1 << 32, u64::MAX - 1, u64::MAX];
    check::<u64>(&ints);
    check::<&str>(&["", "a", "a/", "a0", "b", "ä", "\u{10ffff}", "a\0"]);
    let strs = ["", "a", "a/", "a/b", "ab", "b", "é"];
    let pairs: Vec<(u64, &str)> = ints.iter().flat_map(|&i| strs.iter().map(move |&s| (i, s))).collect();
    check::<(u64, &str)>(&pairs);
    let pairs: Vec<(u64, u64)> = ints.iter().flat_map(|&i| ints.iter().map(move |&j| (i, j))).collect();
    check::<(u64, u64)>(&pairs);
    let pairs: Vec<(u64, u32)> =
        ints.iter().flat_map(|&i| [0u32, 1, 256, u32::MAX].into_iter().map(move |j| (i, j))).collect();
    check::<(u64, u32)>(&pairs);
    let hashes = [[0u8; 32], [1; 32], [255; 32], {
        let mut h = [0u8; 32];
        h[31] = 1;
        h
    }];
    let refs: Vec<&[u8; 32]> = hashes.iter().collect();
    check::<&[u8; 32]>(&refs);
}

/// Two writers add one to the same counter N times each, with a pause between the read and
/// the write so they collide; the rule maps every error to one of its own. On PostgreSQL
/// the losers are run again (the sticky retry flag sees through the mapping), so the
/// counter ends at exactly 2N and every id is handed out once.
#[test]
fn concurrent_writers_on_postgres_are_serialized_by_running_again() {
    let (_dir, db) = db(true);
    const N: usize = 15;
    let db = Arc::new(db);
    let collided = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (db, collided) = (db.clone(), collided.clone());
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for _ in 0..N {
                    let mut runs = 0;
                    let (id, _) = db
                        .write_sync(|ctx| {
                            runs += 1;
                            let meta = ctx.txn.open_table(META)?;
                            let seen = meta.get("c").map_err(|_| Error::Conflict("mapped".into()))?.is_some();
                            drop(meta);
                            std::thread::sleep(std::time::Duration::from_millis(3));
                            let id = ctx.txn.next_id("c").map_err(|_| Error::Conflict("mapped".into()))?;
                            let _ = seen;
                            Ok(id)
                        })
                        .unwrap();
                    if runs > 1 {
                        collided.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    ids.push(id);
                }
                ids
            })
        })
        .collect();
    let mut ids: Vec<u64> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=2 * N as u64).collect::<Vec<_>>(), "every id once");
    let (next, _) = db.write_sync(|ctx| ctx.txn.next_id("c")).unwrap();
    assert_eq!(next, 2 * N as u64 + 1);
    assert!(
        collided.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the writers never collided: the test proves nothing"
    );
}

/// Two nodes (two stores on one database) with two tasks each, writing through `Db::write`
/// as the rules do: each node's writer thread batches its changes, and a batch that fails to
/// serialize with the other node's runs again, so the counter counts every change once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_writing_at_once_count_exactly() {
    let url = crate::tests::pg::database();
    let nodes: Vec<Db> = (0..2).map(|_| Db::open_postgres(&url, 4, |_| {}).unwrap()).collect();
    nodes[0].write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
    const N: u64 = 25;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let db = nodes[i % 2].clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..N {
                    ids.push(db.write((), |ctx| ctx.txn.next_id("c")).await.unwrap());
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=4 * N).collect::<Vec<_>>(), "every id once");
    let next = nodes[1]
        .read(|t| Ok(u64::from_le_bytes(t.open_table(META)?.get("c")?.unwrap().value().try_into().unwrap())))
        .await
        .unwrap();
    assert_eq!(next, 4 * N + 1);
}

#[test]
fn a_newer_schema_is_refused_and_an_unreachable_server_named_without_its_password() {
    let url = crate::tests::pg::database();
    drop(Db::open_postgres(&url, 2, |_| {}).unwrap());
    drop(Db::open_postgres(&url, 2, |_| {}).unwrap()); // opening again changes nothing
    crate::tests::pg::admin_query_i64(
        &url,
        "WITH u AS (UPDATE davit_schema SET version = 99 RETURNING 1) SELECT count(*) FROM u",
    );
    let err = Db::open_postgres(&url, 2, |_| {}).err().expect("refused");
    assert!(matches!(err, Error::Incompatible(_)));
    let msg = err.to_string();
    assert!(msg.contains("schema version 99") && msg.contains("newer davit"), "{msg}");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = Db::open_postgres(&format!("postgres://davit:s3cret-pw@127.0.0.1:{port}/meta"), 2, |_| {})
        .err()
        .expect("nothing listens there");
    let msg = err.to_string();
    assert!(matches!(err, Error::Incompatible(_)), "{msg}");
    assert!(msg.contains("PostgreSQL") && msg.contains(&format!("postgres://davit@127.0.0.1:{port}/meta")), "{msg}");
    assert!(!msg.contains("s3cret") && !msg.contains('\n'), "one line, no password: {msg}");
    let shown =
        format!("{:?}", crate::meta::db::MetaStore::Postgres { url: "postgres://u:s3cret@h/d".into(), pool_size: 1 });
    assert!(!shown.contains("s3cret"), "{shown}");
}

/// `children_from` (one joined query a page on PostgreSQL): from a sort key on, in order,
/// across pages, each child with its own item, only the folder's own children.
fn a_page_of_children_comes_with_its_items(pg: bool) {
    use crate::meta::model::Item;
    let (_dir, db) = db(pg);
    let n = pg::PAGE as u64 + 40;
    db.write_sync(|ctx| {
        let mut items = ctx.txn.open_table(ITEMS)?;
        let mut children = ctx.txn.open_table(CHILDREN)?;
        children.insert((1, "d/"), 7)?;
        for (parent, count) in [(7u64, n), (6, 3), (8, 3)] {
            for i in 0..count {
                let id = parent * 10_000 + i;
                let it = Item::file(id, 1, parent, &format!("f{i:04}"), 0);
                items.insert(id, crate::meta::db::encode(&it).as_slice())?;
                children.insert((parent, it.name.as_str()), id)?;
            }
        }
        Ok(())
    })
    .unwrap();
    db.read_sync(|t| {
        let (items, children) = (t.open_table(ITEMS)?, t.open_table(CHILDREN)?);
        let got: Vec<(String, u64)> = crate::meta::txn::children_from(&items, &children, 7, "f0003")?
            .map(|c| {
                let c = c.unwrap();
                let item = c.item().unwrap();
                assert_eq!(c.key(), item.name, "each child with its own item");
                (item.name, item.id)
            })
            .collect();
        let want: Vec<(String, u64)> = (3..n).map(|i| (format!("f{i:04}"), 70_000 + i)).collect();
        assert_eq!(got, want);
        assert_eq!(crate::meta::txn::children_from(&items, &children, 7, "g")?.count(), 0);
        assert_eq!(crate::meta::txn::children_from(&items, &children, 6, "")?.count(), 3);
        // And a path resolved to its item (one query on PostgreSQL): a file under a folder
        // item 7 stands for (no item row: `resolve` of the folder itself finds nothing).
        children.get((1, "d/"))?.expect("the folder's link");
        let path = |p: &str| crate::meta::names::DrivePath::parse(p).unwrap();
        let found = crate::meta::txn::resolve(&items, &children, 1, &path("/d/f0005"))?.expect("a file");
        assert_eq!((found.id, found.name.as_str()), (70_005, "f0005"));
        assert!(crate::meta::txn::resolve(&items, &children, 1, &path("/d/nope"))?.is_none());
        assert!(crate::meta::txn::resolve(&items, &children, 1, &path("/x/f0005"))?.is_none());
        assert!(crate::meta::txn::resolve(&items, &children, 1, &path("/d"))?.is_none(), "no row for item 7");
        assert_eq!(crate::meta::txn::resolve(&items, &children, 60_001, &path("/"))?.map(|i| i.id), Some(60_001));
        Ok(())
    })
    .unwrap();
}

/// More rows than a PostgreSQL write remembers or holds unsent: every read, scan, count and
/// removal still sees exactly the write's own changes, and the commit sends them all.
fn a_big_write_reads_its_own_changes_wherever_they_are(pg: bool) {
    let (_dir, db) = db(pg);
    let n = 5000u64;
    db.write_sync(|ctx| {
        let mut t = ctx.txn.open_table(ITEMS)?;
        t.insert(1, b"one".as_slice())?;
        assert_eq!(t.iter()?.count(), 1, "a scan sees a held insert");
        assert!(t.remove(1)?);
        assert!(t.get(1)?.is_none());
        assert!(!t.remove(1)?, "a removal it remembers");
        assert_eq!(t.len()?, 0, "a count sees a held removal");
        for id in 1..=n {
            t.insert(id, id.to_le_bytes().as_slice())?;
        }
        assert_eq!(t.get(3)?.map(|v| v.value().to_vec()), Some(3u64.to_le_bytes().to_vec()));
        assert_eq!(t.get(n)?.map(|v| v.value().to_vec()), Some(n.to_le_bytes().to_vec()));
        assert!(t.remove(2)?, "a removal of a row it may have forgotten");
        t.insert(n, b"last".as_slice())?;
        assert_eq!(t.len()?, n - 1);
        Ok(())
    })
    .unwrap();
    db.read_sync(|t| {
        let items = t.open_table(ITEMS)?;
        assert_eq!(items.len()?, n - 1);
        assert!(items.get(2)?.is_none());
        assert_eq!(items.get(n)?.unwrap().value(), b"last");
        let last = items.iter()?.next_back().unwrap()?;
        assert_eq!(last.0.value(), n);
        let sum: u64 = items.iter()?.map(|e| e.unwrap().0.value()).sum();
        assert_eq!(sum, n * (n + 1) / 2 - 2);
        Ok(())
    })
    .unwrap();
}

/// A read's connection is parked with its transaction open (see `pg::Engine`): the next
/// user, reader or writer, on the one connection there is, starts from a fresh snapshot,
/// and a parked snapshot is ended soon even when nobody comes.
#[test]
fn a_parked_read_never_lends_its_snapshot() {
    let url = crate::tests::pg::database();
    let db = Db::open_postgres(&url, 1, |_| {}).unwrap();
    db.write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
    let read = |db: &Db| db.read_sync(|t| Ok(t.open_table(META)?.get("k")?.map(|v| v.value().to_vec()))).unwrap();
    for round in 0..3u8 {
        let before = read(&db);
        assert_eq!(before, (round > 0).then(|| vec![round - 1]));
        db.write_sync(|ctx| {
            let mut meta = ctx.txn.open_table(META)?;
            assert_eq!(meta.get("k")?.map(|v| v.value().to_vec()), before, "the write sees the latest commit");
            meta.insert("k", [round].as_slice())?;
            Ok(())
        })
        .unwrap();
        assert_eq!(read(&db), Some(vec![round]), "a read after a write sees it");
    }
    read(&db);
    let open = "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND datname = current_database()";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while crate::tests::pg::admin_query_i64(&url, open) > 0 {
        assert!(std::time::Instant::now() < deadline, "a parked read held its snapshot for seconds");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// PostgreSQL drops every connection (a restart, a failover): the next changes and reads may
/// fail, but the store comes back by itself on new connections, and nothing half-done stays.
#[test]
fn lost_connections_are_replaced() {
    let url = crate::tests::pg::database();
    let db = Db::open_postgres(&url, 4, |_| {}).unwrap();
    db.write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
    let (first, _) = db.write_sync(|ctx| ctx.txn.next_id("c")).unwrap();
    let _ = db.read_sync(|t| Ok(t.open_table(META)?.get("c")?.is_some())).unwrap(); // parks one
    let killed = crate::tests::pg::admin_query_i64(
        &url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert!(killed > 0, "the store had connections to lose");
    let mut ids = Vec::new();
    for _ in 0..20 {
        if let Ok((id, _)) = db.write_sync(|ctx| ctx.txn.next_id("c")) {
            ids.push(id);
            if ids.len() == 3 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(ids, [first + 1, first + 2, first + 3], "writes resume, each counted once");
    let stored = db
        .read_sync(|t| Ok(u64::from_le_bytes(t.open_table(META)?.get("c")?.unwrap().value().try_into().unwrap())))
        .unwrap();
    assert_eq!(stored, first + 4);
}

/// PostgreSQL ending every connection (a restart, an administrator) while they are idle in
/// the pool costs no request an error: the first query of a transaction finds its connection
/// lost before anything of the transaction reached the server, and is sent on a new one.
#[test]
fn connections_lost_while_idle_cost_no_request() {
    let url = crate::tests::pg::database();
    let db = Db::open_postgres(&url, 4, |_| {}).unwrap();
    db.write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
    let (first, _) = db.write_sync(|ctx| ctx.txn.next_id("c")).unwrap();
    // Several idle connections, one of them with a read's transaction still open.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| db.read_sync(|t| Ok(t.open_table(META)?.get("c")?.is_some())).unwrap());
        }
    });
    let killed = crate::tests::pg::admin_query_i64(
        &url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert!(killed > 0, "the store had connections to lose");
    assert!(db.read_sync(|t| Ok(t.open_table(META)?.get("c")?.is_some())).unwrap(), "a read, at once");
    let (id, _) = db.write_sync(|ctx| ctx.txn.next_id("c")).unwrap();
    assert_eq!(id, first + 1, "a write, at once, counted once");
}

/// Rows, first pages and a folder chain fetched ahead (one round trip on PostgreSQL) read
/// exactly as they read without: found and missing rows along the chain, a page, and a page
/// the transaction then changes (a scan after that must see the change).
fn what_is_fetched_ahead_reads_as_it_would_have(pg: bool) {
    let (_dir, db) = db(pg);
    put_children(&db, &[((1, "a/"), 2), ((2, "b/"), 3), ((2, "f"), 9), ((3, "x"), 10)]);
    db.write_sync(|ctx| {
        let mut items = ctx.txn.open_table(ITEMS)?;
        for id in [1u64, 2, 3] {
            items.insert(id, format!("item {id}").as_bytes())?;
        }
        Ok(())
    })
    .unwrap();
    let steps = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let item = |items: &ReadTable<u64, &'static [u8]>, id: u64| items.get(id).unwrap().map(|v| v.value().to_vec());
    db.read_sync(|t| {
        let (c, i) = (t.open_table(CHILDREN)?, t.open_table(ITEMS)?);
        fetch_ahead([
            folder_chain_ahead(&c, &i, 1, steps(&["a/", "b/", "c/", "d/"])),
            c.range_ahead((2, "")..(3, "")),
            i.ahead(9),
        ])?;
        assert_eq!(c.get((1, "a/"))?.map(|v| v.value()), Some(2));
        assert_eq!(c.get((2, "b/"))?.map(|v| v.value()), Some(3));
        assert!(c.get((3, "c/"))?.is_none(), "the first step missing");
        assert!(c.get((2, "f/"))?.is_none());
        assert_eq!(item(&i, 1), Some(b"item 1".to_vec()));
        assert_eq!(item(&i, 3), Some(b"item 3".to_vec()));
        assert_eq!(item(&i, 9), None);
        assert_eq!(keys(c.range((2, "")..(3, ""))?), [(2, "b/".to_owned()), (2, "f".to_owned())]);
        assert_eq!(keys(c.range((3, "")..(4, ""))?), [(3, "x".to_owned())], "a page not fetched");
        // A chain from a folder with no such child, and one with no steps.
        fetch_ahead([folder_chain_ahead(&c, &i, 3, steps(&["y/"]))])?;
        assert!(c.get((3, "y/"))?.is_none());
        fetch_ahead([folder_chain_ahead(&c, &i, 2, Vec::new())])?;
        assert_eq!(item(&i, 2), Some(b"item 2".to_vec()));
        Ok(())
    })
    .unwrap();
    db.write_sync(|ctx| {
        let mut c = ctx.txn.open_table(CHILDREN)?;
        let i = ctx.txn.open_table(ITEMS)?;
        fetch_ahead([c.range_ahead((2, "")..(3, "")), folder_chain_ahead(&c, &i, 1, steps(&["a/"]))])?;
        c.insert((2, "c"), 11)?;
        c.remove((2, "f"))?;
        assert_eq!(keys(c.range((2, "")..(3, ""))?), [(2, "b/".to_owned()), (2, "c".to_owned())], "own changes");
        // Fetched again after the change: the answer includes it.
        fetch_ahead([c.range_ahead((2, "")..(3, "")), i.ahead(1), i.ahead(2)])?;
        assert_eq!(keys(c.range((2, "")..(3, ""))?), [(2, "b/".to_owned()), (2, "c".to_owned())]);
        assert_eq!(c.get((1, "a/"))?.map(|v| v.value()), Some(2));
        Ok(())
    })
    .unwrap();
}

/// A redb file whose writes fail while `full` is set, as on a full disk.
#[derive(Debug)]
struct Flaky {
    bytes: Arc<redb::backends::InMemoryBackend>,
    full: Arc<std::sync::atomic::AtomicBool>,
}

impl Flaky {
    fn refuse(&self) -> std::io::Result<()> {
        match self.full.load(std::sync::atomic::Ordering::Relaxed) {
            true => Err(std::io::Error::from(std::io::ErrorKind::StorageFull)),
            false => Ok(()),
        }
    }
}

impl redb::StorageBackend for Flaky {
    fn len(&self) -> std::io::Result<u64> {
        self.bytes.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.bytes.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.refuse()?;
        self.bytes.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.refuse()?;
        self.bytes.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.refuse()?;
        self.bytes.write(offset, data)
    }
}

/// Found by an operations probe: after one commit met a full disk, redb refused every later
/// write ("previous I/O error") until the server was restarted, space freed or not.
#[test]
fn writes_work_again_once_the_disk_has_room() {
    let bytes = Arc::new(redb::backends::InMemoryBackend::new());
    let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (b, f) = (bytes.clone(), full.clone());
    let opener =
        Box::new(move || redb::Builder::new().create_with_backend(Flaky { bytes: b.clone(), full: f.clone() }));
    let db = Db::on_engine(Engine::Redb(on_redb::Handle::with_opener(opener).unwrap())).unwrap();
    db.write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
    put_children(&db, &[((1, "a"), 1)]);
    full.store(true, std::sync::atomic::Ordering::Relaxed);
    let failed = db.write_sync(|ctx| {
        ctx.txn.open_table(CHILDREN)?.insert((1, "b"), 2)?;
        Ok(())
    });
    assert!(matches!(failed, Err(Error::StorageFull(_))), "{failed:?}");
    full.store(false, std::sync::atomic::Ordering::Relaxed);
    // Through the writer thread, which serves the server's changes, then directly.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(db.write((), |ctx| {
        ctx.txn.open_table(CHILDREN)?.insert((1, "c"), 3)?;
        Ok(())
    }))
    .unwrap_or_else(|e| panic!("a write after the disk has room: {e:?}"));
    db.write_sync(|ctx| {
        ctx.txn.open_table(CHILDREN)?.insert((1, "d"), 4)?;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("and another: {e:?}"));
    db.read_sync(|t| {
        let c = t.open_table(CHILDREN)?;
        assert_eq!(keys(c.iter()?), [(1, "a".to_owned()), (1, "c".to_owned()), (1, "d".to_owned())]);
        Ok(())
    })
    .unwrap();
}
