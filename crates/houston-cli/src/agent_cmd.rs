//! `houston agent import|export|list`: move agents between Houston definition folders and
//! agent folders.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use houston_engine::folder::transfer;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Turn a Houston agent definition folder into a new agent folder, writing its
    /// agentSeeds files.
    Import {
        /// The definition folder (with houston.json).
        source: PathBuf,
        /// The agent folder to create; it must not exist or be empty.
        #[arg(long)]
        into: PathBuf,
        /// A file to copy into the agent's knowledge/ folder; repeat for several.
        #[arg(long = "knowledge")]
        knowledge: Vec<PathBuf>,
    },
    /// Write an agent folder back out as a definition folder, without .houston/.
    Export {
        /// The agent folder.
        agent_dir: PathBuf,
        /// The definition folder to create; it must not exist or be empty.
        #[arg(long)]
        to: PathBuf,
    },
    /// List the agent folders directly under a folder.
    List {
        /// The folder to look in.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

pub fn run(command: AgentCommand) -> anyhow::Result<()> {
    match command {
        AgentCommand::Import { source, into, knowledge } => {
            let report = transfer::import(&source, &into, &knowledge)
                .with_context(|| format!("failed to import {} into {}", source.display(), into.display()))?;
            println!(
                "imported {} ({}) into {}: {} files, {} seed files, {} knowledge files",
                report.agent_id,
                report.name,
                into.display(),
                report.files_copied,
                report.seeds_written,
                report.knowledge_files
            );
        }
        AgentCommand::Export { agent_dir, to } => {
            let files = transfer::export(&agent_dir, &to)
                .with_context(|| format!("failed to export {} to {}", agent_dir.display(), to.display()))?;
            println!("exported {} to {}: {files} files", agent_dir.display(), to.display());
        }
        AgentCommand::List { dir } => {
            let agents = transfer::list(&dir).with_context(|| format!("failed to list agents in {}", dir.display()))?;
            for agent in agents {
                match agent.folder {
                    Ok(folder) => {
                        let definition = folder.definition.as_ref().expect("listed folders have houston.json");
                        println!(
                            "{}\t{}\t{} skills\t{} knowledge files\t{}",
                            definition.id,
                            definition.name,
                            folder.skills.len(),
                            folder.knowledge.len(),
                            agent.dir.display()
                        );
                    }
                    Err(error) => println!("invalid\t{error}\t{}", agent.dir.display()),
                }
            }
        }
    }
    Ok(())
}
