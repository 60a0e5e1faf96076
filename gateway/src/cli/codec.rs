//! `gateway codec`: a bank's frames and documents to JSON and back, driven by the bank's profile.
//!
//! ```text
//! gateway codec decode --profile CODE FILE [--kind K] [--reveal] [--mac-key-file F]  -> JSON on stdout
//! gateway codec encode --profile CODE --kind K FILE.json [--mac-key-file F]         -> bytes on stdout
//!
//! family       FILE (decode)                               kinds
//! fixed-width  whole frame: ASCII length header + records  request, submit_reply, query_reply, echo
//! iso20022     XML document                                pain001, pain002
//! iso8583      whole frame: 2-byte length + message        network, network_reply, payout,
//!                                                          payout_reply, inquiry, inquiry_reply
//! ```
//! The JSON is that of the golden fixtures (`bank-profiles/fixtures/<bank>/<case>.json`), so a fixture
//! decodes to its `.json` and its `.json` encodes to its bytes. The kind is told from the bytes where the
//! format allows (record prefixes; the XML namespace; MTI and F3); `--kind` overrides it. Personal data
//! (accounts, ID numbers, names, phones; the fields and tags the profile marks sensitive) is masked
//! unless `--reveal`, and `encode` refuses masked values rather than send them. Errors name the field
//! and the byte offset, never a value.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bank_profiles::iso8583::MessageKind;
use bank_profiles::{Family, Framing, Iso8583, Profile};
use clap::{Args, Subcommand};
use codecs::format::fixed_width::DecodeError as RecordError;
use codecs::format::fixed_width::messages::{
    Layouts, MessageError, QueryReply, Request, SubmitReply,
};
use codecs::format::iso8583::{self as iso, FieldValue, Message, MessageSpec, Tlv};
use codecs::format::iso20022::pain001;
use codecs::format::iso20022::pain002::{self, StatusReport, TimeStyle};
use codecs::format::iso20022::{PAIN001_NS, PAIN002_NS};
use codecs::framing::{AsciiLenCodec, U16LenCodec};
use codecs::mac::{MacAlg, MacKey};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::domain::{AccountNo, IdNo, Name, Phone};

/// `gateway codec ...`.
#[derive(Debug, Subcommand)]
pub enum CodecCommand {
    /// A frame or document -> JSON on stdout.
    Decode(DecodeArgs),
    /// JSON -> the frame's or document's bytes on stdout.
    Encode(EncodeArgs),
}

/// Which bank.
#[derive(Debug, Args)]
pub struct BankArgs {
    /// The bank code whose profile gives the layouts.
    #[arg(long)]
    pub profile: String,
    /// Extra profiles folder, on top of the built-in ones.
    #[arg(long)]
    pub profiles_dir: Option<PathBuf>,
}

/// ISO 8583 MAC options.
#[derive(Debug, Args)]
pub struct MacArgs {
    /// ISO 8583: a file holding the MAC key (32 hex digits); decode checks F128 with it, encode
    /// computes F128 with it.
    #[arg(long)]
    pub mac_key_file: Option<PathBuf>,
    /// ISO 8583: the MAC algorithm (`x919` or `sm4`), when not the profile's.
    #[arg(long)]
    pub mac_alg: Option<String>,
}

/// `gateway codec decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    pub bank: BankArgs,
    /// The message kind, when the bytes cannot tell it (or to insist on one).
    #[arg(long)]
    pub kind: Option<String>,
    /// Show personal data (accounts, ID numbers, names, phones) in full.
    #[arg(long)]
    pub reveal: bool,
    #[command(flatten)]
    pub mac: MacArgs,
    /// The frame or document (`-`: stdin).
    pub file: PathBuf,
}

/// `gateway codec encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub bank: BankArgs,
    /// The message kind.
    #[arg(long)]
    pub kind: String,
    #[command(flatten)]
    pub mac: MacArgs,
    /// The message as JSON (`-`: stdin).
    pub file: PathBuf,
}

/// Why the command failed. Messages name the file, the field and the byte offset, never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecCliError {
    /// A file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The profiles could not be loaded.
    #[error(transparent)]
    Profile(#[from] bank_profiles::ProfileError),
    /// No profile has this code.
    #[error("no profile for bank {code} (known: {known}); --profiles-dir adds more")]
    NoProfile {
        /// The code asked for.
        code: String,
        /// The codes known.
        known: String,
    },
    /// The input is not a message of the bank (decode), or the JSON cannot be written (encode).
    #[error("{file}: {problem}")]
    Input {
        /// The file.
        file: String,
        /// What is wrong, and where.
        problem: String,
    },
    /// Options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// Standard output failed.
    #[error("writing to stdout: {0}")]
    Output(std::io::Error),
}

