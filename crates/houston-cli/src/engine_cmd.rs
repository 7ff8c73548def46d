//! `houston engine`.

use clap::Args;

#[derive(Debug, Args)]
pub struct EngineArgs {}

pub fn run(_args: EngineArgs) -> anyhow::Result<()> {
    anyhow::bail!("`houston engine` is not built yet")
}
