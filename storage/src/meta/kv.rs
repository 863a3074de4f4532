//! The seam below the rules: an ordered, transactional key-value store with typed tables.
//!
//! Why this shape: every rule already thinks in sorted keys (children by (parent, name),
//! grants by (grantee, share), parts by (upload, number)) and reads one consistent snapshot
//! or changes many rows at once. An ordered key-value interface (get, range scans both ways
//! with bounds, insert, remove, counters, inside one transaction) says exactly that and no
//! more, so:
//! - redb maps onto it one to one. Each call here is an `#[inline]` wrapper over the redb
//!   call of the same name, and values come back as redb's guards (borrowed bytes, never
//!   copied), so the single-node path costs what it cost before the seam.
//! - a networked engine (PostgreSQL, issue 12) holds it as one table of
//!   (table name, key bytes, value bytes) rows under REPEATABLE READ or SERIALIZABLE. Its
//!   keys need an order-preserving encoding (integers big-endian, the last string of a
//!   tuple as raw bytes: redb orders by `Key::compare`, not by the bytes it stores), and
//!   then a range is one `key >= $1 AND key < $2 ORDER BY key` scan. A write that fails to
//!   serialize is simply run again: `Db::write` already may run a change more than once
//!   (group commit replays a batch when one change refuses), so rules are written for it.
//!
//! A richer interface (SQL joins, secondary indexes kept by the engine) was the other
//! choice; it would put part of each rule into each engine. Where one query beats many
//! lookups on a networked engine, the seam grows a typed operation whose redb version is
//! the lookups, rather than letting rules speak to the engine: resolving a path
//! (`meta::txn::walk`) and a page of a folder's children with their items
//! (`meta::txn::children_from`).
//!
//! No code outside this file calls redb: the rest of `meta/` and every rule get [`ReadTxn`],
//! [`WriteTxn`], [`Table`] and the table handles, and redb's errors become [`Error`] here.

use std::path::Path;

use redb::{Key, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _, TableDefinition, Value};

use crate::error::{Error, Result};

/// A typed table: its name, and the types of its keys and values.
pub struct Table<K: Key + 'static, V: Value + 'static>(TableDefinition<'static, K, V>);

impl<K: Key + 'static, V: Value + 'static> Table<K, V> {
    pub const fn new(name: &'static str) -> Self {
        Table(TableDefinition::new(name))
    }
}

impl<K: Key + 'static, V: Value + 'static> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Key + 'static, V: Value + 'static> Copy for Table<K, V> {}

/// The engine: where transactions begin.
pub(in crate::meta) struct Engine(redb::Database);

impl Engine {
    /// Opens (or creates) the store at `path`, with `cache_bytes` of page cache.
    pub(in crate::meta) fn open(path: &Path, cache_bytes: usize) -> Result<Self> {
        let db = redb::Database::builder().set_cache_size(cache_bytes).create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Incompatible(format!(
                "the database {} is open in another process: stop the running server first",
                path.display()
            )),
            e => Error::Incompatible(format!("cannot open the database {}: {e}", path.display())),
        })?;
        Ok(Engine(db))
    }

    #[inline]
    pub(in crate::meta) fn begin_read(&self) -> Result<ReadTxn> {
        Ok(ReadTxn(self.0.begin_read()?))
    }

    /// Only one write is open at a time (the writer thread, or an offline admin command).
    #[inline]
    pub(in crate::meta) fn begin_write(&self) -> Result<WriteTxn> {
        Ok(WriteTxn(self.0.begin_write()?))
    }
}

/// One consistent snapshot of every table.
pub struct ReadTxn(redb::ReadTransaction);

/// One change to any number of tables: all of it commits, or none (dropped uncommitted,
/// it rolls back).
pub struct WriteTxn(redb::WriteTransaction);

impl ReadTxn {
    #[inline]
    pub fn open_table<K: Key + 'static, V: Value + 'static>(&self, t: Table<K, V>) -> Result<ReadTable<K, V>> {
        Ok(ReadTable(self.0.open_table(t.0)?))
    }
}

impl WriteTxn {
    pub(in crate::meta) fn commit(self) -> Result<()> {
        Ok(self.0.commit()?)
    }

    #[inline]
    pub fn open_table<K: Key + 'static, V: Value + 'static>(&self, t: Table<K, V>) -> Result<WriteTable<'_, K, V>> {
        Ok(WriteTable(self.0.open_table(t.0)?))
    }

    /// Allocates the next value of a counter kept in META (ids start at 1).
    pub fn next_id(&self, counter: &str) -> Result<u64> {
        let mut meta = self.open_table(crate::meta::db::META)?;
        let current = match meta.get(counter)? {
            Some(v) => u64::from_le_bytes(v.value().try_into().map_err(|_| Error::internal("bad counter"))?),
            None => 1,
        };
        meta.insert(counter, (current + 1).to_le_bytes().as_slice())?;
        Ok(current)
    }
}

/// A table as a read sees it.
pub struct ReadTable<K: Key + 'static, V: Value + 'static>(redb::ReadOnlyTable<K, V>);

/// A table inside a write: reads see the write's own changes.
pub struct WriteTable<'t, K: Key + 'static, V: Value + 'static>(redb::Table<'t, K, V>);

