/** "3 min ago", "2 days ago", or "never". */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(s)) return 'unknown';
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

/** "1 h", "15 min". */
export function duration(secs: number): string {
  if (secs >= 3600 && secs % 3600 === 0) return `${secs / 3600} h`;
  if (secs >= 60) return `${Math.ceil(secs / 60)} min`;
  return `${secs} s`;
}

export const stateLabel: Record<string, string> = {
  ok: 'OK', due_soon: 'Due soon', overdue: 'Overdue', expired: 'Expired',
};

/** The program a grant or request names, the way people recognise it. */
export function programName(c: { exe: string; script?: string }): string {
  return c.script ? `${c.script} (${c.exe.split('/').pop()})` : c.exe;
}
