//! Configuration: flags, then environment variables (clap reads both), then an optional
//! TOML file, then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use crate::proxy::{Cidr, parse_list};

/// Settings shared by `serve` and `admin` (both open the data folder).
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Data folder (database, chunks, master key, mail outbox) [default: ./davit-data]
    #[arg(long, env = "DAVIT_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// File holding the 64-hex-character master key [default: <data-dir>/master.key,
    /// generated on first start]
    #[arg(long, env = "DAVIT_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// TOML configuration file; flags and environment variables override it
    #[arg(long, env = "DAVIT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Metadata store: `redb` (a file in the data folder) or a `postgres://` URL shared by
    /// every node [default: redb]
    #[arg(long, env = "DAVIT_META", global = true)]
    pub meta: Option<String>,
    /// Chunk store: `local` (the data folder) or `s3://BUCKET[/PREFIX]` on an S3-compatible
    /// cluster shared by every node [default: local]
    #[arg(long, env = "DAVIT_CHUNKS", global = true)]
    pub chunks: Option<String>,
    /// Endpoint URL of the chunk cluster, e.g. http://127.0.0.1:3900 [default: AWS]
    #[arg(long, env = "DAVIT_CHUNKS_ENDPOINT", global = true)]
    pub chunks_endpoint: Option<String>,
    /// Region of the chunk cluster [default: us-east-1]
    #[arg(long, env = "DAVIT_CHUNKS_REGION", global = true)]
    pub chunks_region: Option<String>,
    /// Local cache of chunks read from the cluster, e.g. 1G (0 = none) [default: 1G]
    #[arg(long, env = "DAVIT_CHUNK_CACHE_SIZE", value_parser = parse_size, global = true)]
    pub chunk_cache_size: Option<u64>,
    /// How long a chunk nothing references is kept before it is deleted, when nodes share
    /// the stores, e.g. 6h, 90m, 30s [default: 6h]
    #[arg(long, env = "DAVIT_CHUNK_GRACE", value_parser = parse_duration, global = true)]
    pub chunk_grace: Option<Duration>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "DAVIT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Public base URL, used in links and mails [default: http(s)://<listen>]
    #[arg(long, env = "DAVIT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Base domain for virtual-host-style S3 (`<bucket>.<domain>`); path style always works
    #[arg(long, env = "DAVIT_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// PEM certificate chain; with --tls-key, serves HTTPS (HTTP/1.1 and HTTP/2)
    #[arg(long, env = "DAVIT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "DAVIT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// SMTP server as a URL (smtp://, smtps://, with user:password@); unset: mail goes to
    /// <data-dir>/outbox
    #[arg(long, env = "DAVIT_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Sender address of mails [default: davit@localhost]
    #[arg(long, env = "DAVIT_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Quota of new accounts, e.g. 10G (0 = unlimited) [default: 0]
    #[arg(long, env = "DAVIT_DEFAULT_QUOTA", value_parser = parse_size)]
    pub default_quota: Option<u64>,
    /// Largest file accepted, e.g. 5G (0 = unlimited) [default: 0]
    #[arg(long, env = "DAVIT_MAX_FILE_SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,
    /// Metadata cache size, e.g. 32M [default: 32M]
    #[arg(long, env = "DAVIT_CACHE_SIZE", value_parser = parse_size)]
    pub cache_size: Option<u64>,
    /// Seconds in-flight requests get to finish at shutdown [default: 30]
    #[arg(long, env = "DAVIT_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<u64>,
    /// Hours after which an unfinished S3 multipart upload is aborted and its parts freed
    /// [default: 168]
    #[arg(long, env = "DAVIT_MULTIPART_EXPIRY_HOURS")]
    pub multipart_expiry_hours: Option<u64>,
    /// The longest a shared link may live, in days; longer requests are capped [default: 30]
    #[arg(long, env = "DAVIT_LINK_MAX_DAYS")]
    pub link_max_days: Option<u64>,
    /// Whether a code mailed to the account's address signs in without the password
    /// (`POST /api/v1/auth/login/code`): true or false [default: true]
    #[arg(long, env = "DAVIT_LOGIN_BY_CODE", value_name = "BOOL")]
    pub login_by_code: Option<bool>,
    /// Whether a bucket may be made readable to anyone, unsigned (S3 public-read ACL or a
    /// policy for Principal "*"): true or false [default: false]
    #[arg(long, env = "DAVIT_S3_PUBLIC_READ", value_name = "BOOL")]
    pub s3_public_read: Option<bool>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client: a
    /// comma-separated list of addresses and CIDR blocks [default: none]
    #[arg(long, env = "DAVIT_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Seconds a client has to send a request's headers, from the connection's start (TLS
    /// handshake included) or the end of the previous answer; also the idle keep-alive time
    /// [default: 20]
    #[arg(long, env = "DAVIT_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a request body may send nothing before the request is ended [default: 60]
    #[arg(long, env = "DAVIT_BODY_IDLE_TIMEOUT")]
    pub body_idle_timeout: Option<u64>,
    /// Open connections allowed from one client address (trusted proxies excepted; 0 =
    /// unlimited) [default: 256]
    #[arg(long, env = "DAVIT_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Seconds an answer may make no progress (the client reads nothing) before the
    /// connection is closed [default: 60]
    #[arg(long, env = "DAVIT_SEND_IDLE_TIMEOUT")]
    pub send_idle_timeout: Option<u64>,
    /// Open connections allowed in all (0 = unlimited); more are closed at once
    /// [default: 10000]
    #[arg(long, env = "DAVIT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Bearer token that `GET /metrics` on the main listener (and on --metrics-listen)
    /// requires [default: none: no /metrics on the main listener]
    #[arg(long, env = "DAVIT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// A separate address serving only /metrics, without a token unless one is set; for a
    /// private interface [default: none]
    #[arg(long, env = "DAVIT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Audit log: a file to append JSON lines to, `-` for stderr, or `off` (events are kept
    /// in the metadata store either way) [default: -]
    #[arg(long, env = "DAVIT_AUDIT_LOG")]
    pub audit_log: Option<String>,
    /// Days audit events are kept in the metadata store [default: 180]
    #[arg(long, env = "DAVIT_AUDIT_DAYS")]
    pub audit_days: Option<u64>,
    /// Seconds between two passes applying S3 buckets' lifecycle rules (expiring objects,
    /// aborting old uploads); 0 turns them off [default: 3600]
    #[arg(long, env = "DAVIT_LIFECYCLE_INTERVAL")]
    pub lifecycle_interval: Option<u64>,
    /// For tests only: how many seconds a lifecycle "day" lasts [default: 86400]
    #[arg(long, env = "DAVIT_LIFECYCLE_DAY_SECONDS", hide = true)]
    pub lifecycle_day_seconds: Option<u64>,
    /// Days a file or folder deleted over WebDAV or REST stays in its owner's trash (still
    /// counted in their quota) before it is removed; 0: deletes are final [default: 30]
    #[arg(long, env = "DAVIT_TRASH_DAYS")]
    pub trash_days: Option<u32>,
    /// For tests only: how many seconds a trash "day" lasts [default: 86400]
    #[arg(long, env = "DAVIT_TRASH_DAY_SECONDS", hide = true)]
    pub trash_day_seconds: Option<u64>,
}

