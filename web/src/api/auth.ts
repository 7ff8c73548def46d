// Sign-in state: the token set in localStorage (so a reload stays signed in), silent refresh
// shortly before the access token expires, and sign-out.
//
// Refresh tokens rotate (the old one stops working), so two tabs must not refresh at once: the
// refresh runs under a Web Lock and first rereads storage in case another tab already did it.

import { ApiClient, NetworkError, errorFromResponse, type TokenSource } from './http';
import type { TokenSet } from './types';

const STORAGE_KEY = 'houston.auth';
/** Refresh this long before the access token expires. */
const REFRESH_MARGIN_MS = 60_000;

/** The issuer that refreshes the tokens: the built-in one, or a configured OIDC issuer's token endpoint. */
export type TokenIssuer =
  | { kind: 'builtin' }
  | { kind: 'oidc'; tokenEndpoint: string; clientId: string };

export interface StoredTokens {
  accessToken: string;
  refreshToken?: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  issuer: TokenIssuer;
}

type Listener = (signedIn: boolean) => void;

function readStorage(): StoredTokens | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as StoredTokens) : null;
  } catch {
    return null;
  }
}

/** Converts a token endpoint response into the stored form. */
export function toStoredTokens(set: TokenSet, issuer: TokenIssuer, now = Date.now()): StoredTokens {
  return {
    accessToken: set.access_token,
    refreshToken: set.refresh_token,
    expiresAt: now + set.expires_in * 1000,
    issuer,
  };
}

/** The signed-in user's tokens, shared by every API call of the app. */
export class AuthStore implements TokenSource {
  private tokens: StoredTokens | null = readStorage();
  private listeners = new Set<Listener>();
  private refreshing: Promise<boolean> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly anonymousApi: ApiClient;

  constructor(baseUrl = '') {
    this.anonymousApi = new ApiClient(baseUrl, null);
    window.addEventListener('storage', (event) => {
      if (event.key === STORAGE_KEY) {
        this.tokens = readStorage();
        this.afterChange();
      }
    });
    this.scheduleRefresh();
  }

  get signedIn(): boolean {
    return this.tokens !== null;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Signs in with the built-in issuer. */
  async login(email: string, password: string): Promise<void> {
    const set = await this.anonymousApi.json<TokenSet>('POST', '/v1/login', {
      body: { email, password },
      anonymous: true,
    });
    this.store(toStoredTokens(set, { kind: 'builtin' }));
  }

  /** Stores tokens obtained elsewhere (an accepted invitation, an OIDC sign-in). */
  adopt(tokens: StoredTokens): void {
    this.store(tokens);
  }

  /** Signs out here and, for the built-in issuer, revokes the refresh token on the server. */
  async logout(): Promise<void> {
    const tokens = this.tokens;
    this.store(null);
    if (tokens?.refreshToken && tokens.issuer.kind === 'builtin') {
      await this.anonymousApi
        .send('POST', '/v1/logout', { body: { refresh_token: tokens.refreshToken }, anonymous: true })
        .catch(() => undefined);
    }
  }

  async accessToken(): Promise<string | null> {
    if (this.tokens && this.tokens.expiresAt - Date.now() < REFRESH_MARGIN_MS / 2) {
      await this.refresh();
    }
    return this.tokens?.accessToken ?? null;
  }

  renewAfterRejection(): Promise<boolean> {
    return this.refresh(true);
  }

  /** Refreshes once at a time; returns false when the user has to sign in again. */
  refresh(force = false): Promise<boolean> {
    this.refreshing ??= this.refreshUnderLock(force).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async refreshUnderLock(force: boolean): Promise<boolean> {
    const stale = this.tokens?.accessToken;
    const run = () => this.refreshNow(stale, force);
    if (typeof navigator !== 'undefined' && navigator.locks) {
      return navigator.locks.request('houston-token-refresh', run);
    }
    return run();
  }

  private async refreshNow(staleAccessToken: string | undefined, force: boolean): Promise<boolean> {
    const latest = readStorage();
    const anotherTabRefreshed =
      latest && latest.accessToken !== staleAccessToken && latest.expiresAt - Date.now() > REFRESH_MARGIN_MS;
    if (latest && (anotherTabRefreshed || (!force && latest.expiresAt - Date.now() > REFRESH_MARGIN_MS))) {
      this.tokens = latest;
      this.afterChange();
      return true;
    }
    if (!latest?.refreshToken) {
      this.store(null);
      return false;
    }
    try {
      const set = await this.requestRefresh(latest);
      this.store(toStoredTokens(set, latest.issuer));
      return true;
    } catch (error) {
      if (error instanceof NetworkError) {
        // Offline: keep the tokens and try again on the next call.
        return false;
      }
      this.store(null);
      return false;
    }
  }

  private async requestRefresh(tokens: StoredTokens): Promise<TokenSet> {
    if (tokens.issuer.kind === 'builtin') {
      return this.anonymousApi.json<TokenSet>('POST', '/v1/token/refresh', {
        body: { refresh_token: tokens.refreshToken },
        anonymous: true,
      });
    }
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken ?? '',
      client_id: tokens.issuer.clientId,
    });
    let response: Response;
    try {
      response = await fetch(tokens.issuer.tokenEndpoint, { method: 'POST', body: form });
    } catch (error) {
      throw new NetworkError(error);
    }
    if (!response.ok) {
      throw await errorFromResponse(response);
    }
    const set = (await response.json()) as TokenSet;
    // Issuers may keep the refresh token unchanged and omit it from the response.
    return { ...set, refresh_token: set.refresh_token ?? tokens.refreshToken };
  }

  private store(tokens: StoredTokens | null): void {
    this.tokens = tokens;
    if (tokens) {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(tokens));
    } else {
      localStorage.removeItem(STORAGE_KEY);
    }
    this.afterChange();
  }

  private afterChange(): void {
    this.scheduleRefresh();
    for (const listener of this.listeners) {
      listener(this.signedIn);
    }
  }

  private scheduleRefresh(): void {
    clearTimeout(this.timer);
    if (!this.tokens?.refreshToken) {
      return;
    }
    const delay = Math.max(5_000, this.tokens.expiresAt - Date.now() - REFRESH_MARGIN_MS);
    this.timer = setTimeout(() => {
      void this.refresh();
    }, delay);
  }
}
