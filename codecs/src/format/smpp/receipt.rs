//! Delivery receipt text of SMPP 3.4 Appendix B, as a `deliver_sm` with `esm_class` `0x04` carries it:
//!
//! ```text
//! id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
//! ```
//!
//! The appendix calls the format vendor-specific and centres differ in the details, so the reader is
//! lenient where that is harmless and strict where a wrong reading would be: labels in any case and
//! order, `sub`/`dlvrd`/`err`/`text` optional, dates of 10 or 12 digits (with seconds), `text:`
//! taking the rest of the message; but `id` and `stat` required, a date must be a real calendar time,
//! an unknown label or a label given twice is an error naming its offset. The `text` field echoes the
//! start of the recipient's message: it is kept but never printed by `Debug`.
use std::fmt;

/// Longest receipt text read (a `short_message` is at most 255 octets; `message_payload` more).
pub const MAX_RECEIPT_LEN: usize = 1024;

/// The message state a receipt reports (`stat`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stat {
    /// `DELIVRD`: delivered to the handset.
    Delivered,
    /// `EXPIRED`: validity period passed before delivery.
    Expired,
    /// `DELETED`: deleted by the centre.
    Deleted,
    /// `UNDELIV`: undeliverable.
    Undeliverable,
    /// `ACCEPTD`: accepted on the recipient's behalf (not a delivery).
    Accepted,
    /// `UNKNOWN`: the centre does not know.
    Unknown,
    /// `REJECTD`: rejected.
    Rejected,
    /// `ENROUTE`: still on its way (an intermediate notification).
    Enroute,
    /// A code outside Appendix B, kept as sent (letters and digits, at most 7): needs a person, it
    /// is neither success nor failure.
    Other(String),
}

impl Stat {
    /// Reads a `stat` code (case-insensitive).
    pub fn from_code(code: &str) -> Stat {
        match code.to_ascii_uppercase().as_str() {
            "DELIVRD" => Stat::Delivered,
            "EXPIRED" => Stat::Expired,
            "DELETED" => Stat::Deleted,
            "UNDELIV" => Stat::Undeliverable,
            "ACCEPTD" => Stat::Accepted,
            "UNKNOWN" => Stat::Unknown,
            "REJECTD" => Stat::Rejected,
            "ENROUTE" => Stat::Enroute,
            other => Stat::Other(other.to_owned()),
        }
    }

    /// The Appendix B code.
    pub fn code(&self) -> &str {
        match self {
            Stat::Delivered => "DELIVRD",
            Stat::Expired => "EXPIRED",
            Stat::Deleted => "DELETED",
            Stat::Undeliverable => "UNDELIV",
            Stat::Accepted => "ACCEPTD",
            Stat::Unknown => "UNKNOWN",
            Stat::Rejected => "REJECTD",
            Stat::Enroute => "ENROUTE",
            Stat::Other(s) => s,
        }
    }

    /// Whether the state is final (the centre will not report again): everything but `ENROUTE` and
    /// codes outside Appendix B.
    pub fn is_final(&self) -> bool {
        !matches!(self, Stat::Enroute | Stat::Other(_))
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A centre's local time `YYMMDDhhmm[ss]`, checked to be a real calendar time (years 2000-2099).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SmscTime {
    /// Full year, `2000..=2099`.
    pub year: u16,
    /// `1..=12`.
    pub month: u8,
    /// `1..=31`, valid for the month.
    pub day: u8,
    /// `0..=23`.
    pub hour: u8,
    /// `0..=59`.
    pub minute: u8,
    /// `0..=59`; `None` when the centre sent 10 digits.
    pub second: Option<u8>,
}

impl SmscTime {
    /// Reads 10 or 12 digits.
    pub fn parse(digits: &str) -> Option<SmscTime> {
        let b = digits.as_bytes();
        if !(b.len() == 10 || b.len() == 12) || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let two = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
        let t = SmscTime {
            year: 2000 + u16::from(two(0)),
            month: two(2),
            day: two(4),
            hour: two(6),
            minute: two(8),
            second: (b.len() == 12).then(|| two(10)),
        };
        let leap = t.year.is_multiple_of(4); // 2000 is a leap year and 2100 is out of range
        let days = match t.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        let ok = (1..=days).contains(&t.day)
            && t.hour < 24
            && t.minute < 60
            && t.second.is_none_or(|s| s < 60);
        ok.then_some(t)
    }

