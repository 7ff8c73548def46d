//! `houston admin`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {}

pub fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {}
}
