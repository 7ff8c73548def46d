//! Model providers behind one trait: Anthropic Messages, OpenAI-compatible Chat Completions,
//! and an offline provider that answers from the knowledge files.
//!
//! A provider streams one model call: it reports answer text through a callback as it arrives
//! and returns the complete reply (text, tool calls, usage, stop reason) at the end. The turn
//! runner owns the tool loop and calls the provider once per round.

pub mod anthropic;
pub mod offline;
pub mod openai;
mod stream;

use std::sync::Arc;

use async_trait::async_trait;
use houston_protocol::Usage;
use serde_json::Value;

use crate::config::{ProviderKind, ProviderSettings};
use crate::folder::AgentFolder;
use crate::http::{HttpClient, HttpError};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// A piece of a message, in the shape of the Anthropic Messages API.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentBlock {
    Text(String),
    /// A tool call. `input_error` is set when the model's input was not valid JSON, in which
    /// case the tool is not run and the model gets the error as the tool result.
    ToolUse { id: String, name: String, input: Value, input_error: Option<String> },
    ToolResult { tool_use_id: String, content: String, is_error: bool },
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A message with one text block.
    #[must_use]
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self { role, content: vec![ContentBlock::Text(text.into())] }
    }
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the input object.
    pub input_schema: Value,
}

/// One model call.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
}

/// The complete reply of one model call.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    /// Text and tool-use blocks, in the order the model produced them.
    pub content: Vec<ContentBlock>,
    pub usage: Usage,
    pub stop_reason: String,
}

impl ModelReply {
    /// Returns the tool calls of the reply.
    pub fn tool_uses(&self) -> impl Iterator<Item = &ContentBlock> {
        self.content.iter().filter(|block| matches!(block, ContentBlock::ToolUse { .. }))
    }
}

/// Receives answer text as it streams.
pub type TextSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A model provider.
#[async_trait]
pub trait ModelProvider: Send + Sync {
    /// Returns the provider's name for logs.
    fn name(&self) -> &'static str;

    /// Runs one model call, passing answer text to `on_text` as it streams.
    ///
    /// # Errors
    /// Returns [`ProviderError`] when the call fails; text already passed to `on_text` stays
    /// delivered, and a retry never passes it again.
    async fn complete(&self, request: &ModelRequest, on_text: TextSink<'_>) -> Result<ModelReply, ProviderError>;
}

/// Why a model call failed. [`ProviderError::code`] and [`ProviderError::retryable`] become
/// the `turn.failed` error.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the model provider is overloaded (HTTP {status}): {message}")]
    Overloaded { status: u16, message: String },
    #[error("the model provider rate-limited the request: {message}")]
    RateLimited { message: String },
    #[error("the model provider returned HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the model stream reported an error ({kind}): {message}")]
    StreamError { kind: String, message: String },
    #[error("the model stream ended before the message was complete")]
    Truncated,
    #[error("invalid response from the model provider: {0}")]
    InvalidResponse(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("failed to read the model stream: {0}")]
    Body(String),
    #[error("offline retrieval failed: {0}")]
    Retrieval(String),
}

impl ProviderError {
    /// Returns the stable error code of `turn.failed`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Overloaded { .. } => "model_overloaded",
            Self::RateLimited { .. } => "model_rate_limited",
            Self::Status { .. } => "model_error",
            Self::StreamError { .. } => "model_stream_error",
            Self::Truncated | Self::Body(_) => "model_stream_interrupted",
            Self::InvalidResponse(_) => "model_invalid_response",
            Self::Http(_) => "model_unreachable",
            Self::Retrieval(_) => "offline_retrieval_failed",
        }
    }

    /// Returns the `turn.failed` message for end users: what failed and what to do next.
    /// It never contains the cause, because causes carry upstream addresses, URLs, socket
    /// paths and OS errors. The engine logs the cause instead.
    #[must_use]
    pub fn user_message(&self) -> &'static str {
        match self {
            Self::Overloaded { .. } => "The model provider is overloaded. Try again in a moment.",
            Self::RateLimited { .. } => "The model provider is limiting requests right now. Try again in a moment.",
            Self::Status { status, .. } if *status >= 500 => {
                "The model provider returned an error. Try again in a moment."
            }
            Self::Status { .. } => {
                "The model provider rejected the request. Ask an administrator to check the agent's model settings."
            }
            Self::StreamError { .. } => "The model provider reported an error while answering. Try again in a moment.",
            Self::Truncated | Self::Body(_) => "The model's answer was cut off. Send the message again.",
            Self::InvalidResponse(_) => {
                "The model provider sent a response the agent could not read. Try again, and tell an administrator if it keeps happening."
            }
            Self::Http(_) => "The model provider could not be reached. Try again in a moment.",
            Self::Retrieval(_) => {
                "The agent could not search its knowledge files. Tell an administrator if it keeps happening."
            }
        }
    }

    /// Returns true when the same request may succeed later.
    #[must_use]
    pub fn retryable(&self) -> bool {
        match self {
            Self::Overloaded { .. } | Self::RateLimited { .. } | Self::StreamError { .. } => true,
            Self::Truncated | Self::Body(_) | Self::Http(_) => true,
            Self::Status { status, .. } => *status >= 500,
            Self::InvalidResponse(_) | Self::Retrieval(_) => false,
        }
    }
}

/// Builds the provider the settings choose.
///
/// # Errors
/// Returns [`ProviderError`] when the settings are unusable (for example an invalid base URL).
pub fn build(
    settings: &ProviderSettings,
    folder: &Arc<AgentFolder>,
    client: HttpClient,
) -> Result<Arc<dyn ModelProvider>, ProviderError> {
    let provider: Arc<dyn ModelProvider> = match settings.kind {
        ProviderKind::Anthropic => Arc::new(anthropic::AnthropicProvider::new(settings.clone(), client)?),
        ProviderKind::OpenAi => Arc::new(openai::OpenAiProvider::new(settings.clone(), client)?),
        ProviderKind::Offline => Arc::new(offline::OfflineProvider::new(folder.clone())),
    };
    Ok(provider)
}
