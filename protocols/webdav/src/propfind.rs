//! PROPFIND Depth 1 of a folder, answered here: dav-server spends about three quarters of
//! such a request building an XML element tree per property and writing it through xml-rs
//! (measured with perf on a folder of 10,000 files; the core's listing was under 5%). The
//! answer is written straight into one buffer, byte for byte what dav-server writes, from the
//! same listing (pages of a thousand, one read each).
//!
//! Only the plain cases come here: an empty body or `<allprop/>` alone (rclone's, but for its
//! ownCloud and Nextcloud vendors), or `<prop>` naming properties whose values come from the
//! entry alone, in any namespace and form (rclone's other bodies, davfs2's in neon's form
//! with Apache's `executable`, `D:`-prefixed ones, Microsoft's), not quota or the principal;
//! a folder; no lock in the store (so every `lockdiscovery` is empty); and no dead property
//! on any entry. A client whose User-Agent names Microsoft gets Microsoft's properties with
//! `allprop`, as from dav-server. Anything else goes to dav-server, which answers it as
//! before.

use std::fmt::Write as _;

use davit_storage::{Item, Principal};
use http::{HeaderValue, Response, StatusCode, header};

use crate::{Body, WebDav};

const SUPPORTED_LOCK: &str = "<D:supportedlock><D:lockentry><D:lockscope><D:exclusive></D:exclusive></D:lockscope>\
<D:locktype><D:write></D:write></D:locktype></D:lockentry><D:lockentry><D:lockscope><D:shared></D:shared>\
</D:lockscope><D:locktype><D:write></D:write></D:locktype></D:lockentry></D:supportedlock>";

/// A property as dav-server writes it into a listing answered here.
#[derive(Debug, Clone, PartialEq)]
enum Live {
    CreationDate,
    ContentLength,
    ContentType,
    Etag,
    LastModified,
    LockDiscovery,
    /// dav-server writes the request's own element back: its name with the request's prefix,
    /// and, on it, every namespace declared on the request that the answer has not declared.
    ResourceType {
        name: String,
        decls: String,
    },
    SupportedLock,
    /// Microsoft's `Win32CreationTime`, `Win32FileAttributes` and `Win32LastModifiedTime`
    /// (`Win32LastAccessTime` has no value here: no access time is kept).
    Win32Created,
    Win32Attributes,
    Win32Modified,
    /// A property dav-server has no value for on the entries answered here, which it leaves
    /// out (no 404 propstat): `displayname` and `getcontentlanguage` and those of other
    /// namespaces are looked up as dead properties (none is stored on these entries); DAV
    /// names it does not know have none, nor Apache's `executable` (davfs2 asks for it),
    /// which the WebDAV file system's metadata does not implement (if it did, this would be
    /// its value).
    Unset,
}

/// What a PROPFIND this module answers asks for.
#[derive(Debug, PartialEq)]
struct Asked {
    /// In the request's order.
    props: Vec<Live>,
    /// The namespaces dav-server declares on the answer's root: DAV: and those of the
    /// properties asked for that it knows, by prefix (xml-rs writes them in that order).
    root: Vec<(&'static str, &'static str)>,
}

const DAV: &str = "DAV:";
const MICROSOFT: &str = "urn:schemas-microsoft-com:";
/// The namespaces dav-server gives a prefix of its own on the answer's root.
const KNOWN: [(&str, &str); 4] = [
    ("A", "http://apache.org/dav/props/"),
    ("Z", MICROSOFT),
    ("nc", "http://nextcloud.org/ns"),
    ("oc", "http://owncloud.org/ns"),
];

