//! JSON request bodies: `application/json` only, size-limited, and every rejection (another
//! type, malformed JSON, wrong types, unknown fields, too large) answered as a problem, not
//! axum's plain text.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::Problem;

/// The largest JSON body accepted.
pub const MAX_JSON: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

/// `application/json`, with or without parameters (`; charset=utf-8`). Requiring it makes a
/// cross-site form or `fetch` that may skip the CORS preflight (text/plain, form types)
/// unable to reach a JSON endpoint.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "this endpoint takes a JSON body sent as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("JSON bodies are limited to {MAX_JSON} bytes"),
            )
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid JSON body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, header};

    #[test]
    fn only_application_json() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            super::is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("multipart/form-data; boundary=x"));
        assert!(!with("application/jsonx"));
        assert!(!super::is_json(&HeaderMap::new()), "no type is no JSON");
    }
}
