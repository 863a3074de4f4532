//! davit's storage core: every rule of the system, and no HTTP.
//!
//! Front ends hold a [`Storage`] and call it with the caller's [`Principal`]; every access
//! decision is made here, so WebDAV, S3 and REST obey the same rules.

// The core's parts. `meta` holds the metadata (store, transactions, stored types, names,
// format) and depends on no rule; `content` stores file bytes; `tree` is the file
// operations; `access` decides who reaches what; `auth` proves who one is. Dependencies
// point from rules down to `meta`, never back.
mod access;
pub mod audit;
pub mod auth;
mod content;
pub mod crypto;
mod error;
pub mod lifecycle;
mod meta;
pub mod metrics;
mod migrate;
mod nodes;
pub mod ops;
pub mod perms;
pub mod s3cfg;
#[cfg(test)]
mod tests;
mod trash;
mod tree;
mod versions;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

// The crate's public module paths from before the folders, kept for the front ends.
pub use access::policy;
pub use access::{s3_grants, s3_policy, s3_view};
pub use content::{chunks, costs};
pub use meta::db::MetaStore;
pub use meta::{db, format, model, names};
pub use tree::{locks, multipart};

pub use access::links::{LinkInfo, LinkProof, NewLink, OpenLink};
pub use access::sharing::ShareInfo;
pub use auth::Authenticated;
pub use auth::admin::{Admin, Stats};
pub use auth::app_passwords::AppPassword;
pub use auth::codes::Purpose;
pub use auth::flows::{AccountMail, LoginOutcome};
pub use auth::keys::KeySecret;
pub use auth::sessions::Tokens;
pub use auth::throttle::ClientAddr;
pub use auth::users::NewUser;
pub use content::check::CheckReport;
pub use content::ingest::{INLINE_MAX, MAX_CHUNK};
pub use content::read::ByteStream;
pub use content::s3::S3ChunkConfig;
pub use error::{Error, Internal, Missing, Result, What};
pub use migrate::{MigrateReport, MigrateTarget, migrate};
pub use model::{AccessKey, Item, Kind, Link, LinkState, Principal, Role, Scope, Share, Status, Usage, User};
pub use multipart::{CombineParts, PartOptions};
pub use trash::{DEFAULT_TRASH_DAYS, TrashEntry};
pub use tree::listing::{KeyListing, ListQuery};
pub use tree::tagging;
pub use tree::tagging::TagTarget;
pub use tree::{Conditions, FileRead, LateHeaders, ObjectCopy, WriteOptions};
pub use versions::{
    LockMode, LockPeriod, LockState, MARKER_TAGS, OBJECT_LOCK_REFUSAL, ObjectLock, Retention, Version, VersionInfo,
    VersionListing, VersionLock, VersionQuery, Versioning, version_id,
};

use chunks::{ChunkBackend, Collector, LocalDir, Pins};
use crypto::{KEY_LEN, Keys};
use db::Db;

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Hex master key given by the operator; otherwise `master.key` in the data folder,
    /// generated on first start.
    pub master_key: Option<String>,
    /// The metadata store's page cache. The engine's default is 1 GiB; the server must stay under 100 MiB.
    pub cache_bytes: usize,
    /// Where the metadata lives: redb in the data folder (the default), or PostgreSQL.
    pub meta: MetaStore,
    /// Quota given to new accounts, in bytes (0 = unlimited).
    pub default_quota: u64,
    /// Largest file accepted, in bytes (0 = unlimited).
    pub max_file_size: u64,
    /// Per-role upload rules (the server-wide size limit is `max_file_size`).
    pub policy: policy::Policy,
    /// How often unreferenced chunk files are swept.
    pub sweep_interval: Duration,
    /// The longest a link may live, whatever its maker asks.
    pub link_max_lifetime: Duration,
    /// None: one node, whose unreferenced chunk files are deleted at once, guarded by
    /// in-memory pins. Some(g): several nodes share the metadata and the chunks, and a chunk
    /// file is deleted only g after its last reference went (see `content::grace`); every
    /// node must use the same g. [`DEFAULT_CHUNK_GRACE`] is the binary's default.
    pub chunk_grace: Option<Duration>,
    /// Where chunks are kept.
    pub chunks: ChunkStore,
    /// A mailed code alone signs in (`POST /auth/login/code`); see `auth::flows`.
    pub login_by_code: bool,
    /// A bucket may be made readable to anyone, unsigned (S3 `public-read`,
    /// `--s3-public-read`); off: refused, and buckets made so earlier are not.
    pub s3_public_read: bool,
    /// Where audit lines go (events are stored in any case).
    pub audit_log: audit::AuditLog,
    /// How long audit events are kept in the store.
    pub audit_retention: Duration,
    /// How often buckets' lifecycle rules are applied (`lifecycle`); None: never (tests that
    /// run passes themselves).
    pub lifecycle_interval: Option<Duration>,
    /// How long a lifecycle "day" lasts: a day, but in tests.
    pub lifecycle_day: Duration,
    /// Days a WebDAV or REST delete is kept in its owner's trash (`trash`); 0: deletes are
    /// final.
    pub trash_days: u32,
    /// How long a trash "day" lasts: a day, but in tests.
    pub trash_day: Duration,
    /// Whether this process removes expired trash. The server does; an offline admin
    /// command does not, as it cannot know the `--trash-days` the server was given (by flag
    /// or environment) and would otherwise remove what the server still keeps.
    pub trash_collect: bool,
    /// Opened only to be read, as `migrate` and `restore` open the source of a copy and the
    /// copy while they verify it: no chunk is written or deleted, and nothing runs in the
    /// background (sweeps, collection, expiry, the rows of deleted folders), so both sides
    /// stay exactly as copied. What the source's server left unfinished, the copy's server
    /// finishes when it starts. The database is still opened for writing (an older format is
    /// migrated): `restore` gives it a copy of the backup's.
    pub passive: bool,
}

