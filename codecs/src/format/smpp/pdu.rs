//! The PDUs the gateway and the simulated centre exchange, built from and read into plain values.
//!
//! `rusmpp` does the octets; this module fixes what SMPP 3.4 and the centre's interface
//! (`shared/specs/sms-smpp.md`) say about the fields, in one place for both sides:
//!
//! ```text
//! bind_transceiver   system_id (<= 15) password (<= 8) system_type "" interface_version 0x34
//!                    addr_ton 0 addr_npi 0 address_range ""
//! submit_sm          service_type "" source_addr_ton 0 source_addr_npi 1 source_addr <service number>
//!                    dest_addr_ton 1 dest_addr_npi 1 destination_addr 86xxxxxxxxxxx
//!                    esm_class 0x00 | 0x40 (UDH) protocol_id 0 priority_flag 0
//!                    schedule_delivery_time "" validity_period "" registered_delivery 1
//!                    replace_if_present_flag 0 data_coding 0x08 sm_default_msg_id 0
//!                    sm_length short_message [TLVs]
//! deliver_sm receipt the same fields, esm_class 0x04, short_message the Appendix B text,
//!                    TLVs receipted_message_id (0x001E) and message_state (0x0427)
//! ```
use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use rusmpp::encode::Length;
use rusmpp::encode::owned::Encode;
use rusmpp::pdus::{BindTransceiver, DeliverSm, SubmitSm, SubmitSmResp};
use rusmpp::tlvs::{MessageDeliveryRequestTlvValue, MessageSubmissionRequestTlvValue, Tlv, TlvTag};
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::{AnyOctetString, COctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, MessageState, Npi, RegisteredDelivery, Ton,
};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio_util::codec::Decoder;

use super::receipt::Stat;
use super::text::Part;

/// `command_id`s (SMPP 3.4 §5.1.2.1) of the PDUs used here.
pub mod command_id {
    /// `generic_nack`.
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    /// `bind_transceiver`.
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    /// `submit_sm`.
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    /// `deliver_sm`.
    pub const DELIVER_SM: u32 = 0x0000_0005;
    /// `unbind`.
    pub const UNBIND: u32 = 0x0000_0006;
    /// `enquire_link`.
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    /// The response of a request: its id with the high bit set.
    pub const fn response_of(request: u32) -> u32 {
        request | 0x8000_0000
    }
}

/// `command_status` values (SMPP 3.4 §5.1.3) used here.
pub mod status {
    /// No error.
    pub const ROK: u32 = 0x0000_0000;
    /// Message length invalid.
    pub const RINVMSGLEN: u32 = 0x0000_0001;
    /// Command length invalid.
    pub const RINVCMDLEN: u32 = 0x0000_0002;
    /// Invalid command id.
    pub const RINVCMDID: u32 = 0x0000_0003;
    /// Incorrect bind status for the command.
    pub const RINVBNDSTS: u32 = 0x0000_0004;
    /// Already bound.
    pub const RALYBND: u32 = 0x0000_0005;
    /// System error.
    pub const RSYSERR: u32 = 0x0000_0008;
    /// Invalid source address.
    pub const RINVSRCADR: u32 = 0x0000_000A;
    /// Invalid destination address.
    pub const RINVDSTADR: u32 = 0x0000_000B;
    /// Bind failed.
    pub const RBINDFAIL: u32 = 0x0000_000D;
    /// Invalid password.
    pub const RINVPASWD: u32 = 0x0000_000E;
    /// Invalid system id.
    pub const RINVSYSID: u32 = 0x0000_000F;
    /// Message queue full: back off and resend.
    pub const RMSGQFUL: u32 = 0x0000_0014;
    /// Invalid `esm_class`.
    pub const RINVESMCLASS: u32 = 0x0000_0043;
    /// Throttling error (window or rate exceeded): back off and resend.
    pub const RTHROTTLED: u32 = 0x0000_0058;
    /// The ESME's temporary application error: the centre retries the `deliver_sm` later.
    pub const RX_T_APPN: u32 = 0x0000_0064;
    /// The ESME's permanent application error: the centre does not retry.
    pub const RX_P_APPN: u32 = 0x0000_0065;
    /// Unknown error.
    pub const RUNKNOWNERR: u32 = 0x0000_00FF;

