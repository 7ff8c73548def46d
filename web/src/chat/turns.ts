// The chat view's model: one Turn per question and answer, built from history or from stream
// events, plus the sessionStorage record that lets a reload pick up a running answer.

import type { SessionMessage, StreamEvent, ToolOutcome, TurnError } from '../api/types';

/** Plain-language messages for the turn error codes of the engine and the control plane. */
const TURN_ERROR_TEXT: Record<string, string> = {
  model_overloaded: 'The AI model is overloaded right now. Try again in a minute.',
  model_rate_limited: "The AI model's usage limit was reached. Try again in a minute.",
  model_error: 'The agent could not get an answer from its AI model. Try again in a moment.',
  model_unreachable: 'The agent could not reach its AI model. Try again in a moment.',
  model_stream_error: 'The AI model stopped in the middle of the answer. Try again.',
  model_stream_interrupted: 'The AI model stopped in the middle of the answer. Try again.',
  model_invalid_response: 'The AI model sent an answer the agent could not read. Try again.',
  engine_interrupted: 'The agent stopped before it finished. Try again.',
  engine_stream_lost: 'The agent stopped before it finished. Try again.',
  engine_unreachable: 'The agent could not be started. Try again in a moment.',
  agent_unavailable: 'The agent could not be started. Try again in a moment.',
  tool_rounds_exceeded: 'The agent needed too many tool calls for one answer and stopped. Try a narrower question.',
  store_failed: 'The agent could not save this conversation. Try again.',
  internal: 'Something went wrong inside the agent. Try again.',
};

/** Returns the sentence shown for a failed turn; unknown codes keep the server's message. */
export function describeTurnError(error: TurnError): string {
  return TURN_ERROR_TEXT[error.code] ?? error.message;
}

export interface ToolLine {
  callId: string;
  tool: string;
  label: string;
  state: 'running' | ToolOutcome | 'needs_connection' | 'needs_approval';
  message?: string;
  connectUrl?: string;
  /** The toolkit to connect, from `tool.needs_connection`. */
  toolkit?: string;
}

export type TurnStatus = 'sending' | 'streaming' | 'completed' | 'failed' | 'cancelled' | 'lost';

export interface Turn {
  /** Local key for React; the server's turn id arrives with `turn.accepted`. */
  key: string;
  turnId?: string;
  userText: string;
  text: string;
  status: TurnStatus;
  tools: ToolLine[];
  /** Epoch ms when `agent.waking` arrived, until `agent.ready`. */
  wakingSince?: number;
  coldStartMs?: number;
  reconnecting?: boolean;
  stopping?: boolean;
  error?: string;
  /** The server's code and message behind `error`, shown on request. */
  errorDetail?: string;
  retryable?: boolean;
}

export function isRunning(turn: Turn): boolean {
  return turn.status === 'sending' || turn.status === 'streaming';
}

function updateTool(turn: Turn, callId: string, change: (tool: ToolLine) => ToolLine, fallback: ToolLine): ToolLine[] {
  const index = turn.tools.findIndex((tool) => tool.callId === callId);
  if (index === -1) {
    return [...turn.tools, change(fallback)];
  }
  return turn.tools.map((tool, position) => (position === index ? change(tool) : tool));
}

