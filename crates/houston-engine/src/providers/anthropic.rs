//! The Anthropic Messages API with streaming and tool use.
//!
//! Stream handling follows the documented event types: `message_start`,
//! `content_block_start`, `content_block_delta` (`text_delta`, `input_json_delta`),
//! `content_block_stop`, `message_delta`, `message_stop`, `ping` and `error`. Unknown event
//! and block types are ignored, so new API features do not break old engines.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use houston_protocol::Usage;
use hyper::Request;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::stream::{SseReader, post_with_retries};
use super::{ContentBlock, Message, ModelProvider, ModelReply, ModelRequest, ProviderError, Role, TextSink};
use crate::config::ProviderSettings;
use crate::http::HttpClient;

/// The `anthropic-version` header value this client speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Calls `POST {base_url}/v1/messages`.
pub struct AnthropicProvider {
    settings: ProviderSettings,
    client: HttpClient,
    url: String,
}

impl AnthropicProvider {
    /// Builds the provider.
    ///
    /// # Errors
    /// Returns [`ProviderError::InvalidResponse`] when the base URL does not form a valid URI.
    pub fn new(settings: ProviderSettings, client: HttpClient) -> Result<Self, ProviderError> {
        let url = format!("{}/v1/messages", settings.base_url);
        url.parse::<hyper::Uri>()
            .map_err(|error| ProviderError::InvalidResponse(format!("invalid base URL {url}: {error}")))?;
        Ok(Self { settings, client, url })
    }

    fn build_request(&self, body: &Bytes) -> Request<Full<Bytes>> {
        let mut builder = Request::post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .header("anthropic-version", API_VERSION);
        // Behind the egress proxy the engine holds no key; the proxy adds it on the way out.
        if let Some(key) = &self.settings.api_key {
            let mut value = hyper::header::HeaderValue::from_str(key.expose_secret())
                .unwrap_or_else(|_| hyper::header::HeaderValue::from_static("invalid-key"));
            value.set_sensitive(true);
            builder = builder.header("x-api-key", value);
        }
        builder.body(Full::new(body.clone())).expect("a request from a valid URI and headers builds")
    }
}

#[async_trait]
impl ModelProvider for AnthropicProvider {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    async fn complete(&self, request: &ModelRequest, on_text: TextSink<'_>) -> Result<ModelReply, ProviderError> {
        let body = Bytes::from(request_body(&self.settings, request).to_string());
        let response = post_with_retries(&self.client, self.settings.retry, || self.build_request(&body)).await?;
        let mut reader = SseReader::new(response);
        let mut state = StreamState::default();
        while let Some(frame) = reader.next().await? {
            let event: Value = serde_json::from_str(&frame.data)
                .map_err(|error| ProviderError::InvalidResponse(format!("event data is not JSON: {error}")))?;
            if state.apply(&event, on_text)? {
                return Ok(state.finish());
            }
        }
        Err(ProviderError::Truncated)
    }
}

/// Builds the JSON body of a streaming Messages call.
#[must_use]
pub fn request_body(settings: &ProviderSettings, request: &ModelRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
    let mut body = json!({
        "model": settings.model,
        "max_tokens": settings.max_tokens,
        "system": request.system,
        "messages": messages,
        "stream": true,
    });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}))
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body
}

fn message_json(message: &Message) -> Value {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let content: Vec<Value> = message
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(text) => json!({"type": "text", "text": text}),
            ContentBlock::ToolUse { id, name, input, .. } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
            ContentBlock::ToolResult { tool_use_id, content, is_error } => {
                json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": content, "is_error": is_error})
            }
        })
        .collect();
    json!({"role": role, "content": content})
}

/// A content block while it streams.
enum PartialBlock {
    Text(String),
    ToolUse { id: String, name: String, json: String, done: Option<ContentBlock> },
}

#[derive(Default)]
struct StreamState {
    blocks: BTreeMap<u64, PartialBlock>,
    usage: Usage,
    stop_reason: Option<String>,
}

impl StreamState {
    /// Applies one event; returns true at `message_stop`.
    fn apply(&mut self, event: &Value, on_text: TextSink<'_>) -> Result<bool, ProviderError> {
        let index = event["index"].as_u64().unwrap_or(0);
        match event["type"].as_str().unwrap_or_default() {
            "message_start" => self.take_usage(&event["message"]["usage"]),
            "content_block_start" => self.start_block(index, &event["content_block"]),
            "content_block_delta" => self.apply_delta(index, &event["delta"], on_text),
            "content_block_stop" => self.stop_block(index),
            "message_delta" => {
                if let Some(reason) = event["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(reason.to_owned());
                }
                self.take_usage(&event["usage"]);
            }
            "message_stop" => return Ok(true),
            "error" => {
                return Err(ProviderError::StreamError {
                    kind: event["error"]["type"].as_str().unwrap_or("error").to_owned(),
                    message: event["error"]["message"].as_str().unwrap_or_default().to_owned(),
                });
            }
            _ => {}
        }
        Ok(false)
    }

