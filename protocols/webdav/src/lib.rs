//! davit's WebDAV front end: each user's drive at `/dav/`, through dav-server, over the
//! storage core (deduplicated, encrypted, counted against quota, the same files as S3 and
//! REST). Authentication is HTTP Basic (account or app password) or a Bearer token.

mod errors;
mod fs;
mod ls;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dav_server::DavHandler;
use dav_server::body::Body;
use davit_storage::{ClientAddr, Error, Kind, LinkProof, Principal, Storage};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};

pub use dav_server::body::Body as DavBody;

/// Where WebDAV is mounted.
pub const PREFIX: &str = "/dav";
/// dav-server reads files in pieces of this size: one core chunk at a time.
const READ_BUF: usize = 1024 * 1024;

#[derive(Clone)]
pub struct WebDav {
    storage: Storage,
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn unauthorized(reason: &str) -> Response<Body> {
    let mut r = plain(StatusCode::UNAUTHORIZED, format!("{reason}\n"));
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"davit\", charset=\"UTF-8\""));
    r
}

fn refusal(e: &Error) -> Response<Body> {
    match e {
        Error::Unauthenticated(m) => unauthorized(m),
        Error::Throttled(secs) => {
            let mut r = plain(StatusCode::TOO_MANY_REQUESTS, format!("{e}\n"));
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            r
        }
        e => plain(errors::status(e), format!("{e}\n")),
    }
}

/// Lock tokens in an `If` header (`(<urn:uuid:…>)` lists): the client's proof of its locks.
fn if_tokens(req: &Request<impl Sized>) -> Vec<String> {
    let Some(v) = req.headers().get("if").and_then(|v| v.to_str().ok()) else { return Vec::new() };
    v.split('<')
        .filter_map(|s| s.split_once('>').map(|(t, _)| t))
        .filter(|t| t.starts_with("urn:") || t.starts_with("opaquelocktoken:"))
        .map(str::to_owned)
        .collect()
}

fn header_str<'a>(req: &'a Request<impl Sized>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

impl WebDav {
    pub fn new(storage: Storage) -> Self {
        WebDav { storage }
    }

    async fn principal<B>(&self, req: &Request<B>) -> Result<Principal, Error> {
        let addr = req.extensions().get::<ClientAddr>().copied();
        let auth = header_str(req, "authorization")
            .ok_or_else(|| Error::Unauthenticated("sign in with your account or an app password".into()))?;
        let user = if auth.len() > 7 && auth[..7].eq_ignore_ascii_case("bearer ") {
            self.storage.verify_access_token(auth[7..].trim()).await?.0
        } else {
            let (login, password) =
                parse_basic(auth).ok_or_else(|| Error::Unauthenticated("malformed Authorization header".into()))?;
            self.storage.authenticate_basic(&login, &password, addr).await?
        };
        Ok(Principal::of(&user))
    }