/// Runs `gateway codec ...`.
pub fn run(cmd: CodecCommand) -> Result<(), CodecCliError> {
    match cmd {
        CodecCommand::Decode(a) => {
            let profile = load_profile(&a.bank)?;
            let bytes = read_input(&a.file)?;
            let mac = mac_options(&profile, &a.mac)?;
            let opts = DecodeOptions {
                kind: a.kind.as_deref(),
                reveal: a.reveal,
                mac: mac.as_ref(),
            };
            let value =
                decode(&profile, &bytes, &opts).map_err(|problem| CodecCliError::Input {
                    file: a.file.display().to_string(),
                    problem,
                })?;
            let mut text = serde_json::to_string_pretty(&value)
                .map_err(|e| CodecCliError::Output(std::io::Error::other(e)))?;
            text.push('\n');
            write_stdout(text.as_bytes())
        }
        CodecCommand::Encode(a) => {
            let profile = load_profile(&a.bank)?;
            let bytes = read_input(&a.file)?;
            let file = a.file.display().to_string();
            let json: Value = serde_json::from_slice(&bytes).map_err(|e| CodecCliError::Input {
                file: file.clone(),
                problem: format!("not JSON: {e}"),
            })?;
            let mac = mac_options(&profile, &a.mac)?;
            let out = encode(&profile, &a.kind, json, mac.as_ref())
                .map_err(|problem| CodecCliError::Input { file, problem })?;
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), CodecCliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(CodecCliError::Output)
}

fn read_input(path: &Path) -> Result<Vec<u8>, CodecCliError> {
    let err = |source| CodecCliError::Read {
        file: path.display().to_string(),
        source,
    };
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(err)?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(err)
    }
}

fn load_profile(a: &BankArgs) -> Result<Profile, CodecCliError> {
    let mut profiles = bank_profiles::builtin()?;
    if let Some(dir) = &a.profiles_dir {
        profiles.extend(bank_profiles::load_dir(dir)?);
    }
    match profiles.get(&a.profile) {
        Some(p) => Ok(p.clone()),
        None => Err(CodecCliError::NoProfile {
            code: a.profile.clone(),
            known: profiles.keys().cloned().collect::<Vec<_>>().join(", "),
        }),
    }
}

/// A MAC key and algorithm, for ISO 8583 frames.
pub struct MacOptions {
    /// The algorithm.
    pub alg: MacAlg,
    /// The key.
    pub key: MacKey,
}

fn mac_options(profile: &Profile, a: &MacArgs) -> Result<Option<MacOptions>, CodecCliError> {
    let Some(path) = &a.mac_key_file else {
        if a.mac_alg.is_some() {
            return Err(CodecCliError::Usage(
                "--mac-alg needs --mac-key-file".into(),
            ));
        }
        return Ok(None);
    };
    let Some(iso) = &profile.iso8583 else {
        return Err(CodecCliError::Usage(format!(
            "--mac-key-file: bank {} ({}) has no MAC",
            profile.code,
            profile.family.as_str()
        )));
    };
    let alg = match &a.mac_alg {
        None => iso.mac,
        Some(name) => serde_json::from_value(Value::String(name.clone()))
            .map_err(|_| CodecCliError::Usage(format!("--mac-alg `{name}`: x919 or sm4")))?,
    };
    let text = std::fs::read_to_string(path).map_err(|source| CodecCliError::Read {
        file: path.display().to_string(),
        source,
    })?;
    let key = MacKey::from_hex(&text).map_err(|e| CodecCliError::Input {
        file: path.display().to_string(),
        problem: e.to_string(),
    })?;
    Ok(Some(MacOptions { alg, key }))
}

/// What `decode` is asked for.
pub struct DecodeOptions<'a> {
    /// The kind, when given.
    pub kind: Option<&'a str>,
    /// Personal data in full.
    pub reveal: bool,
    /// Check F128 with this key (ISO 8583).
    pub mac: Option<&'a MacOptions>,
}

