import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { ApiError, describeError } from '../api/http';
import type { Agent, SessionSummary } from '../api/types';
import { useApp } from '../app/context';
import { AgentIcon } from '../components/AgentIcon';
import { Alert } from '../components/Alert';
import { NotFoundPage } from '../pages/NotFoundPage';
import { Composer } from './Composer';
import { TurnView } from './TurnView';
import { loadOpenTurn, type Turn } from './turns';
import { useChat } from './useChat';

function SessionList({
  agent,
  sessions,
  current,
  onNavigate,
}: {
  agent: string;
  sessions: SessionSummary[];
  current?: string;
  onNavigate: () => void;
}) {
  if (sessions.length === 0) {
    return <p className="muted">No conversations yet.</p>;
  }
  return (
    <ul className="session-list">
      {sessions.map((session) => (
        <li key={session.session_id}>
          <Link
            to={`/agents/${encodeURIComponent(agent)}/sessions/${encodeURIComponent(session.session_id)}`}
            aria-current={session.session_id === current ? 'page' : undefined}
            onClick={onNavigate}
          >
            <span className="session-title">{session.title || 'Untitled conversation'}</span>
            <time dateTime={session.updated_at}>{new Date(session.updated_at).toLocaleString()}</time>
          </Link>
        </li>
      ))}
    </ul>
  );
}

/**
 * Returns what screen readers hear when the last answer changes state. The streamed text
 * itself is not announced piece by piece, so it stays readable in the conversation list.
 */
function announce(turn: Turn | undefined, agentName: string): string {
  switch (turn?.status) {
    case 'sending':
    case 'streaming':
      return turn.reconnecting ? 'Connection lost. Reconnecting.' : `${agentName} is answering.`;
    case 'completed':
      return `${agentName} finished answering.`;
    case 'cancelled':
      return 'The answer was stopped.';
    case 'failed':
    case 'lost':
      return turn.error ?? 'The answer failed.';
    default:
      return '';
  }
}

/** Loads the agent; a 404 means the user may not use it (or it does not exist). */
function useAgent(agentParam: string) {
  const { api } = useApp();
  const [agent, setAgent] = useState<Agent | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api.agent(agentParam).then(setAgent, setError);
  }, [api, agentParam]);
  return { agent, error };
}

export function ChatPage() {
  const { agent: agentParam = '', sessionId } = useParams();
  const { api } = useApp();
  const navigate = useNavigate();
  const { agent, error: agentError } = useAgent(agentParam);
  const [sessions, setSessions] = useState<SessionSummary[]>([]);
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const listRef = useRef<HTMLOListElement>(null);

  const reloadSessions = useCallback(() => {
    api.sessions(agentParam).then(setSessions, () => undefined);
  }, [api, agentParam]);

  const onSession = useCallback(
    (newSession: string) => {
      navigate(`/agents/${encodeURIComponent(agentParam)}/sessions/${encodeURIComponent(newSession)}`, { replace: true });
      reloadSessions();
    },
    [agentParam, navigate, reloadSessions],
  );
  const chat = useChat(api, agentParam, sessionId, onSession);

  useEffect(reloadSessions, [reloadSessions]);
  useEffect(() => {
    if (!chat.running) {
      reloadSessions();
    }
  }, [chat.running, reloadSessions]);

  // A reload on the agent page during a first answer: go to the session that answer belongs to.
  useEffect(() => {
    const open = loadOpenTurn(agentParam);
    if (!sessionId && open) {
      navigate(`/agents/${encodeURIComponent(agentParam)}/sessions/${encodeURIComponent(open.sessionId)}`, { replace: true });
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Follow the answer as it grows, unless the user scrolled up to read something older.
  const lastText = chat.turns.at(-1)?.text;
  const pinnedRef = useRef(true);
  useEffect(() => {
    const list = listRef.current;
    if (list && pinnedRef.current) {
      list.scrollTop = list.scrollHeight;
    }
  }, [chat.turns.length, lastText, chat.running]);
  const onScroll = () => {
    const list = listRef.current;
    if (list) {
      pinnedRef.current = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    }
  };

  if (agentError instanceof ApiError && agentError.isNotFound) {
    return <NotFoundPage what="Agent" />;
  }
  const agentName = agent?.name ?? agentParam;
  const announcement = announce(chat.turns.at(-1), agentName);
  return (
    <div className={`chat-layout ${sidebarOpen ? 'sidebar-open' : ''}`}>
      <aside className="sidebar" aria-label="Conversations">
        <Link
          className="button wide"
          to={`/agents/${encodeURIComponent(agentParam)}`}
          onClick={() => setSidebarOpen(false)}
        >
          New conversation
        </Link>
        <h2 className="sidebar-heading">Conversations</h2>
        <SessionList agent={agentParam} sessions={sessions} current={sessionId} onNavigate={() => setSidebarOpen(false)} />
      </aside>
      <main className="chat-main" id="main">
        <div className="chat-header">
          <button
            type="button"
            className="button secondary sidebar-toggle"
            aria-expanded={sidebarOpen}
            onClick={() => setSidebarOpen((open) => !open)}
          >
            Conversations
          </button>
          <span className="tile-icon small">
            <AgentIcon name={agent?.icon} size={20} />
          </span>
          <h1>{agentName}</h1>
        </div>
        {agentError !== null && <Alert>{describeError(agentError)}</Alert>}
        {chat.loadError !== null && <Alert>{describeError(chat.loadError)}</Alert>}
        <ol className="turns" aria-label="Conversation" ref={listRef} onScroll={onScroll} tabIndex={0}>
          {chat.turns.length === 0 && !chat.loading && (
            <li className="empty-chat">
              <p>{agent?.description}</p>
            </li>
          )}
          {chat.turns.map((turn) => (
            <TurnView key={turn.key} turn={turn} agentName={agentName} onRetry={chat.retry} />
          ))}
        </ol>
        <p className="sr-only" aria-live="polite">
          {announcement}
        </p>
        <Composer agentName={agentName} running={chat.running} onSend={chat.send} onStop={chat.stop} />
      </main>
    </div>
  );
}
