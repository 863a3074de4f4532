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
//! - PostgreSQL ([`pg`], issue 12) holds it as one table of (table id, key bytes, value
//!   bytes) rows: reads in REPEATABLE READ READ ONLY (one snapshot), writes in SERIALIZABLE
//!   (the rules were written for redb's single writer, i.e. serial execution). Its keys use
//!   an order-preserving encoding ([`OrderedKey`]: redb orders by `Key::compare`, not by the
//!   bytes it stores), so a range is one keyset scan. A write that fails to serialize is
//!   simply run again: `Db::write` already may run a change more than once (group commit
//!   replays a batch when one change refuses), so rules are written for it.
//!
//! A richer interface (SQL joins, secondary indexes kept by the engine) was the other
//! choice; it would put part of each rule into each engine. Where one query beats many
//! lookups on a networked engine, the seam grows a typed operation whose redb version is
//! the lookups, rather than letting rules speak to the engine: resolving a path
//! (`meta::txn::walk`, and with its item `meta::txn::resolve`) and a page of a folder's
//! children with their items (`meta::txn::children_from`): one query each on PostgreSQL.
//!
//! No code outside this folder names an engine: the rest of `meta/` and every rule get
//! [`ReadTxn`], [`WriteTxn`], [`Table`] and the table handles, and the engines' errors
//! become [`Error`] here. Each handle is an enum over the two engines; the redb arm is the
//! redb call itself (`#[inline]`, values as redb's borrowed guards), so choosing the engine
//! costs the single-node path one predictable branch.

#[path = "redb.rs"]
mod on_redb;
mod ordered;
pub(crate) mod pg;
#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use redb::{Key, ReadableTable as _, ReadableTableMetadata as _, TableDefinition, Value};

use crate::error::{Error, Result};
pub use ordered::OrderedKey;

/// A typed table: its name (its id in PostgreSQL, see `pg::TABLE_IDS`), and the types of
/// its keys and values.
pub struct Table<K: Key + 'static, V: Value + 'static> {
    def: TableDefinition<'static, K, V>,
    id: i16,
    name: &'static str,
}