/** Applies one stream event to a turn and returns the new turn. */
export function applyEvent(turn: Turn, event: StreamEvent, now = Date.now()): Turn {
  const next: Turn = { ...turn, turnId: event.turn_id, reconnecting: false };
  switch (event.type) {
    case 'turn.accepted':
      return { ...next, status: 'streaming' };
    case 'agent.waking':
      return { ...next, wakingSince: now };
    case 'agent.ready':
      return { ...next, wakingSince: undefined, coldStartMs: event.cold_start_ms };
    case 'message.delta':
      return { ...next, wakingSince: undefined, text: next.text + event.text };
    case 'tool.started':
      return {
        ...next,
        tools: updateTool(next, event.call_id, (tool) => ({ ...tool, state: 'running', label: event.label }), {
          callId: event.call_id,
          tool: event.tool,
          label: event.label,
          state: 'running',
        }),
      };
    case 'tool.finished':
      return {
        ...next,
        tools: updateTool(next, event.call_id, (tool) => ({ ...tool, state: event.outcome, message: event.message }), {
          callId: event.call_id,
          tool: event.tool,
          label: event.tool,
          state: event.outcome,
        }),
      };
    case 'tool.needs_connection':
      return {
        ...next,
        tools: updateTool(
          next,
          event.call_id,
          (tool) => ({ ...tool, state: 'needs_connection', connectUrl: event.connect_url, toolkit: event.toolkit }),
          { callId: event.call_id, tool: event.toolkit, label: event.toolkit, state: 'needs_connection', toolkit: event.toolkit },
        ),
      };
    case 'tool.approval_requested':
      return {
        ...next,
        tools: updateTool(next, event.call_id, (tool) => ({ ...tool, state: 'needs_approval' }), {
          callId: event.call_id,
          tool: event.tool,
          label: event.label,
          state: 'needs_approval',
        }),
      };
    case 'turn.completed':
      return { ...next, status: 'completed', wakingSince: undefined, stopping: false };
    case 'turn.cancelled':
      return { ...next, status: 'cancelled', wakingSince: undefined, stopping: false };
    case 'turn.failed':
      return {
        ...next,
        status: 'failed',
        wakingSince: undefined,
        stopping: false,
        error: describeTurnError(event.error),
        errorDetail: `${event.error.code}: ${event.error.message}`,
        retryable: event.error.retryable,
      };
  }
}

const STATUS_FROM_HISTORY: Record<string, TurnStatus> = {
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
  running: 'streaming',
};

/** Builds turns from a stored session: each user message and the assistant reply with its turn id. */
export function turnsFromHistory(messages: SessionMessage[]): Turn[] {
  const turns: Turn[] = [];
  const byTurnId = new Map<string, Turn>();
  for (const message of messages) {
    let turn = byTurnId.get(message.turn_id);
    if (!turn) {
      turn = { key: message.turn_id, turnId: message.turn_id, userText: '', text: '', status: 'completed', tools: [] };
      byTurnId.set(message.turn_id, turn);
      turns.push(turn);
    }
    if (message.role === 'user') {
      turn.userText = message.text;
    } else {
      turn.text = message.text;
      turn.status = STATUS_FROM_HISTORY[message.status ?? 'completed'] ?? 'completed';
      if (message.error) {
        turn.error = describeTurnError(message.error);
        turn.errorDetail = `${message.error.code}: ${message.error.message}`;
        turn.retryable = message.error.retryable;
      }
      turn.tools = (message.tools ?? []).map((tool, index) => ({
        callId: tool.call_id ?? String(index),
        tool: tool.tool ?? '',
        label: tool.label ?? tool.tool ?? 'Tool',
        state: tool.outcome ?? 'ok',
        message: tool.message,
      }));
    }
  }
  return turns;
}

/** What a reload needs to continue a running answer: stored per agent in sessionStorage. */
export interface OpenTurnRecord {
  sessionId: string;
  turnId: string;
  lastSeq: number;
  userText: string;
  text: string;
  tools: ToolLine[];
  coldStartMs?: number;
}

function openTurnKey(agent: string): string {
  return `houston.openTurn.${agent}`;
}

export function saveOpenTurn(agent: string, record: OpenTurnRecord): void {
  sessionStorage.setItem(openTurnKey(agent), JSON.stringify(record));
}

export function loadOpenTurn(agent: string): OpenTurnRecord | null {
  try {
    const raw = sessionStorage.getItem(openTurnKey(agent));
    return raw ? (JSON.parse(raw) as OpenTurnRecord) : null;
  } catch {
    return null;
  }
}

export function clearOpenTurn(agent: string): void {
  sessionStorage.removeItem(openTurnKey(agent));
}
