//! The conditional headers of a read (RFC 9110 §13.2.2), evaluated against the current
//! ETag and modification time. A write's If-Match / If-None-Match are not decided here:
//! the core checks them in the transaction that commits, so no change slips in between.

use std::time::{SystemTime, UNIX_EPOCH};

use davit_storage::{Conditions, Error, Item};
use http::{HeaderMap, HeaderName, header};

/// Whether a Range may be served (RFC 9110 §13.1.5): no If-Range, or one that names the
/// current representation, by its ETag (strong comparison: a weak tag never does) or by its
/// exact modification time in whole seconds. When it does not, the whole file is the answer,
/// so a client resuming a download never splices old bytes to new ones.
pub fn if_range_holds(headers: &HeaderMap, etag: &str, modified_nanos: i64) -> bool {
    let Some(v) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()).map(str::trim) else {
        return true;
    };
    if v.starts_with('"') {
        return v.len() >= 2 && v.ends_with('"') && &v[1..v.len() - 1] == etag;
    }
    if v.starts_with("W/") {
        return false;
    }
    match crate::parse_http_date(v) {
        Some(date) => whole_seconds(date) == (modified_nanos.max(0) as u64) / 1_000_000_000,
        None => false,
    }
}

/// The conditions of a write, delete or move (If-Match, If-None-Match, If-Unmodified-Since)
/// for the core to check as it commits. `current` is what is at the target now: a date is
/// decided against it (RFC 9110 §13.1.4: ignored beside If-Match, when it is not a date, and
/// when nothing is there), and when it holds that version is pinned as an If-Match, so a
/// change in between still refuses the request.
pub fn write_conditions(headers: &HeaderMap, current: Option<&Item>) -> Result<Conditions, Error> {
    let list = |name: HeaderName| {
        let tags: Vec<String> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"').to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        (!tags.is_empty()).then_some(tags)
    };
    let mut c = Conditions { if_match: list(header::IF_MATCH), if_none_match: list(header::IF_NONE_MATCH) };
    let date = headers.get(header::IF_UNMODIFIED_SINCE).and_then(|v| v.to_str().ok()).and_then(crate::parse_http_date);
    let (Some(date), Some(item), None) = (date, current, &c.if_match) else { return Ok(c) };
    let unmodified = Preconditions { if_unmodified_since: Some(date), ..Default::default() };
    if unmodified.evaluate(&item.etag, item.modified).is_err() {
        return Err(Error::PreconditionFailed("If-Unmodified-Since: the item changed after that date".into()));
    }
    c.if_match = Some(vec![item.etag.clone()]);
    Ok(c)
}

/// The conditions a request sent. An entity-tag list holds tags without quotes, or `*`.
#[derive(Clone, Debug, Default)]
pub struct Preconditions {
    pub if_match: Option<Vec<String>>,
    pub if_none_match: Option<Vec<String>>,
    pub if_modified_since: Option<SystemTime>,
    pub if_unmodified_since: Option<SystemTime>,
}

/// Which condition stopped the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// 412: If-Match names no current tag.
    IfMatch,
    /// 412: the resource changed after If-Unmodified-Since.
    IfUnmodifiedSince,
    /// 304 for GET and HEAD: If-None-Match matched, or nothing changed since
    /// If-Modified-Since.
    NotModified,
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Preconditions {
    /// RFC 9110 §13.2.2's order: If-Match, else If-Unmodified-Since; then If-None-Match,
    /// else If-Modified-Since. Dates are compared in whole seconds, as HTTP writes them: a
    /// change within the date's second is not after it.
    pub fn evaluate(&self, etag: &str, modified_nanos: i64) -> Result<(), Refused> {
        let matches = |tags: &Vec<String>| tags.iter().any(|t| t == "*" || t.trim_matches('"') == etag);
        let modified = (modified_nanos.max(0) as u64) / 1_000_000_000;
        match (&self.if_match, self.if_unmodified_since) {
            (Some(tags), _) if !matches(tags) => return Err(Refused::IfMatch),
            (None, Some(t)) if modified > whole_seconds(t) => return Err(Refused::IfUnmodifiedSince),
            _ => {}
        }
        match (&self.if_none_match, self.if_modified_since) {
            (Some(tags), _) if matches(tags) => Err(Refused::NotModified),
            (None, Some(t)) if modified <= whole_seconds(t) => Err(Refused::NotModified),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn at(secs: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn tags(t: &[&str]) -> Option<Vec<String>> {
        Some(t.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn if_range_names_the_current_file_or_the_range_goes() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_RANGE, v.parse().unwrap());
            h
        };
        let modified = 784_111_777 * SEC + 5; // Sun, 06 Nov 1994 08:49:37 GMT
        assert!(if_range_holds(&HeaderMap::new(), "abc", modified));
        assert!(if_range_holds(&with("\"abc\""), "abc", modified));
        for other in ["\"abd\"", "W/\"abc\"", "abc", "\"", "Sun, 06 Nov 1994 08:49:38 GMT", "not a date"] {
            assert!(!if_range_holds(&with(other), "abc", modified), "{other}");
        }
        assert!(if_range_holds(&with("Sun, 06 Nov 1994 08:49:37 GMT"), "abc", modified));
    }

    #[test]
    fn etag_conditions() {
        let modified = 100 * SEC;
        let none = Preconditions::default();
        assert_eq!(none.evaluate("abc", modified), Ok(()));
        let m = |t: &[&str]| Preconditions { if_match: tags(t), ..Default::default() }.evaluate("abc", modified);
        assert_eq!(m(&["abc"]), Ok(()));
        assert_eq!(m(&["\"abc\""]), Ok(()));
        assert_eq!(m(&["*"]), Ok(()));
        assert_eq!(m(&["x", "abc"]), Ok(()));
        assert_eq!(m(&["x"]), Err(Refused::IfMatch));
        let n = |t: &[&str]| Preconditions { if_none_match: tags(t), ..Default::default() }.evaluate("abc", modified);
        assert_eq!(n(&["abc"]), Err(Refused::NotModified));
        assert_eq!(n(&["*"]), Err(Refused::NotModified));
        assert_eq!(n(&["x"]), Ok(()));
    }

    #[test]
    fn date_conditions_in_whole_seconds() {
        let modified = 100 * SEC + SEC / 2;
        let u = |secs| Preconditions { if_unmodified_since: at(secs), ..Default::default() }.evaluate("e", modified);
        assert_eq!(u(100), Ok(()));
        assert_eq!(u(99), Err(Refused::IfUnmodifiedSince));
        let s = |secs| Preconditions { if_modified_since: at(secs), ..Default::default() }.evaluate("e", modified);
        assert_eq!(s(100), Err(Refused::NotModified));
        assert_eq!(s(99), Ok(()));
    }

    #[test]
    fn etags_take_precedence_over_dates() {
        // If-Match that holds makes If-Unmodified-Since irrelevant, and so on.
        let p = Preconditions { if_match: tags(&["e"]), if_unmodified_since: at(1), ..Default::default() };
        assert_eq!(p.evaluate("e", 100 * SEC), Ok(()));
        let p = Preconditions { if_none_match: tags(&["x"]), if_modified_since: at(200), ..Default::default() };
        assert_eq!(p.evaluate("e", 100 * SEC), Ok(()));
        // The first pair is decided before the second.
        let p = Preconditions { if_match: tags(&["x"]), if_none_match: tags(&["e"]), ..Default::default() };
        assert_eq!(p.evaluate("e", 100 * SEC), Err(Refused::IfMatch));
    }
}
