//! `houston up --demo` on a home that is already seeded: it starts, creates nothing twice and
//! prints no new passwords, and the accounts from the first start still sign in.

mod flow_support;

use flow_support::Houston;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_demo_start_seeds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let first = Houston::start(&home, &["--demo"], &[]);
    let passwords = first.passwords.clone();
    assert_eq!(passwords.len(), 2);
    drop(first);

    let mut second = Houston::start(&home, &["--demo"], &[]);
    assert!(second.passwords.is_empty(), "no account is created again: {:?}", second.passwords);
    second.passwords = passwords;
    let admin = second.login("admin@acme.test").await;
    let juan = second.login("juan@acme.test").await;

    let agents = second.get_json(&admin, "/v1/workspaces/acme/agents").await;
    let mut slugs: Vec<&str> = agents["agents"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap()).collect();
    slugs.sort_unstable();
    assert_eq!(slugs, ["hr", "sales"]);
    let members = second.get_json(&admin, "/v1/workspaces/acme/members").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    let grants = second.get_json(&admin, "/v1/workspaces/acme/grants").await;
    assert_eq!(grants["grants"].as_array().unwrap().len(), 1, "one grant, Juan to HR");
    let visible = second.get_json(&juan, "/v1/agents").await;
    assert_eq!(visible["agents"].as_array().unwrap().len(), 1);
}
