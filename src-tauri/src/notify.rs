//! Desktop notifications (freedesktop Notifications over D-Bus, through notify-rust): the one
//! thing the user must not miss while the window is closed is a tool waiting for approval.

use keyward_agent::approvals::ApprovalInfo;

/// Tells the user a program asks for credentials; the window opens with the question.
pub fn approval_requested(info: &ApprovalInfo) {
    let program = match &info.client.script {
        Some(script) => format!("{script} ({})", info.client.exe),
        None => info.client.exe.clone(),
    };
    let body = format!(
        "{program} asks for credentials of profile “{}”. Answer in the Keyward window within {} s, or it is denied.",
        info.profile, info.expires_in_secs
    );
    // Off the async runtime: the D-Bus call may block briefly, and a missing notification
    // server must not hold up the question itself.
    std::thread::spawn(move || {
        let sent = notify_rust::Notification::new()
            .appname("Keyward")
            .summary("A program asks for credentials")
            .body(&body)
            .icon("dialog-password")
            .urgency(notify_rust::Urgency::Critical)
            .show();
        if let Err(e) = sent {
            tracing::warn!("cannot show a desktop notification: {e}");
        }
    });
}
