// The chat page's behaviour: load a session, send messages, follow the answer stream, stop,
// retry, and continue a running answer after a reload.

import { useCallback, useEffect, useRef, useState } from 'react';
import { describeError, NetworkError } from '../api/http';
import { StreamLostError, TurnStream } from '../api/stream';
import type { HoustonApi } from '../api/endpoints';
import type { StreamEvent } from '../api/types';
import { randomId } from '../app/ids';
import {
  applyEvent,
  clearOpenTurn,
  isRunning,
  loadOpenTurn,
  saveOpenTurn,
  turnsFromHistory,
  type Turn,
} from './turns';

export interface ChatController {
  turns: Turn[];
  loading: boolean;
  loadError: unknown;
  running: boolean;
  send: (message: string) => void;
  stop: () => void;
  retry: (turn: Turn) => void;
}

/**
 * @param agent the agent id or slug from the URL
 * @param sessionId the session in the URL, or undefined for a new one
 * @param onSession called when the server assigns a session to a new conversation
 */
export function useChat(
  api: HoustonApi,
  agent: string,
  sessionId: string | undefined,
  onSession: (sessionId: string) => void,
): ChatController {
  const [turns, setTurns] = useState<Turn[]>([]);
  const [loading, setLoading] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const streamRef = useRef<TurnStream | null>(null);
  const abortRef = useRef<AbortController>(new AbortController());
  const sessionRef = useRef(sessionId);
  sessionRef.current = sessionId;
  const onSessionRef = useRef(onSession);
  onSessionRef.current = onSession;

  const updateTurn = useCallback((key: string, change: (turn: Turn) => Turn) => {
    setTurns((current) => current.map((turn) => (turn.key === key ? change(turn) : turn)));
  }, []);

  /** Follows one turn's stream, persisting progress so a reload can continue it. */
  const follow = useCallback(
    async (key: string, run: (stream: TurnStream) => Promise<unknown>, seed: Turn) => {
      // React may run state updaters later, so the copy that goes to sessionStorage is built
      // here from the same events, in step with `stream.lastSeq`.
      let stored = seed;
      const stream = new TurnStream(api.client, agent, {
        signal: abortRef.current.signal,
        onConnectionChange: (state) => updateTurn(key, (turn) => ({ ...turn, reconnecting: state === 'reconnecting' })),
        onEvent: (event: StreamEvent) => {
          stored = applyEvent(stored, event);
          updateTurn(key, (turn) => applyEvent(turn, event));
          if (event.type === 'turn.accepted' && !sessionRef.current) {
            onSessionRef.current(event.session_id);
          }
          if (stream.sessionId && stream.turnId) {
            saveOpenTurn(agent, {
              sessionId: stream.sessionId,
              turnId: stream.turnId,
              lastSeq: stream.lastSeq,
              userText: stored.userText,
              text: stored.text,
              tools: stored.tools,
              coldStartMs: stored.coldStartMs,
            });
          }
        },
      });
      streamRef.current = stream;
      try {
        await run(stream);
        clearOpenTurn(agent);
      } catch (error) {
        if (abortRef.current.signal.aborted) {
          return;
        }
        const lost = error instanceof StreamLostError || error instanceof NetworkError;
        if (!(lost && stream.turnId)) {
          clearOpenTurn(agent);
        }
        updateTurn(key, (turn) => ({
          ...turn,
          status: lost && stream.turnId ? 'lost' : 'failed',
          reconnecting: false,
          stopping: false,
          error: lost ? 'The connection to Houston was lost.' : describeError(error),
          retryable: true,
        }));
      } finally {
        if (streamRef.current === stream) {
          streamRef.current = null;
        }
      }
    },
    [api, agent, updateTurn],
  );

  const send = useCallback(
    (message: string) => {
      const turn: Turn = { key: randomId(), userText: message, text: '', status: 'sending', tools: [] };
      setTurns((current) => [...current, turn]);
      void follow(turn.key, (stream) => stream.start({ sessionId: sessionRef.current, message, idempotencyKey: randomId() }), turn);
    },
    [follow],
  );

  const resumeTurn = useCallback(
    (turn: Turn, session: string, after: number) => {
      updateTurn(turn.key, () => ({ ...turn, status: 'streaming', error: undefined, reconnecting: true }));
      void follow(turn.key, (stream) => stream.resume(session, turn.turnId ?? '', after), turn);
    },
    [follow, updateTurn],
  );

  const retry = useCallback(
    (turn: Turn) => {
      const session = sessionRef.current;
      if (turn.status === 'lost' && turn.turnId && session) {
        const record = loadOpenTurn(agent);
        if (record?.turnId === turn.turnId) {
          resumeTurn({ ...turn, text: record.text, tools: record.tools }, session, record.lastSeq);
        } else {
          // Without the record the shown text has no known seq, so the turn is replayed whole.
          resumeTurn({ ...turn, text: '', tools: [] }, session, 0);
        }
        return;
      }
      setTurns((current) => current.filter((candidate) => candidate.key !== turn.key));
      send(turn.userText);
    },
    [agent, resumeTurn, send],
  );

  const stop = useCallback(() => {
    const stream = streamRef.current;
    if (!stream) {
      return;
    }
    setTurns((current) => current.map((turn) => (isRunning(turn) ? { ...turn, stopping: true } : turn)));
    stream.cancel().catch((error: unknown) => {
      setTurns((current) =>
        current.map((turn) => (turn.stopping ? { ...turn, stopping: false, error: describeError(error) } : turn)),
      );
    });
  }, []);

  useSessionLoader(api, agent, sessionId, { setTurns, setLoading, setLoadError, streamRef, resumeTurn });

  // Leaving the page stops reading the stream; the turn itself goes on on the server.
  useEffect(() => {
    const controller = new AbortController();
    abortRef.current = controller;
    return () => controller.abort();
  }, []);

  return { turns, loading, loadError, running: turns.some(isRunning), send, stop, retry };
}

