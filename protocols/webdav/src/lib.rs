//! davit's WebDAV front end: each user's drive at `/dav/`, through dav-server, over the
//! storage core (deduplicated, encrypted, counted against quota, the same files as S3 and
//! REST). Authentication is HTTP Basic (account or app password) or a Bearer token.

mod body;
mod errors;
mod folders;
mod fs;
pub mod headers;
mod ls;
mod propfind;
mod win32;
pub mod xml;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use dav_server::DavHandler;
use davit_http::{acted_as, parse_basic};
use davit_storage::{ClientAddr, Error, Kind, LinkProof, Principal, Storage};
use futures::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};

pub use body::DavBody;
use body::RequestBody;
use headers::{Depth, IfHeader, IfItem};
use http_body_util::BodyExt;

type Body = DavBody;

/// Where WebDAV is mounted.
pub const PREFIX: &str = "/dav";
/// dav-server reads files in pieces of this size: the core's average chunk.
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

/// dav-server advertises SabreDAV's partial updates (PATCH with `X-Update-Range`), which it
/// answers only for file systems that write at an offset: the core writes whole files, so a
/// client trusting the advertisement got 405. Neither the class nor the method is offered.
fn without_partial_updates(h: &mut http::HeaderMap) {
    let keep = |v: &HeaderValue, drop: &str| -> Option<HeaderValue> {
        let kept: Vec<&str> =
            v.to_str().ok()?.split(',').map(str::trim).filter(|t| !t.eq_ignore_ascii_case(drop)).collect();
        HeaderValue::from_str(&kept.join(", ")).ok()
    };
    for (name, drop) in [("dav", "sabredav-partialupdate"), ("allow", "PATCH")] {
        if let Some(v) = h.get(name).and_then(|v| keep(v, drop)) {
            h.insert(name, v);
        }
    }
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

/// Reads a body dav-server would buffer itself (every one but a PUT's) to the same limit,
/// and refuses one nested too deep for dav-server's recursive XML parser.
async fn read_checked_body<B>(body: B) -> Result<Bytes, headers::Refusal>
where
    B: http_body::Body<Data = Bytes>,
{
    let too_large = || headers::Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        reason: format!("a WebDAV request body is at most {} bytes", xml::MAX_XML_BODY),
    };
    if body.size_hint().lower() > xml::MAX_XML_BODY as u64 {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    let mut data = BytesMut::new();
    while let Some(frame) = body.frame().await {
        // An idle body is answered 408 by the binary, whatever is answered here.
        let frame = frame.map_err(|_| headers::Refusal {
            status: StatusCode::BAD_REQUEST,
            reason: "the request body could not be read".into(),
        })?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > xml::MAX_XML_BODY {
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
    }
    if xml::nesting_depth(&data, xml::MAX_XML_DEPTH) > xml::MAX_XML_DEPTH {
        return Err(headers::Refusal {
            status: StatusCode::BAD_REQUEST,
            reason: format!("the XML body nests elements deeper than {} levels", xml::MAX_XML_DEPTH),
        });
    }
    Ok(data.freeze())
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
        let signed = if auth.len() > 7 && auth[..7].eq_ignore_ascii_case("bearer ") {
            self.storage.verify_access_token(auth[7..].trim()).await?
        } else {
            let (login, password) =
                parse_basic(auth).ok_or_else(|| Error::Unauthenticated("malformed Authorization header".into()))?;
            self.storage.authenticate_basic(&login, &password, addr).await?
        };
        Ok(signed.principal)
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
        let refuse = |principal: Principal, status: StatusCode, reason: &str| {
            let mut r = plain(status, format!("{reason}\n"));
            acted_as(r.extensions_mut(), principal);
            r
        };
        // Every header dav-server would parse is checked first (its parsers panic on some
        // malformed values and ignore others) and handed on in a canonical form.
        let (mut parts, body) = req.into_parts();
        let checked = match headers::check_request(&parts.method, parts.uri.path(), &mut parts.headers, prefix) {
            Ok(c) => c,
            Err(r) => return refuse(principal, r.status, &r.reason),
        };
        let Some(path) = headers::drive_path_below(parts.uri.path(), prefix) else {
            return refuse(principal, StatusCode::BAD_REQUEST, "a path must be valid UTF-8");
        };
        // RFC 4918 §9.1: a server may refuse Depth infinity, with this precondition.
        if parts.method.as_str() == "PROPFIND" && checked.depth.is_none_or(|d| d == Depth::Infinity) {
            let mut r = Response::new(Body::from(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n",
            ));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
            acted_as(r.extensions_mut(), principal);
            return r;
        }
        // A path ending in `/` names a folder (as in nginx and Apache): no file is found there,
        // and neither PUT nor LOCK makes one at it (the core reads `f/` as `f`).
        if path.len() > 1 && path.ends_with('/') && parts.method.as_str() != "MKCOL" {
            match self.storage.stat(&principal, &path).await {
                Ok(item) if !item.is_folder() => {
                    let reason = format!("{} is a file, not a folder", path.trim_end_matches('/'));
                    return refuse(principal, StatusCode::NOT_FOUND, &reason);
                }
                Err(Error::NotFound(_)) if matches!(parts.method.as_str(), "PUT" | "LOCK") => {
                    let reason = "a path ending in / names a folder: make it with MKCOL";
                    return refuse(principal, StatusCode::CONFLICT, reason);
                }
                _ => {}
            }
        }
        // The If header is decided here, by the core's locks and ETags (dav-server would
        // take a token of no current lock as a match): false is 412, whatever the method.
        if let Some(h) = &checked.if_header {
            if !self.if_holds(&principal, h, &path, prefix).await {
                return refuse(
                    principal,
                    StatusCode::PRECONDITION_FAILED,
                    "If: no condition list matches the current state of the resource (its locks and ETag)",
                );
            }
            principal.set_lock_tokens(h.state_tokens());
        }
        // Where a GET starts reading (see `RequestCtx::read_from`): the start of the file, or
        // of its one range; several ranges are read where dav-server seeks.
        let mut read_from = (parts.method == Method::GET).then_some(0);
        if let Some(specs) = &checked.ranges {
            // Ranges resolved against the file's size, overlapping ones merged and many
            // answered whole, so a request can never make the answer larger than the file.
            let value = match self.storage.stat(&principal, &path).await {
                // An If-Range that names another version: the whole file (dav-server would
                // answer it from where the range starts: `read_from`).
                Ok(item) if !davit_http::if_range_holds(&parts.headers, &item.etag, item.modified) => None,
                Ok(item) if !item.is_folder() => {
                    let plan = headers::plan_ranges(specs, item.size);
                    read_from = match &plan {
                        headers::RangePlan::Ranges(r) if r.len() == 1 => read_from.map(|_| r[0].0),
                        headers::RangePlan::Whole => read_from,
                        _ => None,
                    };
                    headers::range_for_dav_server(&plan, item.size)
                }
                _ => None,
            };
            match value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                Some(v) => parts.headers.insert(header::RANGE, v),
                None => parts.headers.remove(header::RANGE),
            };
        }
        let mut asks = propfind::Asks::default();
        let mut win32_modified = None;
        let body = if parts.method == Method::PUT {
            RequestBody::Streaming(Box::pin(body))
        } else {
            match read_checked_body(body).await {
                Ok(b) => {
                    if parts.method.as_str() == "PROPFIND" && checked.depth == Some(Depth::One) && prefix == PREFIX {
                        let ua = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
                        if let Some(mut r) = self.propfind_listing(&principal, &path, prefix, &b, ua).await {
                            acted_as(r.extensions_mut(), principal);
                            return r;
                        }
                    }
                    // Read only for dav-server's answers (the listing above reads the body itself).
                    if parts.method.as_str() == "PROPFIND" && !b.is_empty() {
                        asks = propfind::asks(&b);
                    }
                    if parts.method.as_str() == "PROPPATCH" {
                        win32_modified = win32::modified_time(&b);
                    }
                    RequestBody::Read(Some(b))
                }
                Err(r) => return refuse(principal, r.status, &r.reason),
            }
        };
        let req = Request::from_parts(parts, body);
        // dav-server would delete, move and copy a folder member by member: the core does
        // each in one operation (see `folders`).
        let answered = match req.method().as_str() {
            "DELETE" => Some(self.delete(&principal, &path, req.headers(), checked.depth).await),
            "COPY" => Some(self.relocate(&principal, &path, req.headers(), checked.depth, prefix, false).await),
            "MOVE" => Some(self.relocate(&principal, &path, req.headers(), checked.depth, prefix, true).await),
            _ => None,
        };
        if let Some(mut r) = answered {
            acted_as(r.extensions_mut(), principal);
            return r;
        }
        // LOCK and UNLOCK are asked first, so a refusal carries its reason (dav-server's
        // lock system can only say yes or no); the core asks again when it locks.
        if matches!(req.method().as_str(), "LOCK" | "UNLOCK")
            && let Err(e) = self.storage.may_lock(&principal, &path).await
        {
            let mut r = refusal(&e);
            acted_as(r.extensions_mut(), principal);
            return r;
        }
        let answered = match req.method().as_str() {
            "UNLOCK" => Some(self.unlock(&principal, &path, header_str(&req, "lock-token")).await),
            "LOCK" => self.lock_needs_folder(&principal, &path).await,
            _ => None,
        };
        if let Some(mut r) = answered {
            acted_as(r.extensions_mut(), principal);
            return r;
        }
        let put_conditions = match req.method() == Method::PUT {
            // A date was decided by dav-server before the write; its ETag list is pinned here.
            true => davit_http::write_conditions(req.headers(), None).unwrap_or_default(),
            false => Default::default(),
        };
        let ctx = Arc::new(fs::RequestCtx {
            errors: Default::default(),
            content_type: header_str(&req, "content-type").map(str::to_owned),
            mtime: header_str(&req, "x-oc-mtime").and_then(|v| v.trim().parse::<i64>().ok()),
            seen: Mutex::new(Default::default()),
            served_type: Mutex::new(None),
            quota: Default::default(),
            read_from,
            prepared: Default::default(),
            put_target: (req.method() == Method::PUT).then(Default::default),
            no_locks: Default::default(),
            put_conditions,
            asks,
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
            .locksystem(Box::new(ls::CoreLs::new(self.storage.clone(), principal.clone(), ctx.no_locks.clone())))
            .principal(principal.username().to_owned())
            .read_buf_size(READ_BUF)
            .autoindex(false)
            .build_handler();
        // Last line of defence: a panic inside dav-server answers 500 (and is logged)
        // instead of dropping the connection.
        let mut resp = match AssertUnwindSafe(handler.handle(req)).catch_unwind().await {
            Ok(r) => r.map(DavBody::from),
            Err(panic) => {
                tracing::error!(%method, panic = body::panic_message(&*panic), "dav-server panicked; answered 500");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
            }
        };

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
        if let Some(modified) = win32_modified
            && status == StatusCode::MULTI_STATUS
        {
            resp = self.keep_win32_modified(&principal, &path, modified, resp).await;
        }
        if method == Method::PUT && oc_mtime && status.is_success() {
            // rclone's owncloud vendor checks that the time was kept.
            resp.headers_mut().insert("x-oc-mtime", HeaderValue::from_static("accepted"));
        }
        if method == Method::OPTIONS {
            resp.headers_mut().insert("ms-author-via", HeaderValue::from_static("DAV"));
            without_partial_updates(resp.headers_mut());
        }
        acted_as(resp.extensions_mut(), principal);
        resp
    }

    /// UNLOCK, answered here so that a release the core refuses (someone else's lock) is its
    /// 403; dav-server answers every failure 409, which RFC 4918 §9.11.1 keeps for a token
    /// that names no lock on the resource.
    async fn unlock(&self, p: &Principal, path: &str, lock_token: Option<&str>) -> Response<Body> {
        let Some(token) = lock_token.map(|t| t.trim_matches(['<', '>'])) else {
            return plain(StatusCode::BAD_REQUEST, "UNLOCK needs a Lock-Token header\n".into());
        };
        match self.storage.unlock(p, path, token).await {
            Ok(true) => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
            Ok(false) => {
                let mut r = Response::new(Body::from(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:lock-token-matches-request-uri/></D:error>\n",
                ));
                *r.status_mut() = StatusCode::CONFLICT;
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
                r
            }
            Err(e) => refusal(&e),
        }
    }

    /// LOCK of an unmapped URL makes an empty file (RFC 4918 §7.3), in a folder that must be
    /// there: 409 as for PUT (the lock system can only answer 423 otherwise).
    async fn lock_needs_folder(&self, p: &Principal, path: &str) -> Option<Response<Body>> {
        let Err(Error::NotFound(_)) = self.storage.stat(p, path).await else { return None };
        let (parent, _) = path.trim_end_matches('/').rsplit_once('/')?;
        let parent = if parent.is_empty() { "/" } else { parent };
        match self.storage.stat(p, parent).await {
            Ok(item) if item.is_folder() => None,
            Ok(_) | Err(Error::NotFound(_)) => {
                Some(plain(StatusCode::CONFLICT, format!("{parent} is not a folder here\n")))
            }
            Err(_) => None,
        }
    }

    /// A PROPPATCH that set Windows' modification time (see `win32`): when dav-server applied
    /// every property (its answer, a few hundred bytes, names no failure), the time becomes
    /// the item's; if the core refuses it, its refusal is the answer.
    async fn keep_win32_modified(
        &self,
        p: &Principal,
        path: &str,
        modified: std::time::SystemTime,
        resp: Response<Body>,
    ) -> Response<Body> {
        use http_body_util::BodyExt;
        let (parts, body) = resp.into_parts();
        let Ok(collected) = body.collect().await else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into());
        };
        let bytes = collected.to_bytes();
        let all_applied = !bytes.windows(10).any(|w| w.starts_with(b"HTTP/1.1 ") && !w.ends_with(b"2"));
        if all_applied && let Err(e) = self.storage.set_modified(p, path, davit_http::nanos(modified)).await {
            return refusal(&e);
        }
        Response::from_parts(parts, Body::from(bytes))
    }

    /// RFC 4918 §10.4: the header is true when any list is; a list when all its conditions
    /// are. A state token is true when it names a lock that is on the resource now (one
    /// released, expired or never issued is false, and `DAV:` tokens always are); an entity
    /// tag when it is the resource's current ETag (strong comparison); `Not` inverts. An
    /// untagged list is about the request's resource, a tagged one about the resource its
    /// tag names, and about none (every condition false) outside this drive or link.
    async fn if_holds(&self, p: &Principal, h: &IfHeader, path: &str, prefix: &str) -> bool {
        let mut etags: HashMap<String, Option<String>> = HashMap::new();
        for list in &h.lists {
            let target = match &list.resource {
                None => Some(path.to_owned()),
                Some(r) => headers::ref_path(r).and_then(|rp| headers::drive_path_below(rp, prefix)),
            };
            let mut holds = true;
            for c in &list.conditions {
                let value = match (&target, &c.item) {
                    (None, _) => false,
                    (Some(t), IfItem::Token(token)) => {
                        !token.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("dav:"))
                            && self.storage.lock_token_applies(p, t, token).await.unwrap_or(false)
                    }
                    // A weak tag never matches strongly; an empty one matches no resource.
                    (Some(_), IfItem::ETag { weak: true, .. }) => false,
                    (Some(_), IfItem::ETag { tag, .. }) if tag.is_empty() => false,
                    (Some(t), IfItem::ETag { tag, .. }) => {
                        if !etags.contains_key(t) {
                            let current = self.storage.stat(p, t).await.ok().map(|i| i.etag).filter(|e| !e.is_empty());
                            etags.insert(t.clone(), current);
                        }
                        etags.get(t).and_then(Option::as_deref) == Some(tag.as_str())
                    }
                };
                if value == c.not {
                    holds = false;
                    break;
                }
            }
            if holds {
                return true;
            }
        }
        false
    }
}
