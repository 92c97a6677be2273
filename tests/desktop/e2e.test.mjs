// The real Keyward app, driven through WebDriver (tauri-driver → WebKitWebDriver) under Xvfb,
// with the real agent it starts (`keyward agent --tray`, which owns the tray icon), a real
// gnome-keyring, moto as STS, and the real `keyward` CLI asking for credentials as a separate
// process. Started by tests/desktop/run, which sets up
// every component and these variables.

import { execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { remote } from 'webdriverio';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run tests/desktop/run`);
  return v;
};
const APP = env('KEYWARD_DESKTOP_BIN');
const CLI = env('KEYWARD_BIN');
const SHOTS = env('KEYWARD_SCREENSHOTS');
const MOTO = JSON.parse(env('KEYWARD_MOTO'));
/** An IAM user's access keys at moto, as an administrator lists them (never through Keyward). */
const iamKeys = (user) => JSON.parse(execFileSync(env('KEYWARD_E2E_PYTHON'), [env('KEYWARD_E2E_IAM_KEYS'), MOTO.endpoint, 'list', user], {
  encoding: 'utf8', env: { ...process.env, AWS_ACCESS_KEY_ID: MOTO.auditor_key_id, AWS_SECRET_ACCESS_KEY: MOTO.auditor_secret },
}));
const PASS = 'orbit-maple-quartz-lantern-7';
const HOME = env('HOME');
mkdirSync(SHOTS, { recursive: true });

/** RFC 6238 code for `secret` (base32) at time step `step`, as an authenticator app computes it. */
function totp(secret, step) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', key).update(msg).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
}
const stepNow = () => Math.floor(Date.now() / 30000);
// The latest TOTP step the vault accepted: each code is taken once, so the next must be later.
let lastStep = 0;
/** A code the vault has not seen: this step's, or the next one's (waiting for it if needed). */
async function freshCode() {
  while (lastStep + 1 > stepNow() + 1) await new Promise((r) => setTimeout(r, 1000));
  lastStep = Math.max(stepNow(), lastStep + 1);
  return totp(secret, lastStep);
}
let unlockedAt = 0;

// A shell script that runs the CLI: the client is then `sh ask-keyward.sh`, another program
// than this test's node, and one a grant can name (a shell running `-c` code is only ever
// allowed once). `exit` keeps the shell from handing its process over to keyward.
const ASK = join(HOME, 'ask-keyward.sh');
function askScript() {
  mkdirSync(HOME, { recursive: true });
  writeFileSync(ASK, `"${CLI}" "$@"\nexit $?\n`, { mode: 0o755 });
  return ASK;
}

/** Runs the keyward CLI as its own process (no terminal), like a tool's credential_process. */
function keyward(args, { via } = {}) {
  return new Promise((resolve) => {
    const [cmd, argv] = via ? [via, [askScript(), ...args]] : [CLI, args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Pids of running app processes (the window). */
function appPids() {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readlinkSync(`/proc/${p}/exe`) === APP && alive(p); } catch { return false; }
  });
}

/** Clicks an item of the tray icon's menu, as a panel does: com.canonical.dbusmenu over D-Bus. */
function trayClick(agentPid, label) {
  const dest = `org.kde.StatusNotifierItem-${agentPid}-1`;
  const gdbus = (...args) => execFileSync('gdbus', ['call', '--session', '--dest', dest, '--object-path', '/MenuBar', ...args], { encoding: 'utf8', timeout: 10000 });
  // `--` ends gdbus's options: the -1 below is an argument (the whole menu depth).
  const layout = gdbus('--method', 'com.canonical.dbusmenu.GetLayout', '--', '0', '-1', '[]');
  const item = new RegExp(`\\((\\d+), \\{[^}]*'label': <'${label}'>`).exec(layout);
  assert.ok(item, `the tray menu has "${label}": ${layout}`);
  gdbus('--method', 'com.canonical.dbusmenu.Event', '--', item[1], 'clicked', '<0>', '0');
}

/** The tray icon's tooltip (its StatusNotifierItem property, as a panel reads it). */
function trayToolTip(agentPid) {
  return execFileSync('gdbus', ['call', '--session', '--dest', `org.kde.StatusNotifierItem-${agentPid}-1`, '--object-path', '/StatusNotifierItem',
    '--method', 'org.freedesktop.DBus.Properties.Get', 'org.kde.StatusNotifierItem', 'ToolTip'], { encoding: 'utf8', timeout: 10000 });
}

/** Runs the CLI answering its prompts with `lines` (on --input-fd 0). */
function keywardInput(args, lines) {
  return new Promise((resolve) => {
    const child = spawn(CLI, ['--input-fd', '0', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(lines.map((l) => `${l}\n`).join(''));
  });
}

/** Whether a process runs (an exited one may linger as a zombie until its parent reaps it). */
function alive(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z';
  } catch {
    return false;
  }
}

/** The OAuth2 test server (oidc-provider, tests/oauth/server.mjs) with `clients`; resolves to its
 * addresses and a stop function. */
function oauthServer(clients) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, '../oauth/server.mjs')], { stdio: ['pipe', 'pipe', 'ignore'] });
    child.on('error', reject);
    child.stdin.write(`${JSON.stringify({ clients })}\n`);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return;
      resolve({ ...JSON.parse(out.split('\n')[0]), stop: () => child.kill() });
    });
  });
}

let browser;
const $t = (id) => browser.$(`[data-testid="${id}"]`);
const shot = (name) => browser.saveScreenshot(join(SHOTS, `${name}.png`));
async function type(id, text) {
  const el = await $t(id);
  await el.waitForDisplayed({ timeout: 15000 });
  await el.setValue(text);
}
async function click(id) {
  const el = await $t(id);
  await el.waitForClickable({ timeout: 15000 });
  await el.click();
}

let headlessPid;

before(async () => {
  // A headless agent is already running when the app starts: the app must take over from it.
  const started = await keyward(['agent', 'start']);
  assert.equal(started.code, 0, started.err);
  headlessPid = JSON.parse((await keyward(['status', '--json'])).out).agent_pid;
  browser = await remote({
    hostname: '127.0.0.1',
    port: 4444,
    logLevel: 'warn',
    connectionRetryTimeout: 30000,
    capabilities: { 'wdio:enforceWebDriverClassic': true, 'tauri:options': { application: APP } },
  });
});

after(async () => {
  await browser?.deleteSession().catch(() => {});
  // Whatever failed, no agent (and so no window) outlives the run.
  await keyward(['agent', 'stop']).catch(() => {});
});

let secret;

test('first run: passphrase, authenticator app, recovery codes', async () => {
  await (await $t('first-run')).waitForDisplayed({ timeout: 20000 });
  const status = JSON.parse((await keyward(['status', '--json'])).out);
  assert.notEqual(status.agent_pid, headlessPid, 'the app started its own agent');
  assert.equal(status.desktop, true, "the app's agent is the desktop one (tray icon)");
  assert.ok(!alive(headlessPid), 'the headless agent stopped for the app');
  // The window holds typed passphrases and revealed secrets: no core dumps, like the agent.
  const [win] = appPids();
  assert.match(readFileSync(`/proc/${win}/limits`, 'utf8'), /Max core file size\s+0\s+0\s/);
  await shot('01-first-run');
  await type('new-passphrase', 'weak');
  await browser.waitUntil(async () => /too weak/i.test(await (await $t('strength')).getText()), { timeout: 5000 });
  assert.equal(await (await $t('passphrase-continue')).isEnabled(), false, 'a weak passphrase cannot continue');
  await (await $t('new-passphrase')).setValue(PASS);
  await type('confirm-passphrase', PASS);
  await click('passphrase-continue');
  secret = (await (await $t('totp-secret')).getText()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await shot('02-enrol-totp');
  lastStep = stepNow();
  await type('totp-code', totp(secret, lastStep));
  await click('create-vault');
  const codes = await $t('recovery-codes');
  await codes.waitForDisplayed({ timeout: 30000 });
  assert.equal((await codes.$$('li')).length >= 8, true);
  await shot('03-recovery-codes');
  await click('codes-saved');
  await click('codes-done');
  // The optional security key (the test build's software authenticator stands in for a touch).
  await type('key-label', 'soft key');
  await type('key-passphrase', PASS);
  await shot('03b-first-run-security-key');
  await click('key-enroll');
  await (await $t('first-run-key-added')).waitForDisplayed({ timeout: 20000 });
  await click('first-run-finish');
  await (await $t('keys-empty')).waitForDisplayed({ timeout: 15000 });
  const factors = JSON.parse((await keyward(['factor', 'list', '--json'])).out);
  assert.ok(JSON.stringify(factors).includes('soft key'), 'the key is enrolled in the vault');
});

test('unlock with passphrase and the next code', async () => {
  await click('lock');
  await (await $t('unlock-screen')).waitForDisplayed({ timeout: 15000 });
  await shot('04-unlock');
  await type('passphrase', PASS);
  await type('code', await freshCode()); // the enrolment code may not be used twice
  await click('unlock-submit');
  await (await $t('nav-keys')).waitForDisplayed({ timeout: 20000 });
  // Once the unlock is done, not when it was asked for: the agent's minute of a fresh factor
  // starts when the passphrase has been stretched (a second or more), and the reveal test
  // below must come after that minute.
  unlockedAt = Date.now();
  // An unlock opens on the Overview: what needs action (nothing yet).
  await (await $t('overview')).waitForDisplayed({ timeout: 10000 });
  assert.match(await (await $t('overview')).getText(), /No keys yet/);
  await shot('04b-overview-empty');
  await click('nav-keys');
  await (await $t('keys-empty')).waitForDisplayed();
  await shot('05-keys-empty');
  const status = await keyward(['status', '--json']);
  assert.equal(JSON.parse(status.out).locked, false, 'the CLI sees the app\'s agent unlocked');
});

test('add an AWS key', async () => {
  await click('add-key');
  await type('add-name', 'deploy');
  await type('add-access-key-id', MOTO.access_key_id);
  await type('add-secret', MOTO.secret_access_key);
  await type('add-role-arn', MOTO.role_arn);
  await type('add-sts-endpoint', MOTO.endpoint);
  await type('add-iam-endpoint', MOTO.endpoint);
  await shot('06-add-key');
  await click('add-submit');
  await browser.waitUntil(async () => (await browser.$$('[data-testid="key-row"]')).length === 1, { timeout: 15000 });
  await shot('07-keys');
  assert.match(await (await $t('key-row')).getProperty('textContent'), /deploy/);
});

test('a CLI asking for credentials gets them after "Allow for 1 hour"', async () => {
  const pending = keyward(['cred', 'aws', '--profile', 'deploy']);
  const dialog = await $t('approval-dialog');
  await dialog.waitForDisplayed({ timeout: 20000 });
  assert.match(await (await $t('approval-profile')).getText(), /deploy/);
  assert.match(await (await $t('approval-chain')).getText(), /keyward/);
  await shot('08-approval');
  await click('approve-hours');
  const res = await pending;
  assert.equal(res.code, 0, res.err);
  const creds = JSON.parse(res.out);
  assert.equal(creds.Version, 1);
  assert.match(creds.AccessKeyId, /^ASIA/, 'temporary credentials');
  assert.notEqual(creds.AccessKeyId, MOTO.access_key_id);
  // Granted for an hour: the same program asks again without a dialog.
  const again = await keyward(['cred', 'aws', '--profile', 'deploy']);
  assert.equal(again.code, 0, again.err);
});

test('another program is denied when the user says so', async () => {
  const pending = keyward(['cred', 'aws', '--profile', 'deploy'], { via: '/bin/sh' });
  await (await $t('approval-dialog')).waitForDisplayed({ timeout: 20000 });
  await click('approve-deny');
  const res = await pending;
  assert.notEqual(res.code, 0);
  assert.match(res.err, /denied/);
  assert.equal(res.out, '');
});

test('key detail: edit, reveal, copy with clipboard clear, replace the secret, history', async () => {
  await click('nav-keys');
  await click('open-key');
  await (await $t('key-detail')).waitForDisplayed({ timeout: 10000 });
  await (await $t('edit-owner')).setValue('platform-team');
  await (await $t('edit-tags')).setValue('ci, prod');
  await (await $t('edit-rotate')).setValue('90');
  await click('edit-save');
  await browser.waitUntil(async () => /Saved/.test(await (await $t('detail-notice')).getText()), { timeout: 10000 });
  const shown = JSON.parse((await keyward(['show', 'deploy', '--json'])).out);
  assert.equal(shown.owner, 'platform-team');
  assert.deepEqual(shown.tags, ['ci', 'prod']);
  assert.equal(shown.rotation_interval_days, 90);

  // The secret reaches the page only on Reveal, and a minute after the unlock only with a
  // current code: a window left open (or driven by another program) cannot show it.
  assert.ok(!(await (await browser.$('main')).getText()).includes(MOTO.secret_access_key));
  while (Date.now() < unlockedAt + 61000) await new Promise((r) => setTimeout(r, 1000));
  await click('reveal');
  await (await $t('factor-dialog')).waitForDisplayed({ timeout: 10000 });
  assert.match(await (await $t('factor-dialog')).getText(), /To reveal the stored secret, enter the current code/);
  const step = stepNow();
  const valid = [step - 1, step, step + 1].map((s) => totp(secret, s));
  await type('factor-code', ['000000', '111111'].find((c) => !valid.includes(c)));
  await click('factor-confirm');
  await browser.waitUntil(async () => /does not match your authenticator app/.test(await (await $t('factor-error')).getText()), { timeout: 10000, timeoutMsg: 'a wrong code is refused' });
  assert.ok(!(await (await browser.$('main')).getText()).includes(MOTO.secret_access_key), 'nothing shown for a wrong code');
  await (await $t('factor-code')).setValue(await freshCode());
  await (await $t('factor-confirm')).waitForEnabled({ timeout: 10000 });
  await shot('11b-reveal-asks-for-a-code');
  await click('factor-confirm');
  await (await $t('revealed')).waitForDisplayed({ timeout: 10000 });
  assert.equal((await (await $t('revealed')).getText()).trim(), MOTO.secret_access_key);
  await click('reveal'); // Hide
  assert.ok(!(await (await browser.$('main')).getText()).includes(MOTO.secret_access_key));

  // Copy happens in Rust (within the minute after the code: no question); the clipboard
  // holds the secret, then is cleared after 30 s.
  await click('copy');
  await browser.waitUntil(async () => /cleared in 30 s/.test(await (await $t('detail-notice')).getText()), { timeout: 10000 });
  const clip = () => { try { return execFileSync('xclip', ['-o', '-selection', 'clipboard'], { timeout: 5000 }).toString(); } catch { return ''; } };
  assert.equal(clip(), MOTO.secret_access_key, 'the clipboard holds the secret');
  assert.ok(!(await (await browser.$('main')).getText()).includes(MOTO.secret_access_key), 'not via the page');
  assert.equal((await browser.$$('[data-testid="factor-dialog"]')).length, 0, 'Copy right after the code asks nothing');

  // Replace the secret (the same pair here: moto has one key for this user).
  await click('rotate');
  await type('rotate-id', MOTO.access_key_id);
  await type('rotate-secret', MOTO.secret_access_key);
  await click('rotate-save');
  await browser.waitUntil(async () => !/never/.test(await (await $t('detail-rotated')).getText()), { timeout: 10000 });
  await click('detail-test');
  await browser.waitUntil(async () => /Works: arn:aws:sts::/.test(await (await $t('detail-notice')).getText()), { timeout: 20000 });
  await browser.waitUntil(async () => {
    const rows = await browser.$$('[data-testid="history-row"]');
    const actions = [];
    for (let i = 0; i < rows.length; i++) actions.push(await rows[i].getAttribute('data-action'));
    return ['add', 'update', 'reveal', 'rotate', 'issue'].every((a) => actions.includes(a));
  }, { timeout: 10000, timeoutMsg: 'history shows add, update, reveal, rotate and issue' });
  await shot('12-key-detail');

  const deadline = Date.now() + 40000;
  while (clip() === MOTO.secret_access_key && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
  assert.notEqual(clip(), MOTO.secret_access_key, 'the clipboard was cleared after 30 s');
  await click('detail-back');
});

test('import from ~/.aws/credentials, with the plaintext clean-up', async () => {
  const aws = join(HOME, '.aws');
  mkdirSync(aws, { recursive: true });
  const creds = join(aws, 'credentials');
  writeFileSync(creds, [
    '# kept: a comment', '[legacy]', `aws_access_key_id = ${MOTO.access_key_id}`, `aws_secret_access_key = ${MOTO.secret_access_key}`, 'region = eu-west-1', '',
    '[temp]', 'aws_access_key_id = ASIAEXAMPLEEXAMPLE01', 'aws_secret_access_key = abcdefghijabcdefghijabcdefghijabcdefghij', 'aws_session_token = tok', '',
  ].join('\n'), { mode: 0o600 });
  // An old key left in the config file too: the AWS CLI would still use it, so the app says so
  // (as `keyward import aws` does).
  writeFileSync(join(aws, 'config'), ['[profile legacy]', 'aws_session_token = old', ''].join('\n'), { mode: 0o600 });
  await click('import-aws');
  await (await $t('import-dialog')).waitForDisplayed({ timeout: 10000 });
  const text = await (await $t('import-dialog')).getText();
  assert.match(text, /legacy/);
  assert.match(text, /temporary credentials/);
  await shot('13-import');
  await click('import-run');
  await (await $t('import-result')).waitForDisplayed({ timeout: 15000 });
  assert.match(await (await $t('import-result')).getText(), /Imported: legacy/);
  assert.match(await (await $t('import-warning')).getText(), /profile 'legacy' in \S+config also sets aws_session_token; remove them so the AWS CLI uses Keyward/);
  const after = readFileSync(creds, 'utf8');
  assert.ok(!after.includes(MOTO.secret_access_key), 'the plaintext key left the credentials file');
  assert.ok(after.includes('# kept: a comment') && after.includes('[temp]'), 'the rest is kept');
  const config = readFileSync(join(aws, 'config'), 'utf8');
  assert.match(config, /\[profile legacy\][^[]*\ncredential_process = \S*keyward cred aws --profile legacy/);
  const backups = (await import('node:fs')).readdirSync(aws).filter((f) => f.startsWith('credentials.keyward-backup-'));
  assert.equal(backups.length, 1);
  assert.equal(statSync(join(aws, backups[0])).mode & 0o777, 0o600);
  await click('import-done');
  await browser.waitUntil(async () => (await browser.$$('[data-testid="key-row"]')).length === 2, { timeout: 10000 });
});

test('settings: auto-lock, security key listed, new recovery codes', async () => {
  await click('nav-settings');
  await (await $t('factor')).waitForDisplayed({ timeout: 10000 });
  assert.match(await (await $t('factors')).getText(), /Security key — soft key/);
  await (await $t('auto-lock')).selectByAttribute('value', '1800');
  await click('auto-lock-save');
  await browser.waitUntil(async () => /30 min/.test(await (await $t('settings-notice')).getText()), { timeout: 10000 });
  assert.equal(JSON.parse((await keyward(['status', '--json'])).out).auto_lock_secs, 1800);
  await click('new-codes');
  await type('codes-passphrase', PASS);
  await click('codes-make');
  await (await $t('new-codes-shown')).waitForDisplayed({ timeout: 15000 });
  assert.equal((await (await $t('new-codes-shown')).$$('li')).length, 8);
  await shot('14-settings-new-codes');
  await click('codes-stored');

  // Standing grants can be made to need a code: on at a click, then the approval dialog asks
  // for one with "for hours" / "until lock"; off only with a current code.
  await click('grants-code-on');
  await browser.waitUntil(async () => /On/.test(await (await $t('grants-code-state')).getText()), { timeout: 10000 });
  assert.equal(JSON.parse((await keyward(['status', '--json'])).out).grants_need_code, true);
  await browser.execute((el) => el.scrollIntoView({ block: 'start' }), await $t('grants-code'));
  await shot('14b-settings-grants-need-a-code');
  const pending = keyward(['cred', 'aws', '--profile', 'deploy'], { via: '/bin/sh' });
  await (await $t('approval-code')).waitForDisplayed({ timeout: 20000 });
  assert.equal(await (await $t('approve-until-lock')).isEnabled(), false, 'no code, no standing grant');
  await type('approval-code', await freshCode());
  await shot('08b-approval-with-code');
  await click('approve-until-lock');
  const res = await pending;
  assert.equal(res.code, 0, res.err);
  assert.equal(JSON.parse(res.out).Version, 1);
  // A grant until lock: the same program asks again without a question.
  const again = await keyward(['cred', 'aws', '--profile', 'deploy'], { via: '/bin/sh' });
  assert.equal(again.code, 0, again.err);
  await click('nav-settings');
  await (await $t('grants-code-off-code')).waitForDisplayed({ timeout: 10000 });
  await type('grants-code-off-code', await freshCode());
  await click('grants-code-off');
  await browser.waitUntil(async () => /Off/.test(await (await $t('grants-code-state')).getText()), { timeout: 10000 });
  assert.equal(JSON.parse((await keyward(['status', '--json'])).out).grants_need_code, false);
});

test('clients and activity show what happened', async () => {
  await click('nav-clients');
  await (await $t('grant-row')).waitForDisplayed({ timeout: 10000 });
  await shot('09-clients');
  await click('nav-activity');
  await browser.waitUntil(async () => (await browser.$$('[data-testid="activity-row"]')).length > 0, { timeout: 10000 });
  const text = await (await browser.$('main')).getText();
  assert.match(text, /allowed_hours/);
  assert.match(text, /denied/);
  await shot('10-activity');
  await click('nav-settings');
  await (await $t('factor')).waitForDisplayed({ timeout: 10000 });
  await shot('11-settings');
});

test('an administrator policy shows in Settings, read-only, within a second of being installed', async () => {
  const policy = env('KEYWARD_POLICY');
  const text = '[defaults]\nmax_key_age_days = 90\nremind_before_days = 14\n\n[[rule]]\nname = "prod-aws"\nkinds = ["aws"]\ntags = ["prod"]\n[rule.limits]\nmax_key_age_days = 30\nenforcement = "block"\n';
  writeFileSync(`${policy}.tmp`, text, { mode: 0o644 });
  renameSync(`${policy}.tmp`, policy);
  try {
    await browser.waitUntil(async () => JSON.parse((await keyward(['status', '--json'])).out).policy.sha256 !== null, { timeout: 10000 });
    // Settings reads the status when it opens.
    await click('nav-keys');
    await click('nav-settings');
    const card = await $t('policy');
    await browser.waitUntil(async () => /Set by your administrator/.test(await card.getText()), { timeout: 10000 });
    await browser.execute((el) => el.scrollIntoView({ block: 'start' }), card);
    const shown = await card.getText();
    assert.match(shown, /rotate keys at least every 90 days/);
    assert.match(shown, /prod-aws — aws keys tagged prod[\s\S]*overdue or expired keys issue nothing/);
    assert.equal((await card.$$('input, select, button')).length, 0, 'read-only');
    await shot('11c-settings-policy');
  } finally {
    unlinkSync(policy);
  }
  await browser.waitUntil(async () => JSON.parse((await keyward(['status', '--json'])).out).policy.sha256 === null, { timeout: 10000 });
});

test('a key past its expiry brings a reminder; the tray badge and tooltip say so', async () => {
  const agentPid = JSON.parse((await keyward(['status', '--json'])).out).agent_pid;
  // The Notify calls, and the answers that carry each notification's id.
  const monitor = spawn('dbus-monitor', ['--session', "type='method_call',interface='org.freedesktop.Notifications',member='Notify'", "type='method_return'"], { stdio: ['ignore', 'pipe', 'ignore'] });
  let seen = '';
  monitor.stdout.on('data', (d) => (seen += d));
  try {
    await new Promise((r) => setTimeout(r, 500));
    // Only the reminder on screen, so it is the notification at the top.
    execFileSync('dunstctl', ['close-all']);
    const added = await keywardInput(['add', 'static', 'old-token', '--expires', '2020-01-01T00:00:00Z'], ['old-token-value-1']);
    assert.equal(added.code, 0, added.err);
    const deadline = Date.now() + 15000;
    while (!/has expired/.test(seen) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.match(seen, /Key “old-token” has expired/);
    assert.match(seen, /expired on 2020-01-01/);
    let tip = '';
    const tipBy = Date.now() + 10000;
    do {
      await new Promise((r) => setTimeout(r, 200));
      tip = trayToolTip(agentPid);
    } while (!/need action/.test(tip) && Date.now() < tipBy);
    assert.match(tip, /Keys that need action: 1 overdue or expired/);
    try { execFileSync('import', ['-window', 'root', join(SHOTS, '16b-reminder.png')], { timeout: 10000 }); } catch { /* screenshot only */ }
    // Clicking the notification (dunst's default action) opens that key in the window; its
    // "Rotate now" action opens the key's rotation.
    execFileSync('dunstctl', ['action', '0']);
    await browser.waitUntil(async () => {
      const d = await browser.$$('[data-testid="key-detail"]');
      return d.length === 1 && /old-token/.test(await d[0].getText());
    }, { timeout: 15000, timeoutMsg: 'clicking the reminder opens its key' });
    // dunst invokes only the default action itself (others through a menu): send its signal
    // for "Rotate now" as it would, with the reminder's id from the server's answer.
    const blocks = seen.split(/\n(?=\S)/);
    const call = blocks.find((b) => /member=Notify/.test(b) && /old-token/.test(b));
    assert.ok(call, 'the reminder was sent');
    const [, sender] = /sender=(\S+)/.exec(call);
    const [, serial] = /\bserial=(\d+)/.exec(call);
    const answer = blocks.find((b) => /^method return/.test(b) && b.includes(`destination=${sender}`) && b.includes(`reply_serial=${serial}`));
    assert.ok(answer, 'the server answered with its id');
    const [, id] = /uint32 (\d+)/.exec(answer);
    assert.equal((await browser.$$('[data-testid="rotate-form"]')).length, 0, 'clicking opens the key, not its rotation');
    execFileSync('dbus-send', ['--session', '--type=signal', '/org/freedesktop/Notifications',
      'org.freedesktop.Notifications.ActionInvoked', `uint32:${id}`, 'string:rotate']);
    await (await $t('rotate-form')).waitForDisplayed({ timeout: 15000 });
    assert.match(await (await $t('key-detail')).getText(), /old-token/);
    await shot('16c-rotate-now-from-notification');
    await click('detail-back');
    // The Overview lists it with its reason and a button to rotate it.
    await click('nav-overview');
    const row = await $t('attention-row');
    await row.waitForDisplayed({ timeout: 10000 });
    assert.match(await row.getText(), /old-token[\s\S]*expired on 2020-01-01/);
    assert.match(await (await $t('count-expired')).getText(), /1/);
    await shot('05b-overview-needs-action');
    await click('attention-open');
    await (await $t('rotate')).waitForDisplayed({ timeout: 10000 });
  } finally {
    monitor.kill();
    await keyward(['remove', 'old-token', '--yes']);
  }
});

test('an OAuth2 client: add it, test it (introspection), and a CLI gets a token after approval', async () => {
  const clientSecret = 'kw-desktop-Canary+client/secret';
  const srv = await oauthServer([{ client_id: 'ci-bot', client_secret: clientSecret, scope: 'deploy:read deploy:write' }]);
  try {
    await click('nav-keys');
    await click('add-key');
    await (await $t('add-kind')).selectByAttribute('value', 'oauth2');
    await type('add-name', 'ci');
    await type('add-client-id', 'ci-bot');
    await type('add-secret', clientSecret);
    await type('add-token-url', srv.token_url);
    await type('add-scopes', 'deploy:read');
    await type('add-introspection-url', srv.introspection_url);
    await browser.waitUntil(async () => (await (await $t('add-introspection-url')).getValue()) === srv.introspection_url, { timeout: 5000 });
    await shot('17-add-oauth2');
    await click('add-submit');
    const row = await browser.$('button[aria-label="Open ci"]');
    await row.waitForDisplayed({ timeout: 15000 });
    const shown = JSON.parse((await keyward(['show', 'ci', '--json'])).out);
    assert.equal(shown.kind, 'oauth2');
    assert.deepEqual(shown.config.oauth2, { client_id: 'ci-bot', token_url: srv.token_url, scopes: ['deploy:read'], introspection_url: srv.introspection_url });

    // "Test this key": a real token, introspected by the server; only whose it is is shown.
    await row.click();
    await (await $t('key-detail')).waitForDisplayed({ timeout: 10000 });
    await click('detail-test');
    await browser.waitUntil(async () => /Works: client ci-bot \(confirmed by introspection\) · scope deploy:read · token until /.test(await (await $t('detail-notice')).getText()),
      { timeout: 20000, timeoutMsg: 'the Test result names the client, the scope and the expiry' });
    const page = await (await browser.$('main')).getText();
    assert.match(page, new RegExp(srv.token_url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.ok(!page.includes(clientSecret), 'the client secret is not on the page');
    await shot('18-oauth2-detail');
    // The page scrolls in its own container: bring the settings card to the top of it.
    await browser.execute((el) => el.scrollIntoView({ block: 'start' }), await $t('oauth2-settings'));
    assert.match(await (await $t('oauth2-settings')).getText(), /ci-bot[\s\S]*deploy:read[\s\S]*client_secret_basic/);
    // The key's history credits the window with what was done in it.
    await browser.waitUntil(async () => (await browser.$$('[data-testid="history-row"]')).length >= 2, { timeout: 10000 });
    const history = await (await browser.$('.history')).getText();
    assert.match(history, /Key ci added[\s\S]*keyward-desktop/, history);
    assert.doesNotMatch(history, /WebKitWebDriver/);
    await shot('18b-oauth2-settings');
    await browser.execute((el) => el.scrollIntoView({ block: 'start' }), await $t('key-detail'));

    // A tool asks: the dialog says it is an OAuth2 token, and the token works at the API.
    const pending = keyward(['cred', 'oauth2', '--profile', 'ci', '--format', 'header']);
    await (await $t('approval-dialog')).waitForDisplayed({ timeout: 20000 });
    assert.match(await (await $t('approval-dialog')).getText(), /access token of OAuth2 key ci/);
    await shot('19-approval-oauth2');
    await click('approve-once');
    const res = await pending;
    assert.equal(res.code, 0, res.err);
    const [name, value] = res.out.trim().split(': ');
    assert.equal(name, 'Authorization');
    assert.match(value, /^Bearer [\x21-\x7e]+$/);
    const api = await fetch(`${srv.issuer}/api/whoami`, { headers: { authorization: value } });
    assert.equal(api.status, 200);
    assert.deepEqual(await api.json(), { client_id: 'ci-bot', scope: 'deploy:read' });
    await click('detail-back');
  } finally {
    srv.stop();
  }
});

test('an Alibaba Cloud key: add it with its role, see each tool\'s line, copy one', async () => {
  await click('nav-keys');
  await click('add-key');
  await (await $t('add-kind')).selectByAttribute('value', 'aliyun');
  await type('add-name', 'ali');
  await type('add-access-key-id', 'LTAI5tKwDesktopTest01');
  await type('add-secret', 'kwDesktopAliyun0123456789abcde');
  await type('add-role-arn', 'acs:ram::1234567890123456:role/deploy');
  await type('add-region', 'cn-hangzhou');
  await browser.waitUntil(async () => /STS tokens for this role/.test(await (await $t('add-key-form')).getText()), { timeout: 5000 });
  await shot('20-add-aliyun');
  await click('add-submit');
  const row = await browser.$('button[aria-label="Open ali"]');
  await row.waitForDisplayed({ timeout: 15000 });
  const shown = JSON.parse((await keyward(['show', 'ali', '--json'])).out);
  assert.equal(shown.kind, 'aliyun');
  assert.equal(shown.config.aliyun.role_arn, 'acs:ram::1234567890123456:role/deploy');
  await row.click();
  await (await $t('key-usage')).waitForDisplayed({ timeout: 10000 });
  assert.match(await (await $t('detail-kind')).getText(), /Alibaba Cloud AccessKey LTAI…st01/);
  const lines = await browser.$$('[data-testid="usage-line"] code');
  const texts = [];
  for (let i = 0; i < lines.length; i++) texts.push(await lines[i].getText());
  assert.deepEqual(texts, ['keyward setup aliyun ali', 'keyward exec aliyun:ali -- COMMAND']);
  await browser.execute((el) => el.scrollIntoView({ block: 'start' }), await $t('key-usage'));
  const copies = await browser.$$('[data-testid="usage-copy"]');
  await copies[1].click();
  const clip = () => { try { return execFileSync('xclip', ['-o', '-selection', 'clipboard'], { timeout: 5000 }).toString(); } catch { return ''; } };
  await browser.waitUntil(() => clip() === 'keyward exec aliyun:ali -- COMMAND', { timeout: 10000, timeoutMsg: 'the exec line is on the clipboard' });
  await shot('20b-aliyun-usage');
  await browser.execute((el) => el.scrollIntoView({ block: 'start' }), await $t('key-detail'));
  await click('detail-back');
});

test('Rotate at AWS in the key detail: a new key made at IAM, checked and stored; the old one deleted', async () => {
  await click('nav-keys');
  const row = await browser.$('button[aria-label="Open deploy"]');
  await row.waitForDisplayed({ timeout: 15000 });
  await row.click();
  await (await $t('key-detail')).waitForDisplayed({ timeout: 10000 });
  // The agent asked moto's IAM about the key once it was added; its own question is no use.
  await browser.waitUntil(async () => /nothing on record but Keyward's own checks/.test(await (await $t('detail-provider-use')).getText()),
    { timeout: 20000, timeoutMsg: 'the detail says what AWS saw of the key' });
  const before = iamKeys('deployer');
  assert.deepEqual(before, [{ id: MOTO.access_key_id, status: 'Active' }]);
  await click('rotate-aws');
  await (await $t('rotate-aws-grace')).selectByAttribute('value', '0');
  await shot('12b-rotate-at-aws');
  await click('rotate-aws-go');
  await browser.waitUntil(async () => /Rotated at AWS/.test(await (await $t('detail-notice')).getText()),
    { timeout: 60000, timeoutMsg: 'the rotation at IAM finishes and says so' });
  const notice = await (await $t('detail-notice')).getText();
  const m = /^Rotated at AWS \(IAM user deployer\): (AKIA\w+) is stored and works\. The old key (AKIA\w+) is deleted\.$/.exec(notice);
  assert.ok(m, notice);
  const [, fresh, old] = m;
  assert.equal(old, MOTO.access_key_id);
  // At IAM, as an administrator sees it: the new key alone, active.
  assert.deepEqual(iamKeys('deployer'), [{ id: fresh, status: 'Active' }]);
  const shown = JSON.parse((await keyward(['show', 'deploy', '--json'])).out);
  assert.equal(shown.config.aws.access_key_hint, `AKIA…${fresh.slice(-4)}`);
  assert.ok(!(await (await browser.$('main')).getText()).includes(MOTO.secret_access_key));
  // The stored key works (a session from moto's STS, signed with it).
  await click('detail-test');
  await browser.waitUntil(async () => /Works: arn:aws:sts::/.test(await (await $t('detail-notice')).getText()), { timeout: 20000 });
  await browser.waitUntil(async () => {
    const rows = await browser.$$('[data-testid="history-row"]');
    for (let i = 0; i < rows.length; i++) if ((await rows[i].getAttribute('data-action')) === 'rotate.aws') return true;
    return false;
  }, { timeout: 10000, timeoutMsg: 'the history shows the rotation at AWS' });
  await shot('12c-rotated-at-aws');
  await click('detail-back');
});

test('lock from the window; the CLI sees it locked; unlock with the security key', async () => {
  await click('lock');
  await (await $t('unlock-screen')).waitForDisplayed({ timeout: 10000 });
  let status = await keyward(['status', '--json']);
  assert.equal(JSON.parse(status.out).locked, true);
  await click('toggle-key');
  await type('passphrase', PASS);
  await shot('15-unlock-security-key');
  await click('unlock-submit');
  await (await $t('nav-keys')).waitForDisplayed({ timeout: 20000 });
  status = await keyward(['status', '--json']);
  assert.equal(JSON.parse(status.out).locked, false);
});

test('with the window closed, a tool asking for credentials brings a desktop notification', async () => {
  const [firstWindow] = appPids();
  assert.ok(firstWindow, 'the window is open');
  // Watch the private session bus for notifications (a real server, dunst, answers them).
  // The Notify calls, and the answers that carry each notification's id.
  const monitor = spawn('dbus-monitor', ['--session', "type='method_call',interface='org.freedesktop.Notifications',member='Notify'", "type='method_return'"], { stdio: ['ignore', 'pipe', 'ignore'] });
  let seen = '';
  monitor.stdout.on('data', (d) => (seen += d));
  await new Promise((r) => setTimeout(r, 500));
  // Ctrl+W closes the window: its process ends, the agent stays (tray). WebDriver's session ends
  // with it.
  await browser.keys(['Control', 'w']).catch(() => {});
  const closedBy = Date.now() + 10000;
  while (alive(firstWindow) && Date.now() < closedBy) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!alive(firstWindow), 'closing the window ends its process');
  const status = JSON.parse((await keyward(['status', '--json'])).out);
  assert.equal(status.locked, false, 'the agent keeps the vault unlocked in the tray');
  const asking = spawn('/bin/sh', ['-c', `"${CLI}" cred aws --profile deploy; :`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let refusal = '';
  asking.stderr.on('data', (d) => (refusal += d));
  const deadline = Date.now() + 15000;
  while (!/asks for credentials of profile/.test(seen) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  // The agent opens the window again with the question.
  while (appPids().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 2500));
  // The whole screen: the notification, and the window opening again with the question.
  try { execFileSync('import', ['-window', 'root', join(SHOTS, '16-notification.png')], { timeout: 10000 }); } catch { /* screenshot only */ }
  monitor.kill();
  assert.match(seen, /A program asks for credentials/);
  assert.match(seen, /asks for credentials of profile .deploy./);
  assert.equal(appPids().length, 1, 'the agent opened one window for the question');
  // The window the agent opened answers: Escape in the question is "Deny". Answering needs the
  // window token the agent handed that window (it was not unlocked through it), so the tool's
  // refusal shows the token arrived.
  const [win] = execFileSync('xdotool', ['search', '--name', '^Keyward$'], { encoding: 'utf8' }).trim().split('\n');
  execFileSync('xdotool', ['windowfocus', '--sync', win]);
  execFileSync('xdotool', ['key', '--clearmodifiers', 'Escape']);
  const answeredBy = Date.now() + 10000;
  while (asking.exitCode === null && Date.now() < answeredBy) await new Promise((r) => setTimeout(r, 100));
  assert.match(refusal, /you denied .* credentials for profile "deploy"/, 'the window answered the question');
  browser = undefined; // the session ended with the first window
});

test('the tray icon locks the vault and quits Keyward', async () => {
  const agentPid = JSON.parse((await keyward(['status', '--json'])).out).agent_pid;
  // Starting the app again while its window is open brings that window up: no second one.
  const again = await new Promise((resolve) => {
    const p = spawn(APP, [], { stdio: 'ignore' });
    p.on('exit', (code) => resolve(code));
  });
  assert.equal(again, 0, 'a second start hands over to the running agent and exits');
  assert.equal(appPids().length, 1, 'still one window');
  trayClick(agentPid, 'Lock now');
  const lockedBy = Date.now() + 5000;
  let status;
  do {
    await new Promise((r) => setTimeout(r, 100));
    status = JSON.parse((await keyward(['status', '--json'])).out);
  } while (!status.locked && Date.now() < lockedBy);
  assert.equal(status.locked, true, 'Lock now in the tray locks the vault');
  // Quit ends the agent, and the window with it.
  assert.equal(appPids().length, 1, 'a window is open');
  trayClick(agentPid, 'Quit Keyward');
  const deadline = Date.now() + 10000;
  while ((alive(agentPid) || appPids().length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!alive(agentPid), 'Quit stops the agent');
  assert.equal(appPids().length, 0, 'the window ends with its agent');
});

test('the app ends with its agent (keyward agent stop), and the CLI carries on headless', async () => {
  // The app again, as from its launcher: it starts the desktop agent, then opens its window
  // (asking before the window shows could start a headless agent first: the CLI starts one).
  const app = spawn(APP, [], { stdio: 'ignore', detached: true });
  const openedBy = Date.now() + 20000;
  const windowShown = () => {
    try { return execFileSync('xdotool', ['search', '--name', '^Keyward$'], { encoding: 'utf8' }).trim() !== ''; } catch { return false; }
  };
  while (!windowShown() && Date.now() < openedBy) await new Promise((r) => setTimeout(r, 200));
  let status = JSON.parse((await keyward(['status', '--json'])).out);
  assert.equal(status?.desktop, true, 'the app started the desktop agent');
  assert.equal(appPids().length, 1, 'the window is open');
  const stop = await keyward(['agent', 'stop']);
  assert.equal(stop.code, 0, stop.err);
  const deadline = Date.now() + 10000;
  while (appPids().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(appPids().length, 0, 'the app exited when its agent stopped');
  assert.ok(app.exitCode !== null || !alive(app.pid));
  status = await keyward(['status', '--json']);
  assert.equal(status.code, 0, status.err);
  assert.equal(JSON.parse(status.out).locked, true, 'a headless agent took over, locked');
  assert.equal(JSON.parse(status.out).desktop, false, 'the CLI starts a headless agent');
  await keyward(['agent', 'stop']); // leave nothing running
});
