//! The caller's trash over REST (the core's `trash`): what WebDAV and REST deletes put there,
//! listed, restored (where it was or to a new path), purged one by one or all at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use davit_storage::TrashEntry;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::answers::ItemKind;
use crate::auth::Caller;
use crate::files::{ItemJson, rfc3339};
use crate::{ApiState, Problem};

/// One entry of the trash.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TrashItem {
    /// What to restore or purge it by.
    pub id: u64,
    /// Where it was in your drive.
    pub path: String,
    pub kind: ItemKind,
    /// Bytes (a folder: of everything in it); they count against your quota until purged.
    pub size: u64,
    /// Files (a folder: how many it holds).
    pub files: u64,
    /// RFC 3339.
    pub deleted_at: String,
    /// When it is removed for good (RFC 3339).
    pub expires_at: String,
    /// Who deleted it (you, or someone you shared a folder with); null when that account
    /// is gone.
    pub deleted_by: Option<String>,
}

impl From<&TrashEntry> for TrashItem {
    fn from(e: &TrashEntry) -> Self {
        TrashItem {
            id: e.id,
            path: e.path.clone(),
            kind: e.kind.into(),
            size: e.size,
            files: e.files,
            deleted_at: rfc3339(e.deleted_at),
            expires_at: rfc3339(e.expires_at),
            deleted_by: e.deleted_by_name.clone(),
        }
    }
}

/// The trash, oldest deletion first.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TrashList {
    pub items: Vec<TrashItem>,
}

/// Where to restore to; without a body (or a path) the entry goes back where it was.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RestoreReq {
    #[serde(default)]
    path: Option<String>,
}

pub async fn list(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let entries = state.storage.trash_list(&caller.principal).await?;
    Ok(axum::Json(TrashList { items: entries.iter().map(TrashItem::from).collect() }).into_response())
}

/// The body is optional, so it is read by hand: an empty one restores to the old place.
pub async fn restore(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let req: RestoreReq = if body.is_empty() {
        RestoreReq::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid JSON body: {e}")))?
    };
    let item = state.storage.trash_restore(&caller.principal, id, req.path.as_deref()).await?;
    Ok(axum::Json(ItemJson::from(&item)).into_response())
}

pub async fn purge(State(state): State<ApiState>, caller: Caller, Path(id): Path<u64>) -> Result<StatusCode, Problem> {
    state.storage.trash_purge(&caller.principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn empty(State(state): State<ApiState>, caller: Caller) -> Result<StatusCode, Problem> {
    state.storage.trash_empty(&caller.principal).await?;
    Ok(StatusCode::NO_CONTENT)
}
