// A key as the Keys screen gets it, for component tests: every field at its quiet default.
import type { KeyRow } from './types';

export function keyRow(name: string, extra: Partial<KeyRow> = {}): KeyRow {
  return {
    id: `id-${name}`, name, kind: 'static', owner: null, purpose: null, tags: [],
    created: '2026-01-01T00:00:00Z', rotated: null, rotation_interval_days: null, expires: null,
    last_used: null, use_count: 0, provider_use: null, config: {}, state: 'ok', reason: null, rule: null, blocked: false, ...extra,
  };
}
