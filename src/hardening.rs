//! What keeps browsers safe on the origin that holds sessions: user content never runs as
//! script there, and other sites cannot make a signed-in browser write.
//!
//! Content: every answer gets `X-Content-Type-Options: nosniff` and, unless it is one of
//! davit's own pages, `Content-Security-Policy: sandbox` (no `allow-scripts`: a document
//! runs no script and gets an opaque origin, so it cannot reach our cookies or call the API
//! as the victim). A content answer whose type a browser would render actively (HTML, XML,
//! SVG, script) is also sent as an attachment, for browsers without CSP sandboxing.
//!
//! Writes: a state-changing request that carries credentials a browser attaches on its own
//! (Basic, our cookies) is refused when its `Origin` is another site's.

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// User content and every answer that is not one of our pages: no script, an opaque origin,
/// nothing loaded, not framed. Inline style only, so a text or image document still shows.
pub const SANDBOX_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";
/// davit's own pages (link listings, password and upload forms): not sandboxed (their forms
/// must post from our origin), but they load nothing and post only to us.
pub const PAGE_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Whether a browser would render this type as an active document (one that can run script
/// or pull in other resources). A missing or unreadable type counts: browsers sniff those.
pub fn is_active_type(content_type: Option<&HeaderValue>) -> bool {
    let Some(v) = content_type.and_then(|v| v.to_str().ok()) else { return true };
    // Browsers read a list of types and take the last one, so `image/png, text/html` renders
    // as HTML; a comma anywhere (even quoted) or anything outside the media-type grammar is
    // a type we cannot vouch for.
    if v.contains(',') || !well_formed_media_type(v) {
        return true;
    }
    let essence = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else { return true };
    if kind.is_empty() || sub.is_empty() || kind == "*" || sub == "unknown" {
        return true;
    }
    // Any XML (application/xml, text/xml, image/svg+xml, application/rss+xml, …) may embed
    // XHTML elements with script, or style itself with XSLT.
    sub == "xml" || sub.ends_with("+xml") || {
        matches!(
            essence.as_str(),
            "text/html"
                | "text/xsl"
                | "text/javascript"
                | "text/ecmascript"
                | "text/jscript"
                | "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/xml-dtd"
                | "multipart/x-mixed-replace"
                | "application/x-shockwave-flash"
                | "application/futuresplash"
        )
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// RFC 9110 §8.3.1: token "/" token *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] ).
fn well_formed_media_type(v: &str) -> bool {
    let b = v.trim_matches([' ', '\t']).as_bytes();
    let mut i = 0;
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    let ows = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    if !token(&mut i) || b.get(i) != Some(&b'/') {
        return false;
    }
    i += 1;
    if !token(&mut i) {
        return false;
    }
    loop {
        ows(&mut i);
        if i == b.len() {
            return true;
        }
        if b[i] != b';' {
            return false;
        }
        i += 1;
        ows(&mut i);
        if i == b.len() || b[i] == b';' {
            continue;
        }
        if !token(&mut i) || b.get(i) != Some(&b'=') {
            return false;
        }
        i += 1;
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match b.get(i) {
                    None => return false,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => i += 2,
                    Some(&c) if c == b'\t' || c >= 0x20 && c != 0x7f => i += 1,
                    Some(_) => return false,
                }
            }
        } else if !token(&mut i) {
            return false;
        }
    }
}

/// `attachment`, keeping the parameters (the file name) of what was there.
pub fn attachment(existing: Option<&HeaderValue>) -> HeaderValue {
    existing
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(';'))
        .and_then(|(_, params)| HeaderValue::from_str(&format!("attachment;{params}")).ok())
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// The answer's hardening headers. `content`: the answer carries user content (a GET or HEAD
/// of a file, whatever front end); `own_page`: one of davit's own HTML pages.
pub fn harden(headers: &mut HeaderMap, content: bool, own_page: bool) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let csp = if own_page { PAGE_CSP } else { SANDBOX_CSP };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    if content && !own_page && is_active_type(headers.get(header::CONTENT_TYPE)) {
        let v = attachment(headers.get(header::CONTENT_DISPOSITION));
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
}

/// Subresources of an S3 object whose GET answers XML we generate, not the object.
const S3_GENERATED: &[&str] = &["uploadId", "acl", "tagging", "attributes", "legal-hold", "retention", "torrent"];

/// Whether an S3 GET or HEAD reads an object's content: it names a key and no subresource
/// answered with our own XML. Unknown query parameters count as content, so an oversight
/// only adds a harmless attachment disposition to an XML answer.
pub fn s3_reads_object(path: &str, query: Option<&str>, virtual_host: bool) -> bool {
    let rest = path.trim_start_matches('/');
    let has_key =
        if virtual_host { !rest.is_empty() } else { rest.split_once('/').is_some_and(|(_, k)| !k.is_empty()) };
    let generated = query.is_some_and(|q| {
        q.split('&').map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k)).any(|k| S3_GENERATED.contains(&k))
    });
    has_key && !generated
}

