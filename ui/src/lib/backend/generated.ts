// Generated from the Rust types by crates/keyward-agent/tests/ui_types.rs (ts-rs): do not
// edit. After changing a Rust type, run that test with KEYWARD_WRITE_UI_TYPES=1 and commit this.

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

export type WireSecret = string;

export type ErrorCode = "bad_request" | "version" | "no_vault" | "locked" | "wrong_credentials" | "throttled" | "not_found" | "invalid" | "keystore" | "mfa_required" | "upstream" | "audit" | "denied" | "forbidden" | "tampered" | "factor_needed" | "policy" | "internal";

export type EntryKind = "aws" | "static" | "oauth2" | "aliyun";

export type EntryState = "ok" | "due_soon" | "overdue" | "expired" | "unused";

export type ClientAuth = "basic" | "post";

export type AwsConfig = { 
/**
 * First and last characters of the access key id, for display (`AKIA…WXYZ`).
 */
access_key_hint: string, 
/**
 * Role to assume; GetSessionToken is used when absent.
 */
role_arn?: string | null, 
/**
 * MFA device serial or ARN, when the account requires MFA for STS.
 */
mfa_serial?: string | null, 
/**
 * Region for the STS call.
 */
region?: string | null, 
/**
 * Lifetime of issued session credentials in seconds.
 */
session_duration_secs: number, 
/**
 * STS endpoint override (tests, private endpoints).
 */
sts_endpoint?: string | null, 
/**
 * IAM endpoint override for rotation (tests, private endpoints); AWS's global one when
 * absent.
 */
iam_endpoint?: string | null, };

export type OAuth2Config = { 
/**
 * The client identifier (public, shown).
 */
client_id: string, 
/**
 * The authorization server's token endpoint.
 */
token_url: string, 
/**
 * Scopes asked for; the server's default for the client when empty.
 */
scopes?: Array<string>, 
/**
 * Client authentication method.
 */
auth?: ClientAuth, 
/**
 * Token introspection endpoint (RFC 7662), used by "test this key" to confirm whose the
 * token is and what it may do.
 */
introspection_url?: string | null, };

export type AliyunConfig = { 
/**
 * First and last characters of the AccessKey ID, for display (`LTAI…WXYZ`).
 */
access_key_hint: string, 
/**
 * RAM role to assume (`acs:ram::<account>:role/<name>`). Without one the key has no
 * short-lived form: it goes out as itself (the CLI's `AK` mode), only where the policy
 * allows long-lived values to leave (`static_leases`).
 */
role_arn?: string | null, 
/**
 * Region (`cn-hangzhou`): the STS endpoint's and the one handed to tools.
 */
region?: string | null, 
/**
 * Lifetime of issued STS tokens in seconds.
 */
session_duration_secs: number, 
/**
 * STS endpoint override (tests, private endpoints); `sts.aliyuncs.com` or the region's when
 * absent.
 */
sts_endpoint?: string | null, };

export type EntryConfig = { 
/**
 * Present for `aws` entries.
 */
aws?: AwsConfig | null, 
/**
 * Present for `oauth2` entries.
 */
oauth2?: OAuth2Config | null, 
/**
 * Present for `aliyun` entries.
 */
aliyun?: AliyunConfig | null, };

export type ProviderUse = { 
/**
 * The latest use the provider reported that was not Keyward's own check (RFC 3339);
 * `None` when it reported none.
 */
used: string | null, 
/**
 * The service that use was of (`sts`, `s3`, …), as the provider names it.
 */
service: string | null, 
/**
 * The region that use was in.
 */
region: string | null, 
/**
 * When Keyward last asked (RFC 3339), whether or not the answer came.
 */
checked: string, 
/**
 * Why the last question got no answer (one line, never a secret); `None` when it did.
 */
error: string | null, };

export type AwsRotated = { 
/**
 * The key's name.
 */
name: string, 
/**
 * The IAM user whose access key was rotated.
 */
user_name: string, 
/**
 * The key replaced.
 */
old_key_id: string, 
/**
 * The key now stored.
 */
new_key_id: string, 
/**
 * Whether the old key is deleted at AWS already.
 */
old_deleted: boolean, 
/**
 * When the inactive old key will be deleted (RFC 3339), while it is kept.
 */
delete_after: string | null, 
/**
 * What was finished first: an interrupted rotation, an old key deleted early to make room.
 */
notes: Array<string>, };

export type ShowKey = { 
/**
 * The key's name.
 */
name: string, 
/**
 * Open its rotation ("Rotate now"), not only its detail.
 */
rotate: boolean, };

export type EntryMeta = { 
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
config: EntryConfig, };

export type MetaInput = { 
/**
 * Owner.
 */
owner?: string, 
/**
 * Purpose.
 */
purpose?: string, 
/**
 * Tags.
 */
tags: Array<string>, 
/**
 * Rotation interval in days.
 */
rotation_interval_days?: number, 
/**
 * Expiry (RFC 3339).
 */
expires?: string, };

