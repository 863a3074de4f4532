//! davit's REST API under `/api/v1`: accounts and sessions, files, sharing and links, admin;
//! and the link pages under `/s/`. Errors are `application/problem+json` (RFC 9457); the
//! OpenAPI document is generated from the same registry that builds the router.

mod account;
mod admin;
mod answers;
mod audit;
mod auth;
mod files;
mod json;
mod mail;
mod problem;
mod public_link;
mod registry;
mod sharing;
mod tags;
mod trash;
mod verify_page;
mod versions;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodFilter, post};
use davit_storage::Storage;
use http::StatusCode;
use registry::{Api, Op};
use serde_json::json;

use crate::account::{
    CodeReq, EmailReq, LoginName, LoginOtpReq, LoginReq, NameReq, PasswordReq, RefreshReq, RegisterReq,
    ResetConfirmReq, SecondFactorReq, VerifyReq,
};
use crate::admin::{BackupReq, CreateUserReq, ResetReq, UpdateUserReq};
use crate::answers::*;
use crate::files::{ItemJson, MoveReq, PathReq};
use crate::sharing::{LinkReq, PermissionReq, ShareReq, TransferReq};

pub use account::user_json;
pub use admin::{check_json, stats_json};
pub use auth::Caller;
pub use axum::Router;
pub use axum::body::Body;
pub use mail::Mailer;
pub use problem::Problem;
pub use public_link::{LINK_PREFIX, OwnPage, open as open_link, serve_link, split_link_path};

#[derive(Clone)]
pub struct ApiState {
    pub storage: Storage,
    pub mailer: Arc<Mailer>,
    /// Cookies get `Secure` when the server is reached over HTTPS.
    pub secure_cookies: bool,
    /// The base of URLs handed out (links); otherwise taken from the request's Host.
    pub public_url: Option<String>,
    /// `http(s)://<listen address>` when that is a concrete address: the base of links in
    /// mails when `public_url` is not set, so that a request's Host never chooses where a
    /// mailed link points.
    pub listen_url: Option<String>,
}

const GET: MethodFilter = MethodFilter::GET;
const POST: MethodFilter = MethodFilter::POST;
const PUT: MethodFilter = MethodFilter::PUT;
const PATCH: MethodFilter = MethodFilter::PATCH;
const DELETE: MethodFilter = MethodFilter::DELETE;

const R_AUTH: &[(u16, &str)] =
    &[(200, "done"), (400, "invalid input"), (401, "not signed in"), (429, "too many attempts")];
const R_ACCEPTED: &[(u16, &str)] = &[(202, "accepted; a mail follows"), (400, "invalid input"), (429, "too soon")];
const R_ME: &[(u16, &str)] = &[(200, "done"), (400, "invalid input"), (401, "not signed in")];
const R_CREATED: &[(u16, &str)] =
    &[(201, "created"), (400, "invalid input"), (401, "not signed in"), (403, "not allowed")];
const R_DELETED: &[(u16, &str)] = &[(204, "deleted"), (401, "not signed in"), (403, "not allowed"), (404, "not found")];
const R_ADMIN: &[(u16, &str)] =
    &[(200, "done"), (400, "invalid input"), (401, "not signed in"), (403, "not an admin"), (404, "no such user")];
const R_ADMIN_BACKUP: &[(u16, &str)] = &[
    (200, "the backup is finished"),
    (400, "not a folder a backup may use"),
    (401, "not signed in"),
    (403, "not an admin"),
    (409, "a backup into that folder is already running"),
];
const R_FILE: &[(u16, &str)] = &[
    (200, "done"),
    (201, "created"),
    (206, "partial content"),
    (401, "not signed in"),
    (403, "not allowed"),
    (404, "not found"),
    (409, "conflict"),
    (412, "precondition failed"),
    (413, "too large"),
    (415, "type not allowed"),
    (416, "range not satisfiable"),
    (507, "over quota"),
];

fn op(
    summary: &'static str,
    auth: bool,
    body: Option<serde_json::Value>,
    responses: &'static [(u16, &'static str)],
) -> Op {
    Op::new(summary, auth, body, responses)
}

/// The OpenAPI document, as `/api/v1/openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    routes().finish().1
}

pub fn router(state: ApiState) -> Router {
    let (routes, doc) = routes().finish();
    let doc = Arc::new(doc);
    routes
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(json::MAX_JSON))
        .layer(axum::middleware::map_response(problem::rejection_as_problem))
        .layer(axum::middleware::from_fn(auth::record_user))
        .with_state(state)
}