/// `scheme://host:port`, lower case, the port made explicit: what `Origin` is compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// An origin from `scheme://authority[/path…]` (an `Origin` header or `--public-url`).
    pub fn parse(s: &str) -> Option<Origin> {
        let (scheme, rest) = s.trim().split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        Origin::from_parts(scheme, authority)
    }

    /// From a scheme and a Host header value (`host`, `host:port`, `[v6]:port`).
    pub fn from_parts(scheme: &str, authority: &str) -> Option<Origin> {
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') && (!h.contains(':') || h.ends_with(']')) => {
                (h, if p.is_empty() { default } else { p.parse().ok()? })
            }
            _ => (authority, default),
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin { scheme, host: host.to_ascii_lowercase(), port })
    }
}

/// Methods that change nothing (PROPFIND only reads), so need no origin check.
fn is_safe(method: &Method) -> bool {
    matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS" | "PROPFIND")
}

/// Credentials a browser sends on its own to a site, whichever site made the request: Basic
/// from its cache, our cookies (session, refresh, link password). A Bearer token is sent
/// only by code that holds it, and a cross-site script cannot add one without a CORS
/// preflight we never grant.
fn has_ambient_credentials(headers: &HeaderMap) -> bool {
    match headers.get(header::AUTHORIZATION) {
        Some(v) => !v.as_bytes().get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"bearer ")),
        None => headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|c| c.trim_start().starts_with("davit_")),
    }
}

/// Whether the request must be refused as cross-site: it changes state, rides on ambient
/// credentials, and names an origin that is not ours (`null`, from sandboxed documents and
/// privacy redirects, is not ours either). `own`: the configured public origin, else the
/// request's scheme and Host.
pub fn is_cross_site(
    method: &Method,
    headers: &HeaderMap,
    own: Option<&Origin>,
    secure: bool,
    host: Option<&str>,
) -> bool {
    if is_safe(method) || !has_ambient_credentials(headers) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return false };
    let theirs = origin.to_str().ok().and_then(Origin::parse);
    let ours = match own {
        Some(o) => Some(o.clone()),
        None => host.and_then(|h| Origin::from_parts(if secure { "https" } else { "http" }, h)),
    };
    match (theirs, ours) {
        (Some(t), Some(o)) => t != o,
        _ => true,
    }
}

/// The REST API's one form endpoint: the verification link's page posts its button here
/// (`application/x-www-form-urlencoded`, the token after the prefix).
pub const FORM_POST_PREFIX: &str = "/api/v1/auth/verify-link/";

