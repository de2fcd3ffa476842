//! SIP over TLS (RFC 3261 §26.2) on rustls with the ring provider: the listener, outgoing
//! connections that verify the peer's certificate, and the server certificate read again
//! on SIGHUP.
//!
//! TLS connections run on the same stream path as TCP ([`Transports::register`]); only the
//! handshake is here. A reload swaps the certificate for new handshakes; connections
//! already up keep theirs. A reload that fails keeps the certificate in use.
//!
//! Outgoing connections verify the peer against `sip.tls_ca_file` (or the system roots):
//! for a target dialled by host name, the certificate must name that host; for one
//! dialled by IP address (or reached otherwise, e.g. a dialog's peer), that address.
//!
//! Metrics: `sip_tls_handshakes_failed_total{side}` (`in`, `out`),
//! `sip_tls_reloads_total{result}` (`ok`, `failed`).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use super::Transports;
use crate::config::SipConfig;
use crate::security_event::{self, SecurityEvent};
use crate::sip::header_text;
use crate::sip::message::Transport;
use crate::sip::transaction::Peer;

/// How long a TLS handshake may take, either way.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Incoming handshakes in progress at once; connections past it are closed at once.
const MAX_HANDSHAKES: usize = 256;
/// Host names remembered for outgoing TLS targets (configured targets are few).
const MAX_NAMES: usize = 1024;

/// Where TLS listens and which files it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates for verifying peers we connect to; the system roots if none.
    pub ca_file: Option<PathBuf>,
}

impl TlsSettings {
    /// From `[sip]`: `None` unless `tls_listen`, `tls_cert` and `tls_key` are all set.
    pub fn from_config(sip: &SipConfig) -> Option<Self> {
        Some(TlsSettings {
            listen: sip.tls_listen?,
            cert: sip.tls_cert.clone()?,
            key: sip.tls_key.clone()?,
            ca_file: sip.tls_ca_file.clone(),
        })
    }
}

/// Why TLS could not be set up or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("the key in {key} does not fit the certificate in {cert}: {reason}")]
    Key { cert: PathBuf, key: PathBuf, reason: String },
    #[error("no CA certificate could be used: {0}")]
    Roots(String),
    #[error("TLS settings: {0}")]
    Setup(String),
}

/// The server certificate in use, swapped whole on reload.
#[derive(Debug)]
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl CurrentCertificate {
    fn get(&self) -> Arc<CertifiedKey> {
        // Only whole `Arc`s are ever stored: a poisoned lock still holds a good one.
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn set(&self, key: CertifiedKey) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(key);
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// TLS for SIP: the acceptor, the connector and the reloadable certificate.
pub struct SipTls {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    certificate: Arc<CurrentCertificate>,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    local: OnceLock<SocketAddr>,
    /// The host name an outgoing target's certificate must name, by the address it
    /// resolved to; targets dialled by IP address are verified by that address.
    names: Mutex<HashMap<SocketAddr, ServerName<'static>>>,
}

impl std::fmt::Debug for SipTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipTls").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl SipTls {
    /// Reads the certificate, key and CA files (blocking: call it off the async workers).
    pub fn load(settings: TlsSettings) -> Result<SipTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = certified_key(&settings.cert, &settings.key, &provider)?;
        let certificate = Arc::new(CurrentCertificate(RwLock::new(Arc::new(key))));
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        let roots = root_store(settings.ca_file.as_deref())?;
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(SipTls {
            settings,
            provider,
            certificate,
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            local: OnceLock::new(),
            names: Mutex::default(),
        })
    }

    /// [`SipTls::load`] from `[sip]` on a blocking thread; `None` when TLS is not
    /// configured.
    pub async fn from_config(sip: &SipConfig) -> Result<Option<SipTls>, TlsError> {
        let Some(settings) = TlsSettings::from_config(sip) else { return Ok(None) };
        tokio::task::spawn_blocking(move || SipTls::load(settings))
            .await
            .map_err(|e| TlsError::Setup(format!("loading the TLS files did not finish: {e}")))?
            .map(Some)
    }

    /// Reads the certificate and key again; new handshakes use them. On error the
    /// certificate in use stays. Blocking, like [`SipTls::load`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = certified_key(&self.settings.cert, &self.settings.key, &self.provider)?;
        self.certificate.set(key);
        Ok(())
    }

    /// Remembers that `target` (a `;transport=tls` URI with a host name) resolved to
    /// `addr`, so that a connection to `addr` verifies the certificate for that name.
    pub fn name_target(&self, target: &str, addr: SocketAddr) {
        let Some(name) = target_name(target) else { return };
        let mut names = self.names.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if names.len() >= MAX_NAMES && !names.contains_key(&addr) {
            return warn!(%addr, "too many TLS target names; verifying by address");
        }
        names.insert(addr, name);
    }

    /// The name a connection to `addr` verifies the certificate for.
    fn server_name(&self, addr: SocketAddr) -> ServerName<'static> {
        let names = self.names.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        names.get(&addr).cloned().unwrap_or(ServerName::IpAddress(addr.ip().into()))
    }

    /// The address the TLS listener is bound to, once bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local.get().copied()
    }

    pub(super) async fn bind(&self) -> io::Result<TcpListener> {
        let listen = self.settings.listen;
        let listener = TcpListener::bind(listen).await.map_err(|err| {
            io::Error::new(err.kind(), format!("TLS (sip.tls_listen {listen}): {err}"))
        })?;
        let _ = self.local.set(listener.local_addr()?);
        Ok(listener)
    }
}

