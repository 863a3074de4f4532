//! Who is calling: the `Caller` extractor, from a Bearer token, the session cookie or HTTP
//! Basic (account or app password). Every check of what the caller may do happens in the
//! storage core; this only establishes identity.

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
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
}

/// Where the extractor leaves the principal so the response carries it to the access log.
#[derive(Clone, Default)]
struct UserSlot(Arc<Mutex<Option<Principal>>>);

pub async fn record_user(mut req: Request, next: Next) -> Response {
    let slot = UserSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut resp = next.run(req).await;
    if let Some(p) = slot.0.lock().expect("user slot").take() {
        resp.extensions_mut().insert(p);
    }
    resp
}

/// `user:password` from an `Authorization: Basic` value.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
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
        let Authenticated { principal, user, session } = match result {
            Ok(v) => v,
            Err(e @ davit_storage::Error::Unauthenticated(_)) => return Err(challenge(Problem::from(e))),
            Err(e) => return Err(Problem::from(e).into_response()),
        };
        if let Some(slot) = parts.extensions.get::<UserSlot>() {
            *slot.0.lock().expect("user slot") = Some(principal.clone());
        }
        Ok(Caller { principal, user, session })
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
