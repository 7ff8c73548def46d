//! The prompt of a turn: the system prompt from `CLAUDE.md` plus an index of skills and
//! knowledge files, and the session history within a token budget.

use std::collections::HashMap;
use std::fmt::Write as _;

use houston_protocol::TurnId;

use crate::folder::AgentFolder;
use crate::providers::{Message, Role};
use crate::sessions::SessionRecord;

/// Bytes per token in the history estimate. An estimate: English text averages about four
/// bytes per token with current tokenizers.
const BYTES_PER_TOKEN: usize = 4;

/// Builds the system prompt: the persona, then the skill index, then the knowledge index.
#[must_use]
pub fn system_prompt(folder: &AgentFolder) -> String {
    let mut prompt = folder.instructions.trim().to_owned();
    if prompt.is_empty() {
        prompt.push_str("You are a helpful assistant.");
    }
    if !folder.skills.is_empty() {
        prompt.push_str("\n\n# Skills\n\nThese are the skills you have, by name and purpose:\n");
        for skill in &folder.skills {
            let _ = write!(prompt, "\n- {}: {}", skill.name, skill.description);
        }
    }
    prompt.push_str("\n\n# Knowledge files\n\n");
    if folder.knowledge.is_empty() {
        prompt.push_str("You have no knowledge files.");
    } else {
        prompt.push_str("Read these with the read_knowledge tool before answering from them:\n");
        for file in &folder.knowledge {
            let _ = write!(prompt, "\n- {} ({} bytes)", file.relative_path, file.bytes);
        }
    }
    prompt
}

/// The history that fits the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub messages: Vec<Message>,
    /// Number of older turns left out to fit the budget.
    pub dropped_turns: usize,
}

/// Builds the history messages from a session's records, newest turns kept first until
/// `budget_tokens` (estimated) is used up. Only turns with both a user message and answer
/// text are sent, so user and assistant messages alternate as the APIs require.
#[must_use]
pub fn history(records: &[SessionRecord], budget_tokens: usize) -> History {
    let mut answers: HashMap<&TurnId, &str> = HashMap::new();
    for record in records {
        if let SessionRecord::Assistant(answer) = record {
            answers.insert(&answer.turn_id, answer.text.as_str());
        }
    }
    let mut pairs: Vec<(&str, &str)> = records
        .iter()
        .filter_map(|record| match record {
            SessionRecord::User(user) => Some((user.text.as_str(), *answers.get(&user.turn_id)?)),
            SessionRecord::Assistant(_) => None,
        })
        .filter(|(_, answer)| !answer.trim().is_empty())
        .collect();

    let mut used = 0;
    let mut kept = 0;
    for (question, answer) in pairs.iter().rev() {
        let cost = (question.len() + answer.len()) / BYTES_PER_TOKEN + 1;
        if used + cost > budget_tokens {
            break;
        }
        used += cost;
        kept += 1;
    }
    let dropped_turns = pairs.len() - kept;
    let messages = pairs
        .drain(dropped_turns..)
        .flat_map(|(question, answer)| [Message::text(Role::User, question), Message::text(Role::Assistant, answer)])
        .collect();
    History { messages, dropped_turns }
}

#[cfg(test)]
mod tests {
    use houston_protocol::Usage;

    use super::*;
    use crate::sessions::{AssistantRecord, TurnStatus, UserRecord, now};

    fn turn(id: &str, question: &str, answer: Option<&str>) -> Vec<SessionRecord> {
        let turn_id = TurnId::parse(id).unwrap();
        let mut records = vec![SessionRecord::User(UserRecord {
            turn_id: turn_id.clone(),
            at: now(),
            text: question.into(),
            idempotency_key: None,
        })];
        if let Some(answer) = answer {
            records.push(SessionRecord::Assistant(AssistantRecord {
                turn_id,
                at: now(),
                status: TurnStatus::Completed,
                text: answer.into(),
                tool_calls: Vec::new(),
                usage: Usage::default(),
                stop_reason: Some("end_turn".into()),
                error: None,
            }));
        }
        records
    }

    #[test]
    fn drops_oldest_turns_over_budget() {
        let mut records = turn("t1", &"a".repeat(400), Some(&"b".repeat(400)));
        records.extend(turn("t2", "short", Some("reply")));
        let history = history(&records, 50);
        assert_eq!(history.dropped_turns, 1);
        assert_eq!(history.messages.len(), 2);
        assert_eq!(history.messages[0], Message::text(Role::User, "short"));
    }

    #[test]
    fn skips_turns_without_answer() {
        let mut records = turn("t1", "lost", None);
        records.extend(turn("t2", "kept", Some("yes")));
        let history = history(&records, 1000);
        assert_eq!(history.messages.len(), 2);
        assert_eq!(history.dropped_turns, 0);
    }

    #[test]
    fn system_prompt_indexes_skills_and_knowledge() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("CLAUDE.md"), "You are HR.").unwrap();
        std::fs::create_dir_all(dir.path().join(".agents/skills/leave")).unwrap();
        std::fs::write(dir.path().join(".agents/skills/leave/SKILL.md"), "---\nname: leave\ndescription: Answer leave questions\n---\nBody").unwrap();
        std::fs::create_dir_all(dir.path().join("knowledge")).unwrap();
        std::fs::write(dir.path().join("knowledge/handbook.md"), "text").unwrap();
        let prompt = system_prompt(&AgentFolder::load(dir.path()).unwrap());
        assert!(prompt.starts_with("You are HR."));
        assert!(prompt.contains("- leave: Answer leave questions"));
        assert!(prompt.contains("- handbook.md (4 bytes)"));
    }
}
