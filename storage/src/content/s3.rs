//! Chunks as objects in a bucket of an S3-compatible cluster (Garage, Ceph RGW, SeaweedFS,
//! AWS S3).
//!
//! Chunk ids are content addresses of sealed bytes, so a PUT is idempotent: two writers of
//! the same chunk store the same bytes, and many nodes may write one bucket without any
//! coordination beyond the metadata store.
//!
//! The `ChunkBackend` calls are synchronous and made from blocking threads, while the SDK is
//! async. The backend owns a small runtime and drives each request with `Handle::block_on`
//! from the calling (blocking) thread; the runtime's workers run the connections and the
//! timers. It is its own runtime, not the caller's, because the backend is also used where
//! there is none (`davit admin`, and `Storage::open` before the server's runtime starts).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls;

use crate::content::chunks::ChunkBackend;
use crate::crypto::ChunkId;
use crate::error::{Error, Result};

/// A connection that does not open in this long is a cluster that is down or unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt of one request, body included: a 4 MiB chunk at a slow 1 MiB/s still fits.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// All attempts of one request, retries and their back-off included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(75);
/// First try plus two retries, on throttling, 5xx and transport errors (the SDK's standard
/// rules); every request here is idempotent, so a retry never does harm.
const MAX_ATTEMPTS: u32 = 3;
/// Chunks one read has in flight. Each GET waits a round trip plus the transfer, and a
/// cluster answers each from several nodes, so a stream needs many in flight to keep the
/// machine busy: a 256 MiB read from a 1-node Garage on loopback (debug build, shared 2
/// cores) ran at 54-80 MiB/s with 2 in flight (the local folder's figure), 100-122 with 4,
/// 123-168 with 6, 159-177 with 8; a 1 GiB read from 3 nodes (release build) left the
/// machine half idle with 6. Twelve hold about 12 MiB per stream (1 MiB average chunks),
/// 48 MiB at most.
const READ_AHEAD: usize = 12;
/// Bytes of chunk uploads this process has in flight at once, over all writes, in MiB
/// (a chunk takes one per MiB begun, up to all of them). Each upload holds a copy of its
/// sealed chunk (the SDK wants the bytes it sends, while `put` lends them); the ingest
/// pipeline's own eight slots would otherwise make that up to eight copies of up to 4 MiB
/// besides the sealed chunks themselves, which is what a 1 GiB PUT's peak memory (123 MiB)
/// was made of. Six (six average chunks, one or two of the largest) keep a 3-node cluster on
/// loopback as busy: its replication, not the number of requests, bounds a PUT.
const PUT_BUDGET_MIB: u32 = 6;
/// Threads of the backend's own runtime: they run connections and timers only, the request
/// futures themselves run on the blocking threads that wait for them.
const RUNTIME_THREADS: usize = 2;

/// Where the chunks of one deployment live on an S3-compatible cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct S3ChunkConfig {
    pub bucket: String,
    /// Keys are `<prefix>/<hex id>`; empty for keys at the bucket's root.
    pub prefix: String,
    /// `http://host:port` or `https://host`; requests use path-style addressing, which every
    /// S3-compatible server accepts without DNS set up for virtual hosts.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Bound of the local read cache of sealed chunks, in bytes (0 = no cache).
    pub cache_bytes: u64,
}

impl S3ChunkConfig {
    /// The defaults for what is usually left out: region `us-east-1` (what most
    /// S3-compatible servers accept when they do not care), cache 1 GiB.
    pub fn new(bucket: impl Into<String>, endpoint: impl Into<String>) -> Self {
        S3ChunkConfig {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: endpoint.into(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            cache_bytes: 1 << 30,
        }
    }

    /// The endpoint as it may be shown: without user information, should it hold any.
    pub fn endpoint_shown(&self) -> String {
        let Some((scheme, rest)) = self.endpoint.split_once("://") else { return self.endpoint.clone() };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        format!("{scheme}://{host}{path}")
    }
}

impl fmt::Debug for S3ChunkConfig {
    /// Everything but the secret, which must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3ChunkConfig")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint_shown())
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("cache_bytes", &self.cache_bytes)
            .finish()
    }
}

pub struct S3Chunks {
    client: Client,
    bucket: String,
    /// `<prefix>/`, or empty.
    key_prefix: String,
    endpoint: String,
    runtime: Option<tokio::runtime::Runtime>,
    /// [`PUT_BUDGET_MIB`] permits, one per MiB of uploads in flight.
    puts: Arc<tokio::sync::Semaphore>,
}

