//! DeleteObject and DeleteObjects: a key ending in `/` is a folder, removed when empty; a
//! key without one that names a folder names no object, and nothing is deleted.

use davit_storage::Error;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

/// S3's limit on the keys of one DeleteObjects request.
const MAX_KEYS: usize = 1000;

use crate::DavitS3;
use crate::errors::s3_error as map;
use crate::names::key_path;

/// Deletes a key, or one version of it; answers (version id, whether it is a delete marker):
/// the marker a versioned bucket leaves, or the version removed.
async fn delete_key(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    bypass: bool,
    if_match: Option<&ETagCondition>,
) -> S3Result<(Option<String>, bool)> {
    if let Some(id) = version {
        if if_match.is_some() {
            return Err(s3_error!(NotImplemented, "a conditional delete of a version is not supported"));
        }
        let (id, marker) = crate::versions::delete_version(s3, p, bucket, key, id, bypass).await?;
        return Ok((Some(id), marker));
    }
    let path = key_path(bucket, key)?;
    // S3's conditional delete: checked on the object as the delete commits; a missing one
    // (a folder's key names none) is NoSuchKey, another ETag 412.
    let conditions = crate::put::write_conditions(s3, p, &path, if_match, None).await?;
    if if_match.is_some() && key.ends_with('/') {
        return Err(s3_error!(NoSuchKey, "no such key"));
    }
    let r = if key.ends_with('/') {
        match s3.storage.remove_empty_folder(p, &path).await {
            // A folder that holds objects stays, as their keys imply it; S3 answers success
            // for a key it lacks, and such a folder lists as their common prefix either way.
            // A file in its place is not the key either (`f/` is not `f`).
            Err(Error::NotFound(_) | Error::NotEmpty(_) | Error::Conflict(_)) => Ok(None),
            r => r.map(|()| None),
        }
    } else {
        // Folders the key implied go with it when they are left empty, as on S3.
        s3.storage.delete_object_if(p, &path, 1, conditions).await
    };
    let marker = r.map_err(map)?;
    let is_marker = marker.is_some();
    Ok((marker, is_marker))
}

pub async fn delete_object(
    s3: &DavitS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    let input = req.input;
    let bypass = input.bypass_governance_retention.unwrap_or(false);
    let (version_id, marker) =
        delete_key(s3, &p, &input.bucket, &input.key, input.version_id.as_deref(), bypass, input.if_match.as_ref())
            .await?;
    Ok(S3Response::new(DeleteObjectOutput { delete_marker: marker.then_some(true), version_id, ..Default::default() }))
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
    let bypass = input.bypass_governance_retention.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for obj in input.delete.objects {
        let if_match = obj.e_tag.map(ETagCondition::ETag);
        match delete_key(s3, &p, &input.bucket, &obj.key, obj.version_id.as_deref(), bypass, if_match.as_ref()).await {
            Ok((version, marker)) => {
                if !quiet {
                    // A versionId asked for names the version removed; a plain delete in a
                    // versioned bucket names the marker it left.
                    let (version_id, marker_id) = match (&obj.version_id, version) {
                        (Some(asked), _) => (Some(asked.clone()), None),
                        (None, made) => (None, made),
                    };
                    deleted.push(DeletedObject {
                        key: Some(obj.key),
                        version_id,
                        delete_marker: marker.then_some(true),
                        delete_marker_version_id: marker_id,
                    });
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
