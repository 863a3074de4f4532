//! Collecting expired trash: run by the detached-folder sweeper's thread (`tree::detach`),
//! before it sweeps, so the folders purged here are swept in the same round.

use std::time::Duration;

use crate::content::chunks::Collector;
use crate::error::Result;
use crate::meta::db::{Db, TRASH_EXPIRY};
use crate::meta::kv::Readable;
use crate::meta::model::now_nanos;
use crate::meta::txn::W;

/// Entries read from the expiry index in one read.
const BATCH: usize = 500;
/// Batches one round handles at most: the rest waits for the next round (a minute).
const MAX_BATCHES: usize = 200;

/// Purges every trash entry deleted more than `keep` ago, each in its own transaction.
/// Safe on several nodes at once: each transaction purges only a row still there.
/// Returns how many entries it purged.
pub(crate) fn collect(db: &Db, collector: &Collector, keep: Duration) -> Result<usize> {
    let cutoff = now_nanos().saturating_sub(keep.as_nanos().min(i64::MAX as u128) as i64).max(0) as u64;
    let mut purged = 0;
    for _ in 0..MAX_BATCHES {
        let due: Vec<(u64, u64, u64)> = db.read_sync(|t| {
            let mut out = Vec::new();
            for e in t.open_table(TRASH_EXPIRY)?.range((0, 0)..(cutoff, 0))?.take(BATCH) {
                let (k, v) = e?;
                let (at, id) = k.value();
                out.push((at, id, v.value()));
            }
            Ok(out)
        })?;
        for &(at, id, owner) in &due {
            let (done, freed) = db.write_sync(|ctx| {
                let mut w = W::open(ctx)?;
                // Restored, purged or collected meanwhile (here or on another node): nothing to do.
                match w.trash_row(owner, id)? {
                    Some(row) if row.deleted_at.max(0) as u64 == at => Ok(Some(w.purge_trashed(owner, id)?)),
                    _ => {
                        w.txn.open_table(TRASH_EXPIRY)?.remove((at, id))?;
                        Ok(None)
                    }
                }
            })?;
            collector.offer(freed);
            purged += usize::from(done.is_some());
        }
        if due.len() < BATCH {
            break;
        }
    }
    Ok(purged)
}