export type AwsKeyInput = { 
/**
 * AKIA… id.
 */
access_key_id: string, 
/**
 * Secret access key.
 */
secret_access_key: WireSecret, 
/**
 * Role to assume.
 */
role_arn?: string, 
/**
 * MFA serial.
 */
mfa_serial?: string, 
/**
 * Region.
 */
region?: string, 
/**
 * Session duration in seconds.
 */
session_duration_secs?: number, 
/**
 * STS endpoint override.
 */
sts_endpoint?: string, 
/**
 * IAM endpoint override (where rotation creates and retires keys).
 */
iam_endpoint?: string, };

export type OAuth2KeyInput = { 
/**
 * Client id.
 */
client_id: string, 
/**
 * Client secret.
 */
client_secret: WireSecret, 
/**
 * Token endpoint.
 */
token_url: string, 
/**
 * Scopes to ask for (none: the server's default).
 */
scopes: Array<string>, 
/**
 * Client authentication (default: HTTP Basic).
 */
auth?: ClientAuth, 
/**
 * Introspection endpoint, for "test this key".
 */
introspection_url?: string, };

export type AliyunKeyInput = { 
/**
 * LTAI… id.
 */
access_key_id: string, 
/**
 * Its secret.
 */
access_key_secret: WireSecret, 
/**
 * RAM role to assume; without one the AccessKey itself goes out (the CLI's `AK` mode).
 */
role_arn?: string, 
/**
 * Region (`cn-hangzhou`).
 */
region?: string, 
/**
 * Token lifetime in seconds (3600 when absent).
 */
session_duration_secs?: number, 
/**
 * STS endpoint override.
 */
sts_endpoint?: string, };

export type LeaseMode = "env" | "file";

export type HelperTool = "git" | "docker";

export type BindingInfo = { 
/**
 * The tool.
 */
tool: HelperTool, 
/**
 * The host.
 */
host: string, 
/**
 * The key's name.
 */
key: string, 
/**
 * The user name given with it.
 */
username?: string | null, };

export type KeyUses = { 
/**
 * How a static key may be leased (`keyward edit NAME --allow-lease`), if at all.
 */
lease: LeaseMode | null, 
/**
 * The hosts git's or docker's helper answers for with it.
 */
bindings: Array<BindingInfo>, };

export type ReconcileNote = { 
/**
 * Entry name.
 */
name: string, 
/**
 * What was done.
 */
action: string, };

