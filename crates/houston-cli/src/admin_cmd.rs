//! `houston admin`: create workspaces, users, agents and grants directly in the store, for
//! bootstrapping a deployment before anyone can sign in.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use houston_control_plane::auth::builtin::BuiltinIssuer;
use houston_control_plane::auth::config::BuiltinIssuerConfig;
use houston_control_plane::seed;
use houston_protocol::{AgentId, WorkspaceId};
use houston_store::{AgentSettings, Role, Store, StoreOptions};

/// Location of the store, shared by every admin subcommand.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// `postgres://…` or `sqlite://PATH`.
    #[arg(long, env = "HOUSTON_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a workspace.
    CreateWorkspace {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
    /// Create a user who signs in with a password (read from HOUSTON_PASSWORD or the terminal).
    CreateUser {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Add a user to a workspace, or change the user's role (owner, admin or member).
    AddMember {
        #[command(flatten)]
        store: StoreArgs,
        /// Workspace slug or id.
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Create an agent from a Houston agent folder (houston.json and CLAUDE.md).
    CreateAgent {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        folder: PathBuf,
    },
    /// Let a member use an agent.
    Grant {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        workspace: String,
        /// Agent slug or id.
        #[arg(long)]
        agent: String,
        #[arg(long)]
        email: String,
    },
    /// Create a new signing key for the built-in issuer; tokens signed with older keys stay
    /// valid until they expire.
    RotateSigningKey {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(command: AdminCommand) -> anyhow::Result<()> {
    crate::telemetry::init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(execute(command))
}

async fn open(args: &StoreArgs) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    houston_store::connect(&StoreOptions::new(args.database_url.clone())).await.context("opening the store")
}

async fn execute(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateWorkspace { store, slug, name } => {
            let workspace = seed::create_workspace(open(&store).await?.as_ref(), &slug, &name).await?;
            println!("workspace {} ({})", workspace.slug, workspace.id);
        }
        AdminCommand::CreateUser { store, email, name } => {
            let password = read_password()?;
            let user = seed::create_user_with_password(open(&store).await?.as_ref(), &email, &name, &password).await?;
            println!("user {email} ({})", user.id);
        }
        AdminCommand::AddMember { store, workspace, email, role } => {
            let store = open(&store).await?;
            let Some(role) = Role::parse(&role) else { bail!("invalid --role {role:?}: use owner, admin or member") };
            let workspace = find_workspace(store.as_ref(), &workspace).await?;
            let user = store.get_user_by_email(&email).await?.with_context(|| format!("no user has the email {email}"))?;
            seed::add_member(store.as_ref(), &workspace, &user.id, role).await?;
            println!("{email} is {} of the workspace", role.as_str());
        }
        AdminCommand::CreateAgent { store, workspace, slug, folder } => {
            let store = open(&store).await?;
            let workspace = find_workspace(store.as_ref(), &workspace).await?;
            let agent = seed::create_agent_from_folder(store.as_ref(), &workspace, &slug, &folder, AgentSettings::default()).await?;
            println!("agent {} ({})", agent.slug, agent.id);
        }
        AdminCommand::Grant { store, workspace, agent, email } => {
            let store = open(&store).await?;
            let workspace = find_workspace(store.as_ref(), &workspace).await?;
            let agent = find_agent(store.as_ref(), &workspace, &agent).await?;
            let user = store.get_user_by_email(&email).await?.with_context(|| format!("no user has the email {email}"))?;
            seed::grant(store.as_ref(), &workspace, &agent, &user.id).await?;
            println!("{email} may use the agent");
        }
        AdminCommand::RotateSigningKey { store } => {
            let store = open(&store).await?;
            let issuer = BuiltinIssuer::load(BuiltinIssuerConfig::default(), String::new(), store).await?;
            println!("new signing key {}", issuer.rotate().await?);
        }
    }
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("HOUSTON_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password("password: ").context("reading the password from the terminal")
}

async fn find_workspace(store: &dyn Store, reference: &str) -> anyhow::Result<WorkspaceId> {
    if let Ok(id) = WorkspaceId::parse(reference) {
        if let Some(workspace) = store.get_workspace(&id).await? {
            return Ok(workspace.id);
        }
    }
    let workspace = store.get_workspace_by_slug(reference).await?.with_context(|| format!("no workspace {reference:?}"))?;
    Ok(workspace.id)
}

async fn find_agent(store: &dyn Store, workspace: &WorkspaceId, reference: &str) -> anyhow::Result<AgentId> {
    let id = AgentId::parse(reference).with_context(|| format!("invalid agent {reference:?}"))?;
    if let Some(agent) = store.get_agent(&id).await?.filter(|agent| agent.workspace_id == *workspace) {
        return Ok(agent.id);
    }
    let agent = store.get_agent_by_slug(workspace, reference).await?.with_context(|| format!("no agent {reference:?} in the workspace"))?;
    Ok(agent.id)
}
