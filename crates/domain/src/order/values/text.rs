//! The one rule for text a client sends, shared by every free-text field and value object.

/// What [`checked_text`] found wrong with a text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextProblem {
    Blank,
    TooLong,
    ControlCharacter,
}

impl TextProblem {
    /// The problem as the end of a sentence naming the field, with what is allowed.
    pub(crate) fn describe(self, max_chars: usize) -> String {
        match self {
            Self::Blank => "must not be blank".to_owned(),
            Self::TooLong => format!("must be at most {max_chars} characters"),
            Self::ControlCharacter => {
                "must not contain control characters (such as NUL, a line break or ESC)".to_owned()
            }
        }
    }
}

/// Trimmed, not blank, at most `max_chars` characters, and no control characters (Unicode `Cc`:
/// NUL, line breaks, tab, ESC, DEL, C1). It holds on every backend alike, before anything
/// reaches a store (PostgreSQL's JSONB refuses NUL; SQLite would keep it).
pub(crate) fn checked_text(value: &str, max_chars: usize) -> Result<&str, TextProblem> {
    let value = value.trim();
    if value.is_empty() {
        Err(TextProblem::Blank)
    } else if value.chars().count() > max_chars {
        Err(TextProblem::TooLong)
    } else if value.chars().any(char::is_control) {
        Err(TextProblem::ControlCharacter)
    } else {
        Ok(value)
    }
}
