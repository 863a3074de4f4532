//! `davit admin migrate` as the real process: an embedded deployment copied into a new
//! folder, verified, and a second run into it refused. (The moves to PostgreSQL and Garage
//! and back are tested in the storage crate, where both harnesses live.)

use crate::support::admin;

#[test]
fn migrate_copies_a_folder_verifies_it_and_refuses_a_full_target() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let (ok, _, err) = admin(&src, &["user", "add", "alice", "--password-stdin"], "password123\n");
    assert!(ok, "{err}");
    let (ok, _, err) = admin(&src, &["key", "add", "alice"], "");
    assert!(ok, "{err}");

    let to = format!("redb:{}", dst.display());
    let (ok, out, err) = admin(&src, &["migrate", "--to-meta", &to, "--to-chunks", "local"], "");
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("59 tables") && out.contains("verified"), "{out}");
    assert!(out.contains("master key copied to"), "{out}");
    assert_eq!(
        std::fs::read_to_string(src.join("master.key")).unwrap(),
        std::fs::read_to_string(dst.join("master.key")).unwrap()
    );
    // The copy opens by itself and holds the account.
    let (ok, out, err) = admin(&dst, &["user", "list"], "");
    assert!(ok && out.contains("alice"), "{out}\n{err}");
    let (ok, out, err) = admin(&dst, &["check"], "");
    assert!(ok && out.contains("consistent"), "{out}\n{err}");

    let (ok, _, err) = admin(&src, &["migrate", "--to-meta", &to, "--to-chunks", "local"], "");
    assert!(!ok);
    assert!(err.contains("already holds") && err.lines().count() == 1, "{err}");
}
