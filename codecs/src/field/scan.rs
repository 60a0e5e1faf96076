//! Byte-class scans over field values, written so that the compiler vectorizes them: a whole chunk is
//! tested without an early exit (a branch per byte keeps a loop scalar), and the exact position of a
//! bad byte is only looked for once a scan has failed, which on good input is never.

/// Bytes tested together.
const CHUNK: usize = 16;

/// Whether every byte of `bytes` is `ok`.
///
/// Field values are mostly shorter than a chunk: the bytes after the last whole chunk are not tested
/// one by one but as one more chunk (or two words) that overlaps what was tested before, a fixed-size
/// test the compiler turns into a few vector instructions; testing a byte twice changes nothing.
#[inline(always)]
pub fn all(bytes: &[u8], ok: impl Fn(u8) -> bool) -> bool {
    let test = |c: &[u8]| c.iter().fold(true, |acc, &b| acc & ok(b));
    if let Some(tail) = bytes.last_chunk::<CHUNK>() {
        let (chunks, rest) = bytes.as_chunks::<CHUNK>();
        for c in chunks {
            if !test(c) {
                return false;
            }
        }
        return rest.is_empty() || test(tail);
    }
    match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (Some(head), Some(tail)) => test(head) & test(tail),
        _ => match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
            (Some(head), Some(tail)) => test(head) & test(tail),
            _ => test(bytes),
        },
    }
}

/// The position of the first byte that is not `ok`.
#[inline(always)]
pub fn first_not(bytes: &[u8], ok: impl Fn(u8) -> bool) -> Option<usize> {
    if all(bytes, &ok) {
        None
    } else {
        bytes.iter().position(|&b| !ok(b))
    }
}

/// The length of the longest prefix of `bytes` whose bytes are all `ok`.
#[inline(always)]
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
#[inline(always)]
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
#[inline(always)]
pub fn printable(b: u8) -> bool {
    b.wrapping_sub(0x20) < 0x5F
}

/// An ASCII digit.
#[inline(always)]
pub fn digit(b: u8) -> bool {
    b.wrapping_sub(b'0') < 10
}

/// An ASCII letter or digit.
#[inline(always)]
pub fn alphanumeric(b: u8) -> bool {
    digit(b) | ((b | 0x20).wrapping_sub(b'a') < 26)
}

/// Valid UTF-8 runs of a frame or record, found in step with its fields (asked for in frame order):
/// the text of an ASCII value is sliced from the run that holds it, so the bytes are checked as UTF-8
/// once per run rather than once per field (safe code has no other way from checked ASCII bytes to
/// `&str`).
pub struct Utf8Runs<'a> {
    frame: &'a [u8],
    /// Offset of the current run in the frame.
    at: usize,
    /// The run.
    run: &'a str,
}

impl<'a> Utf8Runs<'a> {
    pub fn new(frame: &'a [u8]) -> Self {
        Self {
            frame,
            at: 0,
            run: "",
        }
    }

    /// The text of bytes `start..end` of the frame, if they are valid UTF-8 (ASCII always is).
    #[inline]
    pub fn text(&mut self, start: usize, end: usize) -> Option<&'a str> {
        if start == end {
            return Some("");
        }
        if start < self.at || end > self.at + self.run.len() {
            // A new run from `start` (a character boundary for an ASCII value): the longest valid
            // UTF-8 there.
            let rest = self.frame.get(start..)?;
            self.run = match std::str::from_utf8(rest) {
                Ok(all) => all,
                Err(e) => std::str::from_utf8(rest.get(..e.valid_up_to())?).ok()?,
            };
            self.at = start;
        }
        self.run.get(start - self.at..end - self.at)
    }
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
    fn all_and_first_not_find_a_bad_byte_at_every_length_and_position() {
        for len in 0..=50 {
            let good = vec![b'5'; len];
            assert!(all(&good, digit), "{len}");
            assert_eq!(first_not(&good, digit), None);
            for at in 0..len {
                let mut bad = good.clone();
                bad[at] = b'x';
                assert!(!all(&bad, digit), "{len} {at}");
                assert_eq!(first_not(&bad, digit), Some(at), "{len} {at}");
            }
        }
    }

    #[test]
    fn utf8_runs_slice_ascii_values_around_other_bytes() {
        let frame = b"0200\x82\x20AB12\xD5\xC5 CD\xFFEF";
        let mut runs = Utf8Runs::new(frame);
        assert_eq!(runs.text(0, 4), Some("0200"));
        assert_eq!(runs.text(6, 8), Some("AB"));
        assert_eq!(runs.text(8, 10), Some("12"));
        assert_eq!(runs.text(10, 10), Some(""));
        assert_eq!(runs.text(10, 12), None, "GBK is no UTF-8");
        assert_eq!(runs.text(12, 15), Some(" CD"));
        assert_eq!(runs.text(16, 18), Some("EF"));
        assert_eq!(runs.text(16, 19), None, "past the end");
        // Asked for out of order: a new run.
        assert_eq!(runs.text(0, 2), Some("02"));
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
