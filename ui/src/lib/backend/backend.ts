import type {
  ApprovalInfo, AuditRow, AwsKeyInput, Decision, FactorInfo, Grant, KeyRow, MetaInput,
  PassphraseVerdict, Status, Tested, TotpEnrollment, UnlockFactor, Unlocked,
} from './types';

/** Everything the UI asks of Keyward. `TauriBackend` talks to the app; `TestBackend` fakes it. */
export interface Backend {
  status(): Promise<Status>;
  passphraseCheck(passphrase: string): Promise<PassphraseVerdict>;
  totpEnrollment(): Promise<TotpEnrollment>;
  initVault(passphrase: string, totpSecret: string, totpCode: string): Promise<{ recovery_codes: string[] }>;
  unlock(passphrase: string, factor: UnlockFactor): Promise<Unlocked>;
  lock(): Promise<void>;
  listKeys(): Promise<KeyRow[]>;
  addAws(name: string, meta: MetaInput, aws: AwsKeyInput): Promise<void>;
  addStatic(name: string, meta: MetaInput, value: string): Promise<void>;
  removeKey(name: string): Promise<void>;
  testKey(name: string): Promise<Tested>;
  activity(limit: number): Promise<AuditRow[]>;
  factors(): Promise<FactorInfo[]>;
  grants(): Promise<Grant[]>;
  revokeGrant(id: string): Promise<void>;
  decideApproval(id: string, decision: Decision): Promise<void>;
  pendingApprovals(): Promise<ApprovalInfo[]>;
  /** Closes the window; Keyward stays in the tray. */
  closeWindow(): Promise<void>;
  /** Calls `cb` whenever the vault locks or unlocks; returns an unsubscribe function. */
  onVaultState(cb: (s: { locked: boolean }) => void): Promise<() => void>;
  /** Calls `cb` for each approval request; returns an unsubscribe function. */
  onApprovalRequested(cb: (a: ApprovalInfo) => void): Promise<() => void>;
}
