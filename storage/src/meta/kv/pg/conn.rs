//! Connections, and the pool that hands them out.
//!
//! Each connection has a small runtime of its own (one thread's worth: the current-thread
//! flavor), and whoever holds the connection drives it on its own thread: the query, the
//! socket and the protocol all run there, inside `block_on`, and the answer needs no hand-
//! over. A shared runtime for every connection (what a pool of async connections gives)
//! costs each query two thread wake-ups besides PostgreSQL's own; measured on 2 cores with
//! 16 small-file requests at a time, those wake-ups and the context switches they caused
//! were most of davit's CPU. The seam is synchronous and its callers are blocking threads
//! already, so nothing is lost by it.
//!
//! The pool is a stack (the connection used last is used next: warm, and it is the one
//! whose transaction a failed write left open, ended at once by the next user). A
//! connection comes back with its transaction possibly still open (`open_txn`): the next
//! user ends it in the same round trip as its own `BEGIN`, and a sweeper thread ends those
//! nobody takes within [`super::PARKED_FOR`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio_postgres::{Client, Config, Error as PgError, Statement};

use super::tls::Tls;
use crate::error::{Error, Result};

/// Sent once on each new connection (see `Conn::open`).
const GENERIC_PLANS: &str = "SET plan_cache_mode = force_generic_plan";

/// How long a request waits for a connection when all are busy, and for a new one.
const WAIT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Conn {
    /// Dropped with `shutdown_background` (see `Drop`).
    rt: Option<Runtime>,
    client: Client,
    /// Prepared statements by text: a query is one round trip, not a prepare and an execute.
    stmts: Mutex<HashMap<String, Statement>>,
    /// The last user's transaction is still open (a read's, or a write that did not commit).
    pub(super) open_txn: bool,
    /// When it was given back.
    pub(super) since: Instant,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Plain drop waits for the runtime's blocking threads, which panics on an async
        // worker; there is nothing to wait for.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Conn {
    fn open(cfg: &Config, tls: &Tls) -> std::result::Result<Conn, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let (cfg, tls) = (cfg.clone(), tls.clone());
        let client = drive(&rt, async move {
            let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, cfg.connect(tls))
                .await
                .map_err(|_| format!("no answer in {} s", CONNECT_TIMEOUT.as_secs()))?
                .map_err(|e| crate::error::one_line(&e))?;
            // Runs whenever a holder of the connection is inside `block_on`.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            // Every statement davit sends is a primary-key lookup or a range of the primary key
            // (the PL/pgSQL walk's too), which has one good plan whatever the parameters, so it
            // is planned once per connection instead of per execution: PostgreSQL plans a
            // prepared statement anew for each execution while it judges the parameters might
            // matter, and that planning was a third of its CPU per small GET. Measured (one
            // node over PostgreSQL 15, 6,000 WebDAV GETs of 4 KiB, 16 at once, on a fresh
            // database, the setting alternated, 2 runs each): PostgreSQL
            // 129-134 -> 94-96 CPU ticks, davit 100-101 -> 90-92, 4,192-4,251 -> 5,134-5,141
            // GETs per s; `kv` still read by index only (seq_scan stayed at setup's 1, idx_scan
            // 38,900 -> 39,427). A server without the setting (before PostgreSQL 12) plans as
            // it always did.
            if let Err(e) = client.batch_execute(GENERIC_PLANS).await {
                tracing::debug!(error = %e, "PostgreSQL: plans stay per execution");
            }
            Ok::<_, String>(client)
        })?;
        Ok(Conn { rt: Some(rt), client, stmts: Mutex::default(), open_txn: false, since: Instant::now() })
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs `fut` to its end on this thread, driving the connection meanwhile.
    pub(super) fn block_on<F: Future + Send>(&self, fut: F) -> F::Output
    where
        F::Output: Send,
    {
        drive(self.rt.as_ref().expect("runtime lives until drop"), fut)
    }

    /// The statement for `sql`, prepared once per connection.
    pub(super) async fn prepare(&self, sql: &str) -> std::result::Result<Statement, PgError> {
        if let Some(st) = self.stmts.lock().unwrap_or_else(|e| e.into_inner()).get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).await?;
        self.stmts.lock().unwrap_or_else(|e| e.into_inner()).insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

/// `rt.block_on(fut)` from whatever thread calls: a blocking thread or one outside any
/// runtime (the usual callers) blocks right there; an async worker of a multi-thread
/// runtime (a test, or opening the store) first hands its other tasks on
/// (`block_in_place`), since a runtime cannot be started inside another; inside a
/// current-thread runtime, where that is not possible, a thread of its own does it.
fn drive<F: Future + Send>(rt: &Runtime, fut: F) -> F::Output
where
    F::Output: Send,
{
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => rt.block_on(fut),
        Ok(RuntimeFlavor::CurrentThread) => {
            std::thread::scope(|s| s.spawn(|| rt.block_on(fut)).join().expect("PostgreSQL call panicked"))
        }
        Ok(_) => tokio::task::block_in_place(|| rt.block_on(fut)),
    }
}

