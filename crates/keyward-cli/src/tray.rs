//! `keyward agent --tray`: the agent of the desktop app. It is the usual agent plus a tray icon
//! (a StatusNotifierItem over D-Bus, no GUI toolkit), desktop notifications, and the app's window
//! started on demand. The window (`keyward-desktop`) is a process of its own that ends when it is
//! closed, so Keyward in the tray costs only this process's memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use keyward_agent::approvals::ApprovalInfo;
use keyward_agent::{Agent, AgentOptions};
use ksni::TrayMethods;

use crate::reminders;

/// A window started this recently is still on its way: do not start another.
const LAUNCH_GRACE: Duration = Duration::from_secs(10);

/// The app to open: `keyward-desktop` beside this executable. Fixed by the installation, not
/// by a flag: whoever could name the app could have the agent hand a window token (which
/// reveals keys) to a program of their choosing.
pub fn app_path() -> Result<PathBuf> {
    let path = std::env::current_exe()
        .context("cannot find the keyward executable")?
        .with_file_name("keyward-desktop");
    // The agent trusts the app by its executable's path, as /proc shows it: canonical.
    std::fs::canonicalize(&path).with_context(|| {
        format!(
            "cannot find the desktop app at {} (install keyward-desktop beside the keyward command)",
            path.display()
        )
    })
}

/// Variables the window is started with (the rest of the agent's environment is dropped, so
/// nothing like `LD_PRELOAD` or `PYTHONPATH` reaches the process that holds a window token).
fn window_env_kept(name: &str) -> bool {
    const KEPT: &[&str] = &[
        "HOME",
        "USER",
        "LOGNAME",
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
        "DBUS_SESSION_BUS_ADDRESS",
        "GTK_THEME",
        "GDK_BACKEND",
        "NO_AT_BRIDGE",
    ];
    KEPT.contains(&name)
        || ["XDG_", "LC_", "KEYWARD_"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Runs the agent for the desktop app until it is asked to stop.
pub fn run(opts: AgentOptions) -> Result<()> {
    keyward_agent::run(opts, |socket, agent| {
        tracing::info!("ready on {} (desktop: tray icon)", socket.display());
        let window = Arc::new(Window {
            agent: Arc::clone(agent),
            launched: Arc::new(Mutex::new(None)),
        });
        forward_approvals(Arc::clone(&window));
        forward_open_requests(Arc::clone(&window));
        // Reminders go out with or without a tray to show the summary in.
        let (summary, summaries) = tokio::sync::watch::channel(reminders::Summary::default());
        let opener = Arc::clone(&window);
        tokio::spawn(reminders::run(
            Arc::clone(agent),
            move |key| {
                if let Some(k) = key {
                    opener.agent.desktop.request_key(k);
                }
                opener.open();
            },
            move |s| {
                let _ = summary.send(s);
            },
        ));
        tokio::spawn(run_tray(window, summaries));
    })?;
    Ok(())
}

/// Opens the app's window, or brings it to the front.
struct Window {
    agent: Arc<Agent>,
    /// When the window still running was started (cleared when it exits).
    launched: Arc<Mutex<Option<Instant>>>,
}

impl Window {
    fn open(&self) {
        if self.agent.desktop.window_open() {
            self.agent.desktop.request_focus();
            return;
        }
        let Some(app) = self.agent.desktop.app() else {
            return;
        };
        {
            let Ok(mut last) = self.launched.lock() else {
                return;
            };
            if last.is_some_and(|t| t.elapsed() < LAUNCH_GRACE) {
                return;
            }
            *last = Some(Instant::now());
        }
        // A window the agent opens while the vault is unlocked gets a window token, on a pipe
        // only it holds; it still asks for a fresh code before it reveals or copies a key.
        let token = self
            .agent
            .is_unlocked()
            .then(|| self.agent.desktop.issue_token(false));
        if let Err(e) = launch(app, token.as_ref(), Arc::clone(&self.launched)) {
            tracing::error!("cannot open the Keyward window: {e:#}");
            if let Some(t) = &token {
                self.agent.desktop.revoke_token(t);
            }
        }
    }
}

fn launch(
    app: &Path,
    token: Option<&keyward_agent::protocol::WireSecret>,
    launched: Arc<Mutex<Option<Instant>>>,
) -> Result<()> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(app);
    cmd.env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(window_env_kept)))
        .stdout(Stdio::null())
        // Its own process group, so a signal meant for the window does not reach the agent.
        .process_group(0);
    match token {
        Some(_) => cmd
            .stdin(Stdio::piped())
            .env(keyward_agent::desktop::TOKEN_ON_STDIN, "stdin"),
        None => cmd
            .stdin(Stdio::null())
            .env(keyward_agent::desktop::TOKEN_ON_STDIN, "none"),
    };
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", app.display()))?;
    if let (Some(token), Some(mut stdin)) = (token, child.stdin.take()) {
        // The pipe holds far more than one line, so this does not wait for the window.
        if let Err(e) = writeln!(stdin, "{}", token.expose()) {
            tracing::warn!("could not hand the window its token: {e}");
        }
    }
    tracing::info!(pid = child.id(), "opened the Keyward window");
    // Reaped when it ends, so no zombie stays behind; a window closed soon after it opened
    // must not hold off the next one.
    std::thread::spawn(move || {
        let _ = child.wait();
        if let Ok(mut l) = launched.lock() {
            *l = None;
        }
    });
    Ok(())
}

