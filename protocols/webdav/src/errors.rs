//! The one table from storage refusals to WebDAV. dav-server's `FsError` has no 409, 412,
//! 415 or 423 and carries no reason, so each refusal is remembered for its request and the
//! answer refined afterwards to the right status with a short plain-text reason.

use std::sync::Mutex;

use dav_server::fs::FsError;
use davit_storage::Error;
use http::StatusCode;

/// The closest `FsError`, so dav-server takes the right path (exists, not found…).
pub fn fs_error(e: &Error) -> FsError {
    match e {
        Error::NotFound(_) => FsError::NotFound,
        Error::AlreadyExists(_) => FsError::Exists,
        Error::Forbidden(_) | Error::Unauthenticated(_) | Error::Locked(_) => FsError::Forbidden,
        Error::QuotaExceeded(_) | Error::StorageFull(_) => FsError::InsufficientStorage,
        Error::TooLarge(_) => FsError::TooLarge,
        _ => FsError::GeneralFailure,
    }
}

/// The status the refusal deserves, per the table of refusals.
pub fn status(e: &Error) -> StatusCode {
    use StatusCode as S;
    match e {
        Error::NotFound(_) => S::NOT_FOUND,
        Error::Forbidden(_) => S::FORBIDDEN,
        Error::Unauthenticated(_) => S::UNAUTHORIZED,
        Error::InvalidName(_)
        | Error::InvalidInput(_)
        | Error::InvalidCode(_)
        | Error::Incomplete(_)
        | Error::DigestMismatch(_)
        | Error::InvalidPart(_)
        | Error::InvalidPartOrder(_)
        | Error::TooSmall(_) => S::BAD_REQUEST,
        Error::AlreadyExists(_) => S::METHOD_NOT_ALLOWED,
        Error::NotEmpty(_) | Error::ParentMissing(_) | Error::Conflict(_) => S::CONFLICT,
        Error::PreconditionFailed(_) => S::PRECONDITION_FAILED,
        Error::Gone(_) => S::GONE,
        Error::Locked(_) => S::LOCKED,
        Error::QuotaExceeded(_) | Error::StorageFull(_) => S::INSUFFICIENT_STORAGE,
        Error::TooLarge(_) => S::PAYLOAD_TOO_LARGE,
        Error::TypeNotAllowed(_) => S::UNSUPPORTED_MEDIA_TYPE,
        Error::RangeNotSatisfiable(_) => S::RANGE_NOT_SATISFIABLE,
        Error::Throttled(_) => S::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => S::SERVICE_UNAVAILABLE,
        Error::Incompatible(_) | Error::Corrupt(_) | Error::Internal(_) => S::INTERNAL_SERVER_ERROR,
    }
}

/// The last refusal of the core during one request.
#[derive(Default)]
pub struct LastError(Mutex<Option<Error>>);

impl LastError {
    /// Records a refusal and hands dav-server its `FsError`.
    pub fn record(&self, e: Error) -> FsError {
        if let Some(cause) = e.internal_cause() {
            tracing::error!(cause = ?cause, "WebDAV request failed");
        }
        let fe = fs_error(&e);
        *self.0.lock().expect("last error") = Some(e);
        fe
    }

    /// Our status and reason, when dav-server's answer came from the recorded refusal.
    pub fn refine(&self, dav_status: StatusCode) -> Option<(StatusCode, String)> {
        let e = self.0.lock().expect("last error").take()?;
        let from_it = match fs_error(&e) {
            FsError::Exists => matches!(dav_status.as_u16(), 405 | 412),
            FsError::NotFound => matches!(dav_status.as_u16(), 404 | 409),
            FsError::Forbidden => dav_status == StatusCode::FORBIDDEN,
            FsError::InsufficientStorage => dav_status == StatusCode::INSUFFICIENT_STORAGE,
            FsError::TooLarge => dav_status == StatusCode::PAYLOAD_TOO_LARGE,
            _ => dav_status == StatusCode::INTERNAL_SERVER_ERROR,
        };
        if !from_it {
            return None;
        }
        // dav-server knows which "exists" answer the method needs (405 for MKCOL, 412 for
        // COPY/MOVE without overwrite); a missing parent on PUT is its 409.
        let status = match &e {
            Error::AlreadyExists(_) | Error::NotFound(_) => dav_status,
            e => status(e),
        };
        Some((status, format!("{e}\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's table of refusals, WebDAV column. `AlreadyExists` is 405 here; dav-server
    /// makes it 412 for COPY and MOVE without overwrite (see `refine`).
    const REFUSALS: &[(&str, u16)] = &[
        ("NotFound", 404),
        ("Forbidden", 403),
        ("Unauthenticated", 401),
        ("InvalidName", 400),
        ("InvalidInput", 400),
        ("AlreadyExists", 405),
        ("NotEmpty", 409),
        ("ParentMissing", 409),
        ("Conflict", 409),
        ("PreconditionFailed", 412),
        ("Gone", 410),
        ("Locked", 423),
        ("QuotaExceeded", 507),
        ("StorageFull", 507),
        ("TooLarge", 413),
        ("TypeNotAllowed", 415),
        ("RangeNotSatisfiable", 416),
        ("InvalidPart", 400),
        ("InvalidPartOrder", 400),
        ("TooSmall", 400),
        ("DigestMismatch", 400),
        ("InvalidCode", 400),
        ("Throttled", 429),
        ("Incomplete", 400),
        ("Unavailable", 503),
        ("Corrupt", 500),
        ("Incompatible", 500),
        ("Internal", 500),
    ];

    #[test]
    fn every_refusal_maps_as_the_table_says() {
        for (e, &(name, want)) in Error::each_with_row(REFUSALS, |r| r.0) {
            assert_eq!(status(&e).as_u16(), want, "{name}");
            // The refusal dav-server sees leads it to the same answer, which is then ours.
            let internal = e.internal_cause().is_some();
            let last = LastError::default();
            let dav = match last.record(e) {
                FsError::NotFound => StatusCode::NOT_FOUND,
                FsError::Exists => StatusCode::METHOD_NOT_ALLOWED,
                FsError::Forbidden => StatusCode::FORBIDDEN,
                FsError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
                FsError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let (refined, reason) = last.refine(dav).unwrap_or_else(|| panic!("{name}: not refined"));
            assert_eq!(refined.as_u16(), want, "{name}");
            if internal {
                assert!(!reason.contains('x'), "{name}: the cause is logged, not sent: {reason}");
            }
        }
    }
}
