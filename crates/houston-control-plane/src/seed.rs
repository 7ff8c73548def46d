//! Creating workspaces, users, agents and grants directly in the store, for `houston up
//! --demo`, `houston admin` and tests. The admin API validates its input and then calls these.

use std::path::Path;

use houston_protocol::{AgentDefinition, AgentId, UserId, WorkspaceId};
use houston_store::{Agent, AgentSettings, NewAgent, NewUser, Role, Store, StoreError, User, Workspace};

use crate::auth::password;

/// Failure of a seeding step.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid agent definition: {0}")]
    Definition(#[from] houston_protocol::definition::DefinitionError),
    #[error("reading {path} failed: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("hashing the password failed: {0}")]
    Password(String),
}

/// Creates a workspace.
///
/// # Errors
/// [`SeedError::Store`], with [`StoreError::Conflict`] when the slug is taken.
pub async fn create_workspace(store: &dyn Store, slug: &str, name: &str) -> Result<Workspace, SeedError> {
    Ok(store.create_workspace(slug, name).await?)
}

/// Creates a user who signs in with `email` and `password` (hashed with argon2id).
///
/// # Errors
/// [`SeedError::Store`], with [`StoreError::Conflict`] when the email is taken.
pub async fn create_user_with_password(store: &dyn Store, email: &str, name: &str, password: &str) -> Result<User, SeedError> {
    let password_hash = password::hash_password(password.to_owned()).await.map_err(SeedError::Password)?;
    let user = NewUser { email: Some(email.to_owned()), name: name.to_owned(), password_hash: Some(password_hash), ..NewUser::default() };
    Ok(store.create_user(user).await?)
}

/// Adds the user to the workspace with `role`, or changes the role.
///
/// # Errors
/// [`SeedError::Store`].
pub async fn add_member(store: &dyn Store, workspace: &WorkspaceId, user: &UserId, role: Role) -> Result<(), SeedError> {
    Ok(store.set_membership(workspace, user, role).await?)
}

/// Creates an agent from the text of a `houston.json` and its instructions (`CLAUDE.md`).
///
/// # Errors
/// [`SeedError::Definition`] for an invalid definition, [`SeedError::Store`] (a
/// [`StoreError::Conflict`] when the slug is taken in the workspace).
pub async fn create_agent(
    store: &dyn Store,
    workspace: &WorkspaceId,
    slug: &str,
    definition_json: &str,
    instructions: &str,
    settings: AgentSettings,
) -> Result<Agent, SeedError> {
    let definition = AgentDefinition::parse(definition_json)?;
    let agent = new_agent(workspace, slug, &definition, instructions, settings);
    Ok(store.create_agent(agent).await?)
}

/// Creates an agent from a Houston agent folder (`houston.json`, optional `CLAUDE.md`).
///
/// # Errors
/// [`SeedError::Read`] when `houston.json` cannot be read, else as [`create_agent`].
pub async fn create_agent_from_folder(store: &dyn Store, workspace: &WorkspaceId, slug: &str, folder: &Path, settings: AgentSettings) -> Result<Agent, SeedError> {
    let read = |name: &str| {
        let path = folder.join(name);
        std::fs::read_to_string(&path).map_err(|source| SeedError::Read { path: path.display().to_string(), source })
    };
    let definition = read("houston.json")?;
    let instructions = if folder.join("CLAUDE.md").exists() { read("CLAUDE.md")? } else { String::new() };
    create_agent(store, workspace, slug, &definition, &instructions, settings).await
}

/// Grants the user the agent.
///
/// # Errors
/// [`SeedError::Store`].
pub async fn grant(store: &dyn Store, workspace: &WorkspaceId, agent: &AgentId, user: &UserId) -> Result<(), SeedError> {
    store.put_grant(workspace, agent, user).await?;
    Ok(())
}

/// Builds the stored form of an agent from its parsed definition.
pub(crate) fn new_agent(workspace: &WorkspaceId, slug: &str, definition: &AgentDefinition, instructions: &str, settings: AgentSettings) -> NewAgent {
    NewAgent {
        workspace_id: workspace.clone(),
        slug: slug.to_owned(),
        name: definition.name.clone(),
        description: definition.description.clone(),
        icon: definition.icon.clone(),
        category: definition.category.clone(),
        definition: serde_json::to_value(definition).unwrap_or(serde_json::Value::Null),
        instructions: instructions.to_owned(),
        settings,
    }
}
