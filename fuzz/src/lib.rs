//! What each fuzz target runs: one bank decoder over arbitrary bytes. The decoders are total, so the
//! only failure is a panic (or a hang, or unbounded memory). The targets in `fuzz_targets/` are
//! three-line wrappers around these functions, and `bank-profiles/tests/fuzz_corpus.rs` replays every
//! file of `fuzz/corpus/<target>/` through the same functions (it includes this file), so an input
//! that once crashed stays a test.
//!
//! The layouts come from the compiled-in profiles: bank A (`402241000015`) for the fixed-width
//! decoders, bank C (`403241000011`) for the ISO 8583 field table.
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use bank_profiles::Framing;
use bytes::BytesMut;
use codecs::format::fixed_width::messages::Layouts;
use codecs::format::iso8583::{self, MessageSpec, Tlv};
use codecs::format::iso20022::pain002;
use codecs::format::smpp::frame::to_octets;
use codecs::format::smpp::rusmpp::Command;
use codecs::format::smpp::{Inbound, ReceiptError, ReceiptText, SmppCodec, pdu, text};
use codecs::framing::{AsciiLenCodec, U16LenCodec};
use codecs::mac::{MacAlg, MacKey};
use tokio_util::codec::Decoder;

/// Bank A's layouts, its final state code and its framing.
struct BankA {
    layouts: Layouts,
    final_state: String,
    framing: AsciiLenCodec,
}

static BANK_A: LazyLock<Option<BankA>> = LazyLock::new(|| {
    let profiles = bank_profiles::builtin().ok()?;
    let p = profiles.get("402241000015")?;
    let fw = p.fixed_width.as_ref()?;
    let Framing::AsciiLength { digits, max_body } = p.transport.framing else {
        return None;
    };
    Some(BankA {
        layouts: fw.messages().ok()?,
        final_state: fw.value("state", "final")?.to_owned(),
        framing: AsciiLenCodec::new(digits, max_body),
    })
});

/// Bank C's field table and framing.
static BANK_C: LazyLock<Option<(MessageSpec, U16LenCodec)>> = LazyLock::new(|| {
    let profiles = bank_profiles::builtin().ok()?;
    let p = profiles.get("403241000011")?;
    let spec = p.iso8583.as_ref()?.message_spec().ok()?;
    let Framing::U16Length { max_body } = p.transport.framing else {
        return None;
    };
    Some((spec, U16LenCodec::new(max_body)))
});

static KEY: LazyLock<Option<MacKey>> =
    LazyLock::new(|| MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").ok());

fn bank_a() -> &'static BankA {
    BANK_A
        .as_ref()
        .unwrap_or_else(|| panic!("bank A's builtin profile does not load"))
}

fn bank_c() -> &'static (MessageSpec, U16LenCodec) {
    BANK_C
        .as_ref()
        .unwrap_or_else(|| panic!("bank C's builtin profile does not load"))
}

/// A fixed-width request body (what bank A's simulator reads): submit, query or echo.
pub fn fixed_width_request(data: &[u8]) {
    let _ = bank_a().layouts.decode_request(data);
}

/// A fixed-width reply body (what the gateway reads), through every reply decoder.
pub fn fixed_width_replies(data: &[u8]) {
    let a = bank_a();
    let _ = a.layouts.decode_submit_reply(data);
    let _ = a.layouts.decode_query_reply(data, &a.final_state);
    let _ = a.layouts.decode_echo(data);
}

/// An ISO 8583 message (after its length header) against bank C's table, and its MAC check.
pub fn iso8583_decode(data: &[u8]) {
    let (spec, _) = bank_c();
    if let Ok(m) = iso8583::decode(spec, data) {
        // Whatever decodes must be printable (masked) without panicking.
        let _ = format!("{m:?}");
    }
    let _ = iso8583::mac_input(data);
    if let Some(key) = KEY.as_ref() {
        let _ = iso8583::verify_mac(spec, data, MacAlg::X919, key);
    }
}

/// A tag list (F48, F121), as bytes and as text.
pub fn iso8583_tlv(data: &[u8]) {
    let _ = Tlv::decode_gbk(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Tlv::decode(text);
    }
}

/// A pain.002 document.
pub fn pain002_read(data: &[u8]) {
    let _ = pain002::read_document(data);
}

/// Splits `data` into frames with `codec` as a stream would: all of it at once, then to the end.
fn frames<D: Decoder>(mut codec: D, data: &[u8]) {
    let mut buf = BytesMut::from(data);
    // Each frame consumes at least its header: the loop ends.
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
    let _ = codec.decode_eof(&mut buf);
}

/// Bank A's 8-digit ASCII length framing.
pub fn framing_ascii_len(data: &[u8]) {
    frames(bank_a().framing, data);
}

/// Bank C's 2-byte length framing.
pub fn framing_u16_len(data: &[u8]) {
    frames(bank_c().1, data);
}

/// SMPP: a stream cut into PDUs by the shared codec (what the gateway and the simulated SMS centre
/// read), every readable PDU through the readers both sides use (fields, UDH, UCS-2 text, the
/// Appendix B receipt, TLVs) and written again.
pub fn smpp_frame(data: &[u8]) {
    let mut codec = SmppCodec::new(4096);
    let mut buf = BytesMut::from(data);
    // Each PDU consumes at least its 16-octet header: the loop ends.
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        if let Inbound::Pdu(cmd) = frame {
            smpp_pdu(&cmd);
        }
    }
    let _ = codec.decode_eof(&mut buf);
}

fn smpp_pdu(cmd: &Command) {
    for sm in [pdu::read_submit_sm(cmd), pdu::read_deliver_sm(cmd)]
        .into_iter()
        .flatten()
    {
        if let Ok((_, ud)) = text::read_udh(sm.esm_class, &sm.short_message) {
            let _ = text::decode_ucs2(ud);
        }
        let _ = ReceiptText::parse(&sm.short_message);
        let _ = sm.tlv_c_string(pdu::tag::RECEIPTED_MESSAGE_ID);
        let _ = format!("{sm:?}");
    }
    let _ = pdu::read_submit_sm_resp(cmd);
    let _ = pdu::read_bind_transceiver(cmd);
    let _ = to_octets(cmd);
}

/// An Appendix B delivery receipt text, and the reader's own writing of what it read: read again, it
/// gives the same receipt (unless the writing outgrew the read limit: invalid UTF-8 in `text:` becomes
/// U+FFFD, three octets for one).
pub fn smpp_receipt(data: &[u8]) {
    if let Ok(r) = ReceiptText::parse(data) {
        match ReceiptText::parse(r.to_text().as_bytes()) {
            Ok(again) => assert!(again == r, "a receipt read, written and read again changed"),
            Err(ReceiptError::TooLong { .. }) => {}
            Err(e) => panic!("a receipt read must read again once written: {e}"),
        }
    }
}