/// Where sealed chunks are kept: the data folder's `chunks/`, or a bucket of an
/// S3-compatible cluster (then with a bounded read cache in the data folder's `cache/`).
/// With S3, `Storage::open` blocks on the cluster: call it outside any runtime (as the binary
/// does) or on a blocking thread, never on an async worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ChunkStore {
    #[default]
    Local,
    S3(S3ChunkConfig),
}

impl ChunkStore {
    /// The backend the configuration names, ready for use (the bucket checked or created).
    /// Opened passive (see `StorageConfig::passive`), a local folder is taken as it is
    /// (nothing made, synced or swept) and every write or delete is refused.
    fn open(&self, data_dir: &Path, passive: bool) -> Result<Arc<dyn ChunkBackend>> {
        if passive {
            let inner: Arc<dyn ChunkBackend> = match self {
                ChunkStore::Local => Arc::new(LocalDir::at(data_dir)),
                other => other.open(data_dir, false)?,
            };
            return Ok(Arc::new(chunks::ReadOnly(inner)));
        }
        Ok(match self {
            ChunkStore::Local => Arc::new(LocalDir::open(data_dir)?),
            ChunkStore::S3(c) if c.cache_bytes == 0 => Arc::new(content::s3::S3Chunks::open(c)?),
            ChunkStore::S3(c) => {
                let s3 = content::s3::S3Chunks::open(c)?;
                Arc::new(content::cache::CachedBackend::open(s3, data_dir, c.cache_bytes)?)
            }
        })
    }
}

/// The grace period of several nodes: 6 hours. It must be longer than any single read takes
/// (a reader is not counted anywhere: a file it is reading is safe for g after it was
/// replaced) and twice as long as any single write (an upload must commit within g/2 of its
/// first chunk, or it is refused). Hours cover a multi-gigabyte upload or download over a
/// slow link, and the cost of a long grace is only that freed space comes back later.
pub const DEFAULT_CHUNK_GRACE: Duration = Duration::from_secs(6 * 3600);

impl ChunkStore {
    /// The same store without a read cache in front: for a copy, which reads each chunk
    /// once, and its verification, which must read the store itself.
    fn uncached(&self) -> ChunkStore {
        match self {
            ChunkStore::S3(c) => ChunkStore::S3(S3ChunkConfig { cache_bytes: 0, ..c.clone() }),
            ChunkStore::Local => ChunkStore::Local,
        }
    }
}

