//! Client endpoints as Twisted spells them, over real sockets on loopback: `bindAddress=` picks
//! the local address, a `tls:` client presents its `certificate=` to a server that asks for
//! one, and `unix:...:lockfile=1` connects only to a server that holds the lock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rtwisted_services::net::connect::connect;
use rtwisted_services::strports::ClientEndpoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);

fn endpoint(text: &str) -> ClientEndpoint {
    text.parse().unwrap()
}

/// A self-signed certificate for `name`, as `NAME.pem` and `NAME-key.pem` in `dir`.
/// Why a connection to `endpoint` could not be made.
async fn refusal(endpoint: &ClientEndpoint) -> String {
    match connect(endpoint, CancellationToken::new()).await {
        Ok(_) => panic!("{endpoint} connected"),
        Err(error) => error.to_string(),
    }
}

fn certificate(dir: &Path, name: &str, host: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec![host.into()]).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().to_vec())
}

/// Twisted's ClientStringTests.test_tcp reads `bindAddress=10.0.0.2`; here the address is a
/// second loopback address, and the server sees the connection come from it.
#[tokio::test]
async fn bind_address_sets_the_local_address_of_a_tcp_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move { listener.accept().await.unwrap().1 });
    let connection = connect(
        &endpoint(&format!(
            "tcp:host=127.0.0.1:port={port}:bindAddress=127.0.0.2"
        )),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let peer = tokio::time::timeout(DEADLINE, accept)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    drop(connection);

    // A bind address of the other family has nothing to connect to, and says so.
    let error = connect(
        &endpoint(&format!(
            r"tcp:host=127.0.0.1:port={port}:bindAddress=\:\:1"
        )),
        CancellationToken::new(),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        error.contains("127.0.0.1 has no IPv6 address to reach from bindAddress ::1"),
        "{error}"
    );
}

/// Twisted's WrapClientTLSParserTests.test_tls: a `tls:` client with `certificate=`,
/// `privateKey=`, `trustRoots=` and `bindAddress=` completes a handshake with a server that
/// demands a client certificate, and the server sees that certificate.
#[tokio::test]
async fn a_tls_client_presents_its_certificate_to_a_server_that_asks() {
    let dir = tempfile::tempdir().unwrap();
    let (server_cert, server_key, _) = certificate(dir.path(), "server", "localhost");
    let (client_cert, client_key, client_der) = certificate(dir.path(), "client", "client");
    let roots = dir.path().join("roots");
    std::fs::create_dir(&roots).unwrap();
    std::fs::copy(&server_cert, roots.join("server.pem")).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client_roots = rustls::RootCertStore::empty();
    client_roots
        .add(rustls_pki_types::CertificateDer::from(client_der.clone()))
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(client_roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    use rustls_pki_types::pem::PemObject;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            rustls_pki_types::CertificateDer::pem_file_iter(&server_cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            rustls_pki_types::PrivateKeyDer::from_pem_file(&server_key).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (socket, _) = listener.accept().await.unwrap();
            match acceptor.accept(socket).await {
                Ok(mut tls) => {
                    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
                    let mut buffer = [0u8; 5];
                    tls.read_exact(&mut buffer).await.unwrap();
                    tls.write_all(&buffer).await.unwrap();
                    tls.shutdown().await.unwrap();
                    seen.push(Some(presented));
                }
                Err(_) => seen.push(None),
            }
        }
        seen
    });

    let with_certificate = format!(
        "tls:localhost:{port}:certificate={}:privateKey={}:trustRoots={}:bindAddress=127.0.0.1",
        client_cert.display(),
        client_key.display(),
        roots.display()
    );
    let mut stream = connect(&endpoint(&with_certificate), CancellationToken::new())
        .await
        .unwrap()
        .stream;
    stream.write_all(b"hello").await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"hello");

    // Without a certificate the server refuses the handshake.
    let without = format!("tls:localhost:{port}:trustRoots={}", roots.display());
    if let Ok(connection) = connect(&endpoint(&without), CancellationToken::new()).await {
        let mut stream = connection.stream;
        let _ = stream.write_all(b"hello").await;
        let mut reply = Vec::new();
        assert!(stream.read_to_end(&mut reply).await.is_err() || reply.is_empty());
    }
    let seen = tokio::time::timeout(DEADLINE, server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, [Some(client_der), None]);

    // A key that does not belong to the certificate is an error naming both files.
    let mismatched = format!(
        "tls:localhost:{port}:certificate={}:privateKey={}",
        client_cert.display(),
        server_key.display()
    );
    let error = refusal(&endpoint(&mismatched)).await;
    assert!(
        error.contains("server-key.pem") && error.contains("client.pem"),
        "{error}"
    );
}

/// Twisted's ClientStringTests.test_unix reads `lockfile=1` (checkPID): connect only when a
/// live server holds `PATH.lock`.
#[tokio::test]
async fn unix_lockfile_connects_only_to_a_live_server_holding_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.sock");
    let _listener = tokio::net::UnixListener::bind(&path).unwrap();
    let checked = endpoint(&format!("unix:path={}:lockfile=1", path.display()));
    let error = refusal(&checked).await;
    assert!(
        error.contains("no live server holds") && error.contains("live.sock.lock"),
        "{error}"
    );
    // The lock held, as a unix: server with its lockfile holds it: the connection goes ahead.
    let lock = std::fs::File::create(dir.path().join("live.sock.lock")).unwrap();
    lock.lock().unwrap();
    assert!(connect(&checked, CancellationToken::new()).await.is_ok());
    // Without lockfile=1 nothing is checked.
    drop(lock);
    let unchecked = endpoint(&format!("unix:{}", path.display()));
    assert!(connect(&unchecked, CancellationToken::new()).await.is_ok());
}
