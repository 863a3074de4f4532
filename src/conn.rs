//! Limits on what a slow or greedy client can hold: open connections per address and in
//! all, a request body that stops sending, and an answer the client stops reading. (Header and keep-alive timeouts are hyper's, set where
//! the connection is served.)

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Open connections, per client address and in all.
#[derive(Default)]
pub struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
    /// Refusals not yet logged, and when the last warning went out: a flood of refusals
    /// writes one line every few seconds, not one per connection.
    refused: Mutex<(u64, Option<Instant>)>,
}

/// One admitted connection; it counts until dropped.
pub struct Slot {
    counts: Arc<PerAddress>,
    /// The address it counts against; None when it counts only in the total.
    key: Option<IpAddr>,
}

/// What the per-address cap counts by: an IPv6 /64 is one client (one subscriber gets a
/// whole /64, so single addresses would be free for the taking, as in the throttle), and an
/// IPv4-mapped IPv6 address is the IPv4 one.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

impl PerAddress {
    /// A slot for one more connection from `ip`, or None when its address (`per_address`:
    /// None for no cap) or the server (`total`: 0 for no cap) already has as many open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, per_address: Option<usize>, total: usize) -> Option<Slot> {
        let key = address_key(ip);
        let why = {
            let mut open = self.open.lock().expect("connection counts");
            let n = per_address.map(|max| (max, open.get(&key).copied().unwrap_or(0)));
            if total != 0 && self.total.load(Ordering::Relaxed) >= total {
                "too many connections in all: refusing more (counted since the last warning)"
            } else if n.is_some_and(|(max, n)| n >= max) {
                "too many connections from one address: refusing more (counted since the last warning)"
            } else {
                // Under the same lock as the map, so the total never passes its cap.
                self.total.fetch_add(1, Ordering::Relaxed);
                if n.is_some() {
                    *open.entry(key).or_insert(0) += 1;
                }
                return Some(Slot { counts: self.clone(), key: n.map(|_| key) });
            }
        };
        let mut refused = self.refused.lock().expect("refusal counts");
        refused.0 += 1;
        if refused.1.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(address = %key, refused = refused.0, per_address, total, "{why}");
            *refused = (0, Some(Instant::now()));
        }
        None
    }

    pub fn open(&self, ip: IpAddr) -> usize {
        self.open.lock().expect("connection counts").get(&address_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().expect("connection counts");
        self.counts.total.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = self.key.and_then(|k| open.get_mut(&k)) {
            *n -= 1;
            if *n == 0 {
                self.key.map(|k| open.remove(&k));
            }
        }
    }
}

/// Time spent waiting on the client, for the send and body timeouts alike: the clock starts
/// when a poll goes pending, keeps running while it stays pending, and stops whenever one
/// is ready, so only waiting counts, never work.
struct IdleClock {
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl IdleClock {
    fn new(idle: Duration) -> Self {
        IdleClock { idle, timer: None, waiting: false }
    }

    /// The poll was ready: the clock stops.
    fn ready(&mut self) {
        self.waiting = false;
    }

    /// The poll is pending: Ready once the client has been waited on for `idle`.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = tokio::time::Instant::now() + self.idle;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.waiting {
            self.waiting = true;
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}

/// A connection whose writes fail once they make no progress for `idle`: a client that
/// stops reading an answer would otherwise hold the connection, and the answer's buffers,
/// for ever. The clock runs only while a write waits on the client, and restarts whenever
/// one goes through, so a slow reader that keeps reading is never cut off.
pub struct SendIdle<S> {
    inner: S,
    clock: IdleClock,
}

impl<S> SendIdle<S> {
    pub fn new(inner: S, idle: Duration) -> Self {
        SendIdle { inner, clock: IdleClock::new(idle) }
    }

    /// Passes a write's outcome on; a pending one starts (or keeps) the clock, and fails
    /// the write once it has run out.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.clock.ready();
            return r;
        }
        match self.clock.pending(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {} s", self.clock.idle.as_secs_f32()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendIdle<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendIdle<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, r)
    }
}

/// A request body that fails when the client sends nothing for `idle`, so a stalled upload
/// ends and frees its connection. Only time spent waiting on the client counts: while the
/// server is busy with what it already got (and does not poll), the clock does not run.
pub struct IdleBody {
    inner: Incoming,
    clock: IdleClock,
    flags: Arc<BodyFlags>,
    /// Where received bytes are counted (the metrics).
    received: Option<crate::metrics::Receiver>,
}

