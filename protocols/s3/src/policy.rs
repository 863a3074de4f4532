//! Bucket policies: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus over the core's
//! shares (`davit_storage::s3_grants`), which decide everything; this maps S3's shapes and
//! errors.

use davit_storage::Error;
use davit_storage::s3_grants::Within;
use davit_storage::s3_policy::{Asked, Audience, Refusal, parse_policy};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::bucket_error;

/// A refused document: not valid (MalformedPolicy, or `malformed` for ACLs), or valid S3 a
/// davit share cannot say (NotImplemented).
pub(crate) fn refusal(r: Refusal, malformed: S3ErrorCode) -> S3Error {
    match r {
        Refusal::Malformed(m) => S3Error::with_message(malformed, m),
        Refusal::Unsupported(m) => S3Error::with_message(S3ErrorCode::NotImplemented, m),
    }
}

/// A core refusal of a policy or ACL change: a principal the core does not know is part of
/// a malformed document; the rest as any call on a bucket.
pub(crate) fn change_error(e: Error, malformed: S3ErrorCode) -> S3Error {
    match e {
        Error::InvalidInput(m) => S3Error::with_message(malformed, m),
        Error::Conflict(m) => S3Error::with_message(S3ErrorCode::OperationAborted, m),
        e => bucket_error(e),
    }
}

pub async fn put(s3: &DavitS3, req: S3Request<PutBucketPolicyInput>) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let p = s3.principal(&req).await?;
    let bucket = &req.input.bucket;
    let asked = parse_policy(bucket, &req.input.policy).map_err(|r| refusal(r, S3ErrorCode::MalformedPolicy))?;
    s3.storage
        .set_bucket_sharing(&p, bucket, Within::Everything, asked)
        .await
        .map_err(|e| change_error(e, S3ErrorCode::MalformedPolicy))?;
    Ok(S3Response::new(PutBucketPolicyOutput::default()))
}

pub async fn get(s3: &DavitS3, req: S3Request<GetBucketPolicyInput>) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let p = s3.principal(&req).await?;
    let bucket = &req.input.bucket;
    let sharing = s3.storage.bucket_sharing(&p, bucket, Within::Everything).await.map_err(bucket_error)?;
    let policy = sharing
        .policy(bucket)
        .ok_or_else(|| s3_error!(NoSuchBucketPolicy, "bucket {bucket} has no policy: nothing in it is shared"))?;
    Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(policy) }))
}

pub async fn delete(
    s3: &DavitS3,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let p = s3.principal(&req).await?;
    s3.storage
        .set_bucket_sharing(&p, &req.input.bucket, Within::Everything, Asked::default())
        .await
        .map_err(bucket_error)?;
    Ok(S3Response::with_status(DeleteBucketPolicyOutput::default(), http::StatusCode::NO_CONTENT))
}

pub async fn status(
    s3: &DavitS3,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let p = s3.principal(&req).await?;
    let sharing = s3.storage.bucket_sharing(&p, &req.input.bucket, Within::Bucket).await.map_err(bucket_error)?;
    // As S3 counts it: readable to anyone, or to every signed-in user.
    let status = PolicyStatus { is_public: Some(sharing.audience != Audience::Private) };
    Ok(S3Response::new(GetBucketPolicyStatusOutput { policy_status: Some(status) }))
}
