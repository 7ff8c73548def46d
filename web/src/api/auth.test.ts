// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuthStore, type StoredTokens } from './auth';
import { ApiClient } from './http';

interface Call {
  url: string;
  body?: unknown;
  authorization?: string;
}

/** Stubs fetch with a handler and records every call. */
function stubFetch(handler: (call: Call) => Response) {
  const calls: Call[] = [];
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const call = {
      url: String(input),
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
      authorization: headers.Authorization,
    };
    calls.push(call);
    return handler(call);
  });
  return calls;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function storeTokens(tokens: StoredTokens) {
  localStorage.setItem('houston.auth', JSON.stringify(tokens));
}

const tokenSet = (access: string, refresh: string) => ({
  access_token: access,
  token_type: 'Bearer',
  expires_in: 900,
  refresh_token: refresh,
});

afterEach(() => {
  vi.unstubAllGlobals();
  localStorage.clear();
});

describe('AuthStore', () => {
  it('stores tokens after sign-in', async () => {
    const calls = stubFetch(() => json(tokenSet('a1', 'r1')));
    const auth = new AuthStore('');
    await auth.login('juan@acme.test', 'secret');
    expect(calls[0].url).toBe('/v1/login');
    expect(calls[0].body).toEqual({ email: 'juan@acme.test', password: 'secret' });
    expect(calls[0].authorization).toBeUndefined();
    expect(auth.signedIn).toBe(true);
    expect(await auth.accessToken()).toBe('a1');
  });

  it('refreshes a token about to expire', async () => {
    storeTokens({ accessToken: 'old', refreshToken: 'r1', expiresAt: Date.now() + 10_000, issuer: { kind: 'builtin' } });
    const calls = stubFetch(() => json(tokenSet('new', 'r2')));
    const auth = new AuthStore('');
    expect(await auth.accessToken()).toBe('new');
    expect(calls[0].url).toBe('/v1/token/refresh');
    expect(calls[0].body).toEqual({ refresh_token: 'r1' });
    expect(JSON.parse(localStorage.getItem('houston.auth') ?? '{}').refreshToken).toBe('r2');
  });

  it('retries a rejected call once after refreshing', async () => {
    storeTokens({ accessToken: 'revoked', refreshToken: 'r1', expiresAt: Date.now() + 600_000, issuer: { kind: 'builtin' } });
    const calls = stubFetch((call) => {
      if (call.url === '/v1/token/refresh') {
        return json(tokenSet('fresh', 'r2'));
      }
      return call.authorization === 'Bearer fresh' ? json({ ok: true }) : json({ error: { code: 'unauthorized', message: 'expired' } }, 401);
    });
    const auth = new AuthStore('');
    const api = new ApiClient('', auth);
    expect(await api.json('GET', '/v1/me')).toEqual({ ok: true });
    expect(calls.map((call) => call.url)).toEqual(['/v1/me', '/v1/token/refresh', '/v1/me']);
  });

  it('signs out when the refresh token is rejected', async () => {
    storeTokens({ accessToken: 'old', refreshToken: 'stale', expiresAt: Date.now() + 1_000, issuer: { kind: 'builtin' } });
    stubFetch(() => json({ error: { code: 'invalid_token', message: 'refresh token is invalid' } }, 401));
    const auth = new AuthStore('');
    const changes: boolean[] = [];
    auth.subscribe((signedIn) => changes.push(signedIn));
    expect(await auth.accessToken()).toBeNull();
    expect(auth.signedIn).toBe(false);
    expect(changes).toEqual([false]);
  });

  it('revokes the refresh token on sign-out', async () => {
    storeTokens({ accessToken: 'a', refreshToken: 'r1', expiresAt: Date.now() + 600_000, issuer: { kind: 'builtin' } });
    const calls = stubFetch(() => new Response(null, { status: 204 }));
    const auth = new AuthStore('');
    await auth.logout();
    expect(calls[0].url).toBe('/v1/logout');
    expect(calls[0].body).toEqual({ refresh_token: 'r1' });
    expect(localStorage.getItem('houston.auth')).toBeNull();
  });
});
