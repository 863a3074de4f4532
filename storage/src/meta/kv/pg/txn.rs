//! One transaction on one pooled connection.
//!
//! Round trips are what a change costs on PostgreSQL, so a write transaction saves them
//! where the answer cannot differ:
//! - it remembers every row it has read or written (a change, and the changes batched with
//!   it, read the same user, usage and counter rows again and again): a second read of a row
//!   is answered here. Its own snapshot cannot change under it, so that is what the server
//!   would answer.
//! - rows, first pages of ranges and folder chains a rule is about to read, each known
//!   before the first is read, come in one round trip ([`Txn::fetch`]): the reads that follow
//!   are answered from memory. A first page is forgotten when the transaction writes to its
//!   table, so a scan never misses the transaction's own changes.
//! - it holds its inserts and removals and sends them with its next query or its commit, in
//!   the same round trip. Every read that is not answered from memory flushes them first, so
//!   the server's answers always include the transaction's own changes.
//! - `BEGIN` goes out with the first query; a read is not ended when its reader is done,
//!   but by the next user of its connection, with that user's `BEGIN` (see `Engine`).
//! - a connection found lost at the first query (PostgreSQL restarted since it was last
//!   used) is replaced and the query sent again: nothing of the transaction had reached the
//!   server.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Error as PgError, Statement};

use super::conn::{Conn, Pool, Pooled};
use super::watch::{self, Watch};
use super::{BEGIN_READ, BEGIN_WRITE, FIRST_PAGE};
use crate::error::{Error, Result};

/// What a query makes of a connection: a future borrowing it (boxed, so that one closure
/// can make it again on another connection).
type Op<'c, T> = Pin<Box<dyn Future<Output = std::result::Result<T, PgError>> + Send + 'c>>;

/// Connections tried for a transaction's first query before the failure is told.
const FIRST_TRIES: usize = 3;

/// Rows a write remembers at most; past it, reads go to the server (a change that walks a
/// whole subtree must not hold it all in memory).
const REMEMBERED: usize = 4096;
/// Changes held at most before they are sent on their own.
const HELD: usize = 1024;

const UPSERT_MANY: &str = "INSERT INTO kv (tbl, k, v) SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) \
                           ON CONFLICT (tbl, k) DO UPDATE SET v = EXCLUDED.v";
const DELETE_MANY: &str =
    "DELETE FROM kv USING unnest($1::smallint[], $2::bytea[]) AS d(t, k) WHERE kv.tbl = d.t AND kv.k = d.k";

pub(crate) type Key = (i16, Vec<u8>);
/// A range of one table (its bounds as `page` takes them), whose first page was fetched.
pub(crate) type PageKey = (i16, Bound<Vec<u8>>, Bound<Vec<u8>>);

/// First pages a transaction remembers at most (a few per change: the locks, the owner's
/// versioning).
const PAGES: usize = 64;

/// What a write transaction knows without asking.
#[derive(Default)]
struct Memory {
    /// Rows as this transaction sees them (`None`: known absent).
    rows: HashMap<Key, Option<Vec<u8>>>,
    /// Changes not sent yet, the last per row (`None`: remove).
    held: HashMap<Key, Option<Vec<u8>>>,
    /// The first `FIRST_PAGE` rows of a range, fetched ahead ([`Txn::fetch`]); dropped when
    /// the transaction writes to the table.
    pages: HashMap<PageKey, Rows>,
    /// First pages to fetch with the next query, whatever it is ([`Txn::fetch_with_next`]).
    queued: Vec<PageKey>,
}

impl Memory {
    /// The transaction changed `tbl`: a first page fetched before may be out of date, and
    /// one queued would be fetched with the statement that sends a change it may not hold
    /// yet (a `delete` of a row not in memory goes out as its own statement, after the page).
    fn wrote(&mut self, tbl: i16) {
        if !self.pages.is_empty() {
            self.pages.retain(|(t, _, _), _| *t != tbl);
        }
        if !self.queued.is_empty() {
            self.queued.retain(|(t, _, _)| *t != tbl);
        }
    }
}

