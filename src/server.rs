//! The listener: accepts connections (plain or TLS, HTTP/1.1 and HTTP/2), routes each
//! request to its front end by Host and path, logs it, and shuts down gracefully.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use davit_storage::Storage;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::Instrument;

use crate::access_log::{self, LoggedBody};
use crate::conn::{IdleBody, PerAddress, SendIdle};
use crate::hardening::{self, Origin};
use crate::proxy::TrustedProxies;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// Everything a request may need, assembled once at start.
pub struct App {
    pub storage: Storage,
    pub api: davit_api::Router,
    /// For the link pages, served outside the API router.
    pub api_state: davit_api::ApiState,
    pub webdav: davit_webdav::WebDav,
    pub s3: std::sync::Arc<davit_s3::S3Front>,
    /// Lower-case base domain for virtual-host-style S3 addressing.
    pub base_domain: Option<String>,
    pub shutdown_timeout: Duration,
    /// Peers whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: TrustedProxies,
    /// The origin of `--public-url`: the only origin allowed to write with ambient
    /// credentials when set (else the request's own scheme and Host).
    pub public_origin: Option<Origin>,
    pub limits: Limits,
    /// What `/metrics` reports (see `metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What one client may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// To send a request's headers, from the connection's start or the previous answer.
    pub header_timeout: Duration,
    /// The longest a request body may send nothing.
    pub body_idle_timeout: Duration,
    /// Open connections per address (trusted proxies excepted); 0: unlimited.
    pub max_connections_per_address: usize,
    /// The longest an answer may make no progress (the client reads nothing).
    pub send_idle_timeout: Duration,
    /// Open connections in all; 0: unlimited.
    pub max_connections: usize,
}

/// The front end a request goes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Front {
    Api,
    Dav,
    Link,
    S3,
}

/// The first path segments that go to a front end other than S3; S3 is told them, so that
/// no bucket takes one of these names.
pub const ROUTED_PREFIXES: [(&str, Front); 3] = [("api", Front::Api), ("dav", Front::Dav), ("s", Front::Link)];

/// Whether Host names a bucket under the base domain: `<bucket>.<base domain>[:port]`.
fn virtual_host(host: Option<&str>, base_domain: Option<&str>) -> bool {
    let (Some(host), Some(domain)) = (host, base_domain) else { return false };
    davit_http::virtual_host_bucket(host, domain).is_some()
}

/// Virtual-host S3 is decided from Host before the path: `<bucket>.<base domain>` goes to
/// S3 whatever its path. Then the routed prefixes (`/api/`, `/dav/`, `/s/`); everything
/// else is S3.
pub fn route(host: Option<&str>, path: &str, base_domain: Option<&str>) -> Front {
    if virtual_host(host, base_domain) {
        return Front::S3;
    }
    let first = path.strip_prefix('/').map_or("", |rest| rest.split('/').next().unwrap_or(""));
    ROUTED_PREFIXES.into_iter().find(|(name, _)| *name == first).map_or(Front::S3, |(_, front)| front)
}

/// The answer to a request whose body stopped coming, in the front end's form: 408, or S3's
/// RequestTimeout. The connection closes after it (the rest of the body is never read).
fn body_timeout_refusal(front: &Front, method: &Method, request_id: &str, idle: Duration) -> Response<Body> {
    let detail = format!("the request body sent nothing for {} s", idle.as_secs_f32());
    let mut r = match front {
        Front::Api => davit_api::problem(StatusCode::REQUEST_TIMEOUT, "body_timeout", &detail)
            .map(|b| b.map_err(BoxError::from).boxed_unsync()),
        Front::Link if method == Method::POST => {
            davit_api::problem(StatusCode::REQUEST_TIMEOUT, "body_timeout", &detail)
                .map(|b| b.map_err(BoxError::from).boxed_unsync())
        }
        Front::Dav | Front::Link => plain(StatusCode::REQUEST_TIMEOUT, format!("{detail}\n")),
        Front::S3 => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>RequestTimeout</Code><Message>{detail}</Message><RequestId>{request_id}</RequestId></Error>"
            );
            let mut r = Response::new(full(Bytes::from(xml)));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
            r
        }
    };
    r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The refusal of a cross-site write, in the front end's form.
