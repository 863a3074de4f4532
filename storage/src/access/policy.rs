//! Upload policy: a server-wide rule and optional rules per role (one seed allowed ops users
//! only .docx, .pptx and .xlsx). Refusals name the rule.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::meta::model::Role;

#[derive(Clone, Debug, Default)]
pub struct Rule {
    /// Largest file, in bytes.
    pub max_file_size: Option<u64>,
    /// Lower-case extensions without the dot; None allows all.
    pub allowed_extensions: Option<Vec<String>>,
    /// Content types (`type/subtype`); None allows all.
    pub allowed_types: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub server: Rule,
    pub roles: HashMap<Role, Rule>,
}

/// Where a size limit comes from, so a refusal can name the rule that applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// `--max-file-size` or the server-wide `[policy]` rule.
    Server,
    /// The `[policy.roles.<role>]` rule.
    Role(Role),
}

/// The largest file a principal may store, and which rule says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeLimit {
    pub bytes: u64,
    pub source: LimitSource,
}

impl SizeLimit {
    /// The refusal of a file of `size` bytes (None: its size is not known yet, only that it
    /// is over).
    pub fn refusal(&self, size: Option<u64>) -> Error {
        let rule = match self.source {
            LimitSource::Server => "on this server".to_owned(),
            LimitSource::Role(r) => format!("for the {} role", r.as_str()),
        };
        let what = match size {
            Some(s) => format!("{s} bytes is too large: "),
            None => String::new(),
        };
        Error::TooLarge(format!("{what}files are limited to {} bytes {rule}", self.bytes))
    }

    /// Refuses a file (or a part of one: no part can be larger than the whole) over the limit.
    pub fn check(&self, size: u64) -> Result<()> {
        if size > self.bytes { Err(self.refusal(Some(size))) } else { Ok(()) }
    }
}

impl Policy {
    /// The one size rule of every write (single writes, each multipart part, and the sum of
    /// the parts at completion): the smallest of the server-wide limit (`server_max`, from
    /// `--max-file-size`, and this policy's server rule) and the role's rule. A limit of 0
    /// means none. On a tie the role's rule is named, as it is the narrower one.
    pub fn size_limit(&self, role: Role, server_max: u64) -> Option<SizeLimit> {
        let server = [Some(server_max), self.server.max_file_size]
            .into_iter()
            .flatten()
            .filter(|&l| l > 0)
            .min()
            .map(|bytes| SizeLimit { bytes, source: LimitSource::Server });
        let role = self
            .roles
            .get(&role)
            .and_then(|r| r.max_file_size)
            .filter(|&l| l > 0)
            .map(|bytes| SizeLimit { bytes, source: LimitSource::Role(role) });
        match (server, role) {
            (Some(s), Some(r)) => Some(if r.bytes <= s.bytes { r } else { s }),
            (s, r) => s.or(r),
        }
    }

    /// The largest file a role may write (0 = unlimited) under this policy alone.
    pub fn max_file_size(&self, role: Role) -> u64 {
        self.size_limit(role, 0).map_or(0, |l| l.bytes)
    }

    /// Refuses a file name or declared type the server's or the role's rule does not allow.
    pub fn check_file(&self, role: Role, name: &str, content_type: Option<&str>) -> Result<()> {
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        let ctype = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        for (scope, rule) in [("server", Some(&self.server)), (role.as_str(), self.roles.get(&role))] {
            let Some(rule) = rule else { continue };
            if let Some(exts) = &rule.allowed_extensions
                && !exts.iter().any(|e| e.trim_start_matches('.').eq_ignore_ascii_case(&ext))
            {
                return Err(Error::TypeNotAllowed(format!(
                    "the {scope} upload policy allows only files ending in {}",
                    exts.iter().map(|e| format!(".{}", e.trim_start_matches('.'))).collect::<Vec<_>>().join(", ")
                )));
            }
            if let (Some(types), Some(ct)) = (&rule.allowed_types, &ctype)
                && !types.iter().any(|t| t.eq_ignore_ascii_case(ct))
            {
                return Err(Error::TypeNotAllowed(format!(
                    "the {scope} upload policy allows only content types {}",
                    types.join(", ")
                )));
            }
        }
        Ok(())
    }
}

impl crate::Storage {
    /// The size rule of `role`'s writes, whole files and multipart uploads alike (see
    /// [`Policy::size_limit`]).
    pub fn size_limit(&self, role: Role) -> Option<SizeLimit> {
        self.core.config.policy.size_limit(role, self.core.config.max_file_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_combine_and_name_themselves() {
        let mut p = Policy::default();
        p.server.max_file_size = Some(100);
        p.roles.insert(
            Role::Uploader,
            Rule {
                max_file_size: Some(50),
                allowed_extensions: Some(vec!["docx".into(), ".xlsx".into()]),
                allowed_types: None,
            },
        );
        assert_eq!(p.max_file_size(Role::User), 100);
        assert_eq!(p.max_file_size(Role::Uploader), 50);
        assert!(p.check_file(Role::User, "a.exe", None).is_ok());
        assert!(p.check_file(Role::Uploader, "Report.DOCX", None).is_ok());
        let e = p.check_file(Role::Uploader, "a.exe", None).unwrap_err().to_string();
        assert!(e.contains("uploader") && e.contains(".docx"), "{e}");
    }

    #[test]
    fn one_size_rule_names_the_limit_that_applied() {
        let mut p = Policy::default();
        assert_eq!(p.size_limit(Role::User, 0), None, "no limit anywhere");
        p.roles.insert(Role::Uploader, Rule { max_file_size: Some(1_000_000), ..Default::default() });
        let role = p.size_limit(Role::Uploader, 0).unwrap();
        assert_eq!(role, SizeLimit { bytes: 1_000_000, source: LimitSource::Role(Role::Uploader) });
        assert_eq!(p.size_limit(Role::User, 0), None, "the rule is the uploader's only");
        // The server-wide limit applies to everyone, and wins where it is smaller.
        let server = p.size_limit(Role::User, 5_000).unwrap();
        assert_eq!(server, SizeLimit { bytes: 5_000, source: LimitSource::Server });
        assert_eq!(p.size_limit(Role::Uploader, 5_000).unwrap(), server);
        assert_eq!(p.size_limit(Role::Uploader, 2_000_000).unwrap(), role, "the role's is smaller");
        p.server.max_file_size = Some(4_000);
        assert_eq!(p.size_limit(Role::User, 5_000).unwrap().bytes, 4_000, "the policy's server rule counts too");

        assert!(role.check(1_000_000).is_ok());
        let e = role.check(2_000_000).unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)));
        let text = e.to_string();
        assert!(text.contains("uploader role") && !text.contains("on this server"), "{text}");
        assert!(server.refusal(None).to_string().contains("on this server"));
    }
}