/// Every approval request reaches the window: when none is open, a notification says who asks
/// and the window opens with the question (it polls the agent for pending questions).
fn forward_approvals(window: Arc<Window>) {
    let mut rx = window.agent.approvals.subscribe();
    tokio::spawn(async move {
        while let Some(info) = rx.recv().await {
            if !window.agent.desktop.window_open() {
                notify(&info).await;
            }
            window.open();
        }
    });
}

/// A second start of the app asks the agent to open the window instead of opening its own.
fn forward_open_requests(window: Arc<Window>) {
    tokio::spawn(async move {
        loop {
            window.agent.desktop.open_requested().await;
            window.open();
        }
    });
}

/// A desktop notification (freedesktop Notifications over D-Bus); its absence is logged, never
/// fatal: the window still opens with the question.
async fn notify(info: &ApprovalInfo) {
    let program = match &info.client.script {
        Some(script) => format!("{script} ({})", info.client.exe),
        None => info.client.exe.clone(),
    };
    let body = format!(
        "{program} asks for credentials of profile “{}”. Answer in the Keyward window within {} s, or it is denied.",
        info.profile, info.expires_in_secs
    );
    let sent = async {
        let bus = zbus::Connection::session().await?;
        // Critical: the notification stays until the user acts on it.
        let title = "A program asks for credentials";
        crate::notify::send(&bus, title, &body, crate::notify::Urgency::Critical, &[]).await?;
        Ok::<(), zbus::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(3), sent).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cannot show a desktop notification: {e}"),
        Err(_) => tracing::warn!("cannot show a desktop notification: no answer in 3 s"),
    }
}

/// The tray icon: locked or unlocked at a glance, a badge while a key is overdue or expired,
/// a tooltip saying which keys need action and whose policy is in force, and Lock now / Open /
/// Quit.
struct Tray {
    window: Arc<Window>,
    locked: bool,
    keys: reminders::Summary,
}

/// Puts a red dot in the lower right corner of each icon (ARGB, network order).
fn with_badge(mut icons: Vec<ksni::Icon>) -> Vec<ksni::Icon> {
    for icon in &mut icons {
        let (w, h) = (icon.width, icon.height);
        let r = w.min(h) / 4;
        let (cx, cy) = (w - r - 1, h - r - 1);
        for y in (cy - r).max(0)..h {
            for x in (cx - r).max(0)..w {
                let (dx, dy) = (x - cx, y - cy);
                if dx * dx + dy * dy > r * r {
                    continue;
                }
                let Ok(at) = usize::try_from((y * w + x) * 4) else {
                    continue;
                };
                if let Some(px) = icon.data.get_mut(at..at + 4) {
                    px.copy_from_slice(&[0xff, 0xd9, 0x2d, 0x20]);
                }
            }
        }
    }
    icons
}