impl Drop for S3Chunks {
    fn drop(&mut self) {
        // The last handle may go on an async worker, where dropping a runtime (which waits
        // for its threads) panics; nothing is left to wait for.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// An S3 failure kept whole, with what was being done: the SDK's own chain says whether it
/// was the network, a timeout or the service, and never holds the credentials.
#[derive(Debug)]
struct S3Failure {
    what: String,
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for S3Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cause's own line only ("dispatch failure", "service error"): the rest of its
        // chain is `source()`, which the core's error walks when it logs.
        write!(f, "{}: {}", self.what, self.cause)
    }
}

impl std::error::Error for S3Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

fn failure<E>(what: String, e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> io::Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let kind = match &e {
        SdkError::TimeoutError(_) => io::ErrorKind::TimedOut,
        SdkError::DispatchFailure(_) => io::ErrorKind::ConnectionRefused,
        SdkError::ServiceError(s) if s.raw().status().as_u16() == 404 => io::ErrorKind::NotFound,
        SdkError::ServiceError(s) if s.raw().status().as_u16() == 403 => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, S3Failure { what, cause: Box::new(e) })
}

impl S3Chunks {
    /// Connects to the cluster and makes sure the bucket exists, creating it if it is
    /// missing. Refusals are one line naming the endpoint and the bucket, never a secret.
    pub fn open(config: &S3ChunkConfig) -> Result<Self> {
        let endpoint = config.endpoint_shown();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("davit-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::internal_from("starting the S3 client's runtime", e))?;
        // rustls with ring: the tree keeps aws-lc out. Roots are the platform's (a private CA
        // goes in the system store, or SSL_CERT_FILE).
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let sdk = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .endpoint_url(&config.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                &config.access_key_id,
                &config.secret_access_key,
                None,
                None,
                "davit-config",
            ))
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            // No CRC32 of every chunk on the way out and back: a chunk is sealed (AES-GCM)
            // and authenticated whenever it is opened, which catches any damage a checksum
            // would, and more. That saves a pass over every byte each way.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        let prefix = config.prefix.trim_matches('/');
        let backend = S3Chunks {
            client: Client::from_conf(sdk),
            bucket: config.bucket.clone(),
            key_prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}/") },
            endpoint,
            runtime: Some(runtime),
            puts: Arc::new(tokio::sync::Semaphore::new(PUT_BUDGET_MIB as usize)),
        };
        backend.ensure_bucket()?;
        Ok(backend)
    }

    /// Runs one request to its end on the calling thread, which must be a blocking one
    /// (`Handle::block_on` panics on an async worker).
    fn run<F: Future>(&self, fut: F) -> F::Output {
        let rt = self.runtime.as_ref().expect("runtime lives until drop");
        rt.handle().block_on(fut)
    }

    /// S3 has no directories: a key is a flat name, and a listing by prefix is a range scan
    /// of the index, so the fan-out that keeps local folders small would buy nothing here.
    fn key(&self, id: &ChunkId) -> String {
        format!("{}{}", self.key_prefix, hex::encode(id))
    }

    fn ensure_bucket(&self) -> Result<()> {
        let (endpoint, bucket) = (&self.endpoint, &self.bucket);
        let one_line = |s: String| s.replace(['\n', '\r'], " ");
        let head = self.run(self.client.head_bucket().bucket(bucket).send());
        let e = match head {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        match &e {
            SdkError::ServiceError(s) if s.raw().status().as_u16() == 404 => {}
            SdkError::ServiceError(s) if s.raw().status().as_u16() == 403 => {
                return Err(Error::Incompatible(format!(
                    "the chunk store at {endpoint} refuses access to bucket {bucket} (check the access key and its rights)"
                )));
            }
            SdkError::ServiceError(s) => {
                return Err(Error::Incompatible(one_line(format!(
                    "the chunk store at {endpoint} answered {} for bucket {bucket}",
                    s.raw().status().as_u16()
                ))));
            }
            _ => {
                return Err(Error::Incompatible(one_line(format!(
                    "cannot reach the chunk store at {endpoint} (bucket {bucket}): {}",
                    crate::error::one_line(&e)
                ))));
            }
        }
        match self.run(self.client.create_bucket().bucket(bucket).send()) {
            Ok(_) => {
                tracing::info!(endpoint = %endpoint, bucket = %bucket, "created the chunk bucket");
                Ok(())
            }
            // Another node created it at the same moment (some servers say "owned by you",
            // some only "exists": then it must now answer to this key).
            Err(SdkError::ServiceError(s)) if s.err().code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(SdkError::ServiceError(s))
                if s.err().code() == Some("BucketAlreadyExists")
                    && self.run(self.client.head_bucket().bucket(bucket).send()).is_ok() =>
            {
                Ok(())
            }
            Err(e) => {
                let why = match &e {
                    SdkError::ServiceError(s) => {
                        format!("{} {}", s.err().code().unwrap_or("refused"), s.err().message().unwrap_or(""))
                    }
                    other => crate::error::one_line(other),
                };
                Err(Error::Incompatible(one_line(format!(
                    "bucket {bucket} does not exist at {endpoint} and could not be created: {}",
                    why.trim()
                ))))
            }
        }
    }

    /// Every chunk object with its last-modified time and size, page by page.
    fn listing(&self) -> io::Result<Vec<(ChunkId, SystemTime, u64)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .run(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(&self.key_prefix)
                        .set_continuation_token(token.clone())
                        .send(),
                )
                .map_err(|e| failure(format!("listing {}/{}", self.bucket, self.key_prefix), e))?;
            for o in page.contents() {
                let Some(name) = o.key().and_then(|k| k.strip_prefix(&self.key_prefix)) else { continue };
                let Some(id) = hex::decode(name).ok().and_then(|v| ChunkId::try_from(v).ok()) else { continue };
                let modified =
                    o.last_modified().and_then(|t| SystemTime::try_from(*t).ok()).unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((id, modified, o.size().unwrap_or(0).max(0) as u64));
            }
            let next = page.next_continuation_token().map(str::to_owned);
            // A server that says "more" without a new token would loop forever.
            if !page.is_truncated().unwrap_or(false) || next.is_none() || next == token {
                return Ok(out);
            }
            token = next;
        }
    }
}

