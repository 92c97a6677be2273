//! Commands of the key detail screen and the import dialog: history, edit, rotate, reveal, copy,
//! and import from the AWS shared credentials file. Each is a thin call into the agent; the
//! clipboard and the user's AWS files are the app's own business, since it runs as the user.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyward_agent::protocol::{ErrorCode, MetaInput, NewSecret, Reply, Request};
use keyward_core::awsfiles;
use keyward_core::catalog::AuditRow;
use serde::{Deserialize, Serialize};
use tauri::State;
use zeroize::Zeroizing;

use crate::commands::{call, unexpected, w, with_client, AppState, CmdError, KeyRow, Res};

/// How long a copied secret stays on the clipboard, and a revealed one on screen.
pub const SECRET_SECS: u64 = 30;

/// A key with its history.
#[derive(Serialize)]
pub struct KeyDetail {
    key: KeyRow,
    history: Vec<AuditRow>,
}

/// One key's metadata, state and history (audit records about it, newest 200).
#[tauri::command]
pub async fn key_detail(state: State<'_, AppState>, name: String) -> Res<KeyDetail> {
    let (entry, rows) = with_client(&state, move |c| {
        Ok((c.show(&name)?, c.history(&name, 200)?))
    })
    .await?;
    Ok(KeyDetail {
        key: KeyRow::now(entry),
        history: rows,
    })
}

/// Replaces a key's owner, purpose, tags, rotation interval and expiry.
#[tauri::command]
pub async fn update_key(state: State<'_, AppState>, name: String, meta: MetaInput) -> Res<KeyRow> {
    let entry = with_client(&state, move |c| c.update(&name, meta)).await?;
    Ok(KeyRow::now(entry))
}

/// The new secret typed in the rotate dialog.
#[derive(Deserialize)]
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
}

/// Stores a key's new secret after it was rotated at the provider.
#[tauri::command]
pub async fn rotate_key(
    state: State<'_, AppState>,
    name: String,
    secret: RotateInput,
) -> Res<KeyRow> {
    let secret = match secret {
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
    };
    let entry = with_client(&state, move |c| c.rotate(&name, secret)).await?;
    Ok(KeyRow::now(entry))
}

/// A secret the user asked to see, with how long the screen may show it.
#[derive(Serialize)]
pub struct Revealed {
    value: String,
    hide_after_secs: u64,
}

/// The stored secret of a key, for the Reveal button only (audited by the agent).
#[tauri::command]
pub async fn reveal_key(state: State<'_, AppState>, name: String) -> Res<Revealed> {
    let token = state.token().unwrap_or_default();
    let Reply::Revealed { secret } = call(&state, Request::Reveal { name, token }).await? else {
        return Err(unexpected());
    };
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
    match call(
        &state,
        Request::ConfirmFactor {
            token,
            code: w(code),
        },
    )
    .await?
    {
        Reply::Done => Ok(()),
        _ => Err(unexpected()),
    }
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
    let Reply::Revealed { secret } = call(&state, Request::Reveal { name, token }).await? else {
        return Err(unexpected());
    };
    let value = Zeroizing::new(secret.expose().to_owned());
    let clipboard = Arc::clone(&clipboard);
    tauri::async_runtime::spawn_blocking(move || {
        clipboard.copy_for(value, Duration::from_secs(SECRET_SECS))
    })
    .await
    .map_err(clip_err)??;
    Ok(SECRET_SECS)
}

/// A profile found in the AWS credentials file, and whether it can be imported.
#[derive(Serialize)]
pub struct ImportCandidate {
    name: String,
    access_key_hint: Option<String>,
    region: Option<String>,
    /// Why it cannot be imported, if it cannot.
    problem: Option<String>,
}

/// What the import dialog shows before anything changes.
#[derive(Serialize)]
pub struct ImportPreview {
    path: String,
    candidates: Vec<ImportCandidate>,
}

fn file_err(e: awsfiles::AwsFileError) -> CmdError {
    CmdError::new(ErrorCode::Invalid, e.to_string())
}

