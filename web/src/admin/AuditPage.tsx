import { useState, type FormEvent } from 'react';
import type { AuditEntry } from '../api/types';
import { useApp } from '../app/context';
import { Alert } from '../components/Alert';
import { useAction, useAdminData } from './useAdminData';

const PAGE_SIZE = 50;

interface Filters {
  action: string;
  user_id: string;
  agent_id: string;
}

export function AuditPage() {
  const { api } = useApp();
  const [draft, setDraft] = useState<Filters>({ action: '', user_id: '', agent_id: '' });
  const [filters, setFilters] = useState<Filters>(draft);
  const [older, setOlder] = useState<AuditEntry[]>([]);
  const more = useAction();
  const { data: members } = useAdminData((id) => api.members(id));
  const { data: agents } = useAdminData((id) => api.workspaceAgents(id));
  const { data: entries, error, workspaceId } = useAdminData(
    (id) => api.audit(id, { ...filters, limit: PAGE_SIZE }),
    [filters],
  );

  const all = [...(entries ?? []), ...older];
  const userName = (id: string | null) => members?.find((member) => member.user_id === id)?.email ?? id ?? '—';
  const agentName = (id: string | null) => agents?.find((agent) => agent.id === id)?.name ?? id ?? '—';

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setOlder([]);
    setFilters(draft);
  };
  const loadOlder = () =>
    more.run(async () => {
      const last = all.at(-1);
      const page = await api.audit(workspaceId, { ...filters, before: last?.at, limit: PAGE_SIZE });
      setOlder((current) => [...current, ...page]);
    });

  return (
    <section aria-labelledby="audit-heading">
      <h2 id="audit-heading">Audit log</h2>
      <form className="inline-form" onSubmit={apply}>
        <label>
          Action
          <input value={draft.action} placeholder="e.g. agent.chat" onChange={(event) => setDraft({ ...draft, action: event.target.value })} />
        </label>
        <label>
          User
          <select value={draft.user_id} onChange={(event) => setDraft({ ...draft, user_id: event.target.value })}>
            <option value="">Anyone</option>
            {members?.map((member) => (
              <option key={member.user_id} value={member.user_id}>
                {member.email}
              </option>
            ))}
          </select>
        </label>
        <label>
          Agent
          <select value={draft.agent_id} onChange={(event) => setDraft({ ...draft, agent_id: event.target.value })}>
            <option value="">Any agent</option>
            {agents?.map((agent) => (
              <option key={agent.id} value={agent.id}>
                {agent.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="button">
          Apply filters
        </button>
      </form>
      {(error || more.error) && <Alert>{error ?? more.error}</Alert>}
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Agent</th>
              <th scope="col">Target</th>
              <th scope="col">Decision</th>
            </tr>
          </thead>
          <tbody>
            {all.map((entry) => (
              <tr key={entry.id}>
                <td>
                  <time dateTime={entry.at}>{new Date(entry.at).toLocaleString()}</time>
                </td>
                <td>{userName(entry.actor_user_id)}</td>
                <td>{entry.action}</td>
                <td>{agentName(entry.agent_id)}</td>
                <td>{entry.target ?? '—'}</td>
                <td>{entry.decision ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {entries && all.length === 0 && <p className="muted">No entries match these filters.</p>}
      {all.length > 0 && all.length % PAGE_SIZE === 0 && (
        <button type="button" className="button secondary" disabled={more.busy} onClick={() => void loadOlder()}>
          Load older entries
        </button>
      )}
    </section>
  );
}
