//! What the manager needs to know to run one agent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use houston_protocol::AgentId;

/// Default idle timeout: a runtime with no open turn for this long is stopped.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest path a Unix socket address can hold on Linux (`sun_path` is 108 bytes with NUL).
pub(crate) const MAX_SOCKET_PATH: usize = 107;

/// Environment variable names that look like credentials. Keys and tokens stay outside the
/// sandbox: the egress proxy adds them on the way out.
const SECRET_NAME_PARTS: [&str; 5] = ["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"];

/// The program and leading arguments that start an engine.
///
/// The backend appends `--agent-dir DIR --listen unix:PATH --token-fd 3` with the paths in
/// the engine's view, so the same command works inside and outside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineCommand {
    /// Absolute path of the engine binary on the host.
    pub program: PathBuf,
    /// Arguments before the appended ones, `["engine"]` for the `houston` binary.
    pub args: Vec<String>,
}

impl EngineCommand {
    /// Builds `PROGRAM engine`, the command for the `houston` binary at `program`.
    pub fn houston(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), args: vec!["engine".to_owned()] }
    }

    /// Builds the engine command for the running `houston` binary.
    ///
    /// # Errors
    /// Returns the error of [`std::env::current_exe`].
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self::houston(std::env::current_exe()?))
    }
}

/// Registration of one agent with the runtime manager.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The agent this runtime serves.
    pub agent_id: AgentId,
    /// The agent's volume on the host, mounted read-write at `/data` in a sandbox.
    pub volume_dir: PathBuf,
    /// Time without an open turn after which the runtime is stopped.
    pub idle_timeout: Duration,
    /// Keep one runtime running at all times (`min_instances = 1`).
    pub keep_warm: bool,
    /// How to start the engine.
    pub engine: EngineCommand,
    /// Extra environment for the engine: provider name, model, base URL. Never a credential.
    pub env: BTreeMap<String, String>,
    /// The egress proxy's socket on the host, exposed in the sandbox at
    /// `/run/houston/egress.sock`.
    pub egress_socket: Option<PathBuf>,
}

impl AgentSpec {
    /// Creates a spec with the default idle timeout, no keep-warm, no extra environment and
    /// no egress socket.
    pub fn new(agent_id: AgentId, volume_dir: impl Into<PathBuf>, engine: EngineCommand) -> Self {
        Self {
            agent_id,
            volume_dir: volume_dir.into(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            keep_warm: false,
            engine,
            env: BTreeMap::new(),
            egress_socket: None,
        }
    }

    /// Checks every field and returns all problems at once.
    ///
    /// # Errors
    /// Returns one [`SpecError`] per invalid field.
    pub fn validate(&self) -> Result<(), Vec<SpecError>> {
        let mut errors = Vec::new();
        check_dir("volume_dir", &self.volume_dir, &mut errors);
        check_program(&self.engine.program, &mut errors);
        if self.idle_timeout.is_zero() {
            errors.push(SpecError::new("idle_timeout", "must be greater than zero"));
        }
        for name in self.env.keys() {
            if let Err(reason) = check_env_name(name) {
                errors.push(SpecError::new("env", format!("{name:?} {reason}")));
            }
        }
        if let Some(socket) = &self.egress_socket
            && !socket.is_absolute()
        {
            errors.push(SpecError::new("egress_socket", "must be an absolute path"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// An invalid field of an [`AgentSpec`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    /// The field name as in [`AgentSpec`].
    pub field: &'static str,
    /// Why the value was rejected.
    pub reason: String,
}

impl SpecError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

fn check_dir(field: &'static str, path: &Path, errors: &mut Vec<SpecError>) {
    if !path.is_absolute() {
        errors.push(SpecError::new(field, format!("{} must be an absolute path", path.display())));
    } else if !path.is_dir() {
        errors.push(SpecError::new(field, format!("{} is not a directory", path.display())));
    }
}

fn check_program(program: &Path, errors: &mut Vec<SpecError>) {
    if !program.is_absolute() {
        let reason = format!("{} must be an absolute path", program.display());
        errors.push(SpecError::new("engine.program", reason));
    } else if !program.is_file() {
        let reason = format!("{} is not a file", program.display());
        errors.push(SpecError::new("engine.program", reason));
    }
}

fn check_env_name(name: &str) -> Result<(), &'static str> {
    let well_formed = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !well_formed {
        return Err("is not a valid variable name (letters, digits and '_')");
    }
    let upper = name.to_ascii_uppercase();
    if SECRET_NAME_PARTS.iter().any(|part| upper.contains(part)) {
        return Err("looks like a credential; credentials never enter a runtime, the egress proxy adds them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path) -> AgentSpec {
        let engine = EngineCommand::houston(std::env::current_exe().unwrap());
        AgentSpec::new(AgentId::parse("hr").unwrap(), dir, engine)
    }

    #[test]
    fn valid_spec_passes() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = spec(dir.path());
        spec.env.insert("HOUSTON_PROVIDER".into(), "anthropic".into());
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn rejects_credential_env() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = spec(dir.path());
        spec.env.insert("ANTHROPIC_API_KEY".into(), "sk-test".into());
        let errors = spec.validate().unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "env");
        assert!(errors[0].reason.contains("credential"), "{}", errors[0].reason);
    }

    #[test]
    fn reports_every_invalid_field() {
        let mut spec = spec(Path::new("relative/volume"));
        spec.engine.program = PathBuf::from("/nonexistent/houston");
        spec.idle_timeout = Duration::ZERO;
        spec.env.insert("BAD NAME".into(), String::new());
        spec.egress_socket = Some(PathBuf::from("egress.sock"));
        let fields: Vec<_> = spec.validate().unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["volume_dir", "engine.program", "idle_timeout", "env", "egress_socket"]);
    }
}
