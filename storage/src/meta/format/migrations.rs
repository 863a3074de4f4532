//! Every step from one format to the next, in order. Each runs inside the transaction that
//! opens the folder (see `format::open`), so it may read and rewrite any table; it must not
//! touch chunk files, which the migrated folder still needs should the transaction abort.
//!
//! Rules: every format change ships its step here and a fixture folder of the previous
//! format under tests/fixtures/ (docs/format.md, "Changing the format").

use crate::meta::kv::{Readable, WriteTxn};

use super::DATA_KEY;
use crate::crypto::{self, KEY_LEN};
use crate::error::{Error, Result};
use crate::meta::db::META;

pub(super) struct Migration {
    /// The format it starts from; it ends at `from + 1`.
    pub from: u32,
    /// For the log.
    pub what: &'static str,
    pub run: fn(&WriteTxn, &[u8; KEY_LEN]) -> Result<()>,
}

const MIGRATIONS: &[Migration] = &[
    Migration { from: 2, what: "the master key becomes the wrapped data key", run: wrap_master_as_data_key },
    Migration { from: 3, what: "every folder gets its totals", run: count_folder_totals },
    Migration {
        from: 4,
        what: "S3's versions, object lock, policies, CORS, tags and lifecycle get their tables",
        run: s3_tables,
    },
    Migration { from: 5, what: "the trash and the tags of noncurrent versions get their tables", run: trash_tables },
];

/// Format 6 adds the per-user trash (what WebDAV and REST deletes keep for `trash_days`) and
/// the tag sets of noncurrent versions. Nothing existing is rewritten: the new tables start
/// empty and `format::open` makes them in this same transaction. The version still moves
/// because a format-5 davit would count the chunks a trashed file still holds as leaks (its
/// item row is reachable from no folder) and never collect the trash, and would drop the tags
/// of versions without knowing they exist.
fn trash_tables(_: &WriteTxn, _: &[u8; KEY_LEN]) -> Result<()> {
    Ok(())
}

/// Format 5 adds S3's bucket features in the core: versions and delete markers, object lock
/// (retention, legal holds), buckets readable by name (policies/ACLs), CORS rules, tags,
/// lifecycle rules, upload tokens; and the heartbeats of nodes on PostgreSQL.
/// Nothing existing is rewritten: the new tables start empty and `format::open` makes them in
/// this same transaction. The version still moves because a format-4 davit would ignore them
/// and so destroy what they protect: it would overwrite and delete without keeping versions,
/// destroy versions under retention or a legal hold, and count the chunks noncurrent versions
/// hold as leaks.
fn s3_tables(_: &WriteTxn, _: &[u8; KEY_LEN]) -> Result<()> {
    Ok(())
}

/// Format 4 keeps (bytes, files) below every folder (`meta::subtree`), so that a delete
/// knows what it frees without walking the folder: counted here once for every folder.
/// (A folder still without totals would only be slower to delete, never wrong.)
fn count_folder_totals(txn: &WriteTxn, _: &[u8; KEY_LEN]) -> Result<()> {
    crate::meta::subtree::count_all_totals(txn)
}

/// The steps from `found` to the current format.
pub(super) fn from(found: u32) -> impl Iterator<Item = &'static Migration> {
    MIGRATIONS.iter().filter(move |m| m.from >= found)
}

/// Format 2 derived every subkey from the master key and kept a check value of it. Format 3
/// derives them from a data key: this folder's data key is its master key, so no chunk is
/// re-sealed or renamed and no secret re-sealed; only the wrapped key is added.
fn wrap_master_as_data_key(txn: &WriteTxn, master: &[u8; KEY_LEN]) -> Result<()> {
    let mut meta = txn.open_table(META)?;
    let check = meta.get("key_check")?.map(|v| v.value().to_vec()).unwrap_or_default();
    // Without this a wrong master key would be wrapped as the data key, and every read after
    // would fail instead of this one start.
    if !crypto::ct_eq(&check, &crypto::format_2_key_check(master)) {
        return Err(Error::Incompatible(
            "the master key does not match the one this data folder was created with".into(),
        ));
    }
    meta.insert(DATA_KEY, crypto::wrap_data_key(master, master).as_slice())?;
    meta.remove("key_check")?;
    Ok(())
}

#[test]
fn the_steps_lead_from_the_oldest_format_to_the_current_one() {
    use super::{FORMAT_VERSION, OLDEST_FORMAT};
    let froms: Vec<u32> = MIGRATIONS.iter().map(|m| m.from).collect();
    let expected: Vec<u32> = (OLDEST_FORMAT..FORMAT_VERSION).collect();
    assert_eq!(froms, expected);
    assert_eq!(from(2).count() as u32, FORMAT_VERSION - 2);
    assert_eq!(from(FORMAT_VERSION).count(), 0);
}
