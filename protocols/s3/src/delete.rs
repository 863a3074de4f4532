//! DeleteObject and DeleteObjects: a key ending in `/` is a folder, removed when empty.

use davit_storage::Error;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

/// S3's limit on the keys of one DeleteObjects request.
const MAX_KEYS: usize = 1000;

use crate::DavitS3;
use crate::errors::s3_error as map;
use crate::names::key_path;

async fn delete_key(s3: &DavitS3, p: &davit_storage::Principal, bucket: &str, key: &str) -> S3Result<()> {
    let path = key_path(bucket, key)?;
    let r = if key.ends_with('/') {
        match s3.storage.remove_empty_folder(p, &path).await {
            Err(Error::NotFound(_)) => Ok(()),
            r => r,
        }
    } else {
        // Folders the key implied go with it when they are left empty, as on S3.
        s3.storage.delete_object(p, &path, 1).await
    };
    r.map_err(map)
}

pub async fn delete_object(
    s3: &DavitS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    delete_key(s3, &p, &req.input.bucket, &req.input.key).await?;
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub async fn delete_objects(
    s3: &DavitS3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    if input.delete.objects.len() > MAX_KEYS {
        return Err(s3_error!(MalformedXML, "a DeleteObjects request names at most {MAX_KEYS} keys"));
    }
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for obj in input.delete.objects {
        match delete_key(s3, &p, &input.bucket, &obj.key).await {
            Ok(()) => {
                if !quiet {
                    deleted.push(DeletedObject { key: Some(obj.key), ..Default::default() });
                }
            }
            Err(e) => errors.push(s3s::dto::Error {
                key: Some(obj.key),
                code: Some(e.code().as_str().to_owned()),
                message: e.message().map(str::to_owned),
                ..Default::default()
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput { deleted: Some(deleted), errors: Some(errors), ..Default::default() }))
}
