//! The offline provider: no network and no key. It answers from the agent's knowledge files
//! through a tantivy full-text index, quotes the best passage and says plainly that the answer
//! is offline.
//!
//! The index is built in memory on the first offline turn, so engine start stays fast.
//! NOTE: knowledge files added after that first turn are not indexed until the engine restarts.

use std::sync::Arc;

use async_trait::async_trait;
use houston_protocol::Usage;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, STORED, Schema, TEXT, Value as _};
use tantivy::{Index, IndexReader, TantivyDocument, doc};
use tokio::sync::OnceCell;

use super::{ContentBlock, ModelProvider, ModelReply, ModelRequest, ProviderError, Role, TextSink};
use crate::folder::{AgentFolder, MAX_KNOWLEDGE_FILE_BYTES};

/// Words per streamed piece of an offline answer.
const WORDS_PER_DELTA: usize = 4;

/// One paragraph of a knowledge file with the heading it sits under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub file: String,
    pub heading: String,
    pub text: String,
}

struct KnowledgeIndex {
    passages: Vec<Passage>,
    reader: IndexReader,
    parser: QueryParser,
    id_field: Field,
}

/// Provider that quotes the knowledge files.
pub struct OfflineProvider {
    folder: Arc<AgentFolder>,
    index: OnceCell<Arc<KnowledgeIndex>>,
}

impl OfflineProvider {
    /// Builds the provider; the index is built on first use.
    #[must_use]
    pub fn new(folder: Arc<AgentFolder>) -> Self {
        Self { folder, index: OnceCell::new() }
    }

    /// Returns the passage that best matches `question`, if any matches at all.
    ///
    /// # Errors
    /// Returns [`ProviderError::Retrieval`] when the index cannot be built or searched.
    pub async fn best_passage(&self, question: &str) -> Result<Option<Passage>, ProviderError> {
        let index = self
            .index
            .get_or_try_init(|| async {
                let folder = self.folder.clone();
                tokio::task::spawn_blocking(move || build_index(&folder).map(Arc::new))
                    .await
                    .map_err(|error| ProviderError::Retrieval(error.to_string()))?
            })
            .await?
            .clone();
        let question = question.to_owned();
        tokio::task::spawn_blocking(move || search(&index, &question))
            .await
            .map_err(|error| ProviderError::Retrieval(error.to_string()))?
    }
}

#[async_trait]
impl ModelProvider for OfflineProvider {
    fn name(&self) -> &'static str {
        "offline"
    }

    async fn complete(&self, request: &ModelRequest, on_text: TextSink<'_>) -> Result<ModelReply, ProviderError> {
        let question = last_user_text(request);
        let answer = match self.best_passage(&question).await? {
            Some(passage) => format!(
                "This is an offline answer: no language model was used, so I can only quote the \
                 passage of my knowledge files that best matches your question. From {} ({}):\n\n> {}",
                passage.file, passage.heading, passage.text
            ),
            None => "This is an offline answer: no language model was used, and none of my knowledge \
                     files matches your question."
                .to_owned(),
        };
        for piece in split_into_pieces(&answer, WORDS_PER_DELTA) {
            on_text(&piece);
            tokio::task::yield_now().await;
        }
        let usage = Usage { input_tokens: 0, output_tokens: 0 };
        Ok(ModelReply { content: vec![ContentBlock::Text(answer)], usage, stop_reason: "end_turn".into() })
    }
}

fn last_user_text(request: &ModelRequest) -> String {
    let Some(message) = request.messages.iter().rev().find(|m| m.role == Role::User) else {
        return String::new();
    };
    message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits `text` into pieces of `words` words each, keeping every character, so the pieces
/// joined give `text` back.
fn split_into_pieces(text: &str, words: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for (index, segment) in text.split_inclusive(char::is_whitespace).enumerate() {
        current.push_str(segment);
        if !segment.trim().is_empty() {
            count += 1;
        }
        if count >= words && index > 0 {
            pieces.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Splits markdown or plain text into paragraphs, each with the latest heading above it.
#[must_use]
pub fn split_passages(file: &str, text: &str) -> Vec<Passage> {
    let mut passages = Vec::new();
    let mut heading = file.to_owned();
    for block in text.split("\n\n") {
        let block = block.trim();
        if block.is_empty() {
            continue;
        }
        if let Some(title) = block.strip_prefix('#') {
            heading = title.trim_start_matches('#').trim().to_owned();
            continue;
        }
        let text = block.split_whitespace().collect::<Vec<_>>().join(" ");
        passages.push(Passage { file: file.to_owned(), heading: heading.clone(), text });
    }
    passages
}

fn build_index(folder: &AgentFolder) -> Result<KnowledgeIndex, ProviderError> {
    let failed = |error: tantivy::TantivyError| ProviderError::Retrieval(error.to_string());
    let mut passages = Vec::new();
    for file in folder.knowledge.iter().filter(|file| file.bytes <= MAX_KNOWLEDGE_FILE_BYTES) {
        let Ok(text) = std::fs::read_to_string(folder.knowledge_dir().join(&file.relative_path)) else {
            continue;
        };
        passages.extend(split_passages(&file.relative_path, &text));
    }

    let mut builder = Schema::builder();
    let id_field = builder.add_u64_field("id", STORED);
    let heading_field = builder.add_text_field("heading", TEXT);
    let text_field = builder.add_text_field("text", TEXT);
    let index = Index::create_in_ram(builder.build());
    let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000).map_err(failed)?;
    for (id, passage) in passages.iter().enumerate() {
        writer
            .add_document(doc!(id_field => id as u64, heading_field => passage.heading.as_str(), text_field => passage.text.as_str()))
            .map_err(failed)?;
    }
    writer.commit().map_err(failed)?;
    let reader = index.reader().map_err(failed)?;
    let parser = QueryParser::for_index(&index, vec![heading_field, text_field]);
    tracing::info!(passages = passages.len(), "built the offline knowledge index");
    Ok(KnowledgeIndex { passages, reader, parser, id_field })
}

fn search(index: &KnowledgeIndex, question: &str) -> Result<Option<Passage>, ProviderError> {
    let failed = |error: tantivy::TantivyError| ProviderError::Retrieval(error.to_string());
    let (query, _ignored_syntax_errors) = index.parser.parse_query_lenient(question);
    let searcher = index.reader.searcher();
    let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score()).map_err(failed)?;
    let Some((_score, address)) = top.first() else {
        return Ok(None);
    };
    let document: TantivyDocument = searcher.doc(*address).map_err(failed)?;
    let id = document.get_first(index.id_field).and_then(|value| value.as_u64());
    Ok(id.and_then(|id| index.passages.get(id as usize)).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_back_to_text() {
        let text = "This is an offline answer:\n\n> Full-time employees accrue 20 days.";
        let pieces = split_into_pieces(text, 3);
        assert!(pieces.len() >= 3, "{pieces:?}");
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn passages_carry_their_heading() {
        let passages = split_passages("h.md", "# Title\n\n## Leave\n\nFirst  line\nsecond.\n\nOther.");
        assert_eq!(passages.len(), 2);
        assert_eq!(passages[0].heading, "Leave");
        assert_eq!(passages[0].text, "First line second.");
    }
}
