//! A request body's XML element nesting, measured without parsing it.
//!
//! dav-server parses PROPFIND, PROPPATCH and LOCK bodies with xmltree, which recurses once
//! per element: a body of a few thousand nested elements overflows a worker's stack and
//! aborts the whole process. So every body dav-server buffers is measured here first, by a
//! flat scan that neither recurses nor allocates, and a deep one is refused.

/// Deeper nesting is refused: WebDAV clients send fewer than ten levels.
pub const MAX_XML_DEPTH: usize = 64;
/// dav-server buffers every body but a PUT's up to this size (and refuses a larger one with
/// 413); the front end buffers them to the same limit to measure them first.
pub const MAX_XML_BODY: usize = 64 * 1024;

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| from + i)
}

/// Where a tag begun before `from` ends: `Ok(i)` at its `>` (one inside a quoted attribute
/// value does not end it), `Err(i)` when a `<` at `i` (never legal inside a tag, so the
/// parser stops there) or the end of the body comes first.
fn tag_end(b: &[u8], from: usize) -> Result<usize, usize> {
    let mut quote = None;
    for (i, &c) in b.iter().enumerate().skip(from) {
        match (quote, c) {
            (_, b'<') => return Err(i),
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'>') => return Ok(i),
            _ => {}
        }
    }
    Err(b.len())
}

/// The deepest element nesting in `body`, counted up to `limit + 1` (the scan stops there).
/// Start tags count one deeper, end tags one shallower, a self-closing tag one deeper than
/// where it stands; processing instructions, comments, CDATA sections and declarations do
/// not count. Where the scan and a
/// parser could disagree (malformed XML) it counts deeper, never shallower: a declaration
/// ends at its first `>`, after which the rest is scanned as text, and a tag cut short by a
/// `<` or the end counts as a start tag.
pub fn nesting_depth(body: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < body.len() {
        let Some(lt) = body[i..].iter().position(|&c| c == b'<').map(|p| i + p) else {
            break;
        };
        let rest = &body[lt..];
        let skip_to = |from: usize, needle: &[u8]| find(body, from, needle).map_or(body.len(), |e| e + needle.len());
        i = if rest.starts_with(b"<?") {
            skip_to(lt + 2, b"?>")
        } else if rest.starts_with(b"<!--") {
            skip_to(lt + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(lt + 9, b"]]>")
        } else if rest.starts_with(b"<!") {
            skip_to(lt + 2, b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            tag_end(body, lt + 2).map_or_else(|e| e, |e| e + 1)
        } else {
            // A self-closing element is one level deeper too, but only while it is read.
            let end = tag_end(body, lt + 1);
            deepest = deepest.max(depth + 1);
            if !matches!(end, Ok(e) if body[e - 1] == b'/') {
                depth += 1;
            }
            if deepest > limit {
                return deepest;
            }
            end.map_or_else(|e| e, |e| e + 1)
        };
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::nesting_depth;

    #[test]
    fn counts_elements_only() {
        let d = |s: &str| nesting_depth(s.as_bytes(), 64);
        assert_eq!(d(""), 0);
        assert_eq!(d("<a/>"), 1);
        assert_eq!(d("<?xml version=\"1.0\"?><a><b/><c></c></a>"), 2);
        assert_eq!(d("<a x='>' y=\"/>\"><b><c/></b></a>"), 3);
        assert_eq!(d("<!DOCTYPE a><!-- <b><b> --><a><![CDATA[<b><b>]]></a>"), 1);
        // Counted deeper, never shallower, where a parser would stop.
        assert_eq!(d("<a x=\"/>\"><a x='<a/>'>"), 3);
        assert_eq!(d("<!DOCTYPE a [<!ELEMENT a ANY>]><a><b>"), 2);
        assert_eq!(d("<?pi <a><a> ?><a>"), 1);
        assert_eq!(d("<a><b><c"), 3);
        assert_eq!(d("</a></a><a>"), 1);
        let deep = format!("{}{}", "<a>".repeat(2000), "</a>".repeat(2000));
        assert_eq!(nesting_depth(deep.as_bytes(), 64), 65);
        let wide = "<a></a>".repeat(2000);
        assert_eq!(d(&wide), 1);
    }

    /// The deepest element nesting xml-rs (the reader under xmltree, which recurses once per
    /// element) reaches before it stops, at the end or at its first error.
    fn parser_depth(body: &[u8]) -> usize {
        use xml::reader::{EventReader, ParserConfig, XmlEvent};
        let config = ParserConfig::new().ignore_comments(false);
        let (mut depth, mut deepest) = (0usize, 0usize);
        for event in EventReader::new_with_config(body, config) {
            match event {
                Ok(XmlEvent::StartElement { .. }) => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                Ok(XmlEvent::EndElement { .. }) => depth = depth.saturating_sub(1),
                Ok(XmlEvent::EndDocument) | Err(_) => break,
                Ok(_) => {}
            }
        }
        deepest
    }

    /// xorshift64: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Thousands of token soups, valid and hostile: the scan never panics, stops at the
    /// limit, and never counts shallower than the parser goes (the property that keeps
    /// dav-server's parser on its stack).
    #[test]
    fn never_shallower_than_the_parser() {
        const TOKENS: &[&str] = &[
            "<a>",
            "</a>",
            "<b x='1'>",
            "</b>",
            "<c/>",
            "<d y=\"/>\">",
            "<e z='>'>",
            "<D:prop xmlns:D=\"DAV:\">",
            "</D:prop>",
            "<!--",
            "-->",
            "<?",
            "?>",
            "<?xml version=\"1.0\"?>",
            "<![CDATA[",
            "]]>",
            "<!DOCTYPE a",
            "<!ENTITY e \"<a>\">",
            "[",
            "]",
            "\"",
            "'",
            "<",
            ">",
            "/",
            "/>",
            "</",
            "<!",
            "x",
            " ",
            "&amp;",
            "&e;",
            "\u{e9}",
            "\0",
            "\u{feff}",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for round in 0..6000 {
            let n = 1 + rng.below(if round % 10 == 0 { 400 } else { 60 });
            let mut body = String::new();
            if round % 3 == 0 {
                body.push_str("<?xml version=\"1.0\"?><r>");
            }
            for _ in 0..n {
                // Mostly tags, so some soups are deep and well formed.
                let t = if rng.below(3) == 0 { TOKENS[rng.below(TOKENS.len())] } else { TOKENS[rng.below(7)] };
                body.push_str(t);
            }
            let mut bytes = body.into_bytes();
            if round % 7 == 0 && !bytes.is_empty() {
                let i = rng.below(bytes.len());
                bytes[i] = rng.below(256) as u8;
            }
            let limit = 1 + rng.below(80);
            let ours = nesting_depth(&bytes, limit);
            assert!(ours <= limit + 1, "{ours} > {limit} + 1");
            let unlimited = nesting_depth(&bytes, usize::MAX - 1);
            assert_eq!(ours, unlimited.min(limit + 1), "{:?}", String::from_utf8_lossy(&bytes));
            let parser = parser_depth(&bytes);
            assert!(
                parser <= unlimited,
                "parser {parser} > scan {unlimited}: {:?} {bytes:?}",
                String::from_utf8_lossy(&bytes)
            );
            checked += usize::from(parser > 3);
        }
        // The soups did reach depth, or the comparison proved little.
        assert!(checked > 100, "only {checked} soups nested");
    }
}
