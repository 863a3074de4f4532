//! `/s/<token>`: what a link's holder sees. A file link downloads the file (Range,
//! Content-Disposition); a folder link lists the folder (HTML for browsers, JSON on
//! `Accept: application/json`) and serves its files; an upload link takes files from a
//! form. A password comes from a form (which earns a cookie) or HTTP Basic. WebDAV methods
//! on a link are served by the WebDAV crate; every rule is the core's.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::response::{IntoResponse, Response};
use davit_storage::{ClientAddr, Error, Kind, LinkProof, OpenLink};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::files::{ItemJson, asked_range, file_response, store_form_files};
use crate::{ApiState, Problem};

/// Marks a response as one of davit's own HTML pages (in its extensions): the server sends
/// it as a page, where everything else is sandboxed and active user content downloads.
#[derive(Debug, Clone, Copy)]
pub struct OwnPage;

/// Where links are served.
pub const LINK_PREFIX: &str = "/s/";
const COOKIE: &str = "davit_link";
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The token and the path inside the linked item (`/` for the item itself).
pub fn split_link_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix(LINK_PREFIX)?;
    let (token, inner) = match rest.split_once('/') {
        Some((t, r)) => (t, r),
        None => (rest, ""),
    };
    if token.is_empty() {
        return None;
    }
    let inner = percent_decode_str(inner).decode_utf8().ok()?;
    Some((token.to_owned(), format!("/{inner}")))
}

fn wants_json(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

fn wants_html(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

fn cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_owned())
    })
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>body{{font-family:sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}}\
         td{{padding:.2rem 1rem .2rem 0}}</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let mut r = (status, html).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.extensions_mut().insert(OwnPage);
    r
}

fn password_form(message: &str) -> String {
    format!(
        "<p>{}</p><form method=\"post\"><input type=\"password\" name=\"password\" autofocus required> \
         <button>Open</button></form>",
        escape(message)
    )
}

/// A refusal in the form the client asked for; 401 carries a Basic challenge.
fn refusal(e: Error, headers: &HeaderMap) -> Response {
    let unauthenticated = matches!(e, Error::Unauthenticated(_));
    let mut resp = if wants_html(headers) && !wants_json(headers) {
        let p = Problem::from(e);
        let body = if unauthenticated { password_form(&p.detail) } else { format!("<p>{}</p>", escape(&p.detail)) };
        let mut r = page(p.status, "Shared link", &body);
        if let Some(s) = p.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    } else {
        Problem::from(e).into_response()
    };
    if unauthenticated {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"davit link\", charset=\"UTF-8\""),
        );
    }
    resp
}

/// Opens the link with whatever proof the request carries: Basic password, then cookie.
pub async fn open(
    state: &ApiState,
    token: &str,
    headers: &HeaderMap,
    addr: Option<ClientAddr>,
) -> Result<OpenLink, Error> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(davit_http::parse_basic)
        .map(|(_, pw)| pw);
    let cookie = cookie(headers);
    let proof = match (&basic, &cookie) {
        (Some(pw), _) => LinkProof::Password(pw),
        (None, Some(c)) => LinkProof::Cookie(c),
        (None, None) => LinkProof::None,
    };
    state.storage.open_link(token, proof, addr).await
}

/// Serves GET, HEAD and POST below `/s/`.
pub async fn serve_link(state: ApiState, req: Request<Body>) -> Response {
    let Some((token, inner)) = split_link_path(req.uri().path()) else {
        return Problem::new(StatusCode::NOT_FOUND, "not_found", "no such link").into_response();
    };
    let headers = req.headers().clone();
    let addr = req.extensions().get::<ClientAddr>().copied();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if req.method() == Method::POST && is_form {
        return password_post(&state, &token, req, addr).await;
    }
    let link = match open(&state, &token, &headers, addr).await {
        Ok(l) => l,
        Err(e) => return refusal(e, &headers),
    };
    let principal = link.principal.clone();
    let mut resp = match *req.method() {
        Method::GET | Method::HEAD => get(&state, &token, &link, &inner, req).await,
        Method::POST => upload_form(&state, &link, &inner, req).await,
        _ => Err(Error::InvalidInput("links answer GET, HEAD and POST here, and WebDAV methods".into())),
    }
    .unwrap_or_else(|e| refusal(e, &headers));
    davit_http::acted_as(resp.extensions_mut(), principal);
    resp
}

