//! What speck trusts when it speaks TLS to a registry, as Docker's daemon and podman do:
//! the system's CA bundle (`SSL_CERT_FILE`, else the distribution's usual file, else the
//! Mozilla roots built into speck), plus the registry's own directory under `certs.d`
//! (`*.crt`: more CAs; `NAME.cert` with `NAME.key`: a client certificate).
//!
//! Owns certificate files and explains TLS failures; knows nothing of HTTP requests.

use super::RegistryError;
use std::path::{Path, PathBuf};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// The system's CA bundle on the common distributions, where Go's `crypto/x509` looks.
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",                            // openSUSE
    "/etc/pki/tls/cacert.pem",                           // OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
    "/etc/ssl/cert.pem",                                 // Alpine
];

/// The `certs.d` directories, in the order podman reads them; `/etc/docker/certs.d` is
/// Docker's daemon's.
fn certs_d_roots() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(|home| Path::new(&home).join(".config/containers/certs.d"));
    home.into_iter()
        .chain(["/etc/containers/certs.d".into(), "/etc/docker/certs.d".into()])
        .collect()
}

/// Where `registry`'s own certificates would go: its directory in the first `certs.d`
/// that has one, else in Docker's.
pub(crate) fn registry_dir(registry: &str) -> PathBuf {
    let candidates: Vec<PathBuf> = certs_d_roots().iter().map(|root| root.join(registry)).collect();
    let found = candidates.iter().find(|dir| dir.is_dir());
    found
        .unwrap_or(candidates.last().expect("Docker's certs.d is listed"))
        .clone()
}

/// The TLS set-up for `registry` (`host[:port]`, as the reference names it). Without
/// `verify` (a registry on this machine, or `--insecure`: what Docker calls insecure)
/// any certificate is accepted; a client certificate is still offered.
pub(crate) fn config(registry: &str, verify: bool) -> Result<TlsConfig, RegistryError> {
    let dir = registry_dir(registry);
    let (mut roots, client) = if dir.is_dir() {
        read_registry_dir(&dir)?
    } else {
        (Vec::new(), None)
    };
    roots.extend(system_roots()?);
    let roots = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::new_with_certs(&roots)
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .disable_verification(!verify)
        .build())
}

/// The system's CAs: `SSL_CERT_FILE` when set, else the first bundle found.
fn system_roots() -> Result<Vec<Certificate<'static>>, RegistryError> {
    let bundle = match std::env::var_os("SSL_CERT_FILE") {
        Some(file) => PathBuf::from(file),
        None => match SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|path| path.is_file()) {
            Some(path) => path,
            None => return Ok(Vec::new()),
        },
    };
    let (certificates, _) = read_pem(&bundle)?;
    Ok(certificates)
}

/// A registry's `certs.d` directory: every `*.crt` as a CA, and the first `NAME.cert`
/// (by name) with its `NAME.key` as the client certificate, as Docker reads them.
fn read_registry_dir(dir: &Path) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>), RegistryError> {
    let unreadable = |error: std::io::Error| certificate_error(dir, &error.to_string());
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    names.sort();
    let with_extension = |extension: &'static str| {
        names
            .iter()
            .filter(move |path| path.extension().is_some_and(|e| e == extension))
    };
    let mut roots = Vec::new();
    for ca in with_extension("crt") {
        roots.extend(read_pem(ca)?.0);
    }
    let client = match with_extension("cert").next() {
        Some(certificate) => {
            let key_path = certificate.with_extension("key");
            if !key_path.is_file() {
                let reason = format!("a client certificate needs its key, {}", key_path.display());
                return Err(certificate_error(certificate, &reason));
            }
            let (chain, _) = read_pem(certificate)?;
            let key = read_pem(&key_path)?
                .1
                .ok_or_else(|| certificate_error(&key_path, "holds no private key"))?;
            Some(ClientCert::new_with_certs(&chain, key))
        }
        None => None,
    };
    Ok((roots, client))
}

/// The certificates and the first private key in a PEM file.
fn read_pem(path: &Path) -> Result<(Vec<Certificate<'static>>, Option<PrivateKey<'static>>), RegistryError> {
    let text = std::fs::read(path).map_err(|error| certificate_error(path, &error.to_string()))?;
    let mut certificates = Vec::new();
    let mut key = None;
    for item in ureq::tls::parse_pem(&text) {
        match item.map_err(|error| certificate_error(path, &format!("not PEM: {error}")))? {
            PemItem::Certificate(certificate) => certificates.push(certificate),
            PemItem::PrivateKey(private) => key = key.or(Some(private)),
            _ => {}
        }
    }
    Ok((certificates, key))
}

fn certificate_error(path: &Path, reason: &str) -> RegistryError {
    RegistryError::Certificates {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// What a TLS failure talking to `registry` means, and what to do; `None` when `error`
/// is not one.
pub(crate) fn explain(error: &std::io::Error, registry: &str) -> Option<String> {
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    let dir = registry_dir(registry);
    Some(match tls {
        rustls::Error::InvalidCertificate(_) => format!(
            "its TLS certificate is not accepted ({tls}). If your own CA signed it, put the CA in {} \
             (Docker's daemon and podman read it there too) or in the system's bundle (SSL_CERT_FILE); \
             --insecure skips the check",
            dir.join("ca.crt").display()
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "it does not answer in TLS ({tls}); a registry that speaks plain HTTP needs --insecure \
             (speck, like Docker, tries plain HTTP unasked only on this machine)"
        ),
        _ => format!(
            "the TLS handshake failed ({tls}); a registry that asks for a client certificate gets the one in {} \
             with its client.key",
            dir.join("client.cert").display()
        ),
    })
}
