import { useState } from 'react';
import { useApp } from '../app/context';
import { Alert } from '../components/Alert';
import { useAction, useAdminData } from './useAdminData';

/** Grants as a grid: one row per member, one checkbox per agent. */
export function AccessPage() {
  const { api } = useApp();
  const { data, error, reload, workspaceId } = useAdminData(async (id) => {
    const [members, agents, grants] = await Promise.all([api.members(id), api.workspaceAgents(id), api.grants(id)]);
    return { members, agents, granted: new Set(grants.map((grant) => `${grant.user_id}/${grant.agent_id}`)) };
  });
  const action = useAction();
  // Shows a toggled box in its new state at once, until the reloaded grants confirm it.
  const [pending, setPending] = useState<Map<string, boolean>>(new Map());

  const toggle = async (agentId: string, userId: string, granted: boolean) => {
    const key = `${userId}/${agentId}`;
    setPending((current) => new Map(current).set(key, granted));
    await action.run(() => api.setGrant(workspaceId, agentId, userId, granted));
    await reload();
    setPending((current) => {
      const next = new Map(current);
      next.delete(key);
      return next;
    });
  };

  return (
    <section aria-labelledby="access-heading">
      <h2 id="access-heading">Agent access</h2>
      <p className="muted">A member sees and talks to only the agents ticked here. Changes apply at once.</p>
      {error && <Alert>{error}</Alert>}
      {action.error && <Alert>{action.error}</Alert>}
      {data && (
        <div className="table-wrap">
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Member</th>
                {data.agents.map((agent) => (
                  <th scope="col" key={agent.id}>
                    {agent.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {data.members.map((member) => (
                <tr key={member.user_id}>
                  <th scope="row">
                    {member.name || member.email}
                    <span className="muted block">{member.email}</span>
                  </th>
                  {data.agents.map((agent) => {
                    const key = `${member.user_id}/${agent.id}`;
                    const granted = pending.get(key) ?? data.granted.has(key);
                    return (
                      <td key={agent.id}>
                        <input
                          type="checkbox"
                          checked={granted}
                          disabled={pending.has(key)}
                          aria-label={`${member.email} may use ${agent.name}`}
                          onChange={() => void toggle(agent.id, member.user_id, !granted)}
                        />
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
