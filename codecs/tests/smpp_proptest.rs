//! Property tests of the SMPP layer: split/reassemble, submit_sm and receipts round trip through the
//! codec (fed in random chunks), and the readers are total on arbitrary octets.
use bytes::BytesMut;
use codecs::format::smpp::frame::to_octets;
use codecs::format::smpp::pdu::{self, SubmitFields, tag};
use codecs::format::smpp::text::{self, PART_UNITS, SINGLE_UNITS};
use codecs::format::smpp::{Inbound, ReceiptText, SmppCodec, SmscTime, Stat};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use tokio_util::codec::Decoder;

const CHARS: &[char] = &[
    'a', 'Z', '0', ' ', ',', '。', '，', '【', '】', '补', '贴', '惠', '民', '农', '元', '😀',
    '𠀀', '🇨', '\u{FFFD}', '\u{E000}',
];

fn notice_text(max: usize) -> impl Strategy<Value = String> {
    vec(select(CHARS), 1..=max).prop_map(|c| c.into_iter().collect())
}

fn digits(min: usize, max: usize) -> impl Strategy<Value = String> {
    vec(
        select(&['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'][..]),
        min..=max,
    )
    .prop_map(|c| c.into_iter().collect())
}

fn decode_all(octets: &[u8], chunk: usize) -> Vec<Inbound> {
    let mut codec = SmppCodec::default();
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    for piece in octets.chunks(chunk.max(1)) {
        src.extend_from_slice(piece);
        while let Some(f) = codec.decode(&mut src).expect("frame") {
            out.push(f);
        }
    }
    assert!(src.is_empty());
    out
}

fn time() -> impl Strategy<Value = SmscTime> {
    (
        0u16..100,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        proptest::option::of(0u8..60),
    )
        .prop_map(|(y, month, day, hour, minute, second)| SmscTime {
            year: 2000 + y,
            month,
            day,
            hour,
            minute,
            second,
        })
}

