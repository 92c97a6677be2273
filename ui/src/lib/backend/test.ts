import type { Backend } from './backend';
import {
  BackendError, type ApprovalInfo, type AuditRow, type AwsRotated, type Decision, type FactorInfo, type Grant,
  type ImportPreview, type KeyRow, type KeyStates, type MetaInput, type OAuth2Config, type OAuth2KeyInput, type AliyunKeyInput, type UsageLine, type LeaseRow, type KeyDetail, type RotateInput,
  type PolicyInfo, type ShowKey, type Status, type Tested, type UnlockFactor,
} from './types';

/**
 * An in-memory Keyward for component tests and for designing in a browser (`vite dev`): a
 * vault that can be created, locked and unlocked (passphrase + the code `validCode`), keys,
 * approvals it can raise, and the growing delay after wrong attempts. It keeps state, and does
 * not check input: what the agent refuses is the core's to decide (a test that needs a refusal
 * makes the call fail with the agent's words, e.g. `vi.spyOn(b, 'addOauth2')`).
 */
export class TestBackend implements Backend {
  validCode = '123456';
  vault = false;
  locked = true;
  passphrase = '';
  failures = 0;
  waitUntil = 0;
  keys: KeyRow[] = [];
  audit: AuditRow[] = [];
  grantList: Grant[] = [];
  pending: ApprovalInfo[] = [];
  decisions: { id: string; decision: Decision }[] = [];
  /** Until when (ms) a factor given in this window lets it reveal and copy, as the agent keeps it. */
  freshUntil = 0;
  /** The access key id each AWS key holds now, as the rotation double hands them out. */
  awsKeyIds: Record<string, string> = {};
  private stateCbs: ((s: { locked: boolean }) => void)[] = [];
  private approvalCbs: ((a: ApprovalInfo) => void)[] = [];
  private showKeyCbs: ((k: ShowKey) => void)[] = [];
  private seq = 0;

  private record(action: string, target: string | null, outcome = 'ok') {
    // Reads as the agent classes them (keyward_agent::activity); the words are the test
    // double's own, the agent's are tested in Rust.
    const reads = ['status', 'list', 'show', 'history', 'factors', 'grants', 'audit.tail', 'audit.verify'];
    this.audit.push({
      seq: ++this.seq, ts: new Date().toISOString(), action, target, outcome,
      // As the agent records the window: the window first, then what started it (the agent).
      actor: { uid: 1000, pid: 2, chain: [{ pid: 2, exe: '/usr/bin/keyward-desktop' }, { pid: 1, exe: '/usr/bin/keyward' }] }, detail: {},
      kind: reads.includes(action) ? 'read' : action === 'unlock' || action === 'lock' ? 'session' : 'change',
      client: '/usr/bin/keyward-desktop',
      summary: `${action}${target ? ` ${target}` : ''}`,
      prev_hash: '00', hash: '00',
    });
  }

  private setLocked(locked: boolean) {
    this.locked = locked;
    for (const cb of this.stateCbs) cb({ locked });
  }

  private needUnlocked() {
    if (this.locked) throw new BackendError('locked', 'the vault is locked: unlock it first');
  }

  async status(): Promise<Status> {
    const wait = Math.max(0, Math.ceil((this.waitUntil - Date.now()) / 1000));
    return {
      agent_version: '0.1.0', agent_pid: 4242, vault: this.vault, locked: this.locked,
      keystore: this.vault ? 'keychain' : null, entries: this.keys.length, auto_lock_secs: this.autoLockSecs,
      locks_in_secs: this.locked ? null : 900, unlock_wait_secs: wait, catalog: '/tmp/catalog.sqlite',
      grants_need_code: this.locked ? null : this.grantsNeedCode,
      reconciled: [], dumpable: false, desktop: true,
      policy: this.policy, keys: this.keyStates(), forwarding: [], audit_head: this.audit.length,
    };
  }

  /** The administrator's policy the agent reports (none unless a test sets one). */
  policy: PolicyInfo = {
    path: '/etc/keyward/policy.toml', sha256: null, since: null, defaults: [], rules: [], refused: null, unusable: false,
  };