/// The TOML file: the same settings, by the same names with underscores.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    master_key_file: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    base_domain: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    default_quota: Option<toml::Value>,
    max_file_size: Option<toml::Value>,
    cache_size: Option<toml::Value>,
    shutdown_timeout: Option<u64>,
    multipart_expiry_hours: Option<u64>,
    link_max_days: Option<u64>,
    login_by_code: Option<bool>,
    s3_public_read: Option<bool>,
    /// A comma-separated string or an array of strings.
    trusted_proxies: Option<toml::Value>,
    header_timeout: Option<u64>,
    body_idle_timeout: Option<u64>,
    max_connections_per_address: Option<usize>,
    send_idle_timeout: Option<u64>,
    max_connections: Option<usize>,
    metrics_token: Option<String>,
    metrics_listen: Option<SocketAddr>,
    audit_log: Option<String>,
    audit_days: Option<u64>,
    lifecycle_interval: Option<u64>,
    lifecycle_day_seconds: Option<u64>,
    trash_days: Option<u32>,
    trash_day_seconds: Option<u64>,
    meta: Option<String>,
    chunks: Option<String>,
    chunks_endpoint: Option<String>,
    chunks_region: Option<String>,
    chunks_access_key_id: Option<String>,
    chunks_secret_access_key: Option<String>,
    chunk_cache_size: Option<toml::Value>,
    chunk_grace: Option<String>,
    policy: Option<PolicyFile>,
}

