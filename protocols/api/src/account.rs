//! Accounts and sessions: registration with a mailed code, login (with the optional mailed
//! second factor), refresh, logout, password reset, and one's own account settings, app
//! passwords and S3 keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use davit_storage::{AccessKey, AccountMail, AppPassword, LoginOutcome, Tokens, Usage, User};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::answers::{
    Accepted, AppPasswordCreated, AppPasswordJson, AppPasswordList, Done, KeyCreated, KeyJson, KeyList, LoginAnswer,
    OtpRequired, TokensJson, UserJson, Verified,
};
use crate::auth::{ACCESS_COOKIE, Addr, Caller, REFRESH_COOKIE, cookie, unauthorized};
use crate::json::JsonBody;
use crate::{ApiState, Problem};

/// The API's shape of a user, for the offline `davit admin` too (so both print the same).
pub fn user_json(u: &User, usage: Option<Usage>) -> Value {
    serde_json::to_value(UserJson::new(u, usage)).unwrap_or(Value::Null)
}

fn accepted(detail: &str) -> Response {
    (StatusCode::ACCEPTED, Json(Accepted { status: "accepted".into(), detail: detail.into() })).into_response()
}

fn done(status: &str) -> Response {
    Json(Done { status: status.into() }).into_response()
}

async fn mail(state: &ApiState, to: &str, subject: &str, body: String) -> Result<(), Problem> {
    state.mailer.send(to, subject, body).await.map_err(|e| {
        tracing::error!(error = %e, "sending mail failed");
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "mail_unavailable", "the mail could not be sent; try again later")
    })
}

fn code_mail(code: &str, what: &str) -> String {
    format!(
        "Your davit code {what} is:\n\n    {code}\n\nIt can be used once within 10 minutes.\n\
         If you did not ask for it, ignore this mail.\n"
    )
}