impl ChunkBackend for S3Chunks {
    fn put(&self, id: &ChunkId, sealed: &[u8]) -> io::Result<()> {
        let key = self.key(id);
        self.run(async {
            // Never closed: it lives as long as `self`.
            let mib = (sealed.len().div_ceil(1 << 20) as u32).clamp(1, PUT_BUDGET_MIB);
            let _permit = self.puts.acquire_many(mib).await.map_err(io::Error::other)?;
            #[cfg(test)]
            let _gauge = tests::InFlight::enter();
            let body = ByteStream::from(bytes::Bytes::copy_from_slice(sealed));
            // Unsigned payload: signing would hash every byte with SHA-256 for an integrity
            // check the seal already gives (a chunk is authenticated whenever it is read,
            // and its id is the MAC of its content); the request itself stays signed.
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .body(body)
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| failure(format!("storing {}/{key}", self.bucket), e))
        })?;
        Ok(())
    }

    fn get(&self, id: &ChunkId) -> io::Result<Vec<u8>> {
        let key = self.key(id);
        let what = || format!("reading {}/{key}", self.bucket);
        self.run(async {
            let out =
                self.client.get_object().bucket(&self.bucket).key(&key).send().await.map_err(|e| failure(what(), e))?;
            // The SDK's timeouts end when the response starts; a body that stalls is bounded here.
            let body = tokio::time::timeout(ATTEMPT_TIMEOUT, out.body.collect())
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{}: the body stalled", what())))?
                .map_err(|e| io::Error::other(S3Failure { what: what(), cause: Box::new(e) }))?;
            // Not `to_vec()`, which copies byte by byte through an iterator (50 ms per MiB
            // in a debug build, measurable in release): one copy of contiguous bytes at most.
            Ok(Vec::from(body.into_bytes()))
        })
    }

    fn delete(&self, id: &ChunkId) -> io::Result<()> {
        let key = self.key(id);
        // S3 answers a delete of a missing key with success, which is what is wanted.
        self.run(self.client.delete_object().bucket(&self.bucket).key(&key).send())
            .map_err(|e| failure(format!("deleting {}/{key}", self.bucket), e))?;
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<ChunkId>> {
        Ok(self.listing()?.into_iter().map(|(id, _, _)| id).collect())
    }

    fn list_with_age(&self) -> io::Result<Vec<(ChunkId, SystemTime)>> {
        Ok(self.listing()?.into_iter().map(|(id, t, _)| (id, t)).collect())
    }

    fn read_ahead(&self) -> usize {
        READ_AHEAD
    }

    fn stored_bytes(&self) -> io::Result<u64> {
        Ok(self.listing()?.into_iter().map(|(_, _, n)| n).sum())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// PUTs in flight in this process, and the most seen at once: evidence that one
    /// stream's chunks are stored in parallel.
    pub static PUTS: AtomicUsize = AtomicUsize::new(0);
    pub static MAX_PUTS: AtomicUsize = AtomicUsize::new(0);

    pub struct InFlight;

    impl InFlight {
        pub fn enter() -> InFlight {
            let now = PUTS.fetch_add(1, Ordering::SeqCst) + 1;
            MAX_PUTS.fetch_max(now, Ordering::SeqCst);
            InFlight
        }
    }

    impl Drop for InFlight {
        fn drop(&mut self) {
            PUTS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
