//! `davit admin migrate`: a stopped deployment copied onto other stores, then verified.

use anyhow::{Context, bail};
use clap::Args;
use davit_storage::audit::Event;
use davit_storage::{ChunkStore, MetaStore, MigrateTarget, S3ChunkConfig};

use crate::config::{Config, redact_url};

pub(super) const MIGRATE_ABOUT: &str = "\
Copy this deployment (the usual --data-dir, --meta and --chunks settings name it; every davit \
on it must be stopped) into an empty metadata store and a chunk store elsewhere, then verify: \
every table row by row, then the target opened as a server would and every file of every \
user read back on both sides and compared, then the consistency check of `admin check`. \
Exits non-zero on any difference.

Nothing is re-encrypted: the target keeps the same master key. When the source's key is \
<data-dir>/master.key and the target has a data folder (redb:DIR, local:DIR), the file is \
copied there (mode 0600); with PostgreSQL and a bucket, give every node that key (for \
example --master-key-file <data-dir>/master.key). A key given with --master-key-file or \
DAVIT_MASTER_KEY is not written anywhere: keep giving it.

Up:   davit admin --data-dir ./davit-data migrate --to-meta postgres://davit:PASSWORD@db:5432/davit \
--to-chunks s3://davit-chunks --to-chunks-endpoint http://garage:3900 --to-chunks-region garage
Home: davit admin --meta postgres://… --chunks s3://davit-chunks --chunks-endpoint … --master-key-file KEY \
--data-dir /tmp/node migrate --to-meta redb:/srv/davit-data --to-chunks local

The target's S3 credentials come from DAVIT_TO_CHUNKS_ACCESS_KEY_ID and \
DAVIT_TO_CHUNKS_SECRET_ACCESS_KEY. Chunks the target bucket already holds are not copied \
again, so an interrupted run can be repeated (into an emptied metadata store).";

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Target metadata store: redb:DIR (a new data folder) or postgres://USER:PASSWORD@HOST:PORT/DB
    /// (an empty database)
    #[arg(long, value_name = "redb:DIR|postgres://…")]
    pub to_meta: String,
    /// Target chunk store: local (the chunks/ of the redb:DIR folder), local:DIR, or
    /// s3://BUCKET[/PREFIX]
    #[arg(long, value_name = "local[:DIR]|s3://BUCKET[/PREFIX]")]
    pub to_chunks: String,
    /// The target cluster's S3 endpoint [default: https://s3.amazonaws.com]
    #[arg(long, value_name = "URL")]
    pub to_chunks_endpoint: Option<String>,
    /// The target cluster's region [default: us-east-1]
    #[arg(long, value_name = "REGION")]
    pub to_chunks_region: Option<String>,
}

