//! The audit trail over REST: every event for admins, one's own for everyone, newest first
//! and paged by an opaque cursor. The rules (who sees what) are the core's.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use davit_storage::audit::{AuditPage, Cursor};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::{ApiState, Problem};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The `next` of the previous page.
    cursor: Option<String>,
    limit: Option<usize>,
}

fn parse(q: &PageQuery) -> Result<(Option<Cursor>, usize), Problem> {
    let cursor = q.cursor.as_deref().map(Cursor::parse).transpose()?;
    Ok((cursor, q.limit.unwrap_or(100)))
}

fn page(p: AuditPage) -> Response {
    let items: Vec<_> = p.events.iter().map(|e| e.json()).collect();
    axum::Json(json!({ "items": items, "next": p.next.map(|c| c.to_string()) })).into_response()
}

pub async fn all(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Response, Problem> {
    let (cursor, limit) = parse(&q)?;
    Ok(page(state.storage.audit_page(&caller.principal, cursor, limit).await?))
}

pub async fn mine(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Response, Problem> {
    let (cursor, limit) = parse(&q)?;
    Ok(page(state.storage.my_audit_page(&caller.principal, cursor, limit).await?))
}