    /// `YYMMDDhhmm` (and `ss` when known).
    pub fn to_digits(&self) -> String {
        let mut s = format!(
            "{:02}{:02}{:02}{:02}{:02}",
            self.year % 100,
            self.month,
            self.day,
            self.hour,
            self.minute
        );
        if let Some(sec) = self.second {
            s.push_str(&format!("{sec:02}"));
        }
        s
    }
}

/// A delivery receipt as read from its text.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiptText {
    /// The centre's message id (`id`), as its `submit_sm_resp` gave it.
    pub id: String,
    /// `sub`: messages originally submitted (usually 1).
    pub sub: Option<u32>,
    /// `dlvrd`: messages delivered.
    pub dlvrd: Option<u32>,
    /// `submit date`.
    pub submit_date: Option<SmscTime>,
    /// `done date`: when the final state was reached.
    pub done_date: Option<SmscTime>,
    /// `stat`.
    pub stat: Stat,
    /// `err`: network-specific error code, as sent.
    pub err: Option<String>,
    /// `text`: the first characters of the message (recipient's content: not printed by `Debug`).
    pub text: Option<String>,
}

impl fmt::Debug for ReceiptText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptText")
            .field("id", &self.id)
            .field("sub", &self.sub)
            .field("dlvrd", &self.dlvrd)
            .field("submit_date", &self.submit_date)
            .field("done_date", &self.done_date)
            .field("stat", &self.stat)
            .field("err", &self.err)
            .field(
                "text",
                &self
                    .text
                    .as_ref()
                    .map(|t| format!("<{} chars>", t.chars().count())),
            )
            .finish()
    }
}

/// Fields of the receipt text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// `id:`
    Id,
    /// `sub:`
    Sub,
    /// `dlvrd:`
    Dlvrd,
    /// `submit date:`
    SubmitDate,
    /// `done date:`
    DoneDate,
    /// `stat:`
    Stat,
    /// `err:`
    Err,
    /// `text:`
    Text,
}

impl Field {
    const ALL: [(Field, &'static str); 8] = [
        (Field::Id, "id:"),
        (Field::Sub, "sub:"),
        (Field::Dlvrd, "dlvrd:"),
        (Field::SubmitDate, "submit date:"),
        (Field::DoneDate, "done date:"),
        (Field::Stat, "stat:"),
        (Field::Err, "err:"),
        (Field::Text, "text:"),
    ];

    fn label(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, l)| l)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label().trim_end_matches(':'))
    }
}

/// Why a receipt text cannot be read. Offsets are in octets; values are never quoted (the text field
/// holds the recipient's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Longer than [`MAX_RECEIPT_LEN`].
    #[error("receipt of {len} octets, more than {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A required field is missing.
    #[error("receipt without `{field}`")]
    Missing {
        /// The field.
        field: Field,
    },
    /// Something that is no known label.
    #[error("receipt: no known field label at octet {offset}")]
    UnknownLabel {
        /// Where.
        offset: usize,
    },
    /// A field given twice.
    #[error("receipt: `{field}` given twice (octet {offset})")]
    Duplicate {
        /// The field.
        field: Field,
        /// Offset of the second label.
        offset: usize,
    },
    /// A value of the wrong form.
    #[error("receipt: `{field}` malformed at octet {offset}")]
    Invalid {
        /// The field.
        field: Field,
        /// Offset of the value.
        offset: usize,
    },
}

