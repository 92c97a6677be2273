import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { getCurrentWindow } from '@tauri-apps/api/window';
import type { Backend } from './backend';
import { BackendError, type ErrorCode, type ShowKey } from './types';

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    const err = e as { code?: ErrorCode; message?: string } | string;
    if (typeof err === 'object' && err && err.code) {
      throw new BackendError(err.code, err.message ?? 'unknown error');
    }
    throw new BackendError('internal', String(e));
  }
}

/** The real backend: Tauri commands into the embedded agent. */
export class TauriBackend implements Backend {
  status = () => call<Awaited<ReturnType<Backend['status']>>>('status');
  passphraseCheck = (passphrase: string) => call<Awaited<ReturnType<Backend['passphraseCheck']>>>('passphrase_check', { passphrase });
  totpEnrollment = () => call<Awaited<ReturnType<Backend['totpEnrollment']>>>('totp_enrollment');
  initVault = (passphrase: string, totpSecret: string, totpCode: string) =>
    call<{ recovery_codes: string[] }>('init_vault', { passphrase, totpSecret, totpCode });
  unlock: Backend['unlock'] = (passphrase, factor) => call('unlock', { passphrase, factor });
  lock = () => call<void>('lock');
  listKeys: Backend['listKeys'] = () => call('list_keys');
  addAws: Backend['addAws'] = (name, meta, aws) => call('add_aws', { name, meta, aws });
  addStatic: Backend['addStatic'] = (name, meta, value) => call('add_static', { name, meta, value });
  addOauth2: Backend['addOauth2'] = (name, meta, oauth2) => call('add_oauth2', { name, meta, oauth2 });
  addAliyun: Backend['addAliyun'] = (name, meta, aliyun) => call('add_aliyun', { name, meta, aliyun });
  removeKey: Backend['removeKey'] = (name) => call('remove_key', { name });
  testKey: Backend['testKey'] = (name) => call('test_key', { name });
  activity: Backend['activity'] = (limit) => call('activity', { limit });
  factors: Backend['factors'] = () => call('factors');
  grants: Backend['grants'] = () => call('grants');
  leases: Backend['leases'] = () => call('leases');
  revokeGrant: Backend['revokeGrant'] = (id) => call('revoke_grant', { id });
  decideApproval: Backend['decideApproval'] = (id, decision, code) => call('decide_approval', { id, decision, code: code ?? null });
  pendingApprovals: Backend['pendingApprovals'] = () => call('pending_approvals');
  keyDetail: Backend['keyDetail'] = (name) => call('key_detail', { name });
  updateKey: Backend['updateKey'] = (name, meta) => call('update_key', { name, meta });
  rotateKey: Backend['rotateKey'] = (name, secret) => call('rotate_key', { name, secret });
  rotateAws: Backend['rotateAws'] = (name, graceSecs) => call('rotate_aws', { name, graceSecs: graceSecs ?? null });
  revealKey: Backend['revealKey'] = (name) => call('reveal_key', { name });
  copyKey: Backend['copyKey'] = (name) => call('copy_key', { name });
  copyUsage: Backend['copyUsage'] = (name, index) => call('copy_usage', { name, index });
  confirmFactor: Backend['confirmFactor'] = (code) => call('confirm_factor', { code });
  importAwsPreview: Backend['importAwsPreview'] = () => call('import_aws_preview');
  importAws: Backend['importAws'] = (names, removePlaintext) => call('import_aws', { names, removePlaintext });
  enrollSecurityKey: Backend['enrollSecurityKey'] = (passphrase, label, pin) =>
    call('enroll_security_key', { passphrase, label, pin: pin || null });
  unlockWithSecurityKey: Backend['unlockWithSecurityKey'] = (passphrase) => call('unlock_with_security_key', { passphrase });
  addTotp: Backend['addTotp'] = (passphrase, totpSecret, totpCode, label) =>
    call('add_totp', { passphrase, totpSecret, totpCode, label });
  removeFactor: Backend['removeFactor'] = (id) => call('remove_factor', { id });
  newRecoveryCodes: Backend['newRecoveryCodes'] = (passphrase) => call('new_recovery_codes', { passphrase });
  setAutoLock: Backend['setAutoLock'] = (secs) => call('set_auto_lock', { secs });
  setGrantsNeedCode: Backend['setGrantsNeedCode'] = (on, code) => call('set_grants_need_code', { on, code: code ?? null });
  closeWindow = () => getCurrentWindow().close();
  onVaultState: Backend['onVaultState'] = (cb) => listen<{ locked: boolean }>('vault-state', (e) => cb(e.payload));
  onShowKey: Backend['onShowKey'] = (cb) => listen<ShowKey>('show-key', (e) => cb(e.payload));
  onApprovalRequested: Backend['onApprovalRequested'] = (cb) =>
    listen('approval-requested', (e) => cb(e.payload as Parameters<typeof cb>[0]));
}
