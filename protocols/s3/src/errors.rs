//! The one table from storage refusals to S3 error codes. Internal causes are logged here
//! and never sent.
//!
//! A refusal maps from the error alone: the core says what is missing, and a missing upload
//! is NoSuchUpload, anything else the key the request named. Two kinds of call know better
//! than the error what a missing thing is to S3, and say so with their own function, which
//! changes only that row: a call on a bucket's own folder ([`bucket_error`]) and a call on an
//! upload just found ([`upload_error`]).

use davit_storage::{Error, What};
use http::StatusCode;
use s3s::{S3Error, S3ErrorCode};

/// A call on a bucket's own folder, `/{bucket}`: a folder missing at the top of the drive is
/// a missing bucket, whatever the core calls it (an item, a folder).
pub fn bucket_error(e: Error) -> S3Error {
    match e {
        Error::NotFound(m) => S3Error::with_message(S3ErrorCode::NoSuchBucket, m.to_string()),
        e => s3_error(e),
    }
}

/// A call on an upload found a moment ago (a part, the completion): the core resolves the
/// upload's key again there, and what it no longer finds (a share revoked since) ends the
/// upload, which S3 calls NoSuchUpload.
pub fn upload_error(e: Error) -> S3Error {
    match e {
        Error::NotFound(m) => S3Error::with_message(S3ErrorCode::NoSuchUpload, m.to_string()),
        e => s3_error(e),
    }
}

/// The one table: a core refusal as S3 answers it, from the error alone.
pub fn s3_error(e: Error) -> S3Error {
    if let Some(cause) = e.internal_cause() {
        tracing::error!(cause = ?cause, "S3 request failed");
    }
    let msg = e.to_string();
    let (code, status) = match &e {
        Error::NotFound(m) if m.what == What::Upload => (S3ErrorCode::NoSuchUpload, None),
        Error::NotFound(m) if m.what == What::Version => (S3ErrorCode::NoSuchVersion, None),
        // A path, or what a path leads to (its owner, its content): the request named a key.
        Error::NotFound(_) => (S3ErrorCode::NoSuchKey, None),
        Error::Forbidden(_) | Error::Unauthenticated(_) | Error::Locked(_) | Error::Gone(_) => {
            (S3ErrorCode::AccessDenied, None)
        }
        Error::InvalidName(_) | Error::InvalidInput(_) | Error::InvalidCode(_) | Error::TypeNotAllowed(_) => {
            (S3ErrorCode::InvalidArgument, None)
        }
        Error::AlreadyExists(_) => (S3ErrorCode::BucketAlreadyOwnedByYou, None),
        Error::NotEmpty(_) => (S3ErrorCode::BucketNotEmpty, None),
        // A key that would be both a file and a folder (`a` beside `a/b`), or a missing
        // parent: the tree cannot hold it.
        Error::ParentMissing(_) | Error::Conflict(_) => (S3ErrorCode::InvalidArgument, None),
        Error::PreconditionFailed(_) => (S3ErrorCode::PreconditionFailed, None),
        Error::QuotaExceeded(_) => (S3ErrorCode::Custom("QuotaExceeded".into()), Some(StatusCode::FORBIDDEN)),
        // 507 as MinIO answers a full disk: SDKs do not retry it (a 500 made the aws CLI
        // send a large body four more times).
        Error::StorageFull(_) => (S3ErrorCode::Custom("StorageFull".into()), Some(StatusCode::INSUFFICIENT_STORAGE)),
        Error::TooLarge(_) => (S3ErrorCode::EntityTooLarge, None),
        Error::RangeNotSatisfiable(_) => (S3ErrorCode::InvalidRange, None),
        Error::Throttled(_) => (S3ErrorCode::SlowDown, None),
        Error::Incomplete(_) => (S3ErrorCode::IncompleteBody, None),
        Error::Unavailable(_) => (S3ErrorCode::ServiceUnavailable, Some(StatusCode::SERVICE_UNAVAILABLE)),
        Error::DigestMismatch(_) => (S3ErrorCode::BadDigest, None),
        Error::InvalidPart(_) => (S3ErrorCode::InvalidPart, None),
        Error::InvalidPartOrder(_) => (S3ErrorCode::InvalidPartOrder, None),
        Error::TooSmall(_) => (S3ErrorCode::EntityTooSmall, None),
        Error::Incompatible(_) | Error::Corrupt(_) | Error::Internal(_) => {
            return S3Error::with_message(S3ErrorCode::InternalError, "internal error");
        }
    };
    let mut err = S3Error::with_message(code, msg);
    if let Some(s) = status {
        err.set_status_code(s);
    }
    err
}

