//! Maps between byte offsets in the TOML text and key paths, so that errors found on the typed config (or
//! reported by serde with only a byte span) can name the line and the key.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{KeyPath, Segment};

/// The parsed document with the byte span of every key and value.
pub(crate) struct SpannedDocument<'text> {
    root: Spanned<DeTable<'text>>,
}

/// The setting found at a byte offset.
pub(crate) struct Located {
    /// Path of the key or array element at the offset.
    pub(crate) path: KeyPath,
    /// True when that key holds a table or an array of tables (a section), not a plain value.
    pub(crate) is_section: bool,
}

impl<'text> SpannedDocument<'text> {
    /// Parses `text`; fails with toml's syntax error (which carries its own span).
    pub(crate) fn parse(text: &'text str) -> Result<Self, toml::de::Error> {
        DeTable::parse(text).map(|root| Self { root })
    }

    /// Byte span of the value at `path` or, when part of the path is missing, of its deepest existing
    /// ancestor; `None` when not even the first key exists.
    pub(crate) fn span_of(&self, path: &KeyPath) -> Option<Range<usize>> {
        let mut current: Option<&Spanned<DeValue<'text>>> = None;
        let mut best = None;
        for segment in &path.0 {
            let next = match (segment, current.map(Spanned::get_ref)) {
                (Segment::Key(key), None) => self.root.get_ref().get(key.as_str()),
                (Segment::Key(key), Some(DeValue::Table(table))) => table.get(key.as_str()),
                (Segment::Index(index), Some(DeValue::Array(array))) => array.get(*index),
                _ => None,
            };
            match next {
                Some(value) => {
                    best = Some(value.span());
                    current = Some(value);
                }
                None => break,
            }
        }
        best
    }

    /// The narrowest key, value or array element whose span contains `offset`.
    pub(crate) fn locate(&self, offset: usize) -> Option<Located> {
        let mut best: Option<(usize, Located)> = None;
        visit_table(self.root.get_ref(), &KeyPath::default(), offset, &mut best);
        best.map(|(_, located)| located)
    }
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end
}

fn consider(
    best: &mut Option<(usize, Located)>,
    span: Range<usize>,
    offset: usize,
    located: Located,
) {
    if contains(&span, offset) && best.as_ref().is_none_or(|(width, _)| span.len() < *width) {
        *best = Some((span.len(), located));
    }
}

fn is_section(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::Table(_) => true,
        DeValue::Array(array) => array
            .iter()
            .any(|element| matches!(element.get_ref(), DeValue::Table(_))),
        _ => false,
    }
}

fn visit_table(
    table: &DeTable<'_>,
    path: &KeyPath,
    offset: usize,
    best: &mut Option<(usize, Located)>,
) {
    for (key, value) in table {
        let key_path = path.key(key.get_ref());
        let section = is_section(value.get_ref());
        consider(
            best,
            key.span(),
            offset,
            Located {
                path: key_path.clone(),
                is_section: section,
            },
        );
        consider(
            best,
            value.span(),
            offset,
            Located {
                path: key_path.clone(),
                is_section: section,
            },
        );
        visit_value(value.get_ref(), &key_path, offset, best);
    }
}

fn visit_value(
    value: &DeValue<'_>,
    path: &KeyPath,
    offset: usize,
    best: &mut Option<(usize, Located)>,
) {
    match value {
        DeValue::Table(table) => visit_table(table, path, offset, best),
        DeValue::Array(array) => {
            for (index, element) in array.iter().enumerate() {
                let element_path = path.index(index);
                let section = is_section(element.get_ref());
                consider(
                    best,
                    element.span(),
                    offset,
                    Located {
                        path: element_path.clone(),
                        is_section: section,
                    },
                );
                visit_value(element.get_ref(), &element_path, offset, best);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::line_of_offset;

    const TEXT: &str =
        "[gateway]\nlisten = \"127.0.0.1:1\"\n[[realms]]\nname = \"a\"\n[[realms]]\nname = \"b\"\n";

    #[test]
    fn spans_of_paths_give_the_right_lines() {
        let document = SpannedDocument::parse(TEXT).expect("valid TOML");
        let line = |path: &KeyPath| {
            document
                .span_of(path)
                .map(|span| line_of_offset(TEXT, span.start))
        };
        assert_eq!(line(&KeyPath::root("gateway").key("listen")), Some(2));
        assert_eq!(line(&KeyPath::root("realms").index(1).key("name")), Some(6));
        assert_eq!(
            line(&KeyPath::root("realms").index(1).key("absent")),
            Some(5)
        );
        assert_eq!(line(&KeyPath::root("absent")), None);
    }

    #[test]
    fn offsets_locate_the_narrowest_key() {
        let document = SpannedDocument::parse(TEXT).expect("valid TOML");
        let offset = TEXT.find("listen").expect("listen is in the text");
        let located = document.locate(offset).expect("a key is there");
        assert_eq!(located.path.to_string(), "gateway.listen");
        assert!(!located.is_section);
    }
}
