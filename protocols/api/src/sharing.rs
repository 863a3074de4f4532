//! Shares, transfers and links over REST. Paths are the item's path in the caller's own
//! drive; every rule is the core's.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use davit_storage::NewLink;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::answers::{LinkCreated, LinkJson, LinkList, PathAccess, ShareJson, ShareLists, Transferred};
use crate::auth::Caller;
use crate::files::ItemJson;
use crate::json::JsonBody;
use crate::{ApiState, Problem};

fn parse_permission(p: &str) -> Result<bool, Problem> {
    match p {
        "read" => Ok(false),
        "read-write" => Ok(true),
        other => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("permission is 'read' or 'read-write', not '{other}'"),
        )),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareReq {
    path: String,
    user: String,
    #[serde(default = "read")]
    permission: String,
    /// The grantee may make download links; absent: a new grant gets its role's default.
    reshare: Option<bool>,
    /// When the grant ends by itself: seconds from now, or an RFC 3339 time.
    expires_in: Option<u64>,
    expires_at: Option<String>,
}

/// A moment given as seconds from now or as an RFC 3339 time, in Unix nanoseconds.
fn moment(expires_in: Option<u64>, expires_at: Option<&str>) -> Result<Option<i64>, Problem> {
    let bad = |m: &str| Problem::new(StatusCode::BAD_REQUEST, "invalid_input", m.to_owned());
    match (expires_in, expires_at) {
        (Some(_), Some(_)) => Err(bad("give expires_in or expires_at, not both")),
        (Some(secs), None) => {
            let d = std::time::Duration::from_secs(secs).as_nanos().min(i64::MAX as u128) as i64;
            Ok(Some(davit_storage::model::now_nanos().saturating_add(d)))
        }
        (None, Some(s)) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| bad("expires_at is an RFC 3339 time"))?;
            Ok(Some(t.unix_timestamp_nanos().clamp(0, i64::MAX as i128) as i64))
        }
        (None, None) => Ok(None),
    }
}

fn read() -> String {
    "read".into()
}

pub async fn create_share(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<ShareReq>,
) -> Result<Response, Problem> {
    let write = parse_permission(&req.permission)?;
    let until = moment(req.expires_in, req.expires_at.as_deref())?;
    let s = state.storage.share_with(&caller.principal, &req.path, &req.user, write, req.reshare, until).await?;
    Ok((StatusCode::CREATED, Json(ShareJson::from(&s))).into_response())
}

pub async fn list_shares(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let (mine, with_me) = state.storage.list_shares(&caller.principal).await?;
    Ok(Json(ShareLists {
        mine: mine.iter().map(ShareJson::from).collect(),
        shared_with_me: with_me.iter().map(ShareJson::from).collect(),
    })
    .into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionReq {
    permission: Option<String>,
    reshare: Option<bool>,
    expires_in: Option<u64>,
    expires_at: Option<String>,
}

pub async fn update_share(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
    JsonBody(req): JsonBody<PermissionReq>,
) -> Result<Response, Problem> {
    let write = req.permission.as_deref().map(parse_permission).transpose()?;
    let until = moment(req.expires_in, req.expires_at.as_deref())?;
    let s = state.storage.update_share_terms(&caller.principal, id, write, req.reshare, until).await?;
    Ok(Json(ShareJson::from(&s)).into_response())
}

pub async fn delete_share(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<StatusCode, Problem> {
    state.storage.delete_share(&caller.principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    path: String,
}

pub async fn shares_by_path(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<PathQuery>,
) -> Result<Response, Problem> {
    let list = state.storage.shares_of_path(&caller.principal, &q.path).await?;
    Ok(Json(PathAccess { path: q.path, access: list.iter().map(ShareJson::from).collect() }).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferReq {
    path: String,
    user: String,
}

pub async fn transfer(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<TransferReq>,
) -> Result<Response, Problem> {
    let (item, path) = state.storage.transfer(&caller.principal, &req.path, &req.user).await?;
    Ok(Json(Transferred { user: req.user, path, item: ItemJson::from(&item) }).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkReq {
    path: String,
    expires_in: Option<u64>,
    expires_at: Option<String>,
    password: Option<String>,
    max_downloads: Option<u64>,
    #[serde(default = "download")]
    permission: String,
}

fn download() -> String {
    "download".into()
}

/// `https://host/s/<token>`, from the Host the caller used.
fn link_url(state: &ApiState, headers: &HeaderMap, token: &str) -> String {
    if let Some(base) = &state.public_url {
        return format!("{}/s/{token}", base.trim_end_matches('/'));
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let scheme = if state.secure_cookies { "https" } else { "http" };
    format!("{scheme}://{host}/s/{token}")
}

pub async fn create_link(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<LinkReq>,
) -> Result<Response, Problem> {
    let upload = match req.permission.as_str() {
        "download" => false,
        "upload" => true,
        other => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!("permission is 'download' or 'upload', not '{other}'"),
            ));
        }
    };
    let expires_at = match &req.expires_at {
        Some(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
                Problem::new(StatusCode::BAD_REQUEST, "invalid_input", "expires_at is an RFC 3339 time")
            })?;
            Some(t.unix_timestamp_nanos().clamp(0, i64::MAX as i128) as i64)
        }
        None => None,
    };
    let new = NewLink {
        expires_in: req.expires_in,
        expires_at,
        password: req.password,
        max_downloads: req.max_downloads,
        upload,
    };
    let (info, token) = state.storage.create_link(&caller.principal, &req.path, new).await?;
    let v = LinkCreated { link: LinkJson::from(&info), url: link_url(&state, &headers, &token), token };
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn list_links(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let links = state.storage.list_links(&caller.principal).await?;
    Ok(Json(LinkList { links: links.iter().map(LinkJson::from).collect() }).into_response())
}

pub async fn delete_link(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<StatusCode, Problem> {
    state.storage.revoke_link(&caller.principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
