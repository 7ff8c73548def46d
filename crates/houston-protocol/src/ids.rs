//! Validated identifier newtypes.
//!
//! Every id that may reach a file system path matches `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`.
//! The pattern rules out `.`, `/`, `\`, NUL and every other byte that could change the
//! meaning of a path, and caps the length so ids never exceed a file name limit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Maximum length of an id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// The rule of the id pattern that a string breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_LEN} bytes long, got {0}")]
    TooLong(usize),
    #[error("must start with a letter or digit")]
    BadFirstCharacter,
    #[error("may contain only letters, digits, '-' and '_'")]
    BadCharacter,
}

/// Checks `value` against the id pattern.
///
/// # Errors
/// Returns the first rule the value breaks.
pub fn validate_id(value: &str) -> Result<(), IdError> {
    let bytes = value.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(IdError::Empty);
    };
    if bytes.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(bytes.len()));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(IdError::BadFirstCharacter);
    }
    if !bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses `value` as an id.
            ///
            /// # Errors
            /// Returns [`IdError`] when `value` does not match the id pattern.
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate_id(&value)?;
                Ok(Self(value))
            }

            /// Creates a new random id (a UUID v7, so ids sort by creation time).
            #[must_use]
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// Returns the id as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// Identifier of a workspace (a tenant).
    WorkspaceId
);
id_type!(
    /// Identifier of a user, stable across workspaces.
    UserId
);
id_type!(
    /// Opaque, globally unique identifier of an agent.
    AgentId
);
id_type!(
    /// Identifier of one conversation between a user and an agent.
    SessionId
);
id_type!(
    /// Identifier of one turn: a user message and the agent's answer to it.
    TurnId
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_uuid_and_slug() {
        assert!(SessionId::parse("0193a5c2-7b1e-7c4e-9d7e-2f0a1b2c3d4e").is_ok());
        assert!(AgentId::parse("hr").is_ok());
        assert!(UserId::parse("user_42").is_ok());
    }

    #[test]
    fn rejects_path_tricks() {
        for bad in ["", "..", "../sales", "/etc/passwd", "a/b", "a\\b", "a\0b", ".hidden", "-x"] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn rejects_over_long_id() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert_eq!(SessionId::parse(long), Err(IdError::TooLong(MAX_ID_LEN + 1)));
        assert!(SessionId::parse("a".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn serde_rejects_invalid_id() {
        let parsed: Result<TurnId, _> = serde_json::from_str("\"../x\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn generated_ids_are_valid() {
        let id = TurnId::generate();
        assert!(validate_id(id.as_str()).is_ok());
    }

    proptest! {
        #[test]
        fn valid_ids_are_single_path_components(value in "\\PC{0,80}") {
            if validate_id(&value).is_ok() {
                let path = std::path::Path::new(&value);
                let mut components = path.components();
                let only = components.next();
                prop_assert!(components.next().is_none());
                prop_assert!(matches!(only, Some(std::path::Component::Normal(_))));
                prop_assert!(value.len() <= MAX_ID_LEN);
            }
        }
    }
}
