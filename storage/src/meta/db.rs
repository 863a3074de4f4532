//! The metadata database: its tables, the versioned value codec, and the two ways in. The
//! engine (redb, or PostgreSQL) is behind the seam in [`crate::meta::kv`].
//!
//! Engine calls are synchronous (redb's commits fsync; PostgreSQL's wait for the network),
//! so no engine call runs on an async worker: reads go through `spawn_blocking`.
//!
//! On redb every change goes to one writer thread. That thread also gives us group commit:
//! changes that arrive while a commit is being made to disk queue up and share the next
//! transaction and its fsync, and each is acknowledged only after that commit returns. A
//! change that refuses (quota, precondition) makes the batch start again without it, so a
//! refusal never leaves part of a change behind.
//!
//! PostgreSQL gets the same writer thread, each batch in one SERIALIZABLE transaction. Changes
//! on one node then never collide with each other: concurrent transactions would, since
//! nearly every change of a drive reads and rewrites the same few rows (the id counter, the
//! owner's usage), and SERIALIZABLE lets one of two such writers commit. Measured with 16
//! small-file writes at a time, one transaction each, most runs failed to serialize again
//! and again. What is left are collisions with other nodes: the batch is then run again
//! (a change may already run more than once, so rules are written for it).

use std::any::Any;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{mpsc, oneshot};

use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::meta::kv::{Commit, Engine};
pub use crate::meta::kv::{ReadTxn, Readable, Table, WriteTxn};

/// The store's file in the data folder.
pub const FILE: &str = "davit.redb";

/// Where the metadata lives.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum MetaStore {
    /// `davit.redb` in the data folder: one node.
    #[default]
    Redb,
    /// A PostgreSQL database (`postgres://USER:PASSWORD@HOST:PORT/DB`) that any number of
    /// nodes share, through a pool of up to `pool_size` connections per node.
    Postgres { url: String, pool_size: usize },
}

impl std::fmt::Debug for MetaStore {
    /// Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaStore::Redb => f.write_str("Redb"),
            MetaStore::Postgres { url, pool_size } => f
                .debug_struct("Postgres")
                .field("url", &crate::meta::kv::pg::shown_url(url))
                .field("pool_size", pool_size)
                .finish(),
        }
    }
}