/// A frame or document of `profile`'s bank as JSON; `Err` says what is wrong and where.
pub fn decode(profile: &Profile, bytes: &[u8], opts: &DecodeOptions<'_>) -> Result<Value, String> {
    if opts.mac.is_some() && profile.family != Family::Iso8583 {
        return Err("--mac-key-file is for ISO 8583 frames".into());
    }
    let mut value = match profile.family {
        Family::FixedWidth => fixed_width::decode(profile, bytes, opts.kind)?,
        Family::Iso20022 => iso20022::decode(bytes, opts.kind)?,
        Family::Iso8583 => {
            let iso = profile
                .iso8583
                .as_ref()
                .ok_or("the profile has no iso8583 table")?;
            return iso8583::decode(profile, iso, bytes, opts);
        }
    };
    if !opts.reveal {
        mask_by_key(&mut value);
    }
    Ok(value)
}

/// The bytes of a message of `kind` given as JSON; `Err` says what is wrong and where.
pub fn encode(
    profile: &Profile,
    kind: &str,
    json: Value,
    mac: Option<&MacOptions>,
) -> Result<Vec<u8>, String> {
    match profile.family {
        Family::FixedWidth | Family::Iso20022 if mac.is_some() => {
            Err("--mac-key-file is for ISO 8583 frames".into())
        }
        Family::FixedWidth => {
            refuse_masked_keys(&json, "")?;
            fixed_width::encode(profile, kind, json)
        }
        Family::Iso20022 => {
            refuse_masked_keys(&json, "")?;
            iso20022::encode(kind, json)
        }
        Family::Iso8583 => {
            let iso = profile
                .iso8583
                .as_ref()
                .ok_or("the profile has no iso8583 table")?;
            iso8583::encode(profile, iso, kind, json, mac)
        }
    }
}

/// `json` read as `T`, errors naming the JSON path (`message.details[2].amount`).
fn from_json<T: DeserializeOwned>(json: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        format!("JSON at `{path}`: {}", e.into_inner())
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot show the message as JSON: {e}"))
}

// ---- masking ----------------------------------------------------------------------------------------

/// How a kind of personal value is masked.
#[derive(Clone, Copy)]
enum Personal {
    Account,
    Id,
    Name,
    Phone,
}

impl Personal {
    fn mask(self, v: &str) -> String {
        match self {
            Personal::Account => AccountNo::new(v).masked(),
            Personal::Id => IdNo::new(v).masked(),
            Personal::Name => Name::new(v).masked(),
            Personal::Phone => Phone::new(v).masked(),
        }
    }

    /// The kind of a JSON key (fixed-width and ISO 20022 messages) or tag name (ISO 8583).
    fn of_key(key: &str) -> Option<Self> {
        match key {
            "account_no" | "recipient_account" | "payer_account" => Some(Personal::Account),
            "id_no" => Some(Personal::Id),
            "account_name" | "name" => Some(Personal::Name),
            "phone" => Some(Personal::Phone),
            _ => None,
        }
    }
}

/// Masks the personal values of a decoded message, found by their keys. The payer's account is the
/// finance bureau's and stays visible in the fixed-width and ISO 20022 messages.
fn mask_by_key(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                match (Personal::of_key(k), x) {
                    (Some(p), Value::String(s)) if k != "payer_account" => *s = p.mask(s),
                    (_, x) => mask_by_key(x),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_by_key),
        _ => {}
    }
}

/// Refuses JSON whose account, ID or phone values are masked (`*`): encoding them would send garbage.
fn refuse_masked_keys(v: &Value, path: &str) -> Result<(), String> {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (Personal::of_key(k), x) {
                    (
                        Some(Personal::Account | Personal::Id | Personal::Phone),
                        Value::String(s),
                    ) if s.contains('*') => {
                        return Err(masked(&here));
                    }
                    _ => refuse_masked_keys(x, &here)?,
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| refuse_masked_keys(x, &format!("{path}[{i}]"))),
        _ => Ok(()),
    }
}

fn masked(path: &str) -> String {
    format!("`{path}` holds a masked value: decode with --reveal to get one that can be encoded")
}

// ---- fixed-width (bank A family) ---------------------------------------------------------------------

mod fixed_width {
    use super::*;

    /// The kinds, named as the golden fixtures' `cases.json` names the decoders.
    const KINDS: &str = "request, submit_reply, query_reply, echo";

