//! The PostgreSQL engine: every table as rows of one table
//! `kv(tbl smallint, k bytea, v bytea, PRIMARY KEY (tbl, k))`.
//!
//! - `tbl` is the table's fixed id ([`TABLE_IDS`]); `k` is the key in its order-preserving
//!   form ([`super::OrderedKey`]), so `ORDER BY k` is the key order; `v` is the value in
//!   redb's byte form, so values read the same from either engine.
//! - Reads run in REPEATABLE READ READ ONLY: one snapshot for the whole closure, as a redb
//!   read transaction gives. Writes run in SERIALIZABLE: rules were written for redb's one
//!   writer, so they assume serial execution, and SERIALIZABLE is the level that keeps it;
//!   a write that fails to serialize is run again (see `Db`).
//! - The seam is synchronous (closures run on blocking threads), so each call here hands its
//!   query to this engine's own small runtime and waits for the answer on a plain channel.
//!   That works from any thread (a blocking pool thread, an admin command with no runtime)
//!   and the pool's connections live as long as the engine, not as long as a caller's
//!   runtime.
//! - Client: `tokio-postgres` (the native async client of the rust-postgres project) with
//!   `deadpool-postgres`, the pool most used with it: it keeps a per-connection cache of
//!   prepared statements (so a query is one round trip, not a prepare and an execute) and
//!   checks a connection is alive before handing it out again.
//! - No TLS: PostgreSQL is reached over loopback or a private network between the nodes and
//!   the database (README, "Running several nodes"). Adding it means a rustls connector with
//!   ring; the tree keeps aws-lc and OpenSSL out.
//! - A transaction's `BEGIN` goes out in the same round trip as its first query (the client
//!   pipelines requests on a connection), and a read's end is not waited for.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime as PoolRuntime};
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error as PgError, NoTls};

use crate::error::{Error, Result};

/// Table name -> id in the `tbl` column. Stored in every row: never renumber or reuse an id;
/// a new table takes the next number (a table missing here fails the build, see
/// [`table_id`]).
const TABLE_IDS: &[(&str, i16)] = &[
    ("meta", 1),
    ("users", 2),
    ("usernames", 3),
    ("emails", 4),
    ("items", 5),
    ("children", 6),
    ("chunks", 7),
    ("chunk_data", 8),
    ("usage", 9),
    ("access_keys", 10),
    ("uploads", 11),
    ("parts", 12),
    ("sessions", 13),
    ("refresh", 14),
    ("codes", 15),
    ("app_passwords", 16),
    ("app_password_hashes", 17),
    ("shares", 18),
    ("shares_by_item", 19),
    ("shares_by_grantee", 20),
    ("shares_by_owner", 21),
    ("links", 22),
    ("link_tokens", 23),
    ("links_by_owner", 24),
    ("links_by_item", 25),
];

/// The id of table `name`; evaluated when the table constant is, so a table without an id
/// is a compile error.
pub(super) const fn table_id(name: &str) -> i16 {
    let mut i = 0;
    while i < TABLE_IDS.len() {
        let (n, id) = TABLE_IDS[i];
        if n.len() == name.len() {
            let (a, b) = (n.as_bytes(), name.as_bytes());
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return id;
            }
        }
        i += 1;
    }
    panic!("a table without a PostgreSQL id: add it to TABLE_IDS in meta/kv/pg.rs")
}

