//! Reaching registries as Docker does: HTTPS verified against the system's CAs and the
//! registry's `certs.d` directory (its CAs and client certificate), insecure registries
//! (on loopback, or `--insecure`) over unverified HTTPS or else plain HTTP, and a
//! registry that cannot be reached failing at once, saying why. Real distribution
//! registries, with TLS that openssl makes; docker's daemon pulls through the same
//! `certs.d` as speck.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A CA of the test's own, a server certificate it signed for `host` and 127.0.0.1, and
/// a client certificate it signed.
struct Pki(tempfile::TempDir);

impl Pki {
    fn new(host: &str) -> Self {
        let dir = workdir();
        let script = format!(
            r#"set -e
new_key() {{ openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr -subj /CN=$1 2>/dev/null; }}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=speck test CA' 2>/dev/null
new_key server && new_key client
printf 'subjectAltName=IP:{host},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
printf 'extendedKeyUsage=clientAuth\n' > client.ext
for who in server client; do
  openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $who.cert -days 2 -extfile $who.ext 2>/dev/null
done"#
        );
        let mut command = sh(&script);
        ok(command.current_dir(dir.path()));
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// The registry's `tls:` settings; with `clients`, it asks each client for a
    /// certificate this CA signed.
    fn tls(&self, clients: bool) -> String {
        let clients = if clients {
            format!(", clientcas: [{}]", self.path("ca.crt").display())
        } else {
            String::new()
        };
        format!(
            "tls: {{ certificate: {}, key: {}{clients} }}",
            self.path("server.cert").display(),
            self.path("server.key").display()
        )
    }
}

/// A registry's directory in a `certs.d` (Docker's, unless said), removed when dropped.
struct CertsD(PathBuf);

impl CertsD {
    fn new(registry: &str) -> Self {
        Self::under("/etc/docker/certs.d", registry)
    }

    fn under(root: &str, registry: &str) -> Self {
        let dir = Path::new(root).join(registry);
        std::fs::create_dir_all(&dir).expect("root writes /etc/*/certs.d");
        Self(dir)
    }