/// What became of a request body, for the server to look at once the answer is made.
#[derive(Default)]
pub struct BodyFlags {
    /// Set when the body timed out: front ends answer a failed body each in their own way
    /// (WebDAV even with 502), so the server replaces that answer with one that says so.
    pub timed_out: AtomicBool,
    /// Set when the body was read to its end.
    pub ended: AtomicBool,
}

impl IdleBody {
    /// The body, and the flags that tell afterwards what became of it.
    pub fn new(inner: Incoming, idle: Duration) -> (Self, Arc<BodyFlags>) {
        let flags = Arc::new(BodyFlags::default());
        (IdleBody { inner, clock: IdleClock::new(idle), flags: flags.clone(), received: None }, flags)
    }

    /// Counts the bytes received into `r`.
    pub fn counting(mut self, r: crate::metrics::Receiver) -> Self {
        self.received = Some(r);
        self
    }
}

#[derive(Debug)]
pub enum BodyError {
    Read(hyper::Error),
    Idle(Duration),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Read(e) => write!(f, "reading the request body: {e}"),
            BodyError::Idle(d) => write!(f, "the request body sent nothing for {} s", d.as_secs_f32()),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Read(e) => Some(e),
            BodyError::Idle(_) => None,
        }
    }
}

impl HttpBody for IdleBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.clock.ready();
                if r.is_none() {
                    this.flags.ended.store(true, Ordering::Relaxed);
                }
                if let (Some(Ok(f)), Some(c)) = (&r, &this.received)
                    && let Some(d) = f.data_ref()
                {
                    c.add(d.len() as u64);
                }
                Poll::Ready(r.map(|r| r.map_err(BodyError::Read)))
            }
            Poll::Pending => match this.clock.pending(cx) {
                Poll::Ready(()) => {
                    this.flags.timed_out.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(BodyError::Idle(this.clock.idle))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::{PerAddress, address_key};
    use std::net::IpAddr;
    use std::sync::Arc;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn slots_count_per_address_and_free_on_drop() {
        let p = Arc::new(PerAddress::default());
        let a = ip("127.0.0.2");
        let b = ip("127.0.0.3");
        let s1 = p.admit(a, Some(2), 0).unwrap();
        let _s2 = p.admit(a, Some(2), 0).unwrap();
        assert!(p.admit(a, Some(2), 0).is_none());
        let _s3 = p.admit(b, Some(2), 0).unwrap();
        drop(s1);
        assert_eq!(p.open(a), 1);
        assert!(p.admit(a, Some(2), 0).is_some());
    }

    #[test]
    fn an_ipv6_64_is_one_address() {
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_ne!(address_key(ip("2001:db8:1:2::1")), address_key(ip("2001:db8:1:3::1")));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
        let p = Arc::new(PerAddress::default());
        let _held: Vec<_> = (1..=2).map(|i| p.admit(ip(&format!("2001:db8::{i}")), Some(2), 0).unwrap()).collect();
        assert!(p.admit(ip("2001:db8::ffff:1"), Some(2), 0).is_none(), "another address in the same /64");
        assert!(p.admit(ip("2001:db8:0:1::1"), Some(2), 0).is_some(), "the next /64");
        let _v4 = p.admit(ip("192.0.2.7"), Some(1), 0).unwrap();
        assert!(p.admit(ip("::ffff:192.0.2.7"), Some(1), 0).is_none(), "mapped is the IPv4 address");
    }

    #[test]
    fn the_total_is_capped_too() {
        let p = Arc::new(PerAddress::default());
        let a = p.admit(ip("127.0.0.2"), Some(5), 2).unwrap();
        let _b = p.admit(ip("127.0.0.3"), None, 2).unwrap();
        assert!(p.admit(ip("127.0.0.4"), Some(5), 2).is_none());
        assert!(p.admit(ip("127.0.0.5"), None, 2).is_none(), "uncapped addresses count in the total");
        drop(a);
        assert!(p.admit(ip("127.0.0.4"), Some(5), 2).is_some());
        let _many: Vec<_> = (0..10).map(|_| p.admit(ip("127.0.0.6"), None, 0).unwrap()).collect();
    }
}
