//! TLS to Zendesk: certificates are always verified (rustls with the ring provider, the
//! system roots). `zendesk.ca_file` swaps the roots for the CAs in one PEM file, for a
//! private CA in front of Zendesk or a test server; nothing turns verification off.

use std::path::Path;

use reqwest::ClientBuilder;

use super::ClientError;

/// `builder` trusting only the CAs in `ca_file` when one is given.
pub(super) fn trust(
    builder: ClientBuilder,
    ca_file: Option<&Path>,
) -> Result<ClientBuilder, ClientError> {
    let Some(path) = ca_file else { return Ok(builder) };
    let failed = |reason: String| ClientError::CaFile { path: path.to_path_buf(), reason };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("no PEM certificate in it".into()));
    }
    Ok(builder.tls_certs_only(certs))
}
