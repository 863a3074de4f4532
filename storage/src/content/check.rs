//! The consistency check behind `davit admin check`: every chunk's reference count equals
//! the references to it, every referenced chunk is stored, usage matches the tree, and no
//! chunk file is orphaned.

use crate::meta::kv::Readable;
use std::collections::{HashMap, HashSet};

use crate::Storage;
use crate::content::chunks::ChunkRow;
use crate::crypto::ChunkId;
use crate::error::Result;
use crate::meta::db::{self, CHUNK_DATA, CHUNKS, ITEMS, USAGE};
use crate::meta::model::{Item, Kind};

#[derive(Debug, Default)]
pub struct CheckReport {
    pub items: u64,
    pub chunks: u64,
    pub chunk_files: u64,
    /// Inconsistencies, one line each; empty when all is well.
    pub problems: Vec<String>,
    /// Chunk files no row names (left by a crash; the next start or sweep removes them).
    pub orphans: u64,
    /// Chunk files no row names that wait out the grace period before they are deleted
    /// (when nodes share the stores: see `content::grace`).
    pub waiting: u64,
}

impl Storage {
    /// Reads the whole database and chunk folder; run on a quiet server or offline.
    pub fn check_blocking(&self) -> Result<CheckReport> {
        let files: HashSet<ChunkId> = self.core.backend.list()?.into_iter().collect();
        self.core.db.read_sync(|t| {
            let mut report = CheckReport { chunk_files: files.len() as u64, ..Default::default() };
            let mut refs: HashMap<ChunkId, u64> = HashMap::new();
            let mut usage: HashMap<u64, (u64, u64)> = HashMap::new();
            let mut owners = HashMap::new();
            // A deleted folder's rows wait for the sweeper: they hold references but no usage.
            let detached = crate::meta::subtree::detached_items(t)?;
            // What is in a trash holds references and its bytes (not files) in its owner's
            // usage, but is in no folder's totals.
            let trashed = crate::trash::trashed_items(t)?;
            for e in t.open_table(ITEMS)?.iter()? {
                let item: Item = db::decode(e?.1.value())?;
                report.items += 1;
                owners.insert(item.id, item.owner);
                if item.kind == Kind::File && trashed.contains(&item.id) {
                    usage.entry(item.owner).or_default().0 += item.size;
                    for c in &item.chunks {
                        *refs.entry(c.id).or_default() += 1;
                    }
                } else if item.kind == Kind::File && detached.contains(&item.id) {
                    for c in &item.chunks {
                        *refs.entry(c.id).or_default() += 1;
                    }
                } else if item.kind == Kind::File {
                    let u = usage.entry(item.owner).or_default();
                    u.0 += item.size;
                    u.1 += 1;
                    let total: u64 = item.chunks.iter().map(|c| c.len as u64).sum();
                    if total != item.size {
                        report
                            .problems
                            .push(format!("item {} has size {} but its chunks hold {total}", item.id, item.size));
                    }
                    for c in &item.chunks {
                        *refs.entry(c.id).or_default() += 1;
                    }
                }
            }
            // Unfinished multipart parts hold references and count in their owner's usage.
            let mut upload_owner = HashMap::new();
            check_grants_and_links(t, &owners, &mut report.problems)?;
            let out_of_tree: std::collections::HashSet<u64> = detached.union(&trashed).copied().collect();
            crate::meta::subtree::check_totals(t, &out_of_tree, &mut report.problems)?;
            for e in t.open_table(crate::meta::db::UPLOADS)?.iter()? {
                let up: crate::meta::uploads::Upload = db::decode(e?.1.value())?;
                upload_owner.insert(up.id, up.payer);
            }
            for e in t.open_table(crate::meta::db::PARTS)?.iter()? {
                let (k, v) = e?;
                let part: crate::meta::uploads::Part = db::decode(v.value())?;
                if let Some(owner) = upload_owner.get(&k.value().0) {
                    usage.entry(*owner).or_default().0 += part.size;
                }
                for c in &part.chunks {
                    *refs.entry(c.id).or_default() += 1;
                }
            }
            // Noncurrent versions hold references and count in their owner's usage (bytes,
            // not files: a file is counted once, by its current version).
            for e in t.open_table(crate::meta::db::VERSIONS)?.iter()? {
                let v: crate::versions::Version = db::decode(e?.1.value())?;
                usage.entry(v.owner).or_default().0 += v.size;
                for c in &v.chunks {
                    *refs.entry(c.id).or_default() += 1;
                }
            }
            let data = t.open_table(CHUNK_DATA)?;
            let mut rows = HashSet::new();
            for e in t.open_table(CHUNKS)?.iter()? {
                let (k, v) = e?;
                let id = *k.value();
                let row: ChunkRow = db::decode(v.value())?;
                report.chunks += 1;
                rows.insert(id);
                let counted = refs.get(&id).copied().unwrap_or(0);
                if counted != row.refs {
                    report.problems.push(format!(
                        "chunk {} counts {} references, {counted} found",
                        hex::encode(id),
                        row.refs
                    ));
                }
                let stored = if row.inline { data.get(&id)?.is_some() } else { files.contains(&id) };
                if !stored {
                    report.problems.push(format!("chunk {} is referenced but not stored", hex::encode(id)));
                }
            }
            for id in refs.keys() {
                if !rows.contains(id) {
                    report.problems.push(format!("chunk {} is referenced but has no row", hex::encode(id)));
                }
            }
            for e in t.open_table(USAGE)?.iter()? {
                let (k, v) = e?;
                let found = usage.get(&k.value()).copied().unwrap_or((0, 0));
                if found != v.value() {
                    report.problems.push(format!(
                        "user {} usage is recorded as {:?} (bytes, files) but the tree holds {found:?}",
                        k.value(),
                        v.value()
                    ));
                }
            }
            let grave = t.open_table(crate::meta::db::CHUNK_GRAVE)?;
            for f in files.iter().filter(|f| !rows.contains(*f)) {
                if grave.get(f)?.is_some() {
                    report.waiting += 1;
                } else {
                    report.orphans += 1;
                }
            }
            Ok(report)
        })
    }

