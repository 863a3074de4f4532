//! PROPFIND Depth 1 `allprop` of a folder, answered here: dav-server spends about three
//! quarters of such a request building an XML element tree per property and writing it
//! through xml-rs (measured with perf on a folder of 10,000 files; the core's listing was
//! under 5%). The answer is written straight into one buffer, byte for byte what dav-server
//! writes, from the same listing (pages of a thousand, one read each).
//!
//! Only the plain case comes here: an empty body or `<allprop/>` alone, a folder, no lock in
//! the store (so every `lockdiscovery` is empty), no dead property on any entry, and not a
//! Microsoft client (dav-server gives those other properties). Anything else goes to
//! dav-server, which answers it as before.

use std::fmt::Write as _;

use davit_storage::{Item, Principal};
use http::{HeaderValue, Response, StatusCode, header};

use crate::{Body, WebDav};

const SUPPORTED_LOCK: &str = "<D:supportedlock><D:lockentry><D:lockscope><D:exclusive></D:exclusive></D:lockscope>\
<D:locktype><D:write></D:write></D:locktype></D:lockentry><D:lockentry><D:lockscope><D:shared></D:shared>\
</D:lockscope><D:locktype><D:write></D:write></D:locktype></D:lockentry></D:supportedlock>";

/// Whether a PROPFIND body asks for `allprop` and nothing else (an empty body does).
fn is_plain_allprop(body: &[u8]) -> bool {
    if body.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    let Ok(root) = xmltree::Element::parse(body) else { return false };
    let dav = |e: &xmltree::Element| e.namespace.as_deref() == Some("DAV:");
    let children: Vec<&xmltree::Element> = root.children.iter().filter_map(|c| c.as_element()).collect();
    dav(&root)
        && root.name == "propfind"
        && children.len() == 1
        && dav(children[0])
        && children[0].name == "allprop"
        && children[0].children.iter().all(|c| c.as_element().is_none())
}

/// Percent-encodes a path for an href: everything but unreserved characters and `/`.
fn push_href(out: &mut String, path: &str) {
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// `1996-12-19T16:39:57Z` from Unix nanoseconds (RFC 3339, whole seconds, as dav-server).
fn rfc3339(nanos: i64) -> String {
    humantime::format_rfc3339_seconds(davit_http::system_time(nanos)).to_string()
}

/// dav-server's content type of a file in a listing: guessed from the name's extension.
fn guessed_type(name: &str) -> &'static str {
    match name.rsplit_once('.') {
        Some((_, ext)) => mime_guess::from_ext(ext).first_raw().unwrap_or("application/octet-stream"),
        None => "application/octet-stream",
    }
}

fn push_response(out: &mut String, href: &str, item: &Item) {
    out.push_str("<D:response><D:href>");
    push_href(out, href);
    out.push_str("</D:href><D:propstat><D:prop><D:creationdate>");
    out.push_str(&rfc3339(item.created));
    out.push_str("</D:creationdate>");
    if !item.is_folder() {
        let _ = write!(out, "<D:getcontentlength>{}</D:getcontentlength>", item.size);
    }
    out.push_str("<D:getcontenttype>");
    out.push_str(if item.is_folder() { "httpd/unix-directory" } else { guessed_type(&item.name) });
    out.push_str("</D:getcontenttype>");
    if !item.etag.is_empty() {
        out.push_str("<D:getetag>");
        push_escaped(out, &item.etag);
        out.push_str("</D:getetag>");
    }
    out.push_str("<D:getlastmodified>");
    out.push_str(&davit_http::http_date(item.modified));
    out.push_str("</D:getlastmodified><D:lockdiscovery></D:lockdiscovery>");
    out.push_str(if item.is_folder() {
        "<D:resourcetype><D:collection></D:collection></D:resourcetype>"
    } else {
        "<D:resourcetype></D:resourcetype>"
    });
    out.push_str(SUPPORTED_LOCK);
    out.push_str("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>");
}

impl WebDav {
    /// The answer to a plain `allprop` PROPFIND of a folder at Depth 1, or `None` for
    /// dav-server to answer (see the module's comment for which requests are plain).
    pub(crate) async fn propfind_allprop(
        &self,
        p: &Principal,
        path: &str,
        prefix: &str,
        body: &[u8],
        user_agent: Option<&str>,
    ) -> Option<Response<Body>> {
        if user_agent.is_some_and(|ua| ua.contains("Microsoft")) || !is_plain_allprop(body) {
            return None;
        }
        if self.storage.any_locks().await.unwrap_or(true) {
            return None;
        }
        let folder = self.storage.stat(p, path).await.ok().filter(|i| i.is_folder() && i.props.is_empty())?;
        let base = format!("{prefix}{}", path.trim_end_matches('/'));
        let mut out = String::with_capacity(64 * 1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><D:multistatus xmlns:D=\"DAV:\">");
        push_response(&mut out, &format!("{base}/"), &folder);
        let mut after = None;
        let mut href = String::new();
        // Pages of a thousand, each one read: bounded by the folder's size.
        loop {
            let page = self.storage.list(p, path, after.clone(), 1000).await.ok()?;
            let done = page.len() < 1000;
            after = page.last().map(Item::child_key);
            for item in &page {
                if !item.props.is_empty() {
                    return None;
                }
                href.clear();
                href.push_str(&base);
                href.push('/');
                href.push_str(&item.name);
                if item.is_folder() {
                    href.push('/');
                }
                push_response(&mut out, &href, item);
            }
            if done {
                break;
            }
        }
        out.push_str("</D:multistatus>");
        let mut r = Response::new(Body::from(out));
        *r.status_mut() = StatusCode::MULTI_STATUS;
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_hrefs_and_bodies() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_600_000_000 * 1_000_000_000 + 5), "2020-09-13T12:26:40Z");
        assert_eq!(rfc3339(951_782_400 * 1_000_000_000), "2000-02-29T00:00:00Z");
        let mut h = String::new();
        push_href(&mut h, "/dav/d x/a&b é.txt");
        assert_eq!(h, "/dav/d%20x/a%26b%20%C3%A9.txt");
        assert!(is_plain_allprop(b""));
        assert!(is_plain_allprop(br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#));
        assert!(is_plain_allprop(br#"<propfind xmlns="DAV:"> <allprop/> </propfind>"#));
        assert!(!is_plain_allprop(br#"<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>"#));
        assert!(!is_plain_allprop(
            br#"<D:propfind xmlns:D="DAV:"><D:allprop/><D:include><D:x/></D:include></D:propfind>"#
        ));
        assert!(!is_plain_allprop(b"<not xml"));
        assert_eq!(guessed_type("a.txt"), "text/plain");
        assert_eq!(guessed_type("noext"), "application/octet-stream");
    }
}