    fn add(&self, file: &Path, name: &str) {
        std::fs::copy(file, self.0.join(name)).unwrap();
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// This machine's first IPv4 address that is not loopback: a registry there is not
/// insecure by default, as it would be on 127.0.0.1.
fn host_address() -> String {
    let address = ok(sh(
        "ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1",
    ));
    let address = address.trim().to_owned();
    assert!(
        !address.is_empty(),
        "no IPv4 address but loopback to reach a registry at"
    );
    address
}

/// `speck hello MESSAGE --push REFERENCE -q` with `extra` arguments.
fn push(message: &str, reference: &str, extra: &[&str]) -> Output {
    output(speck().args(["hello", message, "--push", reference, "-q"]).args(extra))
}

/// The digest reference a push printed; fails with its stderr if it failed.
fn pushed(push: Output) -> String {
    let stderr = String::from_utf8_lossy(&push.stderr);
    assert!(push.status.success(), "the push failed: {stderr}");
    String::from_utf8(push.stdout).unwrap().trim().to_owned()
}

/// The error a command failed with, checked to be one that was not retried.
fn refusal(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "it succeeded: {stderr}");
    assert!(!stderr.contains("gave up"), "failed only after retries: {stderr}");
    stderr
}

/// `docker run` of `reference`, which docker's daemon pulls itself, removed afterwards.
fn docker_runs(reference: &str) -> String {
    let _cleanup = Cleanup(vec![format!("docker rmi {reference}")]);
    ok(sh(&format!("docker run --rm {reference}")))
}

/// A registry with TLS from a CA of the test's own, on this machine's non-loopback
/// address; with `clients`, it asks for client certificates. The PKI's files stay while
/// the registry runs.
fn registry_with_own_ca(clients: bool) -> (Pki, OwnRegistry) {
    let host = host_address();
    let pki = Pki::new(&host);
    let registry = OwnRegistry::start_on(&host, &pki.tls(clients), "");
    (pki, registry)
}

#[test]
fn a_registry_signed_by_a_ca_of_ones_own_is_trusted_through_certs_d_as_docker_trusts_it() {
    if !engine("root") || !engine("registry") || !engine("docker") {
        return;
    }
    let (pki, registry) = registry_with_own_ca(false);
    let reference = format!("{}/tls:1", registry.addr);

    let untrusted = refusal(push("trusted", &reference, &[]));
    let ca_path = format!("/etc/docker/certs.d/{}/ca.crt", registry.addr);
    assert!(
        untrusted.contains("its TLS certificate is not accepted") && untrusted.contains(&ca_path),
        "{untrusted}"
    );

    let mut with_bundle = speck();
    with_bundle.env("SSL_CERT_FILE", pki.path("ca.crt"));
    let by_bundle = pushed(output(
        with_bundle.args(["hello", "trusted", "--push", &reference, "-q"]),
    ));
    assert!(
        by_bundle.starts_with(&format!("{}/tls@sha256:", registry.addr)),
        "{by_bundle}"
    );

    let certs = CertsD::new(&registry.addr);
    certs.add(&pki.path("ca.crt"), "ca.crt");
    let by_certs_d = pushed(push("trusted", &reference, &[]));
    assert_eq!(by_certs_d, by_bundle, "the same image, the same digest");
    let work = workdir();
    let pulled = output(
        speck()
            .args(["pull", &by_certs_d, "-o"])
            .arg(work.path().join("pulled.tar")),
    );
    assert!(
        String::from_utf8_lossy(&pulled.stderr).contains("every digest verified"),
        "{pulled:?}"
    );
    assert_eq!(docker_runs(&by_certs_d), "trusted");
    drop(certs);

    // podman's own certs.d serves speck as it serves podman.
    if engine("podman") {
        let podman_certs = CertsD::under("/etc/containers/certs.d", &registry.addr);
        podman_certs.add(&pki.path("ca.crt"), "ca.crt");
        assert_eq!(pushed(push("trusted", &reference, &[])), by_bundle);
        let _cleanup = Cleanup(vec![format!("podman rmi {by_bundle}")]);
        assert_eq!(ok(sh(&format!("podman run --rm {by_bundle}"))), "trusted");
    }
}

#[test]
fn a_registry_that_asks_for_a_client_certificate_gets_the_one_in_certs_d() {
    if !engine("root") || !engine("registry") || !engine("docker") {
        return;
    }
    let (pki, registry) = registry_with_own_ca(true);
    let reference = format!("{}/mtls:1", registry.addr);
    let certs = CertsD::new(&registry.addr);
    certs.add(&pki.path("ca.crt"), "ca.crt");

    let without = refusal(push("client", &reference, &[]));
    let client_path = format!("/etc/docker/certs.d/{}/client.cert", registry.addr);
    assert!(
        without.contains("the TLS handshake failed") && without.contains(&client_path),
        "{without}"
    );

    certs.add(&pki.path("client.cert"), "client.cert");
    let keyless = refusal(push("client", &reference, &[]));
    assert!(
        keyless.contains("a client certificate needs its key") && keyless.contains("client.key"),
        "{keyless}"
    );

    certs.add(&pki.path("client.key"), "client.key");
    let digest_reference = pushed(push("client", &reference, &[]));
    assert_eq!(docker_runs(&digest_reference), "client");
}

#[test]
fn insecure_registries_get_unverified_https_else_plain_http_as_docker_gives_them() {
    if !engine("registry") {
        return;
    }
    // TLS with a certificate nothing trusts: --insecure skips the check, and a registry
    // on loopback is insecure unasked.
    let (pki, tls) = registry_with_own_ca(false);
    let over_tls = pushed(push("insecure", &format!("{}/a:1", tls.addr), &["--insecure"]));
    let loopback_tls = OwnRegistry::start_on("127.0.0.1", &pki.tls(false), "");
    let on_loopback = pushed(push("insecure", &format!("{}/a:1", loopback_tls.addr), &[]));

    // Plain HTTP elsewhere: refused with the way out, then taken with --insecure.
    let plain = OwnRegistry::start_on(&host_address(), "", "");
    let reference = format!("{}/a:1", plain.addr);
    let refused = refusal(push("insecure", &reference, &[]));
    assert!(
        refused.contains("it does not answer in TLS") && refused.contains("--insecure"),
        "{refused}"
    );
    let over_http = pushed(push("insecure", &reference, &["--insecure"]));

    let digest = |reference: &str| reference.split_once('@').map(|(_, digest)| digest.to_owned());
    assert!(
        digest(&over_tls).is_some_and(|d| d.starts_with("sha256:")),
        "{over_tls}"
    );
    assert_eq!(digest(&on_loopback), digest(&over_tls));
    assert_eq!(digest(&over_http), digest(&over_tls));
}

#[test]
fn a_registry_that_cannot_be_reached_fails_at_once_saying_why() {
    let work = workdir();
    let nothing_listens = format!("127.0.0.1:{}/a:1", free_port());
    let refused = refusal(push("x", &nothing_listens, &[]));
    assert!(refused.contains("nothing listens there"), "{refused}");

    let no_such_name = "speck-test.invalid/a:1";
    let unresolved = refusal(push("x", no_such_name, &[]));
    assert!(unresolved.contains("its name does not resolve"), "{unresolved}");
    let pull = output(
        speck()
            .args(["pull", no_such_name, "-o"])
            .arg(work.path().join("x.tar")),
    );
    assert!(refusal(pull).contains("cannot reach the registry speck-test.invalid"));
    assert!(!work.path().join("x.tar").exists(), "nothing written");
}
