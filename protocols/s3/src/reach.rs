//! Which bucket a request names, and who may come unsigned: the core decides what a bucket
//! name reaches (`Storage::s3_principal`); this hands it the name and lets an unsigned
//! request through to it only for the reads a public bucket allows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use s3s::S3Result;
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;

/// The bucket of the request (s3s's path), for `DavitS3::principal`.
#[derive(Clone, Debug)]
pub(crate) struct RequestBucket(pub String);

/// What an unsigned request may do where the server allows public read: read a bucket.
const PUBLIC_READS: &[&str] = &["GetObject", "HeadObject", "ListObjects", "ListObjectsV2", "HeadBucket"];

pub(crate) struct Gate {
    pub public_read: bool,
}

#[async_trait::async_trait]
impl S3Access for Gate {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let bucket = match cx.s3_path() {
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.to_string()),
            S3Path::Root => None,
        };
        // CreateBucket always names a bucket of one's own drive.
        if let Some(b) = &bucket
            && cx.s3_op().name() != "CreateBucket"
        {
            cx.extensions_mut().insert(RequestBucket(b.clone()));
        }
        if cx.credentials().is_some() {
            return Ok(());
        }
        if self.public_read && bucket.is_some() && PUBLIC_READS.contains(&cx.s3_op().name()) {
            // The core then says whether this bucket is one anyone may read.
            return Ok(());
        }
        Err(s3s::s3_error!(AccessDenied, "Signature is required"))
    }
}

/// The bucket of a CopyObject's or UploadPartCopy's source (`x-amz-copy-source:
/// [/]bucket/key[?versionId=…]`, bucket names need no decoding).
pub(crate) fn copy_source_bucket(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get("x-amz-copy-source")?.to_str().ok()?;
    let b = v.strip_prefix('/').unwrap_or(v).split('/').next()?;
    (!b.is_empty()).then_some(b)
}

/// Buckets just found to be the caller's own, so that a request to one's own bucket (all
/// but a few) costs no read to tell. Only "own" is remembered: a bucket deleted meanwhile
/// then answers NoSuchBucket for a few seconds rather than another owner's grant by that
/// name, which is what the caller's own namespace coming first means anyway.
#[derive(Default)]
pub(crate) struct OwnBuckets(Mutex<HashMap<(u64, String), Instant>>);

const OWN_FOR: Duration = Duration::from_secs(10);

impl OwnBuckets {
    pub fn is_own(&self, user: u64, bucket: &str) -> bool {
        let m = self.0.lock().expect("own buckets");
        m.get(&(user, bucket.to_owned())).is_some_and(|at| at.elapsed() < OWN_FOR)
    }

    pub fn keep(&self, user: u64, bucket: &str) {
        let mut m = self.0.lock().expect("own buckets");
        if m.len() > 4096 {
            m.retain(|_, at| at.elapsed() < OWN_FOR);
        }
        if m.len() <= 4096 {
            m.insert((user, bucket.to_owned()), Instant::now());
        }
    }
}