  private keyStates(): KeyStates {
    const count = (s: string) => this.keys.filter((k) => k.state === s).length;
    return {
      ok: count('ok'), due_soon: count('due_soon'), overdue: count('overdue'), expired: count('expired'),
      unused: count('unused'),
      attention: this.keys.filter((k) => k.state !== 'ok').map(({ state, reason, rule, blocked, ...meta }) => ({
        meta, standing: { state, reason, rule, blocked },
      })),
    };
  }

  async passphraseCheck(passphrase: string) {
    if (passphrase.length < 12) return { acceptable: false, reason: 'too short: use at least 12 characters (four or more unrelated words work well)' };
    if (/^(.)\1+$/.test(passphrase) || /password/i.test(passphrase)) return { acceptable: false, reason: 'too easy to guess: avoid common words and repeats' };
    return { acceptable: true, reason: null };
  }

  async totpEnrollment() {
    return {
      secret: 'JBSWY3DPEHPK3PXP',
      otpauth_url: 'otpauth://totp/Keyward:vault?secret=JBSWY3DPEHPK3PXP&issuer=Keyward',
      qr_svg: '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><rect width="200" height="200" fill="#fff"/><rect x="20" y="20" width="60" height="60"/></svg>',
    };
  }

  async initVault(passphrase: string, _secret: string, code: string) {
    if (code !== this.validCode) throw new BackendError('wrong_credentials', 'that code does not match: check the time on your phone and type the current code');
    this.vault = true;
    this.passphrase = passphrase;
    this.record('init', null);
    // Like the app: both factors were just given, so the new vault is open.
    this.freshUntil = Date.now() + 60_000;
    this.setLocked(false);
    return { recovery_codes: Array.from({ length: 8 }, (_, i) => `KW${i}AB-CDEF-GHJK-MNPQ-RSTU-VWXY-Z234-5670`) };
  }

  async unlock(passphrase: string, factor: UnlockFactor) {
    if (Date.now() < this.waitUntil) {
      throw new BackendError('throttled', `too many failed attempts: try again in ${Math.ceil((this.waitUntil - Date.now()) / 1000)} s`);
    }
    const ok = passphrase === this.passphrase && (factor.kind === 'recovery' || factor.code === this.validCode);
    if (!ok) {
      this.failures += 1;
      this.waitUntil = Date.now() + 1000 * 2 ** (this.failures - 1);
      this.record('unlock', null, 'failed');
      throw new BackendError('wrong_credentials', 'the passphrase or the second factor is wrong');
    }
    this.failures = 0;
    this.record('unlock', null);
    this.freshUntil = Date.now() + 60_000;
    this.setLocked(false);
    return { recovery_codes_left: factor.kind === 'recovery' ? 7 : null, auto_lock_secs: 900 };
  }

  async lock() {
    this.grantList = [];
    this.freshUntil = 0;
    this.record('lock', null);
    this.setLocked(true);
  }

  async listKeys() {
    this.needUnlocked();
    return [...this.keys];
  }

  private add(row: Partial<KeyRow> & { name: string; kind: KeyRow['kind'] }) {
    if (this.keys.some((k) => k.name === row.name)) throw new BackendError('invalid', `a key named '${row.name}' already exists`);
    this.keys.push({
      id: `id-${row.name}`, owner: null, purpose: null, tags: [], created: new Date().toISOString(),
      rotated: null, rotation_interval_days: null, expires: null, last_used: null, use_count: 0, provider_use: null,
      config: {}, state: 'ok', reason: null, rule: null, blocked: false, ...row,
    });
    this.record('add', row.name);
  }

  async addAws(name: string, meta: Parameters<Backend['addAws']>[1], _aws: Parameters<Backend['addAws']>[2]) {
    this.add({ name, kind: 'aws', owner: meta.owner ?? null, purpose: meta.purpose ?? null, tags: meta.tags });
  }

  async addStatic(name: string, meta: Parameters<Backend['addStatic']>[1], _value: string) {
    this.add({ name, kind: 'static', owner: meta.owner ?? null, purpose: meta.purpose ?? null, tags: meta.tags });
  }