/// `[policy]`: the server-wide upload rule, and `[policy.roles.<role>]` per role.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    allowed_extensions: Option<Vec<String>>,
    allowed_types: Option<Vec<String>>,
    #[serde(default)]
    roles: std::collections::HashMap<String, RuleFile>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    max_file_size: Option<toml::Value>,
    allowed_extensions: Option<Vec<String>>,
    allowed_types: Option<Vec<String>>,
}

fn toml_size(v: &Option<toml::Value>) -> anyhow::Result<Option<u64>> {
    match v {
        None => Ok(None),
        Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
        Some(toml::Value::String(s)) => parse_size(s).map(Some).map_err(anyhow::Error::msg),
        Some(v) => bail!("not a size: {v}"),
    }
}

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub master_key_file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub base_domain: Option<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub default_quota: u64,
    pub max_file_size: u64,
    pub cache_size: u64,
    pub shutdown_timeout: Duration,
    pub multipart_expiry: Duration,
    pub link_max_lifetime: Duration,
    /// A mailed code alone signs in.
    pub login_by_code: bool,
    /// Buckets may be made readable to anyone (S3 public-read).
    pub s3_public_read: bool,
    pub policy: davit_storage::policy::Policy,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The time to send a request's headers (and the idle keep-alive time).
    pub header_timeout: Duration,
    /// The longest a request body may stall.
    pub body_idle_timeout: Duration,
    /// Open connections per client address (an IPv6 /64 counts as one); 0 = unlimited.
    pub max_connections_per_address: usize,
    /// The longest an answer may make no progress.
    pub send_idle_timeout: Duration,
    /// Open connections in all; 0 = unlimited.
    pub max_connections: usize,
    /// Where metadata and chunks live, and how long unreferenced chunks are kept.
    pub stores: Stores,
    /// Metrics and audit.
    pub ops: Ops,
}

/// Who may read the metrics, and where audit events go.
#[derive(Clone)]
pub struct Ops {
    pub metrics_token: Option<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub audit_log: davit_storage::audit::AuditLog,
    pub audit_retention: Duration,
    /// How often lifecycle rules are applied (None: never), and how long their "day" is.
    pub lifecycle_interval: Option<Duration>,
    pub lifecycle_day: Duration,
    /// Days a WebDAV or REST delete stays in the trash (0: deletes are final), and how long
    /// such a "day" is.
    pub trash_days: u32,
    pub trash_day: Duration,
    /// Whether this process removes expired trash (see `StorageConfig::trash_collect`).
    pub trash_collect: bool,
}

impl Default for Ops {
    /// What tests start from: no metrics, no audit lines (events are still stored).
    fn default() -> Self {
        Ops {
            metrics_token: None,
            metrics_listen: None,
            audit_log: davit_storage::audit::AuditLog::Off,
            audit_retention: davit_storage::audit::DEFAULT_RETENTION,
            lifecycle_interval: None,
            lifecycle_day: Duration::from_secs(24 * 3600),
            // Deletes are final in tests not about the trash (they check what a delete
            // frees); the binary's default is `DEFAULT_TRASH_DAYS` (`resolve_ops`).
            trash_days: 0,
            trash_day: Duration::from_secs(24 * 3600),
            trash_collect: true,
        }
    }
}

// By hand: the token stays out of debug output.
impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("metrics_listen", &self.metrics_listen)
            .field("audit_log", &self.audit_log)
            .field("audit_retention", &self.audit_retention)
            .field("lifecycle_interval", &self.lifecycle_interval)
            .field("lifecycle_day", &self.lifecycle_day)
            .field("trash_days", &self.trash_days)
            .field("trash_day", &self.trash_day)
            .field("trash_collect", &self.trash_collect)
            .finish()
    }
}