/// The schema this davit uses. `SCHEMA_STEPS[i]` brings a database from version `i` to
/// `i + 1` (version 0: nothing there yet); each step ships with the davit that needs it.
const SCHEMA_VERSION: i32 = 1;
const SCHEMA_STEPS: &[&str] = &[r#"
CREATE TABLE davit_schema (version integer NOT NULL);
INSERT INTO davit_schema VALUES (0);
CREATE TABLE kv (
    tbl smallint NOT NULL,
    k bytea NOT NULL,
    v bytea NOT NULL,
    PRIMARY KEY (tbl, k)
);
-- A u64 value in redb's form (8 bytes, little-endian) as a bigint: ids stored as values.
CREATE FUNCTION davit_u64(v bytea) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT get_byte(v, 0)::bigint | (get_byte(v, 1)::bigint << 8) | (get_byte(v, 2)::bigint << 16)
        | (get_byte(v, 3)::bigint << 24) | (get_byte(v, 4)::bigint << 32) | (get_byte(v, 5)::bigint << 40)
        | (get_byte(v, 6)::bigint << 48) | (get_byte(v, 7)::bigint << 56)
$$;
-- Resolves a path in one round trip (see meta::txn::walk): from folder `start`, each name
-- but the last must be a folder (key: parent, name, '/'); the last may be a file (parent,
-- name) or a folder. Keys are the parent id big-endian then the sort key; values are redb's
-- u64 form (little-endian). Returns the ids reached, in order.
CREATE FUNCTION davit_walk(p_tbl smallint, p_start bigint, p_names bytea[]) RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cur bigint := p_start;
    found bigint[] := '{}';
    val bytea;
    n integer := coalesce(array_length(p_names, 1), 0);
BEGIN
    FOR i IN 1..n LOOP
        val := NULL;
        IF i = n THEN
            SELECT kv.v INTO val FROM kv WHERE kv.tbl = p_tbl AND kv.k = int8send(cur) || p_names[i];
        END IF;
        IF val IS NULL THEN
            SELECT kv.v INTO val FROM kv
            WHERE kv.tbl = p_tbl AND kv.k = int8send(cur) || p_names[i] || '\x2f'::bytea;
        END IF;
        EXIT WHEN val IS NULL;
        cur := davit_u64(val);
        found := found || cur;
    END LOOP;
    RETURN found;
END $$;
"#];

/// Any number; it only keeps two nodes from creating or migrating the schema at once.
const SCHEMA_LOCK: i64 = 0x6461_7669_7400;

/// Rows fetched per round trip of a range scan: a listing page in one trip, while a scan of
/// a whole table never holds more than this many rows. The first page is smaller, since
/// many scans stop after a row or two (is there any? the next one?).
pub(super) const PAGE: usize = 256;
const FIRST_PAGE: usize = 32;

const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";

pub(crate) struct Engine {
    /// Dropped with `shutdown_background`, which is allowed on an async worker too.
    rt: Option<tokio::runtime::Runtime>,
    handle: Handle,
    pool: Pool,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A PostgreSQL URL as it may be shown (logs, errors): without its password.
pub(crate) fn shown_url(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(cfg) => shown_cfg(&cfg),
        Err(_) => "postgres://(an invalid URL)".into(),
    }
}

fn shown_cfg(cfg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    format!("postgres://{user}{host}:{port}/{}", cfg.get_dbname().unwrap_or(""))
}

impl Engine {
    /// Connects, and creates or migrates the schema. Any failure is one line naming
    /// PostgreSQL and the URL without its password.
    pub(super) fn open(url: &str, pool_size: usize) -> Result<Self> {
        let cfg: tokio_postgres::Config = url.parse().map_err(|e| {
            Error::Incompatible(format!("the PostgreSQL URL is not valid (postgres://USER:PASSWORD@HOST:PORT/DB): {e}"))
        })?;
        let shown = shown_cfg(&cfg);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("davit-pg")
            .enable_all()
            .build()?;
        let mgr = Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(mgr)
            .max_size(pool_size.max(1))
            .runtime(PoolRuntime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Incompatible(format!("PostgreSQL at {shown}: {e}")))?;
        let engine = Engine { handle: rt.handle().clone(), rt: Some(rt), pool };
        let pool = engine.pool.clone();
        let shown2 = shown.clone();
        engine.run(async move { migrate(&pool, &shown2).await })?.map_err(|e| match e {
            Error::Incompatible(_) => e,
            e => Error::Incompatible(format!("cannot use PostgreSQL at {shown}: {e}")),
        })?;
        Ok(engine)
    }

    /// Runs `fut` on the engine's runtime and waits for it on this thread.
    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
        run_on(&self.handle, fut)
    }

    pub(super) fn begin(&self, write: bool) -> Result<Txn> {
        let pool = self.pool.clone();
        let conn = self
            .run(async move { pool.get().await })?
            .map_err(|e| Error::internal_from("PostgreSQL: no connection", e))?;
        Ok(Txn {
            handle: self.handle.clone(),
            conn: Some(Arc::new(conn)),
            began: AtomicBool::new(false),
            write,
            retry: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        })
    }
}

fn run_on<T: Send + 'static>(handle: &Handle, fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| Error::internal("the PostgreSQL engine has stopped"))
}

