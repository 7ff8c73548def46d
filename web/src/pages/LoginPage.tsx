import { useEffect, useState, type FormEvent } from 'react';
import { Navigate, useLocation, useNavigate } from 'react-router';
import { describeError } from '../api/http';
import { startOidcSignIn } from '../api/oidc';
import type { AuthConfig } from '../api/types';
import { useApp } from '../app/context';
import { Alert } from '../components/Alert';

export function LoginPage() {
  const { auth, api, signedIn } = useApp();
  const navigate = useNavigate();
  const location = useLocation();
  const returnTo = (location.state as { from?: string } | null)?.from ?? '/';
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [config, setConfig] = useState<AuthConfig | null>(null);

  useEffect(() => {
    api.authConfig().then(setConfig, () => setConfig({ password_login: true, oidc: null }));
  }, [api]);

  if (signedIn) {
    return <Navigate to={returnTo} replace />;
  }

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await auth.login(email.trim(), password);
      navigate(returnTo, { replace: true });
    } catch (failure) {
      setError(
        failure instanceof Error && 'status' in failure && failure.status === 401
          ? 'That email and password do not match an account.'
          : describeError(failure),
      );
    } finally {
      setBusy(false);
    }
  };

  const oidc = config?.oidc;
  return (
    <main className="auth-page">
      <div className="auth-card">
        <h1>
          <img src="/favicon.svg" alt="" width={32} height={32} /> Sign in to Houston
        </h1>
        {oidc && (
          <>
            <button type="button" className="button wide" onClick={() => void startOidcSignIn(oidc, returnTo)}>
              Continue with {oidc.display_name}
            </button>
            <p className="divider">or</p>
          </>
        )}
        <form onSubmit={(event) => void submit(event)} className="stack">
          <label>
            Email
            <input type="email" autoComplete="username" required value={email} onChange={(event) => setEmail(event.target.value)} />
          </label>
          <label>
            Password
            <input
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(event) => setPassword(event.target.value)}
            />
          </label>
          {error && <Alert>{error}</Alert>}
          <button type="submit" className="button wide" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </div>
    </main>
  );
}
