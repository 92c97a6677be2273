// Shapes exchanged with the Rust side; see docs/DESKTOP.md and docs/PROTOCOL.md. All are
// generated from the Rust types: what the agent sends and takes (./generated.ts) and what the
// app's own commands in src-tauri do (./app-generated.ts). Only the names the screens use for
// them are given here.

import type { ActivityRecord, EntryKind, EntryState, ClientAuth, GrantInfo, StatusInfo } from './generated';

export type {
  ActivityKind, ActivityRecord, Actor, AliyunConfig, AliyunKeyInput, ApprovalInfo, AwsConfig, BindingInfo, KeyUses, AwsKeyInput, AwsRotated, ClientAuth, ClientId, Decision,
  EntryConfig, EntryKind, EntryMeta, EntryState, ErrorCode, FactorInfo, GrantInfo, JsonValue, MetaInput,
  KeyStates, Listed, OAuth2Config, OAuth2KeyInput, PolicyInfo, PolicyLimit, PolicyRule, ProcessInfo, ProviderUse, ReconcileNote, ShowKey,
  SlotKind, Standing, StatusInfo,
} from './generated';
import type { ErrorCode } from './generated';
export type {
  Created, ImportCandidate, ImportPreview, ImportResult, KeyDetail, KeyRow, PassphraseVerdict, Revealed,
  LeaseRow, RotateInput, Tested, TotpEnrollment, UnlockFactor, Unlocked, UsageLine,
} from './app-generated';

export class BackendError extends Error {
  constructor(public code: ErrorCode, message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** The agent's state (`status`). */
export type Status = StatusInfo;

export type KeyKind = EntryKind;
export type KeyState = EntryState;

/** How an OAuth2 client authenticates at the token endpoint: HTTP Basic or form fields. */
export type OAuth2Auth = ClientAuth;

/** An audit record as the agent hands it out. */
export type AuditRow = ActivityRecord;

export type Grant = GrantInfo;
