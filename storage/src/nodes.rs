//! Which davit nodes serve a shared metadata store right now, so that the offline commands
//! that must have it to themselves (`admin migrate` from a PostgreSQL source, `admin
//! rotate-master-key`) can refuse while any runs.
//!
//! Rule: a serving node writes its row in `NODES` (a random node id -> when it last wrote,
//! when it started, in Unix seconds) at start and every [`HEARTBEAT_EVERY`], and removes it
//! when it stops cleanly. A row written less than [`FRESH_FOR`] ago, by the clock of the
//! machine that checks, is a running node. So a node killed (kill -9, power) holds those
//! commands off for at most `FRESH_FOR` after its last heartbeat; nodes' clocks must agree
//! within a few seconds (NTP), as they already must for tokens and the grace period.
//!
//! Why a heartbeat rather than a lock held by the node's session: a node holds no connection
//! for its whole life (the pool replaces closed ones), and a row is what every engine has.
//! With redb the database file's own lock already keeps a second process out, so only
//! PostgreSQL stores get heartbeats.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Storage;
use crate::error::{Error, Result};
use crate::meta::db::{Db, NODES, Readable};

/// How often a node writes its heartbeat: one small transaction per node every 10 s.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// How long a heartbeat counts as a running node: three beats, so one slow or failed write
/// (PostgreSQL restarting) does not make a running node look stopped.
pub const FRESH_FOR: Duration = Duration::from_secs(30);

/// A node's heartbeat: written until dropped, then its row removed.
pub struct Heartbeat {
    db: Db,
    id: String,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn beat(db: &Db, id: &str, started: u64) -> Result<()> {
    db.write_sync(|ctx| {
        ctx.txn.open_table(NODES)?.insert(id, (now_secs(), started))?;
        Ok(())
    })?;
    Ok(())
}

impl Storage {
    /// Starts this node's heartbeat (for `serve`; never for the offline commands, which
    /// would then refuse themselves). None on redb, whose file lock does the same job.
    /// The first beat is written before this returns, so a check that starts after the
    /// node has started sees it.
    pub fn start_heartbeat(&self) -> Result<Option<Heartbeat>> {
        let db = self.core.db.clone();
        if !db.is_postgres() {
            return Ok(None);
        }
        let id = crate::crypto::random_string(b"0123456789abcdef", 16);
        let started = now_secs();
        beat(&db, &id, started)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (db2, id2, stop2) = (db.clone(), id.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("davit-heartbeat".into())
            .spawn(move || {
                let (lock, cv) = &*stop2;
                let mut stopped = lock.lock().expect("heartbeat lock");
                loop {
                    stopped = cv.wait_timeout(stopped, HEARTBEAT_EVERY).expect("heartbeat lock").0;
                    if *stopped {
                        return;
                    }
                    if let Err(e) = beat(&db2, &id2, started) {
                        tracing::warn!(error = ?e, "writing this node's heartbeat failed; retried in {HEARTBEAT_EVERY:?}");
                    }
                }
            })
            .map_err(Error::from)?;
        Ok(Some(Heartbeat { db, id, stop, thread: Some(thread) }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().expect("heartbeat lock") = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // A clean stop frees the offline commands at once; a failure here only delays them
        // by `FRESH_FOR`.
        let id = self.id.clone();
        if let Err(e) = self.db.write_sync(|ctx| {
            ctx.txn.open_table(NODES)?.remove(id.as_str())?;
            Ok(())
        }) {
            tracing::warn!(error = ?e, "removing this node's heartbeat failed; it goes stale in {FRESH_FOR:?}");
        }
    }
}

/// The nodes with a fresh heartbeat: (node id, seconds since its last beat).
pub(crate) fn running(db: &Db) -> Result<Vec<(String, u64)>> {
    if !db.is_postgres() {
        return Ok(Vec::new());
    }
    let now = now_secs();
    db.read_sync(|t| {
        let mut out = Vec::new();
        for row in t.open_table(NODES)?.iter()? {
            let (k, v) = row?;
            let (seen, _started) = v.value();
            let age = now.saturating_sub(seen);
            if age < FRESH_FOR.as_secs() {
                out.push((k.value().to_owned(), age));
            }
        }
        Ok(out)
    })
}

/// Refuses `what` while a node serves the store (see the module's rule).
pub(crate) fn refuse_if_running(db: &Db, what: &str) -> Result<()> {
    let nodes = running(db)?;
    if let Some((id, age)) = nodes.iter().min_by_key(|(_, age)| *age) {
        return Err(Error::Incompatible(format!(
            "{what} needs every davit on this metadata store stopped, but {} node(s) wrote a heartbeat in the \
             last {} s (node {id}, {age} s ago); stop them (a node killed without stopping goes stale {} s after \
             its last heartbeat)",
            nodes.len(),
            FRESH_FOR.as_secs(),
            FRESH_FOR.as_secs()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::open_with;

    /// On PostgreSQL: a running node's heartbeat makes `refuse_if_running` refuse, naming the
    /// rule; a clean stop removes it at once; a stale row (a node killed) no longer refuses.
    #[test]
    fn migrate_refuses_while_a_node_beats_and_not_after() {
        let url = crate::tests::pg::database();
        let f = open_with(|c| c.meta = crate::MetaStore::Postgres { url: url.clone(), pool_size: 2 });
        let db = Db::open_postgres(&url, 1, |_| {}).unwrap();
        assert!(running(&db).unwrap().is_empty(), "no node yet");

        let beat = f.storage.start_heartbeat().unwrap().expect("PostgreSQL gets heartbeats");
        let nodes = running(&db).unwrap();
        assert_eq!(nodes.len(), 1, "{nodes:?}");
        let msg = refuse_if_running(&db, "migrate").unwrap_err().to_string();
        assert!(msg.contains("migrate needs every davit") && msg.contains(&nodes[0].0), "{msg}");
        drop(beat);
        assert!(running(&db).unwrap().is_empty(), "a clean stop removes the row");
        refuse_if_running(&db, "migrate").unwrap();

        // A node killed: its row stays, and counts until it is FRESH_FOR old.
        let seen = now_secs();
        db.write_sync(|ctx| {
            let mut t = ctx.txn.open_table(NODES)?;
            t.insert("killed-fresh", (seen, seen))?;
            t.insert("killed-stale", (seen - FRESH_FOR.as_secs(), seen - 3600))?;
            Ok(())
        })
        .unwrap();
        let ids: Vec<String> = running(&db).unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["killed-fresh"]);
        db.write_sync(|ctx| {
            ctx.txn.open_table(NODES)?.remove("killed-fresh")?;
            Ok(())
        })
        .unwrap();
        refuse_if_running(&db, "migrate").unwrap();
        db.close();
    }

    /// On redb the file lock keeps other processes out: no heartbeat is written.
    #[test]
    fn a_redb_store_gets_no_heartbeat() {
        let f = open_with(|_| {});
        assert!(f.storage.start_heartbeat().unwrap().is_none());
    }
}