fn routes() -> Api {
    let login_body = json!({ "username": "alice", "password": "…" });
    Api::new()
        .route("/api/v1/health", GET, health, op("Liveness", false, None, &[(200, "ok")]).answers::<Health>(200))
        .route("/api/v1/auth/register", POST, account::register, op("Create a pending account; a code is mailed", false, Some(json!({ "username": "alice", "email": "alice@example.com", "password": "…" })), &[(202, "accepted; a mail follows"), (400, "invalid input"), (409, "username taken")]).takes::<RegisterReq>().answers::<Accepted>(202))
        .route("/api/v1/auth/verify", POST, account::verify, op("Activate an account with its mailed code", false, Some(json!({ "username": "alice", "code": "123456" })), R_AUTH).takes::<VerifyReq>().answers::<Verified>(200))
        .route("/api/v1/auth/resend", POST, account::resend, op("Mail a new activation code", false, Some(json!({ "username": "alice" })), R_ACCEPTED).takes::<LoginName>().answers::<Accepted>(202))
        .route("/api/v1/auth/login", POST, account::login, op("Sign in: tokens, or otp_required", false, Some(login_body), R_AUTH).takes::<LoginReq>().answers::<LoginAnswer>(200))
        .route("/api/v1/auth/login/code", POST, account::login_code, op("Mail a sign-in code (no password); complete it at /auth/login/otp", false, Some(json!({ "username": "alice" })), &[(202, "accepted; a mail follows"), (400, "invalid input"), (403, "turned off on this server"), (429, "too soon")]).takes::<LoginName>().answers::<Accepted>(202))
        .route("/api/v1/auth/verify-link/{token}", GET, verify_page::show, op("The page of the link mailed beside the verification code: a button that confirms", false, None, &[(200, "an HTML page"), (400, "not a link davit makes")]).answers_html(200).answers_html(400))
        .route("/api/v1/auth/verify-link/{token}", POST, verify_page::confirm, op("Confirm an account from the page (application/x-www-form-urlencoded, same origin only)", false, None, &[(200, "an HTML page: confirmed"), (400, "wrong, expired or used link"), (403, "from another origin"), (415, "not a form")]).answers_html(200).answers_html(400))
        .route("/api/v1/auth/login/otp", POST, account::login_otp, op("Complete a sign-in with the mailed code", false, Some(json!({ "username": "alice", "code": "123456" })), R_AUTH).takes::<LoginOtpReq>().answers::<TokensJson>(200))
        .route("/api/v1/auth/refresh", POST, account::refresh, op("New tokens for a refresh token (body or cookie)", false, Some(json!({ "refresh_token": "…" })), R_AUTH).takes::<RefreshReq>().body_optional().answers::<TokensJson>(200))
        .route("/api/v1/auth/logout", POST, account::logout, op("End this session (access and refresh token)", true, None, &[(204, "signed out"), (401, "not signed in")]).answers_empty(204))
        .route("/api/v1/auth/password-reset", POST, account::password_reset, op("Mail a password reset code", false, Some(json!({ "email": "alice@example.com" })), R_ACCEPTED).takes::<LoginName>().answers::<Accepted>(202))
        .route("/api/v1/auth/password-reset/confirm", POST, account::password_reset_confirm, op("Set a new password with the mailed code", false, Some(json!({ "username": "alice", "code": "123456", "new_password": "…" })), R_AUTH).takes::<ResetConfirmReq>().answers::<Done>(200))
        .route("/api/v1/me", GET, account::me, op("The signed-in account and its usage", true, None, R_ME).answers::<UserJson>(200))
        .route("/api/v1/me/password", POST, account::change_password, op("Change password; other sessions end", true, Some(json!({ "current_password": "…", "new_password": "…" })), R_ME).takes::<PasswordReq>().answers::<Done>(200))
        .route("/api/v1/me/email", POST, account::change_email, op("Change email: a code goes to the new address", true, Some(json!({ "email": "new@example.com" })), R_ME).takes::<EmailReq>().answers::<Accepted>(202))
        .route("/api/v1/me/email/confirm", POST, account::confirm_email, op("Confirm the new address with its code", true, Some(json!({ "code": "123456" })), R_ME).takes::<CodeReq>().answers::<UserJson>(200))
        .route("/api/v1/me/second-factor/code", POST, account::second_factor_code, op("Mail a code to turn the second factor on or off", true, None, R_ME).answers::<Accepted>(202))
        .route("/api/v1/me/second-factor", POST, account::set_second_factor, op("Turn the mailed second factor on or off", true, Some(json!({ "enabled": true, "code": "123456" })), R_ME).takes::<SecondFactorReq>().answers::<UserJson>(200))
        .route("/api/v1/me/app-passwords", GET, account::list_app_passwords, op("List app passwords", true, None, R_ME).answers::<AppPasswordList>(200))
        .route("/api/v1/me/app-passwords", POST, account::create_app_password, op("Create an app password (shown once)", true, Some(json!({ "name": "laptop" })), R_CREATED).takes::<NameReq>().answers::<AppPasswordCreated>(201))
        .route("/api/v1/me/app-passwords/{id}", DELETE, account::revoke_app_password, op("Revoke an app password", true, None, R_DELETED).answers_empty(204))
        .route("/api/v1/me/audit", GET, audit::mine, op("Your audit events, newest first (paged: cursor, limit)", true, None, R_ME).query::<audit::PageQuery>().answers::<AuditPageJson>(200))
        .route("/api/v1/me/keys", GET, account::list_keys, op("List S3 access keys", true, None, R_ME).answers::<KeyList>(200))
        .route("/api/v1/me/keys", POST, account::create_key, op("Create an S3 access key (secret shown once)", true, None, R_CREATED).answers::<KeyCreated>(201))
        .route("/api/v1/me/keys/{id}", DELETE, account::revoke_key, op("Revoke an S3 access key", true, None, R_DELETED).answers_empty(204))
        .route("/api/v1/usage", GET, files::usage, op("Bytes and files used, and the quota", true, None, R_ME).answers::<UsageJson>(200))
        .route("/api/v1/files", GET, files::get, op("List the drive root", true, None, R_FILE).query::<files::ListQuery>().answers::<Listing>(200))
        .route("/api/v1/files/", GET, files::get, op("List the drive root", true, None, R_FILE).query::<files::ListQuery>().answers::<Listing>(200))
        .route("/api/v1/files/{*path}", GET, files::get, op("Download a file (Range) or list a folder (paged)", true, None, R_FILE).query::<files::ListQuery>().answers::<Listing>(200).answers_bytes(200).answers_bytes(206))
        .route("/api/v1/files/{*path}", PUT, files::put, op("Upload the raw body as a file (streamed)", true, None, R_FILE).takes_bytes().answers::<ItemJson>(200).answers::<ItemJson>(201))
        .route_with("/api/v1/files/{*path}", POST, post(files::upload_form).layer(DefaultBodyLimit::disable()), op("Upload multipart/form-data files into the folder", true, None, R_FILE).takes_form().answers::<ItemList>(201))
        .route("/api/v1/files/{*path}", DELETE, files::delete, op("Delete a file or a folder with its contents", true, None, R_FILE).answers_empty(204))
        .route("/api/v1/versions/{*path}", GET, versions::get, op("A file's versions, newest first; with ?version=ID that version's bytes (Range)", true, None, R_FILE).query::<versions::VersionQuery>().answers::<versions::VersionList>(200).answers_bytes(200).answers_bytes(206))
        .route("/api/v1/versions/{*path}", DELETE, versions::delete, op("Remove one version for good (?version=ID); the one before the latest becomes current", true, None, R_FILE).query::<versions::DeleteVersionQuery>().answers_empty(204))
        .route("/api/v1/restore", POST, versions::restore, op("Make a version's content current again (the replaced one is kept)", true, Some(json!({ "path": "/bucket/report.pdf", "version": "fffffffffffffff0" })), R_FILE).takes::<versions::RestoreReq>().answers::<ItemJson>(200))
        .route("/api/v1/versioning", GET, versions::get_versioning, op("A top-level folder's versioning: unversioned, enabled or suspended (path query)", true, None, R_FILE).query::<versions::PathQuery>().answers::<versions::VersioningState>(200))
        .route("/api/v1/versioning", POST, versions::set_versioning, op("Enable or suspend versioning of a top-level folder of your drive", true, Some(json!({ "path": "/bucket", "status": "enabled" })), R_FILE).takes::<versions::VersioningReq>().answers::<versions::VersioningState>(200))
        .route("/api/v1/trash", GET, trash::list, op("Your trash: what WebDAV and REST deletes kept, oldest first, with when each is removed for good", true, None, R_ME).answers::<trash::TrashList>(200))
        .route("/api/v1/trash", DELETE, trash::empty, op("Empty your trash: everything in it is removed for good and its bytes freed", true, None, R_DELETED).answers_empty(204))
        .route("/api/v1/trash/{id}/restore", POST, trash::restore, op("Put a trash entry back where it was (parent folders made again), or at path; 409 when something is there now. Grants and links it had do not come back", true, Some(json!({ "path": "/restored/report.pdf" })), R_FILE).takes::<trash::RestoreReq>().body_optional().answers::<ItemJson>(200))
        .route("/api/v1/trash/{id}", DELETE, trash::purge, op("Remove a trash entry for good, freeing its bytes", true, None, R_DELETED).answers_empty(204))
        .route("/api/v1/mkdir", POST, files::mkdir, op("Make a folder", true, Some(json!({ "path": "/docs" })), R_FILE).takes::<PathReq>().answers::<ItemJson>(201))
        .route("/api/v1/move", POST, files::rename, op("Move or rename a file or folder", true, Some(json!({ "from": "/a.txt", "to": "/docs/a.txt", "overwrite": false })), R_FILE).takes::<MoveReq>().answers::<ItemJson>(200).answers::<ItemJson>(201))
        .route("/api/v1/copy", POST, files::copy, op("Copy a file or folder (no data copied)", true, Some(json!({ "from": "/a.txt", "to": "/b.txt", "overwrite": false })), R_FILE).takes::<MoveReq>().answers::<ItemJson>(200).answers::<ItemJson>(201))
        .route("/api/v1/shares", POST, sharing::create_share, op("Share an item of your drive with a user (read or read-write; reshare: may make download links; an optional end)", true, Some(json!({ "path": "/docs", "user": "bob", "permission": "read", "reshare": false, "expires_in": 604800 })), R_CREATED).takes::<ShareReq>().answers::<ShareJson>(201))
        .route("/api/v1/shares", GET, sharing::list_shares, op("What you shared and what is shared with you", true, None, R_ME).answers::<ShareLists>(200))
        .route("/api/v1/tags", GET, tags::get, op("The tags of a file or folder (path query)", true, None, R_FILE).query::<tags::PathQuery>().answers::<tags::Tags>(200))
        .route("/api/v1/tags", PUT, tags::put, op("Replace the tags of a file or folder (S3's object limits: 10 tags, keys up to 128 and values up to 256 characters)", true, Some(json!({ "path": "/report.pdf", "tags": [{ "key": "project", "value": "apollo" }] })), R_FILE).takes::<tags::SetTags>().answers::<tags::Tags>(200))
        .route("/api/v1/shares/by-path", GET, sharing::shares_by_path, op("Who has access to an item (path query)", true, None, R_FILE).query::<sharing::PathQuery>().answers::<PathAccess>(200))
        .route("/api/v1/shares/{id}", PATCH, sharing::update_share, op("Change a share's permission, reshare or end (each may be left out)", true, Some(json!({ "permission": "read-write", "reshare": true, "expires_at": "2030-01-01T00:00:00Z" })), R_FILE).takes::<PermissionReq>().answers::<ShareJson>(200))
        .route("/api/v1/shares/{id}", DELETE, sharing::delete_share, op("Revoke a share (owner) or leave it (grantee)", true, None, R_DELETED).answers_empty(204))
        .route("/api/v1/transfers", POST, sharing::transfer, op("Give an item to another user: it moves to the top of their drive", true, Some(json!({ "path": "/report.pdf", "user": "bob" })), R_FILE).takes::<TransferReq>().answers::<Transferred>(200))
        .route("/api/v1/links", POST, sharing::create_link, op("Make an expiring link (download, or upload to a folder); of /shared/… when the grant allows links", true, Some(json!({ "path": "/report.pdf", "expires_in": 86400, "password": "…", "max_downloads": 10, "permission": "download" })), R_CREATED).takes::<LinkReq>().answers::<LinkCreated>(201))
        .route("/api/v1/links", GET, sharing::list_links, op("Your links and their state", true, None, R_ME).answers::<LinkList>(200))
        .route("/api/v1/links/{id}", DELETE, sharing::delete_link, op("Revoke a link: it answers 410 Gone", true, None, R_DELETED).answers_empty(204))
        .route("/api/v1/admin/users", GET, admin::list_users, op("List and search users (paged: q, after, limit)", true, None, R_ADMIN).query::<admin::UserQuery>().answers::<UserPage>(200))
        .route("/api/v1/admin/users", POST, admin::create_user, op("Create a user", true, Some(json!({ "username": "bob", "password": "…", "email": "bob@example.com", "role": "user", "quota": 0 })), R_ADMIN).takes::<CreateUserReq>().answers::<UserJson>(201))
        .route("/api/v1/admin/users/{id}", GET, admin::get_user, op("A user with usage", true, None, R_ADMIN).answers::<UserJson>(200))
        .route("/api/v1/admin/users/{id}", PATCH, admin::update_user, op("Set role, quota or disabled", true, Some(json!({ "role": "uploader", "quota": 1073741824, "disabled": false })), R_ADMIN).takes::<UpdateUserReq>().answers::<UserJson>(200))
        .route("/api/v1/admin/users/{id}", DELETE, admin::delete_user, op("Delete a user and all their data (refused while object lock holds any of it; ?bypass_governance=true lets GOVERNANCE retention go)", true, None, R_ADMIN).query::<admin::DeleteUserQuery>().answers_empty(204))
        .route("/api/v1/admin/users/{id}/password", POST, admin::reset_password, op("Set a user's password (audited; the user is mailed and their sessions end)", true, Some(json!({ "password": "…" })), R_ADMIN).takes::<ResetReq>().answers::<UserJson>(200))
        .route("/api/v1/admin/users/{id}/keys", GET, admin::user_keys, op("A user's S3 keys", true, None, R_ADMIN).answers::<KeyList>(200))
        .route("/api/v1/admin/users/{id}/keys", POST, admin::create_user_key, op("Refused for another user (403): admins do not mint credentials for others", true, None, R_ADMIN).answers::<KeyCreated>(201))
        .route("/api/v1/admin/users/{id}/keys/{key}", DELETE, admin::revoke_user_key, op("Revoke a user's S3 key", true, None, R_ADMIN).answers_empty(204))
        .route("/api/v1/admin/users/{id}/app-passwords", GET, admin::user_app_passwords, op("A user's app passwords", true, None, R_ADMIN).answers::<AppPasswordList>(200))
        .route("/api/v1/admin/users/{id}/app-passwords", POST, admin::create_user_app_password, op("Refused for another user (403): admins do not mint credentials for others", true, Some(json!({ "name": "script" })), R_ADMIN).takes::<NameReq>().answers::<AppPasswordCreated>(201))
        .route("/api/v1/admin/users/{id}/app-passwords/{ap}", DELETE, admin::revoke_user_app_password, op("Revoke a user's app password", true, None, R_ADMIN).answers_empty(204))
        .route("/api/v1/admin/audit", GET, audit::all, op("Every audit event, newest first (paged: cursor, limit)", true, None, R_ADMIN).query::<audit::PageQuery>().answers::<AuditPageJson>(200))
        .route("/api/v1/admin/stats", GET, admin::stats, op("Users, files, logical and stored bytes, dedup ratio", true, None, R_ADMIN).answers::<StatsJson>(200))
        .route("/api/v1/admin/check", GET, admin::check, op("Read-only consistency check of chunks, references and usage", true, None, R_ADMIN).answers::<CheckJson>(200))
        .route("/api/v1/admin/backup", POST, admin::backup, op("Back up the metadata and its chunks into a folder on the server's host (absolute path; missing, empty or an earlier backup); answers when done", true, Some(json!({ "to": "/srv/backups/davit" })), R_ADMIN_BACKUP).takes::<BackupReq>().answers::<BackupJson>(200))
}