impl<K: Key + 'static, V: Value + 'static> Table<K, V> {
    pub const fn new(name: &'static str) -> Self {
        Table { def: TableDefinition::new(name), id: pg::table_id(name), name }
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<K: Key + 'static, V: Value + 'static> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Key + 'static, V: Value + 'static> Copy for Table<K, V> {}

/// The engine: where transactions begin.
pub(in crate::meta) enum Engine {
    Redb(on_redb::Handle),
    Pg(pg::Engine),
}

impl Engine {
    /// Opens (or creates) the redb store at `path`, with `cache_bytes` of page cache.
    pub(in crate::meta) fn open(path: &Path, cache_bytes: usize) -> Result<Self> {
        on_redb::Handle::open(path, cache_bytes).map(Engine::Redb)
    }

    /// Connects to PostgreSQL at `url` with up to `pool_size` connections, creating or
    /// migrating its schema.
    pub(in crate::meta) fn open_postgres(url: &str, pool_size: usize) -> Result<Self> {
        pg::Engine::open(url, pool_size).map(Engine::Pg)
    }

    pub(in crate::meta) fn is_postgres(&self) -> bool {
        matches!(self, Engine::Pg(_))
    }

    /// A number that moves whenever a row a credential check reads changes, on any node,
    /// while the engine can vouch for it (PostgreSQL: `pg::watch`); `None` when it cannot.
    /// On redb, `None`: a check there is a local read, cheap enough to make every time.
    pub(in crate::meta) fn auth_generation(&self) -> Option<u64> {
        match self {
            Engine::Redb(_) => None,
            Engine::Pg(e) => e.auth_generation(),
        }
    }

    #[inline]
    pub(in crate::meta) fn begin_read(&self) -> Result<ReadTxn> {
        Ok(ReadTxn(match self {
            Engine::Redb(db) => ReadInner::Redb(db.begin_read()?),
            Engine::Pg(e) => ReadInner::Pg(Arc::new(e.begin(false)?)),
        }))
    }

    /// On redb only one write is open at a time (the writer thread, or an offline admin
    /// command); on PostgreSQL any number, each serializable.
    #[inline]
    pub(in crate::meta) fn begin_write(&self) -> Result<WriteTxn> {
        Ok(WriteTxn(match self {
            Engine::Redb(db) => WriteInner::Redb(db.begin_write()?),
            Engine::Pg(e) => WriteInner::Pg(e.begin(true)?),
        }))
    }
}

/// One consistent snapshot of every table.
pub struct ReadTxn(ReadInner);

enum ReadInner {
    Redb(redb::ReadTransaction),
    Pg(Arc<pg::Txn>),
}

/// One change to any number of tables: all of it commits, or none (dropped uncommitted,
/// it rolls back).
pub struct WriteTxn(WriteInner);

// Not boxed: one exists per write batch, so its size costs nothing, while a box would cost
// every redb write an allocation.
#[allow(clippy::large_enum_variant)]
enum WriteInner {
    Redb(redb::WriteTransaction),
    Pg(pg::Txn),
}

impl ReadTxn {
    #[inline]
    pub fn open_table<K: OrderedKey, V: Value + 'static>(&self, t: Table<K, V>) -> Result<ReadTable<K, V>> {
        Ok(ReadTable(match &self.0 {
            ReadInner::Redb(txn) => TableInner::Redb(txn.open_table(t.def)?),
            ReadInner::Pg(txn) => TableInner::Pg(txn.clone(), t.id, PhantomData),
        }))
    }
}

/// How a write's commit ended.
pub(in crate::meta) enum Commit {
    Done,
    /// The engine could not serialize it with a concurrent write: run the change again.
    Retry,
}

impl WriteTxn {
    /// Commits; on redb a failure is an error, on PostgreSQL it may ask to run again.
    pub(in crate::meta) fn commit(self) -> Result<Commit> {
        match self.0 {
            WriteInner::Redb(txn) => {
                txn.commit()?;
                Ok(Commit::Done)
            }
            WriteInner::Pg(txn) => Ok(match txn.commit()? {
                pg::Commit::Done => Commit::Done,
                pg::Commit::Retry => Commit::Retry,
            }),
        }
    }

    /// Whether an engine failure inside the change can be cured by running it again
    /// (whatever error the change made of it).
    pub(in crate::meta) fn must_retry(&self) -> bool {
        match &self.0 {
            WriteInner::Redb(_) => false,
            WriteInner::Pg(txn) => txn.must_retry(),
        }
    }

    /// Whether the engine failed inside the change (and so aborted it), whatever the change
    /// then made of the failure.
    pub(in crate::meta) fn engine_failed(&self) -> bool {
        match &self.0 {
            WriteInner::Redb(_) => false,
            WriteInner::Pg(txn) => txn.has_failed(),
        }
    }