    /// The specification's name of `status`, `"?"` for one not listed here.
    pub fn name(status: u32) -> &'static str {
        match status {
            ROK => "ESME_ROK",
            RINVMSGLEN => "ESME_RINVMSGLEN",
            RINVCMDLEN => "ESME_RINVCMDLEN",
            RINVCMDID => "ESME_RINVCMDID",
            RINVBNDSTS => "ESME_RINVBNDSTS",
            RALYBND => "ESME_RALYBND",
            RSYSERR => "ESME_RSYSERR",
            RINVSRCADR => "ESME_RINVSRCADR",
            RINVDSTADR => "ESME_RINVDSTADR",
            RBINDFAIL => "ESME_RBINDFAIL",
            RINVPASWD => "ESME_RINVPASWD",
            RINVSYSID => "ESME_RINVSYSID",
            RMSGQFUL => "ESME_RMSGQFUL",
            RINVESMCLASS => "ESME_RINVESMCLASS",
            RTHROTTLED => "ESME_RTHROTTLED",
            RX_T_APPN => "ESME_RX_T_APPN",
            RX_P_APPN => "ESME_RX_P_APPN",
            RUNKNOWNERR => "ESME_RUNKNOWNERR",
            _ => "?",
        }
    }
}

/// TLV tags (SMPP 3.4 §5.3.2) used here.
pub mod tag {
    /// `receipted_message_id`.
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    /// `message_state`.
    pub const MESSAGE_STATE: u16 = 0x0427;
    /// `user_message_reference`.
    pub const USER_MESSAGE_REFERENCE: u16 = 0x0204;
    /// First tag of the vendor-specific range (`0x1400..=0x3FFF`).
    pub const VENDOR_FIRST: u16 = 0x1400;
    /// Last tag of the vendor-specific range.
    pub const VENDOR_LAST: u16 = 0x3FFF;
}

/// SMPP 3.4 `interface_version`.
pub const INTERFACE_VERSION_34: u8 = 0x34;
/// `esm_class` of a delivery receipt (message type bits `0b0001`).
pub const ESM_CLASS_RECEIPT: u8 = 0x04;

/// Why a PDU cannot be built from the values given (which field, never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The value does not fit the field (too long, or holds a NUL).
    #[error("`{field}` does not fit: at most {max} octets without NUL")]
    Field {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
    /// A TLV tag outside the vendor-specific range was given for a free-form value.
    #[error("TLV tag {tag:#06x} is not vendor-specific (0x1400..=0x3FFF)")]
    NotVendorTag {
        /// The tag.
        tag: u16,
    },
}

fn c_string<const MIN: usize, const MAX: usize>(
    field: &'static str,
    value: &str,
) -> Result<COctetString<MIN, MAX>, BuildError> {
    COctetString::from_str(value).map_err(|_| BuildError::Field {
        field,
        max: MAX - 1,
    })
}

/// An address with its type of number and numbering plan.
#[derive(Clone, PartialEq, Eq)]
pub struct Address {
    /// TON.
    pub ton: u8,
    /// NPI.
    pub npi: u8,
    /// The digits.
    pub addr: String,
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.ton, self.npi, mask_digits(&self.addr))
    }
}