/// A folder chain to fetch ([`Txn::fetch`]): from the item `from`, down the children rows
/// whose keys are the parent's id (big-endian) then each of `steps`, with every item reached.
pub(crate) struct ChainAsk {
    pub ctbl: i16,
    pub itbl: i16,
    pub from: u64,
    pub steps: Vec<Vec<u8>>,
}

/// The ids a chain reached, `from` first, each with its item row.
pub(crate) type ChainRows = Vec<(u64, Option<Vec<u8>>)>;

/// Held changes, as the two statements that send them.
#[derive(Default)]
struct Flush {
    put: (Vec<i16>, Vec<Vec<u8>>, Vec<Vec<u8>>),
    del: (Vec<i16>, Vec<Vec<u8>>),
}

impl Flush {
    fn of(held: HashMap<Key, Option<Vec<u8>>>) -> Option<Flush> {
        if held.is_empty() {
            return None;
        }
        let mut f = Flush::default();
        for ((t, k), v) in held {
            match v {
                Some(v) => {
                    f.put.0.push(t);
                    f.put.1.push(k);
                    f.put.2.push(v);
                }
                None => {
                    f.del.0.push(t);
                    f.del.1.push(k);
                }
            }
        }
        Some(f)
    }

    /// Sends both statements; the caller polls this before its own query so they go first.
    async fn send(&self, c: &Client, put: &Statement, del: &Statement) -> std::result::Result<(), PgError> {
        let puts = async {
            if self.put.0.is_empty() { Ok(0) } else { c.execute(put, &[&self.put.0, &self.put.1, &self.put.2]).await }
        };
        let dels =
            async { if self.del.0.is_empty() { Ok(0) } else { c.execute(del, &[&self.del.0, &self.del.1]).await } };
        let (a, b) = tokio::join!(puts, dels);
        a.and(b).map(drop)
    }
}

pub(crate) struct Txn {
    /// `None` once committed.
    conn: Mutex<Option<Pooled>>,
    /// Where a lost connection is replaced.
    pool: Pool,
    began: AtomicBool,
    write: bool,
    memory: Mutex<Memory>,
    /// Set by a failure that running the change again can cure (a serialization failure, a
    /// deadlock, two writers inserting one key): sticky, because a rule may have mapped the
    /// error to one of its own by the time the closure returns.
    retry: AtomicBool,
    /// Set by any failure: PostgreSQL has aborted the transaction, so it must not commit.
    failed: AtomicBool,
    /// It changed a row a credential check reads: its commit tells every node (`watch`).
    credentials: AtomicBool,
    watch: Arc<Watch>,
}

/// How a write's commit ended.
pub(crate) enum Commit {
    Done,
    /// It failed in a way that running it again can cure.
    Retry,
}

pub(super) type Rows = Vec<(Vec<u8>, Vec<u8>)>;
/// A child row (key, value) with its item's value, if there is one.
pub(crate) type JoinedRow = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);
pub(super) type Joined = Vec<JoinedRow>;