/// An error body completed with what S3 clients read and s3s may leave out: the request's id
/// (`RequestId`, quoted in bug reports) and a `Message`, which s3s omits for errors it makes
/// itself (a bad signature, a bad bucket name in the path), so that the aws CLI printed
/// "Unknown". None when the body is not an S3 error or lacks nothing.
pub(crate) fn complete_body(body: &[u8], request_id: &str) -> Option<Vec<u8>> {
    let find = |what: &[u8]| body.windows(what.len()).position(|w| w == what);
    let end = body.windows(8).rposition(|w| w == b"</Error>")?;
    let code_end = find(b"</Code>");
    let code_start = find(b"<Code>").map(|at| at + b"<Code>".len());
    let message = match (find(b"<Message>"), code_start, code_end) {
        (None, Some(start), Some(stop)) if start <= stop => {
            let code = std::str::from_utf8(&body[start..stop]).ok()?;
            Some(format!("<Message>{}</Message>", default_message(code)))
        }
        _ => None,
    };
    let id = find(b"<RequestId>").is_none().then(|| format!("<RequestId>{request_id}</RequestId>"));
    if message.is_none() && id.is_none() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 200);
    match (&message, code_end) {
        (Some(m), Some(stop)) => {
            let after_code = stop + b"</Code>".len();
            out.extend_from_slice(&body[..after_code]);
            out.extend_from_slice(m.as_bytes());
            out.extend_from_slice(&body[after_code..end]);
        }
        _ => out.extend_from_slice(&body[..end]),
    }
    out.extend_from_slice(id.unwrap_or_default().as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(out)
}

/// S3's own words for the errors s3s sends without a message; the code itself otherwise.
fn default_message(code: &str) -> &str {
    match code {
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        }
        "InvalidAccessKeyId" => "The AWS access key Id you provided does not exist in our records.",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "AccessDenied" => "Access Denied",
        "NoSuchBucket" => "The specified bucket does not exist.",
        "NoSuchKey" => "The specified key does not exist.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented.",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's table of refusals, S3 column: the code and its status.
    const REFUSALS: &[(&str, &str, u16)] = &[
        ("NotFound", "NoSuchKey", 404),
        ("Forbidden", "AccessDenied", 403),
        ("Unauthenticated", "AccessDenied", 403),
        ("InvalidName", "InvalidArgument", 400),
        ("InvalidInput", "InvalidArgument", 400),
        ("AlreadyExists", "BucketAlreadyOwnedByYou", 409),
        ("NotEmpty", "BucketNotEmpty", 409),
        ("ParentMissing", "InvalidArgument", 400),
        ("Conflict", "InvalidArgument", 400),
        ("PreconditionFailed", "PreconditionFailed", 412),
        ("Gone", "AccessDenied", 403),
        ("Locked", "AccessDenied", 403),
        ("QuotaExceeded", "QuotaExceeded", 403),
        ("StorageFull", "StorageFull", 507),
        ("TooLarge", "EntityTooLarge", 400),
        ("TypeNotAllowed", "InvalidArgument", 400),
        ("RangeNotSatisfiable", "InvalidRange", 416),
        ("InvalidPart", "InvalidPart", 400),
        ("InvalidPartOrder", "InvalidPartOrder", 400),
        ("TooSmall", "EntityTooSmall", 400),
        ("DigestMismatch", "BadDigest", 400),
        ("InvalidCode", "InvalidArgument", 400),
        ("Throttled", "SlowDown", 503),
        ("Incomplete", "IncompleteBody", 400),
        ("Unavailable", "ServiceUnavailable", 503),
        ("Corrupt", "InternalError", 500),
        ("Incompatible", "InternalError", 500),
        ("Internal", "InternalError", 500),
    ];

    fn status(err: &S3Error) -> Option<u16> {
        err.status_code().or_else(|| err.code().status_code()).map(|s| s.as_u16())
    }

    #[test]
    fn every_refusal_maps_as_the_table_says() {
        for (e, &(name, code, status_code)) in Error::each_with_row(REFUSALS, |r| r.0) {
            let internal = code == "InternalError";
            let err = s3_error(e);
            assert_eq!(err.code().as_str(), code, "{name}");
            assert_eq!(status(&err), Some(status_code), "{name}");
            if internal {
                assert_eq!(err.message(), Some("internal error"), "{name}: the cause is logged, not sent");
            }
        }
    }

    #[test]
    fn what_is_missing_is_named_by_the_core_or_by_the_call() {
        let missing = |what| Error::missing(what, "x");
        assert_eq!(s3_error(missing(What::Upload)).code().as_str(), "NoSuchUpload", "the core said so");
        for what in [What::Item, What::Folder, What::User, What::Content] {
            assert_eq!(s3_error(missing(what)).code().as_str(), "NoSuchKey", "{what:?}");
            let bucket = bucket_error(missing(what));
            assert_eq!((bucket.code().as_str(), status(&bucket)), ("NoSuchBucket", Some(404)), "{what:?}");
            let upload = upload_error(missing(what));
            assert_eq!((upload.code().as_str(), status(&upload)), ("NoSuchUpload", Some(404)), "{what:?}");
        }
        // Those calls change that row only: every other refusal is the table's.
        for mapped in [bucket_error, upload_error] {
            for (e, &(name, code, status_code)) in Error::each_with_row(REFUSALS, |r| r.0) {
                if name != "NotFound" {
                    let err = mapped(e);
                    assert_eq!((err.code().as_str(), status(&err)), (code, Some(status_code)), "{name}");
                }
            }
        }
    }
}
