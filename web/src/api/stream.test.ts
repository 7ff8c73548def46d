import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from './http';
import { StreamLostError, TurnStream, type ReconnectPolicy } from './stream';
import type { StreamEvent } from './types';

const encoder = new TextEncoder();

type Step = { chunk: string } | { fail: string } | { end: true } | { hang: true };

interface Script {
  status?: number;
  body?: string;
  steps?: Step[];
}

interface Recorded {
  method: string;
  url: string;
  body?: unknown;
}

/** Returns a fetch that responds to each call with the next scripted response and records the requests. */
function scriptedFetch(scripts: Script[]) {
  const requests: Recorded[] = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    requests.push({ method: init?.method ?? 'GET', url: String(input), body });
    const script = scripts.shift();
    if (!script) {
      throw new TypeError('no more scripted responses');
    }
    if (script.status && script.status !== 200) {
      return new Response(script.body ?? '', { status: script.status });
    }
    return new Response(streamOf(script.steps ?? [], init?.signal ?? undefined), {
      status: 200,
      headers: { 'Content-Type': 'text/event-stream' },
    });
  };
  return { fetchImpl, requests };
}

function streamOf(steps: Step[], signal?: AbortSignal): ReadableStream<Uint8Array> {
  let index = 0;
  return new ReadableStream({
    async pull(controller) {
      const step = steps[index++];
      if (!step || 'end' in step) {
        controller.close();
      } else if ('chunk' in step) {
        controller.enqueue(encoder.encode(step.chunk));
      } else if ('fail' in step) {
        controller.error(new TypeError(step.fail));
      } else {
        await new Promise<void>((_, reject) =>
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true }),
        );
      }
    },
  });
}

function sse(event: Record<string, unknown>): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

const accepted = sse({ type: 'turn.accepted', seq: 1, turn_id: 't1', session_id: 's1' });
const delta = (seq: number, text: string) =>
  sse({ type: 'message.delta', seq, turn_id: 't1', text });
const completed = (seq: number) =>
  sse({
    type: 'turn.completed',
    seq,
    turn_id: 't1',
    usage: { input_tokens: 10, output_tokens: 4 },
    stop_reason: 'end_turn',
  });

const fastPolicy: ReconnectPolicy = { delaysMs: [1, 2], giveUpAfterMs: 1_000, idleTimeoutMs: 1_000 };

function makeStream(scripts: Script[], policy = fastPolicy) {
  const { fetchImpl, requests } = scriptedFetch(scripts);
  const api = new ApiClient('http://houston.test', null, fetchImpl);
  const events: StreamEvent[] = [];
  const states: string[] = [];
  const stream = new TurnStream(api, 'hr', {
    onEvent: (event) => events.push(event),
    onConnectionChange: (state) => states.push(state),
    policy,
  });
  const text = () =>
    events.map((event) => (event.type === 'message.delta' ? event.text : '')).join('');
  return { stream, events, states, requests, text };
}

const chat = { message: "what's our vacation policy?", idempotencyKey: 'k1' };