impl Txn {
    pub(super) fn new(conn: Pooled, write: bool, pool: Pool, watch: Arc<Watch>) -> Self {
        Txn {
            conn: Mutex::new(Some(conn)),
            pool,
            began: AtomicBool::new(false),
            write,
            memory: Mutex::default(),
            retry: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            credentials: AtomicBool::new(false),
            watch,
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // Only this transaction's thread takes it; a panic elsewhere cannot leave it half-set.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the query `op` makes, in one round trip with what must go before it: `BEGIN` when
    /// it is the transaction's first, and the held changes.
    fn call<T: Send>(&self, op: impl for<'c> Fn(&'c Conn) -> Op<'c, T> + Sync) -> Result<T> {
        self.call_once_or_again(true, op)
    }

    /// `call`; `again` says whether the first query may be sent again on a new connection
    /// when the old one is found lost (not a `COMMIT`, which may have committed).
    fn call_once_or_again<T: Send>(&self, again: bool, op: impl for<'c> Fn(&'c Conn) -> Op<'c, T> + Sync) -> Result<T> {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let first = !self.began.swap(true, Relaxed);
        let (flush, queued) = {
            let mut m = self.memory();
            (Flush::of(std::mem::take(&mut m.held)), std::mem::take(&mut m.queued))
        };
        let queued_sql: Vec<(String, Vec<Vec<u8>>)> =
            queued.iter().map(|(_, lo, hi)| page_sql(lo, hi, false)).collect();
        let mut tries = 0;
        // One per round trip (everything below goes out before an answer is read): how the
        // round trips of a request are counted (`DAVIT_LOG=…,davit_storage::meta::kv::pg=trace`).
        tracing::trace!(first, flush = flush.is_some(), "PostgreSQL round trip");
        loop {
            tries += 1;
            let c = slot.as_ref().ok_or_else(|| Error::internal("the transaction has ended"))?.conn();
            let begin = first.then(|| match (c.open_txn, self.write) {
                (false, false) => BEGIN_READ.to_owned(),
                (false, true) => BEGIN_WRITE.to_owned(),
                (true, false) => format!("ROLLBACK; {BEGIN_READ}"),
                (true, true) => format!("ROLLBACK; {BEGIN_WRITE}"),
            });
            let r = c.block_on(async {
                // Prepared first (answered from the connection's cache but the first time),
                // so that nothing below waits: all of it goes out before any answer is read,
                // in this order.
                let stmts = match &flush {
                    Some(_) => Some((c.prepare(UPSERT_MANY).await?, c.prepare(DELETE_MANY).await?)),
                    None => None,
                };
                let mut page_st = Vec::with_capacity(queued_sql.len());
                for (sql, _) in &queued_sql {
                    page_st.push(c.prepare(sql).await?);
                }
                let begin = async {
                    match &begin {
                        Some(sql) => c.client().batch_execute(sql).await,
                        None => Ok(()),
                    }
                };
                let flush = async {
                    match (&flush, &stmts) {
                        (Some(f), Some((put, del))) => f.send(c.client(), put, del).await,
                        _ => Ok(()),
                    }
                };
                let limit = FIRST_PAGE as i64;
                let pages = futures::future::try_join_all(page_st.iter().zip(&queued_sql).zip(&queued).map(
                    |((st, (_, keys)), (tbl, _, _))| async move {
                        let mut params: Vec<&(dyn ToSql + Sync)> = vec![tbl];
                        params.extend(keys.iter().map(|k| k as &(dyn ToSql + Sync)));
                        params.push(&limit);
                        let rows = c.client().query(st, &params).await?;
                        Ok::<Rows, PgError>(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
                    },
                ));
                let (b, f, p, r) = tokio::join!(begin, flush, pages, op(c));
                let p = p?;
                b.and(f).and(r).map(|r| (r, p))
            });
            match r {
                Ok((v, pages)) => {
                    if !pages.is_empty() {
                        let mut m = self.memory();
                        for (page, rows) in queued.iter().cloned().zip(pages) {
                            m.pages.insert(page, rows);
                        }
                    }
                    return Ok(v);
                }
                Err(e) if first && again && tries < FIRST_TRIES && super::is_lost(&e) => {
                    tracing::debug!(error = ?e, "PostgreSQL connection lost while idle; taking another");
                    if let Some(lost) = slot.take() {
                        lost.discard();
                    }
                    self.pool.drop_idle();
                    *slot = Some(self.pool.get().map_err(|why| {
                        tracing::warn!(error = %why, "PostgreSQL: no connection");
                        Error::Unavailable(super::UNAVAILABLE.into())
                    })?);
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
    }

    fn failed(&self, e: PgError) -> Error {
        self.failed.store(true, Relaxed);
        let again = [SqlState::T_R_SERIALIZATION_FAILURE, SqlState::T_R_DEADLOCK_DETECTED, SqlState::UNIQUE_VIOLATION];
        if e.code().is_some_and(|c| again.contains(c)) {
            self.retry.store(true, Relaxed);
        }
        super::unreachable_or_internal(e)
    }

    pub(crate) fn must_retry(&self) -> bool {
        self.retry.load(Relaxed)
    }

    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Relaxed)
    }

    fn note_credentials(&self, tbl: i16) {
        if watch::watched(tbl) {
            self.credentials.store(true, Relaxed);
        }
    }

    /// Notes what a row now is, as far as memory allows.
    fn remember(&self, m: &mut Memory, key: Key, v: Option<Vec<u8>>) {
        if m.rows.len() < REMEMBERED || m.rows.contains_key(&key) {
            m.rows.insert(key, v);
        }
    }

    /// What this transaction knows of a row without asking: `Some(None)` known absent.
    pub(in crate::meta::kv) fn known(&self, key: &Key) -> Option<Option<Vec<u8>>> {
        self.memory().rows.get(key).cloned()
    }

    /// Notes rows the caller derived from a fetch's answer (the children rows a chain read).
    pub(in crate::meta::kv) fn remember_rows(&self, rows: impl IntoIterator<Item = (Key, Option<Vec<u8>>)>) {
        let mut m = self.memory();
        for (k, v) in rows {
            self.remember(&mut m, k, v);
        }
    }

    /// Sends the first page of these ranges with the next query, whatever it is (a typed
    /// operation, whose answer the rule needs first): read later, they are answered from
    /// memory. A write to the table before then drops its page as usual.
    pub(in crate::meta::kv) fn fetch_with_next(&self, pages: Vec<PageKey>) {
        let mut m = self.memory();
        let room = PAGES.saturating_sub(m.pages.len() + m.queued.len());
        let new: Vec<PageKey> =
            pages.into_iter().filter(|p| !m.pages.contains_key(p) && !m.queued.contains(p)).take(room).collect();
        m.queued.extend(new);
    }

    /// The first page of a range when it was fetched ahead and the table not written since.
    pub(in crate::meta::kv) fn first_page(&self, page: &PageKey) -> Option<Rows> {
        let m = self.memory();
        if m.pages.is_empty() { None } else { m.pages.get(page).cloned() }
    }

    pub(in crate::meta::kv) fn get(&self, tbl: i16, k: Vec<u8>) -> Result<Option<Vec<u8>>> {
        // A read remembers only what was fetched ahead (`fetch`); its snapshot, too,
        // cannot change under it.
        if let Some(v) = self.memory().rows.get(&(tbl, k.clone())) {
            return Ok(v.clone());
        }
        let key = k.clone();
        let v: Option<Vec<u8>> = self.call(|c| {
            let key = key.clone();
            Box::pin(async move {
                let st = c.prepare("SELECT v FROM kv WHERE tbl = $1 AND k = $2").await?;
                Ok(c.client().query_opt(&st, &[&tbl, &key]).await?.map(|r| r.get(0)))
            })
        })?;
        if self.write {
            self.remember(&mut self.memory(), (tbl, k), v.clone());
        }
        Ok(v)
    }

    /// Fetches in one round trip, and remembers, what a rule will read one after the other,
    /// each known before the first is read: rows (absent ones too), the first page of ranges
    /// and a folder chain (whose rows the caller notes, `remember_rows`, as it knows their
    /// keys). The reads that follow are answered from memory. What is known already is not
    /// asked again.
    pub(in crate::meta::kv) fn fetch(
        &self,
        keys: Vec<Key>,
        pages: Vec<PageKey>,
        chain: Option<ChainAsk>,
    ) -> Result<ChainRows> {
        let (keys, pages): (Vec<Key>, Vec<PageKey>) = {
            let m = self.memory();
            let keys = keys.into_iter().filter(|k| !m.rows.contains_key(k)).collect();
            let room = PAGES.saturating_sub(m.pages.len());
            (keys, pages.into_iter().filter(|p| !m.pages.contains_key(p)).take(room).collect())
        };
        if keys.is_empty() && pages.is_empty() && chain.is_none() {
            return Ok(Vec::new());
        }
        let (tbls, ks): (Vec<i16>, Vec<Vec<u8>>) = keys.into_iter().unzip();
        let page_sql: Vec<(String, Vec<Vec<u8>>)> = pages.iter().map(|(_, lo, hi)| page_sql(lo, hi, false)).collect();
        let page_tbls: Vec<i16> = pages.iter().map(|p| p.0).collect();
        let chain_args = chain.as_ref().map(|c| (c.ctbl, c.itbl, c.from as i64, c.steps.clone()));
        type Answer = (Vec<(i16, Vec<u8>, Option<Vec<u8>>)>, Vec<Rows>, Vec<(i64, i64, Option<Vec<u8>>)>);
        let (rows, page_rows, chain_rows): Answer = self.call(|c| {
            let (tbls, ks, page_sql, page_tbls, chain_args) =
                (tbls.clone(), ks.clone(), page_sql.clone(), page_tbls.clone(), chain_args.clone());
            Box::pin(async move {
                // Prepared first (from the connection's cache but the first time), so that the
                // queries below all go out before any answer is read.
                let get_st = if tbls.is_empty() { None } else { Some(c.prepare(GET_MANY).await?) };
                let mut page_st = Vec::with_capacity(page_sql.len());
                for (sql, _) in &page_sql {
                    page_st.push(c.prepare(sql).await?);
                }
                let chain_st = if chain_args.is_some() { Some(c.prepare(CHAIN).await?) } else { None };
                let limit = FIRST_PAGE as i64;
                let gets = async {
                    match &get_st {
                        Some(st) => Ok(c
                            .client()
                            .query(st, &[&tbls, &ks])
                            .await?
                            .into_iter()
                            .map(|r| (r.get(0), r.get(1), r.get(2)))
                            .collect()),
                        None => Ok(Vec::new()),
                    }
                };
                let firsts = futures::future::try_join_all(page_st.iter().zip(&page_sql).zip(&page_tbls).map(
                    |((st, (_, keys)), tbl)| async move {
                        let mut params: Vec<&(dyn ToSql + Sync)> = vec![tbl];
                        params.extend(keys.iter().map(|k| k as &(dyn ToSql + Sync)));
                        params.push(&limit);
                        let rows = c.client().query(st, &params).await?;
                        Ok::<Rows, PgError>(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
                    },
                ));
                let walk = async {
                    match (&chain_st, &chain_args) {
                        (Some(st), Some((ct, it, from, steps))) => Ok(c
                            .client()
                            .query(st, &[ct as &(dyn ToSql + Sync), it, from, steps])
                            .await?
                            .into_iter()
                            .map(|r| (r.get(0), r.get(1), r.get(2)))
                            .collect()),
                        _ => Ok(Vec::new()),
                    }
                };
                let (g, p, w) = tokio::join!(gets, firsts, walk);
                Ok((g?, p?, w?))
            })
        })?;
        let mut m = self.memory();
        for (t, k, v) in rows {
            self.remember(&mut m, (t, k), v);
        }
        for (page, rows) in pages.into_iter().zip(page_rows) {
            m.pages.insert(page, rows);
        }
        let mut chain_rows = chain_rows;
        chain_rows.sort_by_key(|r| r.0);
        Ok(chain_rows.into_iter().map(|(_, id, v)| (id as u64, v)).collect())
    }

    pub(in crate::meta::kv) fn put(&self, tbl: i16, k: Vec<u8>, v: Vec<u8>) -> Result<()> {
        self.note_credentials(tbl);
        let full = {
            let mut m = self.memory();
            let key = (tbl, k);
            if m.rows.len() < REMEMBERED || m.rows.contains_key(&key) {
                m.rows.insert(key.clone(), Some(v.clone()));
            }
            m.held.insert(key, Some(v));
            m.wrote(tbl);
            m.held.len() >= HELD
        };
        if full { self.call(|_| Box::pin(async { Ok(()) })) } else { Ok(()) }
    }

    /// Removes a row; says whether it was there (from memory when it knows).
    pub(in crate::meta::kv) fn delete(&self, tbl: i16, k: Vec<u8>) -> Result<bool> {
        self.note_credentials(tbl);
        let key = (tbl, k);
        {
            let mut m = self.memory();
            m.wrote(tbl);
            if let Some(was) = m.rows.get(&key).map(Option::is_some) {
                m.rows.insert(key.clone(), None);
                m.held.insert(key, None);
                return Ok(was);
            }
        }
        let k = key.1.clone();
        let was = self.call(|c| {
            let k = k.clone();
            Box::pin(async move {
                let st = c.prepare("DELETE FROM kv WHERE tbl = $1 AND k = $2").await?;
                Ok(c.client().execute(&st, &[&tbl, &k]).await? > 0)
            })
        })?;
        let mut m = self.memory();
        self.remember(&mut m, key, None);
        Ok(was)
    }

    pub(in crate::meta::kv) fn count(&self, tbl: i16) -> Result<u64> {
        self.call(|c| {
            Box::pin(async move {
                let st = c.prepare("SELECT count(*) FROM kv WHERE tbl = $1").await?;
                Ok(c.client().query_one(&st, &[&tbl]).await?.get::<_, i64>(0) as u64)
            })
        })
    }

    /// Up to `limit` rows with keys between `lo` and `hi`, from the low end, or from the high
    /// end when `rev`.
    pub(in crate::meta::kv) fn page(
        &self,
        tbl: i16,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows> {
        let (sql, keys) = page_sql(lo, hi, rev);
        let limit = limit as i64;
        self.call(|c| {
            let (sql, keys) = (sql.clone(), keys.clone());
            Box::pin(async move {
                let st = c.prepare(&sql).await?;
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tbl];
                params.extend(keys.iter().map(|k| k as &(dyn ToSql + Sync)));
                params.push(&limit);
                Ok(c.client().query(&st, &params).await?.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })
    }

    /// Up to `limit` rows of the children table `ctbl` after `lo` and before `hi`, each with
    /// the row of the item it names in `itbl` (`meta::txn::children_from`).
    pub(in crate::meta::kv) fn children_page(
        &self,
        ctbl: i16,
        itbl: i16,
        lo: &Bound<Vec<u8>>,
        hi: Vec<u8>,
        limit: usize,
    ) -> Result<Joined> {
        let (op, lo) = match lo {
            Bound::Included(k) => (">=", k.clone()),
            Bound::Excluded(k) => (">", k.clone()),
            Bound::Unbounded => (">=", Vec::new()),
        };
        let sql = format!(
            "SELECT c.k, c.v, i.v FROM kv c LEFT JOIN kv i ON i.tbl = $2 AND i.k = int8send(davit_u64(c.v)) \
             WHERE c.tbl = $1 AND c.k {op} $3 AND c.k < $4 ORDER BY c.k LIMIT $5"
        );
        let limit = limit as i64;
        self.call(|c| {
            let (sql, lo, hi) = (sql.clone(), lo.clone(), hi.clone());
            Box::pin(async move {
                let st = c.prepare(&sql).await?;
                let rows = c.client().query(&st, &[&ctbl, &itbl, &lo, &hi, &limit]).await?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
            })
        })
    }

    /// `meta::txn::walk` in one round trip (the schema's `davit_walk`).
    pub(crate) fn walk(&self, tbl: i16, from: u64, names: &[String]) -> Result<Vec<u64>> {
        let names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let from = from as i64;
        let ids: Vec<i64> = self.call(|c| {
            let names = names.clone();
            Box::pin(async move {
                let st = c.prepare("SELECT davit_walk($1, $2, $3)").await?;
                c.client().query_one(&st, &[&tbl, &from, &names]).await?.try_get(0)
            })
        })?;
        Ok(ids.into_iter().map(|i| i as u64).collect())
    }

    /// `meta::txn::resolve` in one round trip: `davit_walk`, then the item row of where it
    /// ended, when it found every name.
    pub(crate) fn resolve(&self, ctbl: i16, itbl: i16, from: u64, names: &[String]) -> Result<Option<Vec<u8>>> {
        let names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let from = from as i64;
        self.call(|c| {
            let names = names.clone();
            Box::pin(async move {
                let st = c
                    .prepare(
                        "SELECT (SELECT kv.v FROM kv WHERE kv.tbl = $4 AND kv.k = int8send(\
                             CASE WHEN cardinality(w.ids) = cardinality($3::bytea[]) \
                             THEN coalesce(w.ids[cardinality(w.ids)], $2) END)) \
                         FROM (SELECT davit_walk($1, $2, $3) AS ids) w",
                    )
                    .await?;
                c.client().query_one(&st, &[&ctbl, &from, &names, &itbl]).await?.try_get(0)
            })
        })
    }

    /// Commits a write, sending its held changes in the same round trip. Nothing is sent if
    /// nothing was asked or changed.
    pub(crate) fn commit(self) -> Result<Commit> {
        if self.retry.load(Relaxed) {
            return Ok(Commit::Retry);
        }
        if self.failed.load(Relaxed) {
            return Err(Error::internal("PostgreSQL aborted the transaction"));
        }
        if !self.began.load(Relaxed) && self.memory().held.is_empty() {
            return Ok(Commit::Done);
        }
        let credentials = self.credentials.load(Relaxed);
        let sql = if credentials { watch::NOTIFY } else { "COMMIT" };
        let r = self.call_once_or_again(false, |c| Box::pin(async move { c.client().batch_execute(sql).await }));
        if credentials {
            // This node knows at once, whether or not it committed (it may have, unseen);
            // the others hear the notification.
            self.watch.changed();
        }
        // Ended either way (or the connection is lost): nothing is left to roll back.
        if let Some(mut done) = self.conn.lock().unwrap_or_else(|e| e.into_inner()).take() {
            done.conn_mut().open_txn = false;
        }
        match r {
            Ok(()) => Ok(Commit::Done),
            Err(_) if self.must_retry() => Ok(Commit::Retry),
            Err(e) => Err(e),
        }
    }
}

/// One lookup per key, as `get` makes, whatever the table's size when the statement is
/// planned: a plain join, first planned while `kv` was small (a new deployment, the first
/// writes of a run), kept a hash join over a scan of the whole table in the connection's
/// cached plan (seen: 1,610 scans of `kv` in 1,500 small PUTs). LIMIT keeps the planner from
/// flattening the lookup into a join.
const GET_MANY: &str = "SELECT d.t, d.k, x.v FROM unnest($1::smallint[], $2::bytea[]) AS d(t, k) \
                        LEFT JOIN LATERAL (SELECT kv.v FROM kv WHERE kv.tbl = d.t AND kv.k = d.k LIMIT 1) x ON true";

/// A folder chain (`ChainAsk`): the ids reached from `$3` down the children keys `$4` of
/// table `$1`, each with its row in `$2`, in order (`from` at 0). Each step is a lookup by
/// the primary key, as `GET_MANY`'s are (LATERAL … LIMIT 1), whatever the plan cached.
const CHAIN: &str = "WITH RECURSIVE w(i, id) AS ( \
                         SELECT 0, $3::bigint \
                         UNION ALL \
                         SELECT w.i + 1, davit_u64(x.v) FROM w CROSS JOIN LATERAL ( \
                             SELECT kv.v FROM kv WHERE kv.tbl = $1 AND kv.k = int8send(w.id) || ($4::bytea[])[w.i + 1] \
                             LIMIT 1) x \
                         WHERE w.i < cardinality($4::bytea[])) \
                     SELECT w.i::bigint, w.id, (SELECT kv.v FROM kv WHERE kv.tbl = $2 AND kv.k = int8send(w.id) LIMIT 1) \
                     FROM w";

/// The query of a page of a range (`Txn::page`) and the keys it binds after the table, before
/// the limit.
fn page_sql(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>, rev: bool) -> (String, Vec<Vec<u8>>) {
    let mut sql = String::from("SELECT k, v FROM kv WHERE tbl = $1");
    let mut keys = Vec::new();
    for (b, incl, excl) in [(lo, ">=", ">"), (hi, "<=", "<")] {
        let (op, k) = match b {
            Bound::Included(k) => (incl, k),
            Bound::Excluded(k) => (excl, k),
            Bound::Unbounded => continue,
        };
        keys.push(k.clone());
        sql.push_str(&format!(" AND k {op} ${}", keys.len() + 1));
    }
    sql.push_str(if rev { " ORDER BY k DESC" } else { " ORDER BY k" });
    sql.push_str(&format!(" LIMIT ${}", keys.len() + 2));
    (sql, keys)
}

impl Drop for Txn {
    /// Not committed, the transaction is left open on its connection, which goes back to
    /// the pool: the next user ends it with its own `BEGIN`, in the same round trip, or the
    /// sweep does soon (see `Engine`). For a read, that is a round trip saved on every read;
    /// a write dropped uncommitted (a refused change) is run again at once by the writer,
    /// which takes the same connection back first (the pool is a stack).
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.get_mut().unwrap_or_else(|e| e.into_inner()).take() else { return };
        if self.began.load(Relaxed) {
            conn.conn_mut().open_txn = true;
        }
    }
}
