//! A push and a pull of a ~100 MB image through a proxy of ours that, in front of the
//! real distribution registry, answers a share of requests with 503 or 429
//! (`Retry-After: 1`), drops connections in the middle of uploads and downloads, and
//! slows others: both complete with the right digests.

mod common;

use common::*;
use speck::image::{Config, ImageIndex, ImageSpec, Platform, Reference};
use speck::layer::{Compression, Entry, Layer, LayerOptions, TarForm};
use speck::registry::pull::Platforms;
use speck::registry::push::Upload;
use speck::registry::{Options, Repository, Retry};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the proxy did to a request.
#[derive(Default)]
struct Faults {
    unavailable: AtomicU64,
    rate_limited: AtomicU64,
    dropped: AtomicU64,
    slowed: AtomicU64,
    passed: AtomicU64,
}

/// Starts the faulty proxy in front of `upstream`; its address.
fn faulty_proxy(upstream: String, faults: Arc<Faults>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { continue };
            let (upstream, faults) = (upstream.clone(), faults.clone());
            std::thread::spawn(move || {
                let _ = handle(client, &upstream, &faults, n as u64);
            });
        }
    });
    addr
}

/// A deterministic pseudo-random number for connection `n` (splitmix64).
fn roll(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % 100
}

fn handle(mut client: TcpStream, upstream: &str, faults: &Faults, n: u64) -> std::io::Result<()> {
    // Read the request head; what follows it is the start of the body.
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let read = client.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
        if !buffer[0].is_ascii_uppercase() {
            // Not HTTP (speck's TLS handshake, trying HTTPS first): refused as the
            // registry's own plain-HTTP server refuses it.
            client.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let body_start = buffer[head_end..].to_vec();
    let content_length: u64 = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut respond = |status: &str, extra: &str| {
        let _ = client.write_all(
            format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let _ = client.shutdown(Shutdown::Both);
    };
    let dice = roll(n);
    match dice {
        0..=7 => {
            faults.unavailable.fetch_add(1, Ordering::Relaxed);
            respond("503 Service Unavailable", "");
            return Ok(());
        }
        8..=12 => {
            faults.rate_limited.fetch_add(1, Ordering::Relaxed);
            respond("429 Too Many Requests", "Retry-After: 1\r\n");
            return Ok(());
        }
        13..=17 => {
            faults.slowed.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(300));
        }
        _ => {}
    }
    // Drop the connection halfway through a large upload or download.
    let cut = (18..=27).contains(&dice);
    // Ask the registry to close after its answer, so one connection carries one request.
    let mut rewritten: String = head
        .lines()
        .filter(|line| !line.is_empty() && !line.to_ascii_lowercase().starts_with("connection:"))
        .map(|line| format!("{line}\r\n"))
        .collect();
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(rewritten.as_bytes())?;
    server.write_all(&body_start)?;
    if cut && content_length > 1 << 20 {
        faults.dropped.fetch_add(1, Ordering::Relaxed);
        let mut forwarded = body_start.len() as u64;
        while forwarded < content_length / 2 {
            let read = client.read(&mut chunk)?;
            if read == 0 {
                break;
            }
            server.write_all(&chunk[..read])?;
            forwarded += read as u64;
        }
        let _ = server.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let mut to_server = client.try_clone()?;
    let mut server_in = server.try_clone()?;
    let pump = std::thread::spawn(move || {
        let _ = std::io::copy(&mut to_server, &mut server_in);
    });
    let mut sent = 0u64;
    let mut dropped = false;
    loop {
        let read = match server.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        client.write_all(&chunk[..read])?;
        sent += read as u64;
        if cut && sent > 1 << 20 {
            dropped = true;
            break;
        }
    }
    if dropped {
        faults.dropped.fetch_add(1, Ordering::Relaxed);
    } else {
        faults.passed.fetch_add(1, Ordering::Relaxed);
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = pump.join();
    Ok(())
}

#[test]
fn a_100_mb_push_and_pull_survive_errors_rate_limits_drops_and_delays() {
    if !engine("registry") {
        return;
    }
    let registry = OwnRegistry::start("");
    let faults = Arc::new(Faults::default());
    let proxy = faulty_proxy(registry.addr.clone(), faults.clone());

    let options = LayerOptions {
        form: TarForm::Minimal,
        mtime: 0,
        compression: Compression::None,
    };
    let layers = (0..4u64)
        .map(|i| {
            Layer::build(
                &[Entry::file(&format!("data{i}"), 0o644, noise(25 << 20, i + 1)).unwrap()],
                &options,
            )
            .unwrap()
        })
        .collect();
    let image = ImageSpec {
        platform: Platform::linux("amd64"),
        config: Config {
            entrypoint: Some(vec!["/data0".into()]),
            ..Config::default()
        },
        layers,
        created: 0,
        created_by: "test".into(),
        annotations: Default::default(),
    }
    .build();
    let index = ImageIndex::from(image.clone());
    let upload = Upload::of_index(&index, speck::image::ManifestForm::Full);
    assert!(upload.bytes() > 100 << 20);

    let options = Options {
        retry: Retry {
            attempts: 10,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
        },
        chunk_size: 8 << 20,
        ..Options::default()
    };
    let through_proxy: Reference = format!("{proxy}/speck/big:1").parse().unwrap();
    let repository = Repository::connect(&through_proxy, true, &[], &options).unwrap();
    let pushed = repository
        .push(&upload, Some("1"), None, &speck::registry::quiet)
        .unwrap_or_else(|e| panic!("push failed: {e}"));
    assert_eq!(pushed.digest, upload.digest().to_string());
    assert_eq!(pushed.uploaded, 5);
    let push_retries = repository.traffic().retries.load(Ordering::Relaxed);

    let reader = Repository::connect(&through_proxy, false, &[], &options).unwrap();
    let pulled = reader
        .pull(&through_proxy, &Platforms::All, false, &speck::registry::quiet)
        .unwrap_or_else(|e| panic!("pull failed: {e}"));
    assert_eq!(pulled.digest, upload.digest());
    let got = &pulled.images[0].image;
    assert_eq!(got.config_blob().digest, image.config_blob().digest);
    let digests = |image: &speck::image::Image| image.layers().iter().map(|l| l.digest()).collect::<Vec<_>>();
    assert_eq!(digests(got), digests(&image));

    let f = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    eprintln!(
        "faults: {} x 503, {} x 429, {} dropped mid-transfer, {} slowed, {} passed; retries: push {push_retries}, pull {}",
        f(&faults.unavailable),
        f(&faults.rate_limited),
        f(&faults.dropped),
        f(&faults.slowed),
        f(&faults.passed),
        reader.traffic().retries.load(Ordering::Relaxed)
    );
    assert!(f(&faults.unavailable) > 0 && f(&faults.rate_limited) > 0 && f(&faults.dropped) > 0);
    assert!(push_retries > 0);
}
