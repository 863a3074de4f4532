//! What the admin commands print, offline and through a server alike: the REST API's JSON
//! shapes, as JSON (`--json`) or as the plain text below.

use anyhow::bail;
use serde_json::Value;

pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("-")
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// A list of users ({id, username, email, role, status, quota}).
pub fn users(list: &[Value], as_json: bool) {
    if as_json {
        json(&Value::Array(list.to_vec()));
        return;
    }
    println!("{:<6} {:<24} {:<11} {:<9} {:<14} email", "id", "username", "role", "status", "quota");
    for u in list {
        let quota = n(u, "quota");
        println!(
            "{:<6} {:<24} {:<11} {:<9} {:<14} {}",
            n(u, "id"),
            s(u, "username"),
            s(u, "role"),
            s(u, "status"),
            if quota == 0 { "unlimited".to_owned() } else { quota.to_string() },
            s(u, "email")
        );
    }
}

/// One user after a change, with what was done ("created", "disabled", …).
pub fn user(done: &str, u: &Value, as_json: bool) {
    if as_json {
        json(u);
        return;
    }
    println!("{done} user {} (id {}, role {}, status {})", s(u, "username"), n(u, "id"), s(u, "role"), s(u, "status"));
}

/// A new S3 key: {access_key_id, secret_access_key}.
pub fn key(k: &Value, as_json: bool) {
    if as_json {
        json(k);
        return;
    }
    println!("AWS_ACCESS_KEY_ID={}", s(k, "access_key_id"));
    println!("AWS_SECRET_ACCESS_KEY={}", s(k, "secret_access_key"));
}

pub fn stats(v: &Value, as_json: bool) {
    if as_json {
        json(v);
        return;
    }
    println!(
        "{} users, {} files, {} bytes stored for {} bytes of files (dedup ratio {})",
        n(v, "users"),
        n(v, "files"),
        n(v, "stored_bytes"),
        n(v, "logical_bytes"),
        v["dedup_ratio"].as_f64().unwrap_or(1.0)
    );
}

/// The check's result; an error (non-zero exit) when it found problems.
pub fn check(v: &Value, as_json: bool) -> anyhow::Result<()> {
    let problems: Vec<&str> =
        v["problems"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if as_json {
        json(v);
    } else {
        println!(
            "{} items, {} chunks ({} files), {} orphaned chunk files (removed by the next sweep), \
             {} unreferenced chunk files waiting out the grace period",
            n(v, "items"),
            n(v, "chunks"),
            n(v, "chunk_files"),
            n(v, "orphans"),
            n(v, "waiting")
        );
        for p in &problems {
            eprintln!("{p}");
        }
    }
    if !problems.is_empty() {
        bail!("{} inconsistencies found", problems.len());
    }
    if !as_json {
        println!("consistent");
    }
    Ok(())
}

pub fn backup(v: &Value, to: &std::path::Path, as_json: bool) {
    if as_json {
        json(v);
        return;
    }
    println!("{} tables, {} rows", n(v, "tables"), n(v, "rows"));
    println!(
        "{} chunks referenced: {} copied ({} bytes), {} already there, {} no longer needed removed",
        n(v, "chunks_referenced"),
        n(v, "chunks_copied"),
        n(v, "chunk_bytes"),
        n(v, "chunks_present"),
        n(v, "chunks_removed")
    );
    println!("backup finished in {} (on the server's host)", to.display());
}
