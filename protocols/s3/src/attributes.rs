//! GetObjectAttributes: what the item already says of itself (ETag, checksum, size, the
//! sizes of its parts), answering only the attributes asked for. One storage class:
//! STANDARD.

use davit_http::system_time;
use davit_storage::Error;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::checksum;
use crate::errors::s3_error as map;
use crate::names::key_path;
use crate::stored::etag;

/// Parts listed at most in one answer, as S3.
const MAX_PARTS: i32 = 1000;

pub async fn get_object_attributes(
    s3: &DavitS3,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    match input.version_id.as_deref() {
        None | Some("null") => {}
        Some(_) => return Err(s3_error!(NoSuchVersion, "the version does not exist")),
    }
    if input.sse_customer_algorithm.is_some() || input.sse_customer_key.is_some() {
        return Err(s3_error!(InvalidRequest, "the object was not stored with a customer-provided key"));
    }
    // One header with a comma-separated list (as the aws CLI and the SDKs send it) or the
    // header repeated: s3s hands the former over as one value.
    let asked = |name: &str| {
        input.object_attributes.iter().flat_map(|a| a.as_str().split(',')).any(|a| a.trim().eq_ignore_ascii_case(name))
    };
    if input.object_attributes.is_empty() {
        return Err(s3_error!(InvalidArgument, "x-amz-object-attributes names at least one attribute"));
    }
    let path = key_path(&input.bucket, &input.key)?;
    let item = match s3.storage.stat_readable(&p, &path).await {
        Ok(item) if !item.is_folder() && crate::names::names(&input.key, &item) => item,
        Ok(_) => return Err(s3_error!(NoSuchKey, "no such key")),
        Err(Error::NotFound(_)) | Err(Error::Conflict(_)) => {
            s3.bucket(&p, &input.bucket).await?;
            return Err(s3_error!(NoSuchKey, "no such key"));
        }
        Err(e) => return Err(map(e)),
    };
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(Timestamp::from(system_time(item.modified))),
        ..Default::default()
    };
    if asked(ObjectAttributes::ETAG) {
        out.e_tag = Some(etag(&item));
    }
    if asked(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(item.size as i64);
    }
    if asked(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
    }
    if asked(ObjectAttributes::CHECKSUM) {
        out.checksum = checksum::of_item(&item).map(|s| s.fields());
    }
    // Only a multipart object has parts to tell (S3 answers nothing for a single PUT's).
    if asked(ObjectAttributes::OBJECT_PARTS) && !item.parts.is_empty() {
        let marker = input.part_number_marker.unwrap_or(0).max(0);
        let max = input.max_parts.unwrap_or(MAX_PARTS).clamp(0, MAX_PARTS);
        let total = item.parts.len() as i32;
        let sums = s3.storage.part_checksums(&item).await.map_err(map)?;
        let parts: Vec<ObjectPart> = item
            .parts
            .iter()
            .enumerate()
            .map(|(i, size)| (i as i32 + 1, *size))
            .filter(|(n, _)| *n > marker)
            .take(max as usize)
            .map(|(n, size)| {
                let mut part = ObjectPart { part_number: Some(n), size: Some(size as i64), ..Default::default() };
                // The checksum the part was sent with, when it was sent with one.
                let sum = sums.get(n as usize - 1).cloned().flatten();
                let c = sum.and_then(|(name, value)| checksum::of_header(&name, &value)).map(|s| s.fields());
                if let Some(c) = c {
                    part.checksum_crc32 = c.checksum_crc32;
                    part.checksum_crc32c = c.checksum_crc32c;
                    part.checksum_crc64nvme = c.checksum_crc64nvme;
                    part.checksum_sha1 = c.checksum_sha1;
                    part.checksum_sha256 = c.checksum_sha256;
                }
                part
            })
            .collect();
        let last = parts.last().and_then(|p| p.part_number).unwrap_or(marker);
        out.object_parts = Some(GetObjectAttributesParts {
            is_truncated: Some(last < total),
            max_parts: Some(max),
            next_part_number_marker: Some(last),
            part_number_marker: Some(marker),
            parts: Some(parts),
            total_parts_count: Some(total),
        });
    }
    Ok(S3Response::new(out))
}