    #[inline]
    pub fn open_table<K: OrderedKey, V: Value + 'static>(&self, t: Table<K, V>) -> Result<WriteTable<'_, K, V>> {
        Ok(WriteTable(match &self.0 {
            WriteInner::Redb(txn) => WriteInner2::Redb(txn.open_table(t.def)?),
            WriteInner::Pg(txn) => WriteInner2::Pg(txn, t.id, PhantomData),
        }))
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
pub struct ReadTable<K: Key + 'static, V: Value + 'static>(TableInner<K, V>);

enum TableInner<K: Key + 'static, V: Value + 'static> {
    Redb(redb::ReadOnlyTable<K, V>),
    Pg(Arc<pg::Txn>, i16, PhantomData<fn() -> (K, V)>),
}

/// A table inside a write: reads see the write's own changes.
pub struct WriteTable<'t, K: Key + 'static, V: Value + 'static>(WriteInner2<'t, K, V>);

enum WriteInner2<'t, K: Key + 'static, V: Value + 'static> {
    Redb(redb::Table<'t, K, V>),
    Pg(&'t pg::Txn, i16, PhantomData<fn() -> (K, V)>),
}

/// A stored key or value: on redb borrowed from the engine for as long as the guard lives,
/// on PostgreSQL the bytes of the row.
pub struct Got<'a, V: Value + 'static>(GotInner<'a, V>);

enum GotInner<'a, V: Value + 'static> {
    Redb(redb::AccessGuard<'a, V>),
    Owned(Vec<u8>, PhantomData<fn() -> V>),
}

impl<V: Value + 'static> Got<'_, V> {
    #[inline]
    pub fn value(&self) -> V::SelfType<'_> {
        match &self.0 {
            GotInner::Redb(g) => g.value(),
            GotInner::Owned(b, _) => V::from_bytes(b),
        }
    }

    #[inline]
    fn redb(g: redb::AccessGuard<'_, V>) -> Got<'_, V> {
        Got(GotInner::Redb(g))
    }

    #[inline]
    fn owned(b: Vec<u8>) -> Self {
        Got(GotInner::Owned(b, PhantomData))
    }
}

/// Rows in key order; `.rev()` walks them backwards.
pub struct Range<'a, K: Key + 'static, V: Value + 'static>(RangeInner<'a, K, V>);

enum RangeInner<'a, K: Key + 'static, V: Value + 'static> {
    Redb(redb::Range<'a, K, V>),
    Pg(pg::PgRange<'a>, PhantomData<fn() -> (K, V)>),
}

type Row<'a, K, V> = (Got<'a, K>, Got<'a, V>);

fn pg_row<'a, K: OrderedKey, V: Value + 'static>(r: Result<(Vec<u8>, Vec<u8>)>) -> Result<Row<'a, K, V>> {
    let (k, v) = r?;
    Ok((Got::owned(K::redb_form(k)?), Got::owned(v)))
}

impl<'a, K: OrderedKey, V: Value + 'static> Iterator for Range<'a, K, V> {
    type Item = Result<Row<'a, K, V>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            RangeInner::Redb(r) => r.next().map(|r| r.map(|(k, v)| (Got::redb(k), Got::redb(v))).map_err(Error::from)),
            RangeInner::Pg(r, _) => r.next_row().map(pg_row),
        }
    }
}

impl<K: OrderedKey, V: Value + 'static> DoubleEndedIterator for Range<'_, K, V> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            RangeInner::Redb(r) => {
                r.next_back().map(|r| r.map(|(k, v)| (Got::redb(k), Got::redb(v))).map_err(Error::from))
            }
            RangeInner::Pg(r, _) => r.next_row_back().map(pg_row),
        }
    }
}

/// A child's key and id, with its item's row when the engine brought it.
pub(crate) type ChildRow<'a> = (Got<'a, (u64, &'static str)>, u64, Option<Got<'a, &'static [u8]>>);

/// A table on PostgreSQL, for the seam's typed operations (see `meta::txn::walk`).
pub struct PgTable<'a> {
    txn: &'a pg::Txn,
    tbl: i16,
}

impl<'a> PgTable<'a> {
    /// `meta::txn::walk` in one round trip: the ids reached from `from` down `names`.
    pub(crate) fn walk(&self, from: u64, names: &[String]) -> Result<Vec<u64>> {
        self.txn.walk(self.tbl, from, names)
    }

    /// `meta::txn::resolve` in one round trip: the row in `items` of what `names` leads to
    /// from `from` (`from` itself for no names), if they all exist.
    pub(crate) fn resolve(&self, items: &PgTable<'_>, from: u64, names: &[String]) -> Result<Option<Vec<u8>>> {
        self.txn.resolve(self.tbl, items.tbl, from, names)
    }

    /// `meta::txn::children_from` a page per round trip: the rows of this children table
    /// from `(folder, from)` to the end of `folder`, each with the row of `items` it names
    /// (`None` for a dangling child).
    pub(crate) fn children_with_items(
        &self,
        items: &PgTable<'_>,
        folder: u64,
        from: &str,
    ) -> impl Iterator<Item = Result<ChildRow<'a>>> + use<'a> {
        let lo = <(u64, &str)>::encode(&(folder, from));
        let hi = (folder + 1).to_be_bytes().to_vec();
        pg::PgChildren::new(self.txn, self.tbl, items.tbl, lo, hi).map(|row| {
            let (k, v, item) = row?;
            let id =
                u64::from_le_bytes(v.as_slice().try_into().map_err(|_| Error::corrupt("a child id is not 8 bytes"))?);
            Ok((Got::owned(<(u64, &str)>::redb_form(k)?), id, item.map(Got::owned)))
        })
    }
}

