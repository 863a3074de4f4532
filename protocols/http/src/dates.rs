//! The core keeps times as nanoseconds since the Unix epoch; HTTP speaks whole-second dates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use httpdate::fmt_http_date;

/// A core time as a `SystemTime`; times before the epoch (never written) read as the epoch.
pub fn system_time(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64)
}

/// A `SystemTime` as a core time; before the epoch is the epoch, past year 2262 saturates.
pub fn nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A core time as an HTTP date (`Last-Modified`): the second it falls in.
pub fn http_date(nanos: i64) -> String {
    fmt_http_date(system_time(nanos))
}

/// An HTTP date in any of the three forms RFC 9110 §5.6.7 requires a recipient to read.
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_times_and_http_dates() {
        let t = 784_111_777_500_000_000; // 1994-11-06 08:49:37.5
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(nanos(system_time(t)), t);
        assert_eq!(system_time(-5), UNIX_EPOCH);
        assert_eq!(nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse_http_date(form), Some(UNIX_EPOCH + Duration::from_secs(784_111_777)), "{form}");
        }
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
