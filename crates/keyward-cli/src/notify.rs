//! Desktop notifications (freedesktop Notifications over the session bus): approval questions
//! from the tray, reminders and unusual use from `reminders`.

use std::collections::HashMap;

/// How a notification asks for attention (the spec's urgency levels).
#[derive(Clone, Copy)]
pub enum Urgency {
    /// Waits in the notification list.
    Normal = 1,
    /// Stays until the user acts on it.
    Critical = 2,
}

/// Shows one notification from Keyward; `actions` are (key, label) pairs. Its id, which the
/// server's `ActionInvoked` signal names.
pub async fn send(
    bus: &zbus::Connection,
    title: &str,
    body: &str,
    urgency: Urgency,
    actions: &[(&str, &str)],
) -> zbus::Result<u32> {
    let mut hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
    hints.insert("urgency", zbus::zvariant::Value::U8(urgency as u8));
    let actions: Vec<&str> = actions.iter().flat_map(|(k, l)| [*k, *l]).collect();
    let reply = bus
        .call_method(
            Some("org.freedesktop.Notifications"),
            "/org/freedesktop/Notifications",
            Some("org.freedesktop.Notifications"),
            "Notify",
            &(
                "Keyward",
                0u32,
                "dialog-password",
                title,
                body,
                actions,
                hints,
                -1i32,
            ),
        )
        .await?;
    reply.body().deserialize()
}
