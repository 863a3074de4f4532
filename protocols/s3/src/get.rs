//! GetObject and HeadObject: the current version, whole, by range or by part, behind the
//! conditional headers.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use davit_http::{Preconditions, Refused, system_time};
use davit_storage::{ByteStream, Error, Item};
use futures::Stream;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::checksum::{self, set_fields};
use crate::errors::s3_error as map;
use crate::names::{key_path, names};
use crate::stored::{etag, expires, header, metadata};
use crate::versions;

/// The core's byte stream, made `Sync` for s3s (reached only through `&mut`).
struct SyncStream(std::sync::Mutex<ByteStream>);

impl Stream for SyncStream {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.get_mut().expect("stream").as_mut().poll_next(cx)
    }
}

/// HTTP conditionals on the current version of an object.
pub(crate) fn check_conditions(
    item: &Item,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let tags = |c: &ETagCondition| match c {
        ETagCondition::Any => vec!["*".to_owned()],
        ETagCondition::ETag(e) => vec![e.value().to_owned()],
    };
    let date = |t: &Timestamp| SystemTime::from(time::OffsetDateTime::from(t.clone()));
    let conditions = Preconditions {
        if_match: if_match.map(tags),
        if_none_match: if_none_match.map(tags),
        if_modified_since: if_modified_since.map(date),
        if_unmodified_since: if_unmodified_since.map(date),
    };
    conditions.evaluate(crate::stored::etag(item).value(), item.modified).map_err(|refused| match refused {
        Refused::IfMatch => s3_error!(PreconditionFailed, "If-Match does not match the object's ETag"),
        Refused::IfUnmodifiedSince => {
            s3_error!(PreconditionFailed, "the object was modified since If-Unmodified-Since")
        }
        Refused::NotModified => {
            let mut e = S3Error::new(S3ErrorCode::NotModified);
            e.set_status_code(http::StatusCode::NOT_MODIFIED);
            // A 304 names what the client has (RFC 9110 15.4.5): its ETag and date.
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", crate::stored::etag(item).value())) {
                h.insert(http::header::ETAG, v);
            }
            if let Ok(v) = http::HeaderValue::from_str(&davit_http::http_date(item.modified)) {
                h.insert(http::header::LAST_MODIFIED, v);
            }
            e.set_headers(h);
            e
        }
    })
}

/// [`check_conditions`] with the conditional headers of a GetObject or HeadObject input,
/// which name them alike.
macro_rules! read_conditions {
    ($item:expr, $input:expr) => {
        check_conditions(
            $item,
            $input.if_match.as_ref(),
            $input.if_none_match.as_ref(),
            $input.if_modified_since.as_ref(),
            $input.if_unmodified_since.as_ref(),
        )
    };
}

/// The copy-source conditions of a CopyObject or UploadPartCopy input, on the source `item`:
/// each refusal is 412, "not modified" included (S3 answers no 304 to a copy).
macro_rules! copy_source_conditions {
    ($item:expr, $input:expr) => {
        $crate::get::check_conditions(
            $item,
            $input.copy_source_if_match.as_ref(),
            $input.copy_source_if_none_match.as_ref(),
            $input.copy_source_if_modified_since.as_ref(),
            $input.copy_source_if_unmodified_since.as_ref(),
        )
        .map_err(
            |e| {
                if *e.code() == s3s::S3ErrorCode::NotModified { s3s::s3_error!(PreconditionFailed) } else { e }
            },
        )
    };
}
pub(crate) use copy_source_conditions;

