//! CopyObject: the core's copy, behind the copy-source conditions; with the REPLACE
//! directive the copy then takes the request's metadata.

use davit_http::system_time;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::checksum::{self, set_fields};
use crate::errors::s3_error as map;
use crate::names::key_path;
use crate::stored::{etag, kept_headers};

pub async fn copy_object(s3: &DavitS3, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
    let p = s3.principal(&req).await?;
    // s3s's model of CopyObject predates its conditional writes: read from the headers.
    let if_match = destination_condition(&req.headers, "if-match")?;
    let if_none_match = destination_condition(&req.headers, "if-none-match")?;
    let mut input = req.input;
    crate::acl::check_new_object(input.acl.as_ref(), crate::acl::grants!(input))?;
    let CopySource::Bucket { bucket: src_bucket, key: src_key, version_id: src_version } = &input.copy_source else {
        return Err(s3_error!(NotImplemented, "access point copy sources are not supported"));
    };
    s3.bucket(&p, src_bucket).await?;
    s3.bucket(&p, &input.bucket).await?;
    let from = key_path(src_bucket, src_key)?;
    let to = crate::names::new_file_path(&input.bucket, &input.key)?;
    let lock = crate::object_lock::asked_by!(s3, &p, input).await?;
    let src = match src_version.as_deref() {
        Some(v) => crate::versions::stat_version(s3, &p, src_bucket, src_key, v).await?.item,
        None => s3.storage.stat(&p, &from).await.map_err(map)?,
    };
    if src.is_folder() || src_key.ends_with('/') {
        return Err(s3_error!(NoSuchKey, "no such key"));
    }
    crate::get::copy_source_conditions!(&src, input)?;
    for (name, d) in [
        ("metadata", input.metadata_directive.as_ref().map(MetadataDirective::as_str)),
        ("tagging", input.tagging_directive.as_ref().map(TaggingDirective::as_str)),
    ] {
        if d.is_some_and(|d| d != "COPY" && d != "REPLACE") {
            return Err(s3_error!(InvalidArgument, "unknown {name} directive: COPY or REPLACE"));
        }
    }
    // REPLACE gives the copy the request's tags (or none); COPY, the default, keeps the
    // source's, which the core's copy takes along.
    let replace_tags = input.tagging_directive.as_ref().is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
    let new_tags = if replace_tags { crate::tagging::from_header(input.tagging.as_deref())? } else { None };
    let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    // Refused before anything is copied.
    let new_meta =
        if replace { crate::put::user_meta(input.metadata.take().into_iter().flatten())? } else { Vec::new() };
    if from == to && !replace && !replace_tags && src_version.is_none() {
        return Err(s3_error!(InvalidRequest, "copying an object onto itself needs the REPLACE metadata directive"));
    }
    let conditions = crate::put::write_conditions(s3, &p, &to, if_match.as_ref(), if_none_match.as_ref()).await?;
    if src_version.is_some() || from == to {
        // These copies do not go through the core's `copy_object`: checked just before.
        let current = match s3.storage.stat(&p, &to).await {
            Ok(item) => Some(item),
            Err(davit_storage::Error::NotFound(_)) => None,
            Err(e) => return Err(map(e)),
        };
        conditions.check(current.as_ref()).map_err(map)?;
    }
    let mut item = if let Some(v) = src_version.as_deref() {
        // A version's content becomes current at the destination (a restore when it is
        // the same key).
        crate::versions::copy_from_version(s3, &p, &from, v, &to, lock).await?
    } else if from == to {
        // No new version is made (only metadata or tags change below), so the lock goes
        // on the version that is there.
        crate::object_lock::set_on_current(s3, &p, &to, lock).await?;
        src.clone()
    } else {
        if let Some(parent) = to.rsplit_once('/').map(|(d, _)| d).filter(|d| d.matches('/').count() >= 2) {
            s3.storage.mkdir_all(&p, parent).await.map_err(map)?;
        }
        let object = davit_storage::ObjectCopy { lock, conditions };
        s3.storage.copy_object(&p, &from, &to, object).await.map_err(map)?.0
    };
    if replace {
        let mut headers = kept_headers!(input);
        // The content stays, and so does its checksum.
        headers.extend(checksum::kept(&src.headers));
        item = s3.storage.set_metadata(&p, &to, input.content_type, headers, new_meta).await.map_err(map)?;
    }
    if replace_tags {
        let tags = new_tags.unwrap_or_default();
        s3.storage
            .set_tags(&p, &to, tags, davit_storage::TagTarget::Object)
            .await
            .map_err(crate::tagging::tag_error)?;
    }
    let mut result = CopyObjectResult {
        e_tag: Some(etag(&item)),
        last_modified: Some(Timestamp::from(system_time(item.modified))),
        ..Default::default()
    };
    result.checksum_type = set_fields!(result, checksum::of_item(&item));
    let version_id = crate::versions::made(s3, &item).await;
    let copy_source_version_id = src_version.as_deref().map(str::to_owned);
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(result),
        version_id,
        copy_source_version_id,
        server_side_encryption: crate::sse::aes256(),
        ..Default::default()
    }))
}

/// The destination's `If-Match` or `If-None-Match` of a CopyObject (`name`), if sent.
fn destination_condition(headers: &http::HeaderMap, name: &str) -> S3Result<Option<ETagCondition>> {
    headers
        .get(name)
        .map(|v| ETagCondition::parse_http_header(v.as_bytes()))
        .transpose()
        .map_err(|_| s3_error!(InvalidArgument, "{name} is not an ETag or *"))
}