/// `13912345678` -> `139****5678`, `8613912345678` -> `86139****5678`: the 4 digits before the last 4
/// hidden; 7 or fewer all stars. Addresses are phone numbers.
pub fn mask_digits(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..chars.len() - 8].iter().collect();
    out.push_str("****");
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// `bind_transceiver` as SMPP 3.4 (`interface_version` `0x34`).
///
/// # Errors
/// [`BuildError::Field`] when `system_id` exceeds 15 or `password` 8 octets.
pub fn bind_transceiver(seq: u32, system_id: &str, password: &str) -> Result<Command, BuildError> {
    let pdu = BindTransceiver::builder()
        .system_id(c_string("system_id", system_id)?)
        .password(c_string("password", password)?)
        .system_type(COctetString::empty())
        .interface_version(InterfaceVersion::Smpp3_4)
        .addr_ton(Ton::Unknown)
        .addr_npi(Npi::Unknown)
        .address_range(COctetString::empty())
        .build();
    Ok(Command::new(CommandStatus::EsmeRok, seq, pdu))
}

/// A `bind_transceiver` as the centre reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct BindRequest {
    /// `system_id`.
    pub system_id: String,
    /// `password` (secret: not printed by `Debug`).
    pub password: String,
    /// `interface_version`.
    pub interface_version: u8,
}

impl fmt::Debug for BindRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindRequest")
            .field("system_id", &self.system_id)
            .field("password", &"***")
            .field("interface_version", &self.interface_version)
            .finish()
    }
}

/// Reads a `bind_transceiver`.
pub fn read_bind_transceiver(cmd: &Command) -> Option<BindRequest> {
    match cmd.pdu() {
        Some(Pdu::BindTransceiver(b)) => Some(BindRequest {
            system_id: b.system_id.as_str().to_owned(),
            password: b.password.as_str().to_owned(),
            interface_version: b.interface_version.into(),
        }),
        _ => None,
    }
}

/// `bind_transceiver_resp`: `system_id` on success, no body on failure (SMPP 3.4 §4.1.6).
///
/// # Errors
/// [`BuildError::Field`] when `system_id` exceeds 15 octets.
pub fn bind_transceiver_resp(
    seq: u32,
    status: u32,
    system_id: &str,
) -> Result<Command, BuildError> {
    if status != status::ROK {
        return Ok(bodiless(
            command_id::response_of(command_id::BIND_TRANSCEIVER),
            status,
            seq,
        ));
    }
    let body = rusmpp::pdus::BindTransceiverResp::builder()
        .system_id(c_string("system_id", system_id)?)
        .build();
    Ok(Command::new(CommandStatus::EsmeRok, seq, body))
}

/// A PDU with a header only: `enquire_link(_resp)`, `unbind(_resp)`, `generic_nack`, and error
/// responses, whose body SMPP 3.4 leaves out. `rusmpp` has no constructor for a response without its
/// body, so the command is read from its 16 header octets: it is then exactly what the peer's decoder
/// makes of it.
pub fn bodiless(command_id: u32, status: u32, seq: u32) -> Command {
    let mut header = BytesMut::with_capacity(16);
    for word in [16, command_id, status, seq] {
        header.extend_from_slice(&u32::to_be_bytes(word));
    }
    match CommandCodec::new().decode(&mut header) {
        Ok(Some(cmd)) => cmd,
        // Not reached for the ids used here; a body-less `Other` encodes the same octets.
        _ => Command::new(
            CommandStatus::from(status),
            seq,
            Pdu::Other {
                command_id: CommandId::from(command_id),
                body: AnyOctetString::empty(),
            },
        ),
    }
}

/// The fields of a `submit_sm` or `deliver_sm` that the gateway and the centre care about.
#[derive(Clone, PartialEq, Eq)]
pub struct ShortMessage {
    /// Source address.
    pub source: Address,
    /// Destination address.
    pub destination: Address,
    /// `esm_class`.
    pub esm_class: u8,
    /// `registered_delivery`.
    pub registered_delivery: u8,
    /// `data_coding`.
    pub data_coding: u8,
    /// `short_message` octets (UDH included).
    pub short_message: Vec<u8>,
    /// Optional parameters as (tag, value octets), in order.
    pub tlvs: Vec<(u16, Vec<u8>)>,
}

