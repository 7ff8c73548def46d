import { useEffect, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { describeError } from '../api/http';
import { finishOidcSignIn } from '../api/oidc';
import { useApp } from '../app/context';
import { Alert } from '../components/Alert';

export function OidcCallbackPage() {
  const { auth } = useApp();
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    finishOidcSignIn(new URLSearchParams(window.location.search)).then(
      ({ tokens, returnTo }) => {
        auth.adopt(tokens);
        navigate(returnTo, { replace: true });
      },
      (failure: unknown) => setError(describeError(failure)),
    );
  }, [auth, navigate]);

  return (
    <main className="auth-page">
      <div className="auth-card">
        {error ? (
          <>
            <Alert>{error}</Alert>
            <Link to="/login">Back to sign-in</Link>
          </>
        ) : (
          <p role="status">Signing you in…</p>
        )}
      </div>
    </main>
  );
}
