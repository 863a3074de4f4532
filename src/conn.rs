//! Limits on what a slow or greedy client can hold: open connections per address, and a
//! request body that stops sending. (Header and keep-alive timeouts are hyper's, set where
//! the connection is served.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

/// Open connections per client address.
#[derive(Default)]
pub struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
    /// Refusals not yet logged, and when the last warning went out: a flood of refusals
    /// writes one line every few seconds, not one per connection.
    refused: Mutex<(u64, Option<Instant>)>,
}

/// One admitted connection; it counts until dropped.
pub struct Slot {
    counts: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    /// A slot for one more connection from `ip`, or None when it already has `max` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        {
            let mut open = self.open.lock().expect("connection counts");
            let n = open.entry(ip).or_insert(0);
            if *n < max {
                *n += 1;
                return Some(Slot { counts: self.clone(), ip });
            }
        }
        let mut refused = self.refused.lock().expect("refusal counts");
        refused.0 += 1;
        if refused.1.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(address = %ip, refused = refused.0, limit = max, "too many connections from one address: refusing more (counted since the last warning)");
            *refused = (0, Some(Instant::now()));
        }
        None
    }

    pub fn open(&self, ip: IpAddr) -> usize {
        self.open.lock().expect("connection counts").get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().expect("connection counts");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A request body that fails when the client sends nothing for `idle`, so a stalled upload
/// ends and frees its connection. Only time spent waiting on the client counts: while the
/// server is busy with what it already got (and does not poll), the clock does not run.
pub struct IdleBody {
    inner: Incoming,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    /// Set when the body timed out: front ends answer a failed body each in their own way
    /// (WebDAV even with 502), so the server replaces that answer with one that says so.
    timed_out: Arc<AtomicBool>,
}

impl IdleBody {
    /// The body, and the flag that tells afterwards whether it timed out.
    pub fn new(inner: Incoming, idle: Duration) -> (Self, Arc<AtomicBool>) {
        let timed_out = Arc::new(AtomicBool::new(false));
        (IdleBody { inner, idle, timer: None, waiting: false, timed_out: timed_out.clone() }, timed_out)
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
                this.waiting = false;
                Poll::Ready(r.map(|r| r.map_err(BodyError::Read)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !this.waiting {
                    this.waiting = true;
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.timed_out.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err(BodyError::Idle(this.idle))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
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
    use super::PerAddress;
    use std::sync::Arc;

    #[test]
    fn slots_count_per_address_and_free_on_drop() {
        let p = Arc::new(PerAddress::default());
        let a = "127.0.0.2".parse().unwrap();
        let b = "127.0.0.3".parse().unwrap();
        let s1 = p.admit(a, 2).unwrap();
        let _s2 = p.admit(a, 2).unwrap();
        assert!(p.admit(a, 2).is_none());
        let _s3 = p.admit(b, 2).unwrap();
        drop(s1);
        assert_eq!(p.open(a), 1);
        assert!(p.admit(a, 2).is_some());
    }
}
