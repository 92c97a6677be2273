//! Keyward's desktop app: the window over the agent. The agent (`keyward agent --tray`, started
//! by this app when none runs) owns the tray icon and serves CLI tools; this process is only the
//! window and ends when it is closed, so a hidden Keyward costs only the agent's memory.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]
#![forbid(unsafe_code)]

mod commands;
mod host;
mod keycmds;
mod settingscmds;
#[cfg(test)]
mod ui_types;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tauri::{Emitter, Manager, RunEvent};

use commands::AppState;

/// The window's label (capabilities/main.json grants commands to it alone).
pub const MAIN: &str = "main";

/// How often the window asks the agent for its state and questions.
const POLL: Duration = Duration::from_millis(400);

/// Brings the main window to the front, or opens it.
pub fn show_main(app: &tauri::AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let built =
        tauri::WebviewWindowBuilder::new(app, MAIN, tauri::WebviewUrl::App("index.html".into()))
            .title("Keyward")
            .inner_size(1120.0, 740.0)
            .min_inner_size(760.0, 520.0)
            .build();
    if let Err(e) = built {
        tracing::error!("cannot open the Keyward window: {e}");
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    // Revealed secrets and typed passphrases pass through this process: no core dumps, no
    // ptrace by other programs of the user.
    if let Err(e) = keyward_agent::hardening::harden_process() {
        eprintln!("keyward-desktop: refusing to start: {e}");
        std::process::exit(1);
    }
    let started = host::started_by_agent();
    let socket = match host::connect(started.is_some()) {
        Ok(host::Connected::Window(s)) => s,
        // The running agent opens (or brings up) its window: one window at a time.
        Ok(host::Connected::HandedOver) => std::process::exit(0),
        Err(e) => {
            eprintln!("keyward-desktop: {e:#}");
            std::process::exit(1);
        }
    };
    let clipboard = Arc::new(keycmds::Clipboard::default());

    let app = tauri::Builder::default()
        .manage(AppState {
            socket: socket.clone(),
            pending: std::sync::Mutex::new(Vec::new()),
            token: std::sync::Mutex::new(started.flatten()),
        })
        .manage(Arc::clone(&clipboard))
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::passphrase_check,
            commands::totp_enrollment,
            commands::init_vault,
            commands::unlock,
            commands::lock,
            commands::list_keys,
            commands::add_aws,
            commands::add_static,
            commands::add_oauth2,
            commands::add_aliyun,
            commands::remove_key,
            commands::test_key,
            commands::activity,
            commands::factors,
            commands::grants,
            commands::leases,
            commands::revoke_grant,
            commands::decide_approval,
            commands::pending_approvals,
            keycmds::key_detail,
            keycmds::update_key,
            keycmds::rotate_key,
            keycmds::rotate_aws,
            keycmds::reveal_key,
            keycmds::confirm_factor,
            keycmds::copy_key,
            keycmds::copy_usage,
            keycmds::import_aws_preview,
            keycmds::import_aws,
            settingscmds::enroll_security_key,
            settingscmds::unlock_with_security_key,
            settingscmds::add_totp,
            settingscmds::remove_factor,
            settingscmds::new_recovery_codes,
            settingscmds::set_auto_lock,
            settingscmds::set_grants_need_code,
        ])
        .setup(move |app| {
            watch_agent(app.handle().clone(), socket);
            show_main(app.handle());
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            eprintln!("keyward-desktop: cannot start the window system: {e}");
            std::process::exit(1);
        }
    };
    app.run(move |handle, event| {
        // Closing the window ends the app (the agent stays, with the tray icon). A secret copied
        // less than 30 s ago is still cleared from the clipboard first.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
            let socket = handle.state::<AppState>().socket.clone();
            let clipboard = Arc::clone(&clipboard);
            let handle = handle.clone();
            let token = handle.state::<AppState>().token();
            std::thread::spawn(move || {
                if let Ok(mut c) = keyward_agent::client::Client::connect(&socket) {
                    let _ = c.window_closed(token);
                }
                while clipboard.clear_pending() {
                    std::thread::sleep(Duration::from_millis(200));
                }
                handle.exit(0);
            });
        }
    });
}

/// Polls the agent for the window: tells the web view when the vault locks or unlocks, whoever
/// caused it (the CLI, the tray, auto-lock, suspend), hands it each new approval question, and
/// comes to the front when the tray asks. When the agent is gone (Quit in the tray, `keyward
/// agent stop`), the app ends with it.
fn watch_agent(app: tauri::AppHandle, socket: std::path::PathBuf) {
    tauri::async_runtime::spawn(async move {
        let mut locked = None;
        let mut shown: HashSet<String> = HashSet::new();
        let mut failures = 0;
        loop {
            tokio::time::sleep(POLL).await;
            if app.get_webview_window(MAIN).is_none() {
                return;
            }
            let s = socket.clone();
            let polled = tauri::async_runtime::spawn_blocking(move || host::poll(&s)).await;
            let state = match polled {
                Ok(Ok(state)) => {
                    failures = 0;
                    state
                }
                Ok(Err(e)) => {
                    failures += 1;
                    if failures >= 3 {
                        tracing::info!("the agent is gone ({e}): closing the window");
                        app.exit(0);
                        return;
                    }
                    continue;
                }
                Err(_) => continue,
            };
            if locked != Some(state.locked) {
                locked = Some(state.locked);
                // The agent ended the token when the vault locked.
                if state.locked {
                    if let Some(st) = app.try_state::<AppState>() {
                        st.set_token(None);
                    }
                }
                let _ = app.emit("vault-state", serde_json::json!({ "locked": state.locked }));
            }
            if let Some(st) = app.try_state::<AppState>() {
                if let Ok(mut p) = st.pending.lock() {
                    p.clone_from(&state.approvals);
                }
            }
            shown.retain(|id| state.approvals.iter().any(|a| &a.id == id));
            let mut focus = state.focus;
            // The user acted on a notification about a key: show it.
            if let Some(key) = state.show_key {
                focus = true;
                let _ = app.emit("show-key", key);
            }
            for info in state.approvals {
                if shown.insert(info.id.clone()) {
                    focus = true;
                    let _ = app.emit("approval-requested", info);
                }
            }
            if focus {
                let handle = app.clone();
                let _ = app.run_on_main_thread(move || show_main(&handle));
            }
        }
    });
}
