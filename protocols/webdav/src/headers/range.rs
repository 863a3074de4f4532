//! Ranges (RFC 9110 §14): parsed, merged and bounded before dav-server sees them.

use super::*;

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
