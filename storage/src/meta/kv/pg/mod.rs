//! The PostgreSQL engine: every table as rows of one table
//! `kv(tbl smallint, k bytea, v bytea, PRIMARY KEY (tbl, k))`.
//!
//! - `tbl` is the table's fixed id ([`TABLE_IDS`]); `k` is the key in its order-preserving
//!   form ([`super::OrderedKey`]), so `ORDER BY k` is the key order; `v` is the value in
//!   redb's byte form, so values read the same from either engine.
//! - Reads run in REPEATABLE READ READ ONLY: one snapshot for the whole closure, as a redb
//!   read transaction gives. Writes run in SERIALIZABLE: rules were written for redb's one
//!   writer, so they assume serial execution, and SERIALIZABLE is the level that keeps it;
//!   a write that fails to serialize is run again (see `Db`).
//! - The seam is synchronous (closures run on blocking threads), so each call here hands its
//!   query to this engine's own small runtime and waits for the answer on a plain channel.
//!   That works from any thread (a blocking pool thread, an admin command with no runtime)
//!   and the pool's connections live as long as the engine, not as long as a caller's
//!   runtime.
//! - Client: `tokio-postgres` (the native async client of the rust-postgres project), each
//!   connection driven by the thread that holds it, from a small pool of our own ([`conn`]
//!   says why), with a per-connection cache of prepared statements (so a query is one round
//!   trip, not a prepare and an execute).
//! - TLS as libpq does it (`sslmode`, `sslrootcert` in the URL; default `prefer`), with a
//!   rustls connector over ring of our own ([`tls`]); the tree keeps aws-lc and OpenSSL out.
//! - Round trips are what a change costs here; `txn` says how a transaction saves them.

mod conn;
mod scan;
mod tls;
#[cfg(test)]
mod tls_tests;
mod txn;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Error as PgError;

use crate::error::{Error, Result};
pub(crate) use scan::{PgChildren, PgRange};
pub(crate) use txn::{ChainAsk, Commit, Txn};
/// How long a credential change on another node may go unheard here (see [`watch`]).
#[cfg(test)]
pub(crate) use watch::BOUND as AUTH_BOUND;

/// Table name -> id in the `tbl` column. Stored in every row: never renumber or reuse an id;
/// a new table takes the next number (a table missing here fails the build, see
/// [`table_id`]).
const TABLE_IDS: &[(&str, i16)] = &[
    ("meta", 1),
    ("users", 2),
    ("usernames", 3),
    ("emails", 4),
    ("items", 5),
    ("children", 6),
    ("chunks", 7),
    ("chunk_data", 8),
    ("usage", 9),
    ("access_keys", 10),
    ("uploads", 11),
    ("parts", 12),
    ("sessions", 13),
    ("refresh", 14),
    ("codes", 15),
    ("app_passwords", 16),
    ("app_password_hashes", 17),
    ("shares", 18),
    ("shares_by_item", 19),
    ("shares_by_grantee", 20),
    ("shares_by_owner", 21),
    ("links", 22),
    ("link_tokens", 23),
    ("links_by_owner", 24),
    ("links_by_item", 25),
    ("chunk_grave", 26),
    ("locks", 27),
    ("locks_by_item", 28),
    ("locks_below", 29),
    ("lock_expiry", 30),
    ("detached", 31),
    ("folder_totals", 32),
    ("share_reshare", 35),
    ("link_makers", 36),
    ("links_by_maker", 37),
    ("share_expiry", 38),
    ("audit", 43),
    ("audit_by_user", 44),
    ("upload_tokens", 60),
    ("upload_token_of", 61),
    ("uploads_done", 62),
    ("bucket_cors", 63),
    ("cors_by_name", 64),
    ("s3_audience", 50),
    ("s3_audience_names", 51),
    ("tags", 55),
    ("upload_tags", 56),
    ("lifecycle", 57),
    ("part_sums", 58),
    ("versioning", 45),
    ("versions", 46),
    ("current_versions", 47),
    ("nodes", 67),
    ("object_lock", 73),
    ("retention", 74),
    ("legal_hold", 75),
    ("trash", 80),
    ("trash_expiry", 81),
    ("version_tags", 85),
];

/// The id of table `name`; evaluated when the table constant is, so a table without an id
/// is a compile error.
pub(super) const fn table_id(name: &str) -> i16 {
    let mut i = 0;
    while i < TABLE_IDS.len() {
        let (n, id) = TABLE_IDS[i];
        if n.len() == name.len() {
            let (a, b) = (n.as_bytes(), name.as_bytes());
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return id;
            }
        }
        i += 1;
    }
    panic!("a table without a PostgreSQL id: add it to TABLE_IDS in meta/kv/pg.rs")
}

