//! Test helper: a stand-in engine that isolation tests and benchmarks run inside a sandbox.
//!
//! `houston-sandbox-probe engine --agent-dir DIR --listen unix:PATH --token-fd N` reads its
//! token from fd N, listens on PATH, prints the engine's readiness line and then serves one
//! connection at a time. A client sends `TOKEN <token>` and then one command per line; each
//! command gets one JSON line back. Commands try what a hostile agent would try (read,
//! list, stat, link, connect, fork) and report what happened.
//!
//! `houston-sandbox-probe sandbox-init ...` runs the sandbox init, so the probe can also
//! stand in for the `houston` binary as the namespace backend's init program.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sandbox-init") => ExitCode::from(houston_runtime::sandbox::init_main(&args[1..])),
        Some("engine") => match serve(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("probe: {error}");
                ExitCode::FAILURE
            }
        },
        Some("sleep") => {
            let millis = args.get(1).and_then(|value| value.parse().ok()).unwrap_or(1000);
            std::thread::sleep(Duration::from_millis(millis));
            ExitCode::SUCCESS
        }
        Some("orphan-parent") => {
            // Starts grandchildren and exits at once, so they are orphaned.
            let count: usize = args.get(1).and_then(|value| value.parse().ok()).unwrap_or(1);
            for _ in 0..count {
                let _ = self_command(&["sleep", "20"]).spawn();
            }
            ExitCode::SUCCESS
        }
        Some("sleeper") => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        _ => {
            eprintln!("usage: houston-sandbox-probe (engine|sandbox-init|sleep|orphan-parent|sleeper) ...");
            ExitCode::from(2)
        }
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Result<&'a str, String> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|index| args.get(index + 1))
        .map(String::as_str)
        .ok_or_else(|| format!("missing {name}"))
}

fn serve(args: &[String]) -> Result<(), String> {
    let listen = flag(args, "--listen")?;
    let socket = listen.strip_prefix("unix:").ok_or("only unix: listen addresses are supported")?;
    let token = match flag(args, "--token-fd") {
        Ok(fd) => std::fs::read_to_string(format!("/proc/self/fd/{fd}")).map_err(|error| format!("read token: {error}"))?,
        Err(_) => std::env::var("HOUSTON_ENGINE_TOKEN").map_err(|_| "no token given")?,
    };
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(|error| format!("bind {socket}: {error}"))?;
    println!("houston-engine listening on {listen}");
    std::io::stdout().flush().map_err(|error| error.to_string())?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if let Err(error) = handle(stream, token.trim()) {
            eprintln!("probe: connection failed: {error}");
        }
    }
    Ok(())
}

fn handle(stream: UnixStream, token: &str) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut lines = BufReader::new(stream).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    if first.strip_prefix("TOKEN ") != Some(token) {
        writeln!(writer, "{}", json!({"error": "invalid token"}))?;
        return Ok(());
    }
    writeln!(writer, "{}", json!({"ok": true}))?;
    for line in lines {
        let line = line?;
        let words: Vec<&str> = line.split(' ').collect();
        let reply = run_command(&words);
        writeln!(writer, "{reply}")?;
    }
    Ok(())
}

fn outcome<T>(result: std::io::Result<T>, value: impl FnOnce(T) -> Value) -> Value {
    match result {
        Ok(ok) => json!({"ok": true, "value": value(ok)}),
        Err(error) => json!({"ok": false, "error": error.to_string(), "errno": error.raw_os_error()}),
    }
}

