import type { Backend } from './backend';
import { TauriBackend } from './tauri';

export type { Backend } from './backend';
export * from './types';

/**
 * The Tauri backend inside the app. In a plain browser under the dev server (design work), the
 * in-memory test backend instead; a production build has no test backend at all: the
 * `import.meta.env.DEV` branch and its import are dropped from the bundle.
 */
export async function defaultBackend(): Promise<Backend> {
  const inTauri = typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
  if (import.meta.env.DEV && !inTauri) {
    const { TestBackend } = await import('./test');
    return new TestBackend();
  }
  return new TauriBackend();
}