impl StorageConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StorageConfig {
            data_dir: data_dir.into(),
            master_key: None,
            cache_bytes: 32 * 1024 * 1024,
            meta: MetaStore::Redb,
            default_quota: 0,
            max_file_size: 0,
            policy: policy::Policy::default(),
            sweep_interval: Duration::from_secs(600),
            link_max_lifetime: Duration::from_secs(30 * 24 * 3600),
            chunk_grace: None,
            chunks: ChunkStore::Local,
            login_by_code: true,
            s3_public_read: false,
            audit_log: audit::AuditLog::Off,
            audit_retention: audit::DEFAULT_RETENTION,
            lifecycle_interval: None,
            lifecycle_day: Duration::from_secs(24 * 3600),
            trash_days: trash::DEFAULT_TRASH_DAYS,
            trash_day: Duration::from_secs(24 * 3600),
            trash_collect: true,
            passive: false,
        }
    }
}

/// What every part of the core shares.
pub(crate) struct Core {
    pub db: Db,
    pub keys: Keys,
    pub backend: Arc<dyn ChunkBackend>,
    pub pins: Arc<Pins>,
    pub collector: Arc<Collector>,
    /// Removes the rows of deleted folders after the delete (`tree::detach`).
    pub detached: Arc<tree::detach::Sweeper>,
    pub config: StorageConfig,
    pub auth_cache: auth::cache::AuthCache,
    /// S3 access keys as the store last answered (see `KeyCache`).
    pub key_cache: auth::keys::KeyCache,
    pub throttle: auth::throttle::Throttle,
    /// Every argon2 run, a few at a time (see `Hasher`).
    pub hasher: auth::users::Hasher,
    /// Registrations admitted and not yet completed (see `admit_registration`).
    pub registrations: Arc<tokio::sync::Semaphore>,
    /// Chunks being sealed and written at once, across every write (see `ingest`).
    pub chunk_slots: Arc<tokio::sync::Semaphore>,
    /// The large writes in the stages now (see `Streams`).
    pub streams: content::ingest::Streams,
    /// HS256 key of access tokens, kept in META so every node signs alike (see `sessions`).
    pub jwt_key: Vec<u8>,
    /// Where audit lines go.
    pub audit: audit::Sink,
    /// Whether any tag or lifecycle rule may exist (see `lifecycle::ExtrasSeen`).
    pub extras: lifecycle::ExtrasSeen,
}

/// The handle front ends hold. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    core: Arc<Core>,
}

const MASTER_KEY_FILE: &str = "master.key";
const DB_FILE: &str = meta::db::FILE;
/// Where earlier davits kept the access-token key; moved into META at open (see `sessions`).
const JWT_KEY_FILE: &str = "jwt.key";

