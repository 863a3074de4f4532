//! Events in the metadata store: `audit` by time, `audit_by_user` for a user's own, paging
//! newest first, and expiry after the retention period.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Event;
use crate::error::{Error, Result};
use crate::meta::db::{self, AUDIT, AUDIT_BY_USER, Readable};
use crate::meta::kv::{ReadTxn, WriteTxn};
use crate::meta::model::Principal;
use crate::{Core, Storage};

/// Where a page ended: the time and the row's tag of its last event. Opaque to clients
/// (`<at>.<tag>` in decimal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    at: u64,
    tag: u64,
}

impl Cursor {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::InvalidInput("cursor is the `next` of an earlier page".into());
        let (a, t) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor { at: a.parse().map_err(|_| bad())?, tag: t.parse().map_err(|_| bad())? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.at, self.tag)
    }
}

/// A page of events, newest first, and where the next (older) one starts.
#[derive(Debug)]
pub struct AuditPage {
    pub events: Vec<Event>,
    pub next: Option<Cursor>,
}

/// Rows are keyed (time, tag) with a random tag, not a counter from META: events come from
/// every node at once and a shared counter would make all their transactions collide.
pub(super) fn insert(txn: &WriteTxn, e: &Event) -> Result<()> {
    let tag = u64::from_le_bytes(crate::crypto::random_bytes::<8>());
    txn.open_table(AUDIT)?.insert((e.at, tag), db::encode(e).as_slice())?;
    let mut by_user = txn.open_table(AUDIT_BY_USER)?;
    for u in e.user.iter().chain(e.target.iter().filter(|t| Some(**t) != e.user)) {
        by_user.insert((*u, e.at), tag)?;
    }
    Ok(())
}

const MAX_PAGE: usize = 1000;

fn all_page(t: &ReadTxn, before: Option<Cursor>, limit: usize) -> Result<AuditPage> {
    let table = t.open_table(AUDIT)?;
    let end = before.map_or((u64::MAX, u64::MAX), |c| (c.at, c.tag));
    let mut events = Vec::new();
    let mut last = None;
    for row in table.range((0, 0)..end)?.rev().take(limit) {
        let (k, v) = row?;
        let (at, tag) = k.value();
        events.push(db::decode::<Event>(v.value())?);
        last = Some(Cursor { at, tag });
    }
    Ok(AuditPage { next: last.filter(|_| events.len() == limit), events })
}

fn user_page(t: &ReadTxn, user: u64, before: Option<Cursor>, limit: usize) -> Result<AuditPage> {
    let (index, table) = (t.open_table(AUDIT_BY_USER)?, t.open_table(AUDIT)?);
    let end = before.map_or(u64::MAX, |c| c.at);
    let mut events = Vec::new();
    let mut last = None;
    for row in index.range((user, 0)..(user, end))?.rev() {
        if events.len() == limit {
            break;
        }
        let (k, v) = row?;
        let ((_, at), tag) = (k.value(), v.value());
        // Gone with its event (expired between the two reads of another snapshot): skipped.
        if let Some(e) = table.get((at, tag))? {
            events.push(db::decode::<Event>(e.value())?);
            last = Some(Cursor { at, tag });
        }
    }
    Ok(AuditPage { next: last.filter(|_| events.len() == limit), events })
}

impl Storage {
    /// Every event, newest first: admins only.
    pub async fn audit_page(&self, p: &Principal, before: Option<Cursor>, limit: usize) -> Result<AuditPage> {
        self.admin(p)?;
        let limit = limit.clamp(1, MAX_PAGE);
        self.core.db.read(move |t| all_page(t, before, limit)).await
    }

    /// The events a user did or was the subject of, newest first.
    pub async fn my_audit_page(&self, p: &Principal, before: Option<Cursor>, limit: usize) -> Result<AuditPage> {
        let (user, limit) = (p.user_id, limit.clamp(1, MAX_PAGE));
        self.core.db.read(move |t| user_page(t, user, before, limit)).await
    }

    /// Removes events older than the retention period; returns how many.
    pub async fn expire_audit(&self) -> Result<usize> {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || expire(&core)).await?
    }
}

/// Events removed per transaction: a long backlog goes in bounded steps.
const EXPIRE_STEP: usize = 1000;

fn expire(core: &Core) -> Result<usize> {
    let cutoff = crate::meta::txn::wall_nanos().saturating_sub(core.config.audit_retention.as_nanos() as u64);
    let mut removed = 0;
    loop {
        let (n, _) = core.db.write_sync(|ctx| {
            let mut table = ctx.txn.open_table(AUDIT)?;
            let old: Vec<((u64, u64), Event)> = table
                .range((0, 0)..(cutoff, 0))?
                .take(EXPIRE_STEP)
                .map(|r| r.and_then(|(k, v)| Ok((k.value(), db::decode::<Event>(v.value())?))))
                .collect::<Result<_>>()?;
            let mut by_user = ctx.txn.open_table(AUDIT_BY_USER)?;
            for (key, e) in &old {
                table.remove(*key)?;
                for u in e.user.iter().chain(e.target.iter()) {
                    by_user.remove((*u, e.at))?;
                }
            }
            Ok(old.len())
        })?;
        removed += n;
        if n < EXPIRE_STEP {
            return Ok(removed);
        }
    }
}

/// Expires old events at start and hourly, on a thread of its own (the store's calls block).
pub(crate) fn start_expiry(core: &Arc<Core>) -> Result<()> {
    let weak: Weak<Core> = Arc::downgrade(core);
    std::thread::Builder::new().name("davit-audit-expiry".into()).spawn(move || {
        loop {
            let Some(core) = weak.upgrade() else { return };
            match expire(&core) {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "expired audit events past the retention period"),
                Err(e) => tracing::warn!(error = %e, "expiring audit events failed; the next round retries"),
            }
            drop(core);
            // Slept in short steps so the thread ends soon after the store is dropped.
            for _ in 0..3600 {
                if weak.strong_count() == 0 {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    })?;
    Ok(())
}
