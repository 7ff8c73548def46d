// The chat stream client: sends a message with `POST /v1/chat`, reads the event stream, and
// when the connection drops it reconnects with
// `GET /v1/agents/{agent}/sessions/{sid}/turns/{tid}/events?after=N`, where N is the last `seq`
// it delivered. Every event is delivered once, in order: anything at or below the last
// delivered `seq` is dropped, so a replayed event never duplicates answer text.

import { ApiClient, ApiError, NetworkError } from './http';
import { SseDecoder } from './sse';
import { isTerminal, type StreamEvent, type TerminalEvent } from './types';

/** When and how often to reconnect. Delays grow along `delaysMs`, then stay at the last one. */
export interface ReconnectPolicy {
  delaysMs: number[];
  /** Gives up when this long passes without a new event. */
  giveUpAfterMs: number;
  /** Treats a connection with no bytes (not even a heartbeat) for this long as dropped. */
  idleTimeoutMs: number;
}

export const DEFAULT_POLICY: ReconnectPolicy = {
  delaysMs: [250, 500, 1000, 2000, 4000],
  giveUpAfterMs: 120_000,
  // The server sends a heartbeat every 15 s, so three missed heartbeats mean a dead connection.
  idleTimeoutMs: 45_000,
};

/** Thrown when the stream could not be reopened in time; `resume` can pick it up later. */
export class StreamLostError extends Error {
  constructor(readonly lastSeq: number) {
    super('the connection to the answer stream was lost');
    this.name = 'StreamLostError';
  }
}

export type ConnectionState = 'connected' | 'reconnecting';

export interface StreamOptions {
  onEvent: (event: StreamEvent) => void;
  onConnectionChange?: (state: ConnectionState) => void;
  policy?: ReconnectPolicy;
  signal?: AbortSignal;
  /** Clock and timer, replaceable in tests. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface ChatMessage {
  sessionId?: string;
  message: string;
  idempotencyKey: string;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Statuses worth reopening the stream for: the server or a proxy in front of it is restarting. */
function isTransient(error: unknown): boolean {
  if (error instanceof ApiError) {
    return error.status === 502 || error.status === 503 || error.status === 504;
  }
  // NetworkError from fetch, or a TypeError / AbortError from reading a body that broke.
  return error instanceof NetworkError || error instanceof Error;
}

/** One turn's event stream, with reconnect and resume. Use one instance per turn. */
export class TurnStream {
  private readonly api: ApiClient;
  private readonly agent: string;
  private readonly options: StreamOptions;
  private readonly policy: ReconnectPolicy;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private cancelRequested = false;

  /** The highest `seq` delivered to `onEvent`. */
  lastSeq = 0;
  sessionId?: string;
  turnId?: string;

