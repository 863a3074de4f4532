//! `GET /metrics` in the Prometheus text format (0.0.4): requests by protocol, method and
//! status class, their durations, bytes in and out, connections, uploads in flight, and the
//! core's own counters (chunk store and dedup figures, sign-in failures, throttled attempts).
//!
//! Who may read it. The figures say how busy the server is and how much it stores, not
//! whose files: still not for everyone. With a token (`--metrics-token`,
//! `DAVIT_METRICS_TOKEN`), `/metrics` on the main listener answers a request carrying
//! `Authorization: Bearer <token>` (any other `/metrics` request is S3's, as before, so no
//! bucket name is taken away: an S3 request is signed, never a bearer). Without a token it
//! is not served there at all; `--metrics-listen ADDR` then serves it, unauthenticated, on
//! an address of its own meant for a private interface (with a token set, that listener
//! asks for it too). Neither set: no metrics.
//!
//! Why hand-written atomics (`counters`) rather than the `prometheus-client` crate:
//! measured per request by `tests/bench/metrics.sh` (a request counter, a duration
//! histogram and a byte counter; release build, 2 shared cores), the arrays of relaxed
//! atomics cost about 55 ns a request on one thread and on two, `prometheus-client`'s
//! label families 230 to 290 ns, 4 to 5 times more (a hash map lookup under a lock per
//! family). Both are small beside a request; the arrays also add no dependency,
//! and the labels here are a closed set known at compile time.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use davit_storage::Storage;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::server::{Body, BoxError, Front};

mod counters;
use counters::{BUCKETS, CLASSES, Counters, METHODS, PROTOCOLS, class_index, method_index};

fn protocol(front: &Front) -> usize {
    match front {
        Front::Dav => 0,
        Front::S3 => 1,
        Front::Api => 2,
        Front::Link => 3,
    }
}

fn method(m: &Method) -> usize {
    method_index(m.as_str())
}

fn class(s: StatusCode) -> usize {
    class_index(s.as_u16())
}

/// Everything counted by the listener; one per server.
pub struct Metrics {
    counters: Counters,
    connections: AtomicI64,
    connections_total: AtomicU64,
    in_flight: AtomicI64,
    uploads: AtomicI64,
    /// The bearer token scrapes must show; None: only the separate listener serves.
    token: Option<String>,
}