/// The target the arguments name; `grace` is the grace period it gets when shared.
pub fn migrate_target(
    a: &MigrateArgs,
    grace: std::time::Duration,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<MigrateTarget> {
    let (meta, meta_dir) = match a.to_meta.trim() {
        m if m.starts_with("postgres://") || m.starts_with("postgresql://") => {
            (MetaStore::Postgres { url: m.to_owned(), pool_size: 8 }, None)
        }
        m => match m.strip_prefix("redb:") {
            Some(dir) if !dir.is_empty() => (MetaStore::Redb, Some(std::path::PathBuf::from(dir))),
            _ => bail!("--to-meta: redb:DIR or a postgres:// URL, not `{}`", redact_url(m)),
        },
    };
    let (chunks, chunk_dir) = match a.to_chunks.trim() {
        "local" => (ChunkStore::Local, None),
        c if c.starts_with("local:") && c.len() > 6 => (ChunkStore::Local, Some(std::path::PathBuf::from(&c[6..]))),
        c => {
            let Some(rest) = c.strip_prefix("s3://") else {
                bail!("--to-chunks: local, local:DIR or s3://BUCKET[/PREFIX], not `{c}`")
            };
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("--to-chunks: s3://BUCKET[/PREFIX] needs a bucket");
            }
            let mut s3 = S3ChunkConfig::new(
                bucket,
                a.to_chunks_endpoint.clone().unwrap_or_else(|| "https://s3.amazonaws.com".into()),
            );
            s3.prefix = prefix.trim_matches('/').to_owned();
            if let Some(r) = &a.to_chunks_region {
                s3.region = r.clone();
            }
            s3.access_key_id = env("DAVIT_TO_CHUNKS_ACCESS_KEY_ID")
                .context("--to-chunks s3://… needs DAVIT_TO_CHUNKS_ACCESS_KEY_ID")?;
            s3.secret_access_key = env("DAVIT_TO_CHUNKS_SECRET_ACCESS_KEY")
                .context("--to-chunks s3://… needs DAVIT_TO_CHUNKS_SECRET_ACCESS_KEY")?;
            (ChunkStore::S3(s3), None)
        }
    };
    let data_dir = match (meta_dir, chunk_dir, &chunks) {
        (Some(m), Some(c), _) if m != c => {
            bail!("--to-chunks: local chunks live in the target's data folder: use `local` with --to-meta redb:DIR")
        }
        (Some(d), _, _) | (None, Some(d), _) => Some(d),
        (None, None, ChunkStore::Local) => bail!("--to-chunks local needs a folder: local:DIR, or --to-meta redb:DIR"),
        (None, None, ChunkStore::S3(_)) => None,
    };
    // One node over redb and its own folder frees chunks at once; anything shared waits.
    let shared = !matches!(meta, MetaStore::Redb) || !matches!(chunks, ChunkStore::Local);
    Ok(MigrateTarget { meta, chunks, data_dir, chunk_grace: shared.then_some(grace) })
}

/// `davit admin migrate`: runs without opening the source first (the copy opens it itself).
pub fn migrate(config: &Config, args: &MigrateArgs) -> anyhow::Result<()> {
    let source = config.storage()?;
    let grace = config.stores.chunk_grace.unwrap_or(davit_storage::DEFAULT_CHUNK_GRACE);
    let target = migrate_target(args, grace, |name| std::env::var(name).ok().filter(|v| !v.is_empty()))?;
    let r = davit_storage::migrate(&source, &target)?;
    println!("{} tables, {} rows copied", r.tables, r.rows);
    println!(
        "{} chunks referenced: {} copied ({} bytes), {} already there",
        r.chunks_referenced, r.chunks_copied, r.chunk_bytes, r.chunks_present
    );
    println!("{} files verified ({} bytes)", r.files_verified, r.bytes_verified);
    println!("target: {} items, {} chunks ({} files)", r.check.items, r.check.chunks, r.check.chunk_files);
    match (&r.master_key_written, &source.master_key, &target.data_dir) {
        (Some(path), _, _) => println!("master key copied to {}", path.display()),
        (None, Some(_), _) => println!("the target uses the master key you gave: keep giving it"),
        (None, None, None) => println!(
            "the target uses the master key {}: give it to every node (--master-key-file)",
            source.data_dir.join("master.key").display()
        ),
        (None, None, Some(_)) => println!("the target folder already holds the master key"),
    }
    if !r.problems.is_empty() {
        for p in &r.problems {
            eprintln!("{p}");
        }
        bail!("{} differences between the source and the target", r.problems.len());
    }
    // Recorded in the target, where the deployment goes on (its copy of the trail ends with
    // the migration).
    let mut tc = source.clone();
    let scratch = target.data_dir.is_none().then(|| {
        std::env::temp_dir().join(format!(
            "davit-migrate-audit-{}",
            davit_storage::crypto::random_string(b"abcdefghijklmnopqrstuvwxyz", 8)
        ))
    });
    tc.meta = target.meta.clone();
    tc.chunks = target.chunks.clone();
    tc.chunk_grace = target.chunk_grace;
    if let Some(dir) = target.data_dir.as_ref().or(scratch.as_ref()) {
        tc.data_dir = dir.clone();
    }
    if r.master_key_written.is_none() && source.master_key.is_none() {
        // The target uses the source folder's key (see the messages above).
        tc.master_key =
            Some(std::fs::read_to_string(source.data_dir.join("master.key")).context("reading the master key")?);
    }
    let event = Event::new("migrated")
        .with("from_meta", source_name(&source))
        .with("to_meta", redact_url(&args.to_meta))
        .with("to_chunks", redact_url(&args.to_chunks))
        .with("rows", r.rows);
    super::audited(tc, event);
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    println!("verified");
    Ok(())
}