    struct Bank {
        layouts: Layouts,
        codec: AsciiLenCodec,
        final_state: String,
        echo_request: String,
        echo_reply: String,
    }

    fn bank(p: &Profile) -> Result<Bank, String> {
        let fw = p
            .fixed_width
            .as_ref()
            .ok_or("the profile has no fixed_width table")?;
        let Framing::AsciiLength { digits, max_body } = p.transport.framing else {
            return Err("the profile's framing is not an ASCII length header".into());
        };
        Ok(Bank {
            layouts: fw.messages()?,
            codec: AsciiLenCodec::new(digits, max_body),
            final_state: fw.value("state", "final").unwrap_or_default().to_owned(),
            echo_request: fw.echo_request.clone(),
            echo_reply: fw.echo_reply.clone(),
        })
    }

    /// The kind of a body, from its first record's constant prefix (and an echo's `txn_code`).
    fn kind_of(b: &Bank, body: &[u8]) -> Result<&'static str, String> {
        let l = &b.layouts;
        let first = body
            .get(..l.submit_header.record_len())
            .ok_or("the body is shorter than one record")?;
        if l.submit_header.matches(first) || l.query.matches(first) {
            return Ok("request");
        }
        if l.submit_reply.matches(first) {
            return Ok("submit_reply");
        }
        if l.query_reply_header.matches(first) {
            return Ok("query_reply");
        }
        if l.echo.matches(first) {
            let rec = l
                .echo
                .decode(first)
                .map_err(|e| format!("record 0 (frame byte {}): {e}", b.codec.digits()))?;
            let code = rec.get("txn_code").unwrap_or_default();
            if code == b.echo_request {
                return Ok("request");
            }
            if code == b.echo_reply {
                return Ok("echo");
            }
            return Err(format!(
                "an echo record whose txn_code is neither {} nor {}",
                b.echo_request, b.echo_reply
            ));
        }
        Err(format!(
            "record 0 starts like none of the bank's record layouts; give --kind ({KINDS})"
        ))
    }

    /// Adds the frame offset to a record-level error: `record 2: field `x` at byte 9` is also
    /// `frame byte 8 + 2 * 202 + 9`.
    fn locate(b: &Bank, e: MessageError) -> String {
        let unit = b.layouts.unit();
        let header = b.codec.digits();
        match &e {
            MessageError::Record {
                record,
                source: RecordError::Field { offset, .. },
            } => format!("{e} (frame byte {})", header + record * unit + offset),
            MessageError::Record { record, .. } | MessageError::Structure { record, .. } => {
                format!(
                    "{e} (record starts at frame byte {})",
                    header + record * unit
                )
            }
            MessageError::Body(RecordError::Terminator { offset, .. }) => {
                format!("{e} (frame byte {})", header + offset)
            }
            _ => e.to_string(),
        }
    }

    pub(super) fn decode(p: &Profile, frame: &[u8], kind: Option<&str>) -> Result<Value, String> {
        let b = bank(p)?;
        let digits = b.codec.digits();
        if frame.len() < digits {
            return Err(format!(
                "{} bytes: the {digits}-digit length header alone needs {digits}",
                frame.len()
            ));
        }
        let (header, body) = frame.split_at(digits);
        let announced = b
            .codec
            .parse_header(header)
            .map_err(|e| format!("length header: {e}"))?;
        if announced != body.len() {
            return Err(format!(
                "the length header announces {announced} bytes, {} follow it (from byte {digits})",
                body.len()
            ));
        }
        let kind = match kind {
            Some(k) => k,
            None => kind_of(&b, body)?,
        };
        let l = &b.layouts;
        let err = |e| locate(&b, e);
        match kind {
            "request" => to_json(&l.decode_request(body).map_err(err)?),
            "submit_reply" => to_json(&l.decode_submit_reply(body).map_err(err)?),
            "query_reply" => to_json(&l.decode_query_reply(body, &b.final_state).map_err(err)?),
            "echo" => to_json(&l.decode_echo(body).map_err(err)?),
            other => Err(format!("unknown kind `{other}` ({KINDS})")),
        }
    }

    pub(super) fn encode(p: &Profile, kind: &str, json: Value) -> Result<Vec<u8>, String> {
        let b = bank(p)?;
        let l = &b.layouts;
        let body = match kind {
            "request" => match from_json::<Request>(json)? {
                Request::Submit(s) => l.encode_submit(&s),
                Request::Query(q) => l.encode_query(&q),
                Request::Echo(code) => l.encode_echo(&code),
            },
            "submit_reply" => l.encode_submit_reply(&from_json::<SubmitReply>(json)?),
            "query_reply" => l.encode_query_reply(&from_json::<QueryReply>(json)?),
            "echo" => l.encode_echo(&from_json::<String>(json)?),
            other => return Err(format!("unknown kind `{other}` ({KINDS})")),
        }
        .map_err(|e| e.to_string())?;
        let mut frame = b
            .codec
            .header(body.len())
            .map_err(|e| format!("length header: {e}"))?;
        frame.extend_from_slice(&body);
        Ok(frame)
    }
}

