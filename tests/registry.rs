//! `speck push`, `pull`, `login` and `--push` against the real CNCF distribution
//! registry, with the images then pulled and run by docker, podman and containerd's ctr,
//! and inspected by skopeo.

mod common;

use common::*;
use std::path::Path;

const SHARED: &str = "127.0.0.1:5000";

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// speck with a config directory of the test's own, so no user's credentials are used.
fn speck_in(config: &Path) -> std::process::Command {
    let mut command = speck();
    command
        .env("DOCKER_CONFIG", config)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR");
    command
}

#[test]
fn pushed_images_pull_and_run_in_docker_podman_and_ctr_with_the_local_digest() {
    if !["registry", "docker", "podman", "skopeo", "ctr"]
        .iter()
        .all(|e| engine(e))
    {
        return;
    }
    let dir = workdir();
    let name = format!("{SHARED}/{}:1", unique("speck-test/hello"));
    let pushed = ok(speck_in(dir.path()).args(["hello", "pushed\n", "--platform", "all", "-q", "--push", &name]))
        .trim()
        .to_owned();
    assert!(
        pushed.starts_with(&format!("{}@sha256:", name.trim_end_matches(":1"))),
        "{pushed}"
    );
    let digest = pushed.rsplit('@').next().unwrap().to_owned();

    // The same build written as an OCI layout names the same index.
    let layout = dir.path().join("layout");
    ok(speck_in(dir.path())
        .args(["hello", "pushed\n", "--platform", "all", "--format", "oci", "-o"])
        .arg(&layout));
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());

    // skopeo reads the index the registry serves, byte for byte the one hashed.
    let raw = output(&mut sh(&format!(
        "skopeo inspect --tls-verify=false --raw docker://{name}"
    )));
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    assert_eq!(sha256_of(&raw.stdout), digest);
    let platforms = ok(sh(&format!(
        "skopeo inspect --tls-verify=false --raw docker://{name} | grep -o '\"architecture\":\"[a-z0-9]*\"' | sort | tr '\\n' ' '"
    )));
    assert_eq!(
        platforms,
        r#""architecture":"386" "architecture":"amd64" "architecture":"arm64" "#
    );

    let _cleanup = Cleanup(vec![
        format!("docker rmi {pushed}"),
        format!("podman rmi {pushed}"),
        format!("{} images rm {pushed}", ctr("speck-registry")),
    ]);
    assert_eq!(ok(sh(&format!("docker run --rm {pushed}"))), "pushed\n");
    assert_eq!(
        ok(sh(&format!("podman run --rm --tls-verify=false {pushed}"))),
        "pushed\n"
    );
    let ctr = ctr("speck-registry");
    ok(sh(&format!("{ctr} images pull --plain-http {pushed}")));
    let id = unique("speck-ctr");
    assert_eq!(ok(sh(&format!("{ctr} run --rm {pushed} {id}"))), "pushed\n");

    // Each other platform of the index, as --platform picks it: 386 natively, arm64 under
    // the emulation binfmt_misc has (docker keeps one platform per name: removed between).
    if engine("arm64-emulation") {
        for platform in ["linux/386", "linux/arm64"] {
            ok(sh(&format!(
                "docker rmi {pushed} && docker pull -q --platform {platform} {pushed}"
            )));
            let arch = ok(sh(&format!("docker inspect -f '{{{{.Architecture}}}}' {pushed}")));
            assert_eq!(arch.trim(), platform.trim_start_matches("linux/"));
            let run = format!("docker run --rm --platform {platform} {pushed}");
            assert_eq!(ok(sh(&run)), "pushed\n", "{platform}");
        }
        ok(sh(&format!("podman rmi {pushed}")));
        let run = format!("podman run --rm --tls-verify=false --arch arm64 {pushed}");
        assert_eq!(ok(sh(&run)), "pushed\n");
        let arch = ok(sh(&format!("podman image inspect -f '{{{{.Architecture}}}}' {pushed}")));
        assert_eq!(arch.trim(), "arm64");
    }
}

