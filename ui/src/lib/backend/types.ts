// Shapes exchanged with the Rust side; see docs/DESKTOP.md and docs/PROTOCOL.md.

export type ErrorCode =
  | 'bad_request' | 'version' | 'no_vault' | 'locked' | 'wrong_credentials' | 'throttled'
  | 'not_found' | 'invalid' | 'keystore' | 'mfa_required' | 'upstream' | 'audit' | 'denied'
  | 'forbidden' | 'tampered' | 'factor_needed' | 'internal';

export class BackendError extends Error {
  constructor(public code: ErrorCode, message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

export interface Status {
  agent_version: string;
  agent_pid: number;
  vault: boolean;
  locked: boolean;
  keystore: string | null;
  entries: number;
  auto_lock_secs: number;
  locks_in_secs: number | null;
  unlock_wait_secs: number;
  catalog: string;
  /** Whether "for hours" and "until lock" ask for an authenticator code (null while locked). */
  grants_need_code?: boolean | null;
}

export interface PassphraseVerdict { acceptable: boolean; reason: string | null }
export interface TotpEnrollment { secret: string; otpauth_url: string; qr_svg: string }
export type UnlockFactor = { kind: 'totp'; code: string } | { kind: 'recovery'; code: string };
export interface Unlocked { recovery_codes_left: number | null; auto_lock_secs: number }

export type KeyKind = 'aws' | 'static' | 'oauth2';
export type KeyState = 'ok' | 'due_soon' | 'overdue' | 'expired';

export interface KeyRow {
  id: string;
  name: string;
  kind: KeyKind;
  owner: string | null;
  purpose: string | null;
  tags: string[];
  created: string;
  rotated: string | null;
  rotation_interval_days: number | null;
  expires: string | null;
  last_used: string | null;
  use_count: number;
  config?: {
    aws?: { access_key_hint: string; region?: string | null; role_arn?: string | null };
    oauth2?: OAuth2Config;
  };
  state: KeyState;
}

/** How an OAuth2 client authenticates at the token endpoint: HTTP Basic or form fields. */
export type OAuth2Auth = 'basic' | 'post';

/** An OAuth2 client's stored settings; fields are absent when empty or default (`auth`: basic). */
export interface OAuth2Config {
  client_id: string;
  token_url: string;
  scopes?: string[];
  auth?: OAuth2Auth;
  introspection_url?: string | null;
}

export interface MetaInput {
  owner?: string;
  purpose?: string;
  tags: string[];
  rotation_interval_days?: number;
  expires?: string;
}

export interface AwsKeyInput {
  access_key_id: string;
  secret_access_key: string;
  role_arn?: string;
  mfa_serial?: string;
  region?: string;
  session_duration_secs?: number;
  sts_endpoint?: string;
}

/** An OAuth2 client (client-credentials grant); the agent keeps the client secret. */
export interface OAuth2KeyInput {
  client_id: string;
  client_secret: string;
  token_url: string;
  scopes: string[];
  auth?: OAuth2Auth;
  introspection_url?: string;
}

/**
 * What a test issue showed: for AWS the STS ARN and the session's end; for OAuth2 `client <id>`,
 * the granted scope (space-separated) and the token's end, `null` when the server did not say.
 */
export interface Tested { identity: string; expiration: string | null; scope?: string | null }

/** One process of a client's chain, nearest first, as the agent recorded it. */
export interface ProcessInfo { pid: number; exe: string | null; script?: string; unvouched?: string }
/** Who asked: the socket's peer and its parent chain. */
export interface Actor { uid?: number | null; pid?: number | null; chain: ProcessInfo[] }
/** What kind of event a record is; the Activity view hides reads unless asked. */
export type ActivityKind = 'read' | 'session' | 'issue' | 'approval' | 'change' | 'system';

/** An audit record as the agent hands it out (keyward_agent::activity::ActivityRecord). */
export interface AuditRow {
  seq: number;
  ts: string;
  action: string;
  target: string | null;
  outcome: string;
  actor: Actor;
  detail: unknown;
  kind: ActivityKind;
  /** The program that asked, in one line, when known. */
  client: string | null;
  /** What happened, in words. */
  summary: string;
}

export interface FactorInfo { id: string; kind: string; label: string; created: string }

export interface ClientId {
  exe: string;
  script?: string;
  /** Why its name does not say which code runs (e.g. `sh -c`): it can only be allowed once. */
  unvouched?: string;
}
export interface ProcessInfo { pid: number; exe: string | null; script?: string }
export interface ApprovalInfo {
  id: string;
  client: ClientId;
  chain: ProcessInfo[];
  profile: string;
  /** What the program would get: STS session credentials or an OAuth2 access token. */
  kind: KeyKind;
  /** Lifetime of those credentials; null when the server decides (OAuth2). */
  ttl_secs: number | null;
  expires_in_secs: number;
  /** Allowing for hours or until lock needs a current authenticator code with the answer. */
  standing_needs_code?: boolean;
}
export interface Grant {
  id: string;
  client: ClientId;
  profile: string;
  granted: string;
  expires: string | null;
}
export type Decision = 'once' | 'until_lock' | 'deny' | { hours: number };

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