  async addOauth2(name: string, meta: MetaInput, oauth2: OAuth2KeyInput) {
    // Stored as the agent lists it: empty and default fields left out.
    const config: OAuth2Config = { client_id: oauth2.client_id, token_url: oauth2.token_url };
    if (oauth2.scopes.length) config.scopes = [...oauth2.scopes];
    if (oauth2.auth === 'post') config.auth = 'post';
    if (oauth2.introspection_url) config.introspection_url = oauth2.introspection_url;
    this.add({ name, kind: 'oauth2', owner: meta.owner ?? null, purpose: meta.purpose ?? null, tags: meta.tags, config: { oauth2: config } });
  }

  async addAliyun(name: string, meta: MetaInput, aliyun: AliyunKeyInput) {
    const config = { access_key_hint: `${aliyun.access_key_id.slice(0, 4)}…${aliyun.access_key_id.slice(-4)}`, session_duration_secs: aliyun.session_duration_secs ?? 3600, ...(aliyun.role_arn ? { role_arn: aliyun.role_arn } : {}), ...(aliyun.region ? { region: aliyun.region } : {}) };
    this.add({ name, kind: 'aliyun', owner: meta.owner ?? null, purpose: meta.purpose ?? null, tags: meta.tags, config: { aliyun: config } });
  }

  async removeKey(name: string) {
    this.keys = this.keys.filter((k) => k.name !== name);
    this.record('remove', name);
  }

  async testKey(name: string): Promise<Tested> {
    const o = this.keys.find((k) => k.name === name)?.config?.oauth2;
    if (o) {
      return { identity: `client ${o.client_id}`, expiration: new Date(Date.now() + 3600e3).toISOString(), scope: o.scopes?.length ? o.scopes.join(' ') : null };
    }
    return { identity: `arn:aws:sts::123456789012:assumed-role/deploy/keyward-${name}`, expiration: new Date(Date.now() + 3600e3).toISOString(), scope: null };
  }

  async activity(limit: number) {
    return this.audit.slice(-limit);
  }

  factorList: FactorInfo[] = [
    { id: 'f1', kind: 'totp', label: 'authenticator app', created: '2026-11-01T10:00:00Z' },
    ...Array.from({ length: 8 }, (_, i): FactorInfo => ({ id: `r${i}`, kind: 'recovery', label: `recovery code ${i + 1}`, created: '2026-11-01T10:00:00Z' })),
  ];
  autoLockSecs = 900;
  secrets: Record<string, string> = {};
  copied: string[] = [];
  /** Profiles `importAwsPreview` finds. */
  importable: ImportPreview = { path: '/home/me/.aws/credentials', candidates: [] };
  /** Whether a security key is "plugged in". */
  securityKey = true;

  async factors() {
    return [...this.factorList];
  }

  private find(name: string) {
    const k = this.keys.find((x) => x.name === name);
    if (!k) throw new BackendError('not_found', `no key named '${name}'`);
    return k;
  }

  async keyDetail(name: string): Promise<KeyDetail> {
    this.needUnlocked();
    const key = this.find(name);
    // A stand-in for the lines the app works out in Rust (keyward_shell::usage): one per kind.
    const usage: UsageLine[] = [{ tool: 'exec', line: `keyward exec ${key.kind}:${name} -- COMMAND`, note: 'for one command' }];
    return { key: { ...key }, history: this.audit.filter((r) => r.target === name), uses: { lease: null, bindings: [] }, usage };
  }

  async updateKey(name: string, meta: MetaInput) {
    const k = this.find(name);
    Object.assign(k, { owner: meta.owner ?? null, purpose: meta.purpose ?? null, tags: meta.tags, rotation_interval_days: meta.rotation_interval_days ?? null, expires: meta.expires ?? null });
    this.record('update', name);
    return { ...k };
  }

  async rotateKey(name: string, secret: RotateInput) {
    const k = this.find(name);
    this.secrets[name] = secret.kind === 'aws' ? secret.secret_access_key : secret.kind === 'oauth2' ? secret.client_secret : secret.kind === 'aliyun' ? secret.access_key_secret : secret.value;
    k.rotated = new Date().toISOString();
    this.record('rotate', name);
    return { ...k };
  }

