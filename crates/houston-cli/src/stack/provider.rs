//! The model provider of the agents of `houston up` and `houston serve`, and the engine environment that
//! selects it. The environment carries the provider name, model and base URL only: the
//! API keys stay with the egress proxy, which adds them to each request on the way out.

use std::collections::BTreeMap;

use houston_egress::{ANTHROPIC_DEFAULT_BASE_URL, OPENAI_DEFAULT_BASE_URL};
use houston_store::AgentSettings;

/// The provider configured on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderChoice {
    /// `ANTHROPIC_API_KEY` is set.
    Anthropic { base_url: String },
    /// `OPENAI_API_KEY` is set (any value works for servers that need no key).
    OpenAi { base_url: String },
    /// No key is set: agents answer from their knowledge files without a model.
    Offline,
}

impl ProviderChoice {
    /// Reads `ANTHROPIC_API_KEY`/`ANTHROPIC_BASE_URL`, then `OPENAI_API_KEY`/`OPENAI_BASE_URL`,
    /// through `lookup`, which returns `None` for unset or empty variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        if lookup("ANTHROPIC_API_KEY").is_some() {
            let base_url = lookup("ANTHROPIC_BASE_URL").unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE_URL.to_owned());
            return Self::Anthropic { base_url };
        }
        if lookup("OPENAI_API_KEY").is_some() {
            let base_url = lookup("OPENAI_BASE_URL").unwrap_or_else(|| format!("{OPENAI_DEFAULT_BASE_URL}/v1"));
            return Self::OpenAi { base_url };
        }
        Self::Offline
    }

    /// Prints the provider the agents use, and for the offline provider how to change it.
    pub fn announce(&self) {
        match self {
            Self::Anthropic { base_url } => eprintln!("model provider: anthropic at {base_url}"),
            Self::OpenAi { base_url } => eprintln!("model provider: OpenAI-compatible server at {base_url}"),
            Self::Offline => eprintln!(
                "model provider: offline. No ANTHROPIC_API_KEY or OPENAI_API_KEY is set, so agents \
                 answer by quoting their knowledge files, and each answer says so. Set \
                 ANTHROPIC_API_KEY (or OPENAI_API_KEY with OPENAI_BASE_URL) and restart to use a model."
            ),
        }
    }

    /// Returns the engine environment for an agent. The agent's own model is used when its
    /// provider is the configured one; `model_override` (from `HOUSTON_MODEL` or the serve
    /// configuration) replaces it for every agent.
    #[must_use]
    pub fn engine_env(&self, settings: &AgentSettings, model_override: Option<&str>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let (name, url_var, base_url) = match self {
            Self::Anthropic { base_url } => ("anthropic", "ANTHROPIC_BASE_URL", base_url.as_str()),
            Self::OpenAi { base_url } => ("openai", "OPENAI_BASE_URL", base_url.as_str()),
            Self::Offline => ("offline", "", ""),
        };
        env.insert("HOUSTON_PROVIDER".to_owned(), name.to_owned());
        if !url_var.is_empty() {
            env.insert(url_var.to_owned(), base_url.to_owned());
        }
        let model = model_override.filter(|model| !model.is_empty()).map(str::to_owned);
        let model = model.or_else(|| (settings.provider == name).then(|| settings.model.clone()));
        if let Some(model) = model.filter(|_| name != "offline") {
            env.insert("HOUSTON_MODEL".to_owned(), model);
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(vars: &[(&str, &str)]) -> ProviderChoice {
        ProviderChoice::from_lookup(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn no_key_means_offline() {
        assert_eq!(choice(&[("ANTHROPIC_BASE_URL", "http://x")]), ProviderChoice::Offline);
    }

    #[test]
    fn anthropic_key_wins_over_openai() {
        let picked = choice(&[("ANTHROPIC_API_KEY", "k"), ("OPENAI_API_KEY", "k")]);
        assert_eq!(picked, ProviderChoice::Anthropic { base_url: ANTHROPIC_DEFAULT_BASE_URL.to_owned() });
    }

    #[test]
    fn engine_env_has_no_key() {
        let picked = choice(&[("OPENAI_API_KEY", "sk-secret"), ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")]);
        let env = picked.engine_env(&AgentSettings::default(), None);
        assert_eq!(env["HOUSTON_PROVIDER"], "openai");
        assert_eq!(env["OPENAI_BASE_URL"], "http://127.0.0.1:11434/v1");
        assert!(env.values().all(|value| !value.contains("sk-secret")));
        assert!(env.keys().all(|name| !name.contains("KEY")));
    }
}