impl Storage {
    /// Opens the data folder, creating it on first use, and sweeps chunks a crash left.
    pub fn open(config: StorageConfig) -> Result<Self> {
        // Only the owner may enter the data folder (see `perms`).
        perms::private_dir(&config.data_dir)
            .map_err(|e| Error::internal_from(format_args!("the data folder {}", config.data_dir.display()), e))?;
        // Passive opens are the restore's own, and its check of what it wrote.
        if !config.passive && config.data_dir.join(ops::backup::RESTORE_UNFINISHED).exists() {
            return Err(Error::Incompatible(format!(
                "{} is a restore that did not finish ({} is there): remove the folder and run the restore again",
                config.data_dir.display(),
                ops::backup::RESTORE_UNFINISHED
            )));
        }
        let (freed_tx, freed_rx) = std::sync::mpsc::channel::<Vec<crypto::ChunkId>>();
        let (db, fresh) =
            Db::open_store(&config.meta, &config.data_dir.join(DB_FILE), config.cache_bytes, move |ids| {
                let _ = freed_tx.send(ids);
            })?;
        let master = load_master_key(&config, fresh)?;
        let backend = config.chunks.open(&config.data_dir, config.passive)?;
        let pins = Arc::new(Pins::default());

        // Folders made before this davit may hold secrets others could read.
        for name in [DB_FILE, JWT_KEY_FILE, MASTER_KEY_FILE] {
            let path = config.data_dir.join(name);
            if path.exists() {
                perms::tighten_logged(&path);
            }
        }
        let data_key = format::open(&db, &master).map_err(|e| ops::rotate::explain_refusal(e, &config.data_dir))?;
        let keys = Keys::derive(&data_key);
        metrics::load(&db)?;
        content::grace::record_mode(&db, config.chunk_grace)?;
        let jwt_key = auth::sessions::load_jwt_key(&db, &keys, &config.data_dir.join(JWT_KEY_FILE))?;
        let collector = Collector::start(db.clone(), backend.clone(), pins.clone());
        // Chunks freed by commits go to the collector.
        let c2 = collector.clone();
        std::thread::Builder::new()
            .name("davit-freed".into())
            .spawn(move || {
                while let Ok(ids) = freed_rx.recv() {
                    c2.offer(ids);
                }
            })
            .map_err(Error::from)?;

        // With several nodes, files no row names may be another node's upload in progress:
        // only the grace collector, started below, may delete them.
        if config.chunk_grace.is_none() && !config.passive {
            let swept = chunks::sweep(&db, backend.as_ref(), &pins)?;
            if swept > 0 {
                tracing::info!(swept, "removed chunk files no committed file references");
            }
        }
        let audit = audit::Sink::open(&config.audit_log)?;
        let trash_keep = config.trash_collect.then(|| config.trash_day * config.trash_days);
        let detached = if config.passive {
            tree::detach::Sweeper::idle()
        } else {
            tree::detach::Sweeper::start(db.clone(), collector.clone(), trash_keep, config.trash_day)?
        };
        let extras = lifecycle::ExtrasSeen::load(&db)?;
        let core = Arc::new(Core {
            extras,
            audit,
            detached,
            db,
            keys,
            backend,
            pins,
            collector,
            config,
            auth_cache: Default::default(),
            key_cache: Default::default(),
            throttle: Default::default(),
            hasher: Default::default(),
            registrations: Arc::new(tokio::sync::Semaphore::new(auth::flows::REGISTRATIONS_AT_ONCE)),
            chunk_slots: Arc::new(tokio::sync::Semaphore::new(content::ingest::CHUNK_SLOTS)),
            streams: Default::default(),
            jwt_key,
        });
        if core.config.passive {
            return Ok(Storage { core });
        }
        match core.config.chunk_grace {
            Some(grace) => content::grace::start(&core, grace)?,
            None => start_periodic_sweep(&core),
        }
        audit::start_expiry(&core)?;
        if core.config.chunk_grace.is_some() {
            lifecycle::watch_extras(&core)?;
        }
        if let Some(every) = core.config.lifecycle_interval {
            lifecycle::start(&core, every, core.config.lifecycle_day)?;
        }
        Ok(Storage { core })
    }

    pub fn data_dir(&self) -> &Path {
        &self.core.config.data_dir
    }

    /// Finishes queued changes and stops the writer; later calls fail.
    pub fn close(&self) {
        self.core.db.close();
    }

    /// Finishes deleted folders, then runs the sweep of unreferenced chunk files now; with
    /// several nodes, it deletes only what is past its grace period.
    pub async fn sweep(&self) -> Result<usize> {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || {
            // Expired trash first, then deleted folders (the trash's among them): the chunks
            // only they still hold are then free too.
            if core.config.trash_collect {
                trash::collect(&core.db, &core.collector, core.config.trash_day * core.config.trash_days)?;
            }
            tree::detach::sweep_all(&core.db, &core.collector)?;
            match core.config.chunk_grace {
                Some(grace) => content::grace::sweep(&core.db, core.backend.as_ref(), grace),
                None => chunks::sweep(&core.db, core.backend.as_ref(), &core.pins),
            }
        })
        .await?
    }
}

fn start_periodic_sweep(core: &Arc<Core>) {
    let weak = Arc::downgrade(core);
    let every = core.config.sweep_interval;
    let _ = std::thread::Builder::new().name("davit-sweep".into()).spawn(move || {
        loop {
            std::thread::sleep(every);
            let Some(core) = weak.upgrade() else { return };
            if let Err(e) = chunks::sweep(&core.db, core.backend.as_ref(), &core.pins) {
                tracing::warn!(error = ?e, "periodic chunk sweep failed");
            }
        }
    });
}

fn load_master_key(config: &StorageConfig, fresh: bool) -> Result<[u8; KEY_LEN]> {
    if let Some(k) = &config.master_key {
        return crypto::parse_master_key(k);
    }
    let path = config.data_dir.join(MASTER_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => crypto::parse_master_key(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && fresh => {
            let key = crypto::random_bytes::<KEY_LEN>();
            write_private(&path, hex::encode(key).as_bytes())?;
            tracing::warn!(path = %path.display(), "generated a new master key: back it up, data cannot be read without it");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Incompatible(format!(
            "no master key: {} is missing and none was given (--master-key-file or DAVIT_MASTER_KEY)",
            path.display()
        ))),
        Err(e) => Err(e.into()),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
