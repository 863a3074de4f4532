//! The `davit` binary as a library, so integration tests start the real server in-process
//! on 127.0.0.1:0 and stop it through its shutdown future.

pub mod access_log;
pub mod admin;
pub mod config;
pub mod conn;
pub mod hardening;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod tls;

use std::sync::Arc;

use anyhow::Context;
use davit_storage::{NewUser, Role, Status, Storage};
use tokio::net::TcpListener;

pub use config::Config;
pub use server::{App, serve, shutdown_signal};

/// Opens storage and makes sure an admin exists; returns the storage and, when one was
/// generated, the first admin's password (to be printed once).
pub fn open_storage(config: &Config) -> anyhow::Result<(Storage, Option<String>)> {
    let storage = Storage::open(config.storage()?)?;
    let generated = ensure_admin(&storage)?;
    Ok((storage, generated))
}

fn ensure_admin(storage: &Storage) -> anyhow::Result<Option<String>> {
    if storage.has_admin_blocking()? {
        return Ok(None);
    }
    let (password, generated) = match std::env::var("DAVIT_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (
            davit_storage::crypto::random_string(b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", 20),
            true,
        ),
    };
    storage
        .create_user_blocking(NewUser {
            username: "admin".into(),
            email: None,
            password: password.clone(),
            role: Role::Admin,
            status: Status::Active,
            quota: Some(0),
        })
        .map_err(|e| anyhow::anyhow!("creating the first admin: {e}"))?;
    Ok(generated.then_some(password))
}

/// Builds the application from an open storage.
pub fn build_app(config: &Config, storage: Storage) -> anyhow::Result<App> {
    let mailer = davit_api::Mailer::new(config.smtp_url.as_deref(), &config.mail_from, &config.data_dir)
        .map_err(anyhow::Error::msg)?;
    let secure_cookies =
        config.tls.is_some() || config.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    let api_state = davit_api::ApiState {
        storage: storage.clone(),
        mailer: Arc::new(mailer),
        secure_cookies,
        public_url: config.public_url.clone(),
        listen_url: (config.listen.port() != 0 && !config.listen.ip().is_unspecified())
            .then(|| format!("{}://{}", if config.tls.is_some() { "https" } else { "http" }, config.listen)),
    };
    let api = davit_api::router(api_state.clone());
    let webdav = davit_webdav::WebDav::new(storage.clone());
    let s3 = davit_s3::service(
        storage.clone(),
        config.base_domain.as_deref(),
        &server::ROUTED_PREFIXES.map(|(name, _)| name),
    )
    .map_err(anyhow::Error::msg)?;
    let public_origin = public_origin(config)?;
    Ok(App {
        trusted_proxies: proxy::TrustedProxies::new(config.trusted_proxies.clone()),
        public_origin,
        limits: server::Limits {
            header_timeout: config.header_timeout,
            body_idle_timeout: config.body_idle_timeout,
            max_connections_per_address: config.max_connections_per_address,
            send_idle_timeout: config.send_idle_timeout,
            max_connections: config.max_connections,
        },
        metrics: Arc::new(metrics::Metrics::new(config.ops.metrics_token.clone())),
        storage,
        api,
        api_state,
        webdav,
        s3,
        base_domain: config.base_domain.clone(),
        shutdown_timeout: config.shutdown_timeout,
    })
}

/// Binds, builds and serves until `shutdown` resolves.
/// What `davit serve` checks and takes before it opens the data folder, so that a busy port,
/// a bad certificate or a bad `--public-url` fails before anything is made there (found by
/// probing: a start that then could not listen had created the first admin and printed its
/// one-time password, which the next start no longer shows).
pub struct Prepared {
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

fn public_origin(config: &Config) -> anyhow::Result<Option<hardening::Origin>> {
    config
        .public_url
        .as_deref()
        .map(|u| {
            hardening::Origin::parse(u)
                .with_context(|| format!("--public-url {u}: expected http(s)://host[:port][/path]"))
        })
        .transpose()
}

pub fn prepare(config: &Config) -> anyhow::Result<Prepared> {
    public_origin(config)?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let listener =
        std::net::TcpListener::bind(config.listen).with_context(|| format!("listening on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    Ok(Prepared { listener, tls })
}

pub async fn run(
    config: Config,
    storage: Storage,
    prepared: Prepared,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let listener = TcpListener::from_std(prepared.listener)?;
    let tls = prepared.tls;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Printed whatever the log level: scripts and operators look for this line.
    eprintln!("davit listening on {scheme}://{}", listener.local_addr()?);
    let app = build_app(&config, storage.clone())?;
    let metrics_server = match config.ops.metrics_listen {
        Some(addr) => {
            let l = metrics::bind_separate(addr).await?;
            Some(tokio::spawn(metrics::serve_separate(l, app.metrics.clone(), storage.clone())))
        }
        None => None,
    };
    // With several nodes the chunk figures count only this node's changes: walked again
    // hourly. One node sees every change, so its figures stay exact without.
    let figures = storage.clone();
    let refresh = config.stores.chunk_grace.is_some().then(|| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = figures.refresh_figures().await {
                    tracing::warn!(error = %e, "recounting the chunk store's figures failed");
                }
            }
        })
    });
    // Abandoned multipart uploads hold chunks and quota: abort them once they are old.
    let expiry = config.multipart_expiry;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match storage.expire_uploads(expiry).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(uploads = n, "expired abandoned multipart uploads"),
                Err(e) => tracing::warn!(error = %e, "expiring multipart uploads failed"),
            }
        }
    });
    let served = serve(listener, app, tls, shutdown).await;
    for task in [refresh, metrics_server].into_iter().flatten() {
        task.abort();
    }
    served
}
