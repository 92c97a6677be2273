import { getContext, setContext } from 'svelte';
import type { Backend } from './backend';

/** Where components find the backend: the app provides it once, at the top. */
const KEY = Symbol('keyward-backend');

/** Makes `backend` the one every component below uses (called by App). */
export function provideBackend(backend: Backend): void {
  setContext(KEY, backend);
}

/** The backend the app provided. */
export function useBackend(): Backend {
  const backend = getContext<Backend | undefined>(KEY);
  if (!backend) throw new Error('no backend: components run inside App, or a test provides one');
  return backend;
}

/** The context a component test mounts with, so it finds `backend` as it would in the app. */
export function backendContext(backend: Backend): Map<symbol, Backend> {
  return new Map([[KEY, backend]]);
}