impl ReceiptText {
    /// Reads a receipt text.
    ///
    /// # Errors
    /// See [`ReceiptError`].
    pub fn parse(input: &[u8]) -> Result<ReceiptText, ReceiptError> {
        if input.len() > MAX_RECEIPT_LEN {
            return Err(ReceiptError::TooLong {
                len: input.len(),
                max: MAX_RECEIPT_LEN,
            });
        }
        let mut id = None;
        let mut sub = None;
        let mut dlvrd = None;
        let mut submit_date = None;
        let mut done_date = None;
        let mut stat = None;
        let mut err = None;
        let mut text = None;
        let mut at = 0;
        loop {
            while input.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
                at += 1;
            }
            if at >= input.len() {
                break;
            }
            let rest = &input[at..];
            let Some((field, label)) = Field::ALL.iter().find(|(_, l)| {
                rest.len() >= l.len() && rest[..l.len()].eq_ignore_ascii_case(l.as_bytes())
            }) else {
                return Err(ReceiptError::UnknownLabel { offset: at });
            };
            let label_at = at;
            let value_at = at + label.len();
            if *field == Field::Text {
                if text.is_some() {
                    return Err(ReceiptError::Duplicate {
                        field: Field::Text,
                        offset: label_at,
                    });
                }
                // The rest of the message, whatever it holds.
                text = Some(String::from_utf8_lossy(&input[value_at..]).into_owned());
                break;
            }
            let value_end = input[value_at..]
                .iter()
                .position(|b| *b == b' ')
                .map_or(input.len(), |p| value_at + p);
            let raw = &input[value_at..value_end];
            at = value_end;
            let invalid = ReceiptError::Invalid {
                field: *field,
                offset: value_at,
            };
            let dup = ReceiptError::Duplicate {
                field: *field,
                offset: label_at,
            };
            let value = std::str::from_utf8(raw).map_err(|_| invalid.clone())?;
            match field {
                Field::Id => {
                    let ok = (1..=64).contains(&value.len())
                        && value.bytes().all(|b| b.is_ascii_graphic());
                    set(&mut id, ok.then(|| value.to_owned()), invalid, dup)?;
                }
                Field::Sub => set(&mut sub, count(value), invalid, dup)?,
                Field::Dlvrd => set(&mut dlvrd, count(value), invalid, dup)?,
                Field::SubmitDate => set(&mut submit_date, SmscTime::parse(value), invalid, dup)?,
                Field::DoneDate => set(&mut done_date, SmscTime::parse(value), invalid, dup)?,
                Field::Stat => {
                    let ok = (1..=7).contains(&value.len())
                        && value.bytes().all(|b| b.is_ascii_alphanumeric());
                    set(&mut stat, ok.then(|| Stat::from_code(value)), invalid, dup)?;
                }
                Field::Err => {
                    let ok = (1..=10).contains(&value.len())
                        && value.bytes().all(|b| b.is_ascii_alphanumeric());
                    set(&mut err, ok.then(|| value.to_owned()), invalid, dup)?;
                }
                Field::Text => {}
            }
        }
        Ok(ReceiptText {
            id: id.ok_or(ReceiptError::Missing { field: Field::Id })?,
            sub,
            dlvrd,
            submit_date,
            done_date,
            stat: stat.ok_or(ReceiptError::Missing { field: Field::Stat })?,
            err,
            text,
        })
    }

    /// The receipt as Appendix B writes it (what the simulator sends): the fields in the appendix's
    /// order, `sub`/`dlvrd` as at least three digits, fields that are `None` left out, `text:` last
    /// when there is one. What [`ReceiptText::parse`] reads from it is `self` again.
    pub fn to_text(&self) -> String {
        let mut out = format!("id:{}", self.id);
        if let Some(n) = self.sub {
            out.push_str(&format!(" sub:{n:03}"));
        }
        if let Some(n) = self.dlvrd {
            out.push_str(&format!(" dlvrd:{n:03}"));
        }
        if let Some(d) = self.submit_date {
            out.push_str(&format!(" submit date:{}", d.to_digits()));
        }
        if let Some(d) = self.done_date {
            out.push_str(&format!(" done date:{}", d.to_digits()));
        }
        out.push_str(&format!(" stat:{}", self.stat));
        if let Some(e) = &self.err {
            out.push_str(&format!(" err:{e}"));
        }
        if let Some(t) = &self.text {
            out.push_str(&format!(" text:{t}"));
        }
        out
    }
}

fn count(v: &str) -> Option<u32> {
    if (1..=10).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse().ok()
    } else {
        None
    }
}

