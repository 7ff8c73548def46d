import { useEffect, useState } from 'react';
import { Markdown } from '../components/Markdown';
import { ApprovalCard, ConnectCard } from './ToolCards';
import type { ToolLine, Turn } from './turns';

/** Formats a duration: milliseconds below one second, else seconds with one decimal. */
function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function WakingLine({ since, agentName }: { since: number; agentName: string }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 100);
    return () => clearInterval(timer);
  }, []);
  return (
    <p className="status-line waking" role="status">
      <span className="spinner" aria-hidden="true" /> Waking up {agentName}… {formatDuration(Math.max(0, now - since))}
    </p>
  );
}

const TOOL_OUTCOME_TEXT: Record<ToolLine['state'], string> = {
  running: '',
  ok: 'done',
  error: 'failed',
  rejected: 'rejected',
  cancelled: 'cancelled',
  needs_connection: 'needs a connection',
  needs_approval: 'waiting for approval',
};

function ToolStatus({ tool, turnId }: { tool: ToolLine; turnId: string | undefined }) {
  return (
    <>
      <li className={`status-line tool ${tool.state}`} data-tool-state={tool.state}>
        {tool.state === 'running' && <span className="spinner" aria-hidden="true" />}
        <span>{tool.label}</span>
        {tool.state !== 'running' && <span className="outcome">{TOOL_OUTCOME_TEXT[tool.state]}</span>}
        {tool.message && <span className="tool-message">{tool.message}</span>}
      </li>
      {tool.state === 'needs_connection' && tool.connectUrl && (
        <li className="tool-card-item">
          <ConnectCard tool={tool} />
        </li>
      )}
      {tool.state === 'needs_approval' && (
        <li className="tool-card-item">
          <ApprovalCard tool={tool} turnId={turnId} />
        </li>
      )}
    </>
  );
}

export function TurnView({ turn, agentName, onRetry }: { turn: Turn; agentName: string; onRetry: (turn: Turn) => void }) {
  const streaming = turn.status === 'sending' || turn.status === 'streaming';
  return (
    <li className="turn">
      <div className="message user">
        <span className="sr-only">You said:</span>
        <p>{turn.userText}</p>
      </div>
      <div className="message assistant" data-status={turn.status} aria-busy={streaming}>
        <span className="sr-only">{agentName} answered:</span>
        {turn.wakingSince !== undefined && <WakingLine since={turn.wakingSince} agentName={agentName} />}
        {turn.coldStartMs !== undefined && (
          <p className="status-line cold-start">Woke up in {formatDuration(turn.coldStartMs)}</p>
        )}
        {turn.tools.length > 0 && (
          <ul className="tools" aria-label="Tool calls">
            {turn.tools.map((tool) => (
              <ToolStatus key={tool.callId} tool={tool} turnId={turn.turnId} />
            ))}
          </ul>
        )}
        {turn.text ? (
          <Markdown text={turn.text} />
        ) : (
          streaming && turn.wakingSince === undefined && <p className="status-line thinking">Thinking…</p>
        )}
        {turn.reconnecting && (
          <p className="status-line reconnecting" role="status">
            Connection lost. Reconnecting…
          </p>
        )}
        {turn.stopping && <p className="status-line">Stopping…</p>}
        {turn.status === 'cancelled' && <p className="status-line stopped">Stopped.</p>}
        {(turn.status === 'failed' || turn.status === 'lost') && (
          <div className="alert error" role="alert">
            <span>{turn.error ?? 'Something went wrong.'}</span>
            {turn.errorDetail && (
              <details className="error-detail">
                <summary>Details</summary>
                <code>{turn.errorDetail}</code>
              </details>
            )}
            {turn.retryable !== false && (
              <button type="button" className="button small" onClick={() => onRetry(turn)}>
                {turn.status === 'lost' ? 'Reconnect' : 'Retry'}
              </button>
            )}
          </div>
        )}
      </div>
    </li>
  );
}
