//! OpenAI-compatible Chat Completions with streaming and function calling, for OpenAI and for
//! self-hosted servers that speak the same API (vLLM, Ollama, llama.cpp).

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use houston_protocol::Usage;
use hyper::Request;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::anthropic::parse_tool_input;
use super::stream::{SseReader, post_with_retries};
use super::{ContentBlock, ModelProvider, ModelReply, ModelRequest, ProviderError, Role, TextSink};
use crate::config::ProviderSettings;
use crate::http::HttpClient;

/// Calls `POST {base_url}/chat/completions`; the base URL includes the API version path,
/// for example `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
pub struct OpenAiProvider {
    settings: ProviderSettings,
    client: HttpClient,
    url: String,
}

impl OpenAiProvider {
    /// Builds the provider.
    ///
    /// # Errors
    /// Returns [`ProviderError::InvalidResponse`] when the base URL does not form a valid URI.
    pub fn new(settings: ProviderSettings, client: HttpClient) -> Result<Self, ProviderError> {
        let url = format!("{}/chat/completions", settings.base_url);
        url.parse::<hyper::Uri>()
            .map_err(|error| ProviderError::InvalidResponse(format!("invalid base URL {url}: {error}")))?;
        Ok(Self { settings, client, url })
    }

    fn build_request(&self, body: &Bytes) -> Request<Full<Bytes>> {
        let mut builder = Request::post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream");
        if let Some(key) = &self.settings.api_key {
            let mut value = hyper::header::HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .unwrap_or_else(|_| hyper::header::HeaderValue::from_static("Bearer invalid-key"));
            value.set_sensitive(true);
            builder = builder.header("authorization", value);
        }
        builder.body(Full::new(body.clone())).expect("a request from a valid URI and headers builds")
    }
}

#[async_trait]
impl ModelProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn complete(&self, request: &ModelRequest, on_text: TextSink<'_>) -> Result<ModelReply, ProviderError> {
        let body = Bytes::from(request_body(&self.settings, request).to_string());
        let response = post_with_retries(&self.client, self.settings.retry, || self.build_request(&body)).await?;
        let mut reader = SseReader::new(response);
        let mut state = ChunkState::default();
        while let Some(frame) = reader.next().await? {
            if frame.data.trim() == "[DONE]" {
                return Ok(state.finish());
            }
            let chunk: Value = serde_json::from_str(&frame.data)
                .map_err(|error| ProviderError::InvalidResponse(format!("chunk is not JSON: {error}")))?;
            state.apply(&chunk, on_text)?;
        }
        // Some compatible servers end the stream without `[DONE]` after the finish reason.
        if state.finish_reason.is_some() { Ok(state.finish()) } else { Err(ProviderError::Truncated) }
    }
}

/// Builds the JSON body of a streaming Chat Completions call.
#[must_use]
pub fn request_body(settings: &ProviderSettings, request: &ModelRequest) -> Value {
    let mut messages = vec![json!({"role": "system", "content": request.system})];
    for message in &request.messages {
        messages.extend(message_json(message.role, &message.content));
    }
    let mut body = json!({
        "model": settings.model,
        "max_tokens": settings.max_tokens,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.input_schema}})
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body
}

/// Converts one message into Chat Completions messages: tool results become `tool` messages.
fn message_json(role: Role, content: &[ContentBlock]) -> Vec<Value> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut tool_messages = Vec::new();
    for block in content {
        match block {
            ContentBlock::Text(piece) => text.push_str(piece),
            ContentBlock::ToolUse { id, name, input, .. } => tool_calls.push(json!({
                "id": id, "type": "function", "function": {"name": name, "arguments": input.to_string()}})),
            ContentBlock::ToolResult { tool_use_id, content, .. } => {
                tool_messages.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}));
            }
        }
    }
    if !tool_messages.is_empty() {
        return tool_messages;
    }
    let role = if role == Role::User { "user" } else { "assistant" };
    let mut message = json!({"role": role, "content": text});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    vec![message]
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Default)]
struct ChunkState {
    text: String,
    calls: BTreeMap<u64, PartialCall>,
    usage: Usage,
    finish_reason: Option<String>,
}

impl ChunkState {
    fn apply(&mut self, chunk: &Value, on_text: TextSink<'_>) -> Result<(), ProviderError> {
        if let Some(error) = chunk.get("error") {
            return Err(ProviderError::StreamError {
                kind: error["type"].as_str().unwrap_or("error").to_owned(),
                message: error["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| usage.is_object()) {
            self.usage.input_tokens = usage["prompt_tokens"].as_u64().unwrap_or(self.usage.input_tokens);
            self.usage.output_tokens = usage["completion_tokens"].as_u64().unwrap_or(self.usage.output_tokens);
        }
        let choice = &chunk["choices"][0];
        if let Some(piece) = choice["delta"]["content"].as_str().filter(|piece| !piece.is_empty()) {
            self.text.push_str(piece);
            on_text(piece);
        }
        for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let entry = self.calls.entry(call["index"].as_u64().unwrap_or(0)).or_default();
            if let Some(id) = call["id"].as_str() {
                entry.id = id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                entry.name.push_str(name);
            }
            entry.arguments.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        Ok(())
    }

    fn finish(self) -> ModelReply {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(ContentBlock::Text(self.text));
        }
        for call in self.calls.into_values() {
            let (input, input_error) = parse_tool_input(&call.arguments);
            content.push(ContentBlock::ToolUse { id: call.id, name: call.name, input, input_error });
        }
        let stop_reason = match self.finish_reason.as_deref() {
            Some("tool_calls") => "tool_use",
            Some("length") => "max_tokens",
            _ => "end_turn",
        };
        ModelReply { content, usage: self.usage, stop_reason: stop_reason.to_owned() }
    }
}
