//! The conditional headers of a read (RFC 9110 §13.2.2), evaluated against the current
//! ETag and modification time. A write's If-Match / If-None-Match are not decided here:
//! the core checks them in the transaction that commits, so no change slips in between.

use std::time::{SystemTime, UNIX_EPOCH};

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
