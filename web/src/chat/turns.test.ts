import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../api/types';
import { applyEvent, turnsFromHistory, type Turn } from './turns';

const fresh: Turn = { key: 'k', userText: 'hi', text: '', status: 'sending', tools: [] };

function run(events: StreamEvent[], now = 1_000): Turn {
  return events.reduce((turn, event) => applyEvent(turn, event, now), fresh);
}

describe('applyEvent', () => {
  it('joins deltas and completes', () => {
    const turn = run([
      { type: 'turn.accepted', seq: 1, turn_id: 't1', session_id: 's1' },
      { type: 'message.delta', seq: 2, turn_id: 't1', text: '20 ' },
      { type: 'message.delta', seq: 3, turn_id: 't1', text: 'days' },
      { type: 'turn.completed', seq: 4, turn_id: 't1', usage: { input_tokens: 1, output_tokens: 2 }, stop_reason: 'end_turn' },
    ]);
    expect(turn.turnId).toBe('t1');
    expect(turn.text).toBe('20 days');
    expect(turn.status).toBe('completed');
  });

  it('shows waking then the cold start', () => {
    const waking = run([{ type: 'agent.waking', seq: 2, turn_id: 't1' }], 5_000);
    expect(waking.wakingSince).toBe(5_000);
    const ready = applyEvent(waking, { type: 'agent.ready', seq: 3, turn_id: 't1', cold_start_ms: 840 });
    expect(ready.wakingSince).toBeUndefined();
    expect(ready.coldStartMs).toBe(840);
  });

  it('tracks a tool call to its outcome', () => {
    const turn = run([
      { type: 'tool.started', seq: 2, turn_id: 't1', call_id: 'c1', tool: 'slack', label: 'Calling Slack…' },
      { type: 'tool.finished', seq: 3, turn_id: 't1', call_id: 'c1', tool: 'slack', outcome: 'error', message: 'channel not found' },
    ]);
    expect(turn.tools).toHaveLength(1);
    expect(turn.tools[0].label).toBe('Calling Slack…');
    expect(turn.tools[0].state).toBe('error');
    expect(turn.tools[0].message).toBe('channel not found');
  });

  it('keeps the failure message and retry flag', () => {
    const turn = run([
      { type: 'turn.failed', seq: 2, turn_id: 't1', error: { code: 'model_overloaded', message: 'The model is busy.', retryable: true } },
    ]);
    expect(turn.status).toBe('failed');
    expect(turn.error).toBe('The AI model is overloaded right now. Try again in a minute.');
    expect(turn.errorDetail).toBe('model_overloaded: The model is busy.');
    expect(turn.retryable).toBe(true);
  });

  it('keeps the message of an unknown code', () => {
    const turn = run([
      { type: 'turn.failed', seq: 2, turn_id: 't1', error: { code: 'quota_exhausted', message: 'Monthly quota used up.', retryable: false } },
    ]);
    expect(turn.error).toBe('Monthly quota used up.');
    expect(turn.retryable).toBe(false);
  });
});

describe('turnsFromHistory', () => {
  it('pairs messages by turn id', () => {
    const turns = turnsFromHistory([
      { turn_id: 't1', role: 'user', text: 'q1' },
      { turn_id: 't1', role: 'assistant', text: 'a1', status: 'completed' },
      { turn_id: 't2', role: 'user', text: 'q2' },
      { turn_id: 't2', role: 'assistant', text: 'a2', status: 'cancelled' },
    ]);
    expect(turns.map((turn) => [turn.userText, turn.text, turn.status])).toEqual([
      ['q1', 'a1', 'completed'],
      ['q2', 'a2', 'cancelled'],
    ]);
  });
});

describe('turnsFromHistory states', () => {
  it('marks running and failed turns', () => {
    const turns = turnsFromHistory([
      { turn_id: 't1', role: 'user', text: 'q1' },
      { turn_id: 't1', role: 'assistant', text: '', status: 'failed', error: { code: 'engine_interrupted', message: 'The agent stopped.', retryable: true } },
      { turn_id: 't2', role: 'user', text: 'q2' },
      { turn_id: 't2', role: 'assistant', text: '', status: 'running' },
    ]);
    expect(turns[0].status).toBe('failed');
    expect(turns[0].error).toBe('The agent stopped before it finished. Try again.');
    expect(turns[1].status).toBe('streaming');
  });
});