  /** As the agent does: a new key id, the old one inactive for the grace (a day unless given). */
  async rotateAws(name: string, graceSecs?: number): Promise<AwsRotated> {
    this.needUnlocked();
    const k = this.find(name);
    if (k.kind !== 'aws') {
      throw new BackendError('invalid', `'${name}' is a ${k.kind} key: only AWS keys are rotated at their provider; store its new value with \`keyward rotate ${name} --manual\``);
    }
    const old = this.awsKeyIds[name] ?? 'AKIAOLDEXAMPLE01';
    const fresh = `AKIANEW${String(++this.seq).padStart(6, '0')}`;
    this.awsKeyIds[name] = fresh;
    k.rotated = new Date().toISOString();
    k.provider_use = null;
    if (k.config?.aws) k.config.aws.access_key_hint = `AKIA…${fresh.slice(-4)}`;
    this.record('rotate.aws', name);
    const grace = graceSecs ?? 86400;
    return {
      name, user_name: 'deployer', old_key_id: old, new_key_id: fresh, old_deleted: grace === 0,
      delete_after: grace === 0 ? null : new Date(Date.now() + grace * 1000).toISOString(), notes: [],
    };
  }

  private needFresh() {
    if (Date.now() >= this.freshUntil) {
      throw new BackendError('factor_needed', 'enter a current code from your authenticator app to reveal or copy a stored key');
    }
  }

  async confirmFactor(code: string) {
    this.needUnlocked();
    if (code !== this.validCode) {
      this.record('factor.check', null, 'failed');
      throw new BackendError('wrong_credentials', 'that code does not match your authenticator app (1 failed attempt(s) in a row)');
    }
    this.record('factor.check', null);
    this.freshUntil = Date.now() + 60_000;
  }

  async revealKey(name: string) {
    this.needUnlocked();
    this.needFresh();
    this.find(name);
    this.record('reveal', name);
    return { value: this.secrets[name] ?? 'secret-value', hide_after_secs: 30 };
  }

  async copyKey(name: string) {
    this.needUnlocked();
    this.needFresh();
    this.find(name);
    this.copied.push(name);
    this.record('reveal', name);
    return 30;
  }

  usageCopied: [string, number][] = [];
  /** What `leases` answers (the app finds them in the audit trail). */
  leasesOut: LeaseRow[] = [];

  async leases() {
    this.needUnlocked();
    return [...this.leasesOut];
  }

  async copyUsage(name: string, index: number) {
    this.find(name);
    this.usageCopied.push([name, index]);
  }

  async importAwsPreview() {
    return this.importable;
  }

  async importAws(names: string[], removePlaintext: boolean) {
    for (const name of names) this.add({ name, kind: 'aws' });
    return { imported: names, skipped: [], config: '/home/me/.aws/config', config_problem: null, warnings: [], removed_plaintext: removePlaintext, backup: removePlaintext ? '/home/me/.aws/credentials.keyward-backup-1' : null };
  }

  async enrollSecurityKey(passphrase: string, label: string) {
    this.needUnlocked();
    if (passphrase !== this.passphrase) throw new BackendError('wrong_credentials', 'the passphrase is wrong');
    if (!this.securityKey) throw new BackendError('invalid', 'no security key found: plug one in');
    const f: FactorInfo = { id: `k${this.factorList.length}`, kind: 'fido2', label, created: new Date().toISOString() };
    this.factorList.push(f);
    return f;
  }

  async unlockWithSecurityKey(passphrase: string) {
    if (!this.factorList.some((f) => f.kind === 'fido2')) throw new BackendError('invalid', 'this vault has no security key enrolled');
    return this.unlock(passphrase, { kind: 'recovery', code: 'key' }).then((r) => ({ ...r, recovery_codes_left: null }));
  }

