//! Bucket operations: a bucket is a top-level folder of the drive with a valid bucket name.

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
    let owner = Owner { display_name: Some(p.username().to_owned()), id: Some(s3.storage.canonical_id(p.user_id())) };
    Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), owner: Some(owner), ..Default::default() }))
}

pub async fn create(s3: &DavitS3, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
    let p = s3.principal(&req).await?;
    let bucket = &req.input.bucket;
    names::check_new_bucket(bucket, &s3.reserved)?;
    match s3.storage.mkdir(&p, &format!("/{bucket}")).await {
        Ok(_) => Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{bucket}")) })),
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
