//! Who is calling: the `Caller` extractor. Every check of what the caller may do happens in
//! the storage core; this only establishes identity.

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use davit_storage::{Principal, User};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use crate::{ApiState, Problem};

pub struct Caller {
    pub principal: Principal,
    pub user: User,
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

fn unauthenticated(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
}

/// `user:password` from an `Authorization: Basic` value.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let challenge = |p: Problem| {
            let mut r = p.into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"davit\""),
            );
            r
        };
        let Some(value) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(challenge(unauthenticated(
                "sign in: send Authorization (Basic or Bearer)",
            )));
        };
        let Some((login, password)) = parse_basic(value) else {
            return Err(challenge(unauthenticated(
                "unsupported or malformed Authorization header",
            )));
        };
        let user = match state.storage.authenticate_cached(&login, &password).await {
            Ok(u) => u,
            Err(davit_storage::Error::Unauthenticated(m)) => {
                return Err(challenge(unauthenticated(&m)));
            }
            Err(e) => return Err(Problem::from(e).into_response()),
        };
        let principal = Principal::of(&user);
        if let Some(slot) = parts.extensions.get::<UserSlot>() {
            *slot.0.lock().expect("user slot") = Some(principal.clone());
        }
        Ok(Caller { principal, user })
    }
}
