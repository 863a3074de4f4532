//! Names and paths of the drive tree. Every path that enters the core passes through here.

use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

pub const MAX_NAME_BYTES: usize = 255;
pub const MAX_PATH_BYTES: usize = 4096;
/// The virtual top-level folder where items shared with a user appear.
pub const SHARED_ROOT: &str = "shared";

/// Validates one name and returns it normalised to NFC (macOS clients send NFD).
pub fn normalize_name(raw: &str) -> Result<String> {
    let name: String = raw.nfc().collect();
    if name.is_empty() {
        return Err(Error::InvalidName("empty name".into()));
    }
    if name == "." || name == ".." {
        return Err(Error::InvalidName(format!("'{name}' is not a valid name")));
    }
    if name.contains('/') || name.contains('\0') {
        return Err(Error::InvalidName("a name cannot contain '/' or NUL".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidName(format!("a name is at most {MAX_NAME_BYTES} bytes")));
    }
    Ok(name)
}

/// Refuses a name a new item may not take: control characters (C0, DEL and C1) break the
/// listings of every protocol (XML 1.0 cannot carry most of them at all, even escaped) and
/// the terminals and logs names are shown in. Existing items keep their names (they were
/// accepted before this rule), so lookups do not apply it: they can still be read, moved
/// away and deleted.
pub fn check_new_name(name: &str) -> Result<()> {
    if let Some(c) = name.chars().find(|c| is_control(*c)) {
        return Err(Error::InvalidName(format!("a name cannot contain control characters (U+{:04X})", c as u32)));
    }
    Ok(())
}

/// C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F).
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// A validated path inside a drive: its names, in NFC, root first. Empty means the root.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DrivePath(Vec<String>);

impl DrivePath {
    pub fn root() -> Self {
        DrivePath(Vec::new())
    }

    /// Parses `/a/b/c` (leading and trailing `/` and repeated `/` ignored).
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.len() > MAX_PATH_BYTES {
            return Err(Error::InvalidName(format!("a path is at most {MAX_PATH_BYTES} bytes")));
        }
        let names = raw.split('/').filter(|s| !s.is_empty()).map(normalize_name).collect::<Result<Vec<_>>>()?;
        let p = DrivePath(names);
        if p.byte_len() > MAX_PATH_BYTES {
            return Err(Error::InvalidName(format!("a path is at most {MAX_PATH_BYTES} bytes")));
        }
        Ok(p)
    }

    pub fn from_names(names: Vec<String>) -> Result<Self> {
        let names = names.iter().map(|n| normalize_name(n)).collect::<Result<Vec<_>>>()?;
        Ok(DrivePath(names))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    pub fn parent(&self) -> Option<DrivePath> {
        (!self.0.is_empty()).then(|| DrivePath(self.0[..self.0.len() - 1].to_vec()))
    }

    pub fn join(&self, name: &str) -> Result<DrivePath> {
        let mut v = self.0.clone();
        v.push(normalize_name(name)?);
        Ok(DrivePath(v))
    }

    /// The names after the first `n`.
    pub fn skip(&self, n: usize) -> DrivePath {
        DrivePath(self.0.get(n..).unwrap_or_default().to_vec())
    }

    pub fn starts_with(&self, other: &DrivePath) -> bool {
        self.0.len() >= other.0.len() && self.0[..other.0.len()] == other.0[..]
    }

    /// True for `/shared` itself, the reserved virtual folder.
    pub fn is_shared_root(&self) -> bool {
        self.0.len() == 1 && self.0[0] == SHARED_ROOT
    }

    /// True for `/shared` and everything below it.
    pub fn in_shared(&self) -> bool {
        self.0.first().is_some_and(|n| n == SHARED_ROOT)
    }

    /// Refuses names new items would take at this path: the last one, or every one when
    /// missing folders are made on the way (S3 keys).
    pub fn check_new(&self, with_parents: bool) -> Result<()> {
        let new = if with_parents { &self.0[..] } else { self.0.last().map(std::slice::from_ref).unwrap_or_default() };
        new.iter().try_for_each(|n| check_new_name(n))
    }

    fn byte_len(&self) -> usize {
        self.0.iter().map(|n| n.len() + 1).sum()
    }
}

impl std::fmt::Display for DrivePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for n in &self.0 {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// Usernames: 3–64 characters of `a-z0-9._-`.
pub fn validate_username(name: &str) -> Result<()> {
    let ok = (3..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput("a username is 3 to 64 characters of a-z, 0-9, '.', '_' and '-'".into()))
    }
}

/// A deliberately small check: one '@', something on each side, no spaces; the mailed code
/// is the real proof of an address.
pub fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_ascii_lowercase();
    let valid = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.contains('@'));
    if valid { Ok(e) } else { Err(Error::InvalidInput("not a valid email address".into())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(normalize_name("").is_err());
        assert!(normalize_name(".").is_err());
        assert!(normalize_name("..").is_err());
        assert!(normalize_name("a\0b").is_err());
        assert!(normalize_name(&"x".repeat(256)).is_err());
        assert_eq!(normalize_name(&"x".repeat(255)).unwrap().len(), 255);
        // NFD "é" becomes NFC.
        assert_eq!(normalize_name("e\u{301}").unwrap(), "\u{e9}");
    }

    #[test]
    fn control_characters_are_refused_in_new_names_only() {
        for bad in ["c\u{1}.txt", "tab\there", "nl\n", "del\u{7f}", "c1\u{85}x", "c1\u{9f}", "\u{1b}[31mred"] {
            let e = check_new_name(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidName(_)), "{bad:?}: {e:?}");
            // A lookup still parses it: items named before the rule stay reachable.
            assert!(normalize_name(bad).is_ok(), "{bad:?}");
        }
        for good in ["plain.txt", "r\u{e9}sum\u{e9}", "\u{a0}nbsp", "\u{a0}", "emoji \u{1f600}", "~$lock.docx"] {
            assert!(check_new_name(good).is_ok(), "{good:?}");
        }
        let p = DrivePath::parse("/a\u{1}/b").unwrap();
        assert!(p.check_new(false).is_ok(), "only the last name is new");
        assert!(p.check_new(true).is_err(), "every name is new when parents are made");
        assert!(DrivePath::root().check_new(true).is_ok());
    }

    #[test]
    fn paths() {
        let p = DrivePath::parse("/a//b/c/").unwrap();
        assert_eq!(p.names(), ["a", "b", "c"]);
        assert_eq!(p.to_string(), "/a/b/c");
        assert!(DrivePath::parse("/a/../b").is_err());
        assert!(DrivePath::parse(&format!("/{}", "a/".repeat(2100))).is_err());
        assert!(DrivePath::parse("/").unwrap().is_root());
        assert!(DrivePath::parse("/shared").unwrap().is_shared_root());
    }

    #[test]
    fn usernames_and_emails() {
        assert!(validate_username("ab").is_err());
        assert!(validate_username("Alice").is_err());
        assert!(validate_username("alice.b-c_9").is_ok());
        assert_eq!(normalize_email(" A@B.io ").unwrap(), "a@b.io");
        assert!(normalize_email("nope").is_err());
    }
}