async fn password_post(state: &ApiState, token: &str, req: Request<Body>, addr: Option<ClientAddr>) -> Response {
    let headers = req.headers().clone();
    let bytes = match axum::body::to_bytes(req.into_body(), 4096).await {
        Ok(b) => b,
        Err(_) => return refusal(Error::InvalidInput("the form is too large".into()), &headers),
    };
    let password = form_urlencoded_value(&bytes, "password").unwrap_or_default();
    match state.storage.open_link(token, LinkProof::Password(&password), addr).await {
        Ok(link) => {
            let cookie = format!(
                "{COOKIE}={}; Path=/s/{token}; HttpOnly; SameSite=Lax{}",
                state.storage.link_cookie(&link.link),
                if state.secure_cookies { "; Secure" } else { "" }
            );
            let mut r = StatusCode::SEE_OTHER.into_response();
            let h = r.headers_mut();
            h.insert(header::LOCATION, HeaderValue::from_str(&format!("/s/{token}")).expect("ascii token"));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                h.insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => refusal(e, &headers),
    }
}

pub(crate) fn form_urlencoded_value(body: &[u8], key: &str) -> Option<String> {
    std::str::from_utf8(body).ok()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
    })
}

async fn get(
    state: &ApiState,
    token: &str,
    link: &OpenLink,
    inner: &str,
    req: Request<Body>,
) -> Result<Response, Error> {
    let p = &link.principal;
    let headers = req.headers();
    if link.link.upload {
        if inner != "/" {
            return Err(Error::missing(davit_storage::What::Item, "an upload link shows nothing of what it holds"));
        }
        return Ok(drop_box(headers, &link.name));
    }
    let item = state.storage.stat(p, inner).await?;
    if item.kind == Kind::Folder {
        let items = state.storage.list(p, inner, None, 10_000).await?;
        let name = if inner == "/" { link.name.clone() } else { item.name.clone() };
        return Ok(listing(headers, token, inner, &name, &items));
    }
    let range = asked_range(headers, &item).map_err(|p| Error::RangeNotSatisfiable(p.detail))?;
    let read = if req.method() == Method::GET {
        state.storage.download(p, inner, range).await?
    } else {
        state.storage.read(p, inner, range).await?
    };
    Ok(file_response(read, range.is_some()))
}

fn listing(headers: &HeaderMap, token: &str, inner: &str, name: &str, items: &[davit_storage::Item]) -> Response {
    if wants_json(headers) && !wants_html(headers) {
        let items: Vec<ItemJson> = items.iter().map(ItemJson::from).collect();
        return axum::Json(serde_json::json!({ "name": name, "kind": "folder", "path": inner, "items": items }))
            .into_response();
    }
    let base: String =
        inner.split('/').filter(|s| !s.is_empty()).map(|s| format!("/{}", utf8_percent_encode(s, SEGMENT))).collect();
    let mut rows = String::new();
    if inner != "/" {
        rows.push_str(&format!("<tr><td><a href=\"/s/{token}{base}/..\">..</a></td><td></td></tr>"));
    }
    for i in items {
        let slash = if i.kind == Kind::Folder { "/" } else { "" };
        let size = if i.kind == Kind::Folder { String::new() } else { i.size.to_string() };
        rows.push_str(&format!(
            "<tr><td><a href=\"/s/{token}{base}/{}{slash}\">{}{slash}</a></td><td>{size}</td></tr>",
            utf8_percent_encode(&i.name, SEGMENT),
            escape(&i.name)
        ));
    }
    page(StatusCode::OK, name, &format!("<table>{rows}</table>"))
}

fn drop_box(headers: &HeaderMap, name: &str) -> Response {
    if wants_json(headers) && !wants_html(headers) {
        return axum::Json(serde_json::json!({ "name": name, "kind": "folder", "permission": "upload" }))
            .into_response();
    }
    page(
        StatusCode::OK,
        name,
        "<p>Files sent here go to the owner; you cannot see what is inside.</p>\
         <form method=\"post\" enctype=\"multipart/form-data\"><input type=\"file\" name=\"file\" multiple required> \
         <button>Upload</button></form>",
    )
}

/// `multipart/form-data` into an upload link's folder; clashing names get new ones.
async fn upload_form(state: &ApiState, link: &OpenLink, inner: &str, req: Request<Body>) -> Result<Response, Error> {
    let html = wants_html(req.headers()) && !wants_json(req.headers());
    let mut form = axum::extract::Multipart::from_request(req, &())
        .await
        .map_err(|e| Error::InvalidInput(format!("expected a multipart/form-data upload: {e}")))?;
    // How many arrived, not under which names: a renamed file would tell what is inside.
    let items = store_form_files(&state.storage, &link.principal, inner, &mut form).await?;
    if items.is_empty() {
        return Err(Error::InvalidInput("the form has no file".into()));
    }
    if html {
        return Ok(page(StatusCode::CREATED, "Uploaded", &format!("<p>{} file(s) sent.</p>", items.len())));
    }
    Ok((StatusCode::CREATED, axum::Json(serde_json::json!({ "uploaded": items.len() }))).into_response())
}
