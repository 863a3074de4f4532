//! Lifecycle rules over a versioned bucket's history: NoncurrentVersionExpiration removes
//! old versions, and a delete marker left as a key's only version (an "expired object
//! delete marker") goes under ExpiredObjectDeleteMarker or a due Expiration, as S3 does.
//!
//! The history is read a page of whole keys at a time; each page's removals are one
//! transaction that reads those keys again and decides again with the same rules, so a
//! version written, restored or removed meanwhile (or by another node's pass) is judged as
//! it is at the commit: the pass is idempotent and never removes a version that became
//! current, or a marker that is no longer alone.

use std::time::Duration;

use super::{Lifecycle, due_after_days};
use crate::error::Result;
use crate::meta::model::Item;
use crate::versions::{KeyHistory, Version, history_page};
use crate::{Storage, meta::model::now_nanos};

/// History rows read per page (whole keys: a page may run over by one key's rows); a few
/// in tests, so that they go over pages.
const PAGE_ROWS: usize = if cfg!(test) { 4 } else { 1000 };
/// Rows one pass removes from one bucket at most; the rest waits for the next pass.
const MAX_PER_PASS: usize = 10_000;

/// Whether any enabled rule can remove something from a history.
pub(super) fn acts_on_history(config: &Lifecycle) -> bool {
    config.rules.iter().any(|r| r.enabled && (r.noncurrent.is_some() || r.expiration.is_some()))
}

/// Whether a rule that can remove something from a history names `key` by its prefix: the
/// other keys' rows are not even decoded.
fn may_act_on(config: &Lifecycle, key: &str) -> bool {
    config
        .rules
        .iter()
        .any(|r| r.enabled && (r.noncurrent.is_some() || r.expiration.is_some()) && key.starts_with(&r.filter.prefix))
}

/// Whether a delete marker that is the only version of `key` goes: under a rule with
/// ExpiredObjectDeleteMarker, or one whose Expiration is due counted from the marker (S3
/// removes such markers with the Expiration action too).
fn lone_marker_goes(config: &Lifecycle, key: &str, m: &Version, now: i64, day: Duration) -> bool {
    config.rules.iter().filter(|r| r.enabled && r.filter.matches(key, 0, &[])).any(|r| {
        r.expiration.as_ref().is_some_and(|e| {
            e.expired_object_delete_marker == Some(true)
                || e.days.is_some_and(|d| now >= due_after_days(m.modified, d, day))
                || e.date.is_some_and(|d| now >= d.saturating_mul(1_000_000_000))
        })
    })
}

/// The seqs of the rows of one key that the rules remove at `now`.
///
/// A key's latest version is its current file, or, when it has none, its newest row (a
/// delete marker, mostly): that one is never a noncurrent version. Every other row is, and
/// has been since its next newer version was made: for a content version that is its
/// `retired` time; a delete marker's `retired` is when it was made, so it counts from the
/// newer version's time. `NewerNoncurrentVersions` keeps that many noncurrent versions
/// newer than the one judged. A noncurrent version is matched with the tags it kept from
/// when it was current (or was given since), as S3 does.
pub(super) fn doomed(config: &Lifecycle, h: &KeyHistory, now: i64, day: Duration) -> Vec<u64> {
    let mut out = Vec::new();
    let mut newer: Option<i64> = h.current.as_ref().map(|c: &Item| c.modified);
    let (mut noncurrent, mut kept) = (0u32, 0usize);
    for (i, v) in h.rows.iter().enumerate() {
        if i == 0 && h.current.is_none() {
            newer = Some(v.modified);
            kept += 1;
            continue;
        }
        noncurrent = noncurrent.saturating_add(1);
        let since = if v.marker { newer.map_or(v.retired, |n| n.max(v.retired)) } else { v.retired };
        newer = Some(v.modified);
        let goes = config.noncurrent_rule(&h.key, v.size, h.tags_of(v.seq)).is_some_and(|r| {
            r.newer_versions.is_none_or(|n| noncurrent > n)
                && r.days.is_some_and(|d| now >= due_after_days(since, d, day))
        });
        if goes {
            out.push(v.seq);
        } else {
            kept += 1;
        }
    }
    if let Some(first) = h.rows.first()
        && h.current.is_none()
        && first.marker
        && kept == 1
        && lone_marker_goes(config, &h.key, first, now, day)
    {
        out.push(first.seq);
    }
    out
}

impl Storage {
    /// Applies the rules to the history of the bucket folder `bucket`; returns how many
    /// versions and markers went.
    pub(super) async fn expire_history(&self, bucket: u64, config: &Lifecycle, day: Duration) -> Result<usize> {
        let mut from = Some(String::new());
        let mut removed = 0;
        // Old versions' tags are read (a read per row) only for a rule that filters by them.
        let tags = config.rules.iter().any(|r| r.enabled && r.noncurrent.is_some() && !r.filter.tags.is_empty());
        // Bounded: each page moves `from` past at least one key, and a pass stops after
        // MAX_PER_PASS removals.
        while let Some(start) = from.take() {
            if removed >= MAX_PER_PASS {
                break;
            }
            let now = now_nanos();
            let (page, next) = {
                let config = config.clone();
                self.core
                    .db
                    .read(move |t| {
                        let wants = |k: &str| may_act_on(&config, k);
                        let (keys, next) = history_page(t, bucket, &start, PAGE_ROWS, &wants, tags)?;
                        let due: Vec<String> = keys
                            .into_iter()
                            .filter(|h| !doomed(&config, h, now, day).is_empty())
                            .map(|h| h.key)
                            .collect();
                        Ok((due, next))
                    })
                    .await?
            };
            from = next;
            if page.is_empty() {
                continue;
            }
            let config = config.clone();
            let n = self
                .core
                .db
                .write((), move |ctx| {
                    let mut w = crate::meta::txn::W::open(ctx)?;
                    let mut n = 0;
                    for key in &page {
                        let h = w.key_history(bucket, key, tags)?;
                        let seqs = doomed(&config, &h, now, day);
                        n += w.remove_versions(bucket, &h, &seqs)?;
                    }
                    Ok(n)
                })
                .await?;
            removed += n;
        }
        Ok(removed)
    }
}
