//! The admin commands through a running server's REST admin API (`--server URL`): the
//! server keeps its data folder, so this is how a live deployment is administered.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::{AdminCommand, KeyCommand, UserCommand, output};

struct Client {
    base: String,
    user: String,
    password: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    fn new(url: &str) -> anyhow::Result<Self> {
        let base = url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server: an http:// or https:// URL, not `{}`", crate::config::redact_url(&base));
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let user = env("DAVIT_ADMIN_USER").unwrap_or_else(|| "admin".into());
        let password = env("DAVIT_ADMIN_PASSWORD")
            .context("--server needs the admin's password (or an app password) in DAVIT_ADMIN_PASSWORD")?;
        // No overall timeout: a backup answers when it is finished, which may take hours.
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Client { base, user, password, http, rt })
    }

    /// One call; a refusal becomes an error carrying the server's reason (never the password).
    fn call(&self, method: Method, path: &str, query: &[(&str, String)], body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        self.rt.block_on(async {
            let mut req = self.http.request(method, &url).basic_auth(&self.user, Some(&self.password)).query(query);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.with_context(|| format!("reaching {}", self.base))?;
            let status = resp.status();
            let text = resp.text().await.context("reading the server's answer")?;
            if !status.is_success() {
                let detail = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["detail"].as_str().or(v["title"].as_str()).map(str::to_owned))
                    .unwrap_or_else(|| text.chars().take(200).collect());
                bail!("the server refused ({}): {detail}", status.as_u16());
            }
            if text.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(&text).context("the server's answer is not JSON")
        })
    }

    /// Every user, following the pages.
    fn users(&self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut after = 0u64;
        // Bounded: a thousand pages of a thousand users.
        for _ in 0..1000 {
            let page = self.call(
                Method::GET,
                "/admin/users",
                &[("after", after.to_string()), ("limit", "1000".into())],
                None,
            )?;
            out.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_after"].as_u64() {
                Some(next) => after = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// A user's id by username or email (the search matches parts of both: pages are
    /// followed until the exact one shows).
    fn user_id(&self, name: &str) -> anyhow::Result<u64> {
        let want = name.trim().to_lowercase();
        let mut after = 0u64;
        for _ in 0..1000 {
            let page = self.call(
                Method::GET,
                "/admin/users",
                &[("q", want.clone()), ("after", after.to_string()), ("limit", "1000".into())],
                None,
            )?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let found = items
                .iter()
                .find(|u| u["username"].as_str() == Some(&want) || u["email"].as_str() == Some(&want))
                .and_then(|u| u["id"].as_u64());
            if let Some(id) = found {
                return Ok(id);
            }
            match page["next_after"].as_u64() {
                Some(next) => after = next,
                None => break,
            }
        }
        bail!("no user named {name}")
    }
}

pub fn run(url: &str, as_json: bool, cmd: AdminCommand) -> anyhow::Result<()> {
    let c = Client::new(url)?;
    match cmd {
        AdminCommand::User(UserCommand::Add { name, password_stdin: _, email, role, quota }) => {
            let password = super::read_password()?;
            let mut body = json!({ "username": name, "password": password, "role": role });
            if let Some(e) = email {
                body["email"] = json!(e);
            }
            if let Some(q) = quota {
                body["quota"] = json!(q);
            }
            let u = c.call(Method::POST, "/admin/users", &[], Some(body))?;
            output::user("created", &u, as_json);
        }
        AdminCommand::User(UserCommand::List) => output::users(&c.users()?, as_json),
        AdminCommand::User(UserCommand::Disable { name }) => {
            let id = c.user_id(&name)?;
            let u = c.call(Method::PATCH, &format!("/admin/users/{id}"), &[], Some(json!({ "disabled": true })))?;
            output::user("disabled", &u, as_json);
        }
        AdminCommand::User(UserCommand::Enable { name }) => {
            let id = c.user_id(&name)?;
            let u = c.call(Method::PATCH, &format!("/admin/users/{id}"), &[], Some(json!({ "disabled": false })))?;
            output::user("enabled", &u, as_json);
        }
        AdminCommand::User(UserCommand::Quota { name, size }) => {
            let id = c.user_id(&name)?;
            let u = c.call(Method::PATCH, &format!("/admin/users/{id}"), &[], Some(json!({ "quota": size })))?;
            output::user("set the quota of", &u, as_json);
        }
        AdminCommand::User(UserCommand::Delete { name }) => {
            let id = c.user_id(&name)?;
            let u = c.call(Method::GET, &format!("/admin/users/{id}"), &[], None)?;
            c.call(Method::DELETE, &format!("/admin/users/{id}"), &[], None)?;
            output::user("deleted", &u, as_json);
        }
        AdminCommand::User(UserCommand::Passwd { .. }) => bail!(
            "with --server, set a password through the REST API (POST /api/v1/admin/users/ID/password), \
             which mails the user; `user passwd` works offline only"
        ),
        AdminCommand::Key(KeyCommand::Add { user }) => {
            let id = c.user_id(&user)?;
            let k = c.call(Method::POST, &format!("/admin/users/{id}/keys"), &[], None)?;
            output::key(&k, as_json);
        }
        AdminCommand::Stats => output::stats(&c.call(Method::GET, "/admin/stats", &[], None)?, as_json),
        AdminCommand::Check => output::check(&c.call(Method::GET, "/admin/check", &[], None)?, as_json)?,
        AdminCommand::Backup { to } => {
            let Some(path) = to.to_str() else { bail!("--to: the path is not UTF-8") };
            let r = c.call(Method::POST, "/admin/backup", &[], Some(json!({ "to": path })))?;
            output::backup(&r, &to, as_json);
        }
        AdminCommand::Restore { .. } | AdminCommand::RotateMasterKey { .. } | AdminCommand::Migrate(_) => {
            bail!("this command works on stopped stores only: run it without --server")
        }
    }
    Ok(())
}
