//! The one mapping from storage refusals to REST answers.

use axum::response::{IntoResponse, Response};
use davit_storage::Error;
use http::{HeaderValue, StatusCode};

/// An RFC 9457 problem: a stable machine-readable `code` and a human `detail`.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, code, detail: detail.into(), retry_after: None }
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            Error::NotFound(_) => (S::NOT_FOUND, "not_found"),
            Error::Forbidden(_) => (S::FORBIDDEN, "forbidden"),
            Error::Unauthenticated(_) => (S::UNAUTHORIZED, "unauthenticated"),
            Error::InvalidName(_) => (S::BAD_REQUEST, "invalid_name"),
            Error::InvalidInput(_) => (S::BAD_REQUEST, "invalid_input"),
            Error::AlreadyExists(_) => (S::CONFLICT, "already_exists"),
            Error::NotEmpty(_) => (S::CONFLICT, "not_empty"),
            Error::ParentMissing(_) => (S::CONFLICT, "parent_missing"),
            Error::Conflict(_) => (S::CONFLICT, "conflict"),
            Error::PreconditionFailed(_) => (S::PRECONDITION_FAILED, "precondition_failed"),
            Error::Gone(_) => (S::GONE, "gone"),
            Error::Locked(_) => (S::LOCKED, "locked"),
            Error::QuotaExceeded(_) => (S::INSUFFICIENT_STORAGE, "quota_exceeded"),
            Error::StorageFull(_) => (S::INSUFFICIENT_STORAGE, "storage_full"),
            Error::TooLarge(_) => (S::PAYLOAD_TOO_LARGE, "too_large"),
            Error::TypeNotAllowed(_) => (S::UNSUPPORTED_MEDIA_TYPE, "type_not_allowed"),
            Error::RangeNotSatisfiable(_) => (S::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            Error::InvalidCode(_) => (S::BAD_REQUEST, "invalid_code"),
            Error::DigestMismatch(_) => (S::BAD_REQUEST, "bad_digest"),
            Error::InvalidPart(_) | Error::InvalidPartOrder(_) | Error::TooSmall(_) => (S::BAD_REQUEST, "invalid_part"),
            Error::Throttled(_) => (S::TOO_MANY_REQUESTS, "throttled"),
            Error::Incomplete(_) => (S::BAD_REQUEST, "incomplete_body"),
            Error::Unavailable(_) => (S::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Incompatible(_) | Error::Corrupt(_) | Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        if let Some(cause) = e.internal_cause() {
            tracing::error!(cause = ?cause, "request failed");
        }
        let mut p = Problem::new(status, code, e.to_string());
        if let Error::Throttled(secs) = e {
            p.retry_after = Some(secs);
        }
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = crate::answers::ProblemJson {
            type_: format!("https://davit.dev/problems/{}", self.code),
            title: self.status.canonical_reason().unwrap_or("error").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.detail,
        };
        let mut resp = (self.status, serde_json::to_string(&body).unwrap_or_default()).into_response();
        resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// An answer axum's own extractors made (a path id that is no number, a query field of the
/// wrong type or missing): plain text, where every REST refusal is problem+json. Their text
/// names the parameter, never a secret.
pub(crate) async fn rejection_as_problem(resp: Response) -> Response {
    let plain = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !(plain && resp.status().is_client_error()) {
        return resp;
    }
    let status = resp.status();
    let detail = match axum::body::to_bytes(resp.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => status.canonical_reason().unwrap_or("bad request").to_owned(),
    };
    Problem::new(status, "invalid_input", detail).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's table of refusals, REST column (and the rows it leaves to this table).
    const REFUSALS: &[(&str, u16, &str)] = &[
        ("NotFound", 404, "not_found"),
        ("Forbidden", 403, "forbidden"),
        ("Unauthenticated", 401, "unauthenticated"),
        ("InvalidName", 400, "invalid_name"),
        ("InvalidInput", 400, "invalid_input"),
        ("AlreadyExists", 409, "already_exists"),
        ("NotEmpty", 409, "not_empty"),
        ("ParentMissing", 409, "parent_missing"),
        ("Conflict", 409, "conflict"),
        ("PreconditionFailed", 412, "precondition_failed"),
        ("Gone", 410, "gone"),
        ("Locked", 423, "locked"),
        ("QuotaExceeded", 507, "quota_exceeded"),
        ("StorageFull", 507, "storage_full"),
        ("TooLarge", 413, "too_large"),
        ("TypeNotAllowed", 415, "type_not_allowed"),
        ("RangeNotSatisfiable", 416, "range_not_satisfiable"),
        ("InvalidPart", 400, "invalid_part"),
        ("InvalidPartOrder", 400, "invalid_part"),
        ("TooSmall", 400, "invalid_part"),
        ("DigestMismatch", 400, "bad_digest"),
        ("InvalidCode", 400, "invalid_code"),
        ("Throttled", 429, "throttled"),
        ("Incomplete", 400, "incomplete_body"),
        ("Unavailable", 503, "unavailable"),
        ("Corrupt", 500, "internal"),
        ("Incompatible", 500, "internal"),
        ("Internal", 500, "internal"),
    ];

    #[test]
    fn every_refusal_maps_as_the_table_says() {
        for (e, &(name, status, code)) in Error::each_with_row(REFUSALS, |r| r.0) {
            let internal = e.internal_cause().is_some();
            let p = Problem::from(e);
            assert_eq!((p.status.as_u16(), p.code), (status, code), "{name}");
            if internal {
                assert!(!p.detail.contains('x'), "{name}: the cause is logged, not sent: {}", p.detail);
            }
        }
    }
}
