//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` read from the URL, and a connector
//! over tokio-rustls with the ring provider (the tree keeps aws-lc and OpenSSL out, so no
//! ready-made connector crate, which would bring one of them in).
//!
//! The modes are libpq's, so a URL means what it means to `psql`:
//! - `disable`: no TLS.
//! - `prefer` (the default, as in libpq): TLS if the server offers it, else plain; the
//!   certificate is not checked (libpq does not check it either: this mode guards against
//!   a passive listener only).
//! - `require`: TLS or no connection, certificate not checked; with an `sslrootcert` given it
//!   is `verify-ca`, as libpq does for compatibility.
//! - `verify-ca`: the certificate must chain to a trusted root; its name is not checked.
//! - `verify-full`: that, and the certificate must name the host of the URL.
//!
//! Trusted roots: the PEM file `sslrootcert=FILE`, else the system's (`sslrootcert=system`
//! asks for them explicitly and, as in libpq, implies `verify-full`). tokio-postgres parses
//! neither `verify-*` nor `sslrootcert`, so both are taken out of the URL before it does.
//!
//! A client certificate (for a server whose `pg_hba.conf` says `cert`, or `clientcert=`):
//! `sslcert=FILE` (PEM, the certificate then any intermediates) and `sslkey=FILE` (PEM, PKCS#8,
//! PKCS#1 or SEC1, unencrypted), both or neither. Unlike libpq, nothing is read from
//! `~/.postgresql/` when they are absent: a server process should name what it presents. As
//! libpq does, a key file that its group or others may read is refused (group-readable is
//! allowed when root owns it).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Config, Socket};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, Mode::VerifyCa | Mode::VerifyFull)
    }
}

/// Where trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Roots {
    System,
    File(String),
}

/// A PostgreSQL URL read: what tokio-postgres takes, and how TLS is done.
pub(super) struct Target {
    pub(super) cfg: Config,
    pub(super) mode: Mode,
    roots: Roots,
    /// `sslcert` and `sslkey`: the certificate chain and key presented when the server asks.
    client: Option<(String, String)>,
}

/// Reads `url` (`postgres://` or `postgresql://`; the `key=value` form is passed to
/// tokio-postgres as it is, with its modes only). Errors never quote the URL: it may hold
/// a password.
pub(super) fn parse(url: &str) -> Result<Target, String> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (base, query) = match url.split_once('?') {
        Some((b, q)) if is_url => (b, Some(q)),
        _ => (url, None),
    };
    let (mut mode, mut roots, mut cert, mut key) = (None, None, None, None);
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match decode(k)?.as_str() {
            "sslmode" => {
                mode = Some(match decode(v)?.as_str() {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not supported (disable, prefer, require, verify-ca or verify-full)"
                        ));
                    }
                })
            }
            "sslrootcert" => {
                let v = decode(v)?;
                roots = Some(if v == "system" { Roots::System } else { Roots::File(v) });
            }
            "sslcert" => cert = Some(decode(v)?),
            "sslkey" => key = Some(decode(v)?),
            _ => kept.push(pair),
        }
    }
    let mode = match (mode, &roots) {
        (None, Some(Roots::System)) => Mode::VerifyFull,
        (Some(m), Some(Roots::System)) if m != Mode::VerifyFull => {
            return Err(format!("sslmode={} may not be used with sslrootcert=system (use verify-full)", m.name()));
        }
        (Some(Mode::Require), Some(Roots::File(_))) => Mode::VerifyCa,
        (m, _) => m.unwrap_or(Mode::Prefer),
    };
    let client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("sslcert and sslkey go together: give both, or neither".into()),
    };
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    let mut cfg: Config = rest.parse().map_err(|e| format!("{e}"))?;
    // Only a mode given in the URL overrides one of the `key=value` form.
    if is_url || mode != Mode::Prefer {
        cfg.ssl_mode(match mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        });
    }
    let mode = match cfg.get_ssl_mode() {
        SslMode::Disable => Mode::Disable,
        SslMode::Require if mode == Mode::Prefer => Mode::Require,
        _ => mode,
    };
    Ok(Target { cfg, mode, roots: roots.unwrap_or(Roots::System), client })
}

/// Percent-decoding of a URL parameter, as tokio-postgres does it.
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or("a bad %-escape in the URL's parameters")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a URL parameter that is not UTF-8".into())
}

