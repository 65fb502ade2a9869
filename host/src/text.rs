//! Phrases error messages share.

/// `items` joined by `separator`, or `none` when there are none (for "granted: …" lists).
pub fn listed<S: AsRef<str>>(items: &[S], separator: &str) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(separator)
}