pub const META: Table<&str, &[u8]> = Table::new("meta");
pub const USERS: Table<u64, &[u8]> = Table::new("users");
pub const USERNAMES: Table<&str, u64> = Table::new("usernames");
pub const EMAILS: Table<&str, u64> = Table::new("emails");
pub const ITEMS: Table<u64, &[u8]> = Table::new("items");
/// (parent item, sort key) -> child item. The sort key is the name, with `/` appended for a
/// folder, so the byte order of this table is the byte order of S3 keys below the parent.
pub const CHILDREN: Table<(u64, &str), u64> = Table::new("children");
pub const CHUNKS: Table<&ChunkId, &[u8]> = Table::new("chunks");
/// Sealed content of small chunks kept inside the database instead of a file of their own.
pub const CHUNK_DATA: Table<&ChunkId, &[u8]> = Table::new("chunk_data");
/// chunk id -> (state, since): a chunk file no row names, waiting out the grace (`content::grace`).
pub const CHUNK_GRAVE: Table<&ChunkId, (u64, u64)> = Table::new("chunk_grave");
/// user id -> (logical bytes, files)
pub const USAGE: Table<u64, (u64, u64)> = Table::new("usage");
pub const ACCESS_KEYS: Table<&str, &[u8]> = Table::new("access_keys");
pub const UPLOADS: Table<u64, &[u8]> = Table::new("uploads");
/// (upload, part number) -> part.
pub const PARTS: Table<(u64, u32), &[u8]> = Table::new("parts");
pub const SESSIONS: Table<u64, &[u8]> = Table::new("sessions");
/// SHA-256 of a refresh token -> session id.
pub const REFRESH: Table<&[u8; 32], u64> = Table::new("refresh");
/// (user, purpose) -> one-time code record.
pub const CODES: Table<(u64, &str), &[u8]> = Table::new("codes");
pub const APP_PASSWORDS: Table<u64, &[u8]> = Table::new("app_passwords");
pub const SHARES: Table<u64, &[u8]> = Table::new("shares");
/// (item, grantee) -> share: one grant per item and user.
pub const SHARES_BY_ITEM: Table<(u64, u64), u64> = Table::new("shares_by_item");
/// (grantee, share) -> item.
pub const SHARES_BY_GRANTEE: Table<(u64, u64), u64> = Table::new("shares_by_grantee");
/// (owner, share) -> item.
pub const SHARES_BY_OWNER: Table<(u64, u64), u64> = Table::new("shares_by_owner");
pub const LINKS: Table<u64, &[u8]> = Table::new("links");
/// SHA-256 of a link token -> link.
pub const LINK_TOKENS: Table<&[u8; 32], u64> = Table::new("link_tokens");
/// (owner, link) -> item.
pub const LINKS_BY_OWNER: Table<(u64, u64), u64> = Table::new("links_by_owner");
/// (item, link) -> owner.
pub const LINKS_BY_ITEM: Table<(u64, u64), u64> = Table::new("links_by_item");
pub const APP_PASSWORD_HASHES: Table<&[u8; 32], u64> = Table::new("app_password_hashes");
/// WebDAV locks (see `tree::locks`): lock id -> record `LockRow`.
pub const LOCKS: Table<u64, &[u8]> = Table::new("locks");
/// (locked item, lock) -> 1 for a deep lock, 0 for a lock on the item alone.
pub const LOCKS_BY_ITEM: Table<(u64, u64), u64> = Table::new("locks_by_item");
/// (folder above the locked item, lock) -> locked item: the locks below a folder.
pub const LOCKS_BELOW: Table<(u64, u64), u64> = Table::new("locks_below");
/// (expiry in Unix nanoseconds, lock) -> locked item: locks with a timeout, soonest first.
pub const LOCK_EXPIRY: Table<(u64, u64), u64> = Table::new("lock_expiry");
/// share -> 1: the grantee may make download links of what the grant lets them read
/// (`access::links`). A row of a share that no longer exists means nothing.
pub const SHARE_RESHARE: Table<u64, u64> = Table::new("share_reshare");
/// link -> the grantee who made it, for a link made through a grant (ends with the grant).
pub const LINK_MAKERS: Table<u64, u64> = Table::new("link_makers");
/// (grantee who made it, link) -> item.
pub const LINKS_BY_MAKER: Table<(u64, u64), u64> = Table::new("links_by_maker");
/// share -> the Unix nanosecond at which the grant ends (grants without an end have no row).
/// A row of a share that no longer exists means nothing.
pub const SHARE_EXPIRY: Table<u64, u64> = Table::new("share_expiry");
/// (time in Unix nanoseconds, random tag) -> record `Event`: the audit trail (`crate::audit`).
pub const AUDIT: Table<(u64, u64), &[u8]> = Table::new("audit");
/// (user, event time) -> the event's tag: the events a user did or was the subject of.
pub const AUDIT_BY_USER: Table<(u64, u64), u64> = Table::new("audit_by_user");
/// Folders deleted but not yet swept (see `tree::detach`): detached root -> its owner.
pub const DETACHED: Table<u64, u64> = Table::new("detached");
/// (bytes, files) below each folder, so a delete knows what it frees without walking the
/// folder (see `meta::subtree`). An absent row means "not known" (folders of older davits).
pub const FOLDER_TOTALS: Table<u64, (u64, u64)> = Table::new("folder_totals");
/// The id S3 clients see for a multipart upload (random, unguessable) -> the upload's id.
/// Kept after completion as long as its `uploads_done` row, so a repeated completion finds it.
pub const UPLOAD_TOKENS: Table<&str, u64> = Table::new("upload_tokens");
/// upload id -> its S3 id (UTF-8). Uploads begun before the table have none: their S3 id is
/// the number itself.
pub const UPLOAD_TOKEN_OF: Table<u64, &[u8]> = Table::new("upload_token_of");
/// upload id -> record `DoneUpload`: a completed upload, so that completing it again answers
/// as the first completion did (S3 does). Removed with expired uploads.
pub const UPLOADS_DONE: Table<u64, &[u8]> = Table::new("uploads_done");
/// bucket folder id -> record `BucketCors`: the bucket's CORS rules (`meta::cors`). A row of
/// a folder that no longer exists means nothing (ids are never reused).
pub const BUCKET_CORS: Table<u64, &[u8]> = Table::new("bucket_cors");
/// (64-bit hash of the bucket's name, bucket folder id) -> owner: the buckets of that name
/// with CORS rules, for a preflight, which names a bucket but no user. Checked against the
/// folder's current name and place on use, so a renamed or deleted folder's row means nothing.
pub const CORS_BY_NAME: Table<(u64, u64), u64> = Table::new("cors_by_name");
/// item -> record `TagSet`: an object's S3 tags, or a bucket's (its folder's); no row, no
/// tags (`meta::tags`). Removed with the item, copied with it.
pub const TAGS: Table<u64, &[u8]> = Table::new("tags");
/// multipart upload -> record `TagSet`: the tags the object gets at completion.
pub const UPLOAD_TAGS: Table<u64, &[u8]> = Table::new("upload_tags");
/// item -> record `PartSums`: the checksum each part of a multipart object was sent with,
/// and the ETag of the content they describe (a row whose ETag is not the item's is stale).
pub const PART_SUMS: Table<u64, &[u8]> = Table::new("part_sums");
/// bucket folder -> record `Lifecycle`: the bucket's lifecycle rules (`crate::lifecycle`).
pub const LIFECYCLE: Table<u64, &[u8]> = Table::new("lifecycle");
/// (bucket owner, bucket folder) -> 1 Enabled, 2 Suspended: S3 versioning of a top-level
/// folder (`crate::versions`). No row: never versioned.
pub const VERSIONING: Table<(u64, u64), u64> = Table::new("versioning");
/// (bucket folder, `<key>\0<16 hex digits of !seq>`) -> record `Version`: the noncurrent
/// versions and delete markers of a versioned bucket's keys, newest first within a key.
pub const VERSIONS: Table<(u64, &str), &[u8]> = Table::new("versions");
/// file item -> (version seq, 1 when it is the `null` version): the version id of a current
/// file written into a versioned bucket. A row of an item that no longer exists means nothing.
pub const CURRENT_VERSIONS: Table<u64, (u64, u64)> = Table::new("current_versions");
/// Serving nodes of a shared store (`crate::nodes`): node id -> (last heartbeat, start), Unix
/// seconds.
pub const NODES: Table<&str, (u64, u64)> = Table::new("nodes");
/// bucket folder -> record `ObjectLock`: the bucket has S3 object lock (set when it was
/// made) and this default retention (`crate::versions::lock`).
pub const OBJECT_LOCK: Table<u64, &[u8]> = Table::new("object_lock");
/// (bucket folder, version seq) -> record `Retention`: a version's retention mode and date.
pub const RETENTION: Table<(u64, u64), &[u8]> = Table::new("retention");
/// (bucket folder, version seq) -> the version's key: a legal hold is on the version.
pub const LEGAL_HOLD: Table<(u64, u64), &str> = Table::new("legal_hold");
/// (owner, item id) -> record `TrashRow`: what a WebDAV or REST delete put in the owner's
/// trash (`crate::trash`). The item's rows stay, out of every tree, until restored or purged.
pub const TRASH: Table<(u64, u64), &[u8]> = Table::new("trash");
/// (deleted at, Unix nanoseconds, item id) -> owner: the trash in the order it expires.
pub const TRASH_EXPIRY: Table<(u64, u64), u64> = Table::new("trash_expiry");
/// (bucket folder, version seq) -> record `TagSet`: the tags a noncurrent version kept from
/// when it was current (`crate::versions`); no row: none.
pub const VERSION_TAGS: Table<(u64, u64), &[u8]> = Table::new("version_tags");

