//! Isolation tests that start real namespace sandboxes with the probe as engine.
//!
//! They need Linux with user namespaces, and a cgroup pids controller for the fork bomb
//! test. They send traffic only to loopback addresses.

mod common;

use std::time::Duration;

use common::{Home, ProbeClient, descendants, host_processes_with, host_uids, is_process_alive, namespace_config};
use houston_runtime::{NamespaceBackend, ResourceLimits, RuntimeBackend, RuntimeHandle, RuntimeStatus};
use nix::libc::{EACCES, ENOENT, EROFS};

const TEST_LIMIT: Duration = Duration::from_secs(60);

async fn start(backend: &NamespaceBackend, home: &Home, agent: &str) -> (RuntimeHandle, ProbeClient) {
    let launch = home.launch(agent);
    let handle = backend.start(&launch).await.unwrap_or_else(|error| panic!("start {agent}: {error}"));
    let client = ProbeClient::connect(&handle.endpoint, &launch.token).await;
    (handle, client)
}

#[tokio::test]
async fn other_agent_folder_does_not_exist() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let sales = home.volume("sales");
        std::fs::create_dir_all(sales.join(".houston/sessions")).unwrap();
        std::fs::write(sales.join("secret.txt"), "sales numbers").unwrap();
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let (handle, mut hr) = start(&backend, &home, "hr").await;

        let sales_host = sales.display().to_string();
        let secret_host = sales.join("secret.txt").display().to_string();
        for path in [sales_host.as_str(), "/data/sales/.houston/sessions", "/data/../agents/sales", "/agents/sales"] {
            assert_eq!(hr.errno(&format!("list {path}")).await, i64::from(ENOENT), "list {path}");
            assert_eq!(hr.errno(&format!("stat {path}")).await, i64::from(ENOENT), "stat {path}");
        }
        assert_eq!(hr.errno(&format!("read {secret_host}")).await, i64::from(ENOENT));

        let symlink = hr.send(&format!("symlink {sales_host} /data/to-sales")).await;
        assert_eq!(symlink["ok"], true, "a dangling symlink may be created: {symlink}");
        assert_eq!(hr.errno("read /data/to-sales/secret.txt").await, i64::from(ENOENT));
        assert_eq!(hr.errno("list /data/to-sales").await, i64::from(ENOENT));
        std::fs::remove_file(home.volume("hr").join("to-sales")).unwrap();

        assert_eq!(hr.errno(&format!("hardlink {secret_host} /data/sales-secret")).await, i64::from(ENOENT));

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn only_minimal_root_is_visible() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let (handle, mut hr) = start(&backend, &home, "hr").await;

        for path in ["/etc/passwd", "/etc/shadow", "/root", "/home", "/usr/bin", "/sys", "/var"] {
            assert_eq!(hr.errno(&format!("stat {path}")).await, i64::from(ENOENT), "{path} must not exist");
        }
        let probe_dir = common::probe().parent().unwrap().display().to_string();
        assert_eq!(hr.errno(&format!("stat {probe_dir}")).await, i64::from(ENOENT));
        assert_eq!(hr.errno(&format!("stat {}", home.dir.path().display())).await, i64::from(ENOENT));

        wait_for_host_root_detached(&mut hr).await;
        let root = hr.send("list /").await;
        let entries: Vec<&str> = root["value"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for entry in &entries {
            assert!(["bin", "data", "dev", "lib", "lib64", "proc", "run", "tmp", "usr"].contains(entry), "unexpected /{entry}");
        }
        let dev = hr.send("list /dev").await;
        assert_eq!(dev["value"], serde_json::json!(["null", "random", "urandom", "zero"]));

        assert_eq!(hr.errno("write /bin/new-file x").await, i64::from(EROFS), "the root is read-only");
        assert_eq!(hr.send("write /tmp/scratch x").await["ok"], true, "/tmp is writable");
        assert_eq!(hr.send("write /data/note.txt hello").await["ok"], true, "/data is writable");
        assert_eq!(std::fs::read_to_string(home.volume("hr").join("note.txt")).unwrap(), "hello");
        assert_eq!(hr.send("hostname").await["value"], "houston-sandbox");

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn privileges_are_dropped() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let (handle, mut hr) = start(&backend, &home, "hr").await;

        for field in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"] {
            assert_eq!(hr.send(&format!("status {field}")).await["value"], "0000000000000000", "{field}");
        }
        assert_eq!(hr.send("status NoNewPrivs").await["value"], "1");
        assert_eq!(hr.send("status Seccomp").await["value"], "2");
        assert_eq!(hr.send("status Uid").await["value"], "1000\t1000\t1000\t1000");

        for sysctl in ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches"] {
            assert_eq!(hr.errno(&format!("write {sysctl} 1")).await, i64::from(EACCES), "{sysctl} is not writable");
        }

        // The engine never runs as host root. The inner init does until it has detached the
        // host's root, which it finishes while the engine starts.
        let sandbox_pids = descendants(handle.instance.pid().unwrap());
        assert_eq!(sandbox_pids.len(), 2, "the inner init and the engine: {sandbox_pids:?}");
        let engine_uids = host_uids(sandbox_pids[1]);
        assert_eq!(engine_uids.len(), 4, "uids of the engine {}", sandbox_pids[1]);
        assert!(engine_uids.iter().all(|uid| *uid != 0), "the engine runs as host root: {engine_uids:?}");
        let mut init_uids = Vec::new();
        for _ in 0..200 {
            init_uids = host_uids(sandbox_pids[0]);
            if init_uids.iter().all(|uid| *uid != 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(init_uids.len(), 4, "uids of the inner init {}", sandbox_pids[0]);
        assert!(init_uids.iter().all(|uid| *uid != 0), "the inner init still runs as host root after 2 s: {init_uids:?}");

        let env = hr.send("env").await;
        let names: Vec<&str> = env["value"].as_array().unwrap().iter().map(|pair| pair[0].as_str().unwrap()).collect();
        for name in &names {
            assert!(["PATH", "HOME", "TMPDIR", "RUST_LOG"].contains(name), "unexpected variable {name} in the sandbox");
        }

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn proc_shows_only_sandbox() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let (handle, mut hr) = start(&backend, &home, "hr").await;

        let pids = hr.send("procs").await["value"].clone();
        assert_eq!(pids, serde_json::json!([1, 2]), "only the init (1) and the engine (2) exist");
        assert_eq!(hr.errno(&format!("stat /proc/{}", std::process::id())).await, i64::from(ENOENT));

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn tcp_connect_fails() {
    tokio::time::timeout(TEST_LIMIT, async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host_port = listener.local_addr().unwrap().port();
        let home = Home::new();
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let (handle, mut hr) = start(&backend, &home, "hr").await;

        for address in [format!("127.0.0.1:{host_port}"), "127.0.0.1:80".to_owned(), "[::1]:80".to_owned()] {
            let errno = hr.errno(&format!("connect {address}")).await;
            assert_ne!(errno, -1, "connect {address} must fail with an OS error");
        }
        listener.set_nonblocking(true).unwrap();
        assert!(listener.accept().is_err(), "no connection may reach the host listener");

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn fork_bomb_stays_in_pids_limit() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let limits = ResourceLimits { pids: 24, ..ResourceLimits::default() };
        let backend = NamespaceBackend::new(namespace_config(limits));
        let (handle, mut hr) = start(&backend, &home, "hr").await;

        // The probe stops at 200 children by itself, so the test stays bounded even on a host
        // without a pids controller.
        let bomb = hr.send("fork-bomb 200").await;
        let started = bomb["value"]["started"].as_u64().unwrap();
        assert!(started < 24, "{started} children started under a limit of 24 processes: {bomb}");
        assert!(bomb["value"]["error"].is_string(), "the start that hit the limit reports an error: {bomb}");
        assert_eq!(hr.send("zombies").await["value"], 0);

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn thousand_orphans_are_reaped() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let (handle, mut hr) = start(&backend, &home, "hr").await;

        let orphans = hr.send("orphans 100 10").await;
        assert_eq!(orphans["value"], 1000, "{orphans}");
        let mut remaining = serde_json::Value::Null;
        for _ in 0..100 {
            remaining = hr.send("procs").await["value"].clone();
            if remaining == serde_json::json!([1, 2]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(remaining, serde_json::json!([1, 2]), "every orphan exited and was reaped by the init");
        assert_eq!(hr.send("zombies").await["value"], 0);

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn stop_leaves_no_process() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let (handle, mut hr) = start(&backend, &home, "hr").await;
        let marker = format!("marker-{}", uuid_like());

        assert_eq!(hr.send(&format!("spawn-sleeper {marker}")).await["ok"], true);
        assert_eq!(hr.send(&format!("spawn-escaped-sleeper {marker}")).await["ok"], true);
        let mut sleepers = Vec::new();
        for _ in 0..100 {
            sleepers = host_processes_with(&marker);
            if sleepers.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sleepers.len(), 2, "both sleepers run before the stop");
        let outer = handle.instance.pid().unwrap();

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
        assert!(matches!(handle.instance.status(), RuntimeStatus::Exited(_)));
        assert!(!is_process_alive(outer), "the sandbox init is gone");
        for pid in sleepers {
            assert!(!is_process_alive(pid), "sleeper {pid} survived the stop");
        }
    })
    .await
    .expect("test timed out");
}

/// Waits until the init has detached the host's root, which it does while the engine starts.
async fn wait_for_host_root_detached(client: &mut ProbeClient) {
    for _ in 0..200 {
        if client.send("stat /.host").await["errno"] == i64::from(ENOENT) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the host root is still mounted at /.host/root after 2 s");
}

#[tokio::test]
async fn host_root_unreachable_while_detaching() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let (handle, mut hr) = start(&backend, &home, "hr").await;

        // Run while the init may still be detaching: the parked host root must be shielded.
        for path in ["/.host/root", "/.host/root/etc/passwd", "/.host/root/root"] {
            let errno = hr.errno(&format!("stat {path}")).await;
            assert!(errno == i64::from(EACCES) || errno == i64::from(ENOENT), "stat {path}: errno {errno}");
        }
        assert_ne!(hr.send("list /.host").await["ok"], true);
        assert_ne!(hr.send("read /.host/root/etc/passwd").await["ok"], true);
        wait_for_host_root_detached(&mut hr).await;
        let mounts = hr.send("read /proc/self/mountinfo").await;
        let mounts = mounts["value"].as_str().unwrap();
        assert!(!mounts.contains("/.host"), "{mounts}");

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}

fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

#[tokio::test]
async fn egress_socket_is_reachable() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let egress_dir = tempfile::tempdir().unwrap();
        let egress_path = egress_dir.path().join("hr.sock");
        let listener = tokio::net::UnixListener::bind(&egress_path).unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            tokio::io::BufReader::new(read).read_line(&mut line).await.unwrap();
            write.write_all(b"pong\n").await.unwrap();
            line
        });
        let backend = NamespaceBackend::new(namespace_config(ResourceLimits::default()));
        let mut launch = home.launch("hr");
        launch.egress_socket = Some(egress_path.clone());
        let handle = backend.start(&launch).await.unwrap();
        let mut hr = ProbeClient::connect(&handle.endpoint, &launch.token).await;

        let env = hr.send("env").await;
        let expected = serde_json::json!(["HOUSTON_EGRESS_SOCKET", "/run/houston/egress.sock"]);
        assert!(env["value"].as_array().unwrap().contains(&expected), "{env}");
        let ping = hr.send("unix-ping /run/houston/egress.sock").await;
        assert_eq!(ping["value"], "pong", "{ping}");
        assert_eq!(server.await.unwrap(), "ping\n");
        assert_eq!(hr.errno(&format!("stat {}", egress_path.display())).await, i64::from(ENOENT));

        handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    })
    .await
    .expect("test timed out");
}
