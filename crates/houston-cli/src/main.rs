//! The `houston` binary. Each subcommand lives in its own module and only parses arguments,
//! starts telemetry and calls into the library crates.

mod agent_cmd;
mod admin_cmd;
mod client_cmd;
mod engine_cmd;
mod home_dir;
mod sandbox_cmd;
mod serve_cmd;
mod stack;
mod telemetry;
mod up_cmd;

use clap::{Parser, Subcommand};

/// Houston Cloud: hosts AI agents that sleep when idle and wake on the first message.
#[derive(Debug, Parser)]
#[command(name = "houston", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything on this machine with embedded defaults.
    Up(up_cmd::UpArgs),
    /// Run the control plane and agent runtimes, for a fleet (Postgres and Redis required).
    Serve(serve_cmd::ServeArgs),
    /// Run the runtime of one agent folder (what runs inside a sandbox).
    Engine(engine_cmd::EngineArgs),
    /// Import, export and list agent folders.
    #[command(subcommand)]
    Agent(agent_cmd::AgentCommand),
    /// Administer workspaces, users, agents and grants.
    #[command(subcommand)]
    Admin(admin_cmd::AdminCommand),
    /// Sign in to a Houston server and store the token for `houston chat`.
    Login(client_cmd::LoginArgs),
    /// Send a message to an agent and print the streamed answer.
    Chat(client_cmd::ChatArgs),
    /// Run the init of a namespace sandbox (started by the runtime manager).
    #[command(name = "sandbox-init", hide = true)]
    SandboxInit(sandbox_cmd::SandboxInitArgs),
}

fn main() -> anyhow::Result<()> {
    home_dir::restrict_umask();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => up_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Engine(args) => engine_cmd::run(args),
        Command::Agent(command) => agent_cmd::run(command),
        Command::Admin(command) => admin_cmd::run(command),
        Command::Login(args) => client_cmd::login(args),
        Command::Chat(args) => client_cmd::chat(args),
        Command::SandboxInit(args) => sandbox_cmd::run(args),
    }
}
