//! SQL LIKE without a regex engine: `%` matches any run of characters (even none), `_` exactly one
//! character, everything else itself (case-sensitive, no escape character). The matcher is the classic
//! two-pointer wildcard algorithm: it remembers only the last `%` and never allocates, so its worst case
//! is O(text x pattern) with the pattern bounded by the filter's string limit.

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A run of characters matched literally.
    Literal(String),
    /// `_`: exactly one character.
    One,
    /// `%` (or several in a row): any run of characters.
    Any,
}

/// A compiled `$like` pattern: the broker matches it against the field of every event of the
/// subscription, so it is split into tokens once.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pattern {
    /// The pattern as sent, for the filter's canonical key.
    source: String,
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `source`, collapsing runs of `%` (which match exactly what one `%` matches).
    pub(super) fn new(source: &str) -> Self {
        let mut tokens = Vec::new();
        for c in source.chars() {
            match c {
                '%' => {
                    if tokens.last() != Some(&Token::Any) {
                        tokens.push(Token::Any);
                    }
                }
                '_' => tokens.push(Token::One),
                c => match tokens.last_mut() {
                    Some(Token::Literal(run)) => run.push(c),
                    _ => tokens.push(Token::Literal(c.to_string())),
                },
            }
        }
        Pattern {
            source: source.to_owned(),
            tokens,
        }
    }

    /// The pattern as sent.
    pub(super) fn source(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches the pattern.
    pub(super) fn matches(&self, text: &str) -> bool {
        let tokens = &self.tokens;
        // Text position (a byte offset, always on a char boundary) and token index.
        let (mut t, mut p) = (0usize, 0usize);
        // After the last `%` seen: the token following it and the text position it is tried at.
        let mut star: Option<(usize, usize)> = None;
        loop {
            // Try to advance one token at the current position.
            let advanced = match tokens.get(p) {
                None if t == text.len() => return true,
                None => None,
                // A trailing `%` matches whatever is left.
                Some(Token::Any) if p + 1 == tokens.len() => return true,
                Some(Token::Any) => {
                    star = Some((p + 1, t));
                    Some(t)
                }
                Some(Token::One) => text[t..].chars().next().map(|c| t + c.len_utf8()),
                Some(Token::Literal(run)) => {
                    text[t..].starts_with(run.as_str()).then(|| t + run.len())
                }
            };
            match advanced {
                Some(next) => {
                    t = next;
                    p += 1;
                }
                // Mismatch: let the last `%` swallow one more character and retry what follows it.
                None => match star {
                    Some((after, from)) => match text[from..].chars().next() {
                        Some(c) => {
                            let from = from + c.len_utf8();
                            star = Some((after, from));
                            t = from;
                            p = after;
                        }
                        None => return false,
                    },
                    None => return false,
                },
            }
        }
    }
}