/// Reading a table, the same inside a read or a write, so a helper serves both.
pub trait Readable<K: OrderedKey, V: Value + 'static> {
    fn get<'a>(&self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Result<Option<Got<'_, V>>>;
    /// Rows with keys in `range` (`a..b`, `a..=b`, `a..`, `..`, or a pair of `Bound`s), in key
    /// order; `.rev()` on the result walks from the last.
    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
    where
        KR: std::borrow::Borrow<K::SelfType<'a>> + 'a;
    /// Every row, in key order.
    fn iter(&self) -> Result<Range<'_, K, V>>;
    /// How many rows.
    fn len(&self) -> Result<u64>;
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// The table on PostgreSQL, where a typed operation has a one-query form.
    fn on_postgres(&self) -> Option<PgTable<'_>>;
    /// `key`'s row, to be fetched together with others by [`fetch_ahead`]; `None` on redb,
    /// where a get is a lookup in memory or on a local disk.
    fn ahead<'a>(&self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Option<Ahead<'_>>;
    /// The first page of `range` forwards (the rows a `range(..).next()` reads), to be
    /// fetched together with others by [`fetch_ahead`]; `None` on redb.
    fn range_ahead<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Option<Ahead<'_>>
    where
        KR: std::borrow::Borrow<K::SelfType<'a>> + 'a;
}

/// What a rule is about to read, see [`fetch_ahead`].
pub struct Ahead<'t> {
    txn: &'t pg::Txn,
    what: Want,
}

enum Want {
    /// A row.
    Row((i16, Vec<u8>)),
    /// The first page of a range (`Readable::range_ahead`).
    FirstPage(i16, Bound<Vec<u8>>, Bound<Vec<u8>>),
    /// A folder chain and its items (`folder_chain_ahead`).
    Chain(pg::ChainAsk),
}

/// Fetches what a rule of one transaction reads one after the other, each key known before
/// the first is read, in one round trip (PostgreSQL): rows, the first page of ranges, and at
/// most one folder chain. The reads that follow are answered from the transaction's memory.
/// Nothing on redb. Only saves round trips: what is not fetched ahead is read as usual.
pub fn fetch_ahead<'t>(wants: impl IntoIterator<Item = Option<Ahead<'t>>>) -> Result<()> {
    let mut txn: Option<&pg::Txn> = None;
    let (mut keys, mut pages, mut chain) = (Vec::new(), Vec::new(), None);
    for a in wants.into_iter().flatten() {
        if txn.is_none_or(|t| std::ptr::eq(t, a.txn)) {
            txn = Some(a.txn);
            match a.what {
                Want::Row(k) => keys.push(k),
                Want::FirstPage(t, lo, hi) => pages.push((t, lo, hi)),
                Want::Chain(c) if chain.is_none() && !chain_known(a.txn, &c) => chain = Some(c),
                Want::Chain(_) => {}
            }
        }
    }
    // One row or one page alone is read as well when it is asked for.
    let Some(t) = txn.filter(|_| chain.is_some() || keys.len() + pages.len() > 1) else { return Ok(()) };
    let Some(c) = chain else { return t.fetch(keys, pages, None).map(drop) };
    let (ctbl, itbl, steps) = (c.ctbl, c.itbl, c.steps.clone());
    let reached = t.fetch(keys, pages, Some(c))?;
    // The rows the chain read, under the keys the rules will ask for: each child row found
    // (its value is the id, in redb's form), the first one missing, and every item.
    let mut rows = Vec::with_capacity(2 * reached.len() + 1);
    for (i, (id, item)) in reached.iter().enumerate() {
        rows.push(((itbl, u64::encode(id)), item.clone()));
        let Some(step) = steps.get(i) else { continue };
        let key = (ctbl, [id.to_be_bytes().as_slice(), step].concat());
        match reached.get(i + 1) {
            Some((next, _)) => rows.push((key, Some(<u64 as Value>::as_bytes(next).to_vec()))),
            None => rows.push((key, None)),
        }
    }
    t.remember_rows(rows);
    Ok(())
}

