// HTTP client for the control plane: JSON requests with the bearer token, the shared error
// body, and one token refresh and retry on a 401.

/** A field the server rejected, from `details.fields` of a 400 or 422. */
export interface FieldError {
  field: string;
  reason: string;
}

/** A failed API call: the HTTP status and the server's `{"error": {...}}` body. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: FieldError[];

  constructor(status: number, code: string, message: string, fields: FieldError[] = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = fields;
  }

  get isNotFound(): boolean {
    return this.status === 404;
  }
}

/** A request that never got an HTTP response (offline, connection reset, server down). */
export class NetworkError extends Error {
  constructor(cause: unknown) {
    super('network request failed', { cause });
    this.name = 'NetworkError';
  }
}

/** Supplies the access token and renews it when the server rejects it. */
export interface TokenSource {
  /** Returns a valid access token, or null when signed out. */
  accessToken(): Promise<string | null>;
  /** Renews the tokens after a 401; returns false when the user must sign in again. */
  renewAfterRejection(): Promise<boolean>;
}

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** Sends no Authorization header (sign-in, refresh). */
  anonymous?: boolean;
  headers?: Record<string, string>;
}

/** Builds an ApiError from a non-2xx response, tolerating bodies that are not our JSON. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `request failed with status ${response.status}`;
  let fields: FieldError[] = [];
  try {
    const body = (await response.json()) as {
      error?: { code?: string; message?: string; details?: { fields?: FieldError[] } };
    };
    if (body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      fields = body.error.details?.fields ?? [];
    }
  } catch {
    // The body was not JSON (a proxy error page, for example): keep the status text.
  }
  return new ApiError(response.status, code, message, fields);
}

/** Client for the control plane's JSON API and its event streams. */
export class ApiClient {
  private readonly baseUrl: string;
  private readonly tokens: TokenSource | null;
  private readonly fetchImpl: typeof fetch;

  constructor(baseUrl: string, tokens: TokenSource | null, fetchImpl?: typeof fetch) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.tokens = tokens;
    this.fetchImpl = fetchImpl ?? ((input, init) => fetch(input, init));
  }

  /** Sends a request and returns the parsed JSON body (undefined for 202/204 without body). */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Sends a request and returns the open response, for streams. Non-2xx responses become an
   * ApiError and transport failures a NetworkError.
   */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    let response = await this.attempt(method, path, options);
    if (response.status === 401 && !options.anonymous && this.tokens) {
      if (await this.tokens.renewAfterRejection()) {
        response = await this.attempt(method, path, options);
      }
    }
    if (!response.ok) {
      throw await errorFromResponse(response);
    }
    return response;
  }

  private async attempt(method: string, path: string, options: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
    }
    if (!options.anonymous && this.tokens) {
      const token = await this.tokens.accessToken();
      if (token) {
        headers.Authorization = `Bearer ${token}`;
      }
    }
    try {
      return await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: options.signal,
        cache: 'no-store',
      });
    } catch (error) {
      if (options.signal?.aborted) {
        throw error;
      }
      throw new NetworkError(error);
    }
  }
}

/** Turns any error from the API into a sentence for the person using the app. */
export function describeError(error: unknown): string {
  if (error instanceof NetworkError) {
    return "Can't reach Houston. Check your connection and try again.";
  }
  if (error instanceof ApiError) {
    if (error.status === 401) {
      return 'Your sign-in has expired. Please sign in again.';
    }
    if (error.status === 403) {
      return "You don't have permission to do that.";
    }
    if (error.status === 404 && error.code === 'agent_not_found') {
      return 'Agent not found.';
    }
    if (error.status === 429) {
      return 'Too many requests right now. Wait a moment and try again.';
    }
    if (error.status >= 500) {
      return `Houston ran into a problem (${error.code}). Try again in a moment.`;
    }
    if (error.fields.length > 0) {
      return error.fields.map((field) => `${field.field}: ${field.reason}`).join('; ');
    }
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
