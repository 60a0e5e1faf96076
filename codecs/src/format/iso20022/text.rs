//! Text that goes into an ISO 20022 element: the schema's facets and XML escaping.
//!
//! The writers check every value against the facet of its XSD type before writing anything, so a value
//! that does not fit is refused with the field it came from, the element it was meant for and what is
//! wrong (`E-ITEM-UNENCODABLE` at intake), never cut or mangled on the wire:
//!
//! ```text
//! MaxNNText      xs:string, 1..=NN characters (Unicode scalar values, not bytes)
//! PhoneNumber    \+[0-9]{1,3}-[0-9()+\-]{1,30}
//! ISODate        YYYY-MM-DD            ISODateTime  YYYY-MM-DDThh:mm:ss (as bank B wants it)
//! amounts        xs:decimal, totalDigits 18, at most 5 (CtrlSum: 17) fraction digits -> we write 2
//! ```
//! On top of the facets, text may not hold control characters (C0, DEL, C1: a tab or line break in a
//! name is a data error, and XML would normalise CR away) nor U+FFFE / U+FFFF (not XML characters).
//! Every other Unicode character travels as UTF-8, rare hanzi outside the BMP included.
use super::amount::AmountError;

/// A value that cannot be carried by the element it is meant for. Never holds the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidValue {
    /// Empty where the schema wants at least one character.
    #[error("`{field}` ({element}) is empty")]
    Empty {
        /// The input field (the gateway's name, e.g. `name`, `id_no`).
        field: &'static str,
        /// The element path in the document (e.g. `CdtTrfTxInf/Cdtr/Nm`).
        element: &'static str,
    },
    /// Longer than the schema allows.
    #[error("`{field}` ({element}) has {len} characters, at most {max}")]
    TooLong {
        /// The input field.
        field: &'static str,
        /// The element path.
        element: &'static str,
        /// Length in characters.
        len: usize,
        /// The schema's maximum.
        max: usize,
    },
    /// A character the document cannot carry (control character, or not an XML character).
    #[error(
        "`{field}` ({element}): character {position} cannot be carried (control or non-XML character)"
    )]
    Character {
        /// The input field.
        field: &'static str,
        /// The element path.
        element: &'static str,
        /// 1-based character position.
        position: usize,
    },
    /// Not of the form the schema or the bank's spec requires.
    #[error("`{field}` ({element}) must be {expected}")]
    Format {
        /// The input field.
        field: &'static str,
        /// The element path.
        element: &'static str,
        /// What the value must look like.
        expected: &'static str,
    },
    /// An amount the schema's decimal type cannot hold.
    #[error("`{field}` ({element}): {source}")]
    Amount {
        /// The input field.
        field: &'static str,
        /// The element path.
        element: &'static str,
        /// What is wrong.
        source: AmountError,
    },
}

impl InvalidValue {
    /// The input field that holds the value.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Empty { field, .. }
            | Self::TooLong { field, .. }
            | Self::Character { field, .. }
            | Self::Format { field, .. }
            | Self::Amount { field, .. } => field,
        }
    }

    /// The element path the value was meant for.
    pub fn element(&self) -> &'static str {
        match self {
            Self::Empty { element, .. }
            | Self::TooLong { element, .. }
            | Self::Character { element, .. }
            | Self::Format { element, .. }
            | Self::Amount { element, .. } => element,
        }
    }
}

/// Whether the writers may put `c` into a document.
pub(crate) fn is_carried(c: char) -> bool {
    !c.is_control() && c != '\u{FFFE}' && c != '\u{FFFF}'
}

/// Checks a `MaxNNText` value (`1..=max` characters, only carried characters).
pub(crate) fn check_text(
    value: &str,
    max: usize,
    field: &'static str,
    element: &'static str,
) -> Result<(), InvalidValue> {
    if value.is_empty() {
        return Err(InvalidValue::Empty { field, element });
    }
    let mut len = 0usize;
    for c in value.chars() {
        len += 1;
        if !is_carried(c) {
            return Err(InvalidValue::Character {
                field,
                element,
                position: len,
            });
        }
    }
    if len > max {
        return Err(InvalidValue::TooLong {
            field,
            element,
            len,
            max,
        });
    }
    Ok(())
}

/// Checks a value made only of bytes for which `ok` holds, `1..=max` of them.
pub(crate) fn check_ascii(
    value: &str,
    max: usize,
    ok: impl Fn(u8) -> bool,
    field: &'static str,
    element: &'static str,
    expected: &'static str,
) -> Result<(), InvalidValue> {
    if value.is_empty() {
        return Err(InvalidValue::Empty { field, element });
    }
    if !value.bytes().all(ok) {
        return Err(InvalidValue::Format {
            field,
            element,
            expected,
        });
    }
    if value.len() > max {
        return Err(InvalidValue::TooLong {
            field,
            element,
            len: value.chars().count(),
            max,
        });
    }
    Ok(())
}

/// Appends `value` with `&`, `<`, `>` (and `"`, for attributes) escaped.
pub(crate) fn escape_into(out: &mut String, value: &str) {
    let mut rest = value;
    while let Some(i) = rest.find(['&', '<', '>', '"']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => "&quot;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Small helper that writes indented elements into a `String`.
pub(crate) struct Out<'a> {
    pub(crate) buf: &'a mut String,
}

impl Out<'_> {
    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.buf.push_str("  ");
        }
    }

    /// `<tag>` on its own line.
    pub(crate) fn open(&mut self, depth: usize, tag: &str) {
        self.indent(depth);
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push_str(">\n");
    }

    /// `</tag>` on its own line.
    pub(crate) fn close(&mut self, depth: usize, tag: &str) {
        self.indent(depth);
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push_str(">\n");
    }

    /// `<tag>value</tag>` on one line, value escaped.
    pub(crate) fn leaf(&mut self, depth: usize, tag: &str, value: &str) {
        self.leaf_with(depth, tag, "", |b| escape_into(b, value));
    }

    /// `<tag attrs>...</tag>` on one line, the content written by `content` (already escaped).
    pub(crate) fn leaf_with(
        &mut self,
        depth: usize,
        tag: &str,
        attrs: &str,
        content: impl FnOnce(&mut String),
    ) {
        self.indent(depth);
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push_str(attrs);
        self.buf.push('>');
        content(self.buf);
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push_str(">\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        let mut s = String::new();
        escape_into(&mut s, r#"a&b<c>d"e'f 张三"#);
        assert_eq!(s, "a&amp;b&lt;c&gt;d&quot;e'f 张三");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let name = "张".repeat(140);
        assert_eq!(check_text(&name, 140, "name", "Nm"), Ok(()));
        let name = "𠀀".repeat(141);
        assert_eq!(
            check_text(&name, 140, "name", "Nm"),
            Err(InvalidValue::TooLong {
                field: "name",
                element: "Nm",
                len: 141,
                max: 140
            })
        );
    }

    #[test]
    fn refuses_control_and_non_xml_characters() {
        for (v, pos) in [
            ("a\tb", 2),
            ("ab\n", 3),
            ("\u{85}", 1),
            ("x\u{FFFF}", 2),
            ("\0", 1),
        ] {
            assert_eq!(
                check_text(v, 35, "memo", "RmtInf/Ustrd"),
                Err(InvalidValue::Character {
                    field: "memo",
                    element: "RmtInf/Ustrd",
                    position: pos
                })
            );
        }
        assert!(matches!(
            check_text("", 35, "memo", "Ustrd"),
            Err(InvalidValue::Empty { .. })
        ));
    }
}
