//! Multipart uploads: parts are chunked as they arrive; completion copies no data.

use davit_storage::WriteOptions;
use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::checksum::{self, Wanted, set_fields};
use crate::errors::{s3_error as map, upload_error};
use crate::names::key_path;
use davit_http::system_time;
use davit_storage::{CombineParts, PartOptions};

/// Where an upload keeps the checksum type its creation asked for (`FULL_OBJECT` or
/// `COMPOSITE`), among the headers the object takes at completion.
const CHECKSUM_TYPE: &str = "x-amz-checksum-type";

/// The upload must belong to this bucket and key.
async fn owned_upload(s3: &DavitS3, p: &davit_storage::Principal, bucket: &str, key: &str, id: &str) -> S3Result<u64> {
    Ok(owned(s3, p, bucket, key, id).await?.id)
}

/// The caller's upload `id` for this key, in a bucket that still exists for the caller (an
/// upload does not outlive its bucket: NoSuchBucket, as S3 answers).
async fn owned(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    bucket: &str,
    key: &str,
    id: &str,
) -> S3Result<davit_storage::multipart::Upload> {
    s3.bucket(p, bucket).await?;
    owned_anywhere(s3, p, bucket, key, id).await
}

/// [`owned`] whether its bucket exists or not: an abort frees the parts of an upload whose
/// bucket was removed.
async fn owned_anywhere(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    bucket: &str,
    key: &str,
    id: &str,
) -> S3Result<davit_storage::multipart::Upload> {
    let id = s3.storage.resolve_upload(id).await.map_err(map)?;
    let up = s3.storage.get_upload(p, id).await.map_err(map)?;
    if up.path != key_path(bucket, key)? {
        return Err(s3_error!(NoSuchUpload, "no such upload for this key"));
    }
    Ok(up)
}

/// The checksum type a creation asks for, refused where S3 has no such combination: SHA
/// digests combine only as COMPOSITE, CRC64NVME only as FULL_OBJECT.
fn wanted_type(input: &CreateMultipartUploadInput) -> S3Result<Option<(String, String)>> {
    let Some(t) = &input.checksum_type else { return Ok(None) };
    let alg = input.checksum_algorithm.as_ref().map(|a| a.as_str().to_ascii_uppercase());
    match (t.as_str(), alg.as_deref()) {
        (ChecksumType::FULL_OBJECT, Some("SHA1" | "SHA256")) | (ChecksumType::COMPOSITE, Some("CRC64NVME")) => {
            Err(s3_error!(
                InvalidRequest,
                "The {} checksum type cannot be used with the {} algorithm.",
                t.as_str(),
                alg.unwrap_or_default()
            ))
        }
        (ChecksumType::FULL_OBJECT | ChecksumType::COMPOSITE, _) => {
            Ok(Some((CHECKSUM_TYPE.to_owned(), t.as_str().to_owned())))
        }
        _ => Err(s3_error!(InvalidRequest, "x-amz-checksum-type is FULL_OBJECT or COMPOSITE")),
    }
}

pub async fn create(
    s3: &DavitS3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    crate::acl::check_new_object(input.acl.as_ref(), crate::acl::grants!(input))?;
    s3.bucket(&p, &input.bucket).await?;
    let path = crate::names::new_file_path(&input.bucket, &input.key)?;
    let kind = wanted_type(&input)?;
    let mut headers = crate::stored::kept_headers!(input);
    headers.extend(kind);
    let lock = crate::object_lock::asked_by!(s3, &p, input).await?;
    headers.extend(crate::object_lock::upload_headers(&lock));
    let opts = WriteOptions {
        content_type: input.content_type.clone(),
        headers,
        user_meta: crate::put::user_meta(input.metadata.into_iter().flatten())?,
        tags: crate::tagging::from_header(input.tagging.as_deref())?,
        ..Default::default()
    };
    let started = s3.storage.start_upload(&p, &path, opts).await.map_err(map)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(started.token),
        checksum_type: input.checksum_type,
        // Each part is checked with the algorithm the client names; SDKs expect it echoed.
        checksum_algorithm: input.checksum_algorithm,
        server_side_encryption: crate::sse::aes256(),
        ..Default::default()
    }))
}