fn read_credentials() -> Res<(std::path::PathBuf, Option<String>)> {
    let path = awsfiles::credentials_path().map_err(file_err)?;
    match std::fs::read(&path) {
        Ok(b) => String::from_utf8(b)
            .map(|t| (path.clone(), Some(t)))
            .map_err(|_| {
                CmdError::new(
                    ErrorCode::Invalid,
                    format!("{} is not UTF-8 text", path.display()),
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((path, None)),
        Err(e) => Err(CmdError::new(
            ErrorCode::Invalid,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Lists the long-lived keys in the AWS shared credentials file (nothing is changed).
#[tauri::command]
pub async fn import_aws_preview(state: State<'_, AppState>) -> Res<ImportPreview> {
    let (path, text) = read_credentials()?;
    let Some(text) = text else {
        return Ok(ImportPreview {
            path: path.display().to_string(),
            candidates: Vec::new(),
        });
    };
    let entries = with_client(&state, |c| c.list()).await?;
    let existing: Vec<String> = entries.into_iter().map(|e| e.name).collect();
    let (profiles, incomplete) = awsfiles::parse_credentials(&text);
    let mut candidates: Vec<ImportCandidate> = profiles
        .iter()
        .map(|p| ImportCandidate {
            name: p.name.clone(),
            access_key_hint: Some(keyward_core::entry::access_key_hint(&p.access_key_id)),
            region: p.region.clone(),
            problem: p.import_problem().map(str::to_owned).or_else(|| {
                existing
                    .contains(&p.name)
                    .then(|| "a key with this name is already in Keyward".to_owned())
            }),
        })
        .collect();
    candidates.extend(incomplete.into_iter().map(|name| ImportCandidate {
        name,
        access_key_hint: None,
        region: None,
        problem: Some("no access key id and secret pair".into()),
    }));
    Ok(ImportPreview {
        path: path.display().to_string(),
        candidates,
    })
}

/// What an import did.
#[derive(Serialize, Default)]
pub struct ImportResult {
    imported: Vec<String>,
    /// (profile, why) for each profile not imported.
    skipped: Vec<(String, String)>,
    /// The AWS config file now pointing the imported profiles at Keyward, if it could be written.
    config: Option<String>,
    /// Why the config file was not written, if it was not.
    config_problem: Option<String>,
    /// Whether the plaintext keys were removed from the credentials file.
    removed_plaintext: bool,
    /// The 0600 backup of the credentials file (still holding the plaintext keys).
    backup: Option<String>,
}

/// The `keyward` command next to this app, or on PATH: what `credential_process` runs.
fn keyward_cli() -> Option<std::path::PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("keyward")));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("keyward"));
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| p.is_file())
        .map(|p| p.canonicalize().unwrap_or(p))
}

/// Imports the chosen profiles: stores each key, points the AWS config at Keyward, and removes
/// the plaintext keys from the credentials file when asked (keeping a 0600 backup).
#[tauri::command]
pub async fn import_aws(
    state: State<'_, AppState>,
    names: Vec<String>,
    remove_plaintext: bool,
) -> Res<ImportResult> {
    let (path, text) = read_credentials()?;
    let text = text.ok_or_else(|| {
        CmdError::new(
            ErrorCode::NotFound,
            format!("no AWS credentials file at {}", path.display()),
        )
    })?;
    let (profiles, _) = awsfiles::parse_credentials(&text);
    let mut result = ImportResult::default();
    for name in &names {
        let Some(p) = profiles.iter().find(|p| &p.name == name) else {
            result
                .skipped
                .push((name.clone(), "not in the credentials file".into()));
            continue;
        };
        if let Some(why) = p.import_problem() {
            result.skipped.push((name.clone(), why.to_owned()));
            continue;
        }
        let req = Request::import_aws(p, &path, None);
        match call(&state, req).await {
            Ok(_) => result.imported.push(p.name.clone()),
            Err(e) => result
                .skipped
                .push((p.name.clone(), e.message().to_owned())),
        }
    }
    if result.imported.is_empty() {
        return Ok(result);
    }
    match point_config_at_keyward(&result.imported) {
        Ok(config) => result.config = Some(config),
        Err(e) => result.config_problem = Some(e.message().to_owned()),
    }
    if remove_plaintext {
        let names: Vec<&str> = result.imported.iter().map(String::as_str).collect();
        let new_text = awsfiles::remove_profiles(&text, &names);
        let backup =
            awsfiles::write_atomic_with_backup(&path, &new_text, 0o600).map_err(file_err)?;
        result.removed_plaintext = true;
        result.backup = backup.map(|b| b.display().to_string());
    }
    Ok(result)
}

/// Sets `credential_process` for each profile in the AWS config file (one atomic write).
fn point_config_at_keyward(names: &[String]) -> Res<String> {
    let cli = keyward_cli().ok_or_else(|| {
        CmdError::new(
            ErrorCode::NotFound,
            "the keyward command was not found next to the app or on PATH: install it, then run `keyward setup aws NAME`",
        )
    })?;
    let path = awsfiles::config_path().map_err(file_err)?;
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(CmdError::new(
                ErrorCode::Invalid,
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    };
    let mut text = old.clone();
    for name in names {
        let command = awsfiles::credential_process_command(&cli, name).map_err(file_err)?;
        text = awsfiles::set_credential_process(&text, name, &command).map_err(file_err)?;
    }
    if text != old {
        awsfiles::write_atomic_with_backup(&path, &text, awsfiles::mode_to_keep(&path))
            .map_err(file_err)?;
    }
    Ok(path.display().to_string())
}
