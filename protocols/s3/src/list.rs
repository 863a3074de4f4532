//! ListObjectsV2 and ListObjects: pages of the core's key listing.

use base64::Engine;
use davit_http::system_time;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::bucket_error;
use crate::stored::etag;

/// `encoding-type=url`: keys and prefixes percent-encoded (all but unreserved and `/`).
pub(crate) fn encode(s: &str, url: bool) -> String {
    if !url {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Page {
    objects: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
    truncated: bool,
    next_after: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one per S3 listing parameter; a struct would only rename them
async fn list_page(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max: usize,
    url: bool,
    owner: Option<Owner>,
) -> S3Result<Page> {
    s3.bucket(p, bucket).await?;
    let q =
        davit_storage::ListQuery { prefix, start_after: after, delimiter: delimiter.filter(|d| !d.is_empty()), max };
    let listing = s3.storage.list_keys(p, &format!("/{bucket}"), q).await.map_err(bucket_error)?;
    let objects = listing
        .objects
        .iter()
        .map(|(key, item)| Object {
            key: Some(encode(key, url)),
            size: Some(item.size as i64),
            e_tag: Some(etag(item)),
            last_modified: Some(Timestamp::from(system_time(item.modified))),
            storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
            owner: owner.clone(),
            ..Default::default()
        })
        .collect();
    let prefixes = listing.common_prefixes.iter().map(|cp| CommonPrefix { prefix: Some(encode(cp, url)) }).collect();
    Ok(Page { objects, prefixes, truncated: listing.truncated, next_after: listing.next_after })
}

/// The owner S3 lists with each key (always in v1, with `fetch-owner=true` in v2): the
/// requester, as ListBuckets names it (its canonical id, as ACLs name it too), since a
/// bucket listed is one of the requester's drive.
pub(crate) fn owner(s3: &DavitS3, p: &davit_storage::Principal) -> Owner {
    Owner { display_name: Some(p.username().to_owned()), id: Some(s3.storage.canonical_id(p.user_id())) }
}

fn max_keys(m: Option<i32>) -> usize {
    m.map_or(1000, |m| m.clamp(0, 1000) as usize)
}

fn is_url(e: &Option<EncodingType>) -> bool {
    e.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL)
}

pub async fn list_objects_v2(
    s3: &DavitS3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let token = match &input.continuation_token {
        Some(t) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| s3_error!(InvalidArgument, "invalid continuation token"))?,
        ),
        None => None,
    };
    let after = token.as_deref().or(input.start_after.as_deref());
    let prefix = input.prefix.clone().unwrap_or_default();
    let max = max_keys(input.max_keys);
    let url = is_url(&input.encoding_type);
    let owner = input.fetch_owner.unwrap_or(false).then(|| owner(s3, &p));
    let page = list_page(s3, &p, &input.bucket, &prefix, input.delimiter.as_deref(), after, max, url, owner).await?;
    let next = page
        .truncated
        .then(|| page.next_after.map(|k| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k)))
        .flatten();
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(encode(&prefix, url)),
        delimiter: input.delimiter.filter(|d| !d.is_empty()),
        max_keys: Some(max as i32),
        key_count: Some((page.objects.len() + page.prefixes.len()) as i32),
        is_truncated: Some(page.truncated),
        continuation_token: input.continuation_token,
        next_continuation_token: next,
        start_after: input.start_after,
        encoding_type: input.encoding_type,
        contents: Some(page.objects),
        common_prefixes: Some(page.prefixes),
        ..Default::default()
    }))
}

pub async fn list_objects(s3: &DavitS3, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max = max_keys(input.max_keys);
    let url = is_url(&input.encoding_type);
    let delimiter = input.delimiter.as_deref();
    let page =
        list_page(s3, &p, &input.bucket, &prefix, delimiter, input.marker.as_deref(), max, url, Some(owner(s3, &p)))
            .await?;
    let next_marker = page.truncated.then_some(page.next_after).flatten().map(|m| encode(&m, url));
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(encode(&prefix, url)),
        marker: Some(input.marker.unwrap_or_default()),
        next_marker,
        delimiter: input.delimiter.filter(|d| !d.is_empty()),
        max_keys: Some(max as i32),
        is_truncated: Some(page.truncated),
        encoding_type: input.encoding_type,
        contents: Some(page.objects),
        common_prefixes: Some(page.prefixes),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_encoding_keeps_listings_of_any_stored_name_valid_xml() {
        // Names with control characters can no longer be made, but ones stored before that
        // rule still list: with encoding-type=url every byte XML cannot carry is escaped.
        assert_eq!(super::encode("a/c\u{1}.txt", true), "a/c%01.txt");
        assert_eq!(super::encode("d\u{7f}\u{85} \u{e9}", true), "d%7F%C2%85%20%C3%A9");
        assert_eq!(super::encode("c\u{1}", false), "c\u{1}");
    }
}
