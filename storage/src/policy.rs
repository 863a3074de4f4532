//! Upload policy: a server-wide rule and optional rules per role (one seed allowed ops users
//! only .docx, .pptx and .xlsx). Refusals name the rule.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::Role;

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

impl Policy {
    /// The largest file a role may write (0 = unlimited): the smaller of the two rules.
    pub fn max_file_size(&self, role: Role) -> u64 {
        let limits = [self.server.max_file_size, self.roles.get(&role).and_then(|r| r.max_file_size)];
        limits.into_iter().flatten().filter(|&l| l > 0).min().unwrap_or(0)
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
}