/// Whether a POST to the form endpoint must be refused as not coming from our own page. A
/// form is the one kind of request another site can make a browser send without a CORS
/// preflight, and this one carries no credentials for `is_cross_site` to notice; so it is
/// same-origin only: its `Origin` must be ours, or, from a browser that sends none, its
/// `Sec-Fetch-Site` must say `same-origin`. Without either the request is refused too: the
/// page is ours, so every browser that shows it can post it with them.
pub fn is_foreign_form_post(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    own: Option<&Origin>,
    secure: bool,
    host: Option<&str>,
) -> bool {
    if method != Method::POST || !path.starts_with(FORM_POST_PREFIX) {
        return false;
    }
    let ours = match own {
        Some(o) => Some(o.clone()),
        None => host.and_then(|h| Origin::from_parts(if secure { "https" } else { "http" }, h)),
    };
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let theirs = origin.to_str().ok().and_then(Origin::parse);
            !matches!((theirs, ours), (Some(t), Some(o)) if t == o)
        }
        None => headers.get("sec-fetch-site").is_none_or(|v| v.as_bytes() != b"same-origin"),
    }
}

/// The refusal's words, the same for every front end.
pub const CROSS_SITE: &str = "a request from another site cannot change anything here with your browser's credentials";

pub const CROSS_SITE_STATUS: StatusCode = StatusCode::FORBIDDEN;

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn active_types() {
        for t in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "application/xhtml+xml",
            "image/svg+xml",
            "text/xml",
            "application/xml",
            "application/rss+xml",
            "application/javascript",
            "text/xsl",
            "multipart/x-mixed-replace; boundary=x",
            "nonsense",
            "*/*",
            "application/unknown",
            "",
            "text/plain, text/html",
            "image/png;,text/html",
            "image/png; a=\"x,y\"",
            "text/plain text/html",
            "text/plain; <html>",
            "image/png;a=b c",
            "image//png",
        ] {
            assert!(is_active_type(Some(&ct(t))), "{t}");
        }
        assert!(is_active_type(None), "no type: browsers sniff");
        for t in [
            "text/plain",
            "image/png",
            "application/pdf",
            "application/json",
            "application/octet-stream",
            "video/mp4",
            "text/plain; charset=utf-8",
            "text/plain;charset=\"utf-8\"; format=flowed",
            "image/png;",
            " image/png ; q=1 ",
        ] {
            assert!(!is_active_type(Some(&ct(t))), "{t}");
        }
    }

    #[test]
    fn attachment_keeps_the_file_name() {
        assert_eq!(attachment(None), "attachment");
        assert_eq!(attachment(Some(&ct("inline"))), "attachment");
        assert_eq!(attachment(Some(&ct("inline; filename=\"a.html\""))), "attachment; filename=\"a.html\"");
        assert_eq!(
            attachment(Some(&ct("attachment; filename*=UTF-8''%C3%A9.svg"))),
            "attachment; filename*=UTF-8''%C3%A9.svg"
        );
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct("text/plain"));
        harden(&mut h, true, false);
        assert!(h.get(header::CONTENT_DISPOSITION).is_none(), "text is shown, not forced to download");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], SANDBOX_CSP);
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct("text/html"));
        harden(&mut h, true, true);
        assert!(h.get(header::CONTENT_DISPOSITION).is_none(), "our pages are shown");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], PAGE_CSP);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[test]
    fn s3_object_reads() {
        assert!(s3_reads_object("/bkt/a.html", None, false));
        assert!(s3_reads_object("/bkt/a.html", Some("response-content-type=text%2Fhtml&X-Amz-Signature=x"), false));
        assert!(s3_reads_object("/a.html", Some("x-id=GetObject"), true));
        assert!(!s3_reads_object("/bkt", Some("list-type=2"), false));
        assert!(!s3_reads_object("/bkt/", None, false));
        assert!(!s3_reads_object("/", None, true));
        assert!(!s3_reads_object("/", None, false));
        assert!(!s3_reads_object("/bkt/big.bin", Some("uploadId=abc"), false));
        assert!(!s3_reads_object("/bkt/a", Some("tagging"), false));
    }

    #[test]
    fn origins() {
        let o = |s| Origin::parse(s).unwrap();
        assert_eq!(o("https://Example.com"), o("https://example.com:443/"));
        assert_eq!(o("http://127.0.0.1:8080"), Origin::from_parts("http", "127.0.0.1:8080").unwrap());
        assert_ne!(o("http://example.com"), o("https://example.com"));
        assert_ne!(o("http://example.com:8080"), o("http://example.com"));
        assert_eq!(o("http://[::1]:8080"), Origin::from_parts("http", "[::1]:8080").unwrap());
        assert_eq!(o("http://[::1]"), Origin::from_parts("http", "[::1]:80").unwrap());
        assert!(Origin::parse("null").is_none());
        assert!(Origin::parse("ftp://x").is_none());
        assert_eq!(o("https://files.example.com/davit/"), o("https://files.example.com"));
    }

    #[test]
    fn form_posts_are_same_origin_only() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
            }
            m
        };
        let host = Some("127.0.0.1:8080");
        let path = "/api/v1/auth/verify-link/7.abc";
        let post = Method::POST;
        let ours = ("origin", "http://127.0.0.1:8080");
        assert!(!is_foreign_form_post(&post, path, &h(&[ours]), None, false, host));
        assert!(is_foreign_form_post(&post, path, &h(&[("origin", "https://evil.example")]), None, false, host));
        assert!(is_foreign_form_post(&post, path, &h(&[("origin", "null")]), None, false, host));
        assert!(is_foreign_form_post(&post, path, &h(&[]), None, false, host), "no proof of origin");
        assert!(!is_foreign_form_post(&post, path, &h(&[("sec-fetch-site", "same-origin")]), None, false, host));
        assert!(is_foreign_form_post(&post, path, &h(&[("sec-fetch-site", "cross-site")]), None, false, host));
        assert!(is_foreign_form_post(&post, path, &h(&[ours]), None, true, host), "scheme counts");
        let public = Origin::parse("https://files.example.com").unwrap();
        assert!(is_foreign_form_post(&post, path, &h(&[ours]), Some(&public), false, host), "the public URL decides");
        assert!(!is_foreign_form_post(&Method::GET, path, &h(&[]), None, false, host), "the page itself is a GET");
        assert!(!is_foreign_form_post(&post, "/api/v1/auth/verify", &h(&[]), None, false, host), "JSON endpoints");
    }

    #[test]
    fn cross_site_writes() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
            }
            m
        };
        let basic = ("authorization", "Basic YTpi");
        let evil = ("origin", "https://evil.example");
        let ours = ("origin", "http://127.0.0.1:8080");
        let host = Some("127.0.0.1:8080");
        let post = Method::POST;
        assert!(is_cross_site(&post, &h(&[basic, evil]), None, false, host));
        assert!(!is_cross_site(&post, &h(&[basic, ours]), None, false, host));
        assert!(is_cross_site(&post, &h(&[basic, ours]), None, true, host), "scheme counts");
        assert!(
            !is_cross_site(&post, &h(&[basic]), None, false, host),
            "no Origin: not a browser's cross-site request"
        );
        assert!(!is_cross_site(&post, &h(&[("authorization", "Bearer t"), evil]), None, false, host));
        assert!(is_cross_site(&post, &h(&[("cookie", "a=1; davit_access=t"), evil]), None, false, host));
        assert!(!is_cross_site(&post, &h(&[("cookie", "other=1"), evil]), None, false, host), "no credentials");
        assert!(is_cross_site(&post, &h(&[basic, ("origin", "null")]), None, false, host));
        assert!(!is_cross_site(&Method::GET, &h(&[basic, evil]), None, false, host));
        let propfind = Method::from_bytes(b"PROPFIND").unwrap();
        assert!(!is_cross_site(&propfind, &h(&[basic, evil]), None, false, host));
        let put = Method::PUT;
        let public = Origin::parse("https://files.example.com").unwrap();
        assert!(!is_cross_site(
            &put,
            &h(&[basic, ("origin", "https://files.example.com")]),
            Some(&public),
            false,
            host
        ));
        assert!(is_cross_site(&put, &h(&[basic, ours]), Some(&public), false, host), "the public URL decides when set");
    }
}
