import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../api/types';
import { toolkitName } from './toolkits';
import { applyEvent, type Turn } from './turns';

const fresh: Turn = { key: 'k', userText: 'post it', text: '', status: 'streaming', tools: [] };

function run(events: StreamEvent[]): Turn {
  return events.reduce((turn, event) => applyEvent(turn, event), fresh);
}

describe('tool cards', () => {
  it('names toolkits for display', () => {
    expect(toolkitName('slack')).toBe('Slack');
    expect(toolkitName('googlecalendar')).toBe('Google Calendar');
  });

  it('keeps the toolkit and link of a needed connection', () => {
    const turn = run([
      { type: 'tool.started', seq: 2, turn_id: 't1', call_id: 'c1', tool: 'SLACK_SEND_MESSAGE', label: 'Calling Slack…' },
      { type: 'tool.needs_connection', seq: 3, turn_id: 't1', call_id: 'c1', toolkit: 'slack', connect_url: 'https://connect.example/x' },
    ]);
    expect(turn.tools).toHaveLength(1);
    expect(turn.tools[0].state).toBe('needs_connection');
    expect(turn.tools[0].toolkit).toBe('slack');
    expect(turn.tools[0].connectUrl).toBe('https://connect.example/x');
  });

  it('replaces the card when the call finishes', () => {
    const turn = run([
      { type: 'tool.started', seq: 2, turn_id: 't1', call_id: 'c1', tool: 'SLACK_SEND_MESSAGE', label: 'Calling Slack…' },
      { type: 'tool.approval_requested', seq: 3, turn_id: 't1', call_id: 'c1', tool: 'SLACK_SEND_MESSAGE', label: 'Calling Slack…' },
      { type: 'tool.finished', seq: 4, turn_id: 't1', call_id: 'c1', tool: 'SLACK_SEND_MESSAGE', outcome: 'ok' },
    ]);
    expect(turn.tools[0].state).toBe('ok');
  });
});
