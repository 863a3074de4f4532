//! Windows' file times. Explorer, having written a file, sets its times with a PROPPATCH of
//! Microsoft's `Win32LastModifiedTime` (with the creation and access times); dav-server
//! answers 200 for them and keeps nothing, so a file copied onto the drive showed the time
//! of its upload. The modification time is the item's own, kept as `X-OC-Mtime` keeps
//! rclone's; the other two have no place in the core and are still only acknowledged.

use std::time::SystemTime;

use xmltree::{Element, XMLNode};

const DAV: &str = "DAV:";
const MICROSOFT: &str = "urn:schemas-microsoft-com:";

/// The `Win32LastModifiedTime` a PROPPATCH body sets (the last one, as properties are
/// applied in document order), if it is an HTTP date, as Windows writes it.
pub(crate) fn modified_time(body: &[u8]) -> Option<SystemTime> {
    let root = Element::parse(body).ok()?;
    if root.name != "propertyupdate" || root.namespace.as_deref() != Some(DAV) {
        return None;
    }
    let in_dav = |e: &&Element, name: &str| e.name == name && e.namespace.as_deref() == Some(DAV);
    let mut found = None;
    for update in children(&root) {
        let set = in_dav(&update, "set");
        if !set && !in_dav(&update, "remove") {
            continue;
        }
        for prop in children(update).filter(|e| in_dav(e, "prop")) {
            for p in children(prop) {
                if p.name == "Win32LastModifiedTime" && p.namespace.as_deref() == Some(MICROSOFT) {
                    // A remove leaves the time as it is: the item has one whatever is asked.
                    found = if set { p.get_text().and_then(|t| davit_http::parse_http_date(&t)) } else { found };
                }
            }
        }
    }
    found
}

fn children(e: &Element) -> impl Iterator<Item = &Element> {
    e.children.iter().filter_map(|n| match n {
        XMLNode::Element(e) => Some(e),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn windows_modification_time_is_read_from_its_proppatch() {
        // As Windows 10's mini-redirector sends it after a copy.
        let body = br#"<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32CreationTime>Tue, 01 Dec 2026 10:00:00 GMT</Z:Win32CreationTime><Z:Win32LastAccessTime>Tue, 01 Dec 2026 10:00:00 GMT</Z:Win32LastAccessTime><Z:Win32LastModifiedTime>Sun, 06 Nov 1994 08:49:37 GMT</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>"#;
        assert_eq!(modified_time(body), Some(UNIX_EPOCH + Duration::from_secs(784_111_777)));
        for other in [
            &br#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Win32LastModifiedTime>Sun, 06 Nov 1994 08:49:37 GMT</Win32LastModifiedTime></D:prop></D:set></D:propertyupdate>"#[..],
            br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32LastModifiedTime>yesterday</Z:Win32LastModifiedTime></D:prop></D:set></D:propertyupdate>"#,
            br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:remove><D:prop><Z:Win32LastModifiedTime/></D:prop></D:remove></D:propertyupdate>"#,
            b"not xml",
        ] {
            assert_eq!(modified_time(other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}