// ---- ISO 20022 (bank B family) -----------------------------------------------------------------------

mod iso20022 {
    use super::*;

    const KINDS: &str = "pain001, pain002";

    fn holds(bytes: &[u8], needle: &str) -> bool {
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// The kind of a document, from the namespace it declares (pain.002 when it declares neither or
    /// both: the reader then says what is wrong).
    fn kind_of(bytes: &[u8]) -> &'static str {
        if holds(bytes, PAIN001_NS) && !holds(bytes, PAIN002_NS) {
            "pain001"
        } else {
            "pain002"
        }
    }

    pub(super) fn decode(bytes: &[u8], kind: Option<&str>) -> Result<Value, String> {
        match kind.unwrap_or_else(|| kind_of(bytes)) {
            // The same JSON `encode --kind pain001` takes (the golden fixtures' `.input.json`).
            "pain001" => match pain001::read_document(bytes) {
                Ok(doc) => to_json(&doc),
                Err(e) => Err(format!("pain.001.001.09: {e}")),
            },
            "pain002" => match pain002::read_document(bytes) {
                Ok(report) => to_json(&report),
                Err(e) => Err(format!("pain.002.001.10: {e}")),
            },
            other => Err(format!("unknown kind `{other}` ({KINDS})")),
        }
    }

    pub(super) fn encode(kind: &str, json: Value) -> Result<Vec<u8>, String> {
        match kind {
            "pain001" => {
                let doc: pain001::Document = from_json(json)?;
                doc.write().map_err(|e| e.to_string())
            }
            "pain002" => {
                let r: StatusReport = from_json(json)?;
                pain002::write_report(&r, TimeStyle::Offset).map_err(|e| e.to_string())
            }
            other => Err(format!("unknown kind `{other}` ({KINDS})")),
        }
    }
}

// ---- ISO 8583 (bank C family) ------------------------------------------------------------------------

mod iso8583 {
    use super::*;

    fn kinds() -> String {
        MessageKind::ALL.map(MessageKind::as_str).join(", ")
    }

    fn parse_kind(name: &str) -> Result<MessageKind, String> {
        MessageKind::parse(name).ok_or_else(|| format!("unknown kind `{name}` ({})", kinds()))
    }

    fn spec(iso: &Iso8583) -> Result<MessageSpec, String> {
        iso.message_spec()
            .map_err(|e| format!("the profile's field table: {e}"))
    }

    fn codec(p: &Profile) -> Result<U16LenCodec, String> {
        match p.transport.framing {
            Framing::U16Length { max_body } => Ok(U16LenCodec::new(max_body)),
            _ => Err("the profile's framing is not a 2-byte length".into()),
        }
    }

    /// How a value of field `number` (or of its tag `tag`) is shown when masked.
    fn mask_value(name: &str, v: &str) -> String {
        match Personal::of_key(name) {
            Some(p) => p.mask(v),
            None => IdNo::new(v).masked(),
        }
    }

