//! `houston agent`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {}

pub fn run(command: AgentCommand) -> anyhow::Result<()> {
    match command {}
}
