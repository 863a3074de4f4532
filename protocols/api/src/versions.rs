//! A file's history over REST (the core's versions, which S3 and WebDAV writes share): list a
//! file's versions, download or delete one, restore one (a new current version with its
//! content), and a bucket's (top-level folder's) versioning state.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use davit_storage::{VersionInfo, Versioning};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::files::{ItemJson, asked_range, file_response, rfc3339};
use crate::json::JsonBody;
use crate::{ApiState, Problem};

#[derive(Serialize, JsonSchema)]
pub struct VersionJson {
    id: String,
    latest: bool,
    delete_marker: bool,
    size: u64,
    modified: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
}

impl From<&VersionInfo> for VersionJson {
    fn from(v: &VersionInfo) -> Self {
        VersionJson {
            id: v.id.clone(),
            latest: v.latest,
            delete_marker: v.marker,
            size: v.item.size,
            modified: rfc3339(v.item.modified),
            etag: (!v.marker).then(|| v.item.etag.clone()),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    version: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteVersionQuery {
    /// The version to remove.
    version: Option<String>,
    /// Destroy a version under GOVERNANCE retention (honoured for the bucket's owner or an
    /// admin; COMPLIANCE retention and legal holds yield to no one).
    #[serde(default)]
    bypass_governance: bool,
}

/// Without `?version=`: the file's versions, newest first. With it: that version's bytes
/// (Range honoured); a delete marker has none (404).
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(path): Path<String>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let path = format!("/{path}");
    let Some(id) = q.version else {
        let versions = state.storage.versions_of(&caller.principal, &path).await?;
        let list: Vec<VersionJson> = versions.iter().map(VersionJson::from).collect();
        return Ok(axum::Json(VersionList { path, versions: list }).into_response());
    };
    let info = state.storage.stat_version(&caller.principal, &path, &id).await?;
    if info.marker {
        return Err(Problem::new(StatusCode::NOT_FOUND, "delete_marker", "that version is a delete marker"));
    }
    let range = asked_range(&headers, &info.item)?;
    let (_, read) = state.storage.read_version(&caller.principal, &path, &id, range).await?;
    let read =
        read.ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "delete_marker", "that version is a delete marker"))?;
    let mut resp = file_response(read, range.is_some());
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-davit-version", v);
    }
    Ok(resp)
}

/// Removes one version for good (`?version=` is required): removing the latest makes the
/// one before it current.
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(path): Path<String>,
    Query(q): Query<DeleteVersionQuery>,
) -> Result<StatusCode, Problem> {
    let id = q
        .version
        .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "invalid_input", "name the version: ?version=ID"))?;
    let path = format!("/{path}");
    match state.storage.delete_version(&caller.principal, &path, &id, q.bypass_governance).await {
        Ok(_) => {}
        // A lock's refusal is named apart from a permission's: no other right would help.
        Err(davit_storage::Error::Forbidden(m)) if m.starts_with(davit_storage::OBJECT_LOCK_REFUSAL) => {
            return Err(Problem::new(StatusCode::FORBIDDEN, "object_locked", m));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreReq {
    path: String,
    version: String,
}

/// Makes a version's content the current version again (the one it replaces is kept).
pub async fn restore(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<RestoreReq>,
) -> Result<Response, Problem> {
    let item = state.storage.copy_version(&caller.principal, &req.path, &req.version, &req.path, true).await?;
    Ok(axum::Json(ItemJson::from(&item)).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersioningReq {
    path: String,
    status: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    path: String,
}

/// A file's versions, newest first.
#[derive(Serialize, JsonSchema)]
pub struct VersionList {
    path: String,
    versions: Vec<VersionJson>,
}

/// A top-level folder's versioning: `unversioned`, `enabled` or `suspended`.
#[derive(Serialize, JsonSchema)]
pub struct VersioningState {
    path: String,
    status: &'static str,
}

fn status_name(v: Versioning) -> &'static str {
    match v {
        Versioning::Unversioned => "unversioned",
        Versioning::Enabled => "enabled",
        Versioning::Suspended => "suspended",
    }
}

pub async fn get_versioning(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<PathQuery>,
) -> Result<Response, Problem> {
    let v = state.storage.versioning(&caller.principal, &q.path).await?;
    Ok(axum::Json(VersioningState { path: q.path, status: status_name(v) }).into_response())
}

/// Turns versioning of a top-level folder on (`enabled`) or pauses it (`suspended`).
pub async fn set_versioning(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<VersioningReq>,
) -> Result<Response, Problem> {
    let v = match req.status.as_str() {
        "enabled" => Versioning::Enabled,
        "suspended" => Versioning::Suspended,
        _ => {
            return Err(Problem::new(StatusCode::BAD_REQUEST, "invalid_input", "status is enabled or suspended"));
        }
    };
    state.storage.set_versioning(&caller.principal, &req.path, v).await?;
    Ok(axum::Json(VersioningState { path: req.path, status: status_name(v) }).into_response())
}