    /// The same from async code.
    pub async fn check(&self) -> Result<CheckReport> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.check_blocking()).await?
    }
}

/// Every grant and live link points at an existing item of its owner, and every index row
/// matches its record.
fn check_grants_and_links(
    t: &crate::meta::kv::ReadTxn,
    owners: &HashMap<u64, u64>,
    problems: &mut Vec<String>,
) -> Result<()> {
    use crate::meta::db::{
        LINK_TOKENS, LINKS, LINKS_BY_ITEM, LINKS_BY_OWNER, SHARES, SHARES_BY_GRANTEE, SHARES_BY_ITEM, SHARES_BY_OWNER,
    };
    use crate::meta::model::{Link, LinkState, Share};
    let mut shares = HashMap::new();
    for e in t.open_table(SHARES)?.iter()? {
        let s: Share = db::decode(e?.1.value())?;
        if owners.get(&s.item) != Some(&s.owner) {
            problems.push(format!("share {} names item {} which its owner {} does not hold", s.id, s.item, s.owner));
        }
        shares.insert(s.id, s);
    }
    let mut indexed = 0usize;
    for e in t.open_table(SHARES_BY_ITEM)?.iter()? {
        let (k, v) = e?;
        let (item, grantee) = k.value();
        indexed += 1;
        if !shares.get(&v.value()).is_some_and(|s| s.item == item && s.grantee == grantee) {
            problems.push(format!("share index by item ({item}, {grantee}) does not match share {}", v.value()));
        }
    }
    for (table, by_grantee) in [(SHARES_BY_GRANTEE, true), (SHARES_BY_OWNER, false)] {
        for e in t.open_table(table)?.iter()? {
            let (k, v) = e?;
            let (who, id) = k.value();
            indexed += 1;
            let ok = shares
                .get(&id)
                .is_some_and(|s| s.item == v.value() && who == if by_grantee { s.grantee } else { s.owner });
            if !ok {
                problems.push(format!("share index ({who}, {id}) does not match its share"));
            }
        }
    }
    if indexed != 3 * shares.len() {
        problems.push(format!("{} shares have {indexed} index rows, {} expected", shares.len(), 3 * shares.len()));
    }
    let mut links = HashMap::new();
    for e in t.open_table(LINKS)?.iter()? {
        let l: Link = db::decode(e?.1.value())?;
        if l.state != LinkState::Deleted && owners.get(&l.item) != Some(&l.owner) {
            problems.push(format!("link {} names item {} which its owner {} does not hold", l.id, l.item, l.owner));
        }
        links.insert(l.id, l);
    }
    for e in t.open_table(LINK_TOKENS)?.iter()? {
        let (k, v) = e?;
        if links.get(&v.value()).is_none_or(|l| &l.token_hash != k.value()) {
            problems.push(format!("link token row does not match link {}", v.value()));
        }
    }
    for e in t.open_table(LINKS_BY_ITEM)?.iter()? {
        let (k, _) = e?;
        let (item, id) = k.value();
        if !links.get(&id).is_some_and(|l| l.item == item && l.state != LinkState::Deleted) {
            problems.push(format!("link index by item ({item}, {id}) does not match its link"));
        }
    }
    for e in t.open_table(LINKS_BY_OWNER)?.iter()? {
        let (k, _) = e?;
        let (owner, id) = k.value();
        if links.get(&id).is_none_or(|l| l.owner != owner) {
            problems.push(format!("link index by owner ({owner}, {id}) does not match its link"));
        }
    }
    Ok(())
}
