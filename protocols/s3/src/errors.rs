//! The one table from storage refusals to S3 error codes. Internal causes are logged here
//! and never sent.

use davit_storage::{Error, What};
use http::StatusCode;
use s3s::{S3Error, S3ErrorCode};

/// What kind of thing a NotFound is about, since S3 names it (NoSuchBucket, NoSuchKey).
#[derive(Clone, Copy)]
pub enum Subject {
    Bucket,
    Key,
    Upload,
}

pub fn s3_error(e: Error, subject: Subject) -> S3Error {
    if let Some(cause) = e.internal_cause() {
        tracing::error!(cause = ?cause, "S3 request failed");
    }
    let msg = e.to_string();
    let (code, status) = match &e {
        // An upload the core says is missing is one whatever the operation; a missing path is
        // a bucket or a key as the operation names it.
        Error::NotFound(m) => match (m.what, subject) {
            (What::Upload, _) | (_, Subject::Upload) => (S3ErrorCode::NoSuchUpload, None),
            (_, Subject::Bucket) => (S3ErrorCode::NoSuchBucket, None),
            (_, Subject::Key) => (S3ErrorCode::NoSuchKey, None),
        },
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
        Error::TooLarge(_) => (S3ErrorCode::EntityTooLarge, None),
        Error::RangeNotSatisfiable(_) => (S3ErrorCode::InvalidRange, None),
        Error::Throttled(_) => (S3ErrorCode::SlowDown, None),
        Error::Incomplete(_) => (S3ErrorCode::IncompleteBody, None),
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
        ("Corrupt", "InternalError", 500),
        ("Incompatible", "InternalError", 500),
        ("Internal", "InternalError", 500),
    ];

    #[test]
    fn every_refusal_maps_as_the_table_says() {
        for (e, &(name, code, status)) in Error::each_with_row(REFUSALS, |r| r.0) {
            let internal = code == "InternalError";
            let err = s3_error(e, Subject::Key);
            assert_eq!(err.code().as_str(), code, "{name}");
            let actual = err.status_code().or_else(|| err.code().status_code()).map(|s| s.as_u16());
            assert_eq!(actual, Some(status), "{name}");
            if internal {
                assert_eq!(err.message(), Some("internal error"), "{name}: the cause is logged, not sent");
            }
        }
        // What is missing decides the code.
        let missing = |subject| s3_error(Error::not_found(What::Item), subject).code().as_str().to_owned();
        assert_eq!(missing(Subject::Bucket), "NoSuchBucket");
        assert_eq!(missing(Subject::Upload), "NoSuchUpload");
        let upload = s3_error(Error::missing(What::Upload, "no such upload"), Subject::Key);
        assert_eq!(upload.code().as_str(), "NoSuchUpload", "the core said what is missing");
    }
}
