//! Versioning: Put/GetBucketVersioning, ListObjectVersions, and the `versionId` of GET,
//! HEAD, DELETE and CopyObject, all mapped onto the core's versions (`davit_storage::
//! Versioning`), which WebDAV and REST writes share.

use davit_http::system_time;
use davit_storage::{Principal, VersionInfo, VersionQuery, Versioning};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::{bucket_error, s3_error as map};
use crate::stored::etag;

pub async fn get_bucket_versioning(
    s3: &DavitS3,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    let state = s3.storage.versioning(&p, &format!("/{}", req.input.bucket)).await.map_err(bucket_error)?;
    let status = match state {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)),
        Versioning::Suspended => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED)),
    };
    Ok(S3Response::new(GetBucketVersioningOutput { status, ..Default::default() }))
}

pub async fn put_bucket_versioning(
    s3: &DavitS3,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    if input.versioning_configuration.mfa_delete.is_some() || input.mfa.is_some() {
        return Err(s3_error!(NotImplemented, "MFA delete is not supported"));
    }
    let state = match input.versioning_configuration.status.as_ref().map(|s| s.as_str()) {
        Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        _ => return Err(s3_error!(MalformedXML, "Status must be Enabled or Suspended")),
    };
    if state == Versioning::Suspended {
        crate::object_lock::check_suspend(s3, &p, &input.bucket).await?;
    }
    let path = format!("/{}", input.bucket);
    s3.storage.set_versioning(&p, &path, state).await.map_err(bucket_error)?;
    Ok(S3Response::new(PutBucketVersioningOutput::default()))
}

pub async fn list_object_versions(
    s3: &DavitS3,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max = input.max_keys.map_or(1000, |m| m.clamp(0, 1000) as usize);
    let url = input.encoding_type.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL);
    let key_marker = input.key_marker.as_deref().filter(|m| !m.is_empty());
    let q = VersionQuery {
        prefix: &prefix,
        key_marker,
        version_marker: input.version_id_marker.as_deref().filter(|m| !m.is_empty()),
        delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()),
        max,
    };
    let listing = s3.storage.list_versions(&p, &format!("/{}", input.bucket), q).await.map_err(bucket_error)?;
    let who = crate::list::owner(s3, &p);
    let (mut versions, mut markers) = (Vec::new(), Vec::new());
    for v in &listing.versions {
        let key = Some(crate::list::encode(&v.key, url));
        let last_modified = Some(Timestamp::from(system_time(v.item.modified)));
        if v.marker {
            markers.push(DeleteMarkerEntry {
                is_latest: Some(v.latest),
                key,
                last_modified,
                owner: Some(who.clone()),
                version_id: Some(v.id.clone()),
            });
        } else {
            versions.push(ObjectVersion {
                e_tag: Some(etag(&v.item)),
                is_latest: Some(v.latest),
                key,
                last_modified,
                owner: Some(who.clone()),
                size: Some(v.item.size as i64),
                storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
                version_id: Some(v.id.clone()),
                ..Default::default()
            });
        }
    }
    let prefixes =
        listing.common_prefixes.iter().map(|cp| CommonPrefix { prefix: Some(crate::list::encode(cp, url)) }).collect();
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket),
        prefix: Some(crate::list::encode(&prefix, url)),
        delimiter: input.delimiter,
        max_keys: Some(max as i32),
        is_truncated: Some(listing.truncated),
        key_marker: input.key_marker,
        version_id_marker: input.version_id_marker,
        next_key_marker: listing.next_key_marker.map(|k| crate::list::encode(&k, url)),
        next_version_id_marker: listing.next_version_marker,
        encoding_type: input.encoding_type,
        versions: Some(versions),
        delete_markers: Some(markers),
        common_prefixes: Some(prefixes),
        ..Default::default()
    }))
}

/// GET or HEAD of a delete marker by its id: 405, saying it is one.
fn marker_refusal(info: &VersionInfo) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::MethodNotAllowed, "the version is a delete marker");
    e.set_status_code(http::StatusCode::METHOD_NOT_ALLOWED);
    let mut h = http::HeaderMap::new();
    h.insert("x-amz-delete-marker", http::HeaderValue::from_static("true"));
    if let Ok(v) = http::HeaderValue::from_str(&info.id) {
        h.insert("x-amz-version-id", v);
    }
    e.set_headers(h);
    e
}

