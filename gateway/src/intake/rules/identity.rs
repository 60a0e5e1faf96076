//! Identity and account number checks: resident ID (GB 11643, ISO 7064 MOD 11-2), unified social credit
//! code (GB 32100, mod 31), bank card style accounts (Luhn). Messages never repeat the number itself.

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A resident ID with a lowercase `x` check character normalised to `X`.
pub fn normalise_resident_id(id: &str) -> String {
    if id.len() == 18 && id.ends_with('x') {
        format!("{}X", &id[..17])
    } else {
        id.to_owned()
    }
}

/// Checks an 18-character resident ID (already normalised).
pub fn check_resident_id(id: &str) -> Result<(), String> {
    let b = id.as_bytes();
    if b.len() != 18 {
        return Err(format!(
            "id_no has {} characters, a resident ID has 18",
            id.chars().count()
        ));
    }
    if let Some(p) = b[..17].iter().position(|c| !c.is_ascii_digit()) {
        return Err(format!("id_no character {} is not a digit", p + 1));
    }
    let year = i32::try_from(digits(&b[6..10])).unwrap_or(0);
    let month = u8::try_from(digits(&b[10..12])).unwrap_or(0);
    let day = u8::try_from(digits(&b[12..14])).unwrap_or(0);
    let valid_date = time::Month::try_from(month)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(year, m, day).ok())
        .is_some();
    if !valid_date || year < 1850 {
        return Err("id_no birth date (characters 7-14) is not a date".into());
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    let expected = ID_CHECK[(sum % 11) as usize];
    if b[17] != expected {
        return Err(format!(
            "id_no check character is {}, expected {}",
            char::from(b[17]).escape_default(),
            char::from(expected)
        ));
    }
    Ok(())
}

/// Checks an 18-character unified social credit code.
pub fn check_uscc(code: &str) -> Result<(), String> {
    let b = code.as_bytes();
    if b.len() != 18 {
        return Err(format!(
            "id_no has {} characters, a unified social credit code has 18",
            code.chars().count()
        ));
    }
    let mut values = [0u32; 18];
    for (i, c) in b.iter().enumerate() {
        match USCC_CHARS.iter().position(|x| x == c) {
            Some(v) => values[i] = v as u32,
            None => {
                return Err(format!(
                    "id_no character {} is not allowed in a unified social credit code",
                    i + 1
                ));
            }
        }
    }
    let sum: u32 = values[..17]
        .iter()
        .zip(USCC_WEIGHTS)
        .map(|(v, w)| v * w)
        .sum();
    let expected = USCC_CHARS[((31 - sum % 31) % 31) as usize];
    if b[17] != expected {
        return Err(format!(
            "id_no check character is {}, expected {}",
            char::from(b[17]),
            char::from(expected)
        ));
    }
    Ok(())
}

/// Checks a bank card style account number: digits, Luhn.
pub fn check_card_account(no: &str) -> Result<(), String> {
    if no.is_empty() || !no.bytes().all(|c| c.is_ascii_digit()) {
        return Err("account_no is not all digits".into());
    }
    if no.len() < 8 {
        return Err(format!(
            "account_no has {} digits, a card account has at least 8",
            no.len()
        ));
    }
    let sum: u32 = no
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err("account_no fails the Luhn check".into());
    }
    Ok(())
}

/// Checks a corporate account number: digits only.
pub fn check_corporate_account(no: &str) -> Result<(), String> {
    if no.is_empty() || !no.bytes().all(|c| c.is_ascii_digit()) {
        return Err("account_no of a corporate account must be digits only".into());
    }
    Ok(())
}

fn digits(b: &[u8]) -> u32 {
    b.iter().fold(0, |acc, c| acc * 10 + u32::from(c - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_ids() {
        // From the platform contract's example.
        assert!(check_resident_id("220203196602074567").is_ok());
        assert!(check_resident_id("11010519491231002X").is_ok());
        assert_eq!(
            normalise_resident_id("11010519491231002x"),
            "11010519491231002X"
        );
        let err = check_resident_id("220203196602074568").expect_err("bad check");
        assert_eq!(err, "id_no check character is 8, expected 7");
        assert!(check_resident_id("220203196613074567").is_err()); // month 13
        assert!(check_resident_id("22020319660207456").is_err());
        assert!(check_resident_id("2202031966020745６7").is_err());
    }

    #[test]
    fn unified_social_credit_codes() {
        assert!(check_uscc("93220623P73R84RHW4").is_ok());
        assert!(check_uscc("91350100M000100Y43").is_ok());
        assert!(check_uscc("93220623P73R84RHW5").is_err());
        assert!(check_uscc("93220623P73R84RHWI").is_err()); // I is not in the alphabet
    }

    #[test]
    fn luhn_accounts() {
        assert!(check_card_account("6217995505724754105").is_ok());
        assert!(check_card_account("6217995505724754106").is_err());
        assert!(check_card_account("62179955057247541a5").is_err());
        assert!(check_corporate_account("947355155493498279").is_ok());
        assert!(check_corporate_account("9473-5515").is_err());
    }
}
