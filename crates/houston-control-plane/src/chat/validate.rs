//! Checks of client input, done before any side effect. Every invalid field is reported at
//! once.

use houston_protocol::{ChatRequest, SessionId};

use super::error::ChatError;

/// Maximum size of a chat message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Maximum length of an idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
/// Maximum length of an agent id or slug, in bytes.
pub const MAX_AGENT_REF_BYTES: usize = 128;

/// A chat request whose fields passed every check.
#[derive(Debug, Clone)]
pub struct ValidChat {
    pub agent: String,
    pub session_id: Option<SessionId>,
    pub message: String,
    pub idempotency_key: Option<String>,
}

/// The `POST /v1/chat` body before validation, so that a bad `session_id` is reported with
/// the other fields instead of as a JSON error. Like [`ChatRequest`], it rejects unknown
/// fields.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChatRequest {
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl RawChatRequest {
    /// Parses a JSON body.
    ///
    /// # Errors
    /// [`ChatError::InvalidFields`] for unknown, mistyped or invalid fields, and
    /// [`ApiError::InvalidJson`](crate::error::ApiError::InvalidJson) for a body that is not JSON.
    pub fn parse(body: &[u8]) -> Result<ChatRequest, ChatError> {
        let raw: Self = crate::extract::parse_json(body).map_err(|error| match error {
            crate::error::ApiError::InvalidFields(fields) => {
                ChatError::InvalidFields(fields.into_iter().map(|field| (field.field, field.reason)).collect())
            }
            other => ChatError::Api(other),
        })?;
        let mut errors = Vec::new();
        let session_id = match raw.session_id.map(SessionId::parse).transpose() {
            Ok(id) => id,
            Err(error) => {
                errors.push(("session_id".to_owned(), error.to_string()));
                None
            }
        };
        let request = ChatRequest {
            agent_id: raw.agent_id.unwrap_or_default(),
            session_id,
            message: raw.message.unwrap_or_default(),
            idempotency_key: raw.idempotency_key,
        };
        if let Err(ChatError::InvalidFields(more)) = ValidChat::check(request.clone()) {
            errors.extend(more);
        }
        if errors.is_empty() { Ok(request) } else { Err(ChatError::InvalidFields(errors)) }
    }
}

impl ValidChat {
    /// Checks every field of a chat request.
    ///
    /// # Errors
    /// [`ChatError::InvalidFields`] listing each invalid field and why.
    pub fn check(request: ChatRequest) -> Result<Self, ChatError> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, reason: String| errors.push((field.to_owned(), reason));
        if request.agent_id.trim().is_empty() {
            fail("agent_id", "is missing or empty".into());
        } else if request.agent_id.len() > MAX_AGENT_REF_BYTES {
            fail("agent_id", format!("must be at most {MAX_AGENT_REF_BYTES} bytes long"));
        }
        if request.message.trim().is_empty() {
            fail("message", "is missing or empty".into());
        } else if request.message.len() > MAX_MESSAGE_BYTES {
            fail("message", format!("must be at most {MAX_MESSAGE_BYTES} bytes long"));
        }
        if let Some(key) = &request.idempotency_key {
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
                fail("idempotency_key", format!("must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes long"));
            } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
                fail("idempotency_key", "may contain only printable ASCII without spaces".into());
            }
        }
        if !errors.is_empty() {
            return Err(ChatError::InvalidFields(errors));
        }
        Ok(Self {
            agent: request.agent_id,
            session_id: request.session_id,
            message: request.message,
            idempotency_key: request.idempotency_key,
        })
    }

    /// Returns a session title made from the first line of the message, at most 80 characters.
    #[must_use]
    pub fn title(&self) -> String {
        let first_line = self.message.trim().lines().next().unwrap_or_default();
        first_line.chars().take(80).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reports_every_invalid_field() {
        let body = br#"{"agent_id": "", "session_id": "../x", "message": " ", "idempotency_key": "a b"}"#;
        let Err(ChatError::InvalidFields(fields)) = RawChatRequest::parse(body) else {
            panic!("expected invalid fields");
        };
        let names: Vec<_> = fields.iter().map(|(f, _)| f.as_str()).collect();
        assert!(names.contains(&"agent_id"), "{names:?}");
        assert!(names.contains(&"session_id"), "{names:?}");
        assert!(names.contains(&"message"), "{names:?}");
        assert!(names.contains(&"idempotency_key"), "{names:?}");
    }

    #[test]
    fn parse_accepts_minimal_body() {
        let request = RawChatRequest::parse(br#"{"agent_id": "hr", "message": "hi"}"#).unwrap();
        assert_eq!(request.agent_id, "hr");
        assert!(request.session_id.is_none());
    }

    #[test]
    fn parse_rejects_non_object() {
        assert!(matches!(RawChatRequest::parse(b"[1]"), Err(ChatError::InvalidFields(_))));
    }

    #[test]
    fn title_takes_first_line() {
        let chat = ValidChat::check(ChatRequest {
            agent_id: "hr".into(),
            session_id: None,
            message: "  what's our vacation policy?\nthanks".into(),
            idempotency_key: None,
        })
        .unwrap();
        assert_eq!(chat.title(), "what's our vacation policy?");
    }
}
