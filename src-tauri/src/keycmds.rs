//! Commands of the key detail screen and the import dialog: history, edit, rotate, reveal, copy,
//! and import from the AWS shared credentials file. Each is a thin call into the agent; the
//! clipboard and the user's AWS files are the app's own business, since it runs as the user.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyward_agent::activity::ActivityRecord;
use keyward_agent::client::{Client, ClientError};
use keyward_agent::protocol::{AwsRotated, ErrorCode, KeyUses, Listed, MetaInput, NewSecret};
use keyward_shell::aws::CredentialsFile;
use serde::{Deserialize, Serialize};
use tauri::State;
use zeroize::Zeroizing;

use crate::commands::{w, with_client, AppState, CmdError, KeyRow, Res};

/// How long a copied secret stays on the clipboard, and a revealed one on screen.
pub const SECRET_SECS: u64 = 30;

/// One way a tool gets a key: the exact line, and what it does.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UsageLine {
    tool: String,
    line: String,
    note: String,
}

/// A key with its history and the ways tools get it.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct KeyDetail {
    key: KeyRow,
    history: Vec<ActivityRecord>,
    /// Its lease setting and helper bindings (from the authenticated header: `None` while locked).
    uses: Option<KeyUses>,
    /// What to write or run for each tool.
    usage: Vec<UsageLine>,
}

/// The key's metadata, its lease setting and bindings (`None` while locked).
fn show_with_uses(c: &mut Client, name: &str) -> Result<(Listed, Option<KeyUses>), ClientError> {
    let listed = c.show(name)?;
    let uses = match c.key_uses(name) {
        Ok(u) => Some(u),
        Err(ClientError::Agent(e)) if e.code == ErrorCode::Locked => None,
        Err(e) => return Err(e),
    };
    Ok((listed, uses))
}

/// The usage lines for a key, naming the installed keyward as config lines must.
fn usage_of(listed: &Listed, uses: Option<&KeyUses>) -> Vec<keyward_shell::usage::Usage> {
    let exe = keyward_shell::launch::keyward_binary().unwrap_or_else(|| "keyward".into());
    keyward_shell::usage::usages(&listed.meta, &exe, uses)
}

/// One key's metadata, state, history (audit records about it, newest 200) and usage lines.
#[tauri::command]
pub async fn key_detail(state: State<'_, AppState>, name: String) -> Res<KeyDetail> {
    let ((entry, uses), rows) = with_client(&state, move |c| {
        Ok::<_, ClientError>((show_with_uses(c, &name)?, c.history(&name, 200)?))
    })
    .await?;
    let usage = usage_of(&entry, uses.as_ref())
        .into_iter()
        .map(|u| UsageLine {
            tool: u.tool.to_owned(),
            line: u.line,
            note: u.note,
        })
        .collect();
    Ok(KeyDetail {
        key: KeyRow::from(entry),
        history: rows,
        uses,
        usage,
    })
}

/// Copies usage line `index` of key `name` (worked out again here, so the window cannot put
/// text of its own on the clipboard); nothing secret, so it is not cleared.
#[tauri::command]
pub async fn copy_usage(
    state: State<'_, AppState>,
    clipboard: State<'_, Arc<Clipboard>>,
    name: String,
    index: usize,
) -> Res<()> {
    let (entry, uses) = with_client(&state, move |c| show_with_uses(c, &name)).await?;
    let line = usage_of(&entry, uses.as_ref())
        .into_iter()
        .nth(index)
        .map(|u| u.line)
        .ok_or_else(|| CmdError::new(ErrorCode::Invalid, "no such usage line"))?;
    let board = Arc::clone(&clipboard);
    tauri::async_runtime::spawn_blocking(move || board.copy_plain(&line))
        .await
        .map_err(clip_err)?
}

/// Replaces a key's owner, purpose, tags, rotation interval and expiry.
#[tauri::command]
pub async fn update_key(state: State<'_, AppState>, name: String, meta: MetaInput) -> Res<KeyRow> {
    let entry = with_client(&state, move |c| c.update(&name, meta)).await?;
    Ok(KeyRow::from(entry))
}

/// The new secret typed in the rotate dialog.
#[derive(Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RotateInput {
    /// A new AWS key pair.
    Aws {
        /// AKIA… id.
        access_key_id: String,
        /// Its secret.
        secret_access_key: String,
    },
    /// A new token.
    Static {
        /// The token.
        value: String,
    },
    /// A new OAuth2 client secret.
    Oauth2 {
        /// The client secret.
        client_secret: String,
    },
    /// A new Alibaba Cloud AccessKey pair.
    Aliyun {
        /// LTAI… id.
        access_key_id: String,
        /// Its secret.
        access_key_secret: String,
    },
}

