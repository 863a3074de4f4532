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

// ---------------------------------------------------------------------------------------
// The If header (RFC 4918 §10.4)
// ---------------------------------------------------------------------------------------

/// One condition of an `If` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfItem {
    /// A state token (`<urn:uuid:…>`, `<opaquelocktoken:…>`, `<DAV:no-lock>`).
    Token(String),
    /// An entity tag (`["…"]`), without its quotes.
    ETag { weak: bool, tag: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub not: bool,
    pub item: IfItem,
}

/// One list: its conditions are ANDed; a tagged list applies to `resource`, an untagged
/// one to the request's resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfList {
    pub resource: Option<String>,
    pub conditions: Vec<Condition>,
}

/// A parsed `If` header: true when any list is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfHeader {
    pub lists: Vec<IfList>,
}

impl IfHeader {
    /// Every state token named, in order, as dav-server collects them: the tokens the
    /// client submits for the locks it holds.
    pub fn state_tokens(&self) -> Vec<String> {
        self.lists
            .iter()
            .flat_map(|l| &l.conditions)
            .filter_map(|c| match &c.item {
                IfItem::Token(t) => Some(t.clone()),
                IfItem::ETag { .. } => None,
            })
            .collect()
    }

    /// The header dav-server gets once the condition has been found true here (None: no
    /// header). It carries the same state tokens, for dav-server's lock checks, behind a
    /// first list that is always true (an empty entity tag matches no resource), so
    /// dav-server's own evaluation, which treats an unknown token as a match, never decides.
    pub fn for_dav_server(&self) -> Option<String> {
        let tokens = self.state_tokens();
        if tokens.is_empty() {
            return None;
        }
        let mut v = String::from("(Not [\"\"])");
        for t in tokens {
            v.push_str(" (<");
            v.push_str(&t);
            v.push_str(">)");
        }
        Some(v)
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// The text up to the closing byte, which is consumed; the opening one already was.
    fn until(&mut self, close: u8, what: &str) -> Result<&'a str, String> {
        let s: &'a [u8] = self.s;
        let rest = s.get(self.i..).unwrap_or_default();
        let n = rest.iter().position(|&b| b == close).ok_or_else(|| format!("If: unclosed {what}"))?;
        let text = std::str::from_utf8(&rest[..n]).map_err(|_| format!("If: {what} is not ASCII"))?;
        self.i += n + 1;
        Ok(text)
    }

    fn keyword_not(&mut self) -> bool {
        let rest = self.s.get(self.i..).unwrap_or_default();
        if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"not") {
            self.i += 3;
            true
        } else {
            false
        }
    }
}

/// Parses an `If` header strictly by RFC 4918's grammar:
/// `1*No-tag-list | 1*Tagged-list`, `List = "(" 1*Condition ")"`,
/// `Condition = ["Not"] (Coded-URL | "[" entity-tag "]")`, `Tagged-list = "<" Simple-ref ">" 1*List`.
pub fn parse_if(value: &[u8]) -> Result<IfHeader, String> {
    if value.len() > MAX_IF_LEN {
        return Err(format!("If: longer than {MAX_IF_LEN} bytes"));
    }
    if let Some(b) = value.iter().find(|&&b| !(b == b'\t' || (0x20..0x7f).contains(&b))) {
        return Err(format!("If: byte 0x{b:02x} is not allowed"));
    }
    let mut c = Cursor { s: value, i: 0 };
    let mut lists = Vec::new();
    let mut tagged: Option<bool> = None;
    let mut resource: Option<String> = None;
    let mut conditions_seen = 0usize;
    loop {
        c.ws();
        match c.peek() {
            None => break,
            Some(b'<') => {
                if tagged == Some(false) {
                    return Err("If: tagged and untagged lists cannot be mixed".into());
                }
                tagged = Some(true);
                c.i += 1;
                let r = c.until(b'>', "resource tag")?;
                if !is_simple_ref(r) {
                    return Err("If: a resource tag must be an absolute URI or path".into());
                }
                c.ws();
                if c.peek() != Some(b'(') {
                    return Err("If: a resource tag must be followed by a list".into());
                }
                resource = Some(r.to_owned());
            }
            Some(b'(') => {
                if tagged.is_none() {
                    tagged = Some(false);
                }
                c.i += 1;
                let conditions = parse_list(&mut c, &mut conditions_seen)?;
                lists.push(IfList { resource: resource.clone(), conditions });
            }
            Some(_) => return Err("If: expected '(' or '<'".into()),
        }
    }
    if lists.is_empty() {
        return Err("If: no condition list".into());
    }
    Ok(IfHeader { lists })
}