/// The host name a TLS target's certificate must name: `None` for targets that are not
/// TLS (`sips:` or `;transport=tls`) or whose host is an IP address.
fn target_name(target: &str) -> Option<ServerName<'static>> {
    let tls = header_text::uri_param(target, "transport")
        .is_some_and(|t| t.eq_ignore_ascii_case("tls"))
        || header_text::scheme(target).as_deref() == Some("sips");
    if !tls || header_text::ip_host(target).is_some() {
        return None;
    }
    let (host, _) = header_text::host_port(target)?;
    ServerName::try_from(host).ok()
}

/// The certificate chain and key from two PEM files, checked to belong together.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path, e: &dyn std::fmt::Display| TlsError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| read(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read(cert, &e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_path_buf() });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| read(key, &e))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| TlsError::Key {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The CAs outgoing connections trust: the CA file's, else the system's.
fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = match ca_file {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| TlsError::Read { path: path.to_path_buf(), reason: e.to_string() })?,
        None => {
            let found = rustls_native_certs::load_native_certs();
            for err in &found.errors {
                debug!(%err, "a system CA certificate could not be read");
            }
            found.certs
        }
    };
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    match ca_file {
        Some(path) if added == 0 => {
            Err(TlsError::Roots(format!("{} holds no usable CA certificate", path.display())))
        }
        None if added == 0 => {
            warn!(
                "no system CA certificates: outgoing SIP over TLS fails until sip.tls_ca_file is set"
            );
            Ok(roots)
        }
        _ => Ok(roots),
    }
}

