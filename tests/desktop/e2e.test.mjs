// The real Keyward app, driven through WebDriver (tauri-driver → WebKitWebDriver) under Xvfb,
// with the real agent it embeds, a real gnome-keyring, moto as STS, and the real `keyward` CLI
// asking for credentials as a separate process. Started by tests/desktop/run, which sets up
// every component and these variables.

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
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
const PASS = 'orbit-maple-quartz-lantern-7';
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

/** Runs the keyward CLI as its own process (no terminal), like a tool's credential_process. */
function keyward(args, { via } = {}) {
  return new Promise((resolve) => {
    const [cmd, argv] = via ? [via, ['-c', `exec_it() { "${CLI}" "$@"; }; exec_it ${args.join(' ')}`]] : [CLI, args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
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
});

let secret;

test('first run: passphrase, authenticator app, recovery codes', async () => {
  await (await $t('first-run')).waitForDisplayed({ timeout: 20000 });
  const status = JSON.parse((await keyward(['status', '--json'])).out);
  assert.notEqual(status.agent_pid, headlessPid, 'the app runs its own agent');
  assert.ok(!alive(headlessPid), 'the headless agent stopped for the app');
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
  await type('totp-code', totp(secret, stepNow()));
  await click('create-vault');
  const codes = await $t('recovery-codes');
  await codes.waitForDisplayed({ timeout: 30000 });
  assert.equal((await codes.$$('li')).length >= 8, true);
  await shot('03-recovery-codes');
  await click('codes-saved');
  await click('codes-done');
});

test('unlock with passphrase and the next code', async () => {
  await (await $t('unlock-screen')).waitForDisplayed({ timeout: 15000 });
  await shot('04-unlock');
  await type('passphrase', PASS);
  await type('code', totp(secret, stepNow() + 1)); // the enrolment code may not be used twice
  await click('unlock-submit');
  await (await $t('nav-keys')).waitForDisplayed({ timeout: 20000 });
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
  await (await $t('factors')).waitForDisplayed();
  await shot('11-settings');
});

test('lock from the window; the CLI sees it locked', async () => {
  await click('lock');
  await (await $t('unlock-screen')).waitForDisplayed({ timeout: 10000 });
  const status = await keyward(['status', '--json']);
  assert.equal(JSON.parse(status.out).locked, true);
});

test('the app ends with its agent (keyward agent stop), and the CLI carries on headless', async () => {
  const { readdirSync, readlinkSync } = await import('node:fs');
  const appPids = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readlinkSync(`/proc/${p}/exe`) === APP; } catch { return false; }
  });
  assert.equal(appPids().length, 1, 'the app is running');
  const stop = await keyward(['agent', 'stop']);
  assert.equal(stop.code, 0, stop.err);
  const deadline = Date.now() + 10000;
  while (appPids().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(appPids().length, 0, 'the app exited when its agent stopped');
  const status = await keyward(['status', '--json']);
  assert.equal(status.code, 0, status.err);
  assert.equal(JSON.parse(status.out).locked, true, 'a headless agent took over, locked');
  await keyward(['agent', 'stop']); // leave nothing running
  browser = undefined; // the session ended with the app
});
