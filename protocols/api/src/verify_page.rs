//! The one-click verification link mailed beside the code: `GET` shows a small page with a
//! button, and only the button's form `POST` verifies. Mail scanners and link previews fetch
//! links with GET, so they never confirm an account on the user's behalf.
//!
//! The POST is the one place of the REST API that takes `application/x-www-form-urlencoded`
//! (a plain HTML form, no script: our pages run none). The server refuses it from any other
//! origin (`hardening::is_foreign_form_post`), and the access log shows its token as `<token>`.

use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};

use crate::public_link::{escape, form_urlencoded_value, page as html_page};
use crate::{ApiState, Problem};

/// Where the page and its form live; the token follows.
pub const VERIFY_LINK_PREFIX: &str = "/api/v1/auth/verify-link/";

const TITLE: &str = "Confirm your davit account";

/// A token is `<user id>.<base64url>`: anything else is not worth a look-up, nor an echo.
fn plausible(token: &str) -> bool {
    token.len() <= 128 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub async fn show(Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return bad_link();
    }
    // No `action`: the form posts to this same URL (whatever prefix a proxy serves us under),
    // and the token stays out of the page's body.
    let body = "<p>Press the button to confirm the address of your new account.</p>\
                <form method=\"post\"><input type=\"hidden\" name=\"confirm\" value=\"yes\">\
                <button>Confirm my account</button></form>";
    let mut r = html_page(StatusCode::OK, TITLE, body);
    r.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    r
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

fn bad_link() -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        TITLE,
        "<p>This link is wrong, expired or was used already. Sign in, or ask for a new code.</p>",
    )
}

pub async fn confirm(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    if !is_form(&headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "this form takes application/x-www-form-urlencoded",
        ));
    }
    if !plausible(&token) || form_urlencoded_value(&body, "confirm").as_deref() != Some("yes") {
        return Ok(bad_link());
    }
    match state.storage.verify_by_link(&token).await {
        Ok(user) => Ok(html_page(
            StatusCode::OK,
            "Account confirmed",
            &format!("<p>The account <b>{}</b> is confirmed. You can sign in now.</p>", escape(&user.username)),
        )),
        Err(davit_storage::Error::InvalidCode(_)) => Ok(bad_link()),
        Err(e) => Err(e.into()),
    }
}