pub async fn upload_part(s3: &DavitS3, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
    let p = s3.principal(&req).await?;
    let S3Request { input, headers, trailing_headers, .. } = req;
    let id = owned_upload(s3, &p, &input.bucket, &input.key, &input.upload_id).await?;
    let wanted = Wanted::of_request(checksum::values!(input), &headers, trailing_headers)?;
    let body = input.body.ok_or_else(|| s3_error!(IncompleteBody, "no body"))?;
    let (stream, outcome) = checksum::verify(body.map(|r| r.map_err(std::io::Error::other)).boxed(), wanted);
    let number = u32::try_from(input.part_number).map_err(|_| s3_error!(InvalidArgument, "bad part number"))?;
    let opts = PartOptions {
        expected_len: input.content_length.map(|l| l as u64),
        expected_md5: crate::put::content_md5(&input.content_md5)?,
        checksum: Some(outcome.verified()),
    };
    let stored = s3.storage.upload_part(&p, id, number, stream, opts).await;
    // A part keeps its checksum for ListParts and completion; they are not combined into
    // one for the object.
    let (part, sum) = outcome.settle(stored, upload_error)?;
    let mut out = UploadPartOutput {
        e_tag: Some(ETag::Strong(part.etag)),
        server_side_encryption: crate::sse::aes256(),
        ..Default::default()
    };
    let _ = set_fields!(out, sum);
    Ok(S3Response::new(out))
}

pub async fn upload_part_copy(
    s3: &DavitS3,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let id = owned_upload(s3, &p, &input.bucket, &input.key, &input.upload_id).await?;
    let CopySource::Bucket { bucket: sb, key: sk, version_id: sv } = &input.copy_source else {
        return Err(s3_error!(NotImplemented, "access point copy sources are not supported"));
    };
    s3.bucket(&p, sb).await?;
    if sk.ends_with('/') {
        // A folder, or nothing: `f/` is not the file `f` (see `names`).
        return Err(s3_error!(NoSuchKey, "no such key"));
    }
    let from = key_path(sb, sk)?;
    let range = match &input.copy_source_range {
        None => None,
        Some(r) => {
            let spec = r
                .trim()
                .strip_prefix("bytes=")
                .ok_or_else(|| s3_error!(InvalidArgument, "x-amz-copy-source-range must be bytes=first-last"))?;
            let (a, b) = spec
                .split_once('-')
                .ok_or_else(|| s3_error!(InvalidArgument, "x-amz-copy-source-range must be bytes=first-last"))?;
            let first: u64 = a.parse().map_err(|_| s3_error!(InvalidArgument, "bad copy source range"))?;
            let last: u64 = b.parse().map_err(|_| s3_error!(InvalidArgument, "bad copy source range"))?;
            if last < first {
                return Err(s3_error!(InvalidArgument, "bad copy source range"));
            }
            Some((first, Some(last)))
        }
    };
    // The range is read and chunked again: chunk boundaries rarely fall on its edges, and
    // the identical chunks inside it dedupe against the source.
    let read = match sv.as_deref() {
        Some(v) => crate::versions::read_version(s3, &p, sb, sk, v, range).await?,
        None => s3.storage.read(&p, &from, range).await.map_err(map)?,
    };
    // On the version being read, so that no write between a check and the read can slip in:
    // a managed copy (s3transfer) sends the source's ETag with every part, and a part of a
    // newer source would otherwise be spliced onto parts of the older one.
    crate::get::copy_source_conditions!(&read.item, input)?;
    // A copied range is all inside the source, or refused: the core clamps what it reads.
    if range.is_some_and(|(_, last)| last.is_some_and(|l| l >= read.item.size)) {
        return Err(s3_error!(InvalidRange, "x-amz-copy-source-range goes past the end of the source"));
    }
    let len = read.end - read.start;
    let stream = read.body.map(|r| r.map_err(std::io::Error::other)).boxed();
    let number = u32::try_from(input.part_number).map_err(|_| s3_error!(InvalidArgument, "bad part number"))?;
    let part = s3
        .storage
        .upload_part(&p, id, number, stream, PartOptions { expected_len: Some(len), ..Default::default() })
        .await
        .map_err(upload_error)?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(part.etag)),
            last_modified: Some(Timestamp::from(system_time(part.modified))),
            ..Default::default()
        }),
        server_side_encryption: crate::sse::aes256(),
        ..Default::default()
    }))
}