/// Stores a key's new secret after it was rotated at the provider.
#[tauri::command]
pub async fn rotate_key(
    state: State<'_, AppState>,
    name: String,
    secret: RotateInput,
) -> Res<KeyRow> {
    let secret = NewSecret::from(secret);
    let entry = with_client(&state, move |c| c.rotate(&name, secret)).await?;
    Ok(KeyRow::from(entry))
}

/// Rotates an AWS key at IAM (new key, checked, stored; the old one deactivated and deleted
/// after `grace_secs`, a day when `None`): the agent's crash-safe rotation, as `keyward rotate`.
#[tauri::command]
pub async fn rotate_aws(
    state: State<'_, AppState>,
    name: String,
    grace_secs: Option<u64>,
) -> Res<AwsRotated> {
    with_client(&state, move |c| c.rotate_aws(&name, grace_secs)).await
}

impl From<RotateInput> for NewSecret {
    /// What the dialog typed, as the agent takes it (ids and secrets trimmed; a token as is).
    fn from(r: RotateInput) -> Self {
        match r {
            RotateInput::Aws {
                access_key_id,
                secret_access_key,
            } => NewSecret::Aws {
                access_key_id: access_key_id.trim().to_owned(),
                secret_access_key: w(secret_access_key.trim().to_owned()),
            },
            RotateInput::Static { value } => NewSecret::Static { value: w(value) },
            RotateInput::Oauth2 { client_secret } => NewSecret::Oauth2 {
                client_secret: w(client_secret.trim().to_owned()),
            },
            RotateInput::Aliyun {
                access_key_id,
                access_key_secret,
            } => NewSecret::Aliyun {
                access_key_id: access_key_id.trim().to_owned(),
                access_key_secret: w(access_key_secret.trim().to_owned()),
            },
        }
    }
}

/// A secret the user asked to see, with how long the screen may show it.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Revealed {
    value: String,
    hide_after_secs: u64,
}

/// The stored secret of a key, for the Reveal button only (audited by the agent).
#[tauri::command]
pub async fn reveal_key(state: State<'_, AppState>, name: String) -> Res<Revealed> {
    let token = state.token().unwrap_or_default();
    let secret = with_client(&state, move |c| c.reveal(&name, token)).await?;
    Ok(Revealed {
        value: secret.expose().to_owned(),
        hide_after_secs: SECRET_SECS,
    })
}

/// Confirms a current authenticator code for this window: for the next minute it may reveal
/// and copy stored secrets (the agent checks the code, once, throttled and audited).
#[tauri::command]
pub async fn confirm_factor(state: State<'_, AppState>, code: String) -> Res<()> {
    let token = state.token().unwrap_or_default();
    with_client(&state, move |c| c.confirm_factor(token, w(code))).await
}

/// The clipboard, and which copy is the latest (only that one's timer may clear it).
#[derive(Default)]
pub struct Clipboard {
    board: std::sync::Mutex<Option<arboard::Clipboard>>,
    generation: AtomicU64,
    /// Clears still to come (the app waits for them before it exits).
    timers: AtomicU64,
}

fn clip_err(e: impl std::fmt::Display) -> CmdError {
    CmdError::new(
        ErrorCode::Internal,
        format!("cannot use the clipboard: {e}"),
    )
}

impl Clipboard {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut arboard::Clipboard) -> Result<T, arboard::Error>,
    ) -> Res<T> {
        let mut guard = self
            .board
            .lock()
            .map_err(|_| clip_err("clipboard state poisoned"))?;
        if guard.is_none() {
            *guard = Some(arboard::Clipboard::new().map_err(clip_err)?);
        }
        match guard.as_mut() {
            Some(b) => f(b).map_err(clip_err),
            None => Err(clip_err("no clipboard")),
        }
    }

    /// Puts `value` on the clipboard and clears it after `after` unless something else was
    /// copied since.
    fn copy_for(self: &Arc<Self>, value: Zeroizing<String>, after: Duration) -> Res<()> {
        self.with(|b| b.set_text(value.as_str()))?;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.timers.fetch_add(1, Ordering::SeqCst);
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            std::thread::sleep(after);
            me.clear_if(generation, &value);
            me.timers.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(())
    }

    /// Puts text that is not secret on the clipboard; a secret's pending clear no longer
    /// applies (it is gone from the clipboard).
    fn copy_plain(&self, text: &str) -> Res<()> {
        self.with(|b| b.set_text(text))?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Whether a copied secret is still waiting to be cleared.
    pub fn clear_pending(&self) -> bool {
        self.timers.load(Ordering::SeqCst) > 0
    }

    fn clear_if(&self, generation: u64, value: &str) {
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let res = self.with(|b| {
            let now = Zeroizing::new(b.get_text().unwrap_or_default());
            if now.as_str() == value {
                b.clear()?;
            }
            Ok(())
        });
        if let Err(e) = res {
            tracing::warn!("could not clear the clipboard: {}", e.message());
        }
    }
}