  constructor(api: ApiClient, agent: string, options: StreamOptions) {
    this.api = api;
    this.agent = agent;
    this.options = options;
    this.policy = options.policy ?? DEFAULT_POLICY;
    this.now = options.now ?? (() => Date.now());
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** Sends a message and follows its turn to the end. */
  start(chat: ChatMessage): Promise<TerminalEvent> {
    this.sessionId = chat.sessionId;
    const body = {
      agent_id: this.agent,
      session_id: chat.sessionId,
      message: chat.message,
      idempotency_key: chat.idempotencyKey,
    };
    // Until `turn.accepted` names the turn, a retry repeats the POST with the same idempotency
    // key, for which the server returns the same turn instead of starting a second one.
    return this.follow(() =>
      this.api.send('POST', '/v1/chat', { body, signal: this.connectionSignal() }),
    );
  }

  /** Follows an existing turn from the event after `after` (0 replays the whole turn). */
  resume(sessionId: string, turnId: string, after: number): Promise<TerminalEvent> {
    this.sessionId = sessionId;
    this.turnId = turnId;
    this.lastSeq = after;
    return this.follow(() => this.openResume());
  }

  /**
   * Asks the server to stop the turn. The stream then ends with `turn.cancelled` once the work
   * has stopped. Before `turn.accepted` arrives the request waits for the turn id.
   */
  async cancel(): Promise<void> {
    this.cancelRequested = true;
    if (this.turnId && this.sessionId) {
      await this.sendCancel();
    }
  }

  private async sendCancel(): Promise<void> {
    const path = `${this.turnPath()}/cancel`;
    await this.api.send('POST', path, { signal: this.options.signal });
  }

  private turnPath(): string {
    const agent = encodeURIComponent(this.agent);
    const session = encodeURIComponent(this.sessionId ?? '');
    const turn = encodeURIComponent(this.turnId ?? '');
    return `/v1/agents/${agent}/sessions/${session}/turns/${turn}`;
  }

  private openResume(): Promise<Response> {
    const path = `${this.turnPath()}/events?after=${this.lastSeq}`;
    return this.api.send('GET', path, {
      signal: this.connectionSignal(),
      headers: { Accept: 'text/event-stream' },
    });
  }

  private currentConnection?: AbortController;

  /** Creates the signal of one connection, aborted by the caller's signal or by the idle watchdog. */
  private connectionSignal(): AbortSignal {
    const controller = new AbortController();
    this.currentConnection = controller;
    const outer = this.options.signal;
    if (outer) {
      if (outer.aborted) {
        controller.abort(outer.reason);
      }
      outer.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
    }
    return controller.signal;
  }

  private async follow(open: () => Promise<Response>): Promise<TerminalEvent> {
    let lastProgressAt = this.now();
    let failures = 0;
    let opener = open;
    for (;;) {
      const seqBefore = this.lastSeq;
      try {
        const response = await opener();
        this.options.onConnectionChange?.('connected');
        const terminal = await this.consume(response);
        if (terminal) {
          return terminal;
        }
      } catch (error) {
        if (this.options.signal?.aborted || !isTransient(error)) {
          throw error;
        }
      }

      if (this.lastSeq > seqBefore) {
        lastProgressAt = this.now();
        failures = 0;
      }
      if (this.now() - lastProgressAt >= this.policy.giveUpAfterMs) {
        throw new StreamLostError(this.lastSeq);
      }
      this.options.onConnectionChange?.('reconnecting');
      const delays = this.policy.delaysMs;
      await this.sleep(delays[Math.min(failures, delays.length - 1)], this.options.signal);
      failures += 1;
      if (this.turnId) {
        opener = () => this.openResume();
      }
    }
  }

  /** Reads one connection; returns the terminal event, or undefined when the body ended early. */
  private async consume(response: Response): Promise<TerminalEvent | undefined> {
    if (!response.body) {
      return undefined;
    }
    const reader = response.body.getReader();
    const decoder = new SseDecoder();
    const connection = this.currentConnection;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const armWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => connection?.abort(new Error('stream idle')), this.policy.idleTimeoutMs);
    };
    try {
      armWatchdog();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          return undefined;
        }
        armWatchdog();
        for (const frame of decoder.feed(value)) {
          const terminal = await this.deliver(frame.data);
          if (terminal) {
            await reader.cancel().catch(() => undefined);
            return terminal;
          }
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  /** Parses one frame's data and hands it on unless it was already delivered. */
  private async deliver(data: string): Promise<TerminalEvent | undefined> {
    let event: StreamEvent;
    try {
      event = JSON.parse(data) as StreamEvent;
    } catch {
      return undefined;
    }
    if (typeof event?.seq !== 'number' || typeof event.type !== 'string') {
      return undefined;
    }
    if (event.seq <= this.lastSeq) {
      return undefined;
    }
    this.lastSeq = event.seq;
    this.turnId = event.turn_id ?? this.turnId;
    if (event.type === 'turn.accepted') {
      this.sessionId = event.session_id;
    }
    this.options.onEvent(event);
    if (event.type === 'turn.accepted' && this.cancelRequested) {
      await this.sendCancel().catch(() => undefined);
    }
    return isTerminal(event) ? event : undefined;
  }
}