/// Sends the first pages of these ranges (`Readable::range_ahead`; other wants are ignored)
/// with the transaction's next query, whatever it is: for a rule whose next read is a typed
/// operation (`meta::txn::resolve`) and that reads the ranges after it. Nothing on redb.
pub fn fetch_with_next<'t>(wants: impl IntoIterator<Item = Option<Ahead<'t>>>) {
    for a in wants.into_iter().flatten() {
        if let Want::FirstPage(t, lo, hi) = a.what {
            a.txn.fetch_with_next(vec![(t, lo, hi)]);
        }
    }
}

/// Whether the transaction knows every row `c` would read already (a change batched after
/// another at the same place), so that nothing need be asked.
fn chain_known(t: &pg::Txn, c: &pg::ChainAsk) -> bool {
    let mut cur = c.from;
    for step in &c.steps {
        match t.known(&(c.ctbl, [cur.to_be_bytes().as_slice(), step].concat())) {
            Some(Some(v)) => match <[u8; 8]>::try_from(v.as_slice()) {
                Ok(b) => cur = u64::from_le_bytes(b),
                Err(_) => return false,
            },
            Some(None) => break,
            None => return false,
        }
    }
    t.known(&(c.itbl, u64::encode(&cur))).is_some()
}

/// The rows that following the children keys `steps` down from the folder `from` reads
/// (`children`: (parent, key) -> id; every step but the last a folder's), with the item of
/// everything reached, `from` included: for [`fetch_ahead`], one query on PostgreSQL however
/// deep; `None` on redb.
pub fn folder_chain_ahead<'t>(
    children: &'t impl Readable<(u64, &'static str), u64>,
    items: &'t impl Readable<u64, &'static [u8]>,
    from: u64,
    steps: impl IntoIterator<Item = String>,
) -> Option<Ahead<'t>> {
    let (c, i) = (children.on_postgres()?, items.on_postgres()?);
    let steps = steps.into_iter().map(String::into_bytes).collect();
    Some(Ahead { txn: c.txn, what: Want::Chain(pg::ChainAsk { ctbl: c.tbl, itbl: i.tbl, from, steps }) })
}

/// A borrowed table reads as the table does, so a helper's set of tables may hold some it
/// opened and some a change already has open (`access::s3_view::AudienceTables`).
impl<K: OrderedKey, V: Value + 'static, T: Readable<K, V>> Readable<K, V> for &T {
    fn get<'a>(&self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Result<Option<Got<'_, V>>> {
        (**self).get(key)
    }
    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
    where
        KR: std::borrow::Borrow<K::SelfType<'a>> + 'a,
    {
        (**self).range(range)
    }
    fn iter(&self) -> Result<Range<'_, K, V>> {
        (**self).iter()
    }
    fn len(&self) -> Result<u64> {
        (**self).len()
    }
    fn on_postgres(&self) -> Option<PgTable<'_>> {
        (**self).on_postgres()
    }
    fn ahead<'a>(&self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Option<Ahead<'_>> {
        (**self).ahead(key)
    }
    fn range_ahead<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Option<Ahead<'_>>
    where
        KR: std::borrow::Borrow<K::SelfType<'a>> + 'a,
    {
        (**self).range_ahead(range)
    }
}

fn encode_bound<'a, K: OrderedKey, KR: std::borrow::Borrow<K::SelfType<'a>>>(b: Bound<&KR>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(K::encode(k.borrow())),
        Bound::Excluded(k) => Bound::Excluded(K::encode(k.borrow())),
        Bound::Unbounded => Bound::Unbounded,
    }
}

