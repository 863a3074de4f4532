//! The body of a WebDAV answer: dav-server's, except that a panic while it is produced (a
//! GET streams the file from inside dav-server) becomes an error that ends the answer and
//! is logged, instead of unwinding through the connection's task.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

pub struct DavBody {
    inner: dav_server::body::Body,
    failed: bool,
}

impl DavBody {
    pub fn empty() -> Self {
        dav_server::body::Body::empty().into()
    }
}

impl From<dav_server::body::Body> for DavBody {
    fn from(inner: dav_server::body::Body) -> Self {
        DavBody { inner, failed: false }
    }
}

impl From<String> for DavBody {
    fn from(s: String) -> Self {
        dav_server::body::Body::from(s).into()
    }
}

impl From<Bytes> for DavBody {
    fn from(b: Bytes) -> Self {
        dav_server::body::Body::from(b).into()
    }
}

impl From<&str> for DavBody {
    fn from(s: &str) -> Self {
        dav_server::body::Body::from(s).into()
    }
}

/// The text of a panic's payload, for the log.
pub fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(String::as_str)).unwrap_or("panic")
}

impl Body for DavBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let inner = &mut this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll_frame(cx))) {
            Ok(p) => p,
            Err(panic) => {
                this.failed = true;
                tracing::error!(panic = panic_message(&*panic), "dav-server panicked while sending a body");
                Poll::Ready(Some(Err(std::io::Error::other("the answer failed while being sent"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body handed to dav-server: a PUT's as it streams in, any other already read
/// (and checked) by the front end.
pub enum RequestBody<B> {
    Streaming(Pin<Box<B>>),
    Read(Option<Bytes>),
}

impl<B: Body<Data = Bytes>> Body for RequestBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            RequestBody::Streaming(b) => b.as_mut().poll_frame(cx),
            RequestBody::Read(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Streaming(b) => b.is_end_stream(),
            RequestBody::Read(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Streaming(b) => b.size_hint(),
            RequestBody::Read(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
