//! Writing event text: the host reads emitted events in WAVE syntax, typed by the target's event
//! type (an agent's, or a reply a plan awaits).

/// `text` as a WAVE string literal, quoted and escaped.
///
/// ```
/// assert_eq!(agentos_sdk::wave::string("say \"hi\"\n"), r#""say \"hi\"\n""#);
/// let reply = format!("{{headline: {}, words: 3}}", agentos_sdk::wave::string("Big news"));
/// assert_eq!(reply, r#"{headline: "Big news", words: 3}"#);
/// ```
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