/// A stored key or value, borrowed from the engine for as long as the guard lives.
pub struct Got<'a, V: Value + 'static>(redb::AccessGuard<'a, V>);

impl<V: Value + 'static> Got<'_, V> {
    #[inline]
    pub fn value(&self) -> V::SelfType<'_> {
        self.0.value()
    }
}

/// Rows in key order; `.rev()` walks them backwards.
pub struct Range<'a, K: Key + 'static, V: Value + 'static>(redb::Range<'a, K, V>);

type Row<'a, K, V> = (Got<'a, K>, Got<'a, V>);

impl<'a, K: Key + 'static, V: Value + 'static> Iterator for Range<'a, K, V> {
    type Item = Result<Row<'a, K, V>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| r.map(|(k, v)| (Got(k), Got(v))).map_err(Error::from))
    }
}

impl<K: Key + 'static, V: Value + 'static> DoubleEndedIterator for Range<'_, K, V> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|r| r.map(|(k, v)| (Got(k), Got(v))).map_err(Error::from))
    }
}

/// Reading a table, the same inside a read or a write, so a helper serves both.
pub trait Readable<K: Key + 'static, V: Value + 'static> {
    fn get<'a>(&self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Result<Option<Got<'_, V>>>;
    /// Rows with keys in `range` (`a..b`, `a..=b`, `a..`, `..`, or a pair of `Bound`s), in key
    /// order; `.rev()` on the result walks from the last.
    fn range<'a, KR>(&self, range: impl std::ops::RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
    where
        KR: std::borrow::Borrow<K::SelfType<'a>> + 'a;
    /// Every row, in key order.
    fn iter(&self) -> Result<Range<'_, K, V>>;
    /// How many rows.
    fn len(&self) -> Result<u64>;
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

macro_rules! readable {
    ($($ty:ident $(<$lt:lifetime>)?),*) => {$(
        impl<$($lt,)? K: Key + 'static, V: Value + 'static> Readable<K, V> for $ty<$($lt,)? K, V> {
            #[inline]
            fn get<'a>(&self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Result<Option<Got<'_, V>>> {
                Ok(self.0.get(key)?.map(Got))
            }
            #[inline]
            fn range<'a, KR>(&self, range: impl std::ops::RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
            where
                KR: std::borrow::Borrow<K::SelfType<'a>> + 'a,
            {
                Ok(Range(self.0.range(range)?))
            }
            #[inline]
            fn iter(&self) -> Result<Range<'_, K, V>> {
                Ok(Range(self.0.iter()?))
            }
            #[inline]
            fn len(&self) -> Result<u64> {
                Ok(self.0.len()?)
            }
        }
    )*};
}
readable!(ReadTable, WriteTable<'t>);

impl<K: Key + 'static, V: Value + 'static> WriteTable<'_, K, V> {
    /// Sets the value of `key`, replacing any.
    #[inline]
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: impl std::borrow::Borrow<V::SelfType<'v>>,
    ) -> Result<()> {
        self.0.insert(key, value)?;
        Ok(())
    }

    /// Removes `key`; says whether it was there.
    #[inline]
    pub fn remove<'a>(&mut self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Result<bool> {
        Ok(self.0.remove(key)?.is_some())
    }
}

// redb's errors are internal failures with their cause kept (see `Error::internal_from`).
crate::error::internal_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

#[cfg(test)]
mod tests {
    //! What every engine below the seam must do the same way; a second engine runs these too.

    use super::*;
    use crate::meta::db::{CHILDREN, Db, META};

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kv.redb"), 1 << 20, |_| {}).unwrap();
        db.write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
        (dir, db)
    }

    fn put_children(db: &Db, rows: &[((u64, &'static str), u64)]) {
        let rows = rows.to_vec();
        db.write_sync(move |ctx| {
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

    #[test]
    fn ranges_are_in_key_order_both_ways_and_keep_their_bounds() {
        let (_dir, db) = db();
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
            assert_eq!(keys(c.range((3, "")..)?), [(3, String::new())], "an open end");
            assert_eq!(c.len()?, 5);
            assert_eq!(c.get((2, "a/"))?.map(|v| v.value()), Some(4));
            assert!(c.get((2, "c"))?.is_none());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_write_sees_its_own_changes_and_a_refused_write_leaves_nothing() {
        let (_dir, db) = db();
        put_children(&db, &[((1, "a"), 1)]);
        let refused = db.write_sync(|ctx| {
            let mut t = ctx.txn.open_table(CHILDREN)?;
            assert!(t.remove((1, "a"))?, "removing a row that is there");
            assert!(!t.remove((1, "a"))?, "and again: it is gone");
            t.insert((1, "b"), 2)?;
            assert_eq!(t.get((1, "b"))?.map(|v| v.value()), Some(2));
            Err::<(), _>(Error::Conflict("refused".into()))
        });
        assert!(refused.is_err());
        db.read_sync(|t| {
            let c = t.open_table(CHILDREN)?;
            assert_eq!(keys(c.iter()?), [(1, "a".to_owned())], "the refused write left nothing");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn counters_count_from_one_and_only_commit_with_their_write() {
        let (_dir, db) = db();
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
}