impl Metrics {
    pub fn new(token: Option<String>) -> Self {
        Metrics {
            counters: Counters::default(),
            connections: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            uploads: AtomicI64::new(0),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// Whether the main listener routes this request to the metrics: `/metrics` with a
    /// bearer token, and a token configured (S3 requests carry signatures, never bearers).
    pub fn wants(&self, path: &str, headers: &HeaderMap) -> bool {
        self.token.is_some() && path == "/metrics" && bearer(headers).is_some()
    }

    /// An open connection, counted until dropped.
    pub fn connection(self: &Arc<Self>) -> Gauge {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        Gauge::up(self.clone(), |m| &m.connections)
    }

    /// A request being answered (and an upload, when it has a body), until dropped.
    pub fn request(self: &Arc<Self>, upload: bool) -> (Gauge, Option<Gauge>) {
        (Gauge::up(self.clone(), |m| &m.in_flight), upload.then(|| Gauge::up(self.clone(), |m| &m.uploads)))
    }

    /// Where a request body of `front` counts its bytes.
    pub fn receiver(self: &Arc<Self>, front: &Front) -> Receiver {
        Receiver { metrics: self.clone(), protocol: protocol(front) }
    }

    fn record(&self, r: &Done, sent: u64) {
        self.counters.observe(r.protocol, r.method, r.class, r.started.elapsed(), sent);
    }

    /// Wraps an answer so it is counted once its body is sent (or dropped).
    /// `held`: the request's gauges, let go with the answer.
    pub fn count(
        self: &Arc<Self>,
        resp: Response<Body>,
        front: &Front,
        m: &Method,
        started: Instant,
        held: (Gauge, Option<Gauge>),
    ) -> Response<Body> {
        let done = Done {
            metrics: self.clone(),
            protocol: protocol(front),
            method: method(m),
            class: class(resp.status()),
            started,
            _held: held,
        };
        resp.map(|inner| http_body_util::BodyExt::boxed_unsync(Counted { inner, done: Some(done), sent: 0 }))
    }

    /// The answer to a scrape: 401 without the token (when one is set).
    pub fn answer(&self, headers: &HeaderMap, storage: &Storage) -> Response<Body> {
        if let Some(token) = &self.token {
            let given = bearer(headers).unwrap_or("");
            if !davit_storage::crypto::ct_eq(given.as_bytes(), token.as_bytes()) {
                let mut r = crate::server::plain(StatusCode::UNAUTHORIZED, "a metrics token is needed\n");
                r.headers_mut().insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        }
        let mut r = crate::server::plain(StatusCode::OK, self.render(storage));
        r.headers_mut()
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
        r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    /// The text exposition. Request series appear once they count something; the rest
    /// always.
    pub fn render(&self, storage: &Storage) -> String {
        let mut out = String::with_capacity(8 << 10);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        head(
            &mut out,
            "davit_http_requests_total",
            "counter",
            "Requests answered, by protocol, method and status class.",
        );
        for (p, proto) in PROTOCOLS.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                for (c, class) in CLASSES.iter().enumerate() {
                    let n = self.counters.requests(p, m, c);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "davit_http_requests_total{{protocol=\"{proto}\",method=\"{method}\",status=\"{class}\"}} {n}"
                        );
                    }
                }
            }
        }
        let name = "davit_http_request_duration_seconds";
        head(&mut out, name, "histogram", "Time from a request's arrival to the end of its answer's body.");
        for (p, proto) in PROTOCOLS.iter().enumerate() {
            let (cumulative, sum) = self.counters.durations(p);
            for (n, le) in cumulative.iter().zip(BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()])) {
                let _ = writeln!(out, "{name}_bucket{{protocol=\"{proto}\",le=\"{le}\"}} {n}");
            }
            let count = cumulative[BUCKETS.len()];
            let _ = writeln!(out, "{name}_sum{{protocol=\"{proto}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{protocol=\"{proto}\"}} {count}");
        }
        let received = |p| self.counters.received(p);
        let sent = |p| self.counters.sent(p);
        for (name, help, value) in [
            ("davit_http_received_bytes_total", "Request body bytes received.", &received as &dyn Fn(usize) -> u64),
            ("davit_http_sent_bytes_total", "Response body bytes sent.", &sent),
        ] {
            head(&mut out, name, "counter", help);
            for (p, proto) in PROTOCOLS.iter().enumerate() {
                let _ = writeln!(out, "{name}{{protocol=\"{proto}\"}} {}", value(p));
            }
        }
        let gauge = |a: &AtomicI64| a.load(Ordering::Relaxed).max(0);
        let figures = storage.chunk_figures();
        let (failures, throttled) = storage.auth_counts();
        let single: [(&str, &str, &str, String); 10] = [
            ("davit_http_connections", "gauge", "Connections open now.", gauge(&self.connections).to_string()),
            (
                "davit_http_connections_accepted_total",
                "counter",
                "Connections accepted.",
                get(&self.connections_total).to_string(),
            ),
            (
                "davit_http_requests_in_flight",
                "gauge",
                "Requests being answered now.",
                gauge(&self.in_flight).to_string(),
            ),
            (
                "davit_uploads_in_flight",
                "gauge",
                "Requests with a body (uploads) being received or answered now.",
                gauge(&self.uploads).to_string(),
            ),
            (
                "davit_chunks",
                "gauge",
                "Distinct chunks stored (each once, however many files use it).",
                figures.chunks.to_string(),
            ),
            (
                "davit_chunk_bytes",
                "gauge",
                "Bytes of the distinct chunks: content stored once however many files hold it.",
                figures.chunk_bytes.to_string(),
            ),
            (
                "davit_logical_bytes",
                "gauge",
                "Bytes of every file of every drive, before deduplication.",
                figures.logical_bytes.to_string(),
            ),
            (
                "davit_dedup_ratio",
                "gauge",
                "Logical bytes per chunk byte: what deduplication saves (1 when nothing is stored).",
                match figures.chunk_bytes {
                    0 => "1".to_owned(),
                    s => (figures.logical_bytes as f64 / s as f64).to_string(),
                },
            ),
            (
                "davit_auth_failures_total",
                "counter",
                "Failed sign-ins: wrong passwords, codes, link passwords, S3 signatures.",
                failures.to_string(),
            ),
            (
                "davit_throttled_total",
                "counter",
                "Attempts refused by the sign-in and rate throttles.",
                throttled.to_string(),
            ),
        ];
        for (name, kind, help, value) in single {
            head(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Counts one up while it lives.
pub struct Gauge {
    metrics: Arc<Metrics>,
    which: fn(&Metrics) -> &AtomicI64,
}

impl Gauge {
    fn up(metrics: Arc<Metrics>, which: fn(&Metrics) -> &AtomicI64) -> Self {
        which(&metrics).fetch_add(1, Ordering::Relaxed);
        Gauge { metrics, which }
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        (self.which)(&self.metrics).fetch_sub(1, Ordering::Relaxed);
    }
}

struct Done {
    metrics: Arc<Metrics>,
    protocol: usize,
    method: usize,
    class: usize,
    started: Instant,
    _held: (Gauge, Option<Gauge>),
}

/// Counts a request body's bytes for its protocol.
pub struct Receiver {
    metrics: Arc<Metrics>,
    protocol: usize,
}

impl Receiver {
    pub fn add(&self, n: u64) {
        self.metrics.counters.receive(self.protocol, n);
    }
}

/// An answer's body that counts what it sent, and the request once it ends or is dropped.
struct Counted {
    inner: Body,
    done: Option<Done>,
    sent: u64,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r
            && let Some(d) = f.data_ref()
        {
            this.sent += d.len() as u64;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(d) = self.done.take() {
            d.metrics.record(&d, self.sent);
        }
    }
}

/// Serves `/metrics` alone on `listener` (`--metrics-listen`) until the task is dropped.
pub async fn serve_separate(listener: tokio::net::TcpListener, metrics: Arc<Metrics>, storage: Storage) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let builder = Arc::new(hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()));
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            // Out of descriptors and the like: a scrape can wait.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        };
        let (metrics, storage, builder) = (metrics.clone(), storage.clone(), builder.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let resp = if req.uri().path() == "/metrics" && req.method() == Method::GET {
                    metrics.answer(req.headers(), &storage)
                } else {
                    crate::server::plain(StatusCode::NOT_FOUND, "only /metrics here\n")
                };
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// Binds `--metrics-listen`; prints where, as the main listener does.
pub async fn bind_separate(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context as _;
    let l = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("--metrics-listen {addr}"))?;
    eprintln!("davit metrics on http://{}/metrics", l.local_addr()?);
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_a_closed_set() {
        assert_eq!(METHODS[method(&Method::from_bytes(b"BREW").unwrap())], "other");
        assert_eq!(METHODS[method(&Method::from_bytes(b"PROPFIND").unwrap())], "PROPFIND");
        assert_eq!(CLASSES[class(StatusCode::NOT_FOUND)], "4xx");
        assert_eq!(CLASSES[class(StatusCode::SWITCHING_PROTOCOLS)], "1xx");
    }

    #[test]
    fn bearer_only_and_only_with_a_token() {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(Metrics::new(Some("abc".into())).wants("/metrics", &h));
        assert!(!Metrics::new(None).wants("/metrics", &h));
        assert!(!Metrics::new(Some("abc".into())).wants("/metrics/x", &h));
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"));
        assert!(!Metrics::new(Some("abc".into())).wants("/metrics", &h));
    }
}