#[test]
fn a_single_platform_push_runs_and_a_re_push_uploads_no_blob() {
    if !["registry", "docker"].iter().all(|e| engine(e)) {
        return;
    }
    let dir = workdir();
    let name = format!("{SHARED}/{}:1", unique("speck-test/pause"));
    let pushed = ok(speck_in(dir.path()).args(["pause", "-q", "--push", &name]))
        .trim()
        .to_owned();
    let container = unique("speck-pause-pushed");
    let _cleanup = Cleanup(vec![
        format!("docker rm -f {container}"),
        format!("docker rmi {pushed}"),
    ]);
    ok(sh(&format!("docker run -d --name {container} {pushed}")));
    let stopped = ok(sh(&format!(
        "docker stop -t 10 {container} >/dev/null && docker inspect -f '{{{{.State.ExitCode}}}}' {container} && docker rm {container} >/dev/null"
    )));
    assert_eq!(stopped.trim(), "0", "pause exits 0 on docker stop");

    // The same image from an OCI layout: every blob is there already.
    let layout = dir.path().join("layout");
    ok(speck_in(dir.path())
        .args(["pause", "--format", "oci", "-o"])
        .arg(&layout));
    let again: serde_json::Value = serde_json::from_str(&ok(speck_in(dir.path())
        .arg("push")
        .arg(&layout)
        .args([&name, "--json", "-q"])))
    .unwrap();
    assert_eq!(again["uploaded"], 0, "{again}");
    assert_eq!(again["existed"], 2, "{again}");
    assert_eq!(again["reference"], pushed.as_str());
}

#[test]
fn pull_writes_any_format_and_refuses_a_tampered_blob_leaving_nothing() {
    if !["docker"].iter().all(|e| engine(e)) {
        return;
    }
    let registry = OwnRegistry::start("");
    let dir = workdir();
    let name = format!("{}/speck/hi:2", registry.addr);
    ok(speck_in(dir.path()).args(["hello", "from the registry\n", "-q", "--push", &name]));

    let tag = unique("speck-pulled");
    let _cleanup = Cleanup(vec![format!("docker rmi {tag}:1")]);
    ok(speck_in(dir.path()).args(["pull", &name, "-q", "--load", "docker", "-t", &format!("{tag}:1")]));
    assert_eq!(ok(sh(&format!("docker run --rm {tag}:1"))), "from the registry\n");
    let layout = dir.path().join("layout");
    let pulled: serde_json::Value = serde_json::from_str(&ok(speck_in(dir.path())
        .args(["pull", &name, "-q", "--json", "--format", "oci", "-o"])
        .arg(&layout)))
    .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        pulled["reference"].as_str().unwrap().rsplit('@').next(),
        index["manifests"][0]["digest"].as_str(),
        "the layout holds the manifest the registry served, byte for byte"
    );
    assert_eq!(pulled["images"][0]["platform"], "linux/amd64");

    // Change the layer's bytes in the registry's storage: the registry serves them as
    // they are, and speck must refuse them.
    let inspect: serde_json::Value = serde_json::from_str(&ok(speck_in(dir.path()).args([
        "inspect",
        "--json",
        &format!("registry:{name}"),
    ])))
    .unwrap();
    assert_eq!(inspect["format"], "registry");
    let manifest = ok(sh(&format!(
        "curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://{}/v2/speck/hi/manifests/2",
        registry.addr
    )));
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let file = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let out_file = dir.path().join("pulled.tar");
    let failed = output(speck_in(dir.path()).args(["pull", &name, "-q", "-o"]).arg(&out_file));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains(&format!("blob {layer}")) && stderr.contains("does not match"),
        "{stderr}"
    );
    assert!(!out_file.exists(), "nothing is written when a digest does not match");
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().contains("pulled"))
    );

    // A tag or digest the registry does not have is named as the image, not as a URL.
    let digest = format!("sha256:{}", "0".repeat(64));
    for (missing, named) in [
        (format!("{}/speck/hi:3", registry.addr), "tag"),
        (format!("{}/speck/hi@{digest}", registry.addr), "digest"),
    ] {
        let failed = output(speck_in(dir.path()).args(["pull", &missing, "-q", "-o"]).arg(&out_file));
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert_eq!(failed.status.code(), Some(1), "{stderr}");
        let expected = format!("{missing}: the registry has no such image (HTTP 404 Not Found: MANIFEST_UNKNOWN");
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(
            stderr.contains(&format!("check the repository and the {named}")),
            "{stderr}"
        );
        assert!(!out_file.exists());
    }
}

