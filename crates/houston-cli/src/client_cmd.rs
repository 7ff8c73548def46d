//! `houston login` and `houston chat`: a terminal client of the control plane's API.

use clap::Args;

#[derive(Debug, Args)]
pub struct LoginArgs {}

#[derive(Debug, Args)]
pub struct ChatArgs {}

pub fn login(_args: LoginArgs) -> anyhow::Result<()> {
    anyhow::bail!("`houston login` is not built yet")
}

pub fn chat(_args: ChatArgs) -> anyhow::Result<()> {
    anyhow::bail!("`houston chat` is not built yet")
}