/// The schema this davit uses. `SCHEMA_STEPS[i]` brings a database from version `i` to
/// `i + 1` (version 0: nothing there yet); each step ships with the davit that needs it.
const SCHEMA_VERSION: i32 = 1;
const SCHEMA_STEPS: &[&str] = &[r#"
CREATE TABLE davit_schema (version integer NOT NULL);
INSERT INTO davit_schema VALUES (0);
CREATE TABLE kv (
    tbl smallint NOT NULL,
    k bytea NOT NULL,
    v bytea NOT NULL,
    PRIMARY KEY (tbl, k)
) WITH (fillfactor = 90);
-- Room on each page for the rows rewritten all the time (counters, usage) to be updated in
-- place (HOT). Values are never compressed: the large ones are sealed file content, which
-- does not compress, and the rest are too small to try.
ALTER TABLE kv ALTER COLUMN v SET STORAGE EXTERNAL;
-- A u64 value in redb's form (8 bytes, little-endian) as a bigint: ids stored as values.
CREATE FUNCTION davit_u64(v bytea) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT get_byte(v, 0)::bigint | (get_byte(v, 1)::bigint << 8) | (get_byte(v, 2)::bigint << 16)
        | (get_byte(v, 3)::bigint << 24) | (get_byte(v, 4)::bigint << 32) | (get_byte(v, 5)::bigint << 40)
        | (get_byte(v, 6)::bigint << 48) | (get_byte(v, 7)::bigint << 56)
$$;
-- Resolves a path in one round trip (see meta::txn::walk): from folder `start`, each name
-- but the last must be a folder (key: parent, name, '/'); the last may be a file (parent,
-- name) or a folder. Keys are the parent id big-endian then the sort key; values are redb's
-- u64 form (little-endian). Returns the ids reached, in order.
CREATE FUNCTION davit_walk(p_tbl smallint, p_start bigint, p_names bytea[]) RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cur bigint := p_start;
    found bigint[] := '{}';
    val bytea;
    n integer := coalesce(array_length(p_names, 1), 0);
BEGIN
    FOR i IN 1..n LOOP
        val := NULL;
        IF i = n THEN
            SELECT kv.v INTO val FROM kv WHERE kv.tbl = p_tbl AND kv.k = int8send(cur) || p_names[i];
        END IF;
        IF val IS NULL THEN
            SELECT kv.v INTO val FROM kv
            WHERE kv.tbl = p_tbl AND kv.k = int8send(cur) || p_names[i] || '\x2f'::bytea;
        END IF;
        EXIT WHEN val IS NULL;
        cur := davit_u64(val);
        found := found || cur;
    END LOOP;
    RETURN found;
END $$;
"#];

/// Any number; it only keeps two nodes from creating or migrating the schema at once.
const SCHEMA_LOCK: i64 = 0x6461_7669_7400;

/// Rows fetched per round trip of a range scan: a listing page in one trip, while a scan of
/// a whole table never holds more than this many rows. The first page is smaller, since
/// many scans stop after a row or two (is there any? the next one?).
pub(in crate::meta::kv) const PAGE: usize = 256;
pub(super) const FIRST_PAGE: usize = 32;

const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";

/// How long a connection given back may hold its transaction open (a finished read's
/// snapshot, see [`Engine`]), and how often those are swept. A snapshot held open keeps
/// PostgreSQL from cleaning up rows dead since, so it is held briefly: on a busy node the
/// connection is reused long before.
const PARKED_FOR: Duration = Duration::from_millis(250);

pub(crate) struct Engine {
    /// A read transaction is not ended when its reader is done: its connection goes back to
    /// the pool with it open, and whoever takes it next sends `ROLLBACK` in the same round
    /// trip as its own `BEGIN` and first query. That saves a round trip on every read (and
    /// reads are most of the traffic); a sweep rolls back what is not taken soon.
    pool: conn::Pool,
    /// Hears other nodes' credential changes (see [`watch`]).
    watch: Arc<watch::Watch>,
}

/// A PostgreSQL URL as it may be shown (logs, errors): without its password.
pub(crate) fn shown_url(url: &str) -> String {
    match tls::parse(url) {
        Ok(target) => shown_cfg(&target.cfg),
        Err(_) => "postgres://(an invalid URL)".into(),
    }
}

fn shown_cfg(cfg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    format!("postgres://{user}{host}:{port}/{}", cfg.get_dbname().unwrap_or(""))
}

impl Engine {
    /// Connects, and creates or migrates the schema. Any failure is one line naming
    /// PostgreSQL and the URL without its password.
    pub(super) fn open(url: &str, pool_size: usize) -> Result<Self> {
        let target = tls::parse(url).map_err(|e| {
            Error::Incompatible(format!(
                "the PostgreSQL URL is not valid (postgres://USER:PASSWORD@HOST:PORT/DB[?sslmode=MODE]): {e}"
            ))
        })?;
        let shown = shown_cfg(&target.cfg);
        let tls = target
            .connector()
            .map_err(|e| Error::Incompatible(format!("cannot use TLS to PostgreSQL at {shown}: {e}")))?;
        let pool = conn::Pool::new(target.cfg.clone(), tls.clone(), pool_size);
        let first = pool
            .get()
            .map_err(|e| Error::Incompatible(format!("cannot reach PostgreSQL at {shown}: {}", target.explain(&e))))?;
        let c = first.conn();
        c.block_on(migrate(c.client(), &shown)).map_err(|e| match e {
            Error::Incompatible(_) => e,
            e => Error::Incompatible(format!("cannot use PostgreSQL at {shown}: {e}")),
        })?;
        drop(first);
        pool.start_sweeper(PARKED_FOR)?;
        let watch = watch::Watch::start(target.cfg.clone(), tls)?;
        Ok(Engine { pool, watch })
    }

    pub(super) fn begin(&self, write: bool) -> Result<Txn> {
        let conn = self.pool.get().map_err(|e| {
            tracing::warn!(error = %e, "PostgreSQL: no connection");
            Error::Unavailable(UNAVAILABLE.into())
        })?;
        Ok(Txn::new(conn, write, self.pool.clone(), self.watch.clone()))
    }

    /// The credential-change generation, while this node is sure to have heard every change
    /// committed more than [`watch::BOUND`] ago (see [`watch`]).
    pub(super) fn auth_generation(&self) -> Option<u64> {
        self.watch.fresh()
    }
}

const UNAVAILABLE: &str = "the metadata store does not answer; try again shortly";

/// A failure of PostgreSQL as the core reports it: a lost or refused connection is
/// `Unavailable` (503: the engine may come back, and the pool replaces the connection), its
/// cause logged here; a failure PostgreSQL answered with is the server's own.
pub(super) fn unreachable_or_internal(e: tokio_postgres::Error) -> Error {
    if is_lost(&e) {
        tracing::warn!(error = ?e, "PostgreSQL does not answer");
        return Error::Unavailable(UNAVAILABLE.into());
    }
    Error::internal_from("PostgreSQL", e)
}

/// Whether the connection failed (rather than PostgreSQL refusing a statement): closed, an
/// I/O error, or the server ending it. An idle connection is not read from until it is used
/// again, so a server that stopped or restarted meanwhile is told by the message it left
/// there: "terminating connection due to administrator command" (class 57, operator
/// intervention) or a connection exception (class 08).
pub(super) fn is_lost(e: &tokio_postgres::Error) -> bool {
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    let ended = e.code().is_some_and(|c| {
        use tokio_postgres::error::SqlState;
        [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(c)
            || c.code().starts_with("08")
    });
    e.is_closed() || ended || (e.code().is_none() && io)
}

async fn migrate(c: &tokio_postgres::Client, shown: &str) -> Result<()> {
    let pg = |e: PgError| Error::Incompatible(format!("cannot use PostgreSQL at {shown}: {e}"));
    c.batch_execute("BEGIN").await.map_err(pg)?;
    let done = async {
        c.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await.map_err(pg)?;
        let exists: bool = c.query_one("SELECT to_regclass('davit_schema') IS NOT NULL", &[]).await.map_err(pg)?.get(0);
        let found: i32 =
            if exists { c.query_one("SELECT max(version) FROM davit_schema", &[]).await.map_err(pg)?.get(0) } else { 0 };
        if found > SCHEMA_VERSION {
            return Err(Error::Incompatible(format!(
                "the PostgreSQL database at {shown} has davit schema version {found}, made by a newer davit; this davit \
                 knows versions up to {SCHEMA_VERSION}: run the newer davit"
            )));
        }
        if found < SCHEMA_VERSION {
            for step in &SCHEMA_STEPS[found.max(0) as usize..] {
                c.batch_execute(step).await.map_err(pg)?;
            }
            c.execute("UPDATE davit_schema SET version = $1", &[&SCHEMA_VERSION]).await.map_err(pg)?;
            tracing::info!(from = found, to = SCHEMA_VERSION, "PostgreSQL schema made ready");
        }
        c.batch_execute("COMMIT").await.map_err(pg)
    }
    .await;
    if done.is_err() {
        // Whatever failed, the connection goes back to the pool clean (or is found closed).
        let _ = c.batch_execute("ROLLBACK").await;
    }
    done
}