#[test]
fn basic_auth_from_flags_login_helpers_and_creds_store() {
    if !engine("registry") {
        return;
    }
    let auth = workdir();
    ok(sh(&format!(
        "htpasswd -Bbn speck s3cret > {}/htpasswd",
        auth.path().display()
    )));
    let registry = OwnRegistry::start(&format!(
        "auth: {{ htpasswd: {{ realm: speck, path: {}/htpasswd }} }}",
        auth.path().display()
    ));
    let config = workdir();
    let name = format!("{}/speck/auth:1", registry.addr);
    let push = |extra: &str| speck_sh(config.path(), &format!("$SPECK exit 3 -q --push {name} {extra}"));

    let anonymous = output(push(""));
    let said = String::from_utf8_lossy(&anonymous.stderr);
    assert!(!anonymous.status.success());
    assert!(said.contains(&format!("speck login {}", registry.addr)), "{said}");

    let wrong = output(speck_sh(
        config.path(),
        &format!("echo nope | $SPECK exit 3 -q --push {name} --username speck --password-stdin"),
    ));
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("refused the credentials"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    ok(speck_sh(
        config.path(),
        &format!("echo s3cret | $SPECK exit 3 -q --push {name} --username speck --password-stdin"),
    ));

    // speck login checks the password, then writes config.json as docker login does.
    let refused = output(speck_sh(
        config.path(),
        &format!("echo nope | $SPECK login {} -u speck --password-stdin", registry.addr),
    ));
    assert!(!refused.status.success());
    assert!(
        !config.path().join("config.json").exists(),
        "a refused login stores nothing"
    );
    assert_eq!(
        ok(speck_sh(
            config.path(),
            &format!("echo s3cret | $SPECK login {} -u speck --password-stdin", registry.addr)
        )),
        "Login Succeeded\n"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(written["auths"][&registry.addr]["auth"], "c3BlY2s6czNjcmV0"); // base64("speck:s3cret")
    ok(push(""));
    // skopeo reads what speck login wrote.
    if engine("skopeo") {
        ok(sh(&format!(
            "skopeo inspect --tls-verify=false --authfile {}/config.json docker://{name} >/dev/null",
            config.path().display()
        )));
    }

    // A credential helper named in credHelpers answers `get`; credsStore gets `store`.
    let helpers = workdir();
    let stored = helpers.path().join("stored.json");
    write_exe(
        &helpers.path().join("docker-credential-speckt"),
        format!(
            "#!/bin/sh\ncase \"$1\" in\n get) read server; echo \"{{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"speck\\\",\\\"Secret\\\":\\\"s3cret\\\"}}\";;\n store) cat > {};;\n *) exit 1;;\nesac\n",
            stored.display()
        )
        .as_bytes(),
    );
    let path = format!("{}:{}", helpers.path().display(), std::env::var("PATH").unwrap());
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"speckt"}}}}"#, registry.addr),
    )
    .unwrap();
    ok(push("").env("PATH", &path));
    std::fs::write(
        config.path().join("config.json"),
        r#"{"credHelpers":{"127.0.0.1":"missing"},"credsStore":"speckt"}"#,
    )
    .unwrap();
    ok(push("").env("PATH", &path));
    ok(speck_sh(
        config.path(),
        &format!("echo s3cret | $SPECK login {} -u speck --password-stdin", registry.addr),
    )
    .env("PATH", &path));
    let handed: serde_json::Value = serde_json::from_slice(&std::fs::read(&stored).unwrap()).unwrap();
    assert_eq!(handed["ServerURL"], registry.addr.as_str());
    assert_eq!(handed["Secret"], "s3cret");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(
        written["auths"][&registry.addr],
        serde_json::json!({}),
        "the secret stays with the helper"
    );

    // A helper that is not installed is named.
    std::fs::write(config.path().join("config.json"), r#"{"credsStore":"absent-helper"}"#).unwrap();
    let missing = output(push(""));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("docker-credential-absent-helper"));
}