pub async fn complete(
    s3: &DavitS3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let up = match owned(s3, &p, &input.bucket, &input.key, &input.upload_id).await {
        Ok(up) => up,
        Err(e) if *e.code() == s3s::S3ErrorCode::NoSuchUpload => return completed_again(s3, &p, &input, e).await,
        Err(e) => return Err(e),
    };
    let id = up.id;
    let lock = crate::object_lock::of_upload_headers(&up.headers);
    let full_object = up.headers.iter().find(|(k, _)| k == CHECKSUM_TYPE).map(|(_, v)| v == ChecksumType::FULL_OBJECT);
    let claimed = checksum::values!(input).into_iter().flatten().next().cloned();
    let mut listed = Vec::new();
    let mut sums = Vec::new();
    for part in input.multipart_upload.and_then(|m| m.parts).unwrap_or_default() {
        let n = part.part_number.ok_or_else(|| s3_error!(InvalidPart, "a part has no number"))?;
        let n = u32::try_from(n).map_err(|_| s3_error!(InvalidPart, "bad part number"))?;
        if let Some(v) = checksum::values!(part).into_iter().flatten().next() {
            sums.push((n, v.clone()));
        }
        let tag = part.e_tag.map(|e| e.value().to_owned()).unwrap_or_default();
        listed.push((n, tag));
    }
    if !sums.is_empty() {
        check_listed_checksums(s3, &p, id, &sums).await?;
    }
    if let Some(claimed) = claimed {
        check_whole_checksum(s3, &p, id, &listed, full_object, &claimed).await?;
    }
    let combine = CombineParts(std::sync::Arc::new(move |parts| checksum::combine_parts(parts, full_object)));
    let conditions =
        crate::put::write_conditions(s3, &p, &up.path, input.if_match.as_ref(), input.if_none_match.as_ref()).await?;
    let item =
        s3.storage.complete_upload_with(&p, id, listed, Some(combine), lock, conditions).await.map_err(upload_error)?;
    let sum = checksum::of_item(&item);
    let version_id = crate::versions::made(s3, &item).await;
    let mut out = CompleteMultipartUploadOutput {
        version_id,
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        e_tag: Some(ETag::Strong(item.etag)),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        server_side_encryption: crate::sse::aes256(),
        ..Default::default()
    };
    out.checksum_type = set_fields!(out, sum);
    Ok(S3Response::new(out))
}

/// A completion of an upload already completed answers as the first did (S3 does: a client
/// whose answer was lost retries), from what the core remembers of it, for as long as an
/// unfinished upload would be kept.
async fn completed_again(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    input: &CompleteMultipartUploadInput,
    missing: s3s::S3Error,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let Ok(id) = s3.storage.resolve_upload(&input.upload_id).await else { return Err(missing) };
    let Ok(done) = s3.storage.completed_upload(p, id).await else { return Err(missing) };
    if done.path != key_path(&input.bucket, &input.key)? {
        return Err(missing);
    }
    let sum = done.headers.iter().find_map(|(k, v)| checksum::of_header(k, v));
    let mut out = CompleteMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        e_tag: Some(ETag::Strong(done.etag)),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        server_side_encryption: crate::sse::aes256(),
        ..Default::default()
    };
    out.checksum_type = set_fields!(out, sum);
    Ok(S3Response::new(out))
}

/// A checksum listed for a part in the completion must be the one the part was uploaded
/// with (S3 refuses the completion otherwise).
async fn check_listed_checksums(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    id: u64,
    listed: &[(u32, String)],
) -> S3Result<()> {
    let parts = s3.storage.list_parts(p, id).await.map_err(map)?;
    for (n, value) in listed {
        let kept = parts.iter().find(|pt| pt.number == *n).and_then(|pt| pt.checksum.as_ref());
        if let Some((_, v)) = kept
            && v != value
        {
            return Err(s3_error!(InvalidPart, "part {n} was uploaded with another checksum"));
        }
    }
    Ok(())
}