fn set_cookie(resp: &mut Response, name: &str, value: &str, path: &str, max_age: u64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn token_response(state: &ApiState, tokens: &Tokens) -> Response {
    let mut resp = Json(LoginAnswer::Signed(TokensJson::from(tokens))).into_response();
    let secure = state.secure_cookies;
    set_cookie(&mut resp, ACCESS_COOKIE, &tokens.access_token, "/", tokens.expires_in, secure);
    set_cookie(&mut resp, REFRESH_COOKIE, &tokens.refresh_token, "/api/v1/auth", 30 * 24 * 3600, secure);
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A login name: `username` or `email` (either may hold either), or `login`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginName {
    username: Option<String>,
    email: Option<String>,
    login: Option<String>,
}

impl LoginName {
    fn get(&self) -> Result<&str, Problem> {
        self.login
            .as_deref()
            .or(self.username.as_deref())
            .or(self.email.as_deref())
            .map(str::trim)
            .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "invalid_input", "give `username` or `email`"))
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterReq {
    username: String,
    email: String,
    password: String,
}

/// The base of links in mails: the configured public URL, else the address davit listens
/// on, and only without either the Host the request came with (see `ApiState::listen_url`).
fn mail_base(state: &ApiState, headers: &HeaderMap) -> String {
    if let Some(base) = state.public_url.as_ref().or(state.listen_url.as_ref()) {
        return base.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let scheme = if state.secure_cookies { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// Words and sends the mail of an account flow; `base` is where mailed links point.
async fn send_account_mail(state: &ApiState, base: &str, m: AccountMail) -> Result<(), Problem> {
    let (subject, body) = match &m {
        AccountMail::Verify { code, link, .. } => (
            "Confirm your davit account",
            format!(
                "{}\nOr open this link and press the button on its page (within 10 minutes, once):\n\n                     {base}{}{link}\n",
                code_mail(code, "to confirm your new account"),
                crate::verify_page::VERIFY_LINK_PREFIX
            ),
        ),
        AccountMail::LoginCode { code, .. } => ("Your davit sign-in code", code_mail(code, "to sign in")),
        AccountMail::EmailTaken { .. } => (
            "Your davit account",
            "Someone asked to create a davit account with this address,\n\
             which already has one. If it was you, sign in, or reset\n\
             your password if you forgot it.\n"
                .to_owned(),
        ),
        AccountMail::UsernameTaken { username, .. } => (
            "Your davit account",
            format!(
                "Someone asked to create a davit account with this address\n\
                 and the username {username}, which is taken. If it was you,\n\
                 register again with another username.\n"
            ),
        ),
        AccountMail::Reset { code, .. } => ("Reset your davit password", code_mail(code, "to reset your password")),
        AccountMail::EmailChange { code, .. } => {
            ("Confirm your new davit address", code_mail(code, "to confirm this address"))
        }
        AccountMail::NoAccount { .. } => (
            "Your davit password",
            "Someone asked to reset the davit password of this address,\n\
             but no account uses it. If it was you, perhaps you signed up\n\
             with another address.\n"
                .to_owned(),
        ),
    };
    mail(state, m.to(), subject, body).await
}

/// Runs an account flow after the answer is sent: whether an account exists then
/// changes what is done (a code, a note, nothing), never the answer nor how long it takes.
fn in_background<F>(state: ApiState, headers: &HeaderMap, what: &'static str, flow: F)
where
    F: Future<Output = davit_storage::Result<Option<AccountMail>>> + Send + 'static,
{
    let base = mail_base(&state, headers);
    tokio::spawn(async move {
        match flow.await {
            Ok(Some(m)) => {
                // A failure is logged by `mail`.
                let _ = send_account_mail(&state, &base, m).await;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = ?e, "{what} failed"),
        }
    });
}

/// Registration answers the same, and as soon, whether the address or the username is taken
/// (the mail says which): the answer comes once the input is checked, and the account is
/// created and the mail sent after it.
pub async fn register(
    State(state): State<ApiState>,
    Addr(addr): Addr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<RegisterReq>,
) -> Result<Response, Problem> {
    if let Some(registration) = state.storage.admit_registration(&req.username, &req.email, &req.password, addr)? {
        let storage = state.storage.clone();
        in_background(state, &headers, "registering", async move { storage.complete_registration(registration).await });
    }
    Ok(accepted("a confirmation code was mailed to the address given; confirm it at /api/v1/auth/verify"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyReq {
    username: Option<String>,
    email: Option<String>,
    login: Option<String>,
    code: String,
}

pub async fn verify(State(state): State<ApiState>, JsonBody(req): JsonBody<VerifyReq>) -> Result<Response, Problem> {
    let name = LoginName { username: req.username, email: req.email, login: req.login };
    let user = state.storage.verify_account(name.get()?, &req.code).await?;
    Ok(Json(Verified { status: "active".into(), user: UserJson::new(&user, None) }).into_response())
}

pub async fn resend(
    State(state): State<ApiState>,
    Addr(addr): Addr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<LoginName>,
) -> Result<Response, Problem> {
    let login = req.get()?.to_owned();
    let storage = state.storage.clone();
    in_background(state, &headers, "resending a code", async move { storage.resend_code(&login, addr).await });
    Ok(accepted("if the account is waiting for confirmation, a new code was mailed"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginReq {
    username: Option<String>,
    email: Option<String>,
    login: Option<String>,
    password: String,
}

pub async fn login(
    State(state): State<ApiState>,
    Addr(addr): Addr,
    JsonBody(req): JsonBody<LoginReq>,
) -> Result<Response, Problem> {
    let name = LoginName { username: req.username, email: req.email, login: req.login };
    match state.storage.login(name.get()?, &req.password, addr).await? {
        LoginOutcome::Signed { tokens, .. } => Ok(token_response(&state, &tokens)),
        LoginOutcome::CodeRequired { user, code } => {
            let to = user.email.clone().unwrap_or_default();
            mail(&state, &to, "Your davit sign-in code", code_mail(&code, "to sign in")).await?;
            Ok(Json(LoginAnswer::OtpRequired(OtpRequired {
                otp_required: true,
                detail: "a sign-in code was mailed; send it to /api/v1/auth/login/otp".into(),
            }))
            .into_response())
        }
    }
}

/// Sign-in by a mailed code alone: answers the same, and as soon, whether or not the name
/// has an account (the code is made and mailed after the answer, as at registration).
pub async fn login_code(
    State(state): State<ApiState>,
    Addr(addr): Addr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<LoginName>,
) -> Result<Response, Problem> {
    let login = req.get()?.to_owned();
    state.storage.login_by_code_allowed()?;
    let storage = state.storage.clone();
    in_background(state, &headers, "a sign-in code", async move { storage.login_code_mail(&login, addr).await });
    Ok(accepted("if the account exists, a sign-in code was mailed; send it to /api/v1/auth/login/otp"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginOtpReq {
    username: Option<String>,
    email: Option<String>,
    login: Option<String>,
    code: String,
}

pub async fn login_otp(
    State(state): State<ApiState>,
    Addr(addr): Addr,
    JsonBody(req): JsonBody<LoginOtpReq>,
) -> Result<Response, Problem> {
    let name = LoginName { username: req.username, email: req.email, login: req.login };
    let (_, tokens) = state.storage.login_otp(name.get()?, &req.code, addr).await?;
    Ok(token_response(&state, &tokens))
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshReq {
    refresh_token: Option<String>,
}

pub async fn refresh(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let req: RefreshReq = if body.is_empty() {
        RefreshReq::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid JSON body: {e}")))?
    };
    let token = req
        .refresh_token
        .or_else(|| cookie(&headers, REFRESH_COOKIE))
        .ok_or_else(|| unauthorized("no refresh token"))?;
    let (_, tokens) = state.storage.refresh_session(&token).await?;
    Ok(token_response(&state, &tokens))
}

pub async fn logout(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let sid = caller.session.ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "no_session",
            "Basic credentials have no session to end; revoke an app password instead",
        )
    })?;
    state.storage.end_session(sid).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut resp, ACCESS_COOKIE, "", "/", 0, state.secure_cookies);
    set_cookie(&mut resp, REFRESH_COOKIE, "", "/api/v1/auth", 0, state.secure_cookies);
    Ok(resp)
}

pub async fn password_reset(
    State(state): State<ApiState>,
    Addr(addr): Addr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<LoginName>,
) -> Result<Response, Problem> {
    let login = req.get()?.to_owned();
    let storage = state.storage.clone();
    in_background(state, &headers, "a password reset", async move { storage.password_reset_mail(&login, addr).await });
    Ok(accepted("if the account exists, a reset code was mailed to its address"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmReq {
    username: Option<String>,
    email: Option<String>,
    login: Option<String>,
    code: String,
    new_password: String,
}

pub async fn password_reset_confirm(
    State(state): State<ApiState>,
    JsonBody(req): JsonBody<ResetConfirmReq>,
) -> Result<Response, Problem> {
    let name = LoginName { username: req.username, email: req.email, login: req.login };
    state.storage.password_reset_confirm(name.get()?, &req.code, &req.new_password).await?;
    Ok(done("password changed; every session was ended"))
}

pub async fn me(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let usage = state.storage.usage(caller.user.id).await?;
    Ok(Json(UserJson::new(&caller.user, Some(usage))).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReq {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<PasswordReq>,
) -> Result<Response, Problem> {
    state.storage.change_password(caller.user.id, &req.current_password, &req.new_password, caller.session).await?;
    Ok(done("password changed; other sessions were ended"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailReq {
    email: String,
}

pub async fn change_email(
    State(state): State<ApiState>,
    caller: Caller,
    Addr(addr): Addr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<EmailReq>,
) -> Result<Response, Problem> {
    caller.may_manage_account()?;
    let email = state.storage.email_change_start(caller.user.id, &req.email)?;
    let (storage, user) = (state.storage.clone(), caller.user.id);
    in_background(
        state,
        &headers,
        "an email change",
        async move { storage.email_change_mail(user, email, addr).await },
    );
    Ok(accepted("a code was mailed to the new address; confirm it at /api/v1/me/email/confirm"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeReq {
    code: String,
}

pub async fn confirm_email(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CodeReq>,
) -> Result<Response, Problem> {
    caller.may_manage_account()?;
    let user = state.storage.email_change_confirm(caller.user.id, &req.code).await?;
    // The old address hears of it (where resets went until now): a change its owner did not
    // make is then seen, as with every large provider. Sent after the answer; a failure is
    // logged by `mail`.
    if let Some(old) = caller.user.email.clone().filter(|old| Some(old) != user.email.as_ref()) {
        let (state, new) = (state.clone(), user.email.clone().unwrap_or_default());
        tokio::spawn(async move {
            let body = format!(
                "The email address of your davit account {} was changed to {new}.\n\n\
                 If you did not make this change, contact your administrator at once.\n",
                caller.user.username
            );
            let _ = mail(&state, &old, "Your davit email address was changed", body).await;
        });
    }
    Ok(Json(UserJson::new(&user, None)).into_response())
}

pub async fn second_factor_code(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    caller.may_manage_account()?;
    let to = caller.user.email.clone().ok_or_else(|| {
        Problem::new(StatusCode::CONFLICT, "no_email", "the account has no email address for mailed codes")
    })?;
    let code = state.storage.second_factor_code(caller.user.id).await?;
    mail(&state, &to, "Your davit code", code_mail(&code, "to change your sign-in settings")).await?;
    Ok(accepted("a code was mailed; send it with {enabled} to /api/v1/me/second-factor"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorReq {
    enabled: bool,
    code: String,
}

pub async fn set_second_factor(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<SecondFactorReq>,
) -> Result<Response, Problem> {
    caller.may_manage_account()?;
    let user = state.storage.set_second_factor(caller.user.id, &req.code, req.enabled).await?;
    Ok(Json(UserJson::new(&user, None)).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameReq {
    pub(crate) name: String,
}

pub async fn list_app_passwords(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    Ok(app_passwords_list(&state.storage.list_app_passwords(&caller.principal).await?))
}

pub fn app_passwords_list(list: &[AppPassword]) -> Response {
    Json(AppPasswordList { items: list.iter().map(AppPasswordJson::from).collect() }).into_response()
}

pub async fn create_app_password(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<NameReq>,
) -> Result<Response, Problem> {
    caller.may_manage_account()?;
    let (ap, secret) = state.storage.create_app_password(caller.user.id, &req.name).await?;
    Ok(app_password_created(&ap, &secret))
}

/// A new app password, its secret shown this once.
pub fn app_password_created(ap: &AppPassword, secret: &str) -> Response {
    let AppPasswordJson { id, name, created } = AppPasswordJson::from(ap);
    let v = AppPasswordCreated { id, name, created, password: secret.to_owned() };
    (StatusCode::CREATED, Json(v)).into_response()
}

pub async fn revoke_app_password(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<StatusCode, Problem> {
    state.storage.revoke_app_password(&caller.principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_keys(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    Ok(keys_list(&state.storage.list_access_keys(&caller.principal).await?))
}

pub fn keys_list(keys: &[AccessKey]) -> Response {
    Json(KeyList { items: keys.iter().map(KeyJson::from).collect() }).into_response()
}

pub async fn create_key(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    caller.may_manage_account()?;
    let (key, secret) = state.storage.create_access_key(caller.user.id).await?;
    Ok(key_created(&key, &secret))
}

/// A new S3 key, its secret shown this once.
pub fn key_created(key: &AccessKey, secret: &str) -> Response {
    let KeyJson { access_key_id, created } = KeyJson::from(key);
    let v = KeyCreated { access_key_id, created, secret_access_key: secret.to_owned() };
    (StatusCode::CREATED, Json(v)).into_response()
}

pub async fn revoke_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.storage.revoke_access_key(&caller.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
