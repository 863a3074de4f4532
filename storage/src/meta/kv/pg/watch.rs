//! Hears, on each node, that another node changed what a credential check reads (an account,
//! an app password, an S3 key), so the credential cache (`auth::cache`) may answer a hit
//! without asking PostgreSQL and still honour a revocation made anywhere, within a bound.
//!
//! Why LISTEN/NOTIFY and a ping, rather than reading a generation row with each path: a
//! credential check comes before the request knows what it will read, in the front ends,
//! so folding it into the request's first query would thread the check through every
//! protocol; a notification costs nothing per request. Why it is safe:
//! - every write transaction that puts or removes a row of [`WATCHED`] sends
//!   `NOTIFY davit_auth` in its `COMMIT` round trip (in the transaction: PostgreSQL delivers it
//!   only if it commits, and to every listening session, whichever node wrote);
//! - each node keeps one connection of its own listening, on its own thread, and moves its
//!   generation on each notification (and on its own such commits at once);
//! - that connection pings every [`PING`]; a listener answers a query only after sending the
//!   notifications committed before it, so when a ping sent at `t` comes back, every change
//!   committed before `t` has been heard. The cache trusts an entry only while the last ping
//!   that came back was sent less than [`BOUND`] ago, and only if the generation has not
//!   moved since the store last confirmed that entry. A listener that is lost, late or
//!   reconnecting makes every hit ask the store again, as without the watch (and moves
//!   the generation when it listens again: what was said meanwhile was not heard).
//!
//! So a password change, a disabled account or a revoked key stops working on every node
//! within [`BOUND`] of its commit (in practice the notification's own latency, well under a
//! millisecond on a LAN), and an unhealthy listener only costs speed.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_postgres::{AsyncMessage, Config};

use super::table_id;
use super::tls::Tls;
use crate::error::{Error, Result};

/// The channel of credential changes.
pub(super) const NOTIFY: &str = "NOTIFY davit_auth; COMMIT";
const LISTEN: &str = "LISTEN davit_auth";

/// Tables whose rows a credential check reads: a change to any of them moves every node's
/// generation. They change on account, app password and key management only, never on a
/// file operation.
const WATCHED: [i16; 3] = [table_id("users"), table_id("app_password_hashes"), table_id("access_keys")];

pub(super) fn watched(tbl: i16) -> bool {
    WATCHED.contains(&tbl)
}

/// How often the listener proves it is still hearing.
const PING: Duration = Duration::from_millis(100);
/// How old the last answered ping may be for the cache to trust an entry: the longest a
/// change committed on another node can go unnoticed here.
pub(crate) const BOUND: Duration = Duration::from_secs(1);
/// Pause before listening again after the connection failed.
const RETRY: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Watch {
    generation: AtomicU64,
    base: Instant,
    /// When the last ping that was answered had been sent, in nanoseconds after `base`, plus
    /// one; 0 while not listening.
    heard: AtomicU64,
}

impl Watch {
    /// Starts the listener thread; it stops soon after the watch is dropped.
    pub(super) fn start(cfg: Config, tls: Tls) -> Result<Arc<Watch>> {
        let watch = Arc::new(Watch { generation: AtomicU64::new(0), base: Instant::now(), heard: AtomicU64::new(0) });
        let weak = Arc::downgrade(&watch);
        std::thread::Builder::new()
            .name("davit-pg-watch".into())
            .spawn(move || run(weak, cfg, tls))
            .map_err(Error::from)?;
        Ok(watch)
    }

    /// The generation, when the listener has heard everything committed up to [`BOUND`]
    /// ago; `None` when it cannot say (then nothing may be trusted without asking).
    pub(super) fn fresh(&self) -> Option<u64> {
        let heard = self.heard.load(SeqCst);
        if heard == 0 {
            return None;
        }
        let sent = Duration::from_nanos(heard - 1);
        // Read after `heard`: it includes every change heard before that ping came back.
        (self.base.elapsed().saturating_sub(sent) < BOUND).then(|| self.generation.load(SeqCst))
    }

    /// Something a credential check reads has changed (or may have: nothing was heard).
    pub(super) fn changed(&self) {
        self.generation.fetch_add(1, SeqCst);
    }

    fn deaf(&self) {
        self.heard.store(0, SeqCst);
        self.changed();
    }
}

fn run(weak: Weak<Watch>, cfg: Config, tls: Tls) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        tracing::warn!("PostgreSQL: cannot start the credential-change listener; every credential is checked");
        return;
    };
    loop {
        let r = rt.block_on(listen(&weak, &cfg, &tls));
        let Some(w) = weak.upgrade() else { return };
        w.deaf();
        drop(w);
        if let Err(e) = r {
            tracing::debug!(error = %e, "PostgreSQL credential-change listener lost; listening again");
        }
        std::thread::sleep(RETRY);
    }
}

/// Listens until the connection fails (`Err`) or the watch is dropped (`Ok`).
async fn listen(weak: &Weak<Watch>, cfg: &Config, tls: &Tls) -> std::result::Result<(), String> {
    let mut cfg = cfg.clone();
    cfg.application_name("davit-watch");
    let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, cfg.connect(tls.clone()))
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| crate::error::one_line(&e))?;
    let hears = weak.clone();
    // Drives the connection; a notification moves the generation here, as its message is
    // read, so before the answer to any query sent after it was committed.
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(_)) => match hears.upgrade() {
                    Some(w) => w.changed(),
                    None => return,
                },
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Deaf from now on, not only from the next ping.
        if let Some(w) = hears.upgrade() {
            w.deaf();
        }
    });
    let _stop = AbortOnDrop(driver);
    client.batch_execute(LISTEN).await.map_err(|e| crate::error::one_line(&e))?;
    // Changes made before it listened were not heard.
    match weak.upgrade() {
        Some(w) => w.changed(),
        None => return Ok(()),
    }
    loop {
        let sent = Instant::now();
        tokio::time::timeout(BOUND, client.simple_query("SELECT 1"))
            .await
            .map_err(|_| "a ping went unanswered".to_owned())?
            .map_err(|e| crate::error::one_line(&e))?;
        let Some(w) = weak.upgrade() else { return Ok(()) };
        let at = sent.saturating_duration_since(w.base).as_nanos() as u64 + 1;
        w.heard.store(at, SeqCst);
        drop(w);
        tokio::time::sleep(PING).await;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
