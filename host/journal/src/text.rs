//! Phrases error messages share, and text made safe to show to a person.

/// `items` joined by `separator`, or `none` when there are none (for "granted: …" lists).
pub fn listed<S: AsRef<str>>(items: &[S], separator: &str) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(separator)
}

/// An error with every cause under it, `message: cause: cause`, as the CLI prints one; for
/// errors that end up as text in the journal (a refusal, an effect's failure).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

/// `text` with every character that could act on a terminal written out as an escape instead:
/// control characters (C0, DEL, C1: an agent's output must not move the cursor, rewrite lines or
/// set a window title) and the bidirectional controls (embeddings, overrides, isolates and the
/// invisible marks) that make text read differently than it is. For human output of what
/// agents wrote; JSON output escapes for itself.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
            )
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_and_bidi_overrides_are_written_out() {
        assert_eq!(printable("greeted ada"), "greeted ada");
        assert_eq!(printable("\x1b[2Jgone\x07"), "\\u{1b}[2Jgone\\u{7}");
        assert_eq!(printable("a\u{9b}31m"), "a\\u{9b}31m");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(printable("tab\there"), "tab\\u{9}here");
        assert_eq!(printable("a\u{200f}b\u{61c}c"), "a\\u{200f}b\\u{61c}c");
    }
}
