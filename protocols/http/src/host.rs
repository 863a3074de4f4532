//! Virtual-host addressing: `<bucket>.<base domain>[:port]` in Host names a bucket. The
//! router and S3 read Host with this one function, so they never disagree on a request.

/// Host without its port: `name:digits` loses `:digits`; anything else (an IPv6 literal
/// without a port, a name) stays whole.
pub fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The bucket (lower-case) a Host names under `domain` (lower-case), or None for path style:
/// the domain itself, an address, another name.
pub fn virtual_host_bucket(host: &str, domain: &str) -> Option<String> {
    let name = strip_port(host);
    name.len()
        .checked_sub(domain.len() + 1)
        .filter(|&n| n > 0 && name.as_bytes()[n] == b'.' && name[n + 1..].eq_ignore_ascii_case(domain))
        .map(|n| name[..n].to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_under_the_base_domain_with_or_without_a_port() {
        let bucket = |host: &str| virtual_host_bucket(host, "s3.example");
        assert_eq!(bucket("photos.s3.example").as_deref(), Some("photos"));
        assert_eq!(bucket("Photos.S3.Example:9000").as_deref(), Some("photos"));
        assert_eq!(bucket("my.dotted.bucket.s3.example:443").as_deref(), Some("my.dotted.bucket"));
        for path_style in [
            "s3.example",
            "s3.example:9000",
            "127.0.0.1:9000",
            "[::1]:9000",
            "other.host",
            ".s3.example",
            "xs3.example",
            "photos.s3.example:",
            "photos.s3.example:x",
        ] {
            assert_eq!(bucket(path_style), None, "{path_style}");
        }
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