impl Target {
    /// The connector for this target. Reads the root certificates (a small file, once, when
    /// the store opens).
    pub(super) fn connector(&self) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = if self.mode.verifies() {
            let roots = Arc::new(self.load_roots()?);
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("the root certificates of {}: {e}", self.roots_shown()))?;
            Arc::new(Verify { inner, check_name: self.mode == Mode::VerifyFull })
        } else {
            Arc::new(Unchecked(provider.clone()))
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let (chain, key_der) = load_client(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| format!("sslcert={cert} with sslkey={key}: {e}"))?
            }
        };
        Ok(Tls(Arc::new(config)))
    }

    fn load_roots(&self) -> Result<RootCertStore, String> {
        let mut store = RootCertStore::empty();
        match &self.roots {
            Roots::File(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("sslrootcert={path}: {e}"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("sslrootcert={path}: {e}"))?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("sslrootcert={path} holds no certificate davit can use"));
                }
            }
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(format!(
                        "sslmode={} found no root certificates on this system: give sslrootcert=FILE in the URL",
                        self.mode.name()
                    ));
                }
            }
        }
        Ok(store)
    }

    fn roots_shown(&self) -> String {
        match &self.roots {
            Roots::File(p) => format!("sslrootcert={p}"),
            Roots::System => "the system's roots".into(),
        }
    }

    /// What a failed connection is told besides the client's error, when the failure may
    /// come from the certificate check: which mode, and which roots.
    pub(super) fn explain(&self, error: &str) -> String {
        if self.mode.verifies() && error.contains("certificate") {
            let name = if self.mode == Mode::VerifyFull { " and name the host" } else { "" };
            let root = match &self.roots {
                Roots::File(p) => format!("a certificate in sslrootcert={p}"),
                Roots::System => "a root certificate of this system".into(),
            };
            format!("{error} (sslmode={}: the server's certificate must chain to {root}{name})", self.mode.name())
        } else {
            error.to_owned()
        }
    }
}

/// The client's certificate chain and key, read once when the store opens.
fn load_client(cert: &str, key: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("sslcert={cert}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslcert={cert}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("sslcert={cert} holds no certificate"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(key).map_err(|e| format!("sslkey={key}: {e}"))?;
        // libpq's rule: a key others may read is no longer the client's own secret.
        let forbidden = if meta.uid() == 0 { 0o037 } else { 0o077 };
        if meta.mode() & forbidden != 0 {
            return Err(format!(
                "sslkey={key} may be read by its group or others: allow only its owner (chmod 600; 640 when root owns it)"
            ));
        }
    }
    // The message never quotes the file's content: it is a secret.
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey={key}: {e}"))?;
    Ok((chain, key_der))
}

/// `verify-full` (webpki, as is) or `verify-ca` (webpki, but a certificate for another name
/// is accepted: webpki checks the chain before the name, so that error means the chain
/// held).
#[derive(Debug)]
struct Verify {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer` and `require`: any certificate (as libpq), but the handshake's signatures are
/// still checked, so the session is with whoever holds that certificate's key.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The connector tokio-postgres is given (cloned per connection: an `Arc`).
#[derive(Clone)]
pub(super) struct Tls(Arc<ClientConfig>);

impl MakeTlsConnect<Socket> for Tls {
    type Stream = Stream;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<Connect> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the host is not a valid TLS server name"))?;
        Ok(Connect { config: self.0.clone(), name })
    }
}

pub(super) struct Connect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for Connect {
    type Stream = Stream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { connector.connect(self.name, socket).await.map(Stream) })
    }
}

pub(super) struct Stream(tokio_rustls::client::TlsStream<Socket>);

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PostgreSQL TLS stream")
    }
}

impl tokio_postgres::tls::TlsStream for Stream {
    /// `tls-server-end-point` (RFC 5929): the hash of the server's certificate, which SCRAM
    /// then signs (`SCRAM-SHA-256-PLUS`), so a password exchange relayed by a man in the
    /// middle fails even where the certificate is not checked (`prefer`, `require`).
    fn channel_binding(&self) -> ChannelBinding {
        let cert = self.0.get_ref().1.peer_certificates().and_then(|c| c.first());
        match cert.and_then(|c| end_point_hash(c).map(|alg| ring::digest::digest(alg, c))) {
            Some(hash) => ChannelBinding::tls_server_end_point(hash.as_ref().to_vec()),
            None => ChannelBinding::none(),
        }
    }
}

/// The hash RFC 5929 binds a certificate with: its signature's own, SHA-256 for MD5 and
/// SHA-1, none for the rest (Ed25519 and RSA-PSS, which name no hash here, and SHA-224,
/// which ring lacks): SCRAM then runs without channel binding, which the server accepts.
fn end_point_hash(cert: &[u8]) -> Option<&'static ring::digest::Algorithm> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, .. }, .. }
    let (_, body, _) = der(cert)?;
    let (_, _, after_tbs) = der(body)?;
    let (tag, alg, _) = der(after_tbs)?;
    let (oid_tag, oid, _) = der(alg)?;
    if tag != 0x30 || oid_tag != 0x06 {
        return None;
    }
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04]; // 1.2.840.10045.4
    use ring::digest::{SHA256, SHA384, SHA512};
    match oid {
        [p @ .., 4 | 5 | 11] if p == RSA => Some(&SHA256), // md5, sha1, sha256
        [p @ .., 12] if p == RSA => Some(&SHA384),
        [p @ .., 13] if p == RSA => Some(&SHA512),
        [p @ .., 1] if p == ECDSA => Some(&SHA256), // ecdsa-with-SHA1
        [p @ .., 3, 2] if p == ECDSA => Some(&SHA256),
        [p @ .., 3, 3] if p == ECDSA => Some(&SHA384),
        [p @ .., 3, 4] if p == ECDSA => Some(&SHA512),
        _ => None,
    }
}

/// One DER element: (tag, contents, what follows). Definite lengths only, as DER has.
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, &x| acc << 8 | x as usize), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