interface LoaderHooks {
  setTurns: (turns: Turn[]) => void;
  setLoading: (loading: boolean) => void;
  setLoadError: (error: unknown) => void;
  streamRef: React.RefObject<TurnStream | null>;
  resumeTurn: (turn: Turn, session: string, after: number) => void;
}

/** Loads the session's history when the URL names one, and resumes a turn left open by a reload. */
function useSessionLoader(api: HoustonApi, agent: string, sessionId: string | undefined, hooks: LoaderHooks) {
  const { setTurns, setLoading, setLoadError, streamRef, resumeTurn } = hooks;
  useEffect(() => {
    // A session that this page just created is already on screen and streaming.
    if (streamRef.current && streamRef.current.sessionId === sessionId) {
      return;
    }
    if (!sessionId) {
      setTurns([]);
      return;
    }
    let cancelled = false;
    setLoading(true);
    api
      .session(agent, sessionId)
      .then((detail) => {
        if (cancelled) {
          return;
        }
        const open = loadOpenTurn(agent);
        const resumable = open && open.sessionId === sessionId ? open : null;
        const turns = turnsFromHistory(detail.messages).filter((turn) => turn.turnId !== resumable?.turnId);
        // A turn still running without a local record (started in another tab, or this tab's
        // storage was cleared) is replayed from its first event.
        const running = resumable ? undefined : turns.find((turn) => turn.status === 'streaming');
        if (running) {
          running.text = '';
          setTurns(turns);
          resumeTurn(running, sessionId, 0);
        } else if (resumable) {
          const turn: Turn = {
            key: resumable.turnId,
            turnId: resumable.turnId,
            userText: resumable.userText,
            text: resumable.text,
            tools: resumable.tools,
            coldStartMs: resumable.coldStartMs,
            status: 'streaming',
          };
          setTurns([...turns, turn]);
          resumeTurn(turn, sessionId, resumable.lastSeq);
        } else {
          setTurns(turns);
        }
        setLoadError(null);
      })
      .catch((error: unknown) => !cancelled && setLoadError(error))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, agent, sessionId]);
}
