import { useState, type FormEvent } from 'react';
import type { Role } from '../api/types';
import { useApp } from '../app/context';
import { Alert } from '../components/Alert';
import { useAction, useAdminData } from './useAdminData';

export const ROLES: Role[] = ['member', 'admin', 'owner'];

export function MembersPage() {
  const { api, me } = useApp();
  const { data: members, error, reload, workspaceId } = useAdminData((id) => api.members(id));
  const action = useAction();
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [password, setPassword] = useState('');

  const add = async (event: FormEvent) => {
    event.preventDefault();
    const added = await action.run(() =>
      api.addMember(workspaceId, { email: email.trim(), name: name.trim() || undefined, role, password: password || undefined }),
    );
    if (added) {
      setEmail('');
      setName('');
      setPassword('');
      await reload();
    }
  };

  return (
    <section aria-labelledby="members-heading">
      <h2 id="members-heading">Members and roles</h2>
      {error && <Alert>{error}</Alert>}
      {action.error && <Alert>{action.error}</Alert>}
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {members?.map((member) => (
              <tr key={member.user_id}>
                <td>{member.name}</td>
                <td>{member.email}</td>
                <td>
                  <select
                    aria-label={`Role of ${member.email}`}
                    value={member.role}
                    disabled={member.user_id === me?.user.id}
                    onChange={(event) =>
                      void action.run(() => api.updateMemberRole(workspaceId, member.user_id, event.target.value as Role)).then(reload)
                    }
                  >
                    {ROLES.map((candidate) => (
                      <option key={candidate} value={candidate}>
                        {candidate}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  {member.user_id !== me?.user.id && (
                    <button
                      type="button"
                      className="button secondary small"
                      aria-label={`Remove ${member.email}`}
                      onClick={() => {
                        if (window.confirm(`Remove ${member.email} from this workspace?`)) {
                          void action.run(() => api.removeMember(workspaceId, member.user_id)).then(reload);
                        }
                      }}
                    >
                      Remove
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h3>Add a member</h3>
      <form className="inline-form" onSubmit={(event) => void add(event)}>
        <label>
          Email
          <input type="email" required value={email} onChange={(event) => setEmail(event.target.value)} />
        </label>
        <label>
          Name
          <input value={name} onChange={(event) => setName(event.target.value)} />
        </label>
        <label>
          Role
          <select value={role} onChange={(event) => setRole(event.target.value as Role)}>
            {ROLES.map((candidate) => (
              <option key={candidate}>{candidate}</option>
            ))}
          </select>
        </label>
        <label>
          Password (new users only)
          <input type="password" autoComplete="new-password" value={password} onChange={(event) => setPassword(event.target.value)} />
        </label>
        <button type="submit" className="button" disabled={action.busy}>
          Add member
        </button>
      </form>
    </section>
  );
}
