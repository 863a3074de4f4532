//! One transaction on one pooled connection.
//!
//! Round trips are what a change costs on PostgreSQL, so a write transaction saves them
//! where the answer cannot differ:
//! - it remembers every row it has read or written (a change, and the changes batched with
//!   it, read the same user, usage and counter rows again and again): a second read of a row
//!   is answered here. Its own snapshot cannot change under it, so that is what the server
//!   would answer.
//! - it holds its inserts and removals and sends them with its next query or its commit, in
//!   the same round trip. Every read that is not answered from memory flushes them first, so
//!   the server's answers always include the transaction's own changes.
//! - `BEGIN` goes out with the first query; a read is not ended when its reader is done,
//!   but by the next user of its connection, with that user's `BEGIN` (see `Engine`).

use std::collections::HashMap;
use std::future::Future;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use deadpool_postgres::Object;
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error as PgError, Statement};

use std::time::Instant;

use super::{BEGIN_READ, BEGIN_WRITE, Parked, run_on};
use crate::error::{Error, Result};

/// Rows a write remembers at most; past it, reads go to the server (a change that walks a
/// whole subtree must not hold it all in memory).
const REMEMBERED: usize = 4096;
/// Changes held at most before they are sent on their own.
const HELD: usize = 1024;

const UPSERT_MANY: &str = "INSERT INTO kv (tbl, k, v) SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) \
                           ON CONFLICT (tbl, k) DO UPDATE SET v = EXCLUDED.v";
const DELETE_MANY: &str =
    "DELETE FROM kv USING unnest($1::smallint[], $2::bytea[]) AS d(t, k) WHERE kv.tbl = d.t AND kv.k = d.k";

type Key = (i16, Vec<u8>);

