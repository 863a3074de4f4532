//! Who is calling: the `Caller` extractor, from a Bearer token, the session cookie or HTTP
//! Basic (account or app password). Every check of what the caller may do happens in the
//! storage core; this only establishes identity.

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use davit_http::{PrincipalSlot, parse_basic};
use davit_storage::{Authenticated, ClientAddr, Principal, User};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::{ApiState, Problem};

pub const ACCESS_COOKIE: &str = "davit_access";
pub const REFRESH_COOKIE: &str = "davit_refresh";

pub struct Caller {
    pub principal: Principal,
    pub user: User,
    /// The session of a token; None for Basic auth.
    pub session: Option<u64>,
    /// Whether an app password proved the caller (see `davit_storage::auth::may_manage_account`).
    pub app_password: bool,
}

impl Caller {
    /// The core's rule on changing how the account is reached (email, credentials, second
    /// factor), for the credentials this request came with.
    pub fn may_manage_account(&self) -> Result<(), Problem> {
        Ok(davit_storage::auth::may_manage_account(self.app_password)?)
    }
}

/// Gives each request a slot for the principal the `Caller` extractor establishes, so the
/// response carries it to the access log.
pub async fn record_user(mut req: Request, next: Next) -> Response {
    let slot = PrincipalSlot::install(req.extensions_mut());
    let mut resp = next.run(req).await;
    slot.hand_over(resp.extensions_mut());
    resp
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub fn client_addr(parts: &Parts) -> Option<ClientAddr> {
    parts.extensions.get::<ClientAddr>().copied()
}

fn challenge(p: Problem) -> Response {
    let mut r = p.into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer, Basic realm=\"davit\""));
    r
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let result = match header {
            Some(h) if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") => {
                state.storage.verify_access_token(h[7..].trim()).await
            }
            Some(h) => match parse_basic(&h) {
                Some((login, password)) => {
                    state.storage.authenticate_basic(&login, &password, client_addr(parts)).await
                }
                None => {
                    Err(davit_storage::Error::Unauthenticated("unsupported or malformed Authorization header".into()))
                }
            },
            None => match cookie(&parts.headers, ACCESS_COOKIE) {
                Some(token) => state.storage.verify_access_token(&token).await,
                None => Err(davit_storage::Error::Unauthenticated(
                    "sign in: send a Bearer token, the session cookie or Basic credentials".into(),
                )),
            },
        };
        let Authenticated { principal, user, session, app_password } = match result {
            Ok(v) => v,
            Err(e @ davit_storage::Error::Unauthenticated(_)) => return Err(challenge(Problem::from(e))),
            Err(e) => return Err(Problem::from(e).into_response()),
        };
        PrincipalSlot::fill(&parts.extensions, &principal);
        Ok(Caller { principal, user, session, app_password })
    }
}

/// The client's address, for throttling, as an extractor.
pub struct Addr(pub Option<ClientAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Addr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Addr(client_addr(parts)))
    }
}

pub fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
}