pub async fn get_object(s3: &DavitS3, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    let p = s3.principal(&req).await?;
    let if_range = req.headers.get(http::header::IF_RANGE).is_some().then(|| req.headers.clone());
    let mut input = req.input;
    let path = key_path(&input.bucket, &input.key)?;
    // A whole object is opened at once: its path resolved once, a small one's bytes read in
    // the same transaction. Refused or failed, the steps below give the answer (NoSuchKey,
    // NoSuchBucket, the core's refusal), as if this had not been tried. (A 304 then comes
    // after the first piece was read: free for a small object, one chunk for a large one.)
    // Its retention and legal hold too, from the same snapshot (on PostgreSQL no round trip
    // of their own).
    let version = input.version_id.clone();
    let whole = match (&input.range, input.part_number, &version) {
        // A key ending in `/` names a folder (the path drops the slash), checked below.
        (None, None, None) if !input.key.ends_with('/') => s3.storage.read_with_lock_state(&p, &path, None).await.ok(),
        _ => None,
    };
    let (read, range, lock) = match whole {
        Some((read, lock)) => {
            read_conditions!(&read.item, input)?;
            (read, None, Some(lock))
        }
        None => {
            let item = match &version {
                Some(v) => versions::stat_version(s3, &p, &input.bucket, &input.key, v).await?.item,
                None => object(s3, &p, &input.bucket, &path).await?,
            };
            // A folder is the empty object `dir/` (as HEAD, PUT and listings show it), and
            // no object without the slash.
            if !names(&input.key, &item) {
                return Err(s3_error!(NoSuchKey, "no such key"));
            }
            read_conditions!(&item, input)?;
            // An If-Range that no longer names this object sends it whole (RFC 9110 §13.1.5):
            // a resumed download must not splice the new object's bytes onto the old one's.
            if if_range.as_ref().is_some_and(|h| !if_range_holds(h, &item)) {
                input.range = None;
            }
            // The core reads inclusive ranges, as HTTP writes them; an empty part reads to
            // the end.
            let range = span(&item, input.range.as_ref(), input.part_number)?.map(|(s, e)| (s, (e > s).then(|| e - 1)));
            let open = |range| {
                let (p, path, version, input) = (&p, &path, &version, &input);
                async move {
                    match version {
                        Some(v) => versions::read_version(s3, p, &input.bucket, &input.key, v, range).await,
                        None => s3.storage.read(p, path, range).await.map_err(map),
                    }
                }
            };
            let mut range = range;
            let read = if item.is_folder() {
                davit_storage::FileRead {
                    item,
                    version: None,
                    start: 0,
                    end: 0,
                    body: Box::pin(futures::stream::empty()),
                }
            } else {
                let read = open(range).await?;
                // Checked again on what is read: an object replaced since the check above is
                // sent whole.
                match &if_range {
                    Some(h) if range.is_some() && !if_range_holds(h, &read.item) => {
                        range = None;
                        open(None).await?
                    }
                    _ => read,
                }
            };
            (read, range, None)
        }
    };
    let version_id = read.version.clone();
    let item = read.item;
    let content_range = range.map(|_| format!("bytes {}-{}/{}", read.start, read.end.saturating_sub(1), item.size));
    let sum = checksum::on_read(&item, &input.checksum_mode, range.is_some(), input.part_number.is_some());
    let extras = crate::tagging::extras_of_version(s3, &p, &path, &item, version.as_deref()).await?;
    let (object_lock_mode, object_lock_retain_until_date, object_lock_legal_hold_status) = match lock {
        Some(st) => crate::object_lock::answer(st),
        None => crate::object_lock::answered(s3, &p, &path, version.as_deref()).await,
    };
    let mut out = GetObjectOutput {
        server_side_encryption: crate::sse::aes256(),
        body: Some(StreamingBlob::wrap(SyncStream(std::sync::Mutex::new(read.body)))),
        content_length: Some((read.end - read.start) as i64),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&item)),
        last_modified: Some(Timestamp::from(system_time(item.modified))),
        content_type: input.response_content_type.or_else(|| Some(content_type(&item))),
        cache_control: input.response_cache_control.or_else(|| header(&item, "cache-control")),
        content_disposition: input.response_content_disposition.or_else(|| header(&item, "content-disposition")),
        content_encoding: input.response_content_encoding.or_else(|| header(&item, "content-encoding")),
        content_language: input.response_content_language.or_else(|| header(&item, "content-language")),
        expires: input.response_expires.or_else(|| expires(&item)),
        metadata: metadata(&item),
        parts_count: input.part_number.map(|_| parts_count(&item)),
        tag_count: extras.tag_count,
        expiration: extras.expiration,
        version_id,
        object_lock_mode,
        object_lock_retain_until_date,
        object_lock_legal_hold_status,
        ..Default::default()
    };
    out.checksum_type = set_fields!(out, sum);
    Ok(S3Response::new(out))
}