    /// Usage counts are cumulative: a later value replaces the earlier one, never adds to it.
    fn take_usage(&mut self, usage: &Value) {
        if let Some(input) = usage["input_tokens"].as_u64() {
            self.usage.input_tokens = input;
        }
        if let Some(output) = usage["output_tokens"].as_u64() {
            self.usage.output_tokens = output;
        }
    }

    fn start_block(&mut self, index: u64, block: &Value) {
        let partial = match block["type"].as_str() {
            Some("text") => PartialBlock::Text(block["text"].as_str().unwrap_or_default().to_owned()),
            Some("tool_use") => PartialBlock::ToolUse {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                json: String::new(),
                done: None,
            },
            _ => return,
        };
        self.blocks.insert(index, partial);
    }

    fn apply_delta(&mut self, index: u64, delta: &Value, on_text: TextSink<'_>) {
        match (self.blocks.get_mut(&index), delta["type"].as_str()) {
            (Some(PartialBlock::Text(text)), Some("text_delta")) => {
                let piece = delta["text"].as_str().unwrap_or_default();
                if !piece.is_empty() {
                    text.push_str(piece);
                    on_text(piece);
                }
            }
            (Some(PartialBlock::ToolUse { json, .. }), Some("input_json_delta")) => {
                json.push_str(delta["partial_json"].as_str().unwrap_or_default());
            }
            _ => {}
        }
    }

    /// Parses a tool call's joined input once, at the end of its block.
    fn stop_block(&mut self, index: u64) {
        let Some(PartialBlock::ToolUse { id, name, json, done }) = self.blocks.get_mut(&index) else {
            return;
        };
        let (input, input_error) = parse_tool_input(json);
        *done = Some(ContentBlock::ToolUse { id: id.clone(), name: name.clone(), input, input_error });
    }

    fn finish(self) -> ModelReply {
        let mut content = Vec::new();
        for block in self.blocks.into_values() {
            match block {
                PartialBlock::Text(text) if !text.is_empty() => content.push(ContentBlock::Text(text)),
                PartialBlock::Text(_) => {}
                PartialBlock::ToolUse { id, name, json, done } => {
                    let block = done.unwrap_or_else(|| {
                        let (input, input_error) = parse_tool_input(&json);
                        ContentBlock::ToolUse { id, name, input, input_error }
                    });
                    content.push(block);
                }
            }
        }
        ModelReply { content, usage: self.usage, stop_reason: self.stop_reason.unwrap_or_else(|| "end_turn".into()) }
    }
}

/// Parses the joined `partial_json` of a tool call: empty means `{}`, and invalid JSON or a
/// non-object becomes an input error for the model instead of a call with `{}`.
pub(crate) fn parse_tool_input(json: &str) -> (Value, Option<String>) {
    if json.trim().is_empty() {
        return (json!({}), None);
    }
    match serde_json::from_str::<Value>(json) {
        Ok(value @ Value::Object(_)) => (value, None),
        Ok(_) => (json!({}), Some("the tool input must be a JSON object".into())),
        Err(error) => (json!({}), Some(format!("the tool input is not valid JSON: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tool_input_means_empty_object() {
        assert_eq!(parse_tool_input(""), (json!({}), None));
    }

    #[test]
    fn invalid_tool_input_is_an_error() {
        let (_, error) = parse_tool_input(r#"{"path": "a"#);
        assert!(error.unwrap().contains("not valid JSON"));
    }

    #[test]
    fn usage_is_cumulative() {
        let mut state = StreamState::default();
        let sink = |_: &str| {};
        state.apply(&json!({"type": "message_start", "message": {"usage": {"input_tokens": 10, "output_tokens": 1}}}), &sink).unwrap();
        state.apply(&json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}), &sink).unwrap();
        state.apply(&json!({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 7}}), &sink).unwrap();
        state.apply(&json!({"type": "message_delta", "delta": {}}), &sink).unwrap();
        let reply = state.finish();
        assert_eq!(reply.usage, Usage { input_tokens: 10, output_tokens: 7 });
        assert_eq!(reply.stop_reason, "end_turn");
    }
}
