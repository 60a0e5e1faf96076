//! Personal data as types: `Debug` and `Display` mask, only `expose()` gives the plaintext.
//!
//! Masks follow the platform contract: `2201**********123X`, `6217*********4105`, `139****5678`, `陈*`.
use std::fmt;
use std::marker::PhantomData;

/// How a kind of personal data is masked.
pub trait Mask {
    /// The masked form of `value`.
    fn mask(value: &str) -> String;
}

/// A piece of personal data of kind `K`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pii<K: Mask> {
    value: String,
    kind: PhantomData<K>,
}

impl<K: Mask> Pii<K> {
    /// Wraps a plaintext value.
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            kind: PhantomData,
        }
    }

    /// The plaintext: only for the store, the bank links and callers allowed to see it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The masked form.
    pub fn masked(&self) -> String {
        K::mask(&self.value)
    }
}

impl<K: Mask> fmt::Debug for Pii<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&K::mask(&self.value))
    }
}

impl<K: Mask> fmt::Display for Pii<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&K::mask(&self.value))
    }
}

fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Resident ID / unified social credit code: first 4 and last 4 shown.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdKind;
impl Mask for IdKind {
    fn mask(v: &str) -> String {
        keep_ends(v, 4, 4)
    }
}

/// Account number: first 4 and last 4 shown.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccountKindMask;
impl Mask for AccountKindMask {
    fn mask(v: &str) -> String {
        keep_ends(v, 4, 4)
    }
}

/// Phone number: first 3 and last 4 shown.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneKind;
impl Mask for PhoneKind {
    fn mask(v: &str) -> String {
        keep_ends(v, 3, 4)
    }
}

/// Name: first character shown.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NameKind;
impl Mask for NameKind {
    fn mask(v: &str) -> String {
        let mut chars = v.chars();
        match chars.next() {
            Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
            None => String::new(),
        }
    }
}

/// An identity number.
pub type IdNo = Pii<IdKind>;
/// An account number.
pub type AccountNo = Pii<AccountKindMask>;
/// A phone number.
pub type Phone = Pii<PhoneKind>;
/// A person's or unit's name.
pub type Name = Pii<NameKind>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_as_the_contract_shows() {
        assert_eq!(
            IdNo::new("220102198001011234").masked(),
            "2201**********1234"
        );
        assert_eq!(
            AccountNo::new("62179955057244105").masked(),
            "6217*********4105"
        );
        assert_eq!(Phone::new("13912345678").masked(), "139****5678");
        assert_eq!(Name::new("陈明").masked(), "陈*");
        assert_eq!(format!("{:?}", Name::new("农安县合作社")), "农*****");
        assert_eq!(Phone::new("123").masked(), "***");
    }
}