impl fmt::Debug for ShortMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShortMessage")
            .field("source", &self.source)
            .field("destination", &self.destination)
            .field("esm_class", &format_args!("{:#04x}", self.esm_class))
            .field("registered_delivery", &self.registered_delivery)
            .field("data_coding", &format_args!("{:#04x}", self.data_coding))
            .field("short_message_octets", &self.short_message.len())
            .field(
                "tlv_tags",
                &self.tlvs.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ShortMessage {
    /// The value of the first TLV with `tag`.
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }

    /// A C-octet-string TLV value (`receipted_message_id`, a vendor key) without its NUL.
    pub fn tlv_c_string(&self, tag: u16) -> Option<String> {
        let v = self.tlv(tag)?;
        let v = v.strip_suffix(&[0]).unwrap_or(v);
        std::str::from_utf8(v).ok().map(str::to_owned)
    }
}

fn tlv_pairs(tlvs: &[Tlv]) -> Vec<(u16, Vec<u8>)> {
    tlvs.iter()
        .map(|t| {
            let mut buf = BytesMut::with_capacity(t.length());
            t.encode(&mut buf);
            let tag = u16::from(t.tag());
            // Tag (2) and length (2), then the value.
            (tag, buf.get(4..).map(<[u8]>::to_vec).unwrap_or_default())
        })
        .collect()
}

/// Reads a `submit_sm`.
pub fn read_submit_sm(cmd: &Command) -> Option<ShortMessage> {
    let Some(Pdu::SubmitSm(s)) = cmd.pdu() else {
        return None;
    };
    Some(ShortMessage {
        source: Address {
            ton: s.source_addr_ton.into(),
            npi: s.source_addr_npi.into(),
            addr: s.source_addr.as_str().to_owned(),
        },
        destination: Address {
            ton: s.dest_addr_ton.into(),
            npi: s.dest_addr_npi.into(),
            addr: s.destination_addr.as_str().to_owned(),
        },
        esm_class: s.esm_class.into(),
        registered_delivery: s.registered_delivery.into(),
        data_coding: s.data_coding.into(),
        short_message: s.short_message().as_ref().to_vec(),
        tlvs: tlv_pairs(s.tlvs()),
    })
}

/// Reads a `deliver_sm`.
pub fn read_deliver_sm(cmd: &Command) -> Option<ShortMessage> {
    let Some(Pdu::DeliverSm(s)) = cmd.pdu() else {
        return None;
    };
    Some(ShortMessage {
        source: Address {
            ton: s.source_addr_ton.into(),
            npi: s.source_addr_npi.into(),
            addr: s.source_addr.as_str().to_owned(),
        },
        destination: Address {
            ton: s.dest_addr_ton.into(),
            npi: s.dest_addr_npi.into(),
            addr: s.destination_addr.as_str().to_owned(),
        },
        esm_class: s.esm_class.into(),
        registered_delivery: s.registered_delivery.into(),
        data_coding: s.data_coding.into(),
        short_message: s.short_message().as_ref().to_vec(),
        tlvs: tlv_pairs(s.tlvs()),
    })
}

/// What a `submit_sm` carries besides the part itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitFields {
    /// The service number: `source_addr` with TON 0, NPI 1.
    pub service_number: String,
    /// `86` + 11 digits: `destination_addr` with TON 1, NPI 1.
    pub destination: String,
    /// `registered_delivery` (1: receipt on final outcome).
    pub registered_delivery: u8,
    /// A vendor-specific TLV (tag in `0x1400..=0x3FFF`) carrying an opaque key as a C-octet string.
    pub key_tlv: Option<(u16, String)>,
}