/// The conditions of one list, after its `(`, through its `)`.
fn parse_list(c: &mut Cursor<'_>, seen: &mut usize) -> Result<Vec<Condition>, String> {
    let mut conditions = Vec::new();
    loop {
        c.ws();
        match c.peek() {
            Some(b')') => {
                c.i += 1;
                if conditions.is_empty() {
                    return Err("If: an empty list".into());
                }
                return Ok(conditions);
            }
            None => return Err("If: unclosed list".into()),
            Some(_) => {}
        }
        let not = c.keyword_not();
        if not {
            c.ws();
        }
        let item = match c.peek() {
            Some(b'<') => {
                c.i += 1;
                let t = c.until(b'>', "state token")?;
                if !is_absolute_uri(t) {
                    return Err("If: a state token must be an absolute URI".into());
                }
                IfItem::Token(t.to_owned())
            }
            Some(b'[') => {
                c.i += 1;
                let t = c.until(b']', "entity tag")?;
                let (weak, tag) = parse_entity_tag(t).ok_or("If: malformed entity tag")?;
                IfItem::ETag { weak, tag: tag.to_owned() }
            }
            _ => return Err("If: a condition is a <state token> or an [entity tag]".into()),
        };
        if !matches!(&item, IfItem::ETag { tag, .. } if tag.is_empty()) {
            *seen += 1;
        }
        if *seen > MAX_IF_CONDITIONS {
            return Err(format!("If: more than {MAX_IF_CONDITIONS} conditions"));
        }
        conditions.push(Condition { not, item });
    }
}

/// `[W/]"…"` with visible ASCII but `"` inside (RFC 9110 `entity-tag`, without obs-text,
/// which no client sends): the weakness and the opaque tag without its quotes.
pub fn parse_entity_tag(s: &str) -> Option<(bool, &str)> {
    let (weak, rest) = match s.strip_prefix("W/") {
        Some(r) => (true, r),
        None => (false, s),
    };
    let inner = rest.strip_prefix('"')?.strip_suffix('"')?;
    inner.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)).then_some((weak, inner))
}

/// RFC 3986 characters of a URI (unreserved, reserved, and well-formed `%HH`).
fn uri_chars(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 3;
                continue;
            }
            c if c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// `scheme ":" …` (RFC 3986 `absolute-URI`).
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else { return false };
    let mut sb = scheme.bytes();
    sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        && sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !s.contains('#')
        && uri_chars(s)
}

/// RFC 4918 `Simple-ref`: an absolute URI, or an absolute path with an optional query.
fn is_simple_ref(s: &str) -> bool {
    if s.starts_with('/') {
        return !s.starts_with("//") && !s.contains('#') && uri_chars(s);
    }
    is_absolute_uri(s)
}

/// The path of a Simple-ref: of `http(s)://authority/path?query`, or of `/path?query`;
/// None for other schemes (a resource that is not on this server).
pub fn ref_path(r: &str) -> Option<&str> {
    let path = if r.starts_with('/') {
        r
    } else {
        let (scheme, rest) = r.split_once("://")?;
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return None;
        }
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    };
    Some(path.split(['?', '#']).next().unwrap_or(path))
}

/// A URL path's drive path below `prefix`: percent-decoded UTF-8 with no `.` or `..`
/// segment. None when it is not below the prefix or not a valid path.
pub fn drive_path_below(path: &str, prefix: &str) -> Option<String> {
    let rest = path.strip_prefix(prefix)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    check_path(rest).ok()?;
    let decoded = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?;
    Some(if decoded.is_empty() { "/".to_owned() } else { decoded.into_owned() })
}

