//! What an object keeps beside its bytes, and how S3 reads it back: the standard headers,
//! user metadata, the ETag.

use davit_storage::Item;
use s3s::dto::*;

/// Standard headers kept with an object, by their lower-case names.
const KEPT: &[&str] = &["cache-control", "content-disposition", "content-encoding", "content-language", "expires"];

pub(crate) fn header(item: &Item, name: &str) -> Option<String> {
    item.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// The kept `Expires` (an HTTP date, as it came) for GET and HEAD to answer.
pub(crate) fn expires(item: &Item) -> Option<Expires> {
    header(item, "expires").and_then(|v| Timestamp::parse(TimestampFormat::HttpDate, &v).ok())
}

/// The MD5 of no bytes: the ETag of a folder, which S3 clients see as the empty object `dir/`.
pub(crate) const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// The ETag S3 shows for an item: a folder's is the empty object's, as its PUT and listings
/// answer, so that a HEAD or GET of `dir/` agrees with them.
pub(crate) fn etag(item: &Item) -> ETag {
    ETag::Strong(if item.is_folder() { EMPTY_MD5.to_owned() } else { item.etag.clone() })
}

pub(crate) fn metadata(item: &Item) -> Option<Metadata> {
    (!item.user_meta.is_empty()).then(|| item.user_meta.iter().cloned().collect())
}

pub(crate) fn headers_of(
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    expires: Option<String>,
) -> Vec<(String, String)> {
    // `aws-chunked` describes the transfer, not the object.
    let content_encoding = content_encoding
        .map(|e| {
            e.split(',')
                .map(str::trim)
                .filter(|p| !p.eq_ignore_ascii_case("aws-chunked"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|e| !e.is_empty());
    [cache_control, content_disposition, content_encoding, content_language, expires]
        .into_iter()
        .zip(KEPT)
        .filter_map(|(v, k)| v.map(|v| ((*k).to_owned(), v)))
        .collect()
}

pub(crate) fn expires_string(e: &Option<Expires>) -> Option<String> {
    e.as_ref().map(|t| {
        let mut v = Vec::new();
        let _ = t.format(TimestampFormat::HttpDate, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// The standard headers an input names (PutObject, CopyObject and CreateMultipartUpload
/// name them alike), as kept with the object. Moves those fields out of the input.
macro_rules! kept_headers {
    ($input:expr) => {
        $crate::stored::headers_of(
            $input.cache_control,
            $input.content_disposition,
            $input.content_encoding,
            $input.content_language,
            $crate::stored::expires_string(&$input.expires),
        )
    };
}
pub(crate) use kept_headers;
