//! JSON request bodies: size-limited, and every rejection (malformed JSON, wrong types,
//! unknown fields, too large) answered as a 400/413 problem, not axum's plain text.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::Problem;

/// The largest JSON body accepted.
pub const MAX_JSON: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
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