/// dav-server's `allprop`, in its order; for a Microsoft client (Windows' mini-redirector
/// asks `allprop`), with Microsoft's properties.
fn allprop(microsoft: bool) -> Asked {
    let mut props = vec![
        Live::CreationDate,
        Live::ContentLength,
        Live::ContentType,
        Live::Etag,
        Live::LastModified,
        Live::LockDiscovery,
        Live::ResourceType { name: "D:resourcetype".into(), decls: String::new() },
        Live::SupportedLock,
    ];
    let mut root = vec![("D", DAV)];
    if microsoft {
        props.extend([Live::Win32Created, Live::Win32Attributes, Live::Win32Modified]);
        root.push(("Z", MICROSOFT));
    }
    Asked { props, root }
}

/// Which of PROPFIND's three requests a body makes (RFC 4918 §9.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Asks {
    /// Every property with its value (also an empty body).
    #[default]
    AllProp,
    /// The names of the properties only.
    PropName,
    /// The properties it names.
    Prop,
}

/// What a PROPFIND body asks for. dav-server adds every dead property, with its value, to
/// each of the three answers (see `DriveFs::get_props`). A body that is not a propfind is
/// dav-server's to refuse.
pub(crate) fn asks(body: &[u8]) -> Asks {
    let Ok(root) = xmltree::Element::parse(body) else { return Asks::AllProp };
    let first = elements(&root).into_iter().find(|e| e.namespace.as_deref() == Some(DAV));
    match first.map(|e| e.name.as_str()) {
        Some("prop") => Asks::Prop,
        Some("propname") => Asks::PropName,
        _ => Asks::AllProp,
    }
}

/// What a PROPFIND body asks for, if it is one answered here (`microsoft`: whether the
/// client's User-Agent names Microsoft, as dav-server asks).
fn plain_request(body: &[u8], microsoft: bool) -> Option<Asked> {
    // Empty, not blank: dav-server refuses a body of whitespace (not XML) with 400.
    if body.is_empty() {
        return Some(allprop(microsoft));
    }
    let root = xmltree::Element::parse(body).ok()?;
    let dav = |e: &xmltree::Element| e.namespace.as_deref() == Some(DAV);
    let children = elements(&root);
    if !(dav(&root) && root.name == "propfind" && children.len() == 1 && dav(children[0])) {
        return None;
    }
    let what = children[0];
    match what.name.as_str() {
        "allprop" if elements(what).is_empty() => Some(allprop(microsoft)),
        "prop" => {
            let asked = elements(what);
            let mut root = vec![("D", DAV)];
            for (prefix, uri) in KNOWN {
                if asked.iter().any(|e| e.namespace.as_deref() == Some(uri)) {
                    root.push((prefix, uri));
                }
            }
            root.sort();
            let props = asked.into_iter().map(|e| property(e, &root)).collect::<Option<_>>()?;
            Some(Asked { props, root })
        }
        _ => None,
    }
}

fn elements(e: &xmltree::Element) -> Vec<&xmltree::Element> {
    e.children.iter().filter_map(|c| c.as_element()).collect()
}

