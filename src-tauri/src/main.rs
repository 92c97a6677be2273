//! Keyward's desktop app: a window and a tray icon over the embedded agent.
//!
//! Closing the window destroys the web view (Keyward keeps running in the tray at the agent's
//! cost); "Open" builds it again. The agent keeps serving CLI tools throughout.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod host;
mod keycmds;
mod notify;
mod settingscmds;
mod tray;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tauri::{Emitter, Manager, RunEvent};

use commands::AppState;

/// The window's label (capabilities/main.json grants commands to it alone).
pub const MAIN: &str = "main";

/// Opens the main window, or focuses it if it is open.
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

    let host::Running { agent, stopped } = match host::start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyward-desktop: {e}");
            std::process::exit(1);
        }
    };
    let approvals = agent.approvals.subscribe();

    let app = tauri::Builder::default()
        .manage(AppState {
            agent: Arc::clone(&agent),
            pending: std::sync::Mutex::new(Vec::new()),
        })
        .manage(Arc::new(keycmds::Clipboard::default()))
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
            commands::remove_key,
            commands::test_key,
            commands::activity,
            commands::factors,
            commands::grants,
            commands::revoke_grant,
            commands::decide_approval,
            commands::pending_approvals,
            keycmds::key_detail,
            keycmds::update_key,
            keycmds::rotate_key,
            keycmds::reveal_key,
            keycmds::copy_key,
            keycmds::import_aws_preview,
            keycmds::import_aws,
            settingscmds::enroll_security_key,
            settingscmds::unlock_with_security_key,
            settingscmds::add_totp,
            settingscmds::remove_factor,
            settingscmds::new_recovery_codes,
            settingscmds::set_auto_lock,
        ])
        .setup(move |app| {
            tray::build(app.handle(), !agent.is_unlocked())?;
            watch_vault_state(app.handle().clone(), Arc::clone(&agent));
            forward_approvals(app.handle().clone(), approvals);
            // Without its agent the app has nothing to show: when the agent stops (SIGTERM,
            // `keyward agent stop`, Quit), the app ends too.
            let handle = app.handle().clone();
            std::thread::spawn(move || {
                let res = stopped.recv();
                if let Ok(Err(e)) = res {
                    tracing::error!("the agent stopped: {e}");
                }
                handle.exit(0);
            });
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
    app.run(|_, event| {
        // Closing the last window keeps Keyward in the tray; only Quit (an explicit exit code)
        // ends it.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
}

/// Tells the web view and the tray when the vault locks or unlocks, whoever caused it (the CLI,
/// auto-lock, suspend).
fn watch_vault_state(app: tauri::AppHandle, agent: Arc<keyward_agent::Agent>) {
    tauri::async_runtime::spawn(async move {
        let mut last = None;
        loop {
            let locked = !agent.is_unlocked();
            if last != Some(locked) {
                last = Some(locked);
                tray::set_locked(&app, locked);
                let _ = app.emit("vault-state", serde_json::json!({ "locked": locked }));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// Shows each approval request: when the window was closed to the tray, a desktop notification
/// says who asks, and the window opens with the question; the request goes to the web view.
fn forward_approvals(
    app: tauri::AppHandle,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<keyward_agent::approvals::ApprovalInfo>,
) {
    tauri::async_runtime::spawn(async move {
        while let Some(info) = rx.recv().await {
            if let Some(state) = app.try_state::<AppState>() {
                if let Ok(mut p) = state.pending.lock() {
                    p.retain(|(at, a)| at.elapsed().as_secs() < a.expires_in_secs);
                    p.push((Instant::now(), info.clone()));
                }
            }
            if app.get_webview_window(MAIN).is_none() {
                notify::approval_requested(&info);
            }
            let handle = app.clone();
            let _ = app.run_on_main_thread(move || show_main(&handle));
            let _ = app.emit("approval-requested", info);
        }
    });
}
