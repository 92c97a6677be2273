import type {
  AliyunKeyInput, ApprovalInfo, AuditRow, AwsKeyInput, AwsRotated, Created, Decision, FactorInfo, Grant, ImportPreview, ImportResult,
  KeyDetail, KeyRow, LeaseRow, MetaInput, OAuth2KeyInput, PassphraseVerdict, Revealed, RotateInput, ShowKey, Status, Tested,
  TotpEnrollment, UnlockFactor, Unlocked,
} from './types';

/** Everything the UI asks of Keyward. `TauriBackend` talks to the app; `TestBackend` fakes it. */
export interface Backend {
  status(): Promise<Status>;
  passphraseCheck(passphrase: string): Promise<PassphraseVerdict>;
  totpEnrollment(): Promise<TotpEnrollment>;
  initVault(passphrase: string, totpSecret: string, totpCode: string): Promise<Created>;
  unlock(passphrase: string, factor: UnlockFactor): Promise<Unlocked>;
  lock(): Promise<void>;
  listKeys(): Promise<KeyRow[]>;
  addAws(name: string, meta: MetaInput, aws: AwsKeyInput): Promise<void>;
  addStatic(name: string, meta: MetaInput, value: string): Promise<void>;
  addOauth2(name: string, meta: MetaInput, oauth2: OAuth2KeyInput): Promise<void>;
  addAliyun(name: string, meta: MetaInput, aliyun: AliyunKeyInput): Promise<void>;
  removeKey(name: string): Promise<void>;
  testKey(name: string): Promise<Tested>;
  activity(limit: number): Promise<AuditRow[]>;
  factors(): Promise<FactorInfo[]>;
  grants(): Promise<Grant[]>;
  /** Static-key leases that have not ended yet (newest first). */
  leases(): Promise<LeaseRow[]>;
  revokeGrant(id: string): Promise<void>;
  /** Answers a question; `code` is needed for hours / until lock when the setting is on. */
  decideApproval(id: string, decision: Decision, code?: string): Promise<void>;
  pendingApprovals(): Promise<ApprovalInfo[]>;
  keyDetail(name: string): Promise<KeyDetail>;
  updateKey(name: string, meta: MetaInput): Promise<KeyRow>;
  rotateKey(name: string, secret: RotateInput): Promise<KeyRow>;
  /**
   * Rotates an AWS key at IAM: a new key made, checked and stored, the old one deactivated and
   * deleted after `graceSecs` (a day when not given).
   */
  rotateAws(name: string, graceSecs?: number): Promise<AwsRotated>;
  /** The secret itself, only on the user's Reveal click; the screen hides it again. */
  revealKey(name: string): Promise<Revealed>;
  /** Copies the secret in Rust (never through the web view); returns seconds until cleared. */
  copyKey(name: string): Promise<number>;
  /** Copies usage line `index` of the key's detail (worked out again in Rust; nothing secret). */
  copyUsage(name: string, index: number): Promise<void>;
  /**
   * Checks a current authenticator code for this window: Reveal and Copy need one given
   * within the last minute (unlocking in this window counts), else they fail `factor_needed`.
   */
  confirmFactor(code: string): Promise<void>;
  importAwsPreview(): Promise<ImportPreview>;
  importAws(names: string[], removePlaintext: boolean): Promise<ImportResult>;
  /** Registers a security key; the user touches it. */
  enrollSecurityKey(passphrase: string, label: string, pin?: string): Promise<FactorInfo>;
  unlockWithSecurityKey(passphrase: string): Promise<Unlocked>;
  addTotp(passphrase: string, totpSecret: string, totpCode: string, label: string): Promise<FactorInfo>;
  removeFactor(id: string): Promise<void>;
  newRecoveryCodes(passphrase: string): Promise<string[]>;
  setAutoLock(secs: number): Promise<void>;
  /** Whether "for hours" and "until lock" ask for a code; turning it off needs a current code. */
  setGrantsNeedCode(on: boolean, code?: string): Promise<void>;
  /** Closes the window; Keyward stays in the tray. */
  closeWindow(): Promise<void>;
  /** Calls `cb` whenever the vault locks or unlocks; returns an unsubscribe function. */
  onVaultState(cb: (s: { locked: boolean }) => void): Promise<() => void>;
  /** Calls `cb` when the user acted on a notification about a key; returns an unsubscribe function. */
  onShowKey(cb: (k: ShowKey) => void): Promise<() => void>;
  /** Calls `cb` for each approval request; returns an unsubscribe function. */
  onApprovalRequested(cb: (a: ApprovalInfo) => void): Promise<() => void>;
}