/// Copies a key's secret to the clipboard in Rust (it never reaches the web view) and clears it
/// after [`SECRET_SECS`] if it is still there.
#[tauri::command]
pub async fn copy_key(
    state: State<'_, AppState>,
    clipboard: State<'_, Arc<Clipboard>>,
    name: String,
) -> Res<u64> {
    let token = state.token().unwrap_or_default();
    let secret = with_client(&state, move |c| c.reveal(&name, token)).await?;
    let value = Zeroizing::new(secret.expose().to_owned());
    let (board, after) = (Arc::clone(&clipboard), Duration::from_secs(SECRET_SECS));
    tauri::async_runtime::spawn_blocking(move || board.copy_for(value, after))
        .await
        .map_err(clip_err)??;
    Ok(SECRET_SECS)
}

/// A profile found in the AWS credentials file, and whether it can be imported.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ImportCandidate {
    name: String,
    access_key_hint: Option<String>,
    region: Option<String>,
    /// Why it cannot be imported, if it cannot.
    problem: Option<String>,
}

/// What the import dialog shows before anything changes.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ImportPreview {
    path: String,
    candidates: Vec<ImportCandidate>,
}

/// Lists the long-lived keys in the AWS shared credentials file (nothing is changed).
#[tauri::command]
pub async fn import_aws_preview(state: State<'_, AppState>) -> Res<ImportPreview> {
    let file = CredentialsFile::read()?;
    let entries = match file.exists() {
        true => with_client(&state, |c| c.list()).await?,
        false => Vec::new(),
    };
    let existing: Vec<String> = entries.into_iter().map(|e| e.meta.name).collect();
    let candidates = file.candidates(&existing).into_iter().map(Into::into);
    Ok(ImportPreview {
        path: file.path.display().to_string(),
        candidates: candidates.collect(),
    })
}

impl From<keyward_shell::aws::Candidate> for ImportCandidate {
    fn from(c: keyward_shell::aws::Candidate) -> Self {
        ImportCandidate {
            name: c.name,
            access_key_hint: c.access_key_hint,
            region: c.region,
            problem: c.problem,
        }
    }
}

/// What an import did.
#[derive(Serialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ImportResult {
    imported: Vec<String>,
    /// (profile, why) for each profile not imported.
    skipped: Vec<(String, String)>,
    /// The AWS config file now pointing the imported profiles at Keyward, if it could be written.
    config: Option<String>,
    /// Why the config file was not written, if it was not.
    config_problem: Option<String>,
    /// What still keeps the AWS CLI from using Keyward for these profiles, one line each.
    warnings: Vec<String>,
    /// Whether the plaintext keys were removed from the credentials file.
    removed_plaintext: bool,
    /// The 0600 backup of the credentials file (still holding the plaintext keys).
    backup: Option<String>,
}

/// Imports the chosen profiles: stores each key, points the AWS config at Keyward, and removes
/// the plaintext keys from the credentials file when asked (keeping a 0600 backup). The same
/// steps as `keyward import aws` (`keyward_shell::aws`).
#[tauri::command]
pub async fn import_aws(
    state: State<'_, AppState>,
    names: Vec<String>,
    remove_plaintext: bool,
) -> Res<ImportResult> {
    with_client(&state, move |c| import_chosen(c, &names, remove_plaintext)).await
}

fn import_chosen(c: &mut Client, names: &[String], remove: bool) -> Res<ImportResult> {
    let file = CredentialsFile::read()?;
    let done = file.import(c, names, None)?;
    let mut result = ImportResult {
        skipped: done.skipped,
        ..Default::default()
    };
    if done.imported.is_empty() {
        return Ok(result);
    }
    let pairs: Vec<(String, String)> = done
        .imported
        .iter()
        .map(|n| (n.clone(), n.clone()))
        .collect();
    match keyward_shell::aws::point_profiles(&pairs) {
        Ok(p) => {
            result.config = Some(p.config.display().to_string());
            result.warnings = p.warnings;
        }
        Err(e) => result.config_problem = Some(e.to_string()),
    }
    if remove {
        let backup = file.remove_plaintext(&done.imported)?;
        result.removed_plaintext = true;
        result.backup = backup.map(|b| b.display().to_string());
    }
    result.imported = done.imported;
    Ok(result)
}