fn cross_site_refusal(front: &Front, method: &Method) -> Response<Body> {
    if matches!(front, Front::Api) || (matches!(front, Front::Link) && method == Method::POST) {
        return davit_api::problem(hardening::CROSS_SITE_STATUS, "cross_site", hardening::CROSS_SITE)
            .map(|b| b.map_err(BoxError::from).boxed_unsync());
    }
    plain(hardening::CROSS_SITE_STATUS, format!("{}\n", hardening::CROSS_SITE))
}

async fn handle(app: Arc<App>, req: Request<Incoming>, peer: SocketAddr, secure: bool) -> Response<Body> {
    let client = app.trusted_proxies.client(peer, req.headers());
    // The address every audit event of this request names, wherever the core records it.
    davit_storage::audit::scope(client, handle_scoped(app, req, peer, secure, client)).await
}

async fn handle_scoped(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
    secure: bool,
    client: std::net::IpAddr,
) -> Response<Body> {
    if app.metrics.wants(req.uri().path(), req.headers())
        && !virtual_host(
            req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()),
            app.base_domain.as_deref(),
        )
    {
        return app.metrics.answer(req.headers(), &app.storage);
    }
    let (parts, body) = req.into_parts();
    let held = app.metrics.request(!http_body::Body::is_end_stream(&body));
    // Routed before the body is wrapped, so its bytes count for its protocol.
    let counted_front = route(
        parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(parts.uri.authority().map(|a| a.as_str())),
        parts.uri.path(),
        app.base_domain.as_deref(),
    );
    // A body announced with `Expect: 100-continue` is sent only once hyper answers `100
    // Continue`, which it does when the body is first read: see below.
    let expects_continue =
        parts.headers.get(http::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (body, body_flags) = IdleBody::new(body, app.limits.body_idle_timeout);
    let body = body.counting(app.metrics.receiver(&counted_front));
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(davit_storage::ClientAddr(client));
    let started = Instant::now();
    let request_id = access_log::new_request_id();
    tracing::Span::current().record("id", request_id.as_str());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().authority().map(|a| a.as_str()))
        .map(str::to_owned);
    let front = counted_front;
    // S3 is exempt: its requests are signed (a browser holds no signature to lend), and
    // browser S3 apps are cross-origin by design.
    let cross_site = front != Front::S3
        && (hardening::is_cross_site(&method, req.headers(), app.public_origin.as_ref(), secure, host.as_deref())
            || hardening::is_foreign_form_post(
                &method,
                &path,
                req.headers(),
                app.public_origin.as_ref(),
                secure,
                host.as_deref(),
            ));
    let mut resp = match front {
        _ if cross_site => cross_site_refusal(&front, &method),
        Front::Api => {
            let req = req.map(davit_api::Body::new);
            match app.api.clone().oneshot(req).await {
                Ok(r) => r.map(|b| b.map_err(BoxError::from).boxed_unsync()),
                Err(never) => match never {},
            }
        }
        Front::Dav => app.webdav.handle(req).await.map(|b| b.map_err(BoxError::from).boxed_unsync()),
        Front::Link => {
            // Downloads, folder pages and forms are REST's; WebDAV methods mount the link.
            let token = davit_api::split_link_path(&path).map(|(t, _)| t);
            match (req.method().clone(), token) {
                (Method::GET | Method::HEAD | Method::POST, _) | (_, None) => {
                    let req = req.map(davit_api::Body::new);
                    davit_api::serve_link(app.api_state.clone(), req)
                        .await
                        .map(|b| b.map_err(BoxError::from).boxed_unsync())
                }
                (_, Some(token)) => {
                    app.webdav.handle_link(req, &token).await.map(|b| b.map_err(BoxError::from).boxed_unsync())
                }
            }
        }
        Front::S3 => {
            // botocore before 1.43.77 sends `Expect: 100-continue` even with an empty body
            // and then misreads the next answer on the connection when the server replies
            // without `100 Continue` (as HTTP allows): closing such a connection after the
            // answer keeps the aws CLI working (boto/botocore#3755).
            let empty_expect = expects_continue
                && req.headers().get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0");
            let req = req.map(s3s::Body::http_body);
            match app.s3.handle(req, &request_id).await {
                Ok(mut r) => {
                    if empty_expect {
                        r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    r.map(|b| b.map_err(|e| -> BoxError { e }).boxed_unsync())
                }
                Err(e) => {
                    tracing::error!(error = ?e, "S3 request failed before an S3 answer");
                    s3_internal_error(&request_id)
                }
            }
        }
    };
    // Answered before its body was read to the end: the client of `Expect: 100-continue`
    // sends no body (or the rest of it) without `100 Continue`, and hyper, draining the body
    // it announced, took the next request's bytes for it (a refused boto3 PutObject made the
    // next call on the connection fail its signature). The connection closes instead.
    if expects_continue && !body_flags.ended.load(Ordering::Relaxed) {
        resp.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if body_flags.timed_out.load(Ordering::Relaxed) {
        let principal = davit_http::take_acted_as(resp.extensions_mut());
        resp = body_timeout_refusal(&front, &method, &request_id, app.limits.body_idle_timeout);
        if let Some(p) = principal {
            davit_http::acted_as(resp.extensions_mut(), p);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    // User content: a file read over any front end. Everything else is ours (JSON, problems,
    // WebDAV's XML and text, S3's listings and errors, the link pages).
    let content = (method == Method::GET || method == Method::HEAD)
        && matches!(resp.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT)
        && (front != Front::S3
            || hardening::s3_reads_object(
                &path,
                query.as_deref(),
                virtual_host(host.as_deref(), app.base_domain.as_deref()),
            ));
    let own_page = resp.extensions().get::<davit_api::OwnPage>().is_some();
    hardening::harden(resp.headers_mut(), content, own_page);
    // An answer to HEAD has no body, nor has a 204 or 304, but front ends give some of them
    // one (s3s its XML, dav-server its text). HTTP/1 drops it; HTTP/2 would send it, and
    // clients (hyper, curl) reset the stream.
    let bodyless = method == Method::HEAD
        || matches!(resp.status(), StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
        || resp.status().is_informational();
    if bodyless {
        *resp.body_mut() = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
    }
    let user = resp.extensions().get::<davit_storage::Principal>().map(|p| p.username().to_owned());
    // What a complete answer sends: nothing when bodyless, else the announced Content-Length
    // (a streamed file's body cannot tell its length, and hyper stops polling once it is sent).
    let announced = if bodyless {
        Some(0)
    } else {
        use http_body::Body as _;
        resp.body().size_hint().exact().or_else(|| {
            resp.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
        })
    };
    // A link's token is its secret: the log names the link by its principal (`link:<id>`).
    let path = access_log::redact_path(&path);
    let counted = (front, method.clone());
    let record = access_log::Record { request_id, method, path, peer, client, user, status: resp.status(), started };
    let resp = resp.map(|b| LoggedBody::new(b, record, announced).boxed_unsync());
    app.metrics.count(resp, &counted.0, &counted.1, started, held)
}

pub fn plain(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(text.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn s3_internal_error(request_id: &str) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>internal error</Message><RequestId>{request_id}</RequestId></Error>"
    );
    let mut r = Response::new(full(Bytes::from(xml)));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

pub fn full(b: Bytes) -> Body {
    http_body_util::Full::new(b).map_err(|never| match never {}).boxed_unsync()
}

/// Serves until `shutdown` resolves; then stops accepting, gives in-flight requests up to
/// the configured time to finish, and closes the database.
pub async fn serve(
    listener: TcpListener,
    app: App,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let app = Arc::new(app);
    let limits = app.limits;
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // HTTP/1: hyper's header timer runs from the end of the previous answer, so it is also
    // the keep-alive idle time. HTTP/2: pings find peers that are gone; a peer that stays
    // silent to them is dropped.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let per_address = Arc::new(PerAddress::default());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A proxy carries many clients on its connections; it limits them itself.
        let peer_ip = peer.ip().to_canonical();
        let per_peer = (limits.max_connections_per_address != 0 && !app.trusted_proxies.trusts(peer_ip))
            .then_some(limits.max_connections_per_address);
        let Some(slot) = per_address.admit(peer_ip, per_peer, limits.max_connections) else {
            // Closed at once: an answer would cost what the limit is there to save.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let open = app.metrics.connection();
        // Under TLS too, so the handshake and every record count.
        let stream = SendIdle::new(stream, limits.send_idle_timeout);
        let deadline = tokio::time::Instant::now() + limits.header_timeout;
        let first_request = Arc::new(AtomicBool::new(false));
        let app = app.clone();
        let secure = tls.is_some();
        let seen = first_request.clone();
        let svc = hyper::service::service_fn(move |req| {
            seen.store(true, Ordering::Relaxed);
            let app = app.clone();
            // Every line logged while serving names the request (a refusal's internal cause
            // above all), so it can be found from the id the client was given.
            let span = tracing::info_span!("request", id = tracing::field::Empty);
            async move { Ok::<_, Infallible>(handle(app, req, peer, secure).instrument(span).await) }
        });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _open = open;
            let result = match tls {
                Some(tls) => match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let conn =
                            watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(s), svc).into_owned());
                        first_request_by(deadline, &first_request, conn).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not done within the header timeout: closed");
                        return;
                    }
                },
                None => {
                    let conn =
                        watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned());
                    first_request_by(deadline, &first_request, conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(connections = graceful.count(), "shutting down: no new connections; waiting for requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(app.shutdown_timeout) => tracing::warn!("shutdown timeout: closing connections still open"),
    }
    app.storage.close();
    tracing::info!("stopped");
    Ok(())
}

/// Serves a connection, dropping it if no request has arrived by `deadline`. hyper's
/// header timer starts only once it knows the protocol, so a client that sends nothing (or
/// dribbles the HTTP/2 preface, or its first HEADERS) would otherwise hold the connection
/// for ever.
async fn first_request_by<F, E>(deadline: tokio::time::Instant, seen: &AtomicBool, conn: F) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    tokio::select! {
        r = &mut conn => return r,
        () = tokio::time::sleep_until(deadline) => {}
    }
    if seen.load(Ordering::Relaxed) {
        conn.await
    } else {
        tracing::debug!("no request within the header timeout: closed");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{Front, route};

    #[test]
    fn routing() {
        assert_eq!(route(None, "/api/v1/health", None), Front::Api);
        assert_eq!(route(None, "/api", None), Front::Api);
        assert_eq!(route(None, "/apiary/x", None), Front::S3);
        assert_eq!(route(None, "/dav/a", None), Front::Dav);
        assert_eq!(route(None, "/s/tok", None), Front::Link);
        assert_eq!(route(None, "/bucket/key", None), Front::S3);
        assert_eq!(route(Some("b.s3.example"), "/api/v1/health", Some("s3.example")), Front::S3);
        assert_eq!(route(Some("s3.example:8080"), "/api/v1/health", Some("s3.example")), Front::Api);
        assert_eq!(route(Some("b.s3.example:8080"), "/dav/x", Some("s3.example")), Front::S3);
    }
}
