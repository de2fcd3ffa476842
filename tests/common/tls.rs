//! A test CA made at test time with the openssl command line, server certificates it
//! signs, and a SIP client over TLS on rustls that verifies the endpoint against that CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use zendesk_ivr::sip::message::{Framed, Limits, StreamFramer};

/// A CA in a temporary folder.
pub struct TestCa {
    pub dir: tempfile::TempDir,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/setup.sh installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestCa {
    /// A new CA (P-256, valid for two days), named `name`.
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().expect("temp dir");
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir.path(),
        );
        TestCa { dir }
    }

    /// The CA certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for 127.0.0.1 (IP and DNS name `localhost`) with this serial,
    /// written as `{label}.pem` and `{label}.key`.
    pub fn issue(&self, label: &str, serial: u32) -> Issued {
        self.issue_for(label, serial, "IP:127.0.0.1,DNS:localhost")
    }

    /// [`TestCa::issue`] naming only `names` (an openssl subjectAltName value).
    pub fn issue_for(&self, label: &str, serial: u32, names: &str) -> Issued {
        let dir = self.dir.path();
        std::fs::write(
            dir.join(format!("{label}.ext")),
            format!(
                "subjectAltName={names}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .expect("extensions file");
        let (key, csr, pem) =
            (format!("{label}.key"), format!("{label}.csr"), format!("{label}.pem"));
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=127.0.0.1",
            ],
            dir,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial.to_string(),
                "-days",
                "2",
                "-out",
                &pem,
                "-extfile",
                &format!("{label}.ext"),
            ],
            dir,
        );
        Issued { cert: dir.join(pem), key: dir.join(key) }
    }
}

/// The first certificate of a PEM file, as DER.
pub fn first_cert(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).expect("a PEM certificate")
}

/// A rustls client config trusting only `ca`.
pub fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(first_cert(ca)).expect("the CA certificate");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A SIP client on one TLS connection.
pub struct TlsClient {
    stream: TlsStream<TcpStream>,
    framer: StreamFramer,
    pub local: SocketAddr,
}

impl TlsClient {
    /// Connects to `addr` and verifies its certificate for 127.0.0.1 against `ca`.
    pub async fn connect(addr: SocketAddr, ca: &Path) -> std::io::Result<TlsClient> {
        let tcp = TcpStream::connect(addr).await?;
        let local = tcp.local_addr()?;
        let name = ServerName::IpAddress(addr.ip().into());
        let stream = TlsConnector::from(client_config(ca)).connect(name, tcp).await?;
        Ok(TlsClient { stream, framer: StreamFramer::new(Limits::default()), local })
    }

    /// The certificate the server presented.
    pub fn server_certificate(&self) -> CertificateDer<'static> {
        let (_, session) = self.stream.get_ref();
        session.peer_certificates().expect("a server certificate")[0].clone().into_owned()
    }

    pub async fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).await.expect("send over TLS");
    }

    /// The next whole message, within `within`.
    pub async fn recv(&mut self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = vec![0u8; 16_384];
        loop {
            while let Some(framed) = self.framer.next_message() {
                match framed.expect("a well-framed stream") {
                    Framed::Message(bytes) => return String::from_utf8(bytes).expect("UTF-8"),
                    Framed::Ping => {}
                }
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .expect("a message within the time limit")
                .expect("read over TLS");
            assert!(n > 0, "the endpoint closed the TLS connection");
            self.framer.push(&buf[..n]);
        }
    }

    /// The next response whose CSeq method is `method`, skipping provisional ones.
    pub async fn final_response(&mut self, method: &str, within: Duration) -> String {
        loop {
            let message = self.recv(within).await;
            let provisional = message.starts_with("SIP/2.0 1");
            let cseq = super::sip_phone::header(&message, &["CSeq"]).unwrap_or_default();
            if message.starts_with("SIP/2.0 ") && !provisional && cseq.ends_with(method) {
                return message;
            }
        }
    }
}

/// A TLS front for a plain TCP service (HTTP/1.1, no ALPN): accepts TLS on a free port
/// with `issued`'s certificate and relays each connection to `backend`. Returns where it
/// listens.
pub async fn tls_front(issued: &Issued, backend: SocketAddr) -> SocketAddr {
    use rustls::pki_types::PrivateKeyDer;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&issued.cert)
        .expect("certificate file")
        .collect::<Result<_, _>>()
        .expect("PEM certificates");
    let key = PrivateKeyDer::from_pem_file(&issued.key).expect("PEM key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}
