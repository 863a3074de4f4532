//! The audit trail over REST: every event for admins, one's own for everyone, newest first
//! and paged by an opaque cursor. The rules (who sees what) are the core's.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use davit_storage::audit::{AuditPage, Cursor};
use http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::answers::{AuditEventJson, AuditPageJson};
use crate::auth::Caller;
use crate::{ApiState, Problem};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// At most this many events (default 100).
    limit: Option<usize>,
}

fn parse(q: &PageQuery) -> Result<(Option<Cursor>, usize), Problem> {
    let cursor = q.cursor.as_deref().map(Cursor::parse).transpose()?;
    Ok((cursor, q.limit.unwrap_or(100)))
}

/// The core writes an event's JSON (the same line goes to the audit log); it is read back
/// into the API's type, so an event that no longer fits its documented shape is an error
/// here, not an undocumented answer.
fn page(p: AuditPage) -> Result<Response, Problem> {
    let items = p
        .events
        .iter()
        .map(|e| serde_json::from_value::<AuditEventJson>(e.json()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tracing::error!(error = %e, "an audit event does not fit its documented shape");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an audit event could not be shown")
        })?;
    Ok(axum::Json(AuditPageJson { items, next: p.next.map(|c| c.to_string()) }).into_response())
}

pub async fn all(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Response, Problem> {
    let (cursor, limit) = parse(&q)?;
    page(state.storage.audit_page(&caller.principal, cursor, limit).await?)
}

pub async fn mine(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Response, Problem> {
    let (cursor, limit) = parse(&q)?;
    page(state.storage.my_audit_page(&caller.principal, cursor, limit).await?)
}
