// Wire types of the control plane's public API (docs/api.md) and its stream events.

/** Fields every stream event carries. `seq` starts at 1 within a turn and is also the SSE `id:`. */
interface EventBase {
  seq: number;
  turn_id: string;
}

export type ToolOutcome = 'ok' | 'error' | 'rejected' | 'cancelled';

export interface TurnError {
  code: string;
  message: string;
  retryable: boolean;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
}

export type StreamEvent = EventBase &
  (
    | { type: 'turn.accepted'; session_id: string }
    | { type: 'agent.waking' }
    | { type: 'agent.ready'; cold_start_ms: number }
    | { type: 'message.delta'; text: string }
    | { type: 'tool.started'; call_id: string; tool: string; label: string }
    | { type: 'tool.finished'; call_id: string; tool: string; outcome: ToolOutcome; message?: string }
    | { type: 'tool.needs_connection'; call_id: string; toolkit: string; connect_url: string }
    | { type: 'tool.approval_requested'; call_id: string; tool: string; label: string }
    | { type: 'turn.completed'; usage: Usage; stop_reason: string }
    | { type: 'turn.failed'; error: TurnError }
    | { type: 'turn.cancelled' }
  );

export type TerminalEvent = Extract<
  StreamEvent,
  { type: 'turn.completed' } | { type: 'turn.failed' } | { type: 'turn.cancelled' }
>;

/** Returns true for the events that end a turn's stream. */
export function isTerminal(event: StreamEvent): event is TerminalEvent {
  return (
    event.type === 'turn.completed' || event.type === 'turn.failed' || event.type === 'turn.cancelled'
  );
}

export interface TokenSet {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token?: string;
}

export type Role = 'owner' | 'admin' | 'member';

export interface Workspace {
  id: string;
  slug: string;
  name: string;
  role: Role;
}

export interface Me {
  user: { id: string; email: string; name: string };
  workspaces: Workspace[];
}

export interface AgentSettings {
  provider?: string;
  model?: string;
  idle_timeout_secs?: number;
  keep_warm?: boolean;
  allowed_hosts?: string[];
}

export interface Agent {
  id: string;
  slug: string;
  workspace_id: string;
  name: string;
  description: string;
  icon?: string | null;
  category?: string | null;
  settings?: AgentSettings;
}

export interface SessionSummary {
  session_id: string;
  title: string;
  created_at: string;
  updated_at: string;
}

export interface ToolRecord {
  call_id?: string;
  tool?: string;
  label?: string;
  outcome?: ToolOutcome;
  message?: string;
}

export interface SessionMessage {
  turn_id: string;
  role: 'user' | 'assistant';
  text: string;
  status?: string;
  created_at?: string;
  tools?: ToolRecord[];
  /** The error that ended the turn, on a `failed` assistant message. */
  error?: TurnError;
}

export interface SessionDetail {
  session_id: string;
  messages: SessionMessage[];
}

export interface Member {
  user_id: string;
  email: string;
  name: string;
  role: Role;
}

export interface Invitation {
  id: string;
  email: string;
  role: Role;
  token: string;
  expires_at: string;
}

export interface Grant {
  user_id: string;
  agent_id: string;
  created_at: string;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor_user_id: string | null;
  action: string;
  agent_id: string | null;
  target: string | null;
  decision: string | null;
  details: unknown;
}

export interface UsageRow {
  key: string;
  messages: number;
  input_tokens: number;
  output_tokens: number;
  wake_ups: number;
  runtime_seconds: number;
}

/**
 * Sign-in options the server offers, from `GET /v1/auth/config`. A server without that route
 * offers the built-in issuer only.
 */
export interface AuthConfig {
  password_login: boolean;
  oidc?: OidcConfig | null;
}

/** A configured OpenID Connect issuer that the browser signs in with (authorization code + PKCE). */
export interface OidcConfig {
  display_name: string;
  issuer: string;
  client_id: string;
  authorization_endpoint: string;
  token_endpoint: string;
  scopes?: string[];
}