/// A problem+json answer, for refusals made before a request reaches the router.
pub fn problem(status: StatusCode, code: &'static str, detail: &str) -> axum::response::Response {
    axum::response::IntoResponse::into_response(Problem::new(status, code, detail))
}

async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}

async fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that method")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every success that has a body names its type, and so does every JSON request body:
    /// a route added without them would be served with an undocumented shape.
    #[test]
    fn every_body_has_a_schema() {
        let doc = super::openapi();
        if std::env::var_os("DAVIT_PRINT_OPENAPI").is_some() {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap());
        }
        let mut checked = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                for (status, r) in op["responses"].as_object().unwrap() {
                    let success = status.starts_with('2') && status != "204";
                    let has_schema = r["content"]
                        .as_object()
                        .is_some_and(|c| !c.is_empty() && c.values().all(|m| m.get("schema").is_some()));
                    assert!(!success || has_schema, "{method} {path} answers {status} without a schema: {r}");
                    checked += 1;
                }
                if let Some(body) = op.get("requestBody") {
                    let content = body["content"].as_object().unwrap();
                    assert!(content.values().all(|m| m.get("schema").is_some()), "{method} {path}: {body}");
                }
            }
        }
        assert!(checked > 100, "{checked}");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in ["Problem", "UserJson", "ItemJson", "ShareJson", "LinkCreated", "LoginReq"] {
            assert!(schemas.contains_key(name), "{name} missing: {:?}", schemas.keys().collect::<Vec<_>>());
        }
        // Every reference resolves.
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
            assert!(schemas.contains_key(name), "{r} does not resolve");
        }
    }
}
