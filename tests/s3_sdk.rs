//! The S3 front end as the AWS SDK for Rust (`aws-sdk-s3`) sees it, over TLS with the test
//! certificate (and HTTP/2, which the SDK negotiates): every operation davit implements, their
//! refusals, presigned URLs fetched with a plain HTTP client, virtual-host addressing, and the
//! same files over WebDAV and REST.
//!
//! The SDK runs without retries, so an error the server answers is the error a test sees.

mod auth;
mod buckets;
mod checksums;
mod core;
mod cors;
mod cross;
mod fixes;
mod lifecycle;
mod listing;
mod markers;
mod multipart;
mod object_lock;
mod objects;
mod policy;
mod post;
mod presign;
mod sse;
mod tagging;
mod versions;
mod vhost;
mod writes;

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::support::{self, Options, TestServer};

/// A server over TLS and an SDK client with alice's new access key.
pub struct Sdk {
    pub s: TestServer,
    pub c: Client,
    pub key: String,
    pub secret: String,
}

/// Resolves every name to 127.0.0.1, so `<bucket>.s3.test` reaches the test server.
#[derive(Debug, Clone)]
struct Loopback;

impl ResolveDns for Loopback {
    fn resolve_dns<'a>(&'a self, _name: &'a str) -> DnsFuture<'a> {
        DnsFuture::ready(Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]))
    }
}

/// rustls with ring (no aws-lc) trusting only the test certificate. The certificate names
/// localhost and 127.0.0.1; it is also accepted for other names (`bkt.s3.test`) as localhost's.
fn http_client() -> SharedHttpClient {
    let pem = std::fs::read(support::cert_dir().join("cert.pem")).unwrap();
    let ctx = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .with_additional_server_names(vec!["localhost".try_into().unwrap()])
        .build()
        .unwrap();
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .tls_context(ctx)
        .build_with_resolver(Loopback)
}

/// The SDK configuration for `endpoint` (path style unless `virtual_host`), region us-east-1.
pub fn config(endpoint: &str, key: &str, secret: &str, virtual_host: bool) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(!virtual_host)
        .credentials_provider(Credentials::new(key, secret, None, None, "davit-tests"))
        .http_client(http_client())
        .retry_config(RetryConfig::disabled())
}

pub fn client(endpoint: &str, key: &str, secret: &str, virtual_host: bool) -> Client {
    Client::from_conf(config(endpoint, key, secret, virtual_host).build())
}

/// A user's new access key.
pub async fn key_of(s: &TestServer, user: &str) -> (String, String) {
    let u = s.storage.find_user(user).await.unwrap();
    let (key, secret) = s.storage.create_access_key(u.id).await.unwrap();
    (key.id, secret)
}

pub async fn start_with(opts: Options) -> Sdk {
    let s = support::start(Options { tls: true, ..opts }).await;
    let (key, secret) = key_of(&s, "alice").await;
    let c = client(&s.base, &key, &secret, false);
    Sdk { s, c, key, secret }
}

/// A server over TLS, alice's client, and her bucket `bkt`.
pub async fn start() -> Sdk {
    let sdk = start_with(Options::default()).await;
    sdk.c.create_bucket().bucket("bkt").send().await.unwrap();
    sdk
}

/// The HTTP status and S3 error code of a refusal; panics on success or a transport error.
pub fn refusal<T: Debug, E: ProvideErrorMetadata + Debug>(r: Result<T, SdkError<E, HttpResponse>>) -> (u16, String) {
    match r {
        Ok(v) => panic!("expected an S3 error, got {v:?}"),
        Err(SdkError::ServiceError(e)) => (e.raw().status().as_u16(), e.err().code().unwrap_or("<no code>").to_owned()),
        Err(e) => panic!("expected an S3 error, got {e:?}"),
    }
}

/// The body of a GetObject as bytes.
/// Uploads `data` as part 1 of the upload `id`; answers the part list that completes it.
pub async fn one_part(
    c: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    data: Vec<u8>,
) -> aws_sdk_s3::types::CompletedMultipartUpload {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let body = aws_sdk_s3::primitives::ByteStream::from(data);
    let part = c.upload_part().bucket(bucket).key(key).upload_id(id).part_number(1).body(body).send().await.unwrap();
    CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap()).build())
        .build()
}

pub async fn body(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The status and S3 error code of a plain HTTP answer.
pub async fn xml_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (status, body.split("<Code>").nth(1).and_then(|b| b.split("</Code>").next()).unwrap_or(&body).to_owned())
}
