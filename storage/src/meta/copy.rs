//! Copying every table of one store into another, whatever the two engines (`davit admin
//! migrate`): the rows go through the seam as the bytes the rules stored (a key or value's
//! redb form, which both engines give back alike), so nothing is decoded, re-encoded or
//! re-sealed, and a table this davit does not understand yet still moves as it is.
//!
//! Memory stays bounded: the source is walked in key order in one read (one snapshot, so the
//! copy is consistent even if a background task of the source writes meanwhile), and the
//! target gets `batch` rows (at most `BATCH_BYTES`) per transaction. The same snapshot is
//! then compared row by row with the target, both walked in key order side by side.

use redb::Value;

use crate::error::Result;
use crate::meta::db::{Db, TABLES};
use crate::meta::kv::{OrderedKey, ReadTxn, Readable, Table};

/// A table as a whole-store operation sees it: any key and value types.
pub(crate) trait AnyTable: Sync {
    fn name(&self) -> &'static str;
    /// Copies every row of this table from `from` into `to`, `batch` rows (or
    /// [`BATCH_BYTES`]) per transaction; returns how many.
    fn copy(&self, from: &ReadTxn, to: &Db, batch: usize) -> Result<u64>;
    /// Walks both in key order: the rows compared, or the first difference.
    fn compare(&self, a: &ReadTxn, b: &ReadTxn) -> Result<std::result::Result<u64, String>>;
}

fn bytes<T: Value + 'static>(v: &T::SelfType<'_>) -> Vec<u8> {
    T::as_bytes(v).as_ref().to_vec()
}

impl<K: OrderedKey, V: Value + 'static> AnyTable for Table<K, V>
where
    Table<K, V>: Sync,
{
    fn name(&self) -> &'static str {
        Table::name(self)
    }

    fn copy(&self, from: &ReadTxn, to: &Db, batch: usize) -> Result<u64> {
        let src = from.open_table(*self)?;
        let mut rows = src.iter()?;
        let mut buf: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(batch);
        let mut total = 0u64;
        loop {
            buf.clear();
            let mut size = 0;
            let mut ended = true;
            for row in rows.by_ref() {
                let (k, v) = row?;
                let (k, v) = (bytes::<K>(&k.value()), bytes::<V>(&v.value()));
                size += k.len() + v.len();
                buf.push((k, v));
                if buf.len() >= batch || size >= BATCH_BYTES {
                    ended = false;
                    break;
                }
            }
            // Written even when empty, so the target has the table (redb makes it on open).
            to.write_sync(|ctx| {
                let mut t = ctx.txn.open_table(*self)?;
                for (k, v) in &buf {
                    t.insert(K::from_bytes(k), V::from_bytes(v))?;
                }
                Ok(())
            })?;
            total += buf.len() as u64;
            if ended {
                return Ok(total);
            }
        }
    }

    fn compare(&self, a: &ReadTxn, b: &ReadTxn) -> Result<std::result::Result<u64, String>> {
        let (ta, tb) = (a.open_table(*self)?, b.open_table(*self)?);
        let (mut ra, mut rb) = (ta.iter()?, tb.iter()?);
        let mut n = 0u64;
        loop {
            match (ra.next(), rb.next()) {
                (None, None) => return Ok(Ok(n)),
                (Some(x), Some(y)) => {
                    let ((xk, xv), (yk, yv)) = (x?, y?);
                    if bytes::<K>(&xk.value()) != bytes::<K>(&yk.value()) {
                        return Ok(Err(format!("table {}: row {n} has a different key", self.name())));
                    }
                    if bytes::<V>(&xv.value()) != bytes::<V>(&yv.value()) {
                        return Ok(Err(format!("table {}: row {n} has a different value", self.name())));
                    }
                }
                (Some(_), None) => return Ok(Err(format!("table {}: the target has only {n} rows", self.name()))),
                (None, Some(_)) => return Ok(Err(format!("table {}: the target has more than {n} rows", self.name()))),
            }
            n += 1;
        }
    }
}

