//! An agent imported from a Houston definition folder (the `people` definition, read in
//! place from the shared fixtures) serves as a workspace's HR agent through `houston up`.

mod flow_support;

use std::process::Command;

use flow_support::{Houston, fixtures_dir, types};
use houston_testkit::anthropic::StandIn;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_people_agent_answers() {
    let stand_in = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("ANTHROPIC_API_KEY", "test-key".to_owned()), ("ANTHROPIC_BASE_URL", stand_in.base_url())];
    let houston = Houston::start(&dir.path().join("home"), &["--demo"], &env);
    let admin = houston.login("admin@acme.test").await;
    let juan = houston.login("juan@acme.test").await;
    let people = fixtures_dir().join("houston-agents/people");
    let handbook = fixtures_dir().join("acme/employee-handbook.md");

    let definition: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(people.join("houston.json")).unwrap()).unwrap();
    let instructions = std::fs::read_to_string(people.join("CLAUDE.md")).unwrap();
    let created = houston
        .client
        .post(format!("{}/v1/workspaces/acme/agents", houston.url))
        .bearer_auth(&admin)
        .json(&json!({"slug": "people-hr", "definition": definition, "instructions": instructions}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let agent: serde_json::Value = created.json().await.unwrap();
    let agent_id = agent["id"].as_str().unwrap();

    let volume = houston.home.join("agents").join(agent_id);
    let import = Command::new(env!("CARGO_BIN_EXE_houston"))
        .args(["agent", "import"])
        .arg(&people)
        .arg("--into")
        .arg(&volume)
        .arg("--knowledge")
        .arg(&handbook)
        .output()
        .unwrap();
    assert!(import.status.success(), "import failed: {}", String::from_utf8_lossy(&import.stderr));

    let me = houston.get_json(&juan, "/v1/me").await;
    let juan_id = me["user"]["id"].as_str().unwrap();
    let grant = houston
        .client
        .put(format!("{}/v1/workspaces/acme/agents/people-hr/grants/{juan_id}", houston.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 204);

    let events = houston.chat(&juan, json!({"agent_id": "people-hr", "message": "what's our vacation policy?"})).await;
    assert_eq!(types(&events).last(), Some(&"turn.completed"), "{:?}", types(&events));
    let request = stand_in.requests().pop().expect("the model was called");
    let prompt = request.body.to_string();
    assert!(prompt.contains("full-stack People operator"), "the persona comes from the imported CLAUDE.md");
    assert!(prompt.contains("employee-handbook.md"), "the knowledge index lists the handbook");
    assert!(people.join("houston.json").exists(), "the fixture is read in place, not moved");
}
