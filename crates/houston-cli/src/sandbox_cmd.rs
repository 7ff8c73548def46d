//! `houston sandbox-init`: the init of a namespace sandbox. The runtime manager starts it
//! with a JSON sandbox plan; users never run it by hand.

use clap::Args;

#[derive(Debug, Args)]
pub struct SandboxInitArgs {
    /// `--check`, or the sandbox plan as JSON.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs the init and exits with its status. It must run before anything starts a thread,
/// because the init forks.
pub fn run(args: SandboxInitArgs) -> anyhow::Result<()> {
    std::process::exit(i32::from(houston_runtime::sandbox::init_main(&args.args)))
}
