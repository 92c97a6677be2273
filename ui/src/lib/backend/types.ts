// Shapes exchanged with the Rust side; see docs/DESKTOP.md and docs/PROTOCOL.md. What the agent
// sends and takes is generated from the Rust types (./generated.ts); what only the app's own
// commands (src-tauri) send is written here.

import type { ActivityRecord, EntryKind, EntryMeta, EntryState, ClientAuth, GrantInfo, StatusInfo } from './generated';

export type {
  ActivityKind, ActivityRecord, Actor, ApprovalInfo, AwsConfig, AwsKeyInput, ClientAuth, ClientId, Decision,
  EntryConfig, EntryKind, EntryMeta, EntryState, ErrorCode, FactorInfo, GrantInfo, JsonValue, MetaInput,
  OAuth2Config, OAuth2KeyInput, ProcessInfo, ReconcileNote, SlotKind, StatusInfo,
} from './generated';
import type { ErrorCode } from './generated';

export class BackendError extends Error {
  constructor(public code: ErrorCode, message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** The agent's state (`status`). */
export type Status = StatusInfo;

export interface PassphraseVerdict { acceptable: boolean; reason: string | null }
export interface TotpEnrollment { secret: string; otpauth_url: string; qr_svg: string }
export type UnlockFactor = { kind: 'totp'; code: string } | { kind: 'recovery'; code: string };
export interface Unlocked { recovery_codes_left: number | null; auto_lock_secs: number }

export type KeyKind = EntryKind;
export type KeyState = EntryState;
/** A key as the Keys screen shows it: its metadata and its rotation state now. */
export type KeyRow = EntryMeta & { state: EntryState };

/** How an OAuth2 client authenticates at the token endpoint: HTTP Basic or form fields. */
export type OAuth2Auth = ClientAuth;

/**
 * What a test issue showed: for AWS the STS ARN and the session's end; for OAuth2 `client <id>`,
 * the granted scope (space-separated) and the token's end, `null` when the server did not say.
 */
export interface Tested { identity: string; expiration: string | null; scope?: string | null }

/** An audit record as the agent hands it out. */
export type AuditRow = ActivityRecord;

export type Grant = GrantInfo;

export interface KeyDetail { key: KeyRow; history: AuditRow[] }
export type RotateInput =
  | { kind: 'aws'; access_key_id: string; secret_access_key: string }
  | { kind: 'static'; value: string }
  | { kind: 'oauth2'; client_secret: string };
export interface Revealed { value: string; hide_after_secs: number }
export interface ImportCandidate { name: string; access_key_hint: string | null; region: string | null; problem: string | null }
export interface ImportPreview { path: string; candidates: ImportCandidate[] }
export interface ImportResult {
  imported: string[];
  skipped: [string, string][];
  config: string | null;
  config_problem: string | null;
  /** What still keeps the AWS CLI from using Keyward for these profiles, one line each. */
  warnings: string[];
  removed_plaintext: boolean;
  backup: string | null;
}