impl Transports {
    /// The address SIP over TLS listens on, when configured.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|tls| tls.local_addr())
    }

    /// Remembers the host name of a TLS target (see [`SipTls::name_target`]); nothing
    /// without TLS.
    pub fn name_tls_target(&self, target: &str, addr: SocketAddr) {
        if let Some(tls) = &self.tls {
            tls.name_target(target, addr);
        }
    }

    /// Accepts TLS connections; each handshake runs on its own task, under a deadline,
    /// and at most [`MAX_HANDSHAKES`] at once.
    pub(super) async fn tls_accept_loop(self, listener: TcpListener) {
        let Some(tls) = self.tls.clone() else { return };
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    warn!(%err, "TLS accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // The same per-source and total caps as plain TCP, held for the connection's life.
            let connection = match self.caps.admit(addr.ip()) {
                Ok(connection) => connection,
                Err(cap) => {
                    metrics::counter!("sip_tcp_connections_refused_total").increment(1);
                    self.report(SecurityEvent::ConnectionLimit, addr, &cap.to_string());
                    continue;
                }
            };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                let detail = format!("{MAX_HANDSHAKES} TLS handshakes in progress");
                security_event::report(SecurityEvent::ConnectionLimit, addr.ip(), &detail);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (this, acceptor) = (self.clone(), tls.acceptor.clone());
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(permit);
                match handshake {
                    Ok(Ok(stream)) => {
                        let peer = Peer { addr, transport: Transport::Tls };
                        this.register(stream, peer, Some(connection));
                    }
                    Ok(Err(err)) => {
                        metrics::counter!("sip_tls_handshakes_failed_total", "side" => "in")
                            .increment(1);
                        debug!(%err, peer = %addr, "TLS handshake failed");
                    }
                    Err(_) => {
                        metrics::counter!("sip_tls_handshakes_failed_total", "side" => "in")
                            .increment(1);
                        let detail = format!("TLS handshake not done in {HANDSHAKE_TIMEOUT:?}");
                        security_event::report(SecurityEvent::SlowSender, addr.ip(), &detail);
                    }
                }
            });
        }
    }

    /// The client side of a TLS handshake on a connected socket, verifying the peer's
    /// certificate for its IP address.
    pub(super) async fn connect_tls(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let tls = self
            .tls
            .as_ref()
            .ok_or_else(|| io::Error::other("SIP over TLS is not configured (sip.tls_listen)"))?;
        let name = tls.server_name(tcp.peer_addr()?);
        let connected = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.connector.connect(name, tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))
            .and_then(|handshake| handshake);
        if connected.is_err() {
            metrics::counter!("sip_tls_handshakes_failed_total", "side" => "out").increment(1);
        }
        connected
    }
}

/// Reloads the TLS certificate on every SIGHUP until the process ends (nothing without
/// TLS).
pub fn reload_on_sighup(transports: &Transports) {
    let Some(tls) = transports.tls.clone() else { return };
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(err) => return warn!(%err, "cannot watch SIGHUP; the TLS certificate will not reload"),
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let reloading = tls.clone();
            match tokio::task::spawn_blocking(move || reloading.reload()).await {
                Ok(Ok(())) => {
                    metrics::counter!("sip_tls_reloads_total", "result" => "ok").increment(1);
                    info!(cert = %tls.settings.cert.display(), "TLS certificate reloaded");
                }
                Ok(Err(err)) => {
                    metrics::counter!("sip_tls_reloads_total", "result" => "failed").increment(1);
                    warn!(%err, "TLS certificate not reloaded; the one in use stays");
                }
                Err(err) => warn!(%err, "TLS certificate reload did not finish"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tls_targets_with_a_host_name_are_named() {
        let named = |t: &str| target_name(t).map(|n| n.to_str().into_owned());
        assert_eq!(
            named("sip:agent@pbx.example.com;transport=tls").as_deref(),
            Some("pbx.example.com")
        );
        assert_eq!(
            named("sip:agent@pbx.example.com:5071;transport=TLS").as_deref(),
            Some("pbx.example.com")
        );
        assert_eq!(named("sips:agent@pbx.example.com").as_deref(), Some("pbx.example.com"));
        assert_eq!(named("sip:agent@pbx.example.com"), None, "not TLS");
        assert_eq!(named("sip:agent@pbx.example.com;transport=tcp"), None, "not TLS");
        assert_eq!(named("sip:agent@192.0.2.7;transport=tls"), None, "verified by address");
        assert_eq!(named("sip:agent@[2001:db8::7];transport=tls"), None, "verified by address");
    }

    #[test]
    fn files_that_cannot_be_used_say_which_and_why() {
        let provider = rustls::crypto::ring::default_provider();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = certified_key(&missing, &missing, &provider).unwrap_err();
        assert!(matches!(&err, TlsError::Read { path, .. } if *path == missing), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not PEM\n").unwrap();
        let err = certified_key(&empty, &empty, &provider).unwrap_err();
        assert!(matches!(&err, TlsError::NoCertificate { path } if *path == empty), "{err}");
        let err = root_store(Some(&empty)).unwrap_err();
        assert!(matches!(err, TlsError::Roots(_)), "{err}");
    }
}