macro_rules! readable {
    ($($ty:ident $(<$lt:lifetime>)? : $inner:ident),*) => {$(
        impl<$($lt,)? K: OrderedKey, V: Value + 'static> Readable<K, V> for $ty<$($lt,)? K, V> {
            #[inline]
            fn get<'a>(&self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Result<Option<Got<'_, V>>> {
                match &self.0 {
                    $inner::Redb(t) => Ok(t.get(key)?.map(Got::redb)),
                    $inner::Pg(txn, tbl, _) => Ok(txn.get(*tbl, K::encode(key.borrow()))?.map(Got::owned)),
                }
            }
            #[inline]
            fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
            where
                KR: std::borrow::Borrow<K::SelfType<'a>> + 'a,
            {
                Ok(Range(match &self.0 {
                    $inner::Redb(t) => RangeInner::Redb(t.range(range)?),
                    $inner::Pg(txn, tbl, _) => {
                        let lo = encode_bound::<K, KR>(range.start_bound());
                        let hi = encode_bound::<K, KR>(range.end_bound());
                        RangeInner::Pg(pg::PgRange::new(txn, *tbl, lo, hi), PhantomData)
                    }
                }))
            }
            #[inline]
            fn iter(&self) -> Result<Range<'_, K, V>> {
                Ok(Range(match &self.0 {
                    $inner::Redb(t) => RangeInner::Redb(t.iter()?),
                    $inner::Pg(txn, tbl, _) => {
                        RangeInner::Pg(pg::PgRange::new(txn, *tbl, Bound::Unbounded, Bound::Unbounded), PhantomData)
                    }
                }))
            }
            #[inline]
            fn len(&self) -> Result<u64> {
                match &self.0 {
                    $inner::Redb(t) => Ok(t.len()?),
                    $inner::Pg(txn, tbl, _) => txn.count(*tbl),
                }
            }
            #[inline]
            fn on_postgres(&self) -> Option<PgTable<'_>> {
                match &self.0 {
                    $inner::Redb(_) => None,
                    $inner::Pg(txn, tbl, _) => Some(PgTable { txn, tbl: *tbl }),
                }
            }
            #[inline]
            fn ahead<'a>(&self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Option<Ahead<'_>> {
                match &self.0 {
                    $inner::Redb(_) => None,
                    $inner::Pg(txn, tbl, _) => Some(Ahead { txn, what: Want::Row((*tbl, K::encode(key.borrow()))) }),
                }
            }
            #[inline]
            fn range_ahead<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Option<Ahead<'_>>
            where
                KR: std::borrow::Borrow<K::SelfType<'a>> + 'a,
            {
                match &self.0 {
                    $inner::Redb(_) => None,
                    $inner::Pg(txn, tbl, _) => {
                        let lo = encode_bound::<K, KR>(range.start_bound());
                        let hi = encode_bound::<K, KR>(range.end_bound());
                        Some(Ahead { txn, what: Want::FirstPage(*tbl, lo, hi) })
                    }
                }
            }
        }
    )*};
}
readable!(ReadTable: TableInner, WriteTable<'t>: WriteInner2);

impl<K: OrderedKey, V: Value + 'static> WriteTable<'_, K, V> {
    /// Sets the value of `key`, replacing any.
    #[inline]
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: impl std::borrow::Borrow<V::SelfType<'v>>,
    ) -> Result<()> {
        match &mut self.0 {
            WriteInner2::Redb(t) => {
                t.insert(key, value)?;
            }
            WriteInner2::Pg(txn, tbl, _) => {
                txn.put(*tbl, K::encode(key.borrow()), V::as_bytes(value.borrow()).as_ref().to_vec())?
            }
        }
        Ok(())
    }

    /// Removes `key`; says whether it was there.
    #[inline]
    pub fn remove<'a>(&mut self, key: impl std::borrow::Borrow<K::SelfType<'a>>) -> Result<bool> {
        match &mut self.0 {
            WriteInner2::Redb(t) => Ok(t.remove(key)?.is_some()),
            WriteInner2::Pg(txn, tbl, _) => txn.delete(*tbl, K::encode(key.borrow())),
        }
    }
}
