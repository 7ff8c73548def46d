//! The demo of `houston up --demo`: workspace Acme, users juan@acme.test (member) and
//! admin@acme.test (owner), agents `hr` (employee handbook) and `sales` (a confidential
//! pipeline holding a canary string), and one grant, Juan → HR.
//!
//! The demo's files are compiled into the binary, so it works from a clone alone. Seeding is
//! idempotent: a second start finds every record and creates nothing twice.

use std::path::Path;

use anyhow::Context;
use houston_control_plane::seed;
use houston_protocol::{UserId, WorkspaceId};
use houston_store::{Agent, AgentSettings, Role, Store};
use rand::Rng;
use rand::distributions::Alphanumeric;

use crate::stack::volume_dir;

/// A demo agent: slug and files, path relative to the volume and content.
struct DemoAgent {
    slug: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const AGENTS: [DemoAgent; 2] = [
    DemoAgent {
        slug: "hr",
        files: &[
            ("houston.json", include_str!("../../demo/hr/houston.json")),
            ("CLAUDE.md", include_str!("../../demo/hr/CLAUDE.md")),
            ("knowledge/employee-handbook.md", include_str!("../../demo/hr/knowledge/employee-handbook.md")),
        ],
    },
    DemoAgent {
        slug: "sales",
        files: &[
            ("houston.json", include_str!("../../demo/sales/houston.json")),
            ("CLAUDE.md", include_str!("../../demo/sales/CLAUDE.md")),
            ("knowledge/pipeline.md", include_str!("../../demo/sales/knowledge/pipeline.md")),
        ],
    },
];

/// Seeds the demo, printing each account it creates once as
/// `demo user: <email> password: <password>`.
///
/// # Errors
/// Store failures and volume write failures.
pub async fn seed(store: &dyn Store, home: &Path) -> anyhow::Result<()> {
    let workspace = match store.get_workspace_by_slug("acme").await? {
        Some(workspace) => workspace,
        None => seed::create_workspace(store, "acme", "Acme").await?,
    };
    let juan = demo_user(store, &workspace.id, "juan@acme.test", "Juan", Role::Member).await?;
    demo_user(store, &workspace.id, "admin@acme.test", "Acme Admin", Role::Owner).await?;

    for demo in &AGENTS {
        let agent = demo_agent(store, &workspace.id, demo).await?;
        write_volume(&volume_dir(home, &agent.id), demo.files)
            .with_context(|| format!("failed to write the volume of agent {}", demo.slug))?;
        if demo.slug == "hr" {
            seed::grant(store, &workspace.id, &agent.id, &juan).await?;
        }
    }
    Ok(())
}

async fn demo_user(store: &dyn Store, workspace: &WorkspaceId, email: &str, name: &str, role: Role) -> anyhow::Result<UserId> {
    let user = match store.get_user_by_email(email).await? {
        Some(user) => {
            eprintln!("demo user {email} exists already; its password is unchanged");
            user
        }
        None => {
            let password = generate_password();
            let user = seed::create_user_with_password(store, email, name, &password).await?;
            println!("demo user: {email} password: {password}");
            user
        }
    };
    seed::add_member(store, workspace, &user.id, role).await?;
    Ok(user.id)
}

async fn demo_agent(store: &dyn Store, workspace: &WorkspaceId, demo: &DemoAgent) -> anyhow::Result<Agent> {
    if let Some(agent) = store.get_agent_by_slug(workspace, demo.slug).await? {
        return Ok(agent);
    }
    let file = |name: &str| demo.files.iter().find(|(path, _)| *path == name).map_or("", |(_, text)| *text);
    let agent = seed::create_agent(
        store,
        workspace,
        demo.slug,
        file("houston.json"),
        file("CLAUDE.md"),
        AgentSettings::default(),
    )
    .await?;
    Ok(agent)
}

/// Writes the demo files into the volume, leaving files that exist (the agent may have
/// changed them) and never touching `.houston/`.
fn write_volume(volume: &Path, files: &[(&str, &str)]) -> std::io::Result<()> {
    for (relative, text) in files {
        let path = volume.join(relative);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

fn generate_password() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(20).map(char::from).collect()
}
