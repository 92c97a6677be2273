import type { Backend } from './backend';
import { TauriBackend } from './tauri';
import { TestBackend } from './test';

export type { Backend } from './backend';
export * from './types';
export { TestBackend } from './test';

/** The Tauri backend inside the app; the in-memory one in a plain browser (design work). */
export function defaultBackend(): Backend {
  const inTauri = typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
  return inTauri ? new TauriBackend() : new TestBackend();
}
