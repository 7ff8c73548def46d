import { useCallback, useEffect, useState } from 'react';
import { describeError } from '../api/http';
import { useApp } from '../app/context';

/** Loads one admin resource for the current workspace, with a reload and an error message. */
export function useAdminData<T>(load: (workspaceId: string) => Promise<T>, deps: unknown[] = []) {
  const { workspace } = useApp();
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const workspaceId = workspace?.id;

  const reload = useCallback(async () => {
    if (!workspaceId) {
      return;
    }
    try {
      setData(await load(workspaceId));
      setError(null);
    } catch (failure) {
      setError(describeError(failure));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [workspaceId, ...deps]);

  useEffect(() => {
    void reload();
  }, [reload]);
  return { data, error, reload, workspaceId: workspaceId ?? '' };
}

/** Runs an admin action and turns a failure into a message. */
export function useAction() {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      return true;
    } catch (failure) {
      setError(describeError(failure));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { error, busy, run };
}
