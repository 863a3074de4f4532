//! Strict parsers of the request headers dav-server would otherwise parse itself.
//!
//! dav-server's own parsers panic on some malformed values (an unbalanced `<` or `[` in an
//! `If` header, a lone `"` as an entity tag, a range end of 2^64-1), silently ignore others
//! (an `If` header it cannot parse is treated as absent, `Overwrite: f` as `T`) and send
//! overlapping ranges as often as asked. So every such header is checked here first: a
//! malformed one is refused with 400, and a valid one is handed on in a canonical form that
//! dav-server parses as meant. Nothing here allocates more than a bounded multiple of the
//! value's length, and nothing here may panic, whatever the bytes (see the property test in
//! `tests/security/dav.rs`).

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

/// An `If` header longer than this is refused: no client needs more.
pub const MAX_IF_LEN: usize = 16 * 1024;
/// Conditions in one `If` header, across its lists, that cost a lookup: state tokens and
/// entity tags (but the empty one, which matches nothing).
pub const MAX_IF_CONDITIONS: usize = 64;
/// Ranges one answer sends after overlapping and adjacent ones are merged; more are
/// answered with the whole file, as RFC 9110 §14.2 allows.
pub const MAX_RANGES: usize = 16;

/// A request refused before dav-server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
}

impl Refusal {
    fn bad(reason: impl Into<String>) -> Self {
        Refusal { status: StatusCode::BAD_REQUEST, reason: reason.into() }
    }
}

mod fields;
mod if_header;
mod range;
#[cfg(test)]
mod tests;

pub use fields::*;
pub use if_header::*;
pub use range::*;

/// What the checks found, for the front end to act on.
#[derive(Debug, Default)]
pub struct Checked {
    pub if_header: Option<IfHeader>,
    pub depth: Option<Depth>,
    /// The one `Range` value of a GET or HEAD, to be planned once the file's size is known
    /// (None: no Range, or one to ignore, already removed).
    pub ranges: Option<Vec<RangeSpec>>,
}

fn one<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a HeaderValue>, Refusal> {
    let mut all = headers.get_all(name).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(Refusal::bad(format!("{name}: at most one")));
    }
    Ok(first)
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), Refusal> {
    let v = HeaderValue::from_str(value).map_err(|_| Refusal::bad(format!("{name}: malformed")))?;
    headers.insert(name, v);
    Ok(())
}

/// Checks one header value as [`check_request`] does, by name (`prefix` for Destination;
/// Range only parsed and planned against a few sizes): for the property test, which feeds
/// mutated values through every parser here. `Err` is the refusal the request would get.
pub fn check_value(name: &str, value: &[u8], prefix: &str) -> Result<(), Refusal> {
    match name.to_ascii_lowercase().as_str() {
        "if" => parse_if(value).map(|_| ()).map_err(Refusal::bad),
        "depth" => parse_depth(value).map(|_| ()).map_err(Refusal::bad),
        "overwrite" => parse_overwrite(value).map(|_| ()).map_err(Refusal::bad),
        "timeout" => parse_timeout(value).map(|_| ()).map_err(Refusal::bad),
        "lock-token" => parse_lock_token(value).map(|_| ()).map_err(Refusal::bad),
        "destination" => parse_destination(value, prefix).map(|_| ()),
        "if-match" | "if-none-match" => parse_etag_list(value, name).map_err(Refusal::bad),
        "if-range" => parse_if_range(value).map_err(Refusal::bad),
        "range" => {
            if let Some(specs) = parse_range(value) {
                for size in [0, 1, 1000, 5 << 20, u64::MAX] {
                    let _ = range_for_dav_server(&plan_ranges(&specs, size), size);
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks the request line and every header dav-server would parse; puts each checked
/// header back in the canonical form dav-server reads as meant. A refusal is answered
/// before dav-server runs.
pub fn check_request(method: &Method, path: &str, headers: &mut HeaderMap, prefix: &str) -> Result<Checked, Refusal> {
    check_path(path)?;
    let mut checked = Checked::default();
    let m = method.as_str();
    if m == "PATCH" {
        // dav-server's SabreDAV-style partial update would replace the whole file here.
        return Err(Refusal { status: StatusCode::METHOD_NOT_ALLOWED, reason: "PATCH is not supported".into() });
    }
    if m == "PUT" && headers.contains_key(header::CONTENT_RANGE) {
        // RFC 9110 §14.5: a server that does not do partial PUT must refuse it, or it would
        // store the part as the whole file.
        return Err(Refusal::bad("Content-Range: partial PUT is not supported"));
    }
    if let Some(v) = one(headers, &HeaderName::from_static("if"))? {
        let h = parse_if(v.as_bytes()).map_err(Refusal::bad)?;
        match h.for_dav_server() {
            Some(canonical) => set(headers, "if", &canonical)?,
            None => {
                headers.remove("if");
            }
        }
        checked.if_header = Some(h);
    }
    if let Some(v) = one(headers, &HeaderName::from_static("depth"))? {
        let d = parse_depth(v.as_bytes()).map_err(Refusal::bad)?;
        let canonical = match d {
            Depth::Zero => "0",
            Depth::One => "1",
            Depth::Infinity => "infinity",
        };
        set(headers, "depth", canonical)?;
        checked.depth = Some(d);
    }
    if let Some(v) = one(headers, &HeaderName::from_static("overwrite"))? {
        let o = parse_overwrite(v.as_bytes()).map_err(Refusal::bad)?;
        set(headers, "overwrite", if o { "T" } else { "F" })?;
    }
    if let Some(v) = one(headers, &HeaderName::from_static("timeout"))? {
        let t = parse_timeout(v.as_bytes()).map_err(Refusal::bad)?;
        set(headers, "timeout", &t)?;
    }
    if let Some(v) = one(headers, &HeaderName::from_static("lock-token"))? {
        let t = parse_lock_token(v.as_bytes()).map_err(Refusal::bad)?;
        set(headers, "lock-token", &format!("<{t}>"))?;
    }
    if let Some(v) = one(headers, &HeaderName::from_static("destination"))? {
        let p = parse_destination(v.as_bytes(), prefix)?;
        set(headers, "destination", &p)?;
    }
    for name in [header::IF_MATCH, header::IF_NONE_MATCH] {
        for v in headers.get_all(&name) {
            parse_etag_list(v.as_bytes(), name.as_str()).map_err(Refusal::bad)?;
        }
    }
    // If-None-Match compares weakly (RFC 9110 §13.1.2): `W/"x"` matches the tag "x", which
    // dav-server, comparing strongly, would not see (a cached copy got no 304).
    let values = || headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok());
    if values().any(|v| v.contains("W/")) {
        let tags: Vec<&str> = values()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/"))
            .filter(|t| !t.is_empty())
            .collect();
        let strong = tags.join(", ");
        parse_etag_list(strong.as_bytes(), "If-None-Match").map_err(Refusal::bad)?;
        set(headers, "if-none-match", &strong)?;
    }
    if let Some(v) = one(headers, &header::IF_RANGE)? {
        parse_if_range(v.as_bytes()).map_err(Refusal::bad)?;
    }
    if m == "GET" || m == "HEAD" {
        let values: Vec<_> = headers.get_all(header::RANGE).iter().collect();
        checked.ranges = match values.as_slice() {
            [v] => parse_range(v.as_bytes()),
            _ => None,
        };
        if checked.ranges.is_none() {
            headers.remove(header::RANGE);
        }
    } else {
        headers.remove(header::RANGE);
    }
    Ok(checked)
}