    pub(super) fn decode(
        p: &Profile,
        iso: &Iso8583,
        frame: &[u8],
        opts: &DecodeOptions<'_>,
    ) -> Result<Value, String> {
        let codec = codec(p)?;
        let [hi, lo, message @ ..] = frame else {
            return Err(format!(
                "{} bytes: the 2-byte length header alone needs 2",
                frame.len()
            ));
        };
        let announced = codec
            .parse_header([*hi, *lo])
            .map_err(|e| format!("length header: {e}"))?;
        if announced != message.len() {
            return Err(format!(
                "the length header announces {announced} bytes, {} follow it (from byte 2)",
                message.len()
            ));
        }
        let spec = spec(iso)?;
        let msg = iso::decode(&spec, message)
            .map_err(|e| format!("{e} (message bytes count from frame byte 2)"))?;
        let detected = iso.kind_of(&msg.mti, msg.text(3));
        if let Some(m) = opts.mac {
            let expected = detected.is_none_or(|k| iso.messages.get(k).allows(iso::MAC_FIELD));
            if msg.has(iso::MAC_FIELD) || expected {
                iso::verify_mac(&spec, message, m.alg, &m.key)
                    .map_err(|e| format!("{e} ({})", m.alg))?;
            }
        }
        let kind = match opts.kind {
            Some(name) => {
                let k = parse_kind(name)?;
                if detected.is_some_and(|d| d != k) {
                    return Err(mismatch(iso, &msg, k));
                }
                Some(k)
            }
            None => detected,
        };
        if let Some(k) = kind
            && let Err(e) = iso.check_fields(k, msg.fields.keys().copied())
        {
            // Shown anyway: a frame that breaks its layout is exactly what one wants to look at.
            eprintln!("warning: {e}");
        }
        let mut fields = Vec::with_capacity(msg.fields.len());
        for (&n, v) in &msg.fields {
            let f = spec
                .field(n)
                .ok_or(format!("field {n} is not in the table"))?;
            let hide = f.sensitive && !opts.reveal;
            let mut o = Map::new();
            o.insert("number".into(), json!(n));
            o.insert("name".into(), json!(f.name));
            match (v, iso.tag_field(n)) {
                (FieldValue::Bytes(b), _) => {
                    let shown = if hide {
                        "*".repeat(2 * b.len())
                    } else {
                        hex::encode_upper(b)
                    };
                    o.insert("hex".into(), json!(shown));
                }
                (FieldValue::Text(t), Some(tf)) => match Tlv::decode(t) {
                    Ok(list) => {
                        let tags: Vec<Value> = list
                            .iter()
                            .map(|(tag, value)| {
                                let known = tf.tags.iter().find(|s| s.tag == tag);
                                // Unknown tags of a sensitive field are masked too.
                                let secret = hide && known.is_none_or(|s| s.sensitive);
                                let mut e = Map::new();
                                e.insert("tag".into(), json!(tag));
                                if let Some(s) = known {
                                    e.insert("name".into(), json!(s.name));
                                }
                                let name = known.map_or("", |s| s.name.as_str());
                                let shown = if secret {
                                    mask_value(name, value)
                                } else {
                                    value.to_owned()
                                };
                                e.insert("value".into(), json!(shown));
                                Value::Object(e)
                            })
                            .collect();
                        o.insert("tags".into(), Value::Array(tags));
                    }
                    Err(e) => {
                        let shown = if hide {
                            mask_value(&f.name, t)
                        } else {
                            t.clone()
                        };
                        o.insert("value".into(), json!(shown));
                        o.insert("tag_error".into(), json!(e.to_string()));
                    }
                },
                (FieldValue::Text(t), None) => {
                    let shown = if hide {
                        mask_value(&f.name, t)
                    } else {
                        t.clone()
                    };
                    o.insert("value".into(), json!(shown));
                }
            }
            fields.push(Value::Object(o));
        }
        Ok(json!({
            "kind": kind.map(MessageKind::as_str),
            "mti": msg.mti,
            "fields": fields,
        }))
    }

    fn mismatch(iso: &Iso8583, msg: &Message, want: MessageKind) -> String {
        let layout = iso.messages.get(want);
        format!(
            "MTI {} with F3 {} is not of kind `{}` (MTI {}{})",
            msg.mti,
            msg.text(3).unwrap_or("(none)"),
            want.as_str(),
            layout.mti,
            iso.processing_code(want)
                .map(|c| format!(", F3 {c}"))
                .unwrap_or_default()
        )
    }

