// Sign-in with a configured OpenID Connect issuer: authorization code flow with PKCE (RFC 7636),
// the flow meant for browser apps that cannot keep a client secret.

import { errorFromResponse, NetworkError } from './http';
import { toStoredTokens, type StoredTokens } from './auth';
import type { OidcConfig, TokenSet } from './types';

const PENDING_KEY = 'houston.oidc.pending';

interface PendingSignIn {
  state: string;
  verifier: string;
  config: OidcConfig;
  returnTo: string;
}

function randomUrlSafe(bytes: number): string {
  const buffer = crypto.getRandomValues(new Uint8Array(bytes));
  return base64Url(buffer);
}

function base64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function callbackUrl(): string {
  return `${window.location.origin}/auth/callback`;
}

/** Sends the browser to the issuer's sign-in page; tests replace `navigate`. */
export async function startOidcSignIn(
  config: OidcConfig,
  returnTo: string,
  navigate: (url: string) => void = (url) => window.location.assign(url),
): Promise<void> {
  const verifier = randomUrlSafe(32);
  const state = randomUrlSafe(16);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const pending: PendingSignIn = { state, verifier, config, returnTo };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));

  const url = new URL(config.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', config.client_id);
  url.searchParams.set('redirect_uri', callbackUrl());
  url.searchParams.set('scope', (config.scopes ?? ['openid', 'email', 'profile']).join(' '));
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', base64Url(new Uint8Array(digest)));
  url.searchParams.set('code_challenge_method', 'S256');
  navigate(url.toString());
}

/**
 * Finishes the sign-in on the callback page: checks `state`, exchanges the code, and returns
 * the tokens and the page to go back to.
 */
export async function finishOidcSignIn(
  query: URLSearchParams,
): Promise<{ tokens: StoredTokens; returnTo: string }> {
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  const pending = raw ? (JSON.parse(raw) as PendingSignIn) : null;

  if (query.get('error')) {
    throw new Error(`The sign-in was not completed: ${query.get('error_description') ?? query.get('error')}.`);
  }
  if (!pending || query.get('state') !== pending.state) {
    throw new Error('This sign-in link is invalid or was already used. Start the sign-in again.');
  }

  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: query.get('code') ?? '',
    redirect_uri: callbackUrl(),
    client_id: pending.config.client_id,
    code_verifier: pending.verifier,
  });
  let response: Response;
  try {
    response = await fetch(pending.config.token_endpoint, { method: 'POST', body: form });
  } catch (error) {
    throw new NetworkError(error);
  }
  if (!response.ok) {
    throw await errorFromResponse(response);
  }

  const set = (await response.json()) as TokenSet;
  const issuer = {
    kind: 'oidc' as const,
    tokenEndpoint: pending.config.token_endpoint,
    clientId: pending.config.client_id,
  };
  return { tokens: toStoredTokens(set, issuer), returnTo: pending.returnTo };
}
