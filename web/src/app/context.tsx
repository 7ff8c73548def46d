// App-wide state: the signed-in user, their workspaces, the workspace in use, and the API.

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { AuthStore } from '../api/auth';
import { HoustonApi } from '../api/endpoints';
import { ApiClient } from '../api/http';
import type { Me, Workspace } from '../api/types';

const WORKSPACE_KEY = 'houston.workspace';

export interface AppState {
  auth: AuthStore;
  api: HoustonApi;
  signedIn: boolean;
  me: Me | null;
  /** The workspace picked in the switcher; the first one until the user picks another. */
  workspace: Workspace | null;
  selectWorkspace: (id: string) => void;
  reloadMe: () => Promise<void>;
  meError: unknown;
}

const AppContext = createContext<AppState | null>(null);

const auth = new AuthStore('');
const api = new HoustonApi(new ApiClient('', auth));

export function AppProvider({ children }: { children: ReactNode }) {
  const [signedIn, setSignedIn] = useState(auth.signedIn);
  const [me, setMe] = useState<Me | null>(null);
  const [meError, setMeError] = useState<unknown>(null);
  const [workspaceId, setWorkspaceId] = useState<string | null>(() =>
    localStorage.getItem(WORKSPACE_KEY),
  );

  useEffect(() => auth.subscribe(setSignedIn), []);

  const reloadMe = useCallback(async () => {
    try {
      setMe(await api.me());
      setMeError(null);
    } catch (error) {
      setMeError(error);
    }
  }, []);

  useEffect(() => {
    if (signedIn) {
      void reloadMe();
    } else {
      setMe(null);
    }
  }, [signedIn, reloadMe]);

  const selectWorkspace = useCallback((id: string) => {
    localStorage.setItem(WORKSPACE_KEY, id);
    setWorkspaceId(id);
  }, []);

  const workspace = useMemo(() => {
    const workspaces = me?.workspaces ?? [];
    return workspaces.find((candidate) => candidate.id === workspaceId) ?? workspaces[0] ?? null;
  }, [me, workspaceId]);

  const value = useMemo(
    () => ({ auth, api, signedIn, me, workspace, selectWorkspace, reloadMe, meError }),
    [signedIn, me, workspace, selectWorkspace, reloadMe, meError],
  );
  return <AppContext.Provider value={value}>{children}</AppContext.Provider>;
}

export function useApp(): AppState {
  const state = useContext(AppContext);
  if (!state) {
    throw new Error('useApp must be used inside AppProvider');
  }
  return state;
}

/** True for the roles that may open the admin pages. */
export function canAdminister(workspace: Workspace | null): boolean {
  return workspace?.role === 'owner' || workspace?.role === 'admin';
}
