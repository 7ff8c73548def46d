//! The terminal client against `houston up --demo` without a model key: `houston login`
//! stores the token privately, and `houston chat` prints the offline answer from the demo
//! handbook, with the wake-up on stderr.

mod flow_support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use flow_support::Houston;

fn houston(config_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_houston"));
    command.env("XDG_CONFIG_HOME", config_dir).env_remove("HOUSTON_SERVER");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_chat_from_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let up = Houston::start(&dir.path().join("home"), &["--demo"], &[]);
    assert!(up.log().contains("model provider: offline"), "the start says the demo is offline");
    let config_dir = dir.path().join("config");

    let login = houston(&config_dir)
        .args(["login", "--server", &up.url, "--email", "juan@acme.test"])
        .env("HOUSTON_PASSWORD", &up.passwords["juan@acme.test"])
        .output()
        .unwrap();
    assert!(login.status.success(), "login failed: {}", String::from_utf8_lossy(&login.stderr));
    let credentials = config_dir.join("houston/credentials.json");
    let mode = std::fs::metadata(&credentials).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the token file is private");

    let chat = houston(&config_dir).args(["chat", "--agent", "hr", "what's our vacation policy?"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&chat.stdout);
    let stderr = String::from_utf8_lossy(&chat.stderr);
    assert!(chat.status.success(), "chat failed: {stderr}");
    assert!(stdout.contains("offline answer"), "the answer says it is offline: {stdout}");
    assert!(stdout.contains("20 paid vacation days"), "the answer quotes the vacation policy: {stdout}");
    assert!(stderr.contains("waking the agent"), "{stderr}");
    assert!(stderr.contains("agent ready in"), "{stderr}");

    let sales = houston(&config_dir).args(["chat", "--agent", "sales", "pipeline?"]).output().unwrap();
    assert!(!sales.status.success(), "Juan may not use Sales");
    assert!(String::from_utf8_lossy(&sales.stderr).contains("404"), "{}", String::from_utf8_lossy(&sales.stderr));
}

#[test]
fn chat_rejects_bad_session_locally() {
    let dir = tempfile::tempdir().unwrap();

    // No credentials and no server: the session id must be rejected before either is needed.
    let output = houston(dir.path()).args(["chat", "--agent", "hr", "--session", "../../x", "hi"]).output().unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("session_id must start with a letter or digit"), "{stderr}");
    assert!(!stderr.contains("houston login"), "{stderr}");
}
