//! `houston up`.

use clap::Args;

#[derive(Debug, Args)]
pub struct UpArgs {}

pub fn run(_args: UpArgs) -> anyhow::Result<()> {
    anyhow::bail!("`houston up` is not built yet")
}