    /// One field as the JSON gives it.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FieldIn {
        number: u8,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        value: Option<String>,
        #[serde(default)]
        tags: Option<Vec<TagIn>>,
        #[serde(default)]
        hex: Option<String>,
        #[serde(default)]
        #[allow(dead_code)]
        tag_error: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TagIn {
        tag: String,
        #[serde(default)]
        #[allow(dead_code)]
        name: Option<String>,
        value: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct MessageIn {
        #[serde(default)]
        kind: Option<String>,
        mti: String,
        fields: Vec<FieldIn>,
    }

    pub(super) fn encode(
        p: &Profile,
        iso: &Iso8583,
        kind: &str,
        json: Value,
        mac: Option<&MacOptions>,
    ) -> Result<Vec<u8>, String> {
        let kind = parse_kind(kind)?;
        let input: MessageIn = from_json(json)?;
        if let Some(k) = &input.kind
            && k != kind.as_str()
        {
            return Err(format!(
                "the JSON says kind `{k}`, --kind says `{}`",
                kind.as_str()
            ));
        }
        let spec = spec(iso)?;
        let mut msg = spec.message(input.mti.clone());
        for (i, f) in input.fields.into_iter().enumerate() {
            let at = format!("fields[{i}] (field {})", f.number);
            let Some(fs) = spec.field(f.number) else {
                return Err(format!("{at}: not in the bank's field table"));
            };
            if let Some(name) = &f.name
                && name != &fs.name
            {
                return Err(format!(
                    "{at}: the table calls it `{}`, not `{name}`",
                    fs.name
                ));
            }
            if msg.has(f.number) {
                return Err(format!("{at}: given twice"));
            }
            let value = match (f.value, f.tags, f.hex) {
                (Some(v), None, None) => {
                    if fs.sensitive && v.contains('*') {
                        return Err(masked(&at));
                    }
                    FieldValue::Text(v)
                }
                (None, Some(tags), None) => {
                    let tf = iso.tag_field(f.number);
                    let mut list = Tlv::new();
                    for (j, t) in tags.into_iter().enumerate() {
                        let sensitive = tf
                            .and_then(|tf| tf.tags.iter().find(|s| s.tag == t.tag))
                            .is_none_or(|s| s.sensitive);
                        if fs.sensitive && sensitive && t.value.contains('*') {
                            return Err(masked(&format!("{at}.tags[{j}] ({})", t.tag)));
                        }
                        list.push(&t.tag, t.value);
                    }
                    FieldValue::Text(list.encode().map_err(|e| format!("{at}: {e}"))?)
                }
                (None, None, Some(h)) => {
                    if h.contains('*') {
                        return Err(masked(&at));
                    }
                    FieldValue::Bytes(
                        hex::decode(&h).map_err(|e| format!("{at}: `hex` is not hex: {e}"))?,
                    )
                }
                _ => {
                    return Err(format!("{at}: give exactly one of `value`, `tags`, `hex`"));
                }
            };
            msg.set(f.number, value);
        }
        // Field by field first: a value that does not fit is named before anything else.
        iso::encode(&spec, &msg).map_err(|e| e.to_string())?;
        if iso.kind_of(&msg.mti, msg.text(3)) != Some(kind) {
            return Err(mismatch(iso, &msg, kind));
        }
        let mut present: Vec<u8> = msg.fields.keys().copied().collect();
        if mac.is_some() && iso.messages.get(kind).allows(iso::MAC_FIELD) {
            present.push(iso::MAC_FIELD);
            present.sort_unstable();
            present.dedup();
        }
        iso.check_fields(kind, present).map_err(|e| e.to_string())?;
        let message = match mac {
            Some(m) if iso.messages.get(kind).allows(iso::MAC_FIELD) => {
                iso::encode_with_mac(&spec, &msg, m.alg, &m.key)
            }
            _ => iso::encode(&spec, &msg),
        }
        .map_err(|e| e.to_string())?;
        let header = codec(p)?
            .header(message.len())
            .map_err(|e| format!("length header: {e}"))?;
        let mut frame = header.to_vec();
        frame.extend_from_slice(&message);
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_personal_keys_but_not_the_payer() {
        let mut v = json!({
            "header": {"payer_account": "52050163360000000123", "payer_name": "某县财政局"},
            "details": [{"account_no": "6217995210000012345", "account_name": "张三",
                         "id_no": "52270119800101123X", "phone": "13800000001", "memo": "补贴"}]
        });
        mask_by_key(&mut v);
        let d = &v["details"][0];
        assert_eq!(d["account_no"], "6217***********2345");
        assert_eq!(d["account_name"], "张*");
        assert_eq!(d["id_no"], "5227**********123X");
        assert_eq!(d["phone"], "138****0001");
        assert_eq!(d["memo"], "补贴");
        assert_eq!(v["header"]["payer_account"], "52050163360000000123");
        assert_eq!(
            refuse_masked_keys(&v, ""),
            Err(masked("details[0].account_no"))
        );
    }
}