pub async fn head_object(s3: &DavitS3, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let path = key_path(&input.bucket, &input.key)?;
    let (item, version_id) = match &input.version_id {
        Some(v) => {
            let info = versions::stat_version(s3, &p, &input.bucket, &input.key, v).await?;
            (info.item, Some(info.id))
        }
        None => {
            let item = object(s3, &p, &input.bucket, &path).await?;
            let id = if item.is_folder() { None } else { versions::made(s3, &item).await };
            (item, id)
        }
    };
    if !names(&input.key, &item) {
        return Err(s3_error!(NoSuchKey, "no such key"));
    }
    read_conditions!(&item, input)?;
    let (len, range) = match span(&item, input.range.as_ref(), input.part_number)? {
        None => (item.size, None),
        Some((start, end)) => (end - start, Some(format!("bytes {start}-{}/{}", end.saturating_sub(1), item.size))),
    };
    let sum = checksum::on_read(&item, &input.checksum_mode, range.is_some(), input.part_number.is_some());
    let extras = crate::tagging::extras_of_version(s3, &p, &path, &item, input.version_id.as_deref()).await?;
    let (object_lock_mode, object_lock_retain_until_date, object_lock_legal_hold_status) =
        crate::object_lock::answered(s3, &p, &path, input.version_id.as_deref()).await;
    let mut out = HeadObjectOutput {
        server_side_encryption: crate::sse::aes256(),
        content_length: Some(len as i64),
        content_range: range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&item)),
        last_modified: Some(Timestamp::from(system_time(item.modified))),
        content_type: Some(content_type(&item)),
        cache_control: header(&item, "cache-control"),
        content_disposition: header(&item, "content-disposition"),
        content_encoding: header(&item, "content-encoding"),
        content_language: header(&item, "content-language"),
        expires: expires(&item),
        metadata: metadata(&item),
        parts_count: input.part_number.map(|_| parts_count(&item)),
        expiration: extras.expiration,
        version_id,
        object_lock_mode,
        object_lock_retain_until_date,
        object_lock_legal_hold_status,
        ..Default::default()
    };
    out.checksum_type = set_fields!(out, sum);
    let mut resp = S3Response::new(out);
    // s3s's HeadObjectOutput has no field for it; S3 sends it on HEAD as on GET.
    if let Some(n) = extras.tag_count {
        resp.headers.insert("x-amz-tagging-count", http::HeaderValue::from(n));
    }
    Ok(resp)
}

/// The item at an object's path. The bucket is looked at only when the key is missing, to
/// tell NoSuchBucket from NoSuchKey: one read fewer on every GET and HEAD that finds it.
async fn object(s3: &DavitS3, p: &davit_storage::Principal, bucket: &str, path: &str) -> S3Result<Item> {
    match s3.storage.stat(p, path).await {
        Ok(item) => Ok(item),
        Err(Error::NotFound(_)) | Err(Error::Conflict(_)) => {
            s3.bucket(p, bucket).await?;
            Err(versions::no_such_key(s3, p, path).await)
        }
        Err(e) => Err(map(e)),
    }
}

/// A multipart object's part count; any other object is one part.
fn parts_count(item: &Item) -> i32 {
    item.parts.len().max(1) as i32
}

/// Whether the If-Range among `headers` names `item` (RFC 9110 §13.1.5), so a range may be sent.
fn if_range_holds(headers: &http::HeaderMap, item: &Item) -> bool {
    davit_http::if_range_holds(headers, crate::stored::etag(item).value(), item.modified)
}

/// The bytes `[start, end)` a GET or HEAD asks for, by Range or by part number; None for
/// the whole object (a single-part object's only part is all of it).
fn span(item: &Item, range: Option<&Range>, part: Option<i32>) -> S3Result<Option<(u64, u64)>> {
    match (range, part) {
        (Some(_), Some(_)) => Err(s3_error!(InvalidRequest, "Cannot specify both Range header and partNumber")),
        (Some(r), None) => {
            let ok = r.check(item.size).map_err(|_| {
                // The size, as a 416 should tell it (RFC 9110 §15.5.17): a client resuming a
                // download it already has whole learns so.
                let mut e = s3_error!(InvalidRange, "the range is not satisfiable");
                let mut h = http::HeaderMap::new();
                if let Ok(v) = http::HeaderValue::from_str(&format!("bytes */{}", item.size)) {
                    h.insert(http::header::CONTENT_RANGE, v);
                }
                e.set_headers(h);
                e
            })?;
            Ok(Some((ok.start, ok.end)))
        }
        (None, Some(n)) => {
            if n < 1 || n > parts_count(item) {
                // 400 InvalidPart, as s3-tests (RGW) expects; AWS answers 416 InvalidPartNumber.
                return Err(s3_error!(InvalidPart, "the object has {} part(s)", parts_count(item)));
            }
            if item.parts.is_empty() {
                return Ok(None);
            }
            let i = (n - 1) as usize;
            let start: u64 = item.parts[..i].iter().sum();
            Ok(Some((start, start + item.parts[i])))
        }
        (None, None) => Ok(None),
    }
}

/// The stored type, or S3's for an object stored without one.
fn content_type(item: &Item) -> String {
    item.content_type.clone().unwrap_or_else(|| "binary/octet-stream".into())
}
