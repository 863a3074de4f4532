//! One log line per request, written when its response body has been sent (or dropped), so
//! the line carries the bytes actually sent and the whole duration.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::server::{Body, BoxError};

pub struct Record {
    pub request_id: String,
    pub method: Method,
    pub path: String,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client: the peer, or the address a trusted proxy forwarded for.
    pub client: IpAddr,
    pub user: Option<String>,
    pub status: StatusCode,
    pub started: Instant,
}

/// Secrets in paths: the token of a link (`/s/<token>/…`) and of the mailed verification
/// link (`/api/v1/auth/verify-link/<token>`) are replaced by `<token>`. The log names a link
/// by its principal (`link:<id>`) instead.
pub fn redact_path(path: &str) -> String {
    for prefix in [davit_api::LINK_PREFIX, crate::hardening::FORM_POST_PREFIX] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let end = rest.find('/').unwrap_or(rest.len());
            if end > 0 {
                return format!("{prefix}<token>{}", &rest[end..]);
            }
        }
    }
    path.to_owned()
}

/// Request ids: a per-process random prefix and a counter, short and unique in the logs.
pub fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| davit_storage::crypto::random_string(b"0123456789ABCDEF", 8));
    format!("{prefix}{:08X}", NEXT.fetch_add(1, Ordering::Relaxed))
}

pub struct LoggedBody {
    inner: Body,
    record: Option<Record>,
    bytes: u64,
    complete: bool,
    /// The body's length when known up front: all of it sent is a complete answer even when
    /// the connection does not poll for the end.
    announced: Option<u64>,
}

impl LoggedBody {
    /// `announced`: what a complete answer sends (nothing for HEAD, else its length).
    pub fn new(inner: Body, record: Record, announced: Option<u64>) -> Self {
        LoggedBody { inner, record: Some(record), bytes: 0, complete: false, announced }
    }
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None) => this.complete = true,
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(error = %e, "response body failed; the connection is cut short");
            }
            Poll::Pending => {}
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

impl Drop for LoggedBody {
    fn drop(&mut self) {
        let Some(r) = self.record.take() else { return };
        let complete = self.complete || self.inner.is_end_stream() || self.announced == Some(self.bytes);
        // `peer` is the client; through a trusted proxy, `proxy` says which one carried it.
        macro_rules! line {
            ($peer:expr $(, $proxy:expr)?) => {
                tracing::info!(
                    target: "davit::access",
                    id = %r.request_id,
                    method = %r.method,
                    path = %r.path,
                    status = r.status.as_u16(),
                    bytes = self.bytes,
                    ms = format_args!("{:.3}", r.started.elapsed().as_secs_f64() * 1000.0),
                    user = %r.user.as_deref().unwrap_or("-"),
                    peer = %$peer,
                    $(proxy = %$proxy,)?
                    complete,
                )
            };
        }
        if r.client == r.peer.ip().to_canonical() {
            line!(r.peer);
        } else {
            line!(r.client, r.peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_path;

    #[test]
    fn tokens_leave_no_trace() {
        assert_eq!(redact_path("/s/AbC-_x/dir/a.txt"), "/s/<token>/dir/a.txt");
        assert_eq!(redact_path("/s/AbC"), "/s/<token>");
        assert_eq!(redact_path("/api/v1/auth/verify-link/12.secret"), "/api/v1/auth/verify-link/<token>");
        assert_eq!(redact_path("/api/v1/auth/verify"), "/api/v1/auth/verify");
        assert_eq!(redact_path("/dav/s/x"), "/dav/s/x");
        assert_eq!(redact_path("/s/"), "/s/");
    }
}
