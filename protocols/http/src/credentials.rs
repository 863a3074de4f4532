//! Values that carry base64: Basic credentials and Content-MD5.

use base64::Engine;

/// `user:password` from an `Authorization: Basic` value; None for another scheme or a
/// malformed value.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// The digest a `Content-MD5` value names (RFC 1864: base64 of the 16 bytes); None when it
/// is not one.
pub fn content_md5(value: &str) -> Option<[u8; 16]> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    <[u8; 16]>::try_from(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials() {
        // "alice:pa:ss" — a password may hold colons, a username may not.
        assert_eq!(parse_basic("Basic YWxpY2U6cGE6c3M="), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(parse_basic("basic  YWxpY2U6cGE6c3M= "), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(parse_basic("Basic Ojo="), Some(("".into(), ":".into())));
        for bad in ["Bearer YWxpY2U6cGFzcw==", "Basic", "Basic !!!", "Basic YWxpY2U=", "Basic //79"] {
            assert_eq!(parse_basic(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_md5_is_sixteen_bytes_of_base64() {
        // The MD5 of nothing.
        let empty = content_md5(" 1B2M2Y8AsgTpgAmY7PhCfg== ").unwrap();
        assert_eq!(empty[..4], [0xd4, 0x1d, 0x8c, 0xd9]);
        for bad in ["", "not base64", "AAAA", "d41d8cd98f00b204e9800998ecf8427e"] {
            assert_eq!(content_md5(bad), None, "{bad}");
        }
    }
}