export type Standing = { 
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

export type Listed = { 
/**
 * Its metadata.
 */
meta: EntryMeta, 
/**
 * Where it stands.
 */
standing: Standing, };

export type PolicyLimit = { 
/**
 * Its name in the file (`max_key_age_days`).
 */
name: string, 
/**
 * Its value as the file writes it.
 */
value: string, };

export type PolicyRule = { 
/**
 * Its name.
 */
name: string, 
/**
 * The kinds of key it covers (empty: every kind).
 */
kinds: Array<EntryKind>, 
/**
 * The tags it covers (empty: any tags).
 */
tags: Array<string>, 
/**
 * What it sets.
 */
limits: Array<PolicyLimit>, };

export type PolicyInfo = { 
/**
 * The file the agent reads (`/etc/keyward/policy.toml`).
 */
path: string, 
/**
 * SHA-256 of the file in force, hex (`sha256sum` of it matches); `None`: no policy file.
 */
sha256: string | null, 
/**
 * When it took effect (RFC 3339).
 */
since: string | null, 
/**
 * The limits on every key, as the file writes them.
 */
defaults: Array<PolicyLimit>, 
/**
 * The rules, in the file's order.
 */
rules: Array<PolicyRule>, 
/**
 * Why the file as it is now is not used (its line and reason); the last good policy stays
 * in force meanwhile.
 */
refused: string | null, 
/**
 * No good policy was ever read while the file exists: nothing is issued until it is fixed.
 */
unusable: boolean, };

export type KeyStates = { 
/**
 * Nothing due.
 */
ok: number, 
/**
 * Rotation or expiry within the reminder window.
 */
due_soon: number, 
/**
 * Past their rotation age.
 */
overdue: number, 
/**
 * Past their expiry.
 */
expired: number, 
/**
 * Unused for longer than the policy allows.
 */
unused: number, 
/**
 * Every key not ok, worst first, then by name.
 */
attention: Array<Listed>, };

export type Forwarding = { 
/**
 * The receiver: `host:port`, `tls://host:port`, `journal` or `journal:NAMESPACE`.
 */
target: string, 
/**
 * The last record the receiver has been sent.
 */
sent_seq: number, 
/**
 * Why the last attempt failed, while it keeps failing.
 */
error: string | null, };

export type StatusInfo = { 
/**
 * Agent version.
 */
agent_version: string, 
/**
 * Agent pid.
 */
agent_pid: number, 
/**
 * Whether a vault exists.
 */
vault: boolean, 
/**
 * Whether it is locked.
 */
locked: boolean, 
/**
 * `keychain` or `file`.
 */
keystore: string | null, 
/**
 * Number of keys.
 */
entries: number, 
/**
 * Auto-lock after this many idle seconds.
 */
auto_lock_secs: number, 
/**
 * Seconds until auto-lock (when unlocked).
 */
locks_in_secs: number | null, 
/**
 * Seconds before another unlock attempt is allowed.
 */
unlock_wait_secs: number, 
/**
 * Catalog path.
 */
catalog: string, 
/**
 * What startup reconciliation fixed.
 */
reconciled: Array<ReconcileNote>, 
/**
 * Whether the agent process could be dumped or ptrace-attached (false when hardened).
 */
dumpable: boolean, 
/**
 * Whether this agent runs for the desktop app (tray icon, opens the window).
 */
desktop: boolean, 
/**
 * Whether standing grants need a current authenticator code (known while unlocked).
 */
grants_need_code: boolean | null, 
/**
 * The administrator's policy in force.
 */
policy: PolicyInfo, 
/**
 * How many keys stand where, and the ones that need action.
 */
keys: KeyStates, 
/**
 * How far the audit trail has been forwarded, per receiver the policy names (a syslog
 * receiver, the journal).
 */
forwarding: Array<Forwarding>, 
/**
 * The audit trail's last sequence number.
 */
audit_head: number, };

export type SlotKind = "totp" | "recovery" | "fido2";

export type FactorInfo = { 
/**
 * Slot id (used to remove it).
 */
id: string, 
/**
 * Kind.
 */
kind: SlotKind, 
/**
 * User label.
 */
label: string, 
/**
 * When enrolled.
 */
created: string, };

export type ProcessInfo = { 
/**
 * Process id.
 */
pid: number, 
/**
 * Executable path, if readable.
 */
exe: string | null, 
/**
 * For an interpreter (python, node, a shell…), the script it runs: the executable alone
 * would name every Python tool the same.
 */
script?: string | null, 
/**
 * Why the executable (and script) do not say which code runs, when they do not: an
 * interpreter given code on its command line or stdin, or an environment that injects code
 * (`LD_PRELOAD`, `PYTHONPATH`, …). Such a process gets no standing grant.
 */
unvouched?: string | null, };

export type Actor = { 
/**
 * Peer uid.
 */
uid: number | null, 
/**
 * Peer pid (for display; never used to authorize on its own).
 */
pid: number | null, 
/**
 * Executable of the peer and its ancestors, nearest first (`keyward`, `aws`, `bash`, …).
 */
chain: Array<ProcessInfo>, };

export type ActivityKind = "read" | "session" | "issue" | "approval" | "change" | "system";

export type ActivityRecord = { 
/**
 * Position in the chain, from 1.
 */
seq: number, 
/**
 * RFC 3339 UTC time.
 */
ts: string, 
/**
 * The stored action name (`issue`, `unlock`, `settings.auto_lock`, …).
 */
action: string, 
/**
 * The key or profile concerned, if any.
 */
target: string | null, 
/**
 * `ok`, `denied`, `failed`, …
 */
outcome: string, 
/**
 * Who asked.
 */
actor: Actor, 
/**
 * Non-secret details (structured, as stored).
 */
detail: JsonValue, 
/**
 * What kind of event.
 */
kind: ActivityKind, 
/**
 * The program that asked, in one line (its script for an interpreter), when known.
 */
client: string | null, 
/**
 * What happened, in words.
 */
summary: string, 
/**
 * Hash of the previous record (hex).
 */
prev_hash: string, 
/**
 * Hash of this record (hex).
 */
hash: string, };

export type ClientId = { 
/**
 * Executable path.
 */
exe: string, 
/**
 * Script path when the executable is an interpreter.
 */
script?: string | null, 
/**
 * Why the executable and script do not say which code runs (see
 * [`ProcessInfo::unvouched`]): such a client is allowed one request at a time, never by a
 * standing grant.
 */
unvouched?: string | null, };

export type Decision = "once" | { "hours": number } | "until_lock" | "deny";

export type ApprovalInfo = { 
/**
 * Random id to answer with.
 */
id: string, 
/**
 * The program asking.
 */
client: ClientId, 
/**
 * The whole process chain, nearest first (keyward, the tool, its shell …).
 */
chain: Array<ProcessInfo>, 
/**
 * Profile asked for.
 */
profile: string, 
/**
 * Kind of key behind the profile (what the program would get: STS session credentials or
 * an OAuth2 access token).
 */
kind: EntryKind, 
/**
 * Lifetime of the credential it would get; `None` when the server decides (OAuth2).
 */
ttl_secs: number | null, 
/**
 * Seconds left to decide.
 */
expires_in_secs: number, 
/**
 * An allow for hours or until lock needs a current authenticator code with the answer
 * (the vault's setting).
 */
standing_needs_code: boolean, };

export type GrantInfo = { 
/**
 * Id to revoke with.
 */
id: string, 
/**
 * Program.
 */
client: ClientId, 
/**
 * Profile.
 */
profile: string, 
/**
 * When it was granted (RFC 3339).
 */
granted: string, 
/**
 * When it ends (RFC 3339); `None`: when the vault locks.
 */
expires: string | null, };
