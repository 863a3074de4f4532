//! Deleting a folder in constant time: one transaction detaches it, the sweeper removes
//! its rows afterwards.
//!
//! The detaching transaction does everything a caller can observe: the folder leaves its
//! parent (so no path reaches it or anything below), its owner's usage and the totals of
//! the folders above drop by the folder's totals (`meta::subtree`, no walk), every grant and
//! link on or below it ends, locks on or below it go (`locks::forget_item`, by its index),
//! and its id is written to DETACHED. What is left, the item rows and the references their
//! chunks hold, belongs to no drive: the sweeper removes it in bounded batches, each its own
//! transaction, dropping chunk references as any delete does (so chunk files go through the
//! usual collector on one node, the grave on several). A crash between batches leaves the
//! DETACHED row, and the next start (or any node's next round) finishes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::content::chunks::Collector;
use crate::error::Result;
use crate::meta::db::{DETACHED, Db, LINKS_BY_OWNER, SHARES_BY_OWNER};
use crate::meta::kv::Readable;
use crate::meta::model::Item;
use crate::meta::txn::{self, W};

/// Items a sweeping transaction removes at most: small enough that a batch never holds the
/// writer long (other changes wait behind it on one node), large enough that few commits
/// are needed.
const SWEEP_BATCH: usize = 2000;
/// How often the sweeper looks for work nobody woke it for: roots another node detached and
/// did not finish, or that a crash left.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl W<'_> {
    /// Removes `item` and everything below it from the tree: a file or an empty folder at
    /// once, a folder with contents by detaching it. Returns whether the sweeper has work.
    pub(crate) fn remove_item(&mut self, item: &Item) -> Result<bool> {
        if !item.is_folder() || self.children.range((item.id, "")..(item.id + 1, ""))?.next().is_none() {
            self.remove_subtree(item)?;
            return Ok(false);
        }
        let (bytes, files) = match self.folder_totals(item.id)? {
            Some(t) => t,
            None => self.walk_totals(item.id)?,
        };
        self.unlink(item)?;
        self.add_usage(item.owner, -(bytes as i128), -(files as i64))?;
        self.add_below(item.parent, -(bytes as i128), -(files as i64))?;
        self.end_grants_below(item)?;
        self.txn.open_table(DETACHED)?.insert(item.id, item.owner)?;
        Ok(true)
    }

    /// Ends every grant and link on `folder` or below it. Everything below a folder has the
    /// folder's owner (a change of owner moves whole subtrees), so the owner's grants and
    /// links are the candidates: each is checked by following its item's parents up, which
    /// costs the depth of the tree per grant, not the size of the folder.
    pub(crate) fn end_grants_below(&mut self, folder: &Item) -> Result<()> {
        let owner = folder.owner;
        let mut candidates = Vec::new();
        for index in [SHARES_BY_OWNER, LINKS_BY_OWNER] {
            for e in self.txn.open_table(index)?.range((owner, 0)..(owner + 1, 0))? {
                candidates.push(e?.1.value());
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut below: HashMap<u64, bool> = HashMap::from([(folder.id, true), (0, false)]);
        for id in candidates {
            if self.is_below(id, &mut below)? {
                crate::meta::grant_rows::forget_item(self.txn, id)?;
            }
        }
        Ok(())
    }

    /// Whether `id` is the folder or below it; `known` holds the answers found so far
    /// (seeded with the folder: true, and 0, above every root: false).
    fn is_below(&self, id: u64, known: &mut HashMap<u64, bool>) -> Result<bool> {
        let mut chain = Vec::new();
        let mut cur = id;
        let answer = loop {
            if let Some(&k) = known.get(&cur) {
                break k;
            }
            if chain.len() > 4096 {
                break false;
            }
            chain.push(cur);
            match txn::get_item(&self.items, cur)? {
                Some(it) => cur = it.parent,
                // A deleted link's item: nothing to end there.
                None => break false,
            }
        };
        for c in chain {
            known.insert(c, answer);
        }
        Ok(answer)
    }

    /// Removes up to `budget` rows of the detached subtree at `root`, deepest first, and the
    /// DETACHED row once nothing is left. Returns whether the subtree is gone.
    fn sweep_detached(&mut self, root: u64, budget: usize) -> Result<bool> {
        if self.txn.open_table(DETACHED)?.get(root)?.is_none() {
            return Ok(true);
        }
        let mut removed = 0;
        let mut stack = vec![root];
        while let Some(&folder) = stack.last() {
            if removed >= budget {
                return Ok(false);
            }
            let page: Vec<(String, u64)> = self
                .children
                .range((folder, "")..(folder + 1, ""))?
                .take(budget - removed)
                .map(|e| e.map(|(k, v)| (k.value().1.to_owned(), v.value())))
                .collect::<std::result::Result<_, _>>()?;
            if page.is_empty() {
                // Emptied: the folder itself goes (the root has no row in CHILDREN any more).
                stack.pop();
                // The root's name may be taken again by now: its row went when it was detached.
                if folder != root
                    && let Some(it) = txn::get_item(&self.items, folder)?
                {
                    self.children.remove((it.parent, it.child_key().as_str()))?;
                }
                self.items.remove(folder)?;
                crate::meta::tags::forget_item(self.txn, folder)?;
                crate::meta::tags::forget_lifecycle(self.txn, folder)?;
                self.drop_folder_totals(folder)?;
                removed += 1;
                continue;
            }
            for (key, id) in page {
                if key.ends_with('/') {
                    stack.push(id);
                    break;
                }
                if let Some(it) = txn::get_item(&self.items, id)? {
                    self.release_refs(&it.chunks)?;
                }
                self.items.remove(id)?;
                crate::meta::tags::forget_item(self.txn, id)?;
                self.children.remove((folder, key.as_str()))?;
                removed += 1;
            }
        }
        self.txn.open_table(DETACHED)?.remove(root)?;
        Ok(true)
    }
}

/// Finishes every detached subtree; returns how many were finished.
pub(crate) fn sweep_all(db: &Db, collector: &Collector) -> Result<usize> {
    let roots: Vec<u64> =
        db.read_sync(|t| t.open_table(DETACHED)?.iter()?.map(|e| e.map(|(k, _)| k.value())).collect())?;
    for &root in &roots {
        // Bounded by the subtree's size: every batch but the last removes SWEEP_BATCH rows.
        loop {
            let (done, freed) = db.write_sync(|ctx| W::open(ctx)?.sweep_detached(root, SWEEP_BATCH))?;
            collector.offer(freed);
            if done {
                break;
            }
        }
    }
    Ok(roots.len())
}

/// The thread that sweeps detached subtrees: woken by each delete that detached one, and
/// every [`SWEEP_EVERY`]; it stops when the store is dropped.
pub(crate) struct Sweeper {
    wake: Mutex<mpsc::Sender<()>>,
}

impl Sweeper {
    /// Also collects expired trash (`crate::trash`), entries older than `trash_keep` (None:
    /// never), before each sweep; a trash "day" shorter than a round (tests) makes rounds
    /// that short.
    pub fn start(
        db: Db,
        collector: Arc<Collector>,
        trash_keep: Option<Duration>,
        trash_day: Duration,
    ) -> Result<Arc<Sweeper>> {
        let (tx, rx) = mpsc::channel::<()>();
        let every = SWEEP_EVERY.min(trash_day.max(Duration::from_millis(500)));
        std::thread::Builder::new().name("davit-detached".into()).spawn(move || {
            // At start first: what a crash left is finished without waiting to be woken.
            let mut wanted = true;
            loop {
                if wanted && let Some(keep) = trash_keep {
                    match crate::trash::collect(&db, &collector, keep) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(entries = n, "collected expired trash"),
                        Err(e) => tracing::warn!(error = ?e, "collecting expired trash failed; retried later"),
                    }
                }
                if wanted && let Err(e) = sweep_all(&db, &collector) {
                    tracing::warn!(error = ?e, "sweeping deleted folders failed; retried later");
                }
                wanted = match rx.recv_timeout(every) {
                    Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {
                        while rx.try_recv().is_ok() {}
                        true
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
            }
        })?;
        Ok(Arc::new(Sweeper { wake: Mutex::new(tx) }))
    }

    /// A sweeper that never runs, for a store opened passive (see `StorageConfig::passive`):
    /// a wake-up goes nowhere.
    pub fn idle() -> Arc<Sweeper> {
        let (tx, _) = mpsc::channel::<()>();
        Arc::new(Sweeper { wake: Mutex::new(tx) })
    }

    pub fn wake(&self) {
        let _ = self.wake.lock().expect("sweeper wake").send(());
    }
}
