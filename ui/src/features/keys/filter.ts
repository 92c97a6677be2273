import type { KeyRow, KeyState } from '../../lib/backend';

export interface KeyFilter { text: string; kind: '' | KeyRow['kind']; tag: string; state: '' | KeyState }

/** Keys matching the search text (name, tags, owner, purpose) and the chosen filters. */
export function filterKeys(keys: KeyRow[], f: KeyFilter): KeyRow[] {
  const q = f.text.trim().toLowerCase();
  return keys.filter((k) =>
    (!f.kind || k.kind === f.kind) &&
    (!f.state || k.state === f.state) &&
    (!f.tag || k.tags.includes(f.tag)) &&
    (!q || k.name.toLowerCase().includes(q) || k.tags.some((t) => t.toLowerCase().includes(q)) ||
      (k.owner ?? '').toLowerCase().includes(q) || (k.purpose ?? '').toLowerCase().includes(q)));
}