async fn migrate(pool: &Pool, shown: &str) -> Result<()> {
    let pg = |e: PgError| Error::Incompatible(format!("cannot use PostgreSQL at {shown}: {e}"));
    let mut conn =
        pool.get().await.map_err(|e| Error::Incompatible(format!("cannot reach PostgreSQL at {shown}: {e}")))?;
    let tx = conn.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await.map_err(pg)?;
    let exists: bool = tx.query_one("SELECT to_regclass('davit_schema') IS NOT NULL", &[]).await.map_err(pg)?.get(0);
    let found: i32 =
        if exists { tx.query_one("SELECT max(version) FROM davit_schema", &[]).await.map_err(pg)?.get(0) } else { 0 };
    if found > SCHEMA_VERSION {
        return Err(Error::Incompatible(format!(
            "the PostgreSQL database at {shown} has davit schema version {found}, made by a newer davit; this davit \
             knows versions up to {SCHEMA_VERSION}: run the newer davit"
        )));
    }
    if found < SCHEMA_VERSION {
        for step in &SCHEMA_STEPS[found.max(0) as usize..] {
            tx.batch_execute(step).await.map_err(pg)?;
        }
        tx.execute("UPDATE davit_schema SET version = $1", &[&SCHEMA_VERSION]).await.map_err(pg)?;
        tracing::info!(from = found, to = SCHEMA_VERSION, "PostgreSQL schema made ready");
    }
    tx.commit().await.map_err(pg)
}

/// One transaction on one pooled connection, begun with its first query.
pub(crate) struct Txn {
    handle: Handle,
    conn: Option<Arc<Object>>,
    began: AtomicBool,
    write: bool,
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

const UPSERT: &str = "INSERT INTO kv (tbl, k, v) VALUES ($1, $2, $3) ON CONFLICT (tbl, k) DO UPDATE SET v = EXCLUDED.v";

type Rows = Vec<(Vec<u8>, Vec<u8>)>;
/// A child row (key, value) with its item's value, if there is one.
pub(crate) type JoinedRow = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);
type Joined = Vec<JoinedRow>;

impl Txn {
    /// Runs the query `op` makes, after `BEGIN` when it is the transaction's first.
    fn call<T, Fut>(&self, op: impl FnOnce(Arc<Object>) -> Fut) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = std::result::Result<T, PgError>> + Send + 'static,
    {
        let conn = self.conn.clone().ok_or_else(|| Error::internal("the transaction has ended"))?;
        let begin = (!self.began.swap(true, Relaxed)).then_some(if self.write { BEGIN_WRITE } else { BEGIN_READ });
        let fut = op(conn.clone());
        let r = run_on(&self.handle, async move {
            match begin {
                None => fut.await,
                Some(sql) => {
                    // Both go out before either answer is read: one round trip.
                    let (b, r) = tokio::join!(conn.batch_execute(sql), fut);
                    b.and(r)
                }
            }
        })?;
        r.map_err(|e| self.failed(e))
    }

    fn failed(&self, e: PgError) -> Error {
        self.failed.store(true, Relaxed);
        let again = [SqlState::T_R_SERIALIZATION_FAILURE, SqlState::T_R_DEADLOCK_DETECTED, SqlState::UNIQUE_VIOLATION];
        if e.code().is_some_and(|c| again.contains(c)) {
            self.retry.store(true, Relaxed);
        }
        Error::internal_from("PostgreSQL", e)
    }

    pub(crate) fn must_retry(&self) -> bool {
        self.retry.load(Relaxed)
    }

    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Relaxed)
    }

    pub(super) fn get(&self, tbl: i16, k: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.call(move |c| async move {
            let st = c.prepare_cached("SELECT v FROM kv WHERE tbl = $1 AND k = $2").await?;
            Ok(c.query_opt(&st, &[&tbl, &k]).await?.map(|r| r.get(0)))
        })
    }

    pub(super) fn put(&self, tbl: i16, k: Vec<u8>, v: Vec<u8>) -> Result<()> {
        self.call(move |c| async move {
            let st = c.prepare_cached(UPSERT).await?;
            c.execute(&st, &[&tbl, &k, &v]).await.map(drop)
        })
    }

    pub(super) fn delete(&self, tbl: i16, k: Vec<u8>) -> Result<bool> {
        self.call(move |c| async move {
            let st = c.prepare_cached("DELETE FROM kv WHERE tbl = $1 AND k = $2").await?;
            Ok(c.execute(&st, &[&tbl, &k]).await? > 0)
        })
    }

    pub(super) fn count(&self, tbl: i16) -> Result<u64> {
        self.call(move |c| async move {
            let st = c.prepare_cached("SELECT count(*) FROM kv WHERE tbl = $1").await?;
            Ok(c.query_one(&st, &[&tbl]).await?.get::<_, i64>(0) as u64)
        })
    }

    /// Up to `limit` rows with keys between `lo` and `hi`, from the low end, or from the high
    /// end when `rev`.
    fn page(&self, tbl: i16, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>, rev: bool, limit: usize) -> Result<Rows> {
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
    fn children_page(&self, ctbl: i16, itbl: i16, lo: &Bound<Vec<u8>>, hi: Vec<u8>, limit: usize) -> Result<Joined> {
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

    /// Commits a write. Nothing was sent if nothing was asked.
    pub(crate) fn commit(mut self) -> Result<Commit> {
        if self.retry.load(Relaxed) {
            return Ok(Commit::Retry);
        }
        if self.failed.load(Relaxed) {
            return Err(Error::internal("PostgreSQL aborted the transaction"));
        }
        let Some(conn) = self.conn.take() else { return Err(Error::internal("the transaction has ended")) };
        if !self.began.load(Relaxed) {
            return Ok(Commit::Done);
        }
        let r = run_on(&self.handle, async move { conn.batch_execute("COMMIT").await })?;
        match r {
            Ok(()) => Ok(Commit::Done),
            Err(e) => {
                let e = self.failed(e);
                if self.must_retry() { Ok(Commit::Retry) } else { Err(e) }
            }
        }
    }
}

impl Drop for Txn {
    /// Rolls back what was not committed, without waiting: the connection goes back to the
    /// pool only after the rollback, so the next user finds it clean.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.began.load(Relaxed) {
            return;
        }
        self.handle.spawn(async move {
            if conn.batch_execute("ROLLBACK").await.is_err() {
                // A connection in an unknown state never goes back to the pool.
                if let Ok(obj) = Arc::try_unwrap(conn) {
                    let _ = Object::take(obj);
                }
            }
        });
    }
}