  async addTotp(passphrase: string, _secret: string, code: string, label: string) {
    this.needUnlocked();
    if (passphrase !== this.passphrase || code !== this.validCode) throw new BackendError('wrong_credentials', 'the passphrase or the code is wrong');
    const f: FactorInfo = { id: `t${this.factorList.length}`, kind: 'totp', label, created: new Date().toISOString() };
    this.factorList.push(f);
    return f;
  }

  async removeFactor(id: string) {
    const f = this.factorList.find((x) => x.id === id);
    if (f?.kind === 'totp' && this.factorList.filter((x) => x.kind === 'totp').length === 1) {
      throw new BackendError('invalid', 'cannot remove the last second factor: enroll another one first');
    }
    this.factorList = this.factorList.filter((x) => x.id !== id);
  }

  async newRecoveryCodes(passphrase: string) {
    this.needUnlocked();
    if (passphrase !== this.passphrase) throw new BackendError('wrong_credentials', 'the passphrase is wrong');
    return Array.from({ length: 8 }, (_, i) => `NEW${i}-CDEF-GHJK-MNPQ-RSTU-VWXY-Z234-5670`);
  }

  grantsNeedCode = false;

  async setGrantsNeedCode(on: boolean, code?: string) {
    this.needUnlocked();
    if (!on && code === undefined) throw new BackendError('factor_needed', 'turning this off needs a current code from your authenticator app');
    if (!on && code !== this.validCode) throw new BackendError('wrong_credentials', 'that code does not match your authenticator app (1 failed attempt(s) in a row)');
    this.grantsNeedCode = on;
    this.record('settings.grants_need_code', null);
  }

  async setAutoLock(secs: number) {
    if (secs < 60 || secs > 86400) throw new BackendError('invalid', 'auto-lock must be between 1 minute and 24 hours');
    this.autoLockSecs = secs;
  }

  async grants() {
    return [...this.grantList];
  }

  async revokeGrant(id: string) {
    this.grantList = this.grantList.filter((g) => g.id !== id);
  }

  async decideApproval(id: string, decision: Decision, code?: string) {
    const a = this.pending.find((p) => p.id === id);
    if (!a) throw new BackendError('invalid', 'no such approval request (it may have expired): ask again');
    if (decision !== 'once' && decision !== 'deny' && this.grantsNeedCode) {
      if (code === undefined) throw new BackendError('factor_needed', 'allowing a program for hours or until lock needs a current code from your authenticator app (the vault\'s setting); allow it once instead, or give the code');
      if (code !== this.validCode) throw new BackendError('wrong_credentials', 'that code does not match your authenticator app (1 failed attempt(s) in a row)');
    }
    this.pending = this.pending.filter((p) => p.id !== id);
    this.decisions.push({ id, decision });
    if (decision !== 'once' && decision !== 'deny') {
      this.grantList.push({
        id: `g-${id}`, client: a.client, profile: a.profile, granted: new Date().toISOString(),
        expires: decision === 'until_lock' ? null : new Date(Date.now() + decision.hours * 3600e3).toISOString(),
      });
    }
  }

  async pendingApprovals() {
    return [...this.pending];
  }

  closed = false;

  async closeWindow() {
    this.closed = true;
  }

  /** Simulates a tool asking for credentials. */
  raiseApproval(a: ApprovalInfo) {
    a = { ...a, standing_needs_code: this.grantsNeedCode };
    this.pending.push(a);
    for (const cb of this.approvalCbs) cb(a);
  }

  async onVaultState(cb: (s: { locked: boolean }) => void) {
    this.stateCbs.push(cb);
    return () => { this.stateCbs = this.stateCbs.filter((c) => c !== cb); };
  }

  /** As the desktop agent does when the user acts on a notification about `name`. */
  showKey(name: string, rotate: boolean) {
    for (const cb of this.showKeyCbs) cb({ name, rotate });
  }

  async onShowKey(cb: (k: ShowKey) => void) {
    this.showKeyCbs.push(cb);
    return () => { this.showKeyCbs = this.showKeyCbs.filter((c) => c !== cb); };
  }

  async onApprovalRequested(cb: (a: ApprovalInfo) => void) {
    this.approvalCbs.push(cb);
    return () => { this.approvalCbs = this.approvalCbs.filter((c) => c !== cb); };
  }
}
