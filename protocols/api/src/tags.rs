//! Tags of a file or folder over REST: the same tags S3 calls object tagging (the core keeps
//! them and their limits, `davit_storage::tagging`), for clients that speak only REST.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use davit_storage::TagTarget;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::json::JsonBody;
use crate::{ApiState, Problem};

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagJson {
    key: String,
    value: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    path: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTags {
    path: String,
    tags: Vec<TagJson>,
}

/// A file's or folder's tags, sorted by key.
#[derive(Serialize, JsonSchema)]
pub struct Tags {
    path: String,
    tags: Vec<TagJson>,
}

fn answer(path: &str, tags: Vec<(String, String)>) -> Response {
    let tags: Vec<TagJson> = tags.into_iter().map(|(key, value)| TagJson { key, value }).collect();
    axum::Json(Tags { path: path.to_owned(), tags }).into_response()
}

pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<PathQuery>,
) -> Result<Response, Problem> {
    let tags = state.storage.tags(&caller.principal, &q.path).await?;
    Ok(answer(&q.path, tags))
}

/// Replaces the item's tags (an empty list removes them), held to S3's object limits.
pub async fn put(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<SetTags>,
) -> Result<Response, Problem> {
    let tags: Vec<(String, String)> = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    state.storage.set_tags(&caller.principal, &req.path, tags.clone(), TagTarget::Object).await?;
    Ok(answer(&req.path, tags))
}
