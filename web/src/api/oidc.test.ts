// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { finishOidcSignIn, startOidcSignIn } from './oidc';
import type { OidcConfig } from './types';

const config: OidcConfig = {
  display_name: 'Okta',
  issuer: 'https://acme.okta.example',
  client_id: 'houston-web',
  authorization_endpoint: 'https://acme.okta.example/oauth2/v1/authorize',
  token_endpoint: 'https://acme.okta.example/oauth2/v1/token',
};

/** Captures the URL the browser would be sent to. */
function captureRedirect() {
  let target = '';
  return {
    navigate: (url: string) => {
      target = url;
    },
    url: () => new URL(target),
  };
}

async function sha256Base64Url(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...digest)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

afterEach(() => {
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

describe('OIDC sign-in', () => {
  it('redirects with PKCE and state', async () => {
    const redirect = captureRedirect();
    await startOidcSignIn(config, '/agents/hr', redirect.navigate);
    const url = redirect.url();
    expect(url.origin + url.pathname).toBe(config.authorization_endpoint);
    expect(url.searchParams.get('response_type')).toBe('code');
    expect(url.searchParams.get('client_id')).toBe('houston-web');
    expect(url.searchParams.get('redirect_uri')).toBe(`${window.location.origin}/auth/callback`);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    const pending = JSON.parse(sessionStorage.getItem('houston.oidc.pending') ?? '{}');
    expect(url.searchParams.get('state')).toBe(pending.state);
    expect(url.searchParams.get('code_challenge')).toBe(await sha256Base64Url(pending.verifier));
  });

  it('exchanges the code with the verifier', async () => {
    await startOidcSignIn(config, '/agents/hr', captureRedirect().navigate);
    const pending = JSON.parse(sessionStorage.getItem('houston.oidc.pending') ?? '{}');
    let form = new URLSearchParams();
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      form = init.body as URLSearchParams;
      return new Response(JSON.stringify({ access_token: 'a', token_type: 'Bearer', expires_in: 300, refresh_token: 'r' }));
    });
    const result = await finishOidcSignIn(new URLSearchParams({ code: 'c1', state: pending.state }));
    expect(form.get('grant_type')).toBe('authorization_code');
    expect(form.get('code')).toBe('c1');
    expect(form.get('code_verifier')).toBe(pending.verifier);
    expect(result.returnTo).toBe('/agents/hr');
    expect(result.tokens.accessToken).toBe('a');
    expect(result.tokens.issuer).toEqual({ kind: 'oidc', tokenEndpoint: config.token_endpoint, clientId: 'houston-web' });
  });

  it('rejects a mismatched state', async () => {
    await startOidcSignIn(config, '/', captureRedirect().navigate);
    const failure = await finishOidcSignIn(new URLSearchParams({ code: 'c1', state: 'forged' })).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/invalid or was already used/);
  });
});