/// The source's metadata store, in words without a password.
fn source_name(source: &davit_storage::StorageConfig) -> String {
    match &source.meta {
        MetaStore::Postgres { url, .. } => redact_url(url),
        _ => format!("redb:{}", source.data_dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    const GRACE: Duration = Duration::from_secs(60);

    fn target(meta: &str, chunks: &str, env: &[(&str, &str)]) -> anyhow::Result<MigrateTarget> {
        let args = MigrateArgs {
            to_meta: meta.into(),
            to_chunks: chunks.into(),
            to_chunks_endpoint: Some("http://127.0.0.1:3900".into()),
            to_chunks_region: Some("garage".into()),
        };
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        migrate_target(&args, GRACE, move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    const KEYS: &[(&str, &str)] =
        &[("DAVIT_TO_CHUNKS_ACCESS_KEY_ID", "GK1"), ("DAVIT_TO_CHUNKS_SECRET_ACCESS_KEY", "s3cret")];

    #[test]
    fn embedded_targets() {
        let t = target("redb:/srv/d", "local", &[]).unwrap();
        assert_eq!(t.meta, MetaStore::Redb);
        assert_eq!(t.chunks, ChunkStore::Local);
        assert_eq!(t.data_dir, Some(PathBuf::from("/srv/d")));
        assert_eq!(t.chunk_grace, None, "one node over its own folder frees at once");
        assert_eq!(target("redb:/srv/d", "local:/srv/d", &[]).unwrap().data_dir, Some(PathBuf::from("/srv/d")));
        let e = target("redb:/srv/d", "local:/elsewhere", &[]).unwrap_err().to_string();
        assert!(e.contains("data folder"), "{e}");
    }

    #[test]
    fn distributed_targets() {
        let t = target("postgres://davit:pw@127.0.0.1:5432/davit", "s3://bucket/some/prefix/", KEYS).unwrap();
        assert!(matches!(&t.meta, MetaStore::Postgres { url, .. } if url.ends_with("/davit")));
        let ChunkStore::S3(s3) = &t.chunks else { panic!("{:?}", t.chunks) };
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("bucket", "some/prefix"));
        assert_eq!((s3.endpoint.as_str(), s3.region.as_str()), ("http://127.0.0.1:3900", "garage"));
        assert_eq!((s3.access_key_id.as_str(), s3.secret_access_key.as_str()), ("GK1", "s3cret"));
        assert_eq!(t.data_dir, None);
        assert_eq!(t.chunk_grace, Some(GRACE));
        // PostgreSQL with a local folder, and redb with a bucket: both shared, so both wait.
        let t = target("postgresql://h/db", "local:/srv/node", &[]).unwrap();
        assert_eq!((t.data_dir, t.chunk_grace), (Some(PathBuf::from("/srv/node")), Some(GRACE)));
        assert_eq!(target("redb:/srv/d", "s3://b", KEYS).unwrap().chunk_grace, Some(GRACE));
    }

    #[test]
    fn refusals_say_why_and_hide_passwords() {
        let e = target("mysql://u:hunter2@h/db", "local", &[]).unwrap_err().to_string();
        assert!(e.contains("--to-meta") && !e.contains("hunter2"), "{e}");
        let e = target("redb:", "local", &[]).unwrap_err().to_string();
        assert!(e.contains("--to-meta"), "{e}");
        let e = target("postgres://h/db", "local", &[]).unwrap_err().to_string();
        assert!(e.contains("needs a folder"), "{e}");
        let e = target("postgres://h/db", "s3://b", &[]).unwrap_err().to_string();
        assert!(e.contains("DAVIT_TO_CHUNKS_ACCESS_KEY_ID"), "{e}");
        let e = target("postgres://h/db", "s3:///x", KEYS).unwrap_err().to_string();
        assert!(e.contains("needs a bucket"), "{e}");
        let e = target("postgres://h/db", "ftp://b", KEYS).unwrap_err().to_string();
        assert!(e.contains("--to-chunks"), "{e}");
    }
}
