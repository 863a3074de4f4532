//! Master-key rotation and live backups on real stores (redb, and PostgreSQL).

use std::time::Duration;

use super::*;
use crate::error::{Error, Result};
use crate::model::Role;
use crate::tests::{body, config, pseudo_random, read_all, user};
use crate::{Storage, StorageConfig, WriteOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// `f` again while the redb file is still held by a store this test just closed (its
/// writer thread lets go a moment after `close`); bounded.
fn when_free<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    for _ in 0..50 {
        match f() {
            Err(Error::Incompatible(m)) if m.contains("another process") => {
                std::thread::sleep(Duration::from_millis(100))
            }
            out => return out,
        }
    }
    f()
}

const DATA_LEN: usize = 300 * 1024 + 17;

fn populate(c: &StorageConfig) {
    let s = Storage::open(c.clone()).unwrap();
    runtime().block_on(async {
        let alice = user(&s, "alice", Role::User, None).await;
        s.write(&alice, "/big.bin", body(&pseudo_random(DATA_LEN, 9)), WriteOptions::default()).await.unwrap();
        s.write(&alice, "/small.txt", body(b"inline"), WriteOptions::default()).await.unwrap();
    });
    s.close();
}

fn rotation_rewraps_the_data_key_and_refuses_bad_keys_first() {
    let dir = tempfile::tempdir().unwrap();
    crate::tests::pg::next_store_is_new();
    let mut c = config(dir.path());
    populate(&c);
    let new = "22".repeat(32);

    // Refused before anything changes: malformed, the current key, a wrong current key.
    for (bad, why) in [("abc", "64 hex"), (&*"zz".repeat(32), "64 hex"), (&*"11".repeat(32), "the current one")] {
        let e = when_free(|| rotate_master_key(&c, bad)).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
    let mut wrong = c.clone();
    wrong.master_key = Some("33".repeat(32));
    let e = when_free(|| rotate_master_key(&wrong, &new)).unwrap_err().to_string();
    assert!(e.contains("master key does not match"), "{e}");

    assert_eq!(when_free(|| rotate_master_key(&c, &new)).unwrap(), Rotated::Rewrapped { written: None });
    let old = when_free(|| Storage::open(c.clone())).err().expect("the old key is refused").to_string();
    assert!(old.contains("master key does not match") && old.contains("rotate-master-key"), "{old}");

    c.master_key = Some(new);
    let s = when_free(|| Storage::open(c.clone())).unwrap();
    runtime().block_on(async {
        let alice = crate::model::Principal::of(&s.find_user("alice").await.unwrap());
        assert!(read_all(&s, &alice, "/big.bin", None).await.unwrap() == pseudo_random(DATA_LEN, 9));
        assert_eq!(read_all(&s, &alice, "/small.txt", None).await.unwrap(), b"inline");
        let check = s.check().await.unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
    });
    s.close();
}

#[test]
fn rotation() {
    rotation_rewraps_the_data_key_and_refuses_bad_keys_first();
}

crate::tests::pg::also_on_postgres!(rotation_rewraps_the_data_key_and_refuses_bad_keys_first);