/// Rows of one table between two bounds, fetched a page at a time from whichever end is
/// asked for. `lo..hi` is always the part not yet fetched; rows fetched from one end and not
/// yet taken wait in `front` (ascending) or `back` (descending), and an end whose gap is
/// empty takes from the other end's waiting rows.
pub(crate) struct PgRange<'a> {
    txn: &'a Txn,
    tbl: i16,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    front: VecDeque<(Vec<u8>, Vec<u8>)>,
    back: VecDeque<(Vec<u8>, Vec<u8>)>,
    gap_empty: bool,
    page: usize,
}

impl<'a> PgRange<'a> {
    pub(super) fn new(txn: &'a Txn, tbl: i16, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Self {
        PgRange { txn, tbl, lo, hi, front: VecDeque::new(), back: VecDeque::new(), gap_empty: false, page: FIRST_PAGE }
    }

    fn fill(&mut self, rev: bool) -> Result<()> {
        let rows = self.txn.page(self.tbl, &self.lo, &self.hi, rev, self.page);
        let rows = rows.inspect_err(|_| self.gap_empty = true)?;
        if rows.len() < self.page {
            self.gap_empty = true;
        }
        self.page = PAGE;
        if let Some((k, _)) = rows.last() {
            if rev {
                self.hi = Bound::Excluded(k.clone());
            } else {
                self.lo = Bound::Excluded(k.clone());
            }
        }
        if rev {
            self.back.extend(rows)
        } else {
            self.front.extend(rows)
        }
        Ok(())
    }

    pub(super) fn next_row(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.front.is_empty()
            && !self.gap_empty
            && let Err(e) = self.fill(false)
        {
            return Some(Err(e));
        }
        self.front.pop_front().or_else(|| self.back.pop_back()).map(Ok)
    }

    pub(super) fn next_row_back(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.back.is_empty()
            && !self.gap_empty
            && let Err(e) = self.fill(true)
        {
            return Some(Err(e));
        }
        self.back.pop_front().or_else(|| self.front.pop_back()).map(Ok)
    }
}

/// A folder's children from a sort key on, each with its item, a page per round trip.
pub(crate) struct PgChildren<'a> {
    txn: &'a Txn,
    ctbl: i16,
    itbl: i16,
    lo: Bound<Vec<u8>>,
    hi: Vec<u8>,
    rows: VecDeque<JoinedRow>,
    done: bool,
    page: usize,
}

impl<'a> PgChildren<'a> {
    pub(super) fn new(txn: &'a Txn, ctbl: i16, itbl: i16, lo: Vec<u8>, hi: Vec<u8>) -> Self {
        PgChildren {
            txn,
            ctbl,
            itbl,
            lo: Bound::Included(lo),
            hi,
            rows: VecDeque::new(),
            done: false,
            page: FIRST_PAGE,
        }
    }
}

impl Iterator for PgChildren<'_> {
    type Item = Result<JoinedRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rows.is_empty() && !self.done {
            match self.txn.children_page(self.ctbl, self.itbl, &self.lo, self.hi.clone(), self.page) {
                Ok(rows) => {
                    self.done = rows.len() < self.page;
                    self.page = PAGE;
                    if let Some((k, _, _)) = rows.last() {
                        self.lo = Bound::Excluded(k.clone());
                    }
                    self.rows.extend(rows);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.rows.pop_front().map(Ok)
    }
}