describe('TurnStream', () => {
  it('delivers a whole turn from one POST', async () => {
    const { stream, events, requests, text } = makeStream([
      { steps: [{ chunk: accepted + delta(2, '20 days') }, { chunk: completed(3) }] },
    ]);
    const terminal = await stream.start(chat);
    expect(terminal.type).toBe('turn.completed');
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(text()).toBe('20 days');
    expect(requests[0].method).toBe('POST');
    expect(requests[0].url).toBe('http://houston.test/v1/chat');
    expect(requests[0].body).toEqual({
      agent_id: 'hr',
      message: chat.message,
      idempotency_key: 'k1',
    });
    expect(stream.sessionId).toBe('s1');
    expect(stream.turnId).toBe('t1');
  });

  it('parses events split across chunk boundaries', async () => {
    const wire = accepted + delta(2, 'Vaca') + delta(3, 'tion') + completed(4);
    const steps: Step[] = [];
    for (let start = 0; start < wire.length; start += 7) {
      steps.push({ chunk: wire.slice(start, start + 7) });
    }
    const { stream, events, text } = makeStream([{ steps }]);
    await stream.start(chat);
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4]);
    expect(text()).toBe('Vacation');
  });

  it('reconnects after a dropped stream without duplicates', async () => {
    const { stream, events, requests, states, text } = makeStream([
      { steps: [{ chunk: accepted + delta(2, 'You get ') + delta(3, '20 days') }, { fail: 'reset' }] },
      // The server replays from an older seq than asked: the client must drop 2 and 3.
      { steps: [{ chunk: delta(2, 'You get ') + delta(3, '20 days') + delta(4, ' a year.') }, { chunk: completed(5) }] },
    ]);
    const terminal = await stream.start(chat);
    expect(terminal.type).toBe('turn.completed');
    expect(text()).toBe('You get 20 days a year.');
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(requests[1].method).toBe('GET');
    expect(requests[1].url).toBe('http://houston.test/v1/agents/hr/sessions/s1/turns/t1/events?after=3');
    expect(states).toEqual(['connected', 'reconnecting', 'connected']);
  });

  it('reconnects when the body ends before the turn does', async () => {
    const { stream, requests, text } = makeStream([
      { steps: [{ chunk: accepted + delta(2, 'a') }, { end: true }] },
      { steps: [{ chunk: delta(3, 'b') + completed(4) }] },
    ]);
    await stream.start(chat);
    expect(text()).toBe('ab');
    expect(requests[1].url).toContain('/turns/t1/events?after=2');
  });

  it('resumes from the last seq after a reload', async () => {
    const { stream, events, requests, text } = makeStream([
      { steps: [{ chunk: delta(3, 'old') + delta(4, 'old') + delta(5, 'new') + completed(6) }] },
    ]);
    const terminal = await stream.resume('s1', 't1', 4);
    expect(terminal.type).toBe('turn.completed');
    expect(requests[0].url).toBe('http://houston.test/v1/agents/hr/sessions/s1/turns/t1/events?after=4');
    expect(events.map((event) => event.seq)).toEqual([5, 6]);
    expect(text()).toBe('new');
  });

  it('repeats the POST with the same key before acceptance', async () => {
    const { stream, requests, text } = makeStream([
      { steps: [{ fail: 'reset' }] },
      { steps: [{ chunk: accepted + delta(2, 'ok') + completed(3) }] },
    ]);
    await stream.start(chat);
    expect(text()).toBe('ok');
    expect(requests.map((request) => request.method)).toEqual(['POST', 'POST']);
    expect((requests[1].body as { idempotency_key: string }).idempotency_key).toBe('k1');
  });

  it('fails at once on a client error', async () => {
    const body = JSON.stringify({ error: { code: 'agent_not_found', message: 'agent not found' } });
    const { stream, requests } = makeStream([{ status: 404, body }]);
    const failure = await stream.start(chat).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).code).toBe('agent_not_found');
    expect(requests).toHaveLength(1);
  });

  it('retries a 503 from the resume endpoint', async () => {
    const { stream, text } = makeStream([
      { steps: [{ chunk: accepted }, { fail: 'reset' }] },
      { status: 503, body: '' },
      { steps: [{ chunk: delta(2, 'back') + completed(3) }] },
    ]);
    await stream.start(chat);
    expect(text()).toBe('back');
  });

  it('gives up after the policy time with the last seq', async () => {
    const scripts: Script[] = [{ steps: [{ chunk: accepted + delta(2, 'a') }, { fail: 'reset' }] }];
    for (let attempt = 0; attempt < 50; attempt++) {
      scripts.push({ steps: [{ fail: 'reset' }] });
    }
    const { stream } = makeStream(scripts, { delaysMs: [5], giveUpAfterMs: 40, idleTimeoutMs: 1_000 });
    const failure = await stream.start(chat).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StreamLostError);
    expect((failure as StreamLostError).lastSeq).toBe(2);
  });

  it('treats a silent connection as dropped', async () => {
    const { stream, text } = makeStream(
      [
        { steps: [{ chunk: accepted + delta(2, 'x') }, { hang: true }] },
        { steps: [{ chunk: delta(3, 'y') + completed(4) }] },
      ],
      { delaysMs: [1], giveUpAfterMs: 5_000, idleTimeoutMs: 30 },
    );
    await stream.start(chat);
    expect(text()).toBe('xy');
  });

  it('sends a cancel requested before acceptance', async () => {
    const cancelled = sse({ type: 'turn.cancelled', seq: 3, turn_id: 't1' });
    const { stream, requests, events } = makeStream([
      { steps: [{ chunk: accepted }, { chunk: delta(2, 'a') }, { chunk: cancelled }] },
      { status: 202, body: '{"turn_id":"t1"}' },
    ]);
    const done = stream.start(chat);
    await stream.cancel();
    const terminal = await done;
    expect(terminal.type).toBe('turn.cancelled');
    expect(events.at(-1)?.type).toBe('turn.cancelled');
    const cancel = requests.find((request) => request.url.endsWith('/cancel'));
    expect(cancel?.url).toBe('http://houston.test/v1/agents/hr/sessions/s1/turns/t1/cancel');
  });
});
