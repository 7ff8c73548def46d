import { describe, expect, it } from 'vitest';
import { ApiError, describeError, NetworkError } from './http';

describe('describeError', () => {
  it('explains a lost connection', () => {
    expect(describeError(new NetworkError(new TypeError('fetch failed')))).toBe(
      "Can't reach Houston. Check your connection and try again.",
    );
  });

  it('hides an agent the user may not use', () => {
    expect(describeError(new ApiError(404, 'agent_not_found', 'agent not found'))).toBe('Agent not found.');
  });

  it('lists invalid fields', () => {
    const error = new ApiError(422, 'invalid_request', 'invalid request', [
      { field: 'slug', reason: 'must be lowercase' },
      { field: 'settings.idle_timeout_secs', reason: 'must be at least 10' },
    ]);
    expect(describeError(error)).toBe('slug: must be lowercase; settings.idle_timeout_secs: must be at least 10');
  });

  it('keeps server details out of 5xx messages', () => {
    const message = describeError(new ApiError(500, 'internal', 'database pool exhausted at db-3'));
    expect(message).toBe('Houston ran into a problem (internal). Try again in a moment.');
  });

  it('asks to wait when rate limited', () => {
    expect(describeError(new ApiError(429, 'rate_limited', 'slow down'))).toMatch(/Wait a moment/);
  });
});