fn resolve_ops(serve: &ServeArgs, file: &FileConfig) -> anyhow::Result<Ops> {
    let audit_log = match serve.audit_log.clone().or(file.audit_log.clone()).as_deref().map(str::trim) {
        None | Some("-") | Some("stderr") => davit_storage::audit::AuditLog::Stderr,
        Some("off") => davit_storage::audit::AuditLog::Off,
        Some("") => bail!("--audit-log: a file, `-` for stderr, or `off`"),
        Some(path) => davit_storage::audit::AuditLog::File(PathBuf::from(path)),
    };
    let days = serve.audit_days.or(file.audit_days).unwrap_or(180);
    if !(1..=36_500).contains(&days) {
        bail!("--audit-days: 1 to 36500");
    }
    Ok(Ops {
        metrics_token: serve.metrics_token.clone().or(file.metrics_token.clone()).filter(|t| !t.trim().is_empty()),
        metrics_listen: serve.metrics_listen.or(file.metrics_listen),
        audit_log,
        audit_retention: Duration::from_secs(days * 24 * 3600),
        lifecycle_interval: match serve.lifecycle_interval.or(file.lifecycle_interval).unwrap_or(3600) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
        lifecycle_day: match serve.lifecycle_day_seconds.or(file.lifecycle_day_seconds).unwrap_or(86_400) {
            0 => bail!("--lifecycle-day-seconds: at least 1"),
            s => Duration::from_secs(s),
        },
        trash_days: match serve.trash_days.or(file.trash_days).unwrap_or(davit_storage::DEFAULT_TRASH_DAYS) {
            d if d > 36_500 => bail!("--trash-days: 0 to 36500"),
            d => d,
        },
        trash_day: match serve.trash_day_seconds.or(file.trash_day_seconds).unwrap_or(86_400) {
            0 => bail!("--trash-day-seconds: at least 1"),
            s => Duration::from_secs(s),
        },
        trash_collect: true,
    })
}

/// The metadata and chunk stores, resolved.
#[derive(Clone)]
pub struct Stores {
    pub meta: davit_storage::MetaStore,
    pub chunks: davit_storage::ChunkStore,
    /// Some when the stores may be shared by several nodes (see `StorageConfig::chunk_grace`).
    pub chunk_grace: Option<Duration>,
}

// By hand: the PostgreSQL URL and the cluster secret stay out of debug output.
impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let meta = match &self.meta {
            davit_storage::MetaStore::Redb => "redb".to_owned(),
            davit_storage::MetaStore::Postgres { url, .. } => redact_url(url),
        };
        let chunks = match &self.chunks {
            davit_storage::ChunkStore::Local => "local".to_owned(),
            davit_storage::ChunkStore::S3(c) => format!("s3://{}/{} at {}", c.bucket, c.prefix, c.endpoint),
        };
        f.debug_struct("Stores")
            .field("meta", &meta)
            .field("chunks", &chunks)
            .field("chunk_grace", &self.chunk_grace)
            .finish()
    }
}

