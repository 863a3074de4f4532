//! Opening, creating, migrating and refusing formats, on real databases.

use serde::{Deserialize, Serialize};

use super::*;
use crate::meta::db::{Stored, decode, encode};

/// A new store: redb in `dir`, or a new PostgreSQL database. The format is the same on
/// both: its version and keys are rows of META.
fn fresh_db(dir: &std::path::Path, pg: bool) -> Db {
    if pg {
        Db::open_postgres(&crate::tests::pg::database(), 2, |_| {}).unwrap()
    } else {
        Db::open(&dir.join("davit.redb"), 1 << 20, |_| {}).unwrap()
    }
}

crate::tests::pg::on_both!(
    a_new_folder_gets_a_random_data_key_and_opens_again_only_with_its_master_key,
    format_2_migrates_with_its_master_key_as_the_data_key,
    newer_formats_and_format_1_are_refused_with_a_clear_message,
    rewrapping_moves_the_data_key_to_the_new_master_key,
);

fn put_meta(db: &Db, key: &str, value: &[u8]) {
    db.write_sync(|ctx| {
        ctx.txn.open_table(META)?.insert(key, value)?;
        Ok(())
    })
    .unwrap();
}

fn meta(db: &Db, key: &str) -> Option<Vec<u8>> {
    db.read_sync(|txn| Ok(txn.open_table(META)?.get(key)?.map(|v| v.value().to_vec()))).unwrap()
}

fn a_new_folder_gets_a_random_data_key_and_opens_again_only_with_its_master_key(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(dir.path(), pg);
    assert!(is_new(&db).unwrap());
    let data = open(&db, &[1; 32]).unwrap();
    assert!(!is_new(&db).unwrap());
    assert_ne!(data, [1; 32]);
    assert_eq!(meta(&db, FORMAT_KEY).unwrap(), FORMAT_VERSION.to_le_bytes());
    assert_eq!(open(&db, &[1; 32]).unwrap(), data);
    let err = open(&db, &[2; 32]).unwrap_err().to_string();
    assert!(err.contains("master key does not match"), "{err}");
}

fn format_2_migrates_with_its_master_key_as_the_data_key(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(dir.path(), pg);
    put_meta(&db, FORMAT_KEY, &2u32.to_le_bytes());
    put_meta(&db, "key_check", &crypto::format_2_key_check(&[5; 32]));
    // A wrong master key is refused before anything is wrapped, and nothing changes.
    let err = open(&db, &[6; 32]).unwrap_err().to_string();
    assert!(err.contains("master key does not match"), "{err}");
    assert_eq!(meta(&db, FORMAT_KEY).unwrap(), 2u32.to_le_bytes());
    assert!(meta(&db, DATA_KEY).is_none());

    assert_eq!(open(&db, &[5; 32]).unwrap(), [5; 32]);
    assert_eq!(meta(&db, FORMAT_KEY).unwrap(), FORMAT_VERSION.to_le_bytes());
    assert!(meta(&db, "key_check").is_none());
    assert_eq!(open(&db, &[5; 32]).unwrap(), [5; 32]);
}

fn newer_formats_and_format_1_are_refused_with_a_clear_message(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(dir.path(), pg);
    open(&db, &[1; 32]).unwrap();
    put_meta(&db, FORMAT_KEY, &(FORMAT_VERSION + 1).to_le_bytes());
    let err = open(&db, &[1; 32]).unwrap_err();
    assert!(matches!(err, Error::Incompatible(_)));
    let err = err.to_string();
    assert!(err.contains(&format!("format version {}", FORMAT_VERSION + 1)) && err.contains("newer davit"), "{err}");
    put_meta(&db, FORMAT_KEY, &1u32.to_le_bytes());
    let err = open(&db, &[1; 32]).unwrap_err().to_string();
    assert!(err.contains("format version 1") && err.contains("developed"), "{err}");
}

fn rewrapping_moves_the_data_key_to_the_new_master_key(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(dir.path(), pg);
    let data = open(&db, &[1; 32]).unwrap();
    let wrong = db.write_sync(|ctx| rewrap_data_key(ctx.txn, &[9; 32], &[2; 32])).unwrap_err().to_string();
    assert!(wrong.contains("master key does not match"), "{wrong}");
    db.write_sync(|ctx| rewrap_data_key(ctx.txn, &[1; 32], &[2; 32])).unwrap();
    assert_eq!(open(&db, &[2; 32]).unwrap(), data);
    assert!(open(&db, &[1; 32]).is_err());
}

/// A record at its first version, and the same record after it gained a field.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct ThingV1 {
    name: String,
}
crate::meta::db::stored!(ThingV1 = "thing");

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Thing {
    name: String,
    colour: Option<String>,
}

impl Stored for Thing {
    const NAME: &'static str = "thing";
    const VERSION: u8 = 2;
    fn upgrade(version: u8, fields: &[u8]) -> crate::Result<Self> {
        match version {
            1 => {
                let old: ThingV1 = postcard::from_bytes(fields).map_err(|e| Error::internal(format_args!("{e}")))?;
                Ok(Thing { name: old.name, colour: None })
            }
            v => Err(Error::corrupt(format_args!("thing version {v}"))),
        }
    }
}

#[test]
fn a_record_that_gains_a_field_still_reads_its_old_values() {
    let old = encode(&ThingV1 { name: "a".into() });
    assert_eq!(old[0], 1);
    assert_eq!(decode::<Thing>(&old).unwrap(), Thing { name: "a".into(), colour: None });
    let new = encode(&Thing { name: "b".into(), colour: Some("teal".into()) });
    assert_eq!(new[0], 2);
    assert_eq!(decode::<Thing>(&new).unwrap().colour.as_deref(), Some("teal"));
    // A value from a newer davit is refused, saying so.
    let err = decode::<ThingV1>(&new).unwrap_err().to_string();
    assert!(err.contains("newer davit"), "{err}");
}
