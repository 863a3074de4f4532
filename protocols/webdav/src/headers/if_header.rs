//! The `If` header (RFC 4918 §10.4) and the URIs and paths it and `Destination` name.

use super::*;

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
pub(super) fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else { return false };
    let mut sb = scheme.bytes();
    sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        && sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !s.contains('#')
        && uri_chars(s)
}

/// RFC 4918 `Simple-ref`: an absolute URI, or an absolute path with an optional query.
pub(super) fn is_simple_ref(s: &str) -> bool {
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