/// Refuses a URL path with a `.` or `..` segment, written plainly or percent-encoded:
/// dav-server would resolve them itself, outside the front end's view of the path.
pub fn check_path(path: &str) -> Result<(), Refusal> {
    for seg in path.split('/') {
        if seg.len() > 6 || !seg.starts_with(['.', '%']) {
            continue;
        }
        let decoded = percent_encoding::percent_decode_str(seg).collect::<Vec<u8>>();
        if decoded == b"." || decoded == b".." {
            return Err(Refusal::bad("a path cannot have '.' or '..' segments"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The other WebDAV headers (RFC 4918 §10)
// ---------------------------------------------------------------------------------------

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
    if percent_encoding::percent_decode_str(path).decode_utf8().is_err() {
        return Err(Refusal::bad("Destination: the path must be UTF-8"));
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

// ---------------------------------------------------------------------------------------
// Ranges (RFC 9110 §14)
// ---------------------------------------------------------------------------------------

/// One `range-spec` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last` or `first-` (last None).
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// What to send for a Range header, given the file's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangePlan {
    /// The whole file (200): no usable Range, or too many ranges.
    Whole,
    /// 416: no range overlaps the file.
    Unsatisfiable,
    /// These ranges, inclusive, sorted, disjoint and not adjacent, at most [`MAX_RANGES`].
    Ranges(Vec<(u64, u64)>),
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More digits than u64 holds: past the end of any file.
    Some(s.parse::<u64>().unwrap_or(u64::MAX))
}

/// The specs of `bytes=…`; None for another unit or a malformed set, which RFC 9110 says
/// to ignore (the whole file is sent).
pub fn parse_range(value: &[u8]) -> Option<Vec<RangeSpec>> {
    let s = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    let (unit, set) = s.split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for spec in set.split(',').map(|t| t.trim_matches([' ', '\t'])).filter(|t| !t.is_empty()) {
        let (a, b) = spec.split_once('-')?;
        specs.push(if a.is_empty() {
            RangeSpec::Suffix(number(b)?)
        } else {
            let first = number(a)?;
            let last = if b.is_empty() { None } else { Some(number(b)?) };
            if last.is_some_and(|l| l < first) {
                return None;
            }
            RangeSpec::From(first, last)
        });
    }
    (!specs.is_empty()).then_some(specs)
}

/// Resolves specs against a file of `size` bytes: unsatisfiable ones dropped, the rest
/// sorted, overlapping and adjacent ones merged (RFC 9110 §14.2 allows both), and more than
/// [`MAX_RANGES`] answered whole. Merged ranges are disjoint, so what is sent never exceeds
/// the file's size plus the parts' headers, however many ranges were asked for.
pub fn plan_ranges(specs: &[RangeSpec], size: u64) -> RangePlan {
    let mut spans: Vec<(u64, u64)> = specs
        .iter()
        .filter_map(|s| match *s {
            RangeSpec::From(first, _) if first >= size => None,
            RangeSpec::From(first, last) => Some((first, last.map_or(size - 1, |l| l.min(size - 1)))),
            RangeSpec::Suffix(n) if n == 0 || size == 0 => None,
            RangeSpec::Suffix(n) => Some((size.saturating_sub(n), size - 1)),
        })
        .collect();
    if spans.is_empty() {
        return RangePlan::Unsatisfiable;
    }
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len().min(MAX_RANGES + 1));
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    if merged.len() > MAX_RANGES {
        return RangePlan::Whole;
    }
    RangePlan::Ranges(merged)
}

/// The Range header dav-server gets for a plan (None: remove it).
pub fn range_for_dav_server(plan: &RangePlan, size: u64) -> Option<String> {
    match plan {
        RangePlan::Whole => None,
        // dav-server answers a range starting at the end with 416 and `bytes */size`.
        RangePlan::Unsatisfiable => Some(format!("bytes={size}-")),
        RangePlan::Ranges(r) => {
            Some(format!("bytes={}", r.iter().map(|(a, b)| format!("{a}-{b}")).collect::<Vec<_>>().join(",")))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The request as a whole
// ---------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_if(v: &str) -> IfHeader {
        parse_if(v.as_bytes()).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn if_grammar() {
        let h = ok_if(r#"(<urn:uuid:1-2>) (Not <DAV:no-lock>)"#);
        assert_eq!(h.lists.len(), 2);
        assert_eq!(h.state_tokens(), ["urn:uuid:1-2", "DAV:no-lock"]);
        assert!(h.lists[1].conditions[0].not);
        let h = ok_if(r#"<http://h/dav/a> (["abc"] <opaquelocktoken:x>)  </dav/b?q> (Not["x"])"#);
        assert_eq!(h.lists[0].resource.as_deref(), Some("http://h/dav/a"));
        assert_eq!(h.lists[1].resource.as_deref(), Some("/dav/b?q"));
        assert_eq!(h.lists[0].conditions[0].item, IfItem::ETag { weak: false, tag: "abc".into() });
        let h = ok_if("\t(not [W/\"w\"])");
        assert_eq!(
            h.lists[0].conditions[0],
            Condition { not: true, item: IfItem::ETag { weak: true, tag: "w".into() } }
        );
        ok_if(r#"([""])"#);
        for bad in [
            "",
            "   ",
            "(<urn:x",
            "(<urn:x>",
            "([\"]",
            "([\"])",
            "([abc])",
            "()",
            "(Not)",
            "(Not Not <a:b>)",
            "(<no-scheme>)",
            "(<urn:a b>)",
            "(word:token)",
            "<http://h/a>",
            "<http://h/a> <http://h/b> (<a:b>)",
            "(<a:b>) <http://h/a> (<a:b>)",
            "<http://h/a> (<a:b>) (<c:d>) x",
            "(<a:b>) )",
            "<//h/a> (<a:b>)",
            "(<a:\u{e9}>)",
        ] {
            assert!(parse_if(bad.as_bytes()).is_err(), "{bad:?} parsed");
        }
        assert!(parse_if(b"(<a:\xff>)").is_err());
        assert!(parse_if(format!("({})", "<a:b> ".repeat(MAX_IF_CONDITIONS + 1)).as_bytes()).is_err());
        let most = ok_if(&format!("({})", "<a:b> ".repeat(MAX_IF_CONDITIONS)));
        assert!(parse_if(most.for_dav_server().unwrap().as_bytes()).is_ok(), "what dav-server gets parses too");
    }

    #[test]
    fn dav_server_gets_an_always_true_header_with_the_same_tokens() {
        let h = ok_if(r#"<http://h/dav/a> (Not <urn:a> ["x"]) (<DAV:no-lock>)"#);
        let v = h.for_dav_server().unwrap();
        assert_eq!(v, r#"(Not [""]) (<urn:a>) (<DAV:no-lock>)"#);
        assert_eq!(ok_if(&v).state_tokens(), h.state_tokens());
        assert_eq!(ok_if(r#"(["x"])"#).for_dav_server(), None);
    }

    #[test]
    fn paths_and_destinations() {
        assert!(check_path("/dav/a/b").is_ok());
        assert!(check_path("/dav/a..b/.hidden/...").is_ok());
        for bad in ["/dav/..", "/dav/a/../b", "/dav/%2e%2E/x", "/dav/.%2e", "/dav/./a", "/dav/%2E"] {
            assert_eq!(check_path(bad).unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(parse_destination(b"http://host:1/dav/a%20b?x", "/dav").unwrap(), "/dav/a%20b");
        assert_eq!(parse_destination(b"/dav/x/", "/dav").unwrap(), "/dav/x/");
        assert_eq!(parse_destination(b"/s/tok/x", "/s/tok").unwrap(), "/s/tok/x");
        assert_eq!(parse_destination(b"http://h/api/x", "/dav").unwrap_err().status, 403);
        assert_eq!(parse_destination(b"/davx/y", "/dav").unwrap_err().status, 403);
        for bad in [
            &b"http://h/dav/../x"[..],
            b"/dav/%2e%2e/x",
            b"",
            b"dav/x",
            b"/dav/a b",
            b"/dav/\xff",
            b"/dav/%ff",
            b"/dav/x#f",
        ] {
            assert_eq!(parse_destination(bad, "/dav").unwrap_err().status, 400, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(ref_path("https://h"), Some("/"));
        assert_eq!(ref_path("urn:x"), None);
        assert_eq!(drive_path_below("/dav/a%20b", "/dav").as_deref(), Some("/a b"));
        assert_eq!(drive_path_below("/dav", "/dav").as_deref(), Some("/"));
        assert_eq!(drive_path_below("/davx", "/dav"), None);
        assert_eq!(drive_path_below("/dav/../x", "/dav"), None);
    }

    #[test]
    fn small_headers() {
        assert_eq!(parse_depth(b" Infinity ").unwrap(), Depth::Infinity);
        assert!(parse_depth(b"2").is_err() && parse_depth(b"").is_err());
        assert!(!parse_overwrite(b"f").unwrap() && parse_overwrite(b"T").unwrap());
        assert!(parse_overwrite(b"false").is_err());
        assert_eq!(parse_timeout(b"Infinite, Second-4100000000").unwrap(), "Infinite,Second-4100000000");
        assert_eq!(parse_timeout(b"second-99999999999999999999").unwrap(), "Second-4294967295");
        for bad in [&b"Second-"[..], b"Second--1", b"Minute-3", b"", b" , ", b"Second-1x"] {
            assert!(parse_timeout(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_lock_token(b"<urn:uuid:abc>").unwrap(), "urn:uuid:abc");
        for bad in [&b"urn:uuid:abc"[..], b"<urn:uuid:abc", b"<>", b"<a b:c>", b"<<a:b>>"] {
            assert!(parse_lock_token(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse_etag_list(br#""a", W/"b""#, "If-Match").is_ok());
        assert!(parse_etag_list(b"*", "If-Match").is_ok());
        for bad in [&b"\""[..], b"W/\"", b"abc", b"*, \"a\"", b"", b"\"a\"b\""] {
            assert!(parse_etag_list(bad, "If-Match").is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse_if_range(b"\"x\"").is_ok() && parse_if_range(b"Sun, 06 Nov 1994 08:49:37 GMT").is_ok());
        assert!(parse_if_range(b"\"").is_err() && parse_if_range(b"yesterday").is_err());
    }

    #[test]
    fn ranges_are_merged_and_bounded() {
        use RangeSpec::*;
        assert_eq!(parse_range(b"bytes=0-9, 5-,-3"), Some(vec![From(0, Some(9)), From(5, None), Suffix(3)]));
        assert_eq!(parse_range(b"bytes=5-3"), None, "invalid: ignored");
        assert_eq!(parse_range(b"items=0-1"), None);
        assert_eq!(parse_range(b"bytes=x-1"), None);
        assert_eq!(parse_range(b"bytes=0-99999999999999999999999"), Some(vec![From(0, Some(u64::MAX))]));
        assert_eq!(plan_ranges(&[From(0, Some(u64::MAX))], 10), RangePlan::Ranges(vec![(0, 9)]));
        assert_eq!(plan_ranges(&[Suffix(100)], 10), RangePlan::Ranges(vec![(0, 9)]));
        assert_eq!(plan_ranges(&[From(10, None), Suffix(0)], 10), RangePlan::Unsatisfiable);
        assert_eq!(plan_ranges(&[Suffix(5)], 0), RangePlan::Unsatisfiable);
        assert_eq!(
            plan_ranges(&[From(20, Some(29)), From(0, Some(9)), From(10, Some(12)), From(25, Some(40))], 100),
            RangePlan::Ranges(vec![(0, 12), (20, 40)]),
            "sorted; adjacent and overlapping merged"
        );
        let overlapping: Vec<RangeSpec> = (0..1000).map(|i| From(i, Some(5_000_000))).collect();
        assert_eq!(plan_ranges(&overlapping, 5_000_000), RangePlan::Ranges(vec![(0, 4_999_999)]));
        let many: Vec<RangeSpec> = (0..17).map(|i| From(i * 10, Some(i * 10 + 1))).collect();
        assert_eq!(plan_ranges(&many, 1000), RangePlan::Whole);
        assert_eq!(plan_ranges(&many[..16], 1000).clone(), plan_ranges(&many[..16], 1000));
        assert_eq!(range_for_dav_server(&RangePlan::Ranges(vec![(0, 1), (5, 9)]), 10).unwrap(), "bytes=0-1,5-9");
    }

    #[test]
    fn requests_are_refused_or_made_canonical() {
        let mut h = HeaderMap::new();
        h.insert("if", HeaderValue::from_static("(<urn:x"));
        assert_eq!(check_request(&Method::PUT, "/dav/p.txt", &mut h, "/dav").unwrap_err().status, 400);

        let mut h = HeaderMap::new();
        h.insert("if", HeaderValue::from_static("(<urn:uuid:a>)"));
        h.insert("depth", HeaderValue::from_static("Infinity"));
        h.insert("overwrite", HeaderValue::from_static("f"));
        h.insert("destination", HeaderValue::from_static("http://x/dav/b"));
        h.insert("range", HeaderValue::from_static("bytes=0-1"));
        let c = check_request(&Method::from_bytes(b"COPY").unwrap(), "/dav/a", &mut h, "/dav").unwrap();
        assert_eq!(c.if_header.unwrap().state_tokens(), ["urn:uuid:a"]);
        assert_eq!(h["if"], r#"(Not [""]) (<urn:uuid:a>)"#);
        assert_eq!(h["depth"], "infinity");
        assert_eq!(h["overwrite"], "F");
        assert_eq!(h["destination"], "/dav/b");
        assert!(!h.contains_key("range"), "a Range means nothing to COPY");

        let mut h = HeaderMap::new();
        h.append("depth", HeaderValue::from_static("0"));
        h.append("depth", HeaderValue::from_static("1"));
        assert!(check_request(&Method::GET, "/dav/a", &mut h, "/dav").is_err(), "two Depth headers");
        let mut h = HeaderMap::new();
        h.insert("content-range", HeaderValue::from_static("bytes 0-1/*"));
        assert_eq!(check_request(&Method::PUT, "/dav/a", &mut h, "/dav").unwrap_err().status, 400);
        assert_eq!(check_request(&Method::PATCH, "/dav/a", &mut HeaderMap::new(), "/dav").unwrap_err().status, 405);
        assert_eq!(check_request(&Method::GET, "/dav/../s/x", &mut HeaderMap::new(), "/dav").unwrap_err().status, 400);
    }
}