/// A URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    // libpq also takes the password as a query parameter (`?password=…`).
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn resolve_stores(data: &DataArgs, file: &FileConfig) -> anyhow::Result<Stores> {
    let meta = match data.meta.clone().or(file.meta.clone()).as_deref().map(str::trim) {
        None | Some("") | Some("redb") => davit_storage::MetaStore::Redb,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            davit_storage::MetaStore::Postgres { url: url.to_owned(), pool_size: 16 }
        }
        Some(other) => bail!("--meta: `redb` or a postgres:// URL, not `{}`", redact_url(other)),
    };
    let chunks = match data.chunks.clone().or(file.chunks.clone()).as_deref().map(str::trim) {
        None | Some("") | Some("local") => davit_storage::ChunkStore::Local,
        Some(spec) => {
            let Some(rest) = spec.strip_prefix("s3://") else {
                bail!("--chunks: `local` or s3://BUCKET[/PREFIX], not `{spec}`")
            };
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("--chunks: s3://BUCKET[/PREFIX] needs a bucket");
            }
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let access_key_id = env("DAVIT_CHUNKS_ACCESS_KEY_ID")
                .or(file.chunks_access_key_id.clone())
                .context("--chunks s3://… needs DAVIT_CHUNKS_ACCESS_KEY_ID (or chunks_access_key_id in the file)")?;
            let secret_access_key =
                env("DAVIT_CHUNKS_SECRET_ACCESS_KEY").or(file.chunks_secret_access_key.clone()).context(
                    "--chunks s3://… needs DAVIT_CHUNKS_SECRET_ACCESS_KEY (or chunks_secret_access_key in the file)",
                )?;
            let cache_bytes = match data.chunk_cache_size {
                Some(n) => n,
                None => toml_size(&file.chunk_cache_size)?.unwrap_or(1 << 30),
            };
            davit_storage::ChunkStore::S3(davit_storage::S3ChunkConfig {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
                endpoint: data
                    .chunks_endpoint
                    .clone()
                    .or(file.chunks_endpoint.clone())
                    .unwrap_or_else(|| "https://s3.amazonaws.com".to_owned()),
                region: data.chunks_region.clone().or(file.chunks_region.clone()).unwrap_or_else(|| "us-east-1".into()),
                access_key_id,
                secret_access_key,
                cache_bytes,
            })
        }
    };
    let shared = !matches!(meta, davit_storage::MetaStore::Redb) || !matches!(chunks, davit_storage::ChunkStore::Local);
    let grace = match (data.chunk_grace, &file.chunk_grace) {
        (Some(g), _) => Some(g),
        (None, Some(text)) => Some(parse_duration(text).map_err(anyhow::Error::msg).context("chunk_grace")?),
        (None, None) => None,
    };
    if let Some(g) = grace
        && g < Duration::from_secs(1)
    {
        bail!("--chunk-grace must be at least one second");
    }
    // A single node over redb and its own folder knows every chunk in use, so it frees at once.
    let chunk_grace = if shared { Some(grace.unwrap_or(davit_storage::DEFAULT_CHUNK_GRACE)) } else { None };
    Ok(Stores { meta, chunks, chunk_grace })
}