/// What a write transaction knows without asking.
#[derive(Default)]
struct Memory {
    /// Rows as this transaction sees them (`None`: known absent).
    rows: HashMap<Key, Option<Vec<u8>>>,
    /// Changes not sent yet, the last per row (`None`: remove).
    held: HashMap<Key, Option<Vec<u8>>>,
}

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
    async fn send(self, c: &Object, put: &Statement, del: &Statement) -> std::result::Result<(), PgError> {
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
    handle: Handle,
    conn: Option<Arc<Object>>,
    began: AtomicBool,
    write: bool,
    /// The connection still has its last reader's transaction open: `BEGIN` ends it first.
    dirty: bool,
    parked: Parked,
    memory: Mutex<Memory>,
    /// Set by a failure that running the change again can cure (a serialization failure, a
    /// deadlock, two writers inserting one key): sticky, because a rule may have mapped the
    /// error to one of its own by the time the closure returns.
    retry: AtomicBool,
    /// Set by any failure: PostgreSQL has aborted the transaction, so it must not commit.
    failed: AtomicBool,
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
    pub(super) fn new(handle: Handle, conn: Object, write: bool, dirty: bool, parked: Parked) -> Self {
        Txn {
            handle,
            conn: Some(Arc::new(conn)),
            began: AtomicBool::new(false),
            write,
            dirty,
            parked,
            memory: Mutex::default(),
            retry: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // Only this transaction's thread takes it; a panic elsewhere cannot leave it half-set.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the query `op` makes, in one round trip with what must go before it: `BEGIN` when
    /// it is the transaction's first, and the held changes.
    fn call<T, Fut>(&self, op: impl FnOnce(Arc<Object>) -> Fut) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = std::result::Result<T, PgError>> + Send + 'static,
    {
        let conn = self.conn.clone().ok_or_else(|| Error::internal("the transaction has ended"))?;
        let begin = (!self.began.swap(true, Relaxed)).then(|| match (self.dirty, self.write) {
            (false, false) => BEGIN_READ.to_owned(),
            (false, true) => BEGIN_WRITE.to_owned(),
            (true, false) => format!("ROLLBACK; {BEGIN_READ}"),
            (true, true) => format!("ROLLBACK; {BEGIN_WRITE}"),
        });
        let flush = Flush::of(std::mem::take(&mut self.memory().held));
        let fut = op(conn.clone());
        let r = run_on(&self.handle, async move {
            // Prepared first (answered from the connection's cache but the first time), so
            // that nothing below waits: all of it goes out before any answer is read, in
            // this order.
            let stmts = match &flush {
                Some(_) => Some((conn.prepare_cached(UPSERT_MANY).await?, conn.prepare_cached(DELETE_MANY).await?)),
                None => None,
            };
            let begin = async {
                match begin {
                    Some(sql) => conn.batch_execute(&sql).await,
                    None => Ok(()),
                }
            };
            let flush = async {
                match (flush, &stmts) {
                    (Some(f), Some((put, del))) => f.send(&conn, put, del).await,
                    _ => Ok(()),
                }
            };
            let (b, f, r) = tokio::join!(begin, flush, fut);
            b.and(f).and(r)
        })?;
        r.map_err(|e| self.failed(e))
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

    /// Notes what a row now is, as far as memory allows.
    fn remember(&self, m: &mut Memory, key: Key, v: Option<Vec<u8>>) {
        if m.rows.len() < REMEMBERED || m.rows.contains_key(&key) {
            m.rows.insert(key, v);
        }
    }

    pub(in crate::meta::kv) fn get(&self, tbl: i16, k: Vec<u8>) -> Result<Option<Vec<u8>>> {
        if self.write
            && let Some(v) = self.memory().rows.get(&(tbl, k.clone()))
        {
            return Ok(v.clone());
        }
        let key = k.clone();
        let v: Option<Vec<u8>> = self.call(move |c| async move {
            let st = c.prepare_cached("SELECT v FROM kv WHERE tbl = $1 AND k = $2").await?;
            Ok(c.query_opt(&st, &[&tbl, &key]).await?.map(|r| r.get(0)))
        })?;
        if self.write {
            self.remember(&mut self.memory(), (tbl, k), v.clone());
        }
        Ok(v)
    }

    pub(in crate::meta::kv) fn put(&self, tbl: i16, k: Vec<u8>, v: Vec<u8>) -> Result<()> {
        let full = {
            let mut m = self.memory();
            let key = (tbl, k);
            if m.rows.len() < REMEMBERED || m.rows.contains_key(&key) {
                m.rows.insert(key.clone(), Some(v.clone()));
            }
            m.held.insert(key, Some(v));
            m.held.len() >= HELD
        };
        if full { self.call(|_| async { Ok(()) }) } else { Ok(()) }
    }

    /// Removes a row; says whether it was there (from memory when it knows).
    pub(in crate::meta::kv) fn delete(&self, tbl: i16, k: Vec<u8>) -> Result<bool> {
        let key = (tbl, k);
        {
            let mut m = self.memory();
            if let Some(was) = m.rows.get(&key).map(Option::is_some) {
                m.rows.insert(key.clone(), None);
                m.held.insert(key, None);
                return Ok(was);
            }
        }
        let k = key.1.clone();
        let was = self.call(move |c| async move {
            let st = c.prepare_cached("DELETE FROM kv WHERE tbl = $1 AND k = $2").await?;
            Ok(c.execute(&st, &[&tbl, &k]).await? > 0)
        })?;
        let mut m = self.memory();
        self.remember(&mut m, key, None);
        Ok(was)
    }

    pub(in crate::meta::kv) fn count(&self, tbl: i16) -> Result<u64> {
        self.call(move |c| async move {
            let st = c.prepare_cached("SELECT count(*) FROM kv WHERE tbl = $1").await?;
            Ok(c.query_one(&st, &[&tbl]).await?.get::<_, i64>(0) as u64)
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
        let limit = limit as i64;
        self.call(move |c| async move {
            let st = c.prepare_cached(&sql).await?;
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tbl];
            params.extend(keys.iter().map(|k| k as &(dyn ToSql + Sync)));
            params.push(&limit);
            Ok(c.query(&st, &params).await?.into_iter().map(|r| (r.get(0), r.get(1))).collect())
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
        self.call(move |c| async move {
            let st = c.prepare_cached(&sql).await?;
            let rows = c.query(&st, &[&ctbl, &itbl, &lo, &hi, &limit]).await?;
            Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
        })
    }

    /// `meta::txn::walk` in one round trip (the schema's `davit_walk`).
    pub(crate) fn walk(&self, tbl: i16, from: u64, names: &[String]) -> Result<Vec<u64>> {
        let names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let from = from as i64;
        let ids: Vec<i64> = self.call(move |c| async move {
            let st = c.prepare_cached("SELECT davit_walk($1, $2, $3)").await?;
            c.query_one(&st, &[&tbl, &from, &names]).await?.try_get(0)
        })?;
        Ok(ids.into_iter().map(|i| i as u64).collect())
    }

    /// `meta::txn::resolve` in one round trip: `davit_walk`, then the item row of where it
    /// ended, when it found every name.
    pub(crate) fn resolve(&self, ctbl: i16, itbl: i16, from: u64, names: &[String]) -> Result<Option<Vec<u8>>> {
        let names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let from = from as i64;
        self.call(move |c| async move {
            let st = c
                .prepare_cached(
                    "SELECT (SELECT kv.v FROM kv WHERE kv.tbl = $4 AND kv.k = int8send(\
                         CASE WHEN cardinality(w.ids) = cardinality($3::bytea[]) \
                         THEN coalesce(w.ids[cardinality(w.ids)], $2) END)) \
                     FROM (SELECT davit_walk($1, $2, $3) AS ids) w",
                )
                .await?;
            c.query_one(&st, &[&ctbl, &from, &names, &itbl]).await?.try_get(0)
        })
    }

    /// Commits a write, sending its held changes in the same round trip. Nothing is sent if
    /// nothing was asked or changed.
    pub(crate) fn commit(mut self) -> Result<Commit> {
        if self.retry.load(Relaxed) {
            return Ok(Commit::Retry);
        }
        if self.failed.load(Relaxed) {
            return Err(Error::internal("PostgreSQL aborted the transaction"));
        }
        if !self.began.load(Relaxed) && self.memory().held.is_empty() {
            return Ok(Commit::Done);
        }
        let r = self.call(|c| async move { c.batch_execute("COMMIT").await });
        // Ended either way: nothing is left to roll back.
        self.conn = None;
        match r {
            Ok(()) => Ok(Commit::Done),
            Err(_) if self.must_retry() => Ok(Commit::Retry),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Txn {
    /// A read that ran leaves its connection parked, its transaction open, for the next
    /// user to end (see `Engine`). Anything else not committed is rolled back without
    /// waiting: the connection goes back to the pool only after that, so the next user
    /// finds it clean.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.began.load(Relaxed) && !self.dirty {
            return;
        }
        let conn = match Arc::try_unwrap(conn) {
            Ok(conn) => conn,
            // Every query has answered by now, so this is not expected; if it happens, the
            // connection is ended, never handed on with a transaction open.
            Err(shared) => {
                self.handle.spawn(async move { shared.batch_execute("ROLLBACK").await });
                return;
            }
        };
        if !self.write && self.began.load(Relaxed) {
            self.parked.lock().unwrap_or_else(|e| e.into_inner()).push((conn, Instant::now()));
            return;
        }
        self.handle.spawn(roll_back(conn));
    }
}

/// Ends a connection's transaction and gives it back to the pool; a connection in an
/// unknown state never goes back.
pub(super) async fn roll_back(conn: Object) {
    if conn.batch_execute("ROLLBACK").await.is_err() {
        let _ = Object::take(conn);
    }
}