/// `submit_sm` of one part, UCS-2.
///
/// # Errors
/// [`BuildError`] when an address is too long or the key's tag is not vendor-specific.
pub fn submit_sm(seq: u32, fields: &SubmitFields, part: &Part) -> Result<Command, BuildError> {
    let short_message =
        OctetString::from_vec(part.short_message.clone()).map_err(|_| BuildError::Field {
            field: "short_message",
            max: 255,
        })?;
    let mut sm = SubmitSm::builder()
        .source_addr_ton(Ton::Unknown)
        .source_addr_npi(Npi::Isdn)
        .source_addr(c_string("source_addr", &fields.service_number)?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(c_string("destination_addr", &fields.destination)?)
        .esm_class(EsmClass::from(part.esm_class()))
        .registered_delivery(RegisteredDelivery::from(fields.registered_delivery))
        .data_coding(DataCoding::from(super::text::DATA_CODING_UCS2))
        .short_message(short_message)
        .build();
    if let Some((t, key)) = &fields.key_tlv {
        if !(tag::VENDOR_FIRST..=tag::VENDOR_LAST).contains(t) {
            return Err(BuildError::NotVendorTag { tag: *t });
        }
        if key.len() > 64 || key.contains('\0') {
            return Err(BuildError::Field {
                field: "key TLV",
                max: 64,
            });
        }
        let mut value = key.as_bytes().to_vec();
        value.push(0);
        sm.push_tlv(MessageSubmissionRequestTlvValue::Other {
            tag: TlvTag::from(*t),
            value: AnyOctetString::from_vec(value),
        });
    }
    Ok(Command::new(CommandStatus::EsmeRok, seq, sm))
}

/// `submit_sm_resp`: the message id on success, no body on failure (SMPP 3.4 §4.4.2).
///
/// # Errors
/// [`BuildError::Field`] when `message_id` exceeds 64 octets.
pub fn submit_sm_resp(seq: u32, status: u32, message_id: &str) -> Result<Command, BuildError> {
    if status != status::ROK {
        return Ok(bodiless(
            command_id::response_of(command_id::SUBMIT_SM),
            status,
            seq,
        ));
    }
    let body = SubmitSmResp::builder()
        .message_id(c_string("message_id", message_id)?)
        .build();
    Ok(Command::new(CommandStatus::EsmeRok, seq, body))
}

/// The message id of a successful `submit_sm_resp`.
pub fn read_submit_sm_resp(cmd: &Command) -> Option<String> {
    match cmd.pdu() {
        Some(Pdu::SubmitSmResp(r)) => Some(r.message_id().as_str().to_owned()),
        _ => None,
    }
}

/// `deliver_sm_resp` (its `message_id` is unused and NULL).
pub fn deliver_sm_resp(seq: u32, status: u32) -> Command {
    if status != status::ROK {
        return bodiless(command_id::response_of(command_id::DELIVER_SM), status, seq);
    }
    Command::new(
        CommandStatus::EsmeRok,
        seq,
        rusmpp::pdus::DeliverSmResp::builder().build(),
    )
}

/// `message_state` of a [`Stat`] (SMPP 3.4 §5.2.28), `None` for codes outside Appendix B.
pub fn message_state_of(stat: &Stat) -> Option<u8> {
    Some(match stat {
        Stat::Enroute => 1,
        Stat::Delivered => 2,
        Stat::Expired => 3,
        Stat::Deleted => 4,
        Stat::Undeliverable => 5,
        Stat::Accepted => 6,
        Stat::Unknown => 7,
        Stat::Rejected => 8,
        Stat::Other(_) => return None,
    })
}

/// The [`Stat`] of a `message_state` value.
pub fn stat_of_message_state(state: u8) -> Option<Stat> {
    Some(match state {
        1 => Stat::Enroute,
        2 => Stat::Delivered,
        3 => Stat::Expired,
        4 => Stat::Deleted,
        5 => Stat::Undeliverable,
        6 => Stat::Accepted,
        7 => Stat::Unknown,
        8 => Stat::Rejected,
        _ => return None,
    })
}

/// A delivery receipt as a centre sends it: `deliver_sm` from the recipient to the service number,
/// `esm_class` `0x04`, the Appendix B text, and the TLVs `receipted_message_id` and
/// `message_state`.
///
/// # Errors
/// [`BuildError::Field`] when an address, the text or the id is too long.
pub fn deliver_sm_receipt(
    seq: u32,
    recipient: &str,
    service_number: &str,
    text: &str,
    message_id: &str,
    stat: &Stat,
) -> Result<Command, BuildError> {
    let short_message =
        OctetString::from_vec(text.as_bytes().to_vec()).map_err(|_| BuildError::Field {
            field: "short_message",
            max: 255,
        })?;
    let mut tlvs = vec![MessageDeliveryRequestTlvValue::ReceiptedMessageId(
        c_string("receipted_message_id", message_id)?,
    )];
    if let Some(state) = message_state_of(stat) {
        tlvs.push(MessageDeliveryRequestTlvValue::MessageState(
            MessageState::from(state),
        ));
    }
    let sm = DeliverSm::builder()
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(c_string("source_addr", recipient)?)
        .dest_addr_ton(Ton::Unknown)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(c_string("destination_addr", service_number)?)
        .esm_class(EsmClass::from(ESM_CLASS_RECEIPT))
        .short_message(short_message)
        .tlvs(tlvs)
        .build();
    Ok(Command::new(CommandStatus::EsmeRok, seq, sm))
}

/// `command_status` of a command as a number.
pub fn status_of(cmd: &Command) -> u32 {
    cmd.status().into()
}

/// `command_id` of a command as a number.
pub fn id_of(cmd: &Command) -> u32 {
    cmd.id().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::smpp::frame::to_octets;
    use crate::format::smpp::text::split;

    #[test]
    fn masks_phone_numbers() {
        assert_eq!(mask_digits("8613912345678"), "86139****5678");
        assert_eq!(mask_digits("13912345678"), "139****5678");
        assert_eq!(mask_digits("1234567"), "*******");
        let a = Address {
            ton: 1,
            npi: 1,
            addr: "8613912345678".into(),
        };
        assert_eq!(format!("{a:?}"), "1/1/86139****5678");
    }

    #[test]
    fn field_limits_of_3_4_are_enforced() {
        assert!(bind_transceiver(1, "abcdefghijklmno", "12345678").is_ok());
        assert_eq!(
            bind_transceiver(1, "abcdefghijklmnop", "x").err(),
            Some(BuildError::Field {
                field: "system_id",
                max: 15
            })
        );
        assert_eq!(
            bind_transceiver(1, "gw", "123456789").err(),
            Some(BuildError::Field {
                field: "password",
                max: 8
            })
        );
        let part = &split("hi", 0).expect("split")[0];
        let mut f = SubmitFields {
            service_number: "10690001".into(),
            destination: "8613912345678".into(),
            registered_delivery: 1,
            key_tlv: Some((0x0204, "k".into())),
        };
        assert_eq!(
            submit_sm(1, &f, part).err(),
            Some(BuildError::NotVendorTag { tag: 0x0204 })
        );
        f.key_tlv = None;
        f.destination = "8".repeat(21);
        assert!(submit_sm(1, &f, part).is_err());
    }

    #[test]
    fn bodiless_error_responses_have_16_octets() {
        let r = submit_sm_resp(5, status::RTHROTTLED, "").expect("resp");
        assert_eq!(
            to_octets(&r),
            [0, 0, 0, 16, 0x80, 0, 0, 4, 0, 0, 0, 0x58, 0, 0, 0, 5]
        );
        assert_eq!(status_of(&r), status::RTHROTTLED);
        assert_eq!(id_of(&r), 0x8000_0004);
        assert_eq!(to_octets(&deliver_sm_resp(6, status::RX_T_APPN)).len(), 16);
        assert_eq!(status::name(0x58), "ESME_RTHROTTLED");
    }

    #[test]
    fn message_states_map_both_ways() {
        for s in 1..=8 {
            let stat = stat_of_message_state(s).expect("state");
            assert_eq!(message_state_of(&stat), Some(s));
        }
        assert_eq!(stat_of_message_state(0), None);
        assert_eq!(message_state_of(&Stat::Other("X".into())), None);
    }
}
