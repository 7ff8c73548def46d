//! Requests as a stand-in received them.

use axum::http::HeaderMap;

/// One request a stand-in received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target as received (origin-form or absolute-form).
    pub uri: String,
    pub headers: HeaderMap,
    /// The body parsed as JSON, or `Null` when it was not JSON.
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// Returns a header's value as text, if present.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Returns the text of the last user message in an Anthropic or OpenAI request body
    /// (string content or the text blocks of array content).
    #[must_use]
    pub fn last_user_text(&self) -> String {
        let Some(messages) = self.body["messages"].as_array() else {
            return String::new();
        };
        let Some(last) = messages.iter().rev().find(|m| m["role"] == "user") else {
            return String::new();
        };
        match &last["content"] {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Array(blocks) => blocks
                .iter()
                .filter_map(|block| block["text"].as_str().or_else(|| block["content"].as_str()))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }
}
