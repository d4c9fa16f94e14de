//! The Bearer-token flow: the real distribution registry with `auth: token`, and a small
//! token issuer of ours (the one fake here: distribution ships no token server) that
//! checks Basic credentials and signs RS256 JWTs with an openssl-made key whose
//! certificate the registry trusts.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

const SERVICE: &str = "speck-test";
const ISSUER: &str = "speck-issuer";
/// base64("speck:s3cret")
const BASIC: &str = "Basic c3BlY2s6czNjcmV0";

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT granting `scope` (`repository:NAME:ACTIONS`), signed with `key`.
fn token(dir: &Path, scope: &str) -> String {
    use base64::Engine as _;
    let der = std::fs::read(dir.join("cert.der")).unwrap();
    let header = serde_json::json!({
        "typ": "JWT", "alg": "RS256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(der)],
    });
    let access: Vec<serde_json::Value> = scope
        .split(' ')
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "speck", "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": unique("jti"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let input = dir.join(unique("input"));
    std::fs::write(&input, &signing_input).unwrap();
    let signature = output(
        std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(dir.join("key.pem"))
            .arg(&input),
    );
    assert!(signature.status.success());
    format!("{signing_input}.{}", base64url(&signature.stdout))
}

/// Serves `GET /token?service=..&scope=..`: 401 without the right Basic credentials, a
/// token for the scopes asked otherwise. Returns its address.
fn token_issuer(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut authorized = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                authorized |=
                    line.to_ascii_lowercase().starts_with("authorization:") && line.trim_end().ends_with(BASIC);
            }
            let query = request_line
                .split(' ')
                .nth(1)
                .unwrap_or("")
                .split_once('?')
                .map_or("", |(_, q)| q)
                .to_owned();
            let scopes: Vec<String> = query
                .split('&')
                .filter_map(|pair| pair.strip_prefix("scope="))
                .map(|scope| {
                    percent_encoding::percent_decode_str(scope)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect();
            let mut stream = stream;
            let response = if authorized {
                let body = serde_json::json!({ "token": token(&dir, &scopes.join(" ")) }).to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    addr
}

#[test]
fn bearer_tokens_from_the_realm_the_registry_names() {
    if !engine("registry") {
        return;
    }
    let keys = workdir();
    ok(sh(&format!(
        "cd {} && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN={ISSUER} 2>/dev/null && openssl x509 -in cert.pem -outform DER -out cert.der",
        keys.path().display()
    )));
    let issuer = token_issuer(keys.path().to_path_buf());
    let registry = OwnRegistry::start(&format!(
        "auth: {{ token: {{ realm: \"http://{issuer}/token\", service: {SERVICE}, issuer: {ISSUER}, rootcertbundle: {}/cert.pem }} }}",
        keys.path().display()
    ));
    let config = workdir();
    let name = format!("{}/speck/tok:1", registry.addr);

    let anonymous = output(speck_sh(config.path(), &format!("$SPECK true -q --push {name}")));
    assert!(!anonymous.status.success());
    let said = String::from_utf8_lossy(&anonymous.stderr);
    assert!(said.contains("speck login"), "{said}");

    let pushed = ok(speck_sh(
        config.path(),
        &format!("echo s3cret | $SPECK hello 'token ok' -q --push {name} --username speck --password-stdin"),
    ));
    assert!(
        pushed
            .trim()
            .starts_with(&format!("{}/speck/tok@sha256:", registry.addr)),
        "{pushed}"
    );
    ok(speck_sh(
        config.path(),
        &format!("echo s3cret | $SPECK login {} -u speck --password-stdin", registry.addr),
    ));
    let layout = config.path().join("pulled");
    ok(speck_sh(
        config.path(),
        &format!("$SPECK pull {name} -q --format oci -o {}", layout.display()),
    ));
    assert!(layout.join("index.json").is_file());
}