fn pixmap(png_bytes: &[u8]) -> Vec<ksni::Icon> {
    let decoded = (|| {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
            .read_info()
            .ok()?;
        let mut buf = vec![0; reader.output_buffer_size()?];
        let info = reader.next_frame(&mut buf).ok()?;
        if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
            return None;
        }
        // RGBA to the ARGB (network order) the StatusNotifierItem spec wants.
        let data = buf[..info.buffer_size()]
            .chunks_exact(4)
            .flat_map(|p| [p[3], p[0], p[1], p[2]])
            .collect();
        Some(ksni::Icon {
            width: i32::try_from(info.width).ok()?,
            height: i32::try_from(info.height).ok()?,
            data,
        })
    })();
    decoded.into_iter().collect()
}

impl ksni::Tray for Tray {
    fn id(&self) -> String {
        "keyward".into()
    }

    fn title(&self) -> String {
        "Keyward".into()
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        let icon = if self.locked {
            pixmap(include_bytes!("../../../icons/tray-locked.png"))
        } else {
            pixmap(include_bytes!("../../../icons/tray-unlocked.png"))
        };
        match self.keys.overdue {
            0 => icon,
            _ => with_badge(icon),
        }
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: if self.locked {
                "Keyward — locked".into()
            } else {
                "Keyward — unlocked".into()
            },
            description: self.keys.lines(),
            ..Default::default()
        }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.window.open();
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        use ksni::menu::StandardItem;
        vec![
            StandardItem {
                label: "Lock now".into(),
                enabled: !self.locked,
                activate: Box::new(|t: &mut Self| {
                    t.window
                        .agent
                        .lock(&keyward_agent::peer::this_process(), "tray");
                    t.locked = true;
                }),
                ..Default::default()
            }
            .into(),
            StandardItem {
                label: "Open Keyward".into(),
                activate: Box::new(|t: &mut Self| t.window.open()),
                ..Default::default()
            }
            .into(),
            ksni::MenuItem::Separator,
            StandardItem {
                label: "Quit Keyward".into(),
                activate: Box::new(|t: &mut Self| {
                    let agent = &t.window.agent;
                    agent.lock(&keyward_agent::peer::this_process(), "app quit");
                    agent.shutdown.notify_one();
                }),
                ..Default::default()
            }
            .into(),
        ]
    }
}

async fn run_tray(
    window: Arc<Window>,
    mut summaries: tokio::sync::watch::Receiver<reminders::Summary>,
) {
    let agent = Arc::clone(&window.agent);
    let mut last = !agent.is_unlocked();
    let tray = Tray {
        locked: last,
        window,
        keys: summaries.borrow_and_update().clone(),
    };
    // Without a tray host (no panel, or a desktop without StatusNotifierItem support) the agent
    // still runs and the app can be opened from its launcher.
    let handle = match tray.assume_sni_available(true).spawn().await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("no tray icon: {e}");
            return;
        }
    };
    // The vault locks and unlocks from anywhere (CLI, window, auto-lock, suspend); the keys'
    // summary comes from the reminders.
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let locked = !agent.is_unlocked();
        let keys = summaries
            .has_changed()
            .unwrap_or(false)
            .then(|| summaries.borrow_and_update().clone());
        if locked == last && keys.is_none() {
            continue;
        }
        last = locked;
        let updated = handle
            .update(|t: &mut Tray| {
                t.locked = locked;
                if let Some(k) = keys {
                    t.keys = k;
                }
            })
            .await;
        if updated.is_none() {
            return;
        }
    }
}
