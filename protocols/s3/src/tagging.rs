//! Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging, and
//! the `x-amz-tagging` header of writes. The core keeps the tags and their rules
//! (`davit_storage::tagging`); here they are S3's XML and header forms and error codes.

use davit_storage::{Error, TagTarget};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::{bucket_error, s3_error as map};
use crate::names::key_path;

/// A call that sets tags: the core's refusal of their content is S3's InvalidTag.
pub(crate) fn tag_error(e: Error) -> S3Error {
    match e {
        Error::InvalidInput(m) => S3Error::with_message(S3ErrorCode::InvalidTag, m),
        e => map(e),
    }
}

fn invalid_tag(m: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, m.to_owned())
}

/// A TagSet as (key, value) pairs; a tag without a key is refused.
pub(crate) fn pairs(set: TagSet) -> S3Result<Vec<(String, String)>> {
    set.into_iter()
        .map(|t| match t.key {
            Some(k) => Ok((k, t.value.unwrap_or_default())),
            None => Err(invalid_tag("a tag has no key")),
        })
        .collect()
}

pub(crate) fn tag_set(tags: Vec<(String, String)>) -> TagSet {
    tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect()
}

fn unhex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// One URL-encoded component (`+` is a space, as in a form).
fn decode(s: &str) -> S3Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(unhex);
                let lo = bytes.get(i + 2).copied().and_then(unhex);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(invalid_tag("x-amz-tagging is not URL-encoded"));
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| invalid_tag("x-amz-tagging is not UTF-8"))
}

/// The `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded; a key alone has an empty value),
/// checked against the object limits.
pub(crate) fn from_header(header: Option<&str>) -> S3Result<Option<Vec<(String, String)>>> {
    let Some(h) = header else { return Ok(None) };
    let mut tags = Vec::new();
    for part in h.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        tags.push((decode(k)?, decode(v)?));
    }
    davit_storage::tagging::check_object_tags(&tags).map_err(tag_error)?;
    Ok(Some(tags))
}

/// The object's path; a key naming a folder is the folder's (S3's `dir/` object). `f/`
/// names no object when `f` is a file (the path would reach it: see `names`).
async fn object_path(s3: &DavitS3, p: &davit_storage::Principal, bucket: &str, key: &str) -> S3Result<String> {
    let path = key_path(bucket, key)?;
    if key.ends_with('/') && s3.storage.stat(p, &path).await.is_ok_and(|item| !crate::names::names(key, &item)) {
        return Err(s3_error!(NoSuchKey, "no such key"));
    }
    Ok(path)
}

/// The core's refusals of a call naming a version: S3's NoSuchVersion, and 405 for a delete
/// marker (which has no tags).
fn version_error(e: Error) -> S3Error {
    match e {
        Error::NotFound(m) if m.what == davit_storage::What::Version => {
            S3Error::with_message(S3ErrorCode::NoSuchVersion, m.to_string())
        }
        Error::InvalidInput(m) if m == davit_storage::MARKER_TAGS => {
            let mut e = S3Error::with_message(S3ErrorCode::MethodNotAllowed, m);
            e.set_status_code(http::StatusCode::METHOD_NOT_ALLOWED);
            e
        }
        e => tag_error(e),
    }
}

/// Sets the tags of the object, or of one version of it when `version` names one.
async fn set_object_tags(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    path: &str,
    version: Option<&str>,
    tags: Vec<(String, String)>,
) -> S3Result<()> {
    match version {
        Some(v) => s3.storage.set_version_tags(p, path, v, tags).await.map_err(version_error),
        None => s3.storage.set_tags(p, path, tags, TagTarget::Object).await.map_err(tag_error),
    }
}

pub async fn put_object_tagging(
    s3: &DavitS3,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let path = object_path(s3, &p, &input.bucket, &input.key).await?;
    let tags = pairs(input.tagging.tag_set)?;
    set_object_tags(s3, &p, &path, input.version_id.as_deref(), tags).await?;
    Ok(S3Response::new(PutObjectTaggingOutput { version_id: input.version_id }))
}

pub async fn get_object_tagging(
    s3: &DavitS3,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let path = object_path(s3, &p, &input.bucket, &input.key).await?;
    let tags = match input.version_id.as_deref() {
        Some(v) => s3.storage.version_tags(&p, &path, v).await.map_err(version_error)?,
        None => s3.storage.tags(&p, &path).await.map_err(map)?,
    };
    Ok(S3Response::new(GetObjectTaggingOutput { tag_set: tag_set(tags), version_id: input.version_id }))
}

pub async fn delete_object_tagging(
    s3: &DavitS3,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let path = object_path(s3, &p, &input.bucket, &input.key).await?;
    set_object_tags(s3, &p, &path, input.version_id.as_deref(), Vec::new()).await?;
    Ok(S3Response::new(DeleteObjectTaggingOutput { version_id: input.version_id }))
}

pub async fn put_bucket_tagging(
    s3: &DavitS3,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    let tags = pairs(input.tagging.tag_set)?;
    let path = format!("/{}", input.bucket);
    s3.storage.set_tags(&p, &path, tags, TagTarget::Bucket).await.map_err(|e| match e {
        e @ Error::NotFound(_) => bucket_error(e),
        e => tag_error(e),
    })?;
    Ok(S3Response::new(PutBucketTaggingOutput::default()))
}

pub async fn get_bucket_tagging(
    s3: &DavitS3,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    let tags = s3.storage.tags(&p, &format!("/{}", input.bucket)).await.map_err(bucket_error)?;
    if tags.is_empty() {
        return Err(s3_error!(NoSuchTagSet, "the bucket has no tags"));
    }
    Ok(S3Response::new(GetBucketTaggingOutput { tag_set: tag_set(tags) }))
}

pub async fn delete_bucket_tagging(
    s3: &DavitS3,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    let path = format!("/{}", input.bucket);
    s3.storage.set_tags(&p, &path, Vec::new(), TagTarget::Bucket).await.map_err(bucket_error)?;
    Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
}

/// What S3 sends with an object just read or written: `x-amz-tagging-count` (None when it
/// has no tags, as S3 omits it) and `x-amz-expiration` (when a lifecycle rule will expire it).
pub(crate) struct Extras {
    pub tag_count: Option<i32>,
    pub expiration: Option<String>,
}

/// [`extras`] of version `version` of the object at `path` when a read names one: an old
/// version's tags are its own, not its file's.
pub(crate) async fn extras_of_version(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    path: &str,
    item: &davit_storage::Item,
    version: Option<&str>,
) -> S3Result<Extras> {
    let mut e = extras(s3, item).await?;
    if let Some(v) = version {
        let n = s3.storage.version_tags(p, path, v).await.map_err(version_error)?.len();
        e.tag_count = (n > 0).then_some(n as i32);
    }
    Ok(e)
}

pub(crate) async fn extras(s3: &DavitS3, item: &davit_storage::Item) -> S3Result<Extras> {
    let e = s3.storage.object_extras(item).await.map_err(map)?;
    Ok(Extras {
        tag_count: (e.tag_count > 0).then_some(e.tag_count as i32),
        expiration: e.expiry.map(|(at, rule)| {
            format!("expiry-date=\"{}\", rule-id=\"{}\"", davit_http::http_date(at), rule.replace('"', "'"))
        }),
    })
}