/// A checksum the completion claims for the whole object must be the one its parts make
/// (S3 answers BadDigest otherwise), checked before anything is completed.
async fn check_whole_checksum(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    id: u64,
    listed: &[(u32, String)],
    full_object: Option<bool>,
    claimed: &str,
) -> S3Result<()> {
    let kept = s3.storage.list_parts(p, id).await.map_err(map)?;
    let parts: Vec<_> = listed.iter().filter_map(|(n, _)| kept.iter().find(|pt| pt.number == *n).cloned()).collect();
    let made = checksum::combine_parts(&parts, full_object);
    // A composite value is written with its `-N` part count, or without it by some clients.
    if made.iter().any(|(_, v)| v == claimed || v.rsplit_once('-').is_some_and(|(sum, _)| sum == claimed)) {
        Ok(())
    } else {
        Err(s3_error!(BadDigest, "the checksum given for the whole object is not the one its parts make"))
    }
}

pub async fn abort(
    s3: &DavitS3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let id = owned_anywhere(s3, &p, &input.bucket, &input.key, &input.upload_id).await?.id;
    s3.storage.abort_upload(&p, id).await.map_err(map)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(s3: &DavitS3, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let id = owned_upload(s3, &p, &input.bucket, &input.key, &input.upload_id).await?;
    let marker = input.part_number_marker.map_or(0, |m| m.max(0) as u32);
    let max = input.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
    let all = s3.storage.list_parts(&p, id).await.map_err(map)?;
    let rest: Vec<_> = all.into_iter().filter(|pt| pt.number > marker).collect();
    let truncated = rest.len() > max;
    let page: Vec<_> = rest.into_iter().take(max).collect();
    let next = truncated.then(|| page.last().map(|pt| pt.number as i32)).flatten();
    let parts = page
        .iter()
        .map(|pt| {
            let mut part = s3s::dto::Part {
                part_number: Some(pt.number as i32),
                e_tag: Some(ETag::Strong(pt.etag.clone())),
                size: Some(pt.size as i64),
                last_modified: Some(Timestamp::from(system_time(pt.modified))),
                ..Default::default()
            };
            let sum = pt.checksum.as_ref().and_then(|(k, v)| checksum::of_header(k, v));
            let _ = set_fields!(part, sum);
            part
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        parts: Some(parts),
        is_truncated: Some(truncated),
        max_parts: Some(max as i32),
        next_part_number_marker: next,
        ..Default::default()
    }))
}

pub async fn list_uploads(
    s3: &DavitS3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    let base = format!("/{}/", input.bucket);
    let prefix = input.prefix.clone().unwrap_or_default();
    let max = input.max_uploads.map_or(1000, |m| m.clamp(0, 1000) as usize);
    let all = s3.storage.list_uploads_with_tokens(&p, &format!("{base}{prefix}")).await.map_err(map)?;
    let key_marker = input.key_marker.clone().unwrap_or_default();
    let all: Vec<_> = all.into_iter().map(|(u, token)| (u.path[base.len()..].to_owned(), u, token)).collect();
    // Upload ids are random, so the id marker is found by position: uploads of the marker's
    // key listed after it.
    let after_id =
        input.upload_id_marker.as_deref().and_then(|m| all.iter().position(|(k, _, t)| *k == key_marker && t == m));
    let rest: Vec<_> = all
        .into_iter()
        .enumerate()
        .filter(|(i, (k, _, _))| match after_id {
            Some(at) => *i > at,
            None => key_marker.is_empty() || *k > key_marker,
        })
        .map(|(_, (k, u, t))| (k, (u, t)))
        .collect();
    let truncated = rest.len() > max;
    let page: Vec<_> = rest.into_iter().take(max).collect();
    let uploads = page
        .iter()
        .map(|(k, (u, token))| MultipartUpload {
            key: Some(k.clone()),
            upload_id: Some(token.clone()),
            initiated: Some(Timestamp::from(system_time(u.created))),
            ..Default::default()
        })
        .collect();
    let (next_key, next_id) = match (truncated, page.last()) {
        (true, Some((k, (_, token)))) => (Some(k.clone()), Some(token.clone())),
        _ => (None, None),
    };
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix,
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        uploads: Some(uploads),
        ..Default::default()
    }))
}
