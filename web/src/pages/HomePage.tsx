import { useCallback, useEffect, useState } from 'react';
import { Link } from 'react-router';
import { describeError } from '../api/http';
import type { Agent } from '../api/types';
import { useApp } from '../app/context';
import { usePolling } from '../app/usePolling';
import { AgentIcon } from '../components/AgentIcon';
import { Alert } from '../components/Alert';

/** How often the tile list is refetched, so a new grant shows up without signing in again. */
const REFRESH_MS = 5_000;

export function HomePage() {
  const { api, workspace, me } = useApp();
  const [agents, setAgents] = useState<Agent[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setAgents(await api.agents(workspace?.id));
      setError(null);
    } catch (failure) {
      setError(describeError(failure));
    }
  }, [api, workspace?.id]);
  // Another workspace's tiles must not stay on screen while the new list loads.
  useEffect(() => setAgents(null), [workspace?.id]);
  usePolling(load, REFRESH_MS, [load]);

  return (
    <main className="page" id="main">
      <h1>{me ? `Hi ${me.user.name.split(' ')[0] || me.user.email}` : 'Your agents'}</h1>
      <p className="lead">Pick an agent to start a conversation.</p>
      {error && <Alert>{error}</Alert>}
      {agents === null && !error && <p role="status">Loading your agents…</p>}
      {agents?.length === 0 && (
        <Alert kind="info">No agents are shared with you in this workspace yet. Ask a workspace admin for access.</Alert>
      )}
      <ul className="tiles" aria-label="Agents">
        {agents?.map((agent) => (
          <li key={agent.id}>
            <Link to={`/agents/${encodeURIComponent(agent.slug)}`} className="tile" data-agent={agent.slug}>
              <span className="tile-icon">
                <AgentIcon name={agent.icon} />
              </span>
              <span className="tile-name">{agent.name}</span>
              <span className="tile-description">{agent.description}</span>
            </Link>
          </li>
        ))}
      </ul>
    </main>
  );
}