#[test]
fn golfed_pushes_run_where_they_claim_and_pull_fewer_bytes_than_docker_push() {
    if !["registry", "docker", "podman", "ctr"].iter().all(|e| engine(e)) {
        return;
    }
    let dir = workdir();
    let pull_bytes = |reference: &str| -> u64 {
        let sizes: serde_json::Value = serde_json::from_str(&ok(speck_in(dir.path()).args([
            "size",
            "--json",
            &format!("registry:{reference}"),
        ])))
        .unwrap();
        sizes[0]["pull"].as_u64().unwrap()
    };
    let push = |level: &str| {
        let name = format!("{SHARED}/{}:1", unique("speck-test/golf"));
        ok(speck_in(dir.path()).args(["hello", "golfed\n", level, "-q", "--push", &name]))
            .trim()
            .to_owned()
    };
    let portable = push("--golf");
    let docker_only = push("--golf=docker");
    let plain = push("--tar=minimal");
    let _cleanup = Cleanup(vec![
        format!("docker rmi {portable} {docker_only}"),
        format!("podman rmi {portable}"),
    ]);
    for reference in [&portable, &docker_only] {
        assert_eq!(
            ok(sh(&format!("docker run --rm {reference}"))),
            "golfed\n",
            "{reference}"
        );
    }
    assert_eq!(
        ok(sh(&format!("podman run --rm --tls-verify=false {portable}"))),
        "golfed\n"
    );
    // What each level says it breaks.
    let refused = output(&mut sh(&format!("podman pull --tls-verify=false {docker_only}")));
    assert!(!refused.status.success(), "podman pulls a config without a media type");
    let ctr = ctr("speck-golf-pull");
    let refused = output(&mut sh(&format!("{ctr} images pull --plain-http {portable}")));
    assert!(!refused.status.success(), "ctr pulls a layer without a media type");
    let _ = output(&mut sh(&format!("{ctr} images rm {portable}")));

    let (portable, docker_only, plain) = (pull_bytes(&portable), pull_bytes(&docker_only), pull_bytes(&plain));
    assert!(
        docker_only < portable && portable < plain,
        "{docker_only} < {portable} < {plain}"
    );
}

/// Copies keep digests: an image docker pushed (docker media types), copied with `speck
/// pull --push` and `speck push registry:`, keeps its manifest digest and runs; an OCI
/// layout whose image index carries an annotation speck would not write is pushed with
/// that index's exact bytes.
#[test]
fn copies_keep_the_digests_of_what_other_tools_made() {
    if !["registry", "docker", "skopeo"].iter().all(|e| engine(e)) {
        return;
    }
    let dir = workdir();
    let raw_digest = |reference: &str| {
        let raw = output(&mut sh(&format!(
            "skopeo inspect --tls-verify=false --raw docker://{reference}"
        )));
        assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
        sha256_of(&raw.stdout)
    };
    let source = format!("{SHARED}/{}:1", unique("speck-test/docker-pushed"));
    let _cleanup = Cleanup(vec![format!("docker rmi {source}")]);
    ok(speck_in(dir.path()).args(["hello", "copied\n", "-q", "--load", "docker", "-t", &source]));
    ok(std::process::Command::new("docker").args(["push", "-q", &source]));
    let original = raw_digest(&source);
    for (how, copy) in [("pull --push", "pulled"), ("push registry:", "pushed")] {
        let destination = format!("{SHARED}/{}:1", unique(&format!("speck-test/{copy}")));
        let mut command = speck_in(dir.path());
        match copy {
            "pulled" => command.args(["pull", &source, "-q", "--push", &destination]),
            _ => command.args(["push", &format!("registry:{source}"), &destination, "-q"]),
        };
        let pushed = ok(command);
        assert!(pushed.trim().ends_with(&original), "{how}: {pushed} is not {original}");
        assert_eq!(raw_digest(&destination), original, "{how}");
        let _cleanup = Cleanup(vec![format!("docker rmi {destination}")]);
        let ran = ok(std::process::Command::new("docker").args(["run", "--rm", &destination]));
        assert_eq!(ran, "copied\n", "{how}");
    }

    let layout = dir.path().join("layout");
    ok(speck_in(dir.path())
        .args(["hello", "indexed\n", "--platform", "all", "--format", "oci", "-o"])
        .arg(&layout));
    let index_json = layout.join("index.json");
    let mut top: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_json).unwrap()).unwrap();
    let nested = layout.join(format!(
        "blobs/sha256/{}",
        top["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    ));
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&nested).unwrap()).unwrap();
    index["annotations"] = serde_json::json!({"org.example.made-by": "another tool"});
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = sha256_of(&bytes);
    std::fs::write(
        layout.join(format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))),
        &bytes,
    )
    .unwrap();
    top["manifests"][0]["digest"] = digest.clone().into();
    top["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&index_json, serde_json::to_vec(&top).unwrap()).unwrap();
    let destination = format!("{SHARED}/{}:1", unique("speck-test/annotated"));
    let pushed = ok(speck_in(dir.path()).arg("push").arg(&layout).args([&destination, "-q"]));
    assert!(
        pushed.trim().ends_with(&digest),
        "{pushed} is not the layout's {digest}"
    );
    assert_eq!(raw_digest(&destination), digest);
}
