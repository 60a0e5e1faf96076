//! SMPP 3.4 towards the SMS centre (`shared/specs/sms-smpp.md`): framing, the PDUs the gateway and the
//! simulated centre exchange, UCS-2 text split into concatenated parts, and the delivery receipt text.
//!
//! The octets of the PDUs are [`rusmpp`]'s (0.4, an SMPP 5.0 library that writes 3.4 PDUs when binding
//! with `interface_version` `0x34`; re-exported here so every crate uses the one version). What this
//! module adds: a framing layer that survives bodies `rusmpp` cannot read ([`frame`]), the field
//! choices of the interface in one place ([`pdu`]), message shaping ([`text`]) and the Appendix B
//! receipt reader ([`receipt`]).
//!
//! ```text
//! notice text --text::split--> [Part; n] --pdu::submit_sm--> Command --frame::SmppCodec--> octets
//! octets --frame::SmppCodec--> Inbound --pdu::read_deliver_sm--> ShortMessage --receipt--> ReceiptText
//! ```
pub mod frame;
pub mod pdu;
pub mod receipt;
pub mod text;

pub use rusmpp;

pub use frame::{FrameError, Header, Inbound, PduError, SmppCodec};
pub use receipt::{ReceiptError, ReceiptText, SmscTime, Stat};
pub use text::{Concat, Part, TextError};
