//! Bucket operations: a bucket is a top-level folder of the drive with a valid bucket name.

use base64::Engine;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::{bucket_error, s3_error as map};
use crate::names;

pub async fn list(s3: &DavitS3, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let p = s3.principal(&req).await?;
    let mut buckets = Vec::new();
    let mut after = None;
    loop {
        let page = s3.storage.list(&p, "/", after.clone(), 1000).await.map_err(map)?;
        let done = page.len() < 1000;
        after = page.last().map(|i| i.child_key());
        for item in page.into_iter().filter(|i| i.is_folder() && names::valid_bucket(&i.name, &s3.reserved)) {
            buckets.push(Bucket {
                name: Some(item.name.clone()),
                creation_date: Some(Timestamp::from(davit_http::system_time(item.created))),
                ..Default::default()
            });
        }
        if done {
            break;
        }
    }
    let owner = crate::list::owner(s3, &p);
    let input = req.input;
    let (buckets, continuation_token) = page_of_buckets(buckets, &input)?;
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner),
        continuation_token,
        prefix: input.prefix,
    }))
}

/// ListBuckets' optional paging: `prefix`, then after the bucket the token names (the
/// name, base64url, as ListObjectsV2's tokens), at most `max-buckets`; a token when more remain.
fn page_of_buckets(all: Vec<Bucket>, input: &ListBucketsInput) -> S3Result<(Vec<Bucket>, Option<String>)> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let after = match input.continuation_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(
            b64.decode(t)
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| s3_error!(InvalidArgument, "invalid continuation token"))?,
        ),
        None => None,
    };
    let max = match input.max_buckets {
        Some(m) if !(1..=10_000).contains(&m) => {
            return Err(s3_error!(InvalidArgument, "max-buckets is 1 to 10000"));
        }
        Some(m) => m as usize,
        None => usize::MAX,
    };
    let prefix = input.prefix.as_deref().unwrap_or("");
    let mut rest = all.into_iter().filter(|b| {
        let name = b.name.as_deref().unwrap_or("");
        name.starts_with(prefix) && after.as_deref().is_none_or(|a| name > a)
    });
    let page: Vec<Bucket> = rest.by_ref().take(max).collect();
    let more = rest.next().is_some();
    let token = more.then(|| page.last().and_then(|b| b.name.as_deref()).map(|n| b64.encode(n))).flatten();
    Ok((page, token))
}

pub async fn create(s3: &DavitS3, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
    let p = s3.principal(&req).await?;
    let bucket = &req.input.bucket;
    names::check_new_bucket(bucket, &s3.reserved)?;
    match s3.storage.mkdir(&p, &format!("/{bucket}")).await {
        Ok(_) => {
            if req.input.object_lock_enabled_for_bucket == Some(true) {
                crate::object_lock::enable(s3, &p, bucket).await?;
            }
            Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{bucket}")) }))
        }
        // Creating again a bucket one has: us-east-1 (davit's region, GetBucketLocation's
        // empty answer) says 200 and leaves it as it is (s3-tests'
        // test_bucket_recreate_not_overriding); a file of that name is still a refusal.
        Err(davit_storage::Error::AlreadyExists(_)) if s3.bucket(&p, bucket).await.is_ok() => {
            Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{bucket}")) }))
        }
        Err(e) => Err(bucket_error(e)),
    }
}

pub async fn head(s3: &DavitS3, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    Ok(S3Response::new(HeadBucketOutput::default()))
}

pub async fn delete(s3: &DavitS3, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
    let p = s3.principal(&req).await?;
    let bucket = &req.input.bucket;
    if bucket == davit_storage::names::SHARED_ROOT {
        return Err(s3_error!(AccessDenied, "the shared bucket cannot be deleted"));
    }
    s3.storage.remove_empty_folder(&p, &format!("/{bucket}")).await.map_err(bucket_error)?;
    Ok(S3Response::new(DeleteBucketOutput::default()))
}

pub async fn location(
    s3: &DavitS3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    Ok(S3Response::new(GetBucketLocationOutput::default()))
}