/// What [`copy_all`] did.
#[derive(Debug, Default, Clone)]
pub struct TablesCopied {
    pub tables: usize,
    pub rows: u64,
    /// Differences found comparing the source with the target afterwards; empty when equal.
    pub problems: Vec<String>,
}

/// Rows per write transaction: large enough that a networked engine's round trips per
/// commit do not dominate, small enough that one transaction stays a few megabytes.
pub(crate) const BATCH: usize = 1000;
/// And at most about this many bytes: rows of CHUNK_DATA hold up to 64 KiB each, and a
/// thousand of them in memory at once would be most of what the server is allowed.
const BATCH_BYTES: usize = 8 << 20;

/// Copies every table of `from` into `to` (which should be empty: rows already there with
/// the same keys are replaced, others stay and then show as differences), then compares.
pub(crate) fn copy_all(from: &Db, to: &Db, batch: usize) -> Result<TablesCopied> {
    from.read_sync(|src| copy_snapshot(src, to, batch))
}

/// The same from a snapshot the caller holds (a live backup reads its chunk list from the
/// copy, so the rows and the chunks are of one moment).
pub(crate) fn copy_snapshot(src: &ReadTxn, to: &Db, batch: usize) -> Result<TablesCopied> {
    let mut out = TablesCopied { tables: TABLES.len(), ..Default::default() };
    for t in TABLES {
        let rows = t.copy(src, to, batch.max(1))?;
        tracing::debug!(table = t.name(), rows, "table copied");
        out.rows += rows;
    }
    to.read_sync(|dst| {
        for t in TABLES {
            if let Err(p) = t.compare(src, dst)? {
                out.problems.push(p);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `Table::new("…")` in db.rs is in `TABLES`, once.
    #[test]
    fn every_table_is_listed() {
        let source = include_str!("db.rs");
        let defined: BTreeSet<&str> = source
            .split("Table::new(\"")
            .skip(1)
            .map(|rest| rest.split('"').next().expect("a closing quote"))
            .collect();
        let listed: Vec<&str> = TABLES.iter().map(|t| t.name()).collect();
        let listed_set: BTreeSet<&str> = listed.iter().copied().collect();
        assert_eq!(listed.len(), listed_set.len(), "a table is listed twice");
        assert_eq!(defined, listed_set, "db.rs defines tables that TABLES does not list (or the reverse)");
        assert!(defined.len() >= 30, "the scan of db.rs found only {defined:?}");
    }

    /// A copy between two redb stores gives equal tables, across several batches, and a
    /// changed row is reported by the comparison.
    #[test]
    fn copies_in_batches_and_compares() {
        let dir = tempfile::tempdir().unwrap();
        let a = Db::open(&dir.path().join("a.redb"), 1 << 20, |_| {}).unwrap();
        let b = Db::open(&dir.path().join("b.redb"), 1 << 20, |_| {}).unwrap();
        a.write_sync(|ctx| {
            crate::meta::db::create_tables(ctx.txn)?;
            let mut t = ctx.txn.open_table(crate::meta::db::CHILDREN)?;
            for i in 0..25u64 {
                t.insert((i % 3, format!("name-{i}").as_str()), i)?;
            }
            ctx.txn.open_table(crate::meta::db::META)?.insert("k", b"v".as_slice())?;
            Ok(())
        })
        .unwrap();
        let done = copy_all(&a, &b, 4).unwrap();
        assert_eq!(done.tables, TABLES.len());
        assert_eq!(done.rows, 26);
        assert!(done.problems.is_empty(), "{:?}", done.problems);
        b.write_sync(|ctx| ctx.txn.open_table(crate::meta::db::CHILDREN)?.insert((1u64, "name-1"), 99u64)).unwrap();
        let again = a.read_sync(|x| b.read_sync(|y| crate::meta::db::CHILDREN.compare(x, y))).unwrap();
        assert!(again.is_err_and(|p| p.contains("children")), "a changed value goes unnoticed");
    }
}
