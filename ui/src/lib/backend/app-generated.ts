// Generated from the app's Rust types by src-tauri/src/ui_types.rs (ts-rs): do not edit.
// After changing a Rust type, run that test with KEYWARD_WRITE_UI_TYPES=1 and commit this.

import type { ActivityRecord, EntryConfig, EntryKind, EntryState, KeyUses, ProviderUse } from './generated';

export type PassphraseVerdict = { acceptable: boolean, reason: string | null, };

export type TotpEnrollment = { secret: string, otpauth_url: string, qr_svg: string, };

export type Created = { recovery_codes: Array<string>, };

export type UnlockFactor = { "kind": "totp", 
/**
 * Code.
 */
code: string, } | { "kind": "recovery", 
/**
 * Code.
 */
code: string, };

export type Unlocked = { recovery_codes_left: number | null, auto_lock_secs: number, };

export type KeyRow = { 
/**
 * Random id naming the keychain item.
 */
id: string, 
/**
 * User-chosen unique name (also the AWS profile name for `aws`).
 */
name: string, 
/**
 * Kind of key.
 */
kind: EntryKind, 
/**
 * Who is responsible for the key.
 */
owner: string | null, 
/**
 * What the key is for.
 */
purpose: string | null, 
/**
 * Free-form tags.
 */
tags: Array<string>, 
/**
 * When it was added (RFC 3339).
 */
created: string, 
/**
 * When its secret was last rotated (RFC 3339).
 */
rotated: string | null, 
/**
 * Rotation interval in days, if a rotation policy applies.
 */
rotation_interval_days: number | null, 
/**
 * When the key expires (RFC 3339).
 */
expires: string | null, 
/**
 * When it was last used to issue a credential (RFC 3339).
 */
last_used: string | null, 
/**
 * How many credentials it has issued.
 */
use_count: number, 
/**
 * What the provider last said about the key's use (AWS keys; `None` until asked). Filled
 * in by the catalog, never written through the entry.
 */
provider_use: ProviderUse | null, 
/**
 * Kind-specific settings.
 */
config: EntryConfig, 
/**
 * The state.
 */
state: EntryState, 
/**
 * What makes it so, in words ("rotation overdue since 2026-11-01 (max_key_age_days = 30,
 * rule 'prod-aws')"); `None` when the key is ok.
 */
reason: string | null, 
/**
 * The part of the admin policy that decided (`defaults` or `rule 'NAME'`); `None` when the
 * key's own settings did, or nothing is due.
 */
rule: string | null, 
/**
 * Whether the policy withholds credentials from it in this state (`enforcement = "block"`,
 * overdue or expired).
 */
blocked: boolean, };

export type Tested = { identity: string, expiration: string | null, scope: string | null, };

export type LeaseRow = { key: string, client: string, 
/**
 * `exec`, `exec-fd`, `git`, `docker`, `helper`.
 */
via: string, issued: string, expires_at: string, };

export type UsageLine = { tool: string, line: string, note: string, };

export type KeyDetail = { key: KeyRow, history: Array<ActivityRecord>, 
/**
 * Its lease setting and helper bindings (from the authenticated header: `None` while locked).
 */
uses: KeyUses | null, 
/**
 * What to write or run for each tool.
 */
usage: Array<UsageLine>, };

export type RotateInput = { "kind": "aws", 
/**
 * AKIA… id.
 */
access_key_id: string, 
/**
 * Its secret.
 */
secret_access_key: string, } | { "kind": "static", 
/**
 * The token.
 */
value: string, } | { "kind": "oauth2", 
/**
 * The client secret.
 */
client_secret: string, } | { "kind": "aliyun", 
/**
 * LTAI… id.
 */
access_key_id: string, 
/**
 * Its secret.
 */
access_key_secret: string, };

export type Revealed = { value: string, hide_after_secs: number, };

export type ImportCandidate = { name: string, access_key_hint: string | null, region: string | null, 
/**
 * Why it cannot be imported, if it cannot.
 */
problem: string | null, };

export type ImportPreview = { path: string, candidates: Array<ImportCandidate>, };

export type ImportResult = { imported: Array<string>, 
/**
 * (profile, why) for each profile not imported.
 */
skipped: Array<[string, string]>, 
/**
 * The AWS config file now pointing the imported profiles at Keyward, if it could be written.
 */
config: string | null, 
/**
 * Why the config file was not written, if it was not.
 */
config_problem: string | null, 
/**
 * What still keeps the AWS CLI from using Keyward for these profiles, one line each.
 */
warnings: Array<string>, 
/**
 * Whether the plaintext keys were removed from the credentials file.
 */
removed_plaintext: boolean, 
/**
 * The 0600 backup of the credentials file (still holding the plaintext keys).
 */
backup: string | null, };
