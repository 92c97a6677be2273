//! The tray icon: locked or unlocked at a glance, and Lock now / Open / Quit.

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};

use crate::commands::AppState;

const TRAY: &str = "keyward";

fn icon(locked: bool) -> tauri::Result<Image<'static>> {
    Image::from_bytes(if locked {
        include_bytes!("../../icons/tray-locked.png")
    } else {
        include_bytes!("../../icons/tray-unlocked.png")
    })
}

/// Builds the tray icon and its menu.
pub fn build(app: &AppHandle, locked: bool) -> tauri::Result<()> {
    let lock = MenuItem::with_id(app, "lock", "Lock now", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Keyward", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Keyward", true, None::<&str>)?;
    let sep = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&lock, &open, &sep, &quit])?;
    TrayIconBuilder::with_id(TRAY)
        .icon(icon(locked)?)
        .tooltip(tooltip(locked))
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "lock" => {
                if let Some(state) = app.try_state::<AppState>() {
                    state
                        .agent
                        .lock(&keyward_agent::peer::this_process(), "tray");
                }
            }
            "open" => crate::show_main(app),
            "quit" => {
                if let Some(state) = app.try_state::<AppState>() {
                    state
                        .agent
                        .lock(&keyward_agent::peer::this_process(), "app quit");
                    state.agent.shutdown.notify_one();
                }
                app.exit(0);
            }
            _ => {}
        })
        .build(app)?;
    Ok(())
}

fn tooltip(locked: bool) -> &'static str {
    if locked {
        "Keyward — locked"
    } else {
        "Keyward — unlocked"
    }
}

/// Shows the vault's state in the tray.
pub fn set_locked(app: &AppHandle, locked: bool) {
    if let Some(t) = app.tray_by_id(TRAY) {
        if let Ok(i) = icon(locked) {
            let _ = t.set_icon(Some(i));
        }
        let _ = t.set_tooltip(Some(tooltip(locked)));
    }
}