/// Every table above, for operations on the whole store (`meta::copy`, behind `davit admin
/// migrate`). A table left out here would be silently left behind by a migration: the test
/// `meta::copy::tests::every_table_is_listed` compares this list with the definitions above.
/// A bucket's folder -> who else may read it (`access::s3_policy::Audience`, 1 every user,
/// 2 anyone); no row: its owner and its grants only.
pub const S3_AUDIENCE: Table<u64, u64> = Table::new("s3_audience");
/// Bucket name -> the folder readable to everyone by that name (one per name, server-wide).
pub const S3_AUDIENCE_NAMES: Table<&str, u64> = Table::new("s3_audience_names");

pub(crate) static TABLES: &[&dyn crate::meta::copy::AnyTable] = &[
    &META,
    &USERS,
    &USERNAMES,
    &EMAILS,
    &ITEMS,
    &CHILDREN,
    &CHUNKS,
    &CHUNK_DATA,
    &CHUNK_GRAVE,
    &USAGE,
    &ACCESS_KEYS,
    &UPLOADS,
    &PARTS,
    &SESSIONS,
    &REFRESH,
    &CODES,
    &APP_PASSWORDS,
    &SHARES,
    &SHARES_BY_ITEM,
    &SHARES_BY_GRANTEE,
    &SHARES_BY_OWNER,
    &LINKS,
    &LINK_TOKENS,
    &LINKS_BY_OWNER,
    &LINKS_BY_ITEM,
    &APP_PASSWORD_HASHES,
    &LOCKS,
    &LOCKS_BY_ITEM,
    &LOCKS_BELOW,
    &LOCK_EXPIRY,
    &SHARE_RESHARE,
    &LINK_MAKERS,
    &LINKS_BY_MAKER,
    &SHARE_EXPIRY,
    &AUDIT,
    &AUDIT_BY_USER,
    &DETACHED,
    &FOLDER_TOTALS,
    &UPLOAD_TOKENS,
    &UPLOAD_TOKEN_OF,
    &UPLOADS_DONE,
    &BUCKET_CORS,
    &CORS_BY_NAME,
    &S3_AUDIENCE,
    &S3_AUDIENCE_NAMES,
    &TAGS,
    &UPLOAD_TAGS,
    &PART_SUMS,
    &LIFECYCLE,
    &VERSIONING,
    &VERSIONS,
    &CURRENT_VERSIONS,
    &NODES,
    &OBJECT_LOCK,
    &RETENTION,
    &LEGAL_HOLD,
    &TRASH,
    &TRASH_EXPIRY,
    &VERSION_TAGS,
];