impl Config {
    pub fn resolve(data: &DataArgs, serve: &ServeArgs) -> anyhow::Result<Config> {
        let file = match &data.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let size = |flag: Option<u64>, file: &Option<toml::Value>, default: u64| -> anyhow::Result<u64> {
            if let Some(v) = flag {
                return Ok(v);
            }
            match file {
                None => Ok(default),
                Some(toml::Value::Integer(i)) if *i >= 0 => Ok(*i as u64),
                Some(toml::Value::String(s)) => parse_size(s).map_err(anyhow::Error::msg),
                Some(v) => bail!("not a size: {v}"),
            }
        };
        let stores = resolve_stores(data, &file)?;
        let ops = resolve_ops(serve, &file)?;
        let tls = match (serve.tls_cert.clone().or(file.tls_cert), serve.tls_key.clone().or(file.tls_key)) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("TLS needs both a certificate (--tls-cert) and a key (--tls-key)"),
        };
        let mut policy = davit_storage::policy::Policy::default();
        if let Some(p) = &file.policy {
            policy.server.allowed_extensions = p.allowed_extensions.clone();
            policy.server.allowed_types = p.allowed_types.clone();
            for (name, rule) in &p.roles {
                let role = davit_storage::Role::parse(name)
                    .with_context(|| format!("[policy.roles.{name}]: roles are admin, user, uploader, downloader"))?;
                policy.roles.insert(
                    role,
                    davit_storage::policy::Rule {
                        max_file_size: toml_size(&rule.max_file_size)?,
                        allowed_extensions: rule.allowed_extensions.clone(),
                        allowed_types: rule.allowed_types.clone(),
                    },
                );
            }
        }
        let trusted_proxies = match (&serve.trusted_proxies, &file.trusted_proxies) {
            (Some(list), _) => parse_list(list).map_err(anyhow::Error::msg).context("--trusted-proxies")?,
            (None, None) => Vec::new(),
            (None, Some(toml::Value::String(list))) => {
                parse_list(list).map_err(anyhow::Error::msg).context("trusted_proxies")?
            }
            (None, Some(toml::Value::Array(items))) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.parse::<Cidr>().map_err(anyhow::Error::msg),
                    v => bail!("trusted_proxies: not an address: {v}"),
                })
                .collect::<anyhow::Result<_>>()?,
            (None, Some(v)) => bail!("trusted_proxies: a comma-separated string or an array of strings, not {v}"),
        };
        let secs = |flag: Option<u64>, file: Option<u64>, default: u64, name: &str| -> anyhow::Result<Duration> {
            match flag.or(file).unwrap_or(default) {
                0 => bail!("{name} must be at least one second"),
                n => Ok(Duration::from_secs(n)),
            }
        };
        Ok(Config {
            ops,
            stores,
            trusted_proxies,
            header_timeout: secs(serve.header_timeout, file.header_timeout, 20, "header_timeout")?,
            body_idle_timeout: secs(serve.body_idle_timeout, file.body_idle_timeout, 60, "body_idle_timeout")?,
            max_connections_per_address: serve
                .max_connections_per_address
                .or(file.max_connections_per_address)
                .unwrap_or(256),
            send_idle_timeout: secs(serve.send_idle_timeout, file.send_idle_timeout, 60, "send_idle_timeout")?,
            max_connections: serve.max_connections.or(file.max_connections).unwrap_or(10_000),
            policy,
            data_dir: data.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("davit-data")),
            master_key_file: data.master_key_file.clone().or(file.master_key_file),
            listen: serve.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".parse().expect("address")),
            public_url: serve.public_url.clone().or(file.public_url),
            base_domain: serve
                .base_domain
                .clone()
                .or(file.base_domain)
                .map(|d| d.trim_matches('.').to_ascii_lowercase()),
            tls,
            smtp_url: serve.smtp_url.clone().or(file.smtp_url),
            mail_from: serve.mail_from.clone().or(file.mail_from).unwrap_or_else(|| "davit@localhost".into()),
            default_quota: size(serve.default_quota, &file.default_quota, 0)?,
            max_file_size: size(serve.max_file_size, &file.max_file_size, 0)?,
            cache_size: size(serve.cache_size, &file.cache_size, 32 << 20)?,
            shutdown_timeout: Duration::from_secs(serve.shutdown_timeout.or(file.shutdown_timeout).unwrap_or(30)),
            multipart_expiry: Duration::from_secs(
                3600 * serve.multipart_expiry_hours.or(file.multipart_expiry_hours).unwrap_or(168),
            ),
            link_max_lifetime: Duration::from_secs(
                24 * 3600 * serve.link_max_days.or(file.link_max_days).unwrap_or(30).max(1),
            ),
            login_by_code: serve.login_by_code.or(file.login_by_code).unwrap_or(true),
            s3_public_read: serve.s3_public_read.or(file.s3_public_read).unwrap_or(false),
        })
    }

    pub fn storage(&self) -> anyhow::Result<davit_storage::StorageConfig> {
        let mut c = davit_storage::StorageConfig::new(&self.data_dir);
        c.master_key = master_key_text(self.master_key_file.as_deref())?;
        c.cache_bytes = self.cache_size as usize;
        c.default_quota = self.default_quota;
        c.max_file_size = self.max_file_size;
        c.policy = self.policy.clone();
        c.link_max_lifetime = self.link_max_lifetime;
        c.login_by_code = self.login_by_code;
        c.s3_public_read = self.s3_public_read;
        c.meta = self.stores.meta.clone();
        c.chunks = self.stores.chunks.clone();
        c.chunk_grace = self.stores.chunk_grace;
        c.audit_log = self.ops.audit_log.clone();
        c.audit_retention = self.ops.audit_retention;
        c.lifecycle_interval = self.ops.lifecycle_interval;
        c.lifecycle_day = self.ops.lifecycle_day;
        c.trash_days = self.ops.trash_days;
        c.trash_day = self.ops.trash_day;
        c.trash_collect = self.ops.trash_collect;
        Ok(c)
    }
}

