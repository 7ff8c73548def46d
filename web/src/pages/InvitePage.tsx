import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { toStoredTokens } from '../api/auth';
import { describeError } from '../api/http';
import { useApp } from '../app/context';
import { Alert } from '../components/Alert';

/** Accepts an invitation link (`/invite?token=…`): the new member picks a name and password. */
export function InvitePage() {
  const { api, auth } = useApp();
  const navigate = useNavigate();
  const token = new URLSearchParams(window.location.search).get('token') ?? '';
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const set = await api.acceptInvitation(token, name.trim(), password);
      auth.adopt(toStoredTokens(set, { kind: 'builtin' }));
      navigate('/', { replace: true });
    } catch (failure) {
      setError(describeError(failure));
    }
  };

  return (
    <main className="auth-page">
      <div className="auth-card">
        <h1>Join your team on Houston</h1>
        {!token && <Alert>This invitation link has no token. Ask for a new invitation.</Alert>}
        <form onSubmit={(event) => void submit(event)} className="stack">
          <label>
            Your name
            <input required value={name} autoComplete="name" onChange={(event) => setName(event.target.value)} />
          </label>
          <label>
            Choose a password
            <input
              type="password"
              required
              minLength={8}
              autoComplete="new-password"
              value={password}
              onChange={(event) => setPassword(event.target.value)}
            />
          </label>
          {error && <Alert>{error}</Alert>}
          <button type="submit" className="button wide" disabled={!token}>
            Accept invitation
          </button>
        </form>
      </div>
    </main>
  );
}