/// A type kept in a table. Its value is its version byte, then its fields in order
/// (postcard, which is positional: a field cannot be added without a new version).
///
/// To add a field: keep the old struct as `FooV1`, bump `VERSION`, and make `upgrade` read
/// version 1 into the new type. Old values then decode as they are, and are written at the
/// new version the next time they change (see docs/format.md).
pub trait Stored: Serialize + DeserializeOwned {
    /// What error messages call it.
    const NAME: &'static str;
    /// The version this davit writes.
    const VERSION: u8;
    /// Reads a value written at an older `version`.
    fn upgrade(version: u8, _fields: &[u8]) -> Result<Self> {
        Err(Error::corrupt(format_args!("a stored {} has version {version}, which no davit wrote", Self::NAME)))
    }
}

/// Implements [`Stored`] for types that are still at their first version.
macro_rules! stored {
    ($($ty:ty = $name:literal),* $(,)?) => {$(
        impl $crate::meta::db::Stored for $ty {
            const NAME: &'static str = $name;
            const VERSION: u8 = 1;
        }
    )*};
}
pub(crate) use stored;

pub fn encode<T: Stored>(value: &T) -> Vec<u8> {
    let mut out = vec![T::VERSION];
    out.extend(postcard::to_stdvec(value).expect("serialisable value"));
    out
}

