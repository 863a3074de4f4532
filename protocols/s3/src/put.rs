//! PutObject: one streamed write of the core, checked against the checksums and
//! Content-MD5 the client sent.

use davit_storage::{Conditions, WriteOptions};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::checksum::{self, Wanted, set_fields};
use crate::errors::s3_error as map;
use crate::names::key_path;
use crate::stored::{etag, kept_headers};

/// S3's If-Match / If-None-Match on a write (PutObject, CompleteMultipartUpload,
/// CopyObject), for the core to check as the write commits. If-Match names an object that
/// must be there: its absence is NoSuchKey, as S3 answers (the core, checking as the write
/// commits, would answer 412).
pub(crate) async fn write_conditions(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    path: &str,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Conditions> {
    if if_match.is_some() {
        match s3.storage.stat(p, path).await {
            Err(davit_storage::Error::NotFound(_)) => return Err(s3_error!(NoSuchKey, "no such key")),
            Ok(item) if item.is_folder() => return Err(s3_error!(NoSuchKey, "no such key")),
            _ => {}
        }
    }
    Ok(conditions_of(if_match, if_none_match))
}

/// The request's `If-Match` and `If-None-Match` as the core checks them.
fn conditions_of(if_match: Option<&ETagCondition>, if_none_match: Option<&ETagCondition>) -> Conditions {
    let one = |c: &ETagCondition| match c {
        ETagCondition::Any => vec!["*".to_owned()],
        ETagCondition::ETag(e) => vec![e.value().to_owned()],
    };
    Conditions { if_match: if_match.map(one), if_none_match: if_none_match.map(one) }
}

/// S3's limit on an object's user metadata (`x-amz-meta-*`): the UTF-8 bytes of its names
/// and values together.
const USER_META_MAX: usize = 2048;

/// A request's user metadata as the core keeps it, refused past S3's 2 KB (MetadataTooLarge,
/// before any body is read): every header of a stored object is sent back with each GET and
/// HEAD, and kept with every version.
pub(crate) fn user_meta(m: impl IntoIterator<Item = (String, String)>) -> S3Result<Vec<(String, String)>> {
    let meta: Vec<(String, String)> = m.into_iter().collect();
    let size: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > USER_META_MAX {
        return Err(s3_error!(
            MetadataTooLarge,
            "the user metadata has {size} bytes; at most {USER_META_MAX} are allowed"
        ));
    }
    Ok(meta)
}

/// `If-Match` and `If-None-Match` on a folder marker (`a/`), the empty object a folder reads
/// as (its ETag `EMPTY_MD5`): a refused one leaves the marker's metadata as it was.
async fn marker_conditions(
    s3: &DavitS3,
    p: &davit_storage::Principal,
    path: &str,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    if if_match.is_none() && if_none_match.is_none() {
        return Ok(());
    }
    let exists = match s3.storage.stat(p, path).await {
        Ok(item) => item.is_folder(),
        Err(davit_storage::Error::NotFound(_)) => false,
        Err(e) => return Err(map(e)),
    };
    if if_match.is_some() && !exists {
        return Err(s3_error!(NoSuchKey, "no such key"));
    }
    conditions_of(if_match, if_none_match).check_etag(exists.then_some(crate::stored::EMPTY_MD5)).map_err(map)
}

pub async fn put_object(s3: &DavitS3, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let p = s3.principal(&req).await?;
    let S3Request { input, headers, trailing_headers, .. } = req;
    crate::acl::check_new_object(input.acl.as_ref(), crate::acl::grants!(input))?;
    s3.bucket(&p, &input.bucket).await?;
    let path = key_path(&input.bucket, &input.key)?;
    let wanted = Wanted::of_request(checksum::values!(input), &headers, trailing_headers)?;
    if input.content_md5.is_none() && headers.contains_key("content-md5") {
        // An empty Content-MD5 (s3s reads it as none) is no digest either.
        return Err(s3_error!(InvalidDigest, "Content-MD5 is not a base64 MD5"));
    }
    let expected_md5 = content_md5(&input.content_md5)?;
    if input.key.ends_with('/') {
        // A zero-byte key ending in `/` makes a folder.
        if input.content_length.unwrap_or(0) != 0 {
            return Err(s3_error!(InvalidArgument, "a key ending in '/' names a folder and takes no content"));
        }
        let sum = wanted.as_ref().map(Wanted::check_empty).transpose()?;
        let hex = |m: [u8; 16]| m.iter().map(|b| format!("{b:02x}")).collect::<String>();
        if expected_md5.is_some_and(|m| hex(m) != crate::stored::EMPTY_MD5) {
            return Err(s3_error!(BadDigest, "the Content-MD5 is not the empty body's"));
        }
        marker_conditions(s3, &p, &path, input.if_match.as_ref(), input.if_none_match.as_ref()).await?;
        let tags = crate::tagging::from_header(input.tagging.as_deref())?;
        let meta = user_meta(input.metadata.into_iter().flatten())?;
        let folder = s3.storage.mkdir_all(&p, &path).await.map_err(map)?;
        // The marker is replaced, as a PUT replaces an object: its type, headers and
        // metadata are the request's (s3fs keeps a folder's mode and owner there).
        let headers = kept_headers!(input);
        let had = folder.content_type.is_some() || !folder.headers.is_empty() || !folder.user_meta.is_empty();
        if had || input.content_type.is_some() || !headers.is_empty() || !meta.is_empty() {
            s3.storage.set_metadata(&p, &path, input.content_type, headers, meta).await.map_err(map)?;
        }
        let mut out = PutObjectOutput {
            e_tag: Some(ETag::Strong(crate::stored::EMPTY_MD5.into())),
            server_side_encryption: crate::sse::aes256(),
            ..Default::default()
        };
        // And its tags are the request's, or none, as a PUT's.
        s3.storage
            .set_tags(&p, &path, tags.unwrap_or_default(), davit_storage::TagTarget::Object)
            .await
            .map_err(crate::tagging::tag_error)?;
        out.checksum_type = set_fields!(out, sum);
        return Ok(S3Response::new(out));
    }
    let sized = [
        http::header::CONTENT_LENGTH.as_str(),
        http::header::TRANSFER_ENCODING.as_str(),
        "x-amz-decoded-content-length",
    ];
    if !sized.iter().any(|h| headers.contains_key(*h)) {
        // Without any, HTTP/1.1 says the body is empty; S3 asks for the length instead of
        // storing an empty object the client may not have meant.
        return Err(s3_error!(MissingContentLength, "a PUT needs a Content-Length"));
    }
    let lock = crate::object_lock::asked_by!(s3, &p, input).await?;
    if !lock.is_empty() && expected_md5.is_none() && wanted.is_none() {
        crate::object_lock::require_integrity(&headers, "Put Object")?;
    }
    let conditions = write_conditions(s3, &p, &path, input.if_match.as_ref(), input.if_none_match.as_ref()).await?;
    // An S3 write makes a new object: its tags are the header's, or none.
    let tags = crate::tagging::from_header(input.tagging.as_deref())?.unwrap_or_default();
    let body = input.body.ok_or_else(|| s3_error!(IncompleteBody, "no body"))?;
    let mut kept = kept_headers!(input);
    kept.extend(wanted.as_ref().and_then(Wanted::known).map(|s| s.header()));
    let from_trailer = wanted.as_ref().is_some_and(|w| w.known().is_none());
    let (stream, outcome) = checksum::verify(body.map(|r| r.map_err(std::io::Error::other)).boxed(), wanted);
    let opts = WriteOptions {
        content_type: input.content_type.clone(),
        headers: kept,
        user_meta: user_meta(input.metadata.into_iter().flatten())?,
        expected_len: input.content_length.map(|l| l as u64),
        conditions,
        create_parents: true,
        expected_md5,
        // S3 clients compare a single PUT's ETag with the MD5 of what they sent.
        md5_etag: true,
        late_headers: outcome.trailer_header(from_trailer),
        tags: Some(tags),
        lock,
        ..Default::default()
    };
    let written = s3.storage.write(&p, &path, stream, opts).await;
    let (item, sum) = outcome.settle(written, map)?;
    let expiration = crate::tagging::extras(s3, &item).await?.expiration;
    let version_id = crate::versions::made(s3, &item).await;
    let mut out = PutObjectOutput {
        e_tag: Some(etag(&item)),
        expiration,
        version_id,
        server_side_encryption: crate::sse::aes256(),
        ..Default::default()
    };
    out.checksum_type = set_fields!(out, sum);
    Ok(S3Response::new(out))
}

/// The digest of a `Content-MD5` header, refused as S3 does when it is not one.
pub(crate) fn content_md5(v: &Option<String>) -> S3Result<Option<[u8; 16]>> {
    v.as_deref()
        .map(|b64| {
            davit_http::content_md5(b64).ok_or_else(|| s3_error!(InvalidDigest, "Content-MD5 is not a base64 MD5"))
        })
        .transpose()
}
