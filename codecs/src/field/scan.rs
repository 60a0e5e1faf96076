//! Byte-class scans over field values, written so that the compiler vectorizes them: a whole chunk is
//! tested without an early exit (a branch per byte keeps a loop scalar), and the exact position of a
//! bad byte is only looked for once a scan has failed, which on good input is never.

/// Bytes tested together.
const CHUNK: usize = 16;

/// Whether every byte of `bytes` is `ok`.
#[inline]
pub fn all(bytes: &[u8], ok: impl Fn(u8) -> bool) -> bool {
    let mut chunks = bytes.chunks_exact(CHUNK);
    for c in &mut chunks {
        if !c.iter().fold(true, |acc, &b| acc & ok(b)) {
            return false;
        }
    }
    chunks.remainder().iter().fold(true, |acc, &b| acc & ok(b))
}

/// The position of the first byte that is not `ok`.
#[inline]
pub fn first_not(bytes: &[u8], ok: impl Fn(u8) -> bool) -> Option<usize> {
    if all(bytes, &ok) {
        None
    } else {
        bytes.iter().position(|&b| !ok(b))
    }
}

/// The length of the longest prefix of `bytes` whose bytes are all `ok`.
#[inline]
pub fn prefix(bytes: &[u8], ok: impl Fn(u8) -> bool) -> usize {
    let mut at = 0;
    for c in bytes.chunks_exact(CHUNK) {
        if !c.iter().fold(true, |acc, &b| acc & ok(b)) {
            break;
        }
        at += CHUNK;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| !ok(b))
        .unwrap_or(bytes.len() - at)
}

/// `bytes` without its trailing `pad` bytes (a padded field is often mostly padding: those are
/// skipped a chunk at a time).
#[inline]
pub fn trim_end(bytes: &[u8], pad: u8) -> &[u8] {
    let mut end = bytes.len();
    while end >= CHUNK
        && bytes[end - CHUNK..end]
            .iter()
            .fold(true, |acc, &b| acc & (b == pad))
    {
        end -= CHUNK;
    }
    while end > 0 && bytes[end - 1] == pad {
        end -= 1;
    }
    &bytes[..end]
}

/// A printable ASCII byte (0x20..=0x7E).
#[inline]
pub fn printable(b: u8) -> bool {
    b.wrapping_sub(0x20) < 0x5F
}

/// An ASCII digit.
#[inline]
pub fn digit(b: u8) -> bool {
    b.wrapping_sub(b'0') < 10
}

/// An ASCII letter or digit.
#[inline]
pub fn alphanumeric(b: u8) -> bool {
    digit(b) | ((b | 0x20).wrapping_sub(b'a') < 26)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_std() {
        for b in 0..=255u8 {
            assert_eq!(printable(b), matches!(b, b' '..=b'~'), "{b:02X}");
            assert_eq!(digit(b), b.is_ascii_digit(), "{b:02X}");
            assert_eq!(alphanumeric(b), b.is_ascii_alphanumeric(), "{b:02X}");
        }
    }

    #[test]
    fn trims_padding_at_any_length() {
        for len in 0..50 {
            for pad in 0..=len {
                let mut b = vec![b'a'; len - pad];
                b.resize(len, b' ');
                assert_eq!(trim_end(&b, b' '), &b[..len - pad], "{len} {pad}");
            }
        }
    }

    #[test]
    fn scans_find_the_first_bad_byte_at_any_length() {
        for len in 0..50 {
            let good = vec![b'7'; len];
            assert!(all(&good, digit));
            assert_eq!(first_not(&good, digit), None);
            assert_eq!(prefix(&good, digit), len);
            for bad in 0..len {
                let mut b = good.clone();
                b[bad] = b'x';
                if bad + 1 < len {
                    b[len - 1] = 0xFF;
                }
                assert!(!all(&b, digit));
                assert_eq!(first_not(&b, digit), Some(bad), "{len} {bad}");
                assert_eq!(prefix(&b, digit), bad, "{len} {bad}");
            }
        }
    }
}