/// The version of a key a GET or HEAD with `versionId` names (a delete marker refused).
pub(crate) async fn stat_version(
    s3: &DavitS3,
    p: &Principal,
    bucket: &str,
    key: &str,
    id: &str,
) -> S3Result<VersionInfo> {
    let path = crate::names::file_path(bucket, key)?;
    let info = match s3.storage.stat_version(p, &path, id).await {
        Ok(info) => info,
        Err(e) => {
            s3.bucket(p, bucket).await?;
            return Err(version_error(e));
        }
    };
    if info.marker {
        return Err(marker_refusal(&info));
    }
    Ok(info)
}

/// Opens a byte range of a version found by [`stat_version`].
pub(crate) async fn read_version(
    s3: &DavitS3,
    p: &Principal,
    bucket: &str,
    key: &str,
    id: &str,
    range: Option<(u64, Option<u64>)>,
) -> S3Result<davit_storage::FileRead> {
    let path = crate::names::file_path(bucket, key)?;
    match s3.storage.read_version(p, &path, id, range).await.map_err(version_error)? {
        (_, Some(read)) => Ok(read),
        (info, None) => Err(marker_refusal(&info)),
    }
}

/// A version the key does not have is NoSuchVersion; the rest as any refusal.
fn version_error(e: davit_storage::Error) -> S3Error {
    match e {
        davit_storage::Error::NotFound(m) if m.what == davit_storage::What::Version => {
            S3Error::with_message(S3ErrorCode::NoSuchVersion, m.to_string())
        }
        e => map(e),
    }
}

/// DeleteObject with a `versionId`: that version goes for good. Returns (version id,
/// whether it was a delete marker).
pub(crate) async fn delete_version(
    s3: &DavitS3,
    p: &Principal,
    bucket: &str,
    key: &str,
    id: &str,
    bypass: bool,
) -> S3Result<(String, bool)> {
    let path = crate::names::file_path(bucket, key)?;
    match s3.storage.delete_version(p, &path, id, bypass).await {
        Ok(info) => Ok((info.id, info.marker)),
        // S3 answers a delete of a version that is not there with success.
        Err(davit_storage::Error::NotFound(_)) => Ok((id.to_owned(), false)),
        Err(e) => Err(version_error(e)),
    }
}

/// The id of the version a write just made current (for `x-amz-version-id`): none for a
/// `null` version (a suspended bucket's write answers no id, as s3-tests'
/// test_versioning_bucket_atomic_upload_return_version_id expects).
pub(crate) async fn made(s3: &DavitS3, item: &davit_storage::Item) -> Option<String> {
    s3.storage.current_version_id(item.id).await.ok().flatten().filter(|id| id != "null")
}

/// CopyObject from a source `versionId`: the version's content becomes current at `to`.
pub(crate) async fn copy_from_version(
    s3: &DavitS3,
    p: &Principal,
    from: &str,
    id: &str,
    to: &str,
    lock: davit_storage::VersionLock,
) -> S3Result<davit_storage::Item> {
    s3.storage.copy_version_locked(p, from, id, to, true, lock).await.map_err(|e| match e {
        davit_storage::Error::InvalidInput(m) => S3Error::with_message(S3ErrorCode::InvalidRequest, m),
        e => version_error(e),
    })
}

/// NoSuchKey, saying so when the key's latest version is a delete marker (the headers S3
/// adds: `x-amz-delete-marker`, and the marker's id).
pub(crate) async fn no_such_key(s3: &DavitS3, p: &Principal, path: &str) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::NoSuchKey, "no such key");
    if let Ok(Some(id)) = s3.storage.latest_marker(p, path).await {
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-delete-marker", http::HeaderValue::from_static("true"));
        if let Ok(v) = http::HeaderValue::from_str(&id) {
            h.insert("x-amz-version-id", v);
        }
        e.set_headers(h);
    }
    e
}
