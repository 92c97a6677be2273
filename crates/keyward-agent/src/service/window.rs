use super::*;

impl Agent {
    /// The app window's poll (or its close): lock state, pending approvals, focus.
    pub(super) async fn window_poll(
        self: &Arc<Self>,
        closed: bool,
        token: Option<WireSecret>,
        actor: Actor,
    ) -> Outcome {
        if !self.desktop.is_app(&actor) {
            return Err(err(
                ErrorCode::Forbidden,
                "only the Keyward app this agent serves may open its window",
            ));
        }
        let (focus, show_key) = if closed {
            self.desktop.closed();
            if let Some(t) = &token {
                self.desktop.revoke_token(t);
            }
            (false, None)
        } else {
            (self.desktop.polled(), self.desktop.take_key())
        };
        Ok(Reply::Window(WindowState {
            locked: !self.is_unlocked(),
            approvals: self.approvals.pending(),
            focus,
            show_key,
        }))
    }

    /// Asks the desktop app to open its window (the tray's `keyward open`).
    pub(super) async fn open_window(self: &Arc<Self>, actor: Actor) -> Outcome {
        if self.desktop.app().is_none() {
            return Err(err(
                        ErrorCode::Invalid,
                        "this Keyward agent runs without the desktop app: stop it (`keyward agent stop`) and start Keyward again",
                    ));
        }
        // A window opened while unlocked gets a window token: who asked is on record.
        self.blocking(move |a| {
            a.audited(&actor, "window.open", None, "ok")
                .map(|()| Reply::Done)
        })
        .await?;
        self.desktop.request_open();
        Ok(Reply::Done)
    }

    /// A window token for the app's window the vault was just unlocked through; none for any
    /// other program, or when the window did not ask.
    pub(super) fn window_token(&self, asked: bool, actor: &Actor) -> Option<WireSecret> {
        (asked && self.desktop.is_app(actor)).then(|| self.desktop.issue_token(true))
    }

    /// Whether the request comes from the app's window and carries a live window token.
    pub(super) fn is_trusted_window(&self, actor: &Actor, token: Option<&WireSecret>) -> bool {
        self.desktop.is_app(actor) && self.desktop.token_valid(token)
    }
}