proptest! {
    #[test]
    fn split_parts_fit_and_reassemble(t in notice_text(400), reference: u8) {
        let units = text::utf16_units(&t);
        let parts = text::split(&t, reference).expect("split");
        prop_assert_eq!(parts.len() == 1, units <= SINGLE_UNITS);
        let mut back = String::new();
        for (i, p) in parts.iter().enumerate() {
            prop_assert!(p.short_message.len() <= 140);
            let (concat, ud) = text::read_udh(p.esm_class(), &p.short_message).expect("udh");
            prop_assert_eq!(concat, p.concat);
            if let Some(c) = concat {
                prop_assert_eq!(c.reference, reference);
                prop_assert_eq!(usize::from(c.total), parts.len());
                prop_assert_eq!(usize::from(c.seq), i + 1);
                prop_assert!(ud.len() / 2 <= PART_UNITS);
            }
            // Every part decodes alone: no surrogate pair was cut.
            back.push_str(&text::decode_ucs2(ud).expect("part decodes alone"));
        }
        prop_assert_eq!(back, t);
    }

    #[test]
    fn submit_sm_round_trips_through_the_codec(
        t in notice_text(200),
        reference: u8,
        phone in digits(11, 11),
        service in digits(1, 20),
        key in proptest::option::of("[a-z0-9:-]{1,64}"),
        seq in 1u32..0x7FFF_FFFF,
        chunk in 1usize..64,
    ) {
        let fields = SubmitFields {
            service_number: service.clone(),
            destination: format!("86{phone}"),
            registered_delivery: 1,
            key_tlv: key.clone().map(|k| (tag::VENDOR_FIRST, k)),
        };
        let parts = text::split(&t, reference).expect("split");
        let cmds: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| pdu::submit_sm(seq.wrapping_add(i as u32), &fields, p).expect("build"))
            .collect();
        let octets: Vec<u8> = cmds.iter().flat_map(to_octets).collect();
        let frames = decode_all(&octets, chunk);
        prop_assert_eq!(frames.len(), parts.len());
        for ((frame, cmd), part) in frames.iter().zip(&cmds).zip(&parts) {
            let Inbound::Pdu(read) = frame else { panic!("malformed: {frame:?}") };
            prop_assert_eq!(&**read, cmd);
            let sm = pdu::read_submit_sm(read).expect("submit_sm");
            prop_assert_eq!(&sm.destination.addr, &fields.destination);
            prop_assert_eq!((sm.destination.ton, sm.destination.npi), (1, 1));
            prop_assert_eq!((sm.source.ton, sm.source.npi), (0, 1));
            prop_assert_eq!(&sm.source.addr, &service);
            prop_assert_eq!(sm.data_coding, 8);
            prop_assert_eq!(&sm.short_message, &part.short_message);
            prop_assert_eq!(sm.tlv_c_string(tag::VENDOR_FIRST), key.clone());
        }
    }

    #[test]
    fn receipts_round_trip(
        id in "[0-9A-Za-z-]{1,64}",
        stat in select(&["DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE", "X1"][..]),
        sub in 0u32..1000,
        dlvrd in 0u32..1000,
        submit in time(),
        done in time(),
        err in "[0-9A-Z]{1,3}",
        text in "[ -~]{0,20}",
        phone in digits(11, 11),
    ) {
        let r = ReceiptText {
            id: id.clone(),
            sub: Some(sub),
            dlvrd: Some(dlvrd),
            submit_date: Some(submit),
            done_date: Some(done),
            stat: Stat::from_code(stat),
            err: Some(err),
            text: Some(text),
        };
        let t = r.to_text();
        prop_assert_eq!(ReceiptText::parse(t.as_bytes()).expect("parse"), r.clone());
        let cmd = pdu::deliver_sm_receipt(3, &format!("86{phone}"), "10690001", &t, &id, &r.stat)
            .expect("deliver_sm");
        let frames = decode_all(&to_octets(&cmd), 7);
        let Inbound::Pdu(read) = &frames[0] else { panic!("malformed") };
        let sm = pdu::read_deliver_sm(read).expect("deliver_sm");
        prop_assert_eq!(sm.tlv_c_string(tag::RECEIPTED_MESSAGE_ID), Some(id));
        prop_assert_eq!(ReceiptText::parse(&sm.short_message).expect("parse"), r);
    }

    #[test]
    fn readers_are_total(data in vec(any::<u8>(), 0..600), esm: u8) {
        let mut src = BytesMut::from(&data[..]);
        let mut codec = SmppCodec::new(1024);
        while let Ok(Some(_)) = codec.decode_eof(&mut src) {}
        let _ = ReceiptText::parse(&data);
        let _ = text::read_udh(esm, &data);
        let _ = text::decode_ucs2(&data);
    }

    #[test]
    fn framed_garbage_bodies_are_malformed_not_fatal(
        id in select(&[0x04u32, 0x05, 0x09, 0x80000004, 0x80000005, 0x80000009, 0x15, 0x06, 0x1234][..]),
        body in vec(any::<u8>(), 0..300),
        seq: u32,
    ) {
        let mut octets = Vec::new();
        octets.extend_from_slice(&u32::try_from(16 + body.len()).expect("len").to_be_bytes());
        octets.extend_from_slice(&id.to_be_bytes());
        octets.extend_from_slice(&0u32.to_be_bytes());
        octets.extend_from_slice(&seq.to_be_bytes());
        octets.extend_from_slice(&body);
        // A well-formed enquire_link after it must still be read: the stream stays in step.
        octets.extend_from_slice(&[0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1]);
        let frames = decode_all(&octets, 13);
        prop_assert_eq!(frames.len(), 2);
        match &frames[0] {
            Inbound::Pdu(c) => prop_assert_eq!(c.sequence_number, seq),
            Inbound::Malformed { header, .. } => prop_assert_eq!(header.sequence_number, seq),
        }
        prop_assert!(matches!(&frames[1], Inbound::Pdu(c) if c.sequence_number == 1));
    }
}