pub fn decode<T: Stored>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&v, fields)) if v == T::VERSION => postcard::from_bytes(fields)
            .map_err(|e| Error::internal(format_args!("undecodable stored {}: {e}", T::NAME))),
        Some((&v, fields)) if v < T::VERSION => T::upgrade(v, fields),
        Some((&v, _)) => Err(Error::Incompatible(format!(
            "a stored {} has version {v}, newer than this davit reads ({}): it was written by a newer davit",
            T::NAME,
            T::VERSION
        ))),
        None => Err(Error::internal(format_args!("empty stored {}", T::NAME))),
    }
}

/// A unit of work for the writer thread. `run` may be called more than once (when another
/// change of its batch refuses), so it takes what it needs by reference.
type RunFn = Box<dyn FnMut(&mut WriteCtx<'_>) -> Result<Box<dyn Any + Send>> + Send>;
type ReplyFn = Box<dyn FnOnce(Result<Box<dyn Any + Send>>) + Send>;

struct Job {
    run: RunFn,
    reply: ReplyFn,
}

enum Msg {
    Job(Job),
    /// Stop after the changes queued before it; answered once the writer has stopped.
    Close(std::sync::mpsc::Sender<()>),
}

/// What a change sees: the batch's transaction, and where to note chunks whose last
/// reference it removed, so the collector can delete their files once the batch commits.
pub struct WriteCtx<'a> {
    pub txn: &'a WriteTxn,
    pub freed: Vec<ChunkId>,
    /// What the change did to the chunk store's figures, applied once it commits.
    pub delta: crate::metrics::Delta,
}

#[derive(Clone)]
pub struct Db {
    db: Arc<Engine>,
    jobs: mpsc::UnboundedSender<Msg>,
    figures: Arc<crate::metrics::Figures>,
}

const MAX_BATCH: usize = 512;

/// How many times a PostgreSQL change (or batch) is run before its serialization failures
/// become an error, and the longest pause between two runs.
const WRITE_TRIES: u32 = 20;
const MAX_PAUSE: Duration = Duration::from_millis(200);

impl Db {
    /// Opens (or creates) the redb database and starts its writer thread. `on_freed`
    /// receives, after each commit, the chunks whose last reference that commit removed.
    pub fn open(path: &Path, cache_bytes: usize, on_freed: impl Fn(Vec<ChunkId>) + Send + 'static) -> Result<Self> {
        Db::start(Engine::open(path, cache_bytes)?, on_freed)
    }

    /// A store on an engine made by a test.
    #[cfg(test)]
    pub(in crate::meta) fn on_engine(engine: Engine) -> Result<Self> {
        Db::start(engine, |_| {})
    }

    fn start(engine: Engine, on_freed: impl Fn(Vec<ChunkId>) + Send + 'static) -> Result<Self> {
        let db = Arc::new(engine);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer_db = db.clone();
        let figures = Arc::new(crate::metrics::Figures::default());
        let writer_figures = figures.clone();
        std::thread::Builder::new()
            .name("davit-db-writer".into())
            .spawn(move || writer_loop(writer_db, rx, &writer_figures, on_freed))
            .map_err(Error::from)?;
        Ok(Db { db, jobs: tx, figures })
    }

    /// Opens the store `meta` names: redb at `path` (created private when missing), or
    /// PostgreSQL (`path` unused). Also says whether the store is new (no format yet: it
    /// holds nothing a key could have sealed), which decides whether a missing master key
    /// may be generated.
    pub fn open_store(
        meta: &MetaStore,
        path: &Path,
        cache_bytes: usize,
        on_freed: impl Fn(Vec<ChunkId>) + Send + 'static,
    ) -> Result<(Self, bool)> {
        let db = match meta {
            MetaStore::Redb => {
                if !path.exists() {
                    // The store would create it with the process umask; it takes an empty file as new.
                    crate::perms::create_private_file(path)?;
                }
                Db::open(path, cache_bytes, on_freed)?
            }
            MetaStore::Postgres { url, pool_size } => Db::open_postgres(url, *pool_size, on_freed)?,
        };
        let fresh = crate::meta::format::is_new(&db)?;
        Ok((db, fresh))
    }

