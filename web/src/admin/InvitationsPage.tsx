import { useState, type FormEvent } from 'react';
import type { Invitation, Role } from '../api/types';
import { useApp } from '../app/context';
import { Alert } from '../components/Alert';
import { ROLES } from './MembersPage';
import { useAction } from './useAdminData';

export function InvitationsPage() {
  const { api, workspace } = useApp();
  const action = useAction();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [sent, setSent] = useState<Invitation[]>([]);

  const invite = async (event: FormEvent) => {
    event.preventDefault();
    await action.run(async () => {
      const invitation = await api.invite(workspace?.id ?? '', email.trim(), role);
      setSent((current) => [invitation, ...current]);
      setEmail('');
    });
  };

  return (
    <section aria-labelledby="invitations-heading">
      <h2 id="invitations-heading">Invitations</h2>
      <p className="muted">The invited person opens the link, picks a name and a password, and joins with the role you chose.</p>
      {action.error && <Alert>{action.error}</Alert>}
      <form className="inline-form" onSubmit={(event) => void invite(event)}>
        <label>
          Email
          <input type="email" required value={email} onChange={(event) => setEmail(event.target.value)} />
        </label>
        <label>
          Role
          <select value={role} onChange={(event) => setRole(event.target.value as Role)}>
            {ROLES.map((candidate) => (
              <option key={candidate}>{candidate}</option>
            ))}
          </select>
        </label>
        <button type="submit" className="button" disabled={action.busy}>
          Create invitation
        </button>
      </form>
      {sent.length > 0 && (
        <ul className="invitation-list">
          {sent.map((invitation) => {
            const link = `${window.location.origin}/invite?token=${encodeURIComponent(invitation.token)}`;
            return (
              <li key={invitation.id}>
                <strong>{invitation.email}</strong> ({invitation.role}), expires{' '}
                {new Date(invitation.expires_at).toLocaleString()}
                <label>
                  Invitation link
                  <input readOnly value={link} onFocus={(event) => event.target.select()} />
                </label>
                <button type="button" className="button secondary small" onClick={() => void navigator.clipboard?.writeText(link)}>
                  Copy link
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
