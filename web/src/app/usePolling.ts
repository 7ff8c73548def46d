import { useEffect, useRef } from 'react';

/**
 * Runs `load` now, every `intervalMs` while the page is visible, and whenever the window gets
 * focus back, so lists pick up changes made elsewhere (a new grant, for example).
 */
export function usePolling(load: () => void | Promise<void>, intervalMs: number, deps: unknown[]) {
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const run = () => {
      if (document.visibilityState === 'visible') {
        void loadRef.current();
      }
    };
    run();
    const timer = setInterval(run, intervalMs);
    window.addEventListener('focus', run);
    document.addEventListener('visibilitychange', run);
    return () => {
      clearInterval(timer);
      window.removeEventListener('focus', run);
      document.removeEventListener('visibilitychange', run);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [intervalMs, ...deps]);
}