    /// Connects to PostgreSQL, creating or migrating its schema (not the data format: that
    /// is `format::open`, the same on every engine).
    pub fn open_postgres(
        url: &str,
        pool_size: usize,
        on_freed: impl Fn(Vec<ChunkId>) + Send + 'static,
    ) -> Result<Self> {
        Db::start(Engine::open_postgres(url, pool_size)?, on_freed)
    }

    /// The chunk store's figures, kept by the commits (see `crate::metrics`).
    pub(crate) fn figures(&self) -> &crate::metrics::Figures {
        &self.figures
    }

    /// Whether the metadata lives in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.db.is_postgres()
    }

    /// See `kv::Engine::auth_generation`: while it is `Some` and unchanged, nothing a
    /// credential check reads has changed on any node (up to the engine's bound).
    pub(crate) fn auth_generation(&self) -> Option<u64> {
        self.db.auth_generation()
    }

    /// Runs a read on the blocking pool, in one consistent snapshot.
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&ReadTxn) -> Result<T> + Send + 'static) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read()?;
            f(&txn)
        })
        .await?
    }

    /// A read for synchronous callers already off the async workers.
    pub fn read_sync<T>(&self, f: impl FnOnce(&ReadTxn) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_read()?;
        f(&txn)
    }

    /// Submits a change and waits until the batch holding it has committed to disk.
    /// `keep` is dropped on the writer thread after the commit (pins that must outlive it).
    pub async fn write<T: Send + 'static, K: Send + 'static>(
        &self,
        keep: K,
        mut f: impl FnMut(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            run: Box::new(move |ctx| f(ctx).map(|v| Box::new(v) as Box<dyn Any + Send>)),
            reply: Box::new(move |r| {
                let _ = tx.send(r.map(|v| *v.downcast::<T>().expect("job output type")));
                drop(keep);
            }),
        };
        self.jobs.send(Msg::Job(job)).map_err(|_| Error::internal("database writer has stopped"))?;
        rx.await.map_err(|_| Error::internal("database writer dropped a change"))?
    }

    /// Lets the changes already queued commit, then stops the writer thread; later changes
    /// fail.
    pub fn close(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.jobs.send(Msg::Close(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// For the offline admin commands: a change applied at once in its own transaction (on
    /// PostgreSQL run again when it fails to serialize, so `f` may run more than once).
    pub fn write_sync<T>(&self, f: impl FnMut(&mut WriteCtx<'_>) -> Result<T>) -> Result<(T, Vec<ChunkId>)> {
        let (out, freed, delta) = write_retrying(&self.db, f)?;
        self.figures.apply(delta);
        Ok((out, freed))
    }
}

/// Runs `f` in a transaction of its own and commits it, running it again (after a short
/// random pause, growing) as long as the engine says that can cure the failure. On redb
/// that never happens: it runs once.
fn write_retrying<T>(
    db: &Engine,
    mut f: impl FnMut(&mut WriteCtx<'_>) -> Result<T>,
) -> Result<(T, Vec<ChunkId>, crate::metrics::Delta)> {
    let mut pause = Duration::from_millis(2);
    for _ in 0..WRITE_TRIES {
        let txn = db.begin_write()?;
        let mut ctx = WriteCtx { txn: &txn, freed: Vec::new(), delta: Default::default() };
        let out = f(&mut ctx);
        let freed = std::mem::take(&mut ctx.freed);
        let delta = ctx.delta;
        // Checked before the closure's result: a rule may have turned the engine's failure
        // into a refusal of its own.
        if !txn.must_retry() {
            let out = match out {
                // The rule may have read the engine's failure as a refusal ("not found");
                // it was the engine that failed.
                Err(e) if txn.engine_failed() => {
                    return Err(Error::internal(format_args!(
                        "PostgreSQL failed during a change (which then said: {e})"
                    )));
                }
                out => out?,
            };
            if let Commit::Done = txn.commit()? {
                return Ok((out, freed, delta));
            }
        }
        // Dropped uncommitted (if not committed): rolled back.
        back_off(&mut pause);
    }
    Err(Error::internal(format_args!(
        "PostgreSQL could not serialize the change with concurrent ones in {WRITE_TRIES} tries"
    )))
}

fn writer_loop(
    db: Arc<Engine>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    figures: &crate::metrics::Figures,
    on_freed: impl Fn(Vec<ChunkId>),
) {
    let mut closing = None;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Job(job) => batch.push(job),
                Msg::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        run_batch(&db, batch, figures, &on_freed);
        if let Some(done) = closing.take() {
            rx.close();
            // Let go of the engine before answering, so that once the closer drops its own
            // handles the file is free at once (a store opened again right after, by a
            // restore or a test, must not find it held by this thread).
            drop(db);
            tracing::debug!("database writer stopped");
            let _ = done.send(());
            return;
        }
    }
}

/// Sleeps before a change runs again, a little longer each time; the jitter keeps two
/// writers that collided from colliding again in step.
fn back_off(pause: &mut Duration) {
    let jitter = u16::from_le_bytes(crate::crypto::random_bytes::<2>());
    std::thread::sleep(pause.mul_f64(0.5 + f64::from(jitter) / 65_536.0));
    *pause = (*pause * 2).min(MAX_PAUSE);
}

fn run_batch(db: &Engine, mut batch: Vec<Job>, figures: &crate::metrics::Figures, on_freed: &impl Fn(Vec<ChunkId>)) {
    let (mut tries, mut pause) = (0, Duration::from_millis(2));
    while !batch.is_empty() {
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => return fail_all(batch, &e),
        };
        let mut ctx = WriteCtx { txn: &txn, freed: Vec::new(), delta: Default::default() };
        let mut outputs = Vec::with_capacity(batch.len());
        let mut refused = None;
        for (i, job) in batch.iter_mut().enumerate() {
            match (job.run)(&mut ctx) {
                Ok(v) => outputs.push(v),
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
        }
        let freed = std::mem::take(&mut ctx.freed);
        let delta = ctx.delta;
        // PostgreSQL could not serialize the batch with another node's writes (whatever the
        // change that met the failure made of it): the whole batch runs again.
        if txn.must_retry() {
            drop(txn);
            tries += 1;
            if tries >= WRITE_TRIES {
                let e = Error::internal(format_args!(
                    "PostgreSQL could not serialize the change with concurrent ones in {WRITE_TRIES} tries"
                ));
                return fail_all(batch, &e);
            }
            back_off(&mut pause);
            continue;
        }
        if let Some((i, e)) = refused {
            // The refusal may be the engine's failure that the change read as its own.
            let e = if txn.engine_failed() && !matches!(e, Error::Unavailable(_)) {
                Error::internal(format_args!("PostgreSQL failed during a change (which then said: {e})"))
            } else {
                e
            };
            drop(txn); // aborts: the refused change and its batch-mates are rolled back
            let job = batch.remove(i);
            (job.reply)(Err(e));
            continue;
        }
        match txn.commit() {
            Ok(Commit::Retry) => {
                tries += 1;
                if tries >= WRITE_TRIES {
                    let e = Error::internal("PostgreSQL could not serialize a commit with concurrent ones");
                    return fail_all(batch, &e);
                }
                back_off(&mut pause);
                continue;
            }
            Ok(Commit::Done) => {
                figures.apply(delta);
                if !freed.is_empty() {
                    on_freed(freed);
                }
                for (job, out) in batch.into_iter().zip(outputs) {
                    (job.reply)(Ok(out));
                }
            }
            Err(e) => fail_all(batch, &e),
        }
        return;
    }
}

fn fail_all(batch: Vec<Job>, e: &Error) {
    // An engine out of reach (already logged where it was seen) is told to every change of
    // the batch as what it is, so clients are asked to try again rather than told of a failure.
    if let Error::Unavailable(m) = e {
        for job in batch {
            (job.reply)(Err(Error::Unavailable(m.clone())));
        }
        return;
    }
    // A full disk, likewise (logged where it was seen): 507 to each, not a failure.
    if let Error::StorageFull(m) = e {
        for job in batch {
            (job.reply)(Err(Error::StorageFull(m.clone())));
        }
        return;
    }
    tracing::error!(error = ?e, "database commit failed");
    for job in batch {
        (job.reply)(Err(Error::internal(format_args!("commit failed: {e:?}"))));
    }
}

/// Opens every table once so that later read transactions find them.
pub fn create_tables(txn: &WriteTxn) -> Result<()> {
    txn.open_table(META)?;
    txn.open_table(USERS)?;
    txn.open_table(USERNAMES)?;
    txn.open_table(EMAILS)?;
    txn.open_table(ITEMS)?;
    txn.open_table(CHILDREN)?;
    txn.open_table(CHUNKS)?;
    txn.open_table(CHUNK_DATA)?;
    txn.open_table(CHUNK_GRAVE)?;
    txn.open_table(USAGE)?;
    txn.open_table(ACCESS_KEYS)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(UPLOADS)?;
    txn.open_table(PARTS)?;
    txn.open_table(REFRESH)?;
    txn.open_table(CODES)?;
    txn.open_table(APP_PASSWORDS)?;
    txn.open_table(APP_PASSWORD_HASHES)?;
    txn.open_table(SHARES)?;
    txn.open_table(SHARES_BY_ITEM)?;
    txn.open_table(SHARES_BY_GRANTEE)?;
    txn.open_table(SHARES_BY_OWNER)?;
    txn.open_table(LINKS)?;
    txn.open_table(LINK_TOKENS)?;
    txn.open_table(LINKS_BY_OWNER)?;
    txn.open_table(LINKS_BY_ITEM)?;
    txn.open_table(LOCKS)?;
    txn.open_table(LOCKS_BY_ITEM)?;
    txn.open_table(LOCKS_BELOW)?;
    txn.open_table(LOCK_EXPIRY)?;
    txn.open_table(SHARE_RESHARE)?;
    txn.open_table(LINK_MAKERS)?;
    txn.open_table(LINKS_BY_MAKER)?;
    txn.open_table(SHARE_EXPIRY)?;
    txn.open_table(AUDIT)?;
    txn.open_table(AUDIT_BY_USER)?;
    txn.open_table(DETACHED)?;
    txn.open_table(FOLDER_TOTALS)?;
    txn.open_table(UPLOAD_TOKENS)?;
    txn.open_table(UPLOAD_TOKEN_OF)?;
    txn.open_table(UPLOADS_DONE)?;
    txn.open_table(BUCKET_CORS)?;
    txn.open_table(CORS_BY_NAME)?;
    txn.open_table(S3_AUDIENCE)?;
    txn.open_table(S3_AUDIENCE_NAMES)?;
    txn.open_table(TAGS)?;
    txn.open_table(UPLOAD_TAGS)?;
    txn.open_table(PART_SUMS)?;
    txn.open_table(LIFECYCLE)?;
    txn.open_table(VERSIONING)?;
    txn.open_table(VERSIONS)?;
    txn.open_table(CURRENT_VERSIONS)?;
    txn.open_table(NODES)?;
    txn.open_table(OBJECT_LOCK)?;
    txn.open_table(RETENTION)?;
    txn.open_table(LEGAL_HOLD)?;
    txn.open_table(TRASH)?;
    txn.open_table(TRASH_EXPIRY)?;
    txn.open_table(VERSION_TAGS)?;
    Ok(())
}