/// A connection lent out; back to the pool when dropped (or gone, when it is broken).
pub(super) struct Pooled {
    conn: Option<Conn>,
    pool: Arc<Shared>,
}

impl Pooled {
    pub(super) fn conn(&self) -> &Conn {
        self.conn.as_ref().expect("held until drop")
    }

    pub(super) fn conn_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("held until drop")
    }

    /// Drops the connection instead of giving it back (it failed in an unknown state).
    pub(super) fn discard(mut self) {
        self.conn = None;
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut st = self.pool.lock();
        match self.conn.take() {
            Some(mut c) if !c.is_closed() => {
                c.since = Instant::now();
                st.idle.push(c);
            }
            _ => st.total -= 1,
        }
        drop(st);
        self.pool.freed.notify_one();
    }
}

struct State {
    idle: Vec<Conn>,
    /// Connections that exist: idle, lent out, or being opened.
    total: usize,
}

struct Shared {
    cfg: Config,
    tls: Tls,
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone)]
pub(super) struct Pool(Arc<Shared>);

impl Pool {
    pub(super) fn new(cfg: Config, tls: Tls, max: usize) -> Pool {
        Pool(Arc::new(Shared {
            cfg,
            tls,
            max: max.max(1),
            state: Mutex::new(State { idle: Vec::new(), total: 0 }),
            freed: Condvar::new(),
        }))
    }

    /// A connection: an idle one, a new one while there are fewer than the bound, else the
    /// first given back within [`WAIT`]. `Err` says why none could be had.
    pub(super) fn get(&self) -> std::result::Result<Pooled, String> {
        let deadline = Instant::now() + WAIT;
        let mut st = self.0.lock();
        loop {
            while let Some(c) = st.idle.pop() {
                if c.is_closed() {
                    st.total -= 1;
                    continue;
                }
                return Ok(Pooled { conn: Some(c), pool: self.0.clone() });
            }
            if st.total < self.0.max {
                st.total += 1;
                drop(st);
                return match Conn::open(&self.0.cfg, &self.0.tls) {
                    Ok(c) => Ok(Pooled { conn: Some(c), pool: self.0.clone() }),
                    Err(e) => {
                        self.0.lock().total -= 1;
                        self.0.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("all {} connections stayed busy for {} s", self.0.max, WAIT.as_secs()));
            }
            st = self.0.freed.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Forgets the idle connections: one was found lost, so the server went away and the
    /// others, opened before, are lost too (each would cost a failed query to find out).
    pub(super) fn drop_idle(&self) {
        let idle = {
            let mut st = self.0.lock();
            let idle = std::mem::take(&mut st.idle);
            st.total -= idle.len();
            idle
        };
        drop(idle);
        self.0.freed.notify_all();
    }

    /// Ends, every `every`, the transactions of connections given back longer than `every`
    /// ago with one still open, until the pool is gone.
    pub(super) fn start_sweeper(&self, every: Duration) -> Result<()> {
        let weak: Weak<Shared> = Arc::downgrade(&self.0);
        std::thread::Builder::new()
            .name("davit-pg-sweep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(shared) = weak.upgrade() else { return };
                    let stale: Vec<Conn> = {
                        let mut st = shared.lock();
                        let (old, keep): (Vec<_>, Vec<_>) =
                            st.idle.drain(..).partition(|c| c.open_txn && c.since.elapsed() >= every);
                        st.idle = keep;
                        old
                    };
                    for mut c in stale {
                        let ok = c.block_on(c.client.batch_execute("ROLLBACK")).is_ok();
                        c.open_txn = false;
                        // Lent and given back: a connection in an unknown state is dropped.
                        let lent = Pooled { conn: Some(c), pool: shared.clone() };
                        if !ok {
                            lent.discard();
                        }
                    }
                }
            })
            .map_err(Error::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection of the pool plans davit's statements once (`GENERIC_PLANS`), new
    /// ones and replacements alike.
    #[test]
    fn connections_plan_once() {
        let target = super::super::tls::parse(&crate::tests::pg::database()).unwrap();
        let tls = target.connector().unwrap();
        let pool = Pool::new(target.cfg.clone(), tls, 2);
        let (a, b) = (pool.get().unwrap(), pool.get().unwrap());
        for c in [&a, &b] {
            let c = c.conn();
            let row = c.block_on(c.client().query_one("SHOW plan_cache_mode", &[])).unwrap();
            assert_eq!(row.get::<_, String>(0), "force_generic_plan");
        }
    }
}
