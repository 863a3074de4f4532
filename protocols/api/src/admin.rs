//! The admin API: accounts and statistics. Every call first obtains the storage core's
//! `Admin` capability, which refuses non-admins. It gives no way into a user's files: no
//! credentials minted for someone else, and a password an admin sets is mailed about.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use davit_storage::{CheckReport, NewUser, Role, Stats, Status};
use http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::account::{NameReq, app_password_created, app_passwords_list, key_created, keys_list};
use crate::answers::{BackupJson, CheckJson, StatsJson, UserJson, UserPage};
use crate::auth::Caller;
use crate::json::JsonBody;
use crate::{ApiState, Problem};

fn role(s: &str) -> Result<Role, Problem> {
    Role::parse(s).ok_or_else(|| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_input", "role is one of admin, user, uploader, downloader")
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Only users whose name or address contains this.
    q: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<u64>,
    /// At most this many (1 to 1000; default 100).
    limit: Option<usize>,
}

pub async fn list_users(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<UserQuery>,
) -> Result<Response, Problem> {
    let admin = state.storage.admin(&caller.principal)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let users = admin.list_users(q.q, q.after.unwrap_or(0), limit).await?;
    let next = (users.len() == limit).then(|| users.last().map(|(u, _)| u.id)).flatten();
    let items = users.iter().map(|(u, us)| UserJson::new(u, Some(*us))).collect();
    Ok(Json(UserPage { items, next_after: next }).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserReq {
    username: String,
    password: String,
    email: Option<String>,
    role: Option<String>,
    quota: Option<u64>,
}

pub async fn create_user(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateUserReq>,
) -> Result<Response, Problem> {
    let admin = state.storage.admin(&caller.principal)?;
    let role = req.role.as_deref().map(role).transpose()?.unwrap_or(Role::User);
    let user = admin
        .create_user(NewUser {
            username: req.username,
            email: req.email,
            password: req.password,
            role,
            status: Status::Active,
            quota: req.quota,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(UserJson::new(&user, None))).into_response())
}

pub async fn get_user(State(state): State<ApiState>, caller: Caller, Path(id): Path<u64>) -> Result<Response, Problem> {
    let (user, usage) = state.storage.admin(&caller.principal)?.user(id).await?;
    Ok(Json(UserJson::new(&user, Some(usage))).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserReq {
    role: Option<String>,
    quota: Option<u64>,
    disabled: Option<bool>,
}

pub async fn update_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
    JsonBody(req): JsonBody<UpdateUserReq>,
) -> Result<Response, Problem> {
    let admin = state.storage.admin(&caller.principal)?;
    let role = req.role.as_deref().map(role).transpose()?;
    let user = admin.update_user(id, role, req.quota, req.disabled).await?;
    Ok(Json(UserJson::new(&user, None)).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteUserQuery {
    /// Destroy the user's versions under GOVERNANCE retention too (COMPLIANCE retention and
    /// legal holds still refuse the deletion, naming the objects).
    #[serde(default)]
    bypass_governance: bool,
}

pub async fn delete_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
    Query(q): Query<DeleteUserQuery>,
) -> Result<StatusCode, Problem> {
    state.storage.admin(&caller.principal)?.delete_user_with(id, q.bypass_governance).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetReq {
    password: String,
}

pub async fn reset_password(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
    JsonBody(req): JsonBody<ResetReq>,
) -> Result<Response, Problem> {
    let user = state.storage.admin(&caller.principal)?.reset_password(id, &req.password).await?;
    if let Some(to) = &user.email {
        let body = format!(
            "The davit administrator {} set a new password for your account {}.\n\
             Every session of yours was ended; sign in with the new password they give you.\n\
             If you did not expect this, contact your administrator.\n",
            caller.user.username, user.username
        );
        // The password is set either way; a mail that fails is logged, not a failed change.
        if let Err(e) = state.mailer.send(to, "Your davit password was changed by an administrator", body).await {
            tracing::error!(error = %e, user_id = user.id, "mailing the user about the new password failed");
        }
    }
    Ok(Json(UserJson::new(&user, None)).into_response())
}

pub async fn stats(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let s = state.storage.admin(&caller.principal)?.stats().await?;
    Ok(Json(StatsJson::from(&s)).into_response())
}

/// The shape of the figures, for this API and the offline `davit admin stats` alike.
pub fn stats_json(s: &Stats) -> Value {
    serde_json::to_value(StatsJson::from(s)).unwrap_or(Value::Null)
}

pub async fn user_keys(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Response, Problem> {
    Ok(keys_list(&state.storage.admin(&caller.principal)?.access_keys(id).await?))
}

pub async fn create_user_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Response, Problem> {
    // An admin's own credentials only (the core refuses others'), and not with an app password.
    caller.may_manage_account()?;
    let (key, secret) = state.storage.admin(&caller.principal)?.create_access_key(id).await?;
    Ok(key_created(&key, &secret))
}

pub async fn revoke_user_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, key)): Path<(u64, String)>,
) -> Result<StatusCode, Problem> {
    state.storage.admin(&caller.principal)?.revoke_access_key(id, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn user_app_passwords(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Response, Problem> {
    Ok(app_passwords_list(&state.storage.admin(&caller.principal)?.app_passwords(id).await?))
}

pub async fn create_user_app_password(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
    JsonBody(req): JsonBody<NameReq>,
) -> Result<Response, Problem> {
    // An admin's own credentials only (the core refuses others'), and not with an app password.
    caller.may_manage_account()?;
    let (ap, secret) = state.storage.admin(&caller.principal)?.create_app_password(id, &req.name).await?;
    Ok(app_password_created(&ap, &secret))
}

pub async fn revoke_user_app_password(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, ap)): Path<(u64, u64)>,
) -> Result<StatusCode, Problem> {
    state.storage.admin(&caller.principal)?.revoke_app_password(id, ap).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The read-only consistency check of `davit admin check`, on the running server.
pub async fn check(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let r = state.storage.admin(&caller.principal)?.check().await?;
    Ok(Json(CheckJson::from(&r)).into_response())
}

/// The shape of a check's report, for this API and the offline `davit admin check` alike.
pub fn check_json(r: &CheckReport) -> Value {
    serde_json::to_value(CheckJson::from(r)).unwrap_or(Value::Null)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupReq {
    to: String,
}

/// A live backup into a folder on the server's host (see `davit_storage::ops::backup`);
/// answers when it is finished.
pub async fn backup(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<BackupReq>,
) -> Result<Response, Problem> {
    let r = state.storage.admin(&caller.principal)?.backup(req.to.into()).await?;
    Ok(Json(BackupJson::from(&r)).into_response())
}