/// The master key from `--master-key-file` or `DAVIT_MASTER_KEY`; None: the data folder's.
pub fn master_key_text(file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    if let Some(f) = file {
        return Ok(Some(std::fs::read_to_string(f).with_context(|| format!("reading master key {}", f.display()))?));
    }
    Ok(std::env::var("DAVIT_MASTER_KEY").ok())
}

/// `90`, `30s`, `15m`, `6h`, `2d` (seconds without a unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().map_err(|_| format!("not a duration: '{s}'"))?;
    let unit: u64 = match s[split..].trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("not a duration: '{s}' (use s, m, h or d)")),
    };
    n.checked_mul(unit).map(Duration::from_secs).ok_or_else(|| format!("duration too long: '{s}'"))
}

/// `1024`, `64K`, `10M`, `2G`, `1T` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let mult: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown size unit in '{s}'")),
            };
            (&s[..i], mult)
        }
        None => (s, 1),
    };
    let n: u64 = num.trim().parse().map_err(|_| format!("not a size: '{s}'"))?;
    n.checked_mul(mult).ok_or_else(|| format!("size too large: '{s}'"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn toml_file_with_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("davit.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nmax_file_size = \"1G\"\n[policy.roles.uploader]\nallowed_extensions = [\"docx\", \"xlsx\"]\nmax_file_size = \"10M\"\n",
        )
        .unwrap();
        let data = super::DataArgs { config: Some(path.clone()), ..Default::default() };
        let serve = super::ServeArgs { listen: Some("127.0.0.1:7777".parse().unwrap()), ..Default::default() };
        let c = super::Config::resolve(&data, &serve).unwrap();
        assert_eq!(c.listen.port(), 7777, "flags win over the file");
        assert_eq!(c.max_file_size, 1 << 30);
        assert_eq!(c.policy.max_file_size(davit_storage::Role::Uploader), 10 << 20);
        assert!(c.policy.check_file(davit_storage::Role::Uploader, "a.exe", None).is_err());
        assert_eq!((c.header_timeout.as_secs(), c.body_idle_timeout.as_secs()), (20, 60));
        assert_eq!((c.max_connections_per_address, c.trusted_proxies.len()), (256, 0));
        assert_eq!((c.send_idle_timeout.as_secs(), c.max_connections), (60, 10_000));
        std::fs::write(&path, "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nheader_timeout = 5\n").unwrap();
        let data = super::DataArgs { config: Some(path.clone()), ..Default::default() };
        let c = super::Config::resolve(&data, &super::ServeArgs::default()).unwrap();
        assert_eq!((c.trusted_proxies.len(), c.header_timeout.as_secs()), (2, 5));
        let serve = super::ServeArgs { trusted_proxies: Some("127.0.0.2".into()), ..Default::default() };
        let c = super::Config::resolve(&data, &serve).unwrap();
        assert_eq!(c.trusted_proxies.len(), 1, "the flag wins over the file");
        let serve = super::ServeArgs { trusted_proxies: Some("10.0.0.0/40".into()), ..Default::default() };
        assert!(super::Config::resolve(&data, &serve).is_err(), "a bad block is refused at start");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "lisen = 1\n").unwrap();
        let data = super::DataArgs { config: Some(bad), ..Default::default() };
        assert!(super::Config::resolve(&data, &super::ServeArgs::default()).is_err(), "unknown keys are refused");
    }

    #[test]
    fn shared_stores_from_flags_and_file() {
        use davit_storage::{ChunkStore, MetaStore};
        let dir = tempfile::tempdir().unwrap();
        let data = super::DataArgs::default();
        let c = super::Config::resolve(&data, &super::ServeArgs::default()).unwrap();
        assert!(matches!(c.stores.meta, MetaStore::Redb) && matches!(c.stores.chunks, ChunkStore::Local));
        assert_eq!(c.stores.chunk_grace, None, "one node over its own folder frees at once");
        let path = dir.path().join("davit.toml");
        std::fs::write(
            &path,
            "meta = \"postgres://davit:pw-secret@127.0.0.1:5432/davit\"\nchunks = \"s3://bucket/pre/fix/\"\n\
             chunks_endpoint = \"http://127.0.0.1:3900\"\nchunks_access_key_id = \"GK1\"\n\
             chunks_secret_access_key = \"s3-secret\"\nchunk_cache_size = \"64M\"\n",
        )
        .unwrap();
        let data = super::DataArgs { config: Some(path.clone()), ..Default::default() };
        let c = super::Config::resolve(&data, &super::ServeArgs::default()).unwrap();
        assert_eq!(c.stores.chunk_grace, Some(std::time::Duration::from_secs(6 * 3600)));
        let ChunkStore::S3(s3) = &c.stores.chunks else { panic!("s3 chunks") };
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str(), s3.cache_bytes), ("bucket", "pre/fix", 64 << 20));
        let shown = format!("{:?}", c.stores);
        assert!(!shown.contains("pw-secret") && !shown.contains("s3-secret"), "{shown}");
        let data = super::DataArgs {
            config: Some(path),
            chunk_grace: Some(std::time::Duration::from_secs(5)),
            ..Default::default()
        };
        assert_eq!(
            super::Config::resolve(&data, &super::ServeArgs::default()).unwrap().stores.chunk_grace.unwrap().as_secs(),
            5
        );
        for bad in ["mysql://x", "s3://", "file:///x"] {
            let data = super::DataArgs { meta: Some(bad.into()), chunks: Some(bad.into()), ..Default::default() };
            assert!(super::Config::resolve(&data, &super::ServeArgs::default()).is_err(), "{bad}");
        }
        assert_eq!(super::parse_duration("90m"), Ok(std::time::Duration::from_secs(5400)));
        assert_eq!(super::redact_url("postgres://u:p@h:1/db?x=1"), "postgres://u:***@h:1/db?x=1");
        assert_eq!(super::redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            super::redact_url("postgres://u@h/db?sslmode=require&password=p&x=1"),
            "postgres://u@h/db?sslmode=require&password=***&x=1"
        );
        assert!(super::parse_duration("5y").is_err());
    }

    #[test]
    fn lifecycle_settings() {
        let data = super::DataArgs::default();
        let c = super::Config::resolve(&data, &super::ServeArgs::default()).unwrap();
        assert_eq!(c.ops.lifecycle_interval, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(c.ops.lifecycle_day, std::time::Duration::from_secs(86_400));
        let serve =
            super::ServeArgs { lifecycle_interval: Some(0), lifecycle_day_seconds: Some(10), ..Default::default() };
        let c = super::Config::resolve(&data, &serve).unwrap();
        assert_eq!((c.ops.lifecycle_interval, c.ops.lifecycle_day.as_secs()), (None, 10), "0 turns the passes off");
        let s = c.storage().unwrap();
        assert_eq!((s.lifecycle_interval, s.lifecycle_day.as_secs()), (None, 10), "handed to the core");
        let serve = super::ServeArgs { lifecycle_day_seconds: Some(0), ..Default::default() };
        assert!(super::Config::resolve(&data, &serve).is_err(), "a day of no time is refused");
    }

    #[test]
    fn trash_settings() {
        let data = super::DataArgs::default();
        let c = super::Config::resolve(&data, &super::ServeArgs::default()).unwrap();
        assert_eq!((c.ops.trash_days, c.ops.trash_day.as_secs()), (30, 86_400));
        let serve = super::ServeArgs { trash_days: Some(0), trash_day_seconds: Some(2), ..Default::default() };
        let s = super::Config::resolve(&data, &serve).unwrap().storage().unwrap();
        assert_eq!((s.trash_days, s.trash_day.as_secs()), (0, 2), "0 days: no trash, handed to the core");
        let serve = super::ServeArgs { trash_day_seconds: Some(0), ..Default::default() };
        assert!(super::Config::resolve(&data, &serve).is_err(), "a day of no time is refused");
        let serve = super::ServeArgs { trash_days: Some(40_000), ..Default::default() };
        assert!(super::Config::resolve(&data, &serve).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("3X").is_err());
        assert!(parse_size("").is_err());
    }
}
