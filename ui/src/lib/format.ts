import type { Actor, AwsRotated, KeyKind, ProviderUse, Tested } from './backend/types';

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

/**
 * What AWS says of a key's last use, in one line: "3 days ago (s3, eu-west-1)", "nothing but
 * Keyward's own checks", or why asking failed. `checked` is said apart (the screen's title).
 */
export function providerUseText(p: ProviderUse | null | undefined, now = Date.now()): string {
  if (!p) return 'not asked yet (Keyward asks AWS once a day)';
  const how = [p.service, p.region].filter(Boolean).join(', ');
  const seen = p.used ? `${ago(p.used, now)}${how ? ` (${how})` : ''}` : p.error ? 'not known' : "nothing on record but Keyward's own checks";
  return p.error ? `${seen}; asking failed: ${p.error}` : seen;
}

/** What a rotation at AWS did, in the words `keyward rotate` prints. */
export function rotatedText(r: AwsRotated): string {
  const parts = r.notes.map((n) => `Before rotating: ${n}.`);
  parts.push(`Rotated at AWS (IAM user ${r.user_name}): ${r.new_key_id} is stored and works.`);
  if (r.old_deleted) parts.push(`The old key ${r.old_key_id} is deleted.`);
  else if (r.delete_after) parts.push(`The old key ${r.old_key_id} is inactive and will be deleted after ${new Date(r.delete_after).toLocaleString()}.`);
  else parts.push(`The old key ${r.old_key_id} is inactive.`);
  return parts.join(' ');
}

/** "1 h", "15 min". */
export function duration(secs: number): string {
  if (secs >= 3600 && secs % 3600 === 0) return `${secs / 3600} h`;
  if (secs >= 60) return `${Math.ceil(secs / 60)} min`;
  return `${secs} s`;
}

export const stateLabel: Record<string, string> = {
  ok: 'OK', due_soon: 'Due soon', overdue: 'Overdue', expired: 'Expired', unused: 'Unused',
};

/** The program a grant or request names, the way people recognise it. */
export function programName(c: { exe: string; script?: string | null }): string {
  return c.script ? `${c.script} (${c.exe.split('/').pop()})` : c.exe;
}

/** What kind of key a row is, in a word or two. */
export const kindLabel: Record<KeyKind, string> = {
  aws: 'AWS',
  static: 'Token',
  oauth2: 'OAuth2',
  aliyun: 'Alibaba Cloud',
};

/**
 * A successful Test in one line: "Works: arn:…, session until 14:05:00" for AWS, "Works: client
 * ci-bot · scope deploy:read · token until 14:05:00" for OAuth2 (the server may say neither the
 * scope nor when the token ends).
 */
export function testedText(kind: KeyKind, t: Tested): string {
  const ends = t.expiration && !Number.isNaN(Date.parse(t.expiration)) ? new Date(t.expiration).toLocaleTimeString() : null;
  if (kind === 'oauth2') {
    const parts = [`Works: ${t.identity}`];
    if (t.scope) parts.push(`scope ${t.scope}`);
    parts.push(ends ? `token until ${ends}` : 'expiry not stated by the server');
    return parts.join(' · ');
  }
  return ends ? `Works: ${t.identity}, session until ${ends}` : `Works: ${t.identity}`;
}

/**
 * The program behind an audit record (its `actor`): the one that ran the `keyward` command
 * (`keyward cred aws` run by `aws` is aws's request), else the peer itself (the Keyward window, a
 * program on the socket).
 */
export function recordClient(actor: Pick<Actor, 'chain'>): { exe: string; script?: string } | null {
  const chain = actor.chain ?? [];
  const viaCli = chain.length > 1 && chain[0].exe?.split('/').pop() === 'keyward';
  const p = viaCli ? chain[1] : chain[0];
  return p ? { exe: p.exe ?? '?', ...(p.script ? { script: p.script } : {}) } : null;
}
