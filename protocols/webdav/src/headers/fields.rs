//! The other WebDAV headers (RFC 4918 §10) and the entity-tag headers of RFC 9110.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Zero,
    One,
    Infinity,
}

fn ascii(value: &[u8], name: &str) -> Result<String, String> {
    match std::str::from_utf8(value) {
        Ok(s) if s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) => {
            Ok(s.trim_matches([' ', '\t']).to_owned())
        }
        _ => Err(format!("{name}: only visible ASCII is allowed")),
    }
}

/// `Depth: 0 | 1 | infinity`.
pub fn parse_depth(value: &[u8]) -> Result<Depth, String> {
    match ascii(value, "Depth")?.to_ascii_lowercase().as_str() {
        "0" => Ok(Depth::Zero),
        "1" => Ok(Depth::One),
        "infinity" => Ok(Depth::Infinity),
        _ => Err("Depth: 0, 1 or infinity".into()),
    }
}

/// `Overwrite: T | F`.
pub fn parse_overwrite(value: &[u8]) -> Result<bool, String> {
    match ascii(value, "Overwrite")?.as_str() {
        "T" | "t" => Ok(true),
        "F" | "f" => Ok(false),
        _ => Err("Overwrite: T or F".into()),
    }
}

/// `Timeout: 1#("Second-" 1*DIGIT | "Infinite")`, in the form dav-server reads (no spaces;
/// seconds beyond what it counts are capped, as the server caps timeouts anyway).
pub fn parse_timeout(value: &[u8]) -> Result<String, String> {
    let s = ascii(value, "Timeout")?;
    let mut out = Vec::new();
    for word in s.split(',').map(|w| w.trim_matches([' ', '\t'])).filter(|w| !w.is_empty()) {
        if word.eq_ignore_ascii_case("infinite") {
            out.push("Infinite".to_owned());
        } else if word.len() > 7 && word[..7].eq_ignore_ascii_case("second-") {
            let digits = &word[7..];
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err("Timeout: Second-<digits> or Infinite".into());
            }
            let secs = digits.parse::<u32>().unwrap_or(u32::MAX);
            out.push(format!("Second-{secs}"));
        } else {
            return Err("Timeout: Second-<digits> or Infinite".into());
        }
        if out.len() > 8 {
            return Err("Timeout: too many values".into());
        }
    }
    if out.is_empty() {
        return Err("Timeout: no value".into());
    }
    Ok(out.join(","))
}

/// `Lock-Token: <absolute-URI>` (a Coded-URL): the token.
pub fn parse_lock_token(value: &[u8]) -> Result<String, String> {
    let s = ascii(value, "Lock-Token")?;
    let t = s.strip_prefix('<').and_then(|s| s.strip_suffix('>')).ok_or("Lock-Token: <token>")?;
    if !is_absolute_uri(t) || t.contains(['<', '>']) {
        return Err("Lock-Token: the token must be an absolute URI".into());
    }
    Ok(t.to_owned())
}

/// `Destination` (an absolute URI or path): its URL path, still percent-encoded, which
/// must be below `prefix` (a COPY or MOVE stays in the drive or link it starts in).
pub fn parse_destination(value: &[u8], prefix: &str) -> Result<String, Refusal> {
    let s = ascii(value, "Destination").map_err(Refusal::bad)?;
    if s.is_empty() || s.contains([' ', '\t']) || !is_simple_ref(&s) {
        return Err(Refusal::bad("Destination: an absolute URI or path"));
    }
    let path = ref_path(&s).ok_or_else(|| Refusal::bad("Destination: an http(s) URI or a path"))?;
    check_path(path)?;
    let below = path.strip_prefix(prefix).is_some_and(|r| r.is_empty() || r.starts_with('/'));
    if !below {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            reason: format!("Destination: COPY and MOVE stay below {prefix}/"),
        });
    }
    let Ok(decoded) = percent_encoding::percent_decode_str(&path[prefix.len()..]).decode_utf8() else {
        return Err(Refusal::bad("Destination: the path must be UTF-8"));
    };
    // dav-server panics on a destination that is its prefix (the drive's or link's root),
    // and nothing may replace the root anyway.
    if decoded.chars().all(|c| c == '/') {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            reason: "Destination: cannot copy or move onto the root".into(),
        });
    }
    Ok(path.to_owned())
}

/// `If-Match` / `If-None-Match`: `*` or a list of entity tags.
pub fn parse_etag_list(value: &[u8], name: &str) -> Result<(), String> {
    let s = ascii(value, name)?;
    if s == "*" {
        return Ok(());
    }
    let mut any = false;
    for t in s.split(',').map(|t| t.trim_matches([' ', '\t'])).filter(|t| !t.is_empty()) {
        if parse_entity_tag(t).is_none() {
            return Err(format!("{name}: * or a list of \"entity tags\""));
        }
        any = true;
    }
    if any { Ok(()) } else { Err(format!("{name}: * or a list of \"entity tags\"")) }
}

/// `If-Range`: an entity tag or an HTTP date.
pub fn parse_if_range(value: &[u8]) -> Result<(), String> {
    let s = ascii(value, "If-Range")?;
    if parse_entity_tag(&s).is_some() || davit_http::parse_http_date(&s).is_some() {
        Ok(())
    } else {
        Err("If-Range: an entity tag or an HTTP date".into())
    }
}
