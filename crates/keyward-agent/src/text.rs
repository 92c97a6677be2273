//! Text that came from elsewhere (an STS or token endpoint's error message, a peer's request)
//! on its way to a terminal or a log line.
//!
//! A hostile endpoint can put terminal escape sequences in an error message (ESC `]` … sets the
//! window title, ESC `[` … moves the cursor and rewrites what the user sees) or Unicode bidi
//! overrides that reorder the line. Such text is shown with every control and bidi-control
//! character dropped, on one line, cut to a length.

/// `s` without control characters (C0, DEL, C1 — ESC among them) or bidi controls, at most
/// `max` characters, `…` marking a cut.
pub fn terminal_safe(s: &str, max: usize) -> String {
    let mut kept = s
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c));
    let mut out: String = kept.by_ref().take(max).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

/// Unicode's explicit directional formatting characters (UAX #9).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_bidi_and_line_breaks_are_dropped() {
        let hostile = "Access\u{1b}]0;pwned\u{7}Denied\u{1b}[2J\r\nnext\u{9b}31m \u{202E}txt.exe";
        assert_eq!(
            terminal_safe(hostile, 100),
            "Access]0;pwnedDenied[2Jnext31m txt.exe"
        );
        assert_eq!(terminal_safe("abcdef", 3), "abc…");
        assert_eq!(terminal_safe("été", 10), "été");
    }
}