    /// Serves one request below `/dav`. The response carries the principal in its
    /// extensions for the access log.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        // Windows asks OPTIONS before it authenticates: answer what the server speaks.
        if req.method() == Method::OPTIONS && !req.headers().contains_key(header::AUTHORIZATION) {
            let mut r = Response::new(Body::empty());
            let h = r.headers_mut();
            h.insert("dav", HeaderValue::from_static("1, 2"));
            h.insert("ms-author-via", HeaderValue::from_static("DAV"));
            h.insert(
                header::ALLOW,
                HeaderValue::from_static(
                    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK",
                ),
            );
            return r;
        }
        let principal = match self.principal(&req).await {
            Ok(p) => p,
            Err(e) => return refusal(&e),
        };
        self.serve(req, principal, PREFIX).await
    }

    /// Serves WebDAV below a link, `/s/<token>/`: the link's folder, read-only, or
    /// create-only for an upload link. A password is given by Basic auth (any username).
    pub async fn handle_link<B>(&self, req: Request<B>, token: &str) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let addr = req.extensions().get::<ClientAddr>().copied();
        let password = header_str(&req, "authorization").and_then(parse_basic).map(|(_, p)| p);
        let proof = match &password {
            Some(p) => LinkProof::Password(p),
            None => LinkProof::None,
        };
        let link = match self.storage.open_link(token, proof, addr).await {
            Ok(l) => l,
            Err(e) => return refusal(&e),
        };
        if link.kind != Kind::Folder {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "a file link answers GET and HEAD only\n".into());
        }
        self.serve(req, link.principal, &format!("/s/{token}")).await
    }

    async fn serve<B>(&self, req: Request<B>, mut principal: Principal, prefix: &str) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        // RFC 4918 §9.1: a server may refuse Depth infinity, with this precondition.
        if req.method().as_str() == "PROPFIND"
            && header_str(&req, "depth").is_none_or(|d| d.trim().eq_ignore_ascii_case("infinity"))
        {
            let mut r = Response::new(Body::from(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n",
            ));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
            r.extensions_mut().insert(principal);
            return r;
        }
        principal.lock_tokens = if_tokens(&req);
        // dav-server deletes a folder's contents one by one before the folder itself: a
        // folder that may not be deleted (a shared item, the drive root) must be refused
        // before any of its contents go.
        // A lock blocks everyone else's writes, so only who may write may take one: a
        // read-only grant or link must not be able to freeze the owner's files.
        // UNLOCK too: a lock's token is in every lock discovery, so holding it proves
        // nothing. Links take no locks: a lock's root would show the link's token to others.
        let check = match req.method().as_str() {
            "DELETE" => Some(true),
            "LOCK" | "UNLOCK" if matches!(principal.scope, davit_storage::Scope::Link { .. }) => {
                let mut r = refusal(&Error::Forbidden("a link cannot lock".into()));
                r.extensions_mut().insert(principal);
                return r;
            }
            "LOCK" | "UNLOCK" => Some(false),
            _ => None,
        };
        if let Some(whole) = check {
            let raw = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy().into_owned();
            let path = raw.strip_prefix(prefix).unwrap_or(&raw).to_owned();
            let r = if whole {
                self.storage.check_delete(&principal, &path).await
            } else {
                self.storage.check_change(&principal, &path).await
            };
            if let Err(e) = r {
                let mut r = refusal(&e);
                r.extensions_mut().insert(principal);
                return r;
            }
        }
        let ctx = Arc::new(fs::RequestCtx {
            method: req.method().clone(),
            errors: Default::default(),
            content_type: header_str(&req, "content-type").map(str::to_owned),
            mtime: header_str(&req, "x-oc-mtime").and_then(|v| v.trim().parse::<i64>().ok()),
            seen: Mutex::new(Default::default()),
            served_type: Mutex::new(None),
            quota: Default::default(),
        });
        let method = req.method().clone();
        let oc_mtime = ctx.mtime.is_some();
        let handler = DavHandler::builder()
            .strip_prefix(prefix)
            .filesystem(Box::new(fs::DriveFs {
                storage: self.storage.clone(),
                principal: principal.clone(),
                ctx: ctx.clone(),
            }))
            .locksystem(Box::new(ls::CoreLs { storage: self.storage.clone(), principal: principal.clone() }))
            .principal(principal.username.clone())
            .read_buf_size(READ_BUF)
            .autoindex(false)
            .build_handler();
        let mut resp = handler.handle(req).await;

        let status = resp.status();
        if status.as_u16() >= 400
            && let Some((s, reason)) = ctx.errors.refine(status)
        {
            resp = plain(s, reason);
        } else if (method == Method::GET || method == Method::HEAD)
            && status.is_success()
            && let Some(ct) = ctx.served_type.lock().expect("served type").take()
            && let Ok(v) = HeaderValue::from_str(&ct)
        {
            resp.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        if method == Method::PUT && oc_mtime && status.is_success() {
            // rclone's owncloud vendor checks that the time was kept.
            resp.headers_mut().insert("x-oc-mtime", HeaderValue::from_static("accepted"));
        }
        if method == Method::OPTIONS {
            resp.headers_mut().insert("ms-author-via", HeaderValue::from_static("DAV"));
        }
        resp.extensions_mut().insert(principal);
        resp
    }
}

/// `user:password` from an `Authorization: Basic` value.
fn parse_basic(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}
