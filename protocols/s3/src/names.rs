//! S3's names: which folders are buckets, and which keys the tree can hold.

use s3s::{S3Result, s3_error};

/// S3's bucket naming rules: 3–63 of `a-z0-9.-`, starting and ending with a letter or digit,
/// no `..`, `.-` or `-.` (each label of the DNS name starts and ends with a letter or digit),
/// not shaped like an IP address; and not one of the names the router takes for
/// itself (`reserved`).
pub fn valid_bucket(name: &str, reserved: &[String]) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && !(name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()))
        && !reserved.iter().any(|r| r == name)
}

pub fn check_new_bucket(name: &str, reserved: &[String]) -> S3Result<()> {
    if name == davit_storage::names::SHARED_ROOT {
        return Err(s3_error!(BucketAlreadyOwnedByYou, "the shared bucket always exists"));
    }
    if !valid_bucket(name, reserved) {
        return Err(s3_error!(
            InvalidBucketName,
            "bucket names are 3 to 63 of a-z, 0-9, '.' and '-' (not {})",
            reserved.join(", ")
        ));
    }
    Ok(())
}

/// The drive path of a key, or a clear refusal for keys the tree cannot hold.
pub fn key_path(bucket: &str, key: &str) -> S3Result<String> {
    if key.len() > 1024 {
        return Err(s3_error!(KeyTooLongError, "keys are at most 1024 bytes"));
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    if key.is_empty() || body.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(s3_error!(InvalidArgument, "a key cannot have empty, '.' or '..' path segments"));
    }
    Ok(format!("/{bucket}/{body}"))
}

/// The drive path of a key that must name a file: a key ending in `/` names a folder, which
/// has no versions, retention, legal hold or ACL of its own (the path would reach the file
/// `f` for `f/`: see `names`).
pub fn file_path(bucket: &str, key: &str) -> S3Result<String> {
    if key.ends_with('/') {
        return Err(s3_error!(NoSuchKey, "no such key"));
    }
    key_path(bucket, key)
}

/// The drive path of a key a write makes an object at: refused for a key ending in `/`, as
/// PutObject with content refuses it (the path would reach the file `f` for `f/`).
pub fn new_file_path(bucket: &str, key: &str) -> S3Result<String> {
    if key.ends_with('/') {
        return Err(s3_error!(InvalidArgument, "a key ending in '/' names a folder and takes no content"));
    }
    key_path(bucket, key)
}

/// Whether `item`, found at a key's path, is what the key names: `dir/` a folder (S3's
/// empty marker object), any other key a file. The path drops the slash, so without this
/// check `f/` would reach the file `f`.
pub fn names(key: &str, item: &davit_storage::Item) -> bool {
    item.is_folder() == key.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_keys() {
        let reserved = ["api".to_owned(), "dav".to_owned()];
        assert!(valid_bucket("photos", &reserved) && valid_bucket("my.bucket-1", &reserved));
        for bad in ["ab", "Photos", "-x-", "a..b", "a.-b", "a-.b", "192.168.1.1", "api", "dav", "under_score"] {
            assert!(!valid_bucket(bad, &reserved), "{bad}");
        }
        // Only what the router takes is reserved.
        assert!(valid_bucket("web", &[]) && !valid_bucket("web", &["web".to_owned()]));
        assert_eq!(key_path("b", "a/b.txt").unwrap(), "/b/a/b.txt");
        assert_eq!(key_path("b", "dir/").unwrap(), "/b/dir");
        for bad in ["", "a//b", "./a", "a/../b", "/a"] {
            assert!(key_path("b", bad).is_err(), "{bad}");
        }
        assert!(key_path("b", &"k".repeat(1025)).is_err());
    }
}
