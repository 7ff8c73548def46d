// Cards shown inside a tool line: the connect card on `tool.needs_connection` and the
// approve and reject buttons on `tool.approval_requested`. The turn itself waits in the
// engine, so both cards only act and report; the stream's `tool.finished` replaces them.

import { useEffect, useState } from 'react';
import { useParams } from 'react-router';
import { describeError } from '../api/http';
import { useApp } from '../app/context';
import { toolkitName } from './toolkits';
import { loadOpenTurn, type ToolLine } from './turns';

const enc = encodeURIComponent;

/** Frames a card below its tool line; inline so the card needs no rules in the shared stylesheet. */
const CARD_STYLE = { border: '1px solid var(--border)', borderRadius: 8, padding: '8px 12px', margin: '4px 0 8px' } as const;

/** Returns the agent and session of the chat view; a new chat's session comes from the open-turn record. */
function useChatIds(): { agent: string; sessionId: string | undefined } {
  const { agent = '', sessionId } = useParams();
  return { agent, sessionId: sessionId ?? loadOpenTurn(agent)?.sessionId };
}

interface ConnectionsResponse {
  connections: { toolkit: string; state: 'active' | 'pending' | 'expired' | 'not_connected' }[];
  composio_configured: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Renders the connect card: a link to the connect page, then a wait until the account is active. */
export function ConnectCard({ tool }: { tool: ToolLine }) {
  const { api } = useApp();
  const { agent } = useChatIds();
  const toolkit = tool.toolkit ?? tool.tool;
  const name = toolkitName(toolkit);
  const [opened, setOpened] = useState(false);
  const [connected, setConnected] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!opened || connected) {
      return undefined;
    }
    let stopped = false;
    const path = `/v1/agents/${enc(agent)}/connections?wait_for=${enc(toolkit)}&timeout_secs=50`;
    const poll = async () => {
      while (!stopped) {
        try {
          const body = await api.client.json<ConnectionsResponse>('GET', path);
          if (body.connections.some((item) => item.toolkit === toolkit && item.state === 'active')) {
            setConnected(true);
            return;
          }
          if (!body.composio_configured) {
            // The server cannot see connections, so only the answer stream can tell.
            return;
          }
          // The server already waited; this pause only bounds the rate if it returns early.
          await sleep(1000);
        } catch (caught) {
          setError(describeError(caught));
          await sleep(3000);
        }
      }
    };
    void poll();
    return () => {
      stopped = true;
    };
  }, [api, agent, toolkit, opened, connected]);

  return (
    <div className="tool-card connect-card" style={CARD_STYLE} role="group" aria-label={`Connect ${name}`}>
      <p>
        <strong>Connect {name}</strong> so {name} actions run as you. The answer continues once it is connected.
      </p>
      {connected ? (
        <p className="status-line" role="status">
          {name} is connected. Continuing…
        </p>
      ) : (
        <a
          className="button small"
          href={tool.connectUrl}
          target="_blank"
          rel="noopener noreferrer"
          onClick={() => setOpened(true)}
        >
          Connect {name}
        </a>
      )}
      {opened && !connected && (
        <p className="status-line" role="status">
          <span className="spinner" aria-hidden="true" /> Waiting for {name} to be connected…
        </p>
      )}
      {error && <p className="tool-message">{error}</p>}
    </div>
  );
}

/** Approve and reject buttons for a tool call that waits for the user's decision. */
export function ApprovalCard({ tool, turnId }: { tool: ToolLine; turnId: string | undefined }) {
  const { api } = useApp();
  const { agent, sessionId } = useChatIds();
  const [decision, setDecision] = useState<'approve' | 'reject' | null>(null);
  const [error, setError] = useState<string | null>(null);

  const decide = async (approve: boolean) => {
    if (!sessionId || !turnId) {
      setError('The answer has not started yet. Try again in a moment.');
      return;
    }
    setDecision(approve ? 'approve' : 'reject');
    setError(null);
    const path = `/v1/agents/${enc(agent)}/sessions/${enc(sessionId)}/turns/${enc(turnId)}/approvals/${enc(tool.callId)}`;
    try {
      await api.client.json('POST', path, { body: { approve } });
    } catch (caught) {
      setDecision(null);
      setError(describeError(caught));
    }
  };

  return (
    <div className="tool-card approval-card" style={CARD_STYLE} role="group" aria-label={`Approve ${tool.label}`}>
      <p>
        <strong>{tool.label.replace(/…$/, '')}</strong> needs your approval before it runs.
      </p>
      {decision ? (
        <p className="status-line" role="status">
          {decision === 'approve' ? 'Approved. Running…' : 'Rejected.'}
        </p>
      ) : (
        <div className="actions" style={{ display: 'flex', gap: 8 }}>
          <button type="button" className="button small" onClick={() => void decide(true)}>
            Approve
          </button>
          <button type="button" className="button small secondary" onClick={() => void decide(false)}>
            Reject
          </button>
        </div>
      )}
      {error && <p className="tool-message">{error}</p>}
    </div>
  );
}
