//! Golden SMPP 3.4 PDUs (`tests/fixtures/smpp/*.hex`, written from the specification by
//! `make_golden.py`): what we build equals the file octet for octet, the file decodes to the values we
//! meant, and decoding then re-encoding gives the file back.
use std::path::Path;

use bytes::BytesMut;
use codecs::format::smpp::frame::to_octets;
use codecs::format::smpp::pdu::{
    self, Address, ShortMessage, SubmitFields, command_id, status, tag,
};
use codecs::format::smpp::rusmpp::Command;
use codecs::format::smpp::text::{self, Concat, Part};
use codecs::format::smpp::{Inbound, ReceiptText, SmppCodec, Stat};
use tokio_util::codec::Decoder;

fn golden(case: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smpp")
        .join(format!("{case}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn decode(octets: &[u8]) -> Command {
    let mut src = BytesMut::from(octets);
    let frame = SmppCodec::default()
        .decode(&mut src)
        .expect("frame")
        .expect("a whole PDU");
    assert!(src.is_empty(), "one PDU per file");
    match frame {
        Inbound::Pdu(cmd) => *cmd,
        Inbound::Malformed { error, .. } => panic!("malformed: {error}"),
    }
}

/// Build == file, file decodes, re-encode == file.
fn check(case: &str, built: &Command) -> Command {
    let file = golden(case);
    assert_eq!(hex(&to_octets(built)), hex(&file), "{case}: built octets");
    let read = decode(&file);
    assert_eq!(&read, built, "{case}: decoded");
    assert_eq!(to_octets(&read), file, "{case}: re-encoded");
    read
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fields(key: Option<&str>) -> SubmitFields {
    SubmitFields {
        service_number: "10690001".into(),
        destination: "8613912345678".into(),
        registered_delivery: 1,
        key_tlv: key.map(|k| (tag::VENDOR_FIRST, k.to_owned())),
    }
}

#[test]
fn session_pdus() {
    let bind = check(
        "bind_transceiver",
        &pdu::bind_transceiver(1, "gw-test", "secret08").expect("bind"),
    );
    let req = pdu::read_bind_transceiver(&bind).expect("bind read");
    assert_eq!(
        (
            req.system_id.as_str(),
            req.password.as_str(),
            req.interface_version
        ),
        ("gw-test", "secret08", 0x34)
    );
    assert!(!format!("{req:?}").contains("secret08"));
    check(
        "bind_transceiver_resp",
        &pdu::bind_transceiver_resp(1, status::ROK, "SMSC").expect("resp"),
    );
    let refused = check(
        "bind_transceiver_resp_invpaswd",
        &pdu::bind_transceiver_resp(1, status::RINVPASWD, "SMSC").expect("resp"),
    );
    assert_eq!(pdu::status_of(&refused), status::RINVPASWD);
    check(
        "enquire_link",
        &pdu::bodiless(command_id::ENQUIRE_LINK, status::ROK, 2),
    );
    check(
        "enquire_link_resp",
        &pdu::bodiless(
            command_id::response_of(command_id::ENQUIRE_LINK),
            status::ROK,
            2,
        ),
    );
    check("unbind", &pdu::bodiless(command_id::UNBIND, status::ROK, 8));
    check(
        "unbind_resp",
        &pdu::bodiless(command_id::response_of(command_id::UNBIND), status::ROK, 8),
    );
    check(
        "generic_nack",
        &pdu::bodiless(command_id::GENERIC_NACK, status::RINVCMDID, 9),
    );
}

#[test]
fn submit_sm_single_part() {
    let parts = text::split("您好", 0).expect("split");
    let cmd = check(
        "submit_sm_single",
        &pdu::submit_sm(3, &fields(None), &parts[0]).expect("submit"),
    );
    let sm = pdu::read_submit_sm(&cmd).expect("submit read");
    assert_eq!(
        sm,
        ShortMessage {
            source: Address {
                ton: 0,
                npi: 1,
                addr: "10690001".into()
            },
            destination: Address {
                ton: 1,
                npi: 1,
                addr: "8613912345678".into()
            },
            esm_class: 0,
            registered_delivery: 1,
            data_coding: 8,
            short_message: vec![0x60, 0xA8, 0x59, 0x7D],
            tlvs: vec![],
        }
    );
}

#[test]
fn submit_sm_concatenated_part_with_the_notice_key() {
    let t = format!("{}贴发放至", "补".repeat(67));
    let parts = text::split(&t, 0x2A).expect("split");
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[1].concat,
        Some(Concat {
            reference: 0x2A,
            total: 2,
            seq: 2
        })
    );
    let cmd = check(
        "submit_sm_concat_part2",
        &pdu::submit_sm(4, &fields(Some("notice-42")), &parts[1]).expect("submit"),
    );
    let sm = pdu::read_submit_sm(&cmd).expect("read");
    assert_eq!(sm.esm_class, 0x40);
    assert_eq!(
        sm.tlv_c_string(tag::VENDOR_FIRST).as_deref(),
        Some("notice-42")
    );
    let (concat, ud) = text::read_udh(sm.esm_class, &sm.short_message).expect("udh");
    assert_eq!(concat, parts[1].concat);
    assert_eq!(text::decode_ucs2(ud).expect("ucs2"), "贴发放至");
    // A part built by hand with the same content is the same PDU: resending repeats the octets.
    let again = Part {
        concat: parts[1].concat,
        short_message: parts[1].short_message.clone(),
    };
    assert_eq!(
        to_octets(&pdu::submit_sm(4, &fields(Some("notice-42")), &again).expect("again")),
        golden("submit_sm_concat_part2")
    );
}

#[test]
fn submit_sm_responses() {
    let ok = check(
        "submit_sm_resp",
        &pdu::submit_sm_resp(3, status::ROK, "0000000001").expect("resp"),
    );
    assert_eq!(pdu::read_submit_sm_resp(&ok).as_deref(), Some("0000000001"));
    let throttled = check(
        "submit_sm_resp_throttled",
        &pdu::submit_sm_resp(3, status::RTHROTTLED, "ignored").expect("resp"),
    );
    assert_eq!(pdu::status_of(&throttled), status::RTHROTTLED);
    assert_eq!(pdu::read_submit_sm_resp(&throttled), None);
}

#[test]
fn delivery_receipt_and_its_response() {
    let text = "id:0000000001 sub:001 dlvrd:001 submit date:2503051200 done date:2503051201 stat:DELIVRD err:000 text:";
    let cmd = check(
        "deliver_sm_receipt",
        &pdu::deliver_sm_receipt(
            7,
            "8613912345678",
            "10690001",
            text,
            "0000000001",
            &Stat::Delivered,
        )
        .expect("deliver"),
    );
    let sm = pdu::read_deliver_sm(&cmd).expect("read");
    assert_eq!(sm.esm_class, pdu::ESM_CLASS_RECEIPT);
    assert_eq!(
        sm.tlv_c_string(tag::RECEIPTED_MESSAGE_ID).as_deref(),
        Some("0000000001")
    );
    assert_eq!(sm.tlv(tag::MESSAGE_STATE), Some(&[2u8][..]));
    let r = ReceiptText::parse(&sm.short_message).expect("receipt");
    assert_eq!((r.id.as_str(), &r.stat), ("0000000001", &Stat::Delivered));
    assert_eq!(r.to_text(), text);
    check("deliver_sm_resp", &pdu::deliver_sm_resp(7, status::ROK));
}
