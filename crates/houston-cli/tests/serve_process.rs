//! `houston serve` as a process: configuration errors before binding (an unknown key, a
//! runtime backend missing from this build), the redacted start-up log, serving, and a clean
//! stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn bad_config_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("houston.toml");
    std::fs::write(&path, "listen = \"nowhere\"\ncolour = \"blue\"\n[identity]\nleeway = \"soon\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_houston"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("HOUSTON_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for expected in ["listen: invalid value", "colour: unknown key", "identity.leeway: invalid duration", "database_url: is missing"] {
        assert!(stderr.contains(expected), "{expected:?} missing from:\n{stderr}");
    }
}

#[test]
fn kubernetes_backend_rejected_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("houston.toml");
    let home = dir.path().join("home");
    std::fs::write(&path, format!("[runtime]\nbackend = \"kubernetes\"\nhome = {:?}\n", home.display().to_string())).unwrap();
    let database = format!("sqlite://{}", dir.path().join("houston.db").display());
    let output = Command::new(env!("CARGO_BIN_EXE_houston"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("HOUSTON_DATABASE_URL", &database)
        .env_remove("HOUSTON_RUNTIME__BACKEND")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = "runtime.backend: the kubernetes runtime backend is not available in this build; use namespace or process";
    assert!(stderr.contains(expected), "{expected:?} missing from:\n{stderr}");
    assert!(!home.exists(), "the home folder was created before the configuration was checked");
    assert!(!dir.path().join("houston.db").exists(), "the database was opened before the configuration was checked");
}

#[test]
fn serve_starts_logs_redacted_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("houston.toml");
    let config = r#"
        listen = "127.0.0.1:0"
        [[identity.external]]
        issuer = "https://issuer.test"
        algorithms = ["HS256"]
        hs256_secret = "top-secret-shared-value"
    "#;
    std::fs::write(&path, config).unwrap();
    let database = format!("sqlite://{}", dir.path().join("houston.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_houston"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("HOUSTON_DATABASE_URL", &database)
        .env("HOUSTON_RUNTIME__BACKEND", "process")
        .env("HOUSTON_RUNTIME__HOME", dir.path().join("home"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = Instant::now();
    let mut log = String::new();
    let address = loop {
        assert!(started.elapsed() < Duration::from_secs(60), "no listening line in:\n{log}");
        let line = strip_ansi(&lines.next().expect("houston serve exited early").unwrap());
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("listen=").nth(1).filter(|_| line.contains("control plane listening")) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(log.contains("starting the control plane"), "{log}");
    assert!(log.contains("[redacted]"), "{log}");
    assert!(!log.contains("top-secret-shared-value"), "the HS256 secret leaked into the log:\n{log}");

    let response = http_get_status(&format!("http://{address}/v1/openapi.json"));
    assert_eq!(response, 200);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// Removes terminal colour sequences (`ESC [ … m`), which the log has even on a pipe.
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(character) = chars.next() {
        if character == '\u{1b}' {
            for next in chars.by_ref() {
                if next == 'm' {
                    break;
                }
            }
        } else {
            plain.push(character);
        }
    }
    plain
}

/// Sends one GET over plain TCP and returns the status code.
fn http_get_status(url: &str) -> u16 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}