/// One property asked for, if dav-server would write it as this module does (`root`: the
/// namespaces declared on the answer's root). Those with a value that depends on more than
/// the entry (quota, the principal) are dav-server's.
fn property(e: &xmltree::Element, root: &[(&str, &str)]) -> Option<Live> {
    // No content at all: xmltree drops XML whitespace, and dav-server writes back any other
    // text of `resourcetype` (a no-break space, say).
    if !e.attributes.is_empty() || !e.children.is_empty() {
        return None;
    }
    match e.namespace.as_deref() {
        Some(DAV) => {}
        Some(MICROSOFT) => {
            return Some(match e.name.as_str() {
                "Win32CreationTime" => Live::Win32Created,
                "Win32FileAttributes" => Live::Win32Attributes,
                "Win32LastModifiedTime" => Live::Win32Modified,
                _ => Live::Unset,
            });
        }
        _ => return Some(Live::Unset),
    }
    Some(match e.name.as_str() {
        "creationdate" => Live::CreationDate,
        "getcontentlength" => Live::ContentLength,
        "getcontenttype" => Live::ContentType,
        "getetag" => Live::Etag,
        "getlastmodified" => Live::LastModified,
        "lockdiscovery" => Live::LockDiscovery,
        "supportedlock" => Live::SupportedLock,
        "resourcetype" => {
            let name = match &e.prefix {
                Some(p) => format!("{p}:resourcetype"),
                None => "resourcetype".into(),
            };
            let mut decls = String::new();
            for (p, u) in e.namespaces.iter().flat_map(|ns| ns.0.iter()) {
                let declared = root.iter().any(|(rp, ru)| rp == p && ru == u);
                if matches!(p.as_str(), "xml" | "xmlns") || (p.is_empty() && u.is_empty()) || declared {
                    continue;
                }
                // Written as they came: nothing here that xml-rs escapes in an attribute.
                if u.contains(['&', '<', '>', '"', '\'', '\n', '\r']) {
                    return None;
                }
                match p.as_str() {
                    "" => write!(decls, " xmlns=\"{u}\"").ok()?,
                    p => write!(decls, " xmlns:{p}=\"{u}\"").ok()?,
                }
            }
            Live::ResourceType { name, decls }
        }
        "quota-available-bytes" | "quota-used-bytes" | "current-user-principal" => return None,
        _ => Live::Unset,
    })
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

/// One entry's `<D:response>`: its properties in `props`' order, as dav-server writes them
/// (one 200 propstat of those it has, none when it has none). `name`: the last segment of
/// the entry's path (a leading dot makes it hidden for Windows).
fn push_response(out: &mut String, href: &str, name: &str, item: &Item, props: &[Live]) {
    out.push_str("<D:response><D:href>");
    push_href(out, href);
    out.push_str("</D:href>");
    let mut any = false;
    // Windows' listing has it twice (`getlastmodified`, `Win32LastModifiedTime`): formatted once.
    let mut modified = None;
    for p in props {
        let has = match p {
            Live::ContentLength => !item.is_folder(),
            Live::Etag => !item.etag.is_empty(),
            Live::Unset => false,
            _ => true,
        };
        if !has {
            continue;
        }
        if !any {
            out.push_str("<D:propstat><D:prop>");
            any = true;
        }
        match p {
            Live::CreationDate => {
                out.push_str("<D:creationdate>");
                out.push_str(&rfc3339(item.created));
                out.push_str("</D:creationdate>");
            }
            Live::ContentLength => {
                let _ = write!(out, "<D:getcontentlength>{}</D:getcontentlength>", item.size);
            }
            Live::ContentType => {
                out.push_str("<D:getcontenttype>");
                out.push_str(if item.is_folder() { "httpd/unix-directory" } else { guessed_type(&item.name) });
                out.push_str("</D:getcontenttype>");
            }
            Live::Etag => {
                out.push_str("<D:getetag>");
                push_escaped(out, &item.etag);
                out.push_str("</D:getetag>");
            }
            Live::LastModified => {
                out.push_str("<D:getlastmodified>");
                out.push_str(modified.get_or_insert_with(|| davit_http::http_date(item.modified)));
                out.push_str("</D:getlastmodified>");
            }
            Live::LockDiscovery => out.push_str("<D:lockdiscovery></D:lockdiscovery>"),
            Live::ResourceType { name, decls } => {
                let inner = if item.is_folder() { "<D:collection></D:collection>" } else { "" };
                let _ = write!(out, "<{name}{decls}>{inner}</{name}>");
            }
            Live::SupportedLock => out.push_str(SUPPORTED_LOCK),
            Live::Win32Created => {
                let _ =
                    write!(out, "<Z:Win32CreationTime>{}</Z:Win32CreationTime>", davit_http::http_date(item.created));
            }
            Live::Win32Attributes => {
                // dav-server's: hidden for a leading dot, then directory or archive.
                let hidden = if name.starts_with('.') { 0x2 } else { 0 };
                let kind = if item.is_folder() { 0x10 } else { 0x20 };
                let _ = write!(out, "<Z:Win32FileAttributes>{:08x}</Z:Win32FileAttributes>", hidden | kind);
            }
            Live::Win32Modified => {
                out.push_str("<Z:Win32LastModifiedTime>");
                out.push_str(modified.get_or_insert_with(|| davit_http::http_date(item.modified)));
                out.push_str("</Z:Win32LastModifiedTime>");
            }
            Live::Unset => {}
        }
    }
    if any {
        out.push_str("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>");
    }
    out.push_str("</D:response>");
}

impl WebDav {
    /// The answer to a plain PROPFIND of a folder at Depth 1, or `None` for dav-server to
    /// answer (see the module's comment for which requests are plain).
    pub(crate) async fn propfind_listing(
        &self,
        p: &Principal,
        path: &str,
        prefix: &str,
        body: &[u8],
        user_agent: Option<&str>,
    ) -> Option<Response<Body>> {
        let microsoft = user_agent.is_some_and(|ua| ua.contains("Microsoft"));
        let Asked { props, root } = plain_request(body, microsoft)?;
        if self.storage.any_locks().await.unwrap_or(true) {
            return None;
        }
        let folder = self.storage.stat(p, path).await.ok().filter(|i| i.is_folder() && i.props.is_empty())?;
        let base = format!("{prefix}{}", path.trim_end_matches('/'));
        let mut out = String::with_capacity(64 * 1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><D:multistatus");
        for (prefix, uri) in root {
            let _ = write!(out, " xmlns:{prefix}=\"{uri}\"");
        }
        out.push('>');
        let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        let folder_href = format!("{base}/");
        push_response(&mut out, &folder_href, name, &folder, &props);
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
                push_response(&mut out, &href, &item.name, item, &props);
            }
            if done {
                break;
            }
        }
        out.push_str("</D:multistatus>");
        // Its length is known: sent as such, not in chunks as dav-server's stream is.
        let len = HeaderValue::from(out.len());
        let mut r = Response::new(Body::from(out));
        *r.status_mut() = StatusCode::MULTI_STATUS;
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
        h.insert(header::CONTENT_LENGTH, len);
        if !path.ends_with('/') {
            // As dav-server does when a folder is asked for without its slash.
            let mut location = String::new();
            push_href(&mut location, &folder_href);
            h.insert(header::CONTENT_LOCATION, HeaderValue::from_str(&location).ok()?);
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_hrefs() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_600_000_000 * 1_000_000_000 + 5), "2020-09-13T12:26:40Z");
        assert_eq!(rfc3339(951_782_400 * 1_000_000_000), "2000-02-29T00:00:00Z");
        let mut h = String::new();
        push_href(&mut h, "/dav/d x/a&b é.txt");
        assert_eq!(h, "/dav/d%20x/a%26b%20%C3%A9.txt");
        assert_eq!(guessed_type("a.txt"), "text/plain");
        assert_eq!(guessed_type("noext"), "application/octet-stream");
    }

    fn rt(name: &str, decls: &str) -> Live {
        Live::ResourceType { name: name.into(), decls: decls.into() }
    }

    fn props(body: &str) -> Option<Vec<Live>> {
        plain_request(body.as_bytes(), false).map(|a| a.props)
    }

    /// Which bodies are answered here, and what dav-server would write of each property.
    /// tests/webdav.rs compares the answers to dav-server's, byte for byte.
    #[test]
    fn plain_requests() {
        let all = Some(allprop(false));
        assert_eq!(plain_request(b"", false), all);
        assert_eq!(
            plain_request(br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#, false),
            all
        );
        assert_eq!(plain_request(br#"<propfind xmlns="DAV:"> <allprop/> </propfind>"#, false), all);
        assert_eq!(
            props(
                r#"<D:propfind xmlns:D="DAV:"><D:prop> <D:getetag/><D:resourcetype/><D:displayname/></D:prop></D:propfind>"#
            ),
            Some(vec![Live::Etag, rt("D:resourcetype", ""), Live::Unset])
        );
        // neon's form (davfs2, litmus): the default namespace, declared on each property;
        // Apache's namespace on the answer's root.
        let davfs2 = plain_request(
            br#"<propfind xmlns="DAV:"><prop><getetag xmlns="DAV:"/><resourcetype xmlns="DAV:"/><executable xmlns="http://apache.org/dav/props/"/></prop></propfind>"#,
            false,
        )
        .unwrap();
        assert_eq!(davfs2.props, vec![Live::Etag, rt("resourcetype", r#" xmlns="DAV:""#), Live::Unset]);
        assert_eq!(davfs2.root, vec![("A", "http://apache.org/dav/props/"), ("D", DAV)]);
        // rclone's: another prefix for DAV:, ownCloud's properties (unset here), and the
        // namespaces the answer's root does not declare written again on `resourcetype`.
        let rclone = plain_request(
            br#"<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns"><d:prop><d:displayname /><d:resourcetype /><oc:checksums /></d:prop></d:propfind>"#,
            false,
        )
        .unwrap();
        assert_eq!(
            rclone.props,
            vec![
                Live::Unset,
                rt("d:resourcetype", r#" xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns""#),
                Live::Unset
            ]
        );
        assert_eq!(rclone.root, vec![("D", DAV), ("oc", "http://owncloud.org/ns")]);
        assert_eq!(
            props(
                r#"<D:propfind xmlns:D="DAV:" xmlns="DAV:"><D:prop><D:resourcetype/><resourcetype/><creationdate/><D:x/></D:prop></D:propfind>"#
            ),
            Some(vec![
                rt("D:resourcetype", r#" xmlns="DAV:""#),
                rt("resourcetype", r#" xmlns="DAV:""#),
                Live::CreationDate,
                Live::Unset
            ])
        );
        assert_eq!(props(r#"<D:propfind xmlns:D="DAV:"><D:prop/></D:propfind>"#), Some(vec![]));
        // Windows' mini-redirector asks `allprop`: dav-server adds Microsoft's properties for a
        // User-Agent that names Microsoft; asked by name, they are for anyone.
        let windows = plain_request(b"", true).unwrap();
        assert_eq!(windows.props[8..], [Live::Win32Created, Live::Win32Attributes, Live::Win32Modified]);
        assert_eq!(windows.root, vec![("D", DAV), ("Z", MICROSOFT)]);
        assert_eq!(plain_request(br#"<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#, true), Some(windows));
        assert_eq!(
            props(
                r#"<D:propfind xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:prop><Z:Win32FileAttributes/><Z:Win32LastAccessTime/><Z:Win32CreationTime/></D:prop></D:propfind>"#
            ),
            Some(vec![Live::Win32Attributes, Live::Unset, Live::Win32Created])
        );
        for other in [
            // Values not the entry's alone (quota, the principal), a property with content,
            // anything but one `prop` or `allprop`: dav-server's.
            r#"<D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/></D:prop></D:propfind>"#,
            r#"<D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/></D:prop></D:propfind>"#,
            r#"<D:propfind xmlns:D="DAV:"><D:prop><D:getetag>x</D:getetag></D:prop></D:propfind>"#,
            "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype>\u{a0}</D:resourcetype></D:prop></D:propfind>",
            r#"<D:propfind xmlns:D="DAV:" xmlns:x="it's"><D:prop><D:resourcetype/></D:prop></D:propfind>"#,
            "<D:propfind xmlns:D=\"DAV:\" xmlns:x=\"a&#10;b\"><D:prop><D:resourcetype/></D:prop></D:propfind>",
            r#"<D:propfind xmlns:D="DAV:"><D:allprop/><D:include><D:x/></D:include></D:propfind>"#,
            r#"<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>"#,
            "<not xml",
            " \n",
        ] {
            assert_eq!(props(other), None, "{other}");
        }
    }
}