fn set<T>(
    slot: &mut Option<T>,
    value: Option<T>,
    invalid: ReceiptError,
    dup: ReceiptError,
) -> Result<(), ReceiptError> {
    if slot.is_some() {
        return Err(dup);
    }
    *slot = Some(value.ok_or(invalid)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPENDIX_B: &[u8] = b"id:0123456789 sub:001 dlvrd:001 submit date:2503051200 done date:2503051201 stat:DELIVRD err:000 text:Hello world, this is";

    #[test]
    fn reads_the_appendix_b_form() {
        let r = ReceiptText::parse(APPENDIX_B).expect("receipt");
        assert_eq!(r.id, "0123456789");
        assert_eq!((r.sub, r.dlvrd), (Some(1), Some(1)));
        assert_eq!(
            r.submit_date,
            Some(SmscTime {
                year: 2025,
                month: 3,
                day: 5,
                hour: 12,
                minute: 0,
                second: None
            })
        );
        assert_eq!(r.done_date.map(|d| d.minute), Some(1));
        assert_eq!(r.stat, Stat::Delivered);
        assert_eq!(r.err.as_deref(), Some("000"));
        assert_eq!(r.text.as_deref(), Some("Hello world, this is"));
        assert_eq!(r.to_text().as_bytes(), APPENDIX_B);
        assert_eq!(ReceiptText::parse(r.to_text().as_bytes()), Ok(r));
    }

    #[test]
    fn every_appendix_b_state_reads_and_only_enroute_and_others_are_not_final() {
        for (code, stat) in [
            ("DELIVRD", Stat::Delivered),
            ("EXPIRED", Stat::Expired),
            ("DELETED", Stat::Deleted),
            ("UNDELIV", Stat::Undeliverable),
            ("ACCEPTD", Stat::Accepted),
            ("UNKNOWN", Stat::Unknown),
            ("REJECTD", Stat::Rejected),
        ] {
            let t = format!("id:7 stat:{code}");
            let r = ReceiptText::parse(t.as_bytes()).expect(code);
            assert_eq!(r.stat, stat);
            assert!(r.stat.is_final());
            assert_eq!(r.stat.code(), code);
        }
        let r = ReceiptText::parse(b"id:7 stat:enroute").expect("enroute");
        assert_eq!(r.stat, Stat::Enroute);
        assert!(!r.stat.is_final());
        let r = ReceiptText::parse(b"id:7 stat:FAILED").expect("other");
        assert_eq!(r.stat, Stat::Other("FAILED".into()));
        assert!(!r.stat.is_final());
    }

    #[test]
    fn lenient_in_case_order_seconds_and_optional_fields() {
        let r = ReceiptText::parse(
            b"Stat:UNDELIV ID:ab-12 Done Date:240229235959  err:C01 Submit date:2402292359",
        )
        .expect("receipt");
        assert_eq!(r.id, "ab-12");
        assert_eq!(r.stat, Stat::Undeliverable);
        assert_eq!(r.done_date.and_then(|d| d.second), Some(59));
        assert_eq!(r.err.as_deref(), Some("C01"));
        assert_eq!(r.text, None);
        assert_eq!(r.sub, None);
    }

    #[test]
    fn text_takes_the_rest_even_with_labels_inside() {
        let r = ReceiptText::parse(b"id:1 stat:DELIVRD text:stat:REJECTD id:2").expect("receipt");
        assert_eq!(r.stat, Stat::Delivered);
        assert_eq!(r.text.as_deref(), Some("stat:REJECTD id:2"));
        assert!(!format!("{r:?}").contains("REJECTD"));
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        assert_eq!(
            ReceiptText::parse(b"sub:001 stat:DELIVRD"),
            Err(ReceiptError::Missing { field: Field::Id })
        );
        assert_eq!(
            ReceiptText::parse(b"id:1"),
            Err(ReceiptError::Missing { field: Field::Stat })
        );
        assert_eq!(
            ReceiptText::parse(b"id:1 foo:2 stat:DELIVRD"),
            Err(ReceiptError::UnknownLabel { offset: 5 })
        );
        assert_eq!(
            ReceiptText::parse(b"id:1 id:2 stat:DELIVRD"),
            Err(ReceiptError::Duplicate {
                field: Field::Id,
                offset: 5
            })
        );
        assert_eq!(
            ReceiptText::parse(b"id:1 done date:2502301200 stat:DELIVRD"),
            Err(ReceiptError::Invalid {
                field: Field::DoneDate,
                offset: 15
            })
        );
        assert!(matches!(
            ReceiptText::parse(b"id:1 stat:DELIVERED"),
            Err(ReceiptError::Invalid {
                field: Field::Stat,
                ..
            })
        ));
        assert!(matches!(
            ReceiptText::parse(b"id: stat:DELIVRD"),
            Err(ReceiptError::Invalid {
                field: Field::Id,
                ..
            })
        ));
        assert!(matches!(
            ReceiptText::parse(b"id:1 sub:x stat:DELIVRD"),
            Err(ReceiptError::Invalid {
                field: Field::Sub,
                ..
            })
        ));
        assert!(matches!(
            ReceiptText::parse(&[b'x'; 1025]),
            Err(ReceiptError::TooLong { .. })
        ));
        assert!(ReceiptText::parse(b"id:\xff stat:DELIVRD").is_err());
        assert!(ReceiptText::parse(b"").is_err());
    }

    #[test]
    fn calendar_times_are_checked() {
        assert!(SmscTime::parse("2402291200").is_some());
        assert!(SmscTime::parse("2302291200").is_none());
        assert!(SmscTime::parse("2504311200").is_none());
        assert!(SmscTime::parse("2501012400").is_none());
        assert!(SmscTime::parse("2501011260").is_none());
        assert!(SmscTime::parse("250101120060").is_none());
        assert!(SmscTime::parse("25010112").is_none());
        assert!(SmscTime::parse("25010112000").is_none());
        assert!(SmscTime::parse("250101120a").is_none());
        assert!(SmscTime::parse("2513011200").is_none());
    }
}