fn run_command(words: &[&str]) -> Value {
    match words {
        ["read", path] => outcome(std::fs::read_to_string(path), Value::from),
        ["write", path, text] => outcome(std::fs::write(path, text), |()| Value::Null),
        ["list", path] => outcome(list(path), Value::from),
        ["stat", path] => outcome(std::fs::metadata(path), |meta| json!(meta.len())),
        ["symlink", target, link] => outcome(std::os::unix::fs::symlink(target, link), |()| Value::Null),
        ["hardlink", source, link] => outcome(std::fs::hard_link(source, link), |()| Value::Null),
        ["connect", address] => outcome(connect(address), |()| Value::Null),
        ["unix-ping", path] => outcome(unix_ping(path), Value::from),
        ["status", field] => outcome(status_field(field), Value::from),
        ["procs"] => outcome(processes(), Value::from),
        ["zombies"] => outcome(zombies(), Value::from),
        ["env"] => json!({"ok": true, "value": std::env::vars().collect::<Vec<_>>()}),
        ["hostname"] => outcome(std::fs::read_to_string("/proc/sys/kernel/hostname"), |name| Value::from(name.trim())),
        ["fork-bomb", max] => fork_bomb(max.parse().unwrap_or(0)),
        ["orphans", parents, per_parent] => orphans(parents.parse().unwrap_or(0), per_parent.parse().unwrap_or(0)),
        ["spawn-sleeper", marker] => outcome(spawn_sleeper(marker, false), |()| Value::Null),
        ["spawn-escaped-sleeper", marker] => outcome(spawn_sleeper(marker, true), |()| Value::Null),
        ["exit", code] => std::process::exit(code.parse().unwrap_or(1)),
        _ => json!({"ok": false, "error": format!("unknown command {words:?}")}),
    }
}

fn list(path: &str) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn connect(address: &str) -> std::io::Result<()> {
    let address: SocketAddr = address.parse().map_err(std::io::Error::other)?;
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).map(drop)
}

/// Sends `ping` on a Unix socket and returns the first line of the reply.
fn unix_ping(path: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.write_all(b"ping\n")?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim().to_owned())
}

fn status_field(field: &str) -> std::io::Result<String> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|value| value.trim().to_owned())
        .ok_or_else(|| std::io::Error::other(format!("no {field} in /proc/self/status")))
}

fn processes() -> std::io::Result<Vec<u64>> {
    let mut pids: Vec<u64> = list("/proc")?.iter().filter_map(|name| name.parse().ok()).collect();
    pids.sort_unstable();
    Ok(pids)
}

fn zombies() -> std::io::Result<usize> {
    let mut count = 0;
    for pid in processes()? {
        let mut stat = String::new();
        if std::fs::File::open(format!("/proc/{pid}/stat")).and_then(|mut file| file.read_to_string(&mut stat)).is_ok()
            && stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'))
        {
            count += 1;
        }
    }
    Ok(count)
}

fn self_command(args: &[&str]) -> Command {
    let mut command = Command::new("/proc/self/exe");
    command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

/// Starts sleeping children until a start fails or `max` run; reports how many ran, then
/// kills them. `max` bounds the damage where no pids limit exists.
fn fork_bomb(max: usize) -> Value {
    let mut children: Vec<Child> = Vec::new();
    let mut first_error = None;
    for _ in 0..max {
        match self_command(&["sleep", "30000"]).spawn() {
            Ok(child) => children.push(child),
            Err(error) => {
                first_error = Some(error.to_string());
                break;
            }
        }
    }
    let started = children.len();
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    json!({"ok": true, "value": {"started": started, "error": first_error}})
}

/// Starts `parents` short-lived processes that each leave `per_parent` orphans behind.
fn orphans(parents: usize, per_parent: usize) -> Value {
    let per_parent = per_parent.to_string();
    for _ in 0..parents {
        match self_command(&["orphan-parent", &per_parent]).status() {
            Ok(status) if status.success() => {}
            Ok(status) => return json!({"ok": false, "error": format!("orphan parent {status}")}),
            Err(error) => return json!({"ok": false, "error": error.to_string()}),
        }
    }
    json!({"ok": true, "value": parents * per_parent.parse::<usize>().unwrap_or(0)})
}

/// Leaves a long-lived process carrying `marker` in its command line. With `escape` it
/// gets its own process group, so only a PID namespace or cgroup can still catch it.
fn spawn_sleeper(marker: &str, escape: bool) -> std::io::Result<()> {
    let mut command = self_command(&["sleeper", marker]);
    if escape {
        command.process_group(0);
    }
    // The child is deliberately not waited for: it outlives this request.
    command.spawn().map(drop)
}
