//! The three shortlisted banks' profiles: they load, survive load -> serialize -> load, say what their
//! interface documents say, and a broken copy of each new family is refused with the file, the key and
//! the problem.
use std::path::Path;
use std::time::Duration;

use bank_profiles::iso8583::{LayoutError, MessageKind};
use bank_profiles::{
    Family, Framing, ItemOutcome, Profile, ProfileError, QueryOutcome, SessionOutcome,
    StatusOutcome, SubmitOutcome, TransportKind,
};
use codecs::format::iso8583::MessageSpec;
use codecs::mac::MacAlg;

const BANK_A: &str = "402241000015";
const BANK_B: &str = "103241000018";
const BANK_C: &str = "403241000011";

fn text(code: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(format!("{code}.toml"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn builtin(code: &str) -> Profile {
    bank_profiles::builtin().expect("builtin profiles")[code].clone()
}

/// Parses `text` as `broken.toml` and returns the error's text.
fn refused(text: &str) -> String {
    match bank_profiles::parse(Path::new("broken.toml"), text) {
        Ok(_) => panic!("a broken profile was accepted"),
        Err(e) => e.to_string(),
    }
}

/// `text` with `from` replaced once (which must be there).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the profile has no `{from}`");
    text.replacen(from, to, 1)
}

#[test]
fn all_three_load_and_round_trip() {
    let all = bank_profiles::builtin().expect("builtin profiles");
    for (code, family) in [
        (BANK_A, Family::FixedWidth),
        (BANK_B, Family::Iso20022),
        (BANK_C, Family::Iso8583),
    ] {
        let p = &all[code];
        assert_eq!(p.family, family, "{code}");
        let toml = bank_profiles::to_toml(p);
        let again = bank_profiles::parse(Path::new("again.toml"), &toml)
            .unwrap_or_else(|e| panic!("{code} does not reload: {e}\n{toml}"));
        assert_eq!(&again, p, "{code}");
        // Twice: the serialized form is stable.
        assert_eq!(bank_profiles::to_toml(&again), toml, "{code}");
    }
}

#[test]
fn a_folder_of_profiles_loads_like_the_builtin_ones() {
    let dir = std::env::temp_dir().join(format!("bp-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    for code in [BANK_B, BANK_C] {
        std::fs::write(dir.join(format!("{code}.toml")), text(code)).expect("write");
    }
    let loaded = bank_profiles::load_dir(&dir).expect("load");
    assert_eq!(loaded[BANK_B], builtin(BANK_B));
    assert_eq!(loaded[BANK_C], builtin(BANK_C));
    std::fs::write(dir.join("zz-copy.toml"), text(BANK_C)).expect("write");
    let err = bank_profiles::load_dir(&dir).expect_err("two files for one bank");
    assert!(matches!(err, ProfileError::DuplicateCode { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bank_b_says_what_its_spec_says() {
    let p = builtin(BANK_B);
    assert_eq!(p.transport.kind, TransportKind::Https);
    assert_eq!(
        p.transport.framing,
        Framing::Http {
            max_body: 32 * 1024 * 1024
        }
    );
    assert_eq!(p.limits.items_per_part, 10_000);
    assert_eq!(
        p.transport.max_connections * p.limits.max_in_flight,
        8,
        "8 requests at once"
    );
    let x = p.iso20022.as_ref().expect("iso20022 table");
    assert_eq!(x.submit_path, "/cbp/v1/payments");
    assert_eq!(
        x.status_path_for("GW-103-1", "Q1"),
        "/cbp/v1/payments/GW-103-1/status?query_id=Q1"
    );
    assert_eq!(x.clearing_member_id, BANK_B);
    assert!(p.fixed_width.is_none() && p.iso8583.is_none());

    let c = &p.codes;
    assert_eq!(c.submit["202"], SubmitOutcome::Accepted);
    assert_eq!(c.submit["200"], SubmitOutcome::Duplicate);
    assert_eq!(c.submit["503"], SubmitOutcome::Busy);
    assert_eq!(c.submit["400"], SubmitOutcome::Rejected);
    assert_eq!(c.query["404"], QueryOutcome::Unknown);
    assert_eq!(c.status_outcome("ACTC"), Some(StatusOutcome::Accepted));
    assert_eq!(c.status_outcome("PDNG"), Some(StatusOutcome::Processing));
    for s in ["ACCC", "PART", "RJCT"] {
        assert_eq!(c.status_outcome(s), Some(StatusOutcome::Final), "{s}");
    }
    assert_eq!(
        c.status_outcome("ACSP"),
        None,
        "unknown group status: review"
    );
    for s in ["ACCC", "ACSC"] {
        assert_eq!(c.item_outcome(s).0, ItemOutcome::Succeeded, "{s}");
    }
    for s in ["AC01", "AC04", "AC06", "BE01", "AC14", "NARR"] {
        let (o, reason) = c.item_outcome(s);
        assert_eq!(o, ItemOutcome::Failed, "{s}");
        assert!(!reason.is_empty());
    }
    let (o, reason) = c.item_outcome("AM05");
    assert_eq!(o, ItemOutcome::Review, "a duplicate is never a failure");
    assert!(
        reason.contains("duplicate") && reason.contains("MsgId"),
        "{reason}"
    );
    for unknown in ["RJCT", "AC02", "", "accc"] {
        assert_eq!(c.item_outcome(unknown).0, ItemOutcome::Review, "{unknown}");
    }
    assert!(c.session.is_empty());
}

#[test]
fn bank_c_says_what_its_spec_says() {
    let p = builtin(BANK_C);
    assert_eq!(p.transport.framing, Framing::U16Length { max_body: 4096 });
    assert_eq!(p.transport.max_connections, 4);
    assert_eq!(p.limits.max_in_flight, 32);
    assert_eq!(p.timers.echo_interval.0, Duration::from_secs(30));
    assert_eq!(p.timers.idle_timeout.0, Duration::from_secs(120));
    let x = p.iso8583.as_ref().expect("iso8583 table");
    assert_eq!(x.mac, MacAlg::X919);
    assert_eq!(
        x.message_spec().expect("table"),
        MessageSpec::bank_c(),
        "the profile's field table is the codec's bank C table"
    );
    assert_eq!(x.processing_codes.payout, "400000");
    assert_eq!(x.processing_codes.inquiry, "300000");
    assert_eq!(
        (
            x.network_codes.sign_on.as_str(),
            x.network_codes.sign_off.as_str(),
            x.network_codes.echo.as_str()
        ),
        ("001", "002", "301")
    );
    let tags: Vec<&str> = x
        .recipient_data
        .tags
        .iter()
        .map(|t| t.tag.as_str())
        .collect();
    assert_eq!(tags, ["NM", "IT", "ID", "KD", "PH", "SB", "BN", "SQ"]);
    let required: Vec<&str> = x
        .recipient_data
        .tags
        .iter()
        .filter(|t| t.required)
        .map(|t| t.tag.as_str())
        .collect();
    assert_eq!(required, ["NM", "IT", "ID", "KD", "SB", "BN", "SQ"]);
    let result: Vec<&str> = x.result_data.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(result, ["CT", "TX", "RS"]);
    assert_eq!(x.recipient_data.field, 48);
    assert_eq!(x.result_data.field, 121);
    assert_eq!(x.value("account_kind", "ssc"), Some("S"));

    assert_eq!(x.kind_of("0800", None), Some(MessageKind::Network));
    assert_eq!(
        x.kind_of("0810", Some("x")),
        Some(MessageKind::NetworkReply)
    );
    assert_eq!(x.kind_of("0200", Some("400000")), Some(MessageKind::Payout));
    assert_eq!(
        x.kind_of("0200", Some("300000")),
        Some(MessageKind::Inquiry)
    );
    assert_eq!(
        x.kind_of("0210", Some("400000")),
        Some(MessageKind::PayoutReply)
    );
    assert_eq!(
        x.kind_of("0210", Some("300000")),
        Some(MessageKind::InquiryReply)
    );
    assert_eq!(x.kind_of("0200", Some("000000")), None);
    assert_eq!(x.kind_of("0200", None), None);
    assert_eq!(x.kind_of("0400", None), None);
    let reply = [3, 7, 11, 32, 37, 39, 41, 42, 128];
    assert!(x.check_fields(MessageKind::InquiryReply, reply).is_ok());
    let with_result = [3, 7, 11, 32, 37, 39, 41, 42, 121, 128];
    assert!(
        x.check_fields(MessageKind::InquiryReply, with_result)
            .is_ok()
    );
    assert_eq!(
        x.check_fields(MessageKind::PayoutReply, with_result),
        Err(LayoutError::Unexpected {
            kind: "payout_reply",
            field: 121
        })
    );
    assert_eq!(
        x.check_fields(MessageKind::Network, [7, 11, 70]),
        Err(LayoutError::Missing {
            kind: "network",
            field: 32
        })
    );

    let c = &p.codes;
    assert_eq!(c.submit["00"], SubmitOutcome::Accepted);
    assert_eq!(c.submit["94"], SubmitOutcome::Duplicate);
    assert_eq!(c.submit["96"], SubmitOutcome::Busy);
    assert_eq!(c.session_outcome("A7"), Some(SessionOutcome::SignOn));
    assert_eq!(c.session_outcome("A0"), Some(SessionOutcome::Resend));
    assert_eq!(c.session_outcome("30"), Some(SessionOutcome::Refused));
    assert_eq!(c.session_outcome("00"), None);
    assert_eq!(c.query["25"], QueryOutcome::Unknown);
    assert_eq!(c.query["96"], QueryOutcome::Busy);
    assert_eq!(c.status_outcome("09"), Some(StatusOutcome::Processing));
    assert_eq!(c.status_outcome("00"), Some(StatusOutcome::Final));
    assert_eq!(c.item_outcome("00").0, ItemOutcome::Succeeded);
    for s in ["14", "62", "78", "76", "77", "05"] {
        assert_eq!(c.status_outcome(s), Some(StatusOutcome::Final), "{s}");
        assert_eq!(c.item_outcome(s).0, ItemOutcome::Failed, "{s}");
    }
    for unknown in ["09", "25", "96", "51", "A0", "XX"] {
        assert_eq!(
            c.item_outcome(unknown).0,
            ItemOutcome::Review,
            "{unknown} is no final item outcome"
        );
    }
}

#[test]
fn broken_bank_b_profiles_name_file_key_and_problem() {
    let b = text(BANK_B);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            edit(
                &b,
                "/cbp/v1/payments/{msg_id}/status",
                "/cbp/v1/payments/{id}/status",
            ),
            "iso20022.status_path",
            "{id}",
        ),
        (
            edit(
                &b,
                "{ method = \"http\", max_body = 33554432 }",
                "{ method = \"ascii-length\", digits = 8, max_body = 1000 }",
            ),
            "transport.framing",
            "http",
        ),
        (
            edit(&b, "max_body = 33554432", "max_body = 33554433"),
            "transport.framing.max_body",
            "refuses",
        ),
        (
            edit(&b, "kind = \"https\"", "kind = \"tcp\""),
            "transport.kind",
            "https",
        ),
        (
            edit(&b, "\"202\" = \"accepted\"", "\"2O2\" = \"accepted\""),
            "codes.submit",
            "HTTP status",
        ),
        (
            edit(&b, "\"PDNG\" = \"processing\"", "\"pdng\" = \"processing\""),
            "codes.status",
            "pdng",
        ),
        (
            edit(
                &b,
                "clearing_member_id = \"103241000018\"",
                "clearing_member_id = \"10324100001\"",
            ),
            "iso20022.clearing_member_id",
            "12 digits",
        ),
        (
            edit(
                &b,
                "initiation = \"pain.001.001.09\"",
                "initiation = \"pain.001.001.03\"",
            ),
            "iso20022.initiation",
            "pain.001.001.09 only",
        ),
        (
            edit(&b, "max_in_flight = 1", "max_in_flight = 8"),
            "limits.max_in_flight",
            "HTTP/1.1",
        ),
        (
            edit(&b, "family = \"iso20022\"", "family = \"iso8583\""),
            "iso20022",
            "only for the iso20022 family",
        ),
        (edit(&b, "[iso20022]", "[iso20022x]"), "iso20022x", ""),
        (
            edit(&b, "echo_interval = \"0s\"", "echo_interval = \"2m\""),
            "timers.echo_interval",
            "idle_timeout",
        ),
    ];
    for (text, key, problem) in cases {
        let msg = refused(&text);
        assert!(msg.contains("broken.toml"), "names the file: {msg}");
        assert!(msg.contains(key), "names `{key}`: {msg}");
        assert!(msg.contains(problem), "says `{problem}`: {msg}");
    }
    // A table cut: the missing key is named.
    let cut = edit(&b, "submit_path = \"/cbp/v1/payments\"\n", "");
    let msg = refused(&cut);
    assert!(msg.contains("submit_path"), "{msg}");
    // A missing family table.
    let cut = &b[..b.find("[iso20022]").expect("table")];
    let msg = refused(cut);
    assert!(
        msg.contains("`iso20022`") && msg.contains("needs this table"),
        "{msg}"
    );
}

#[test]
fn broken_bank_c_profiles_name_file_key_and_problem() {
    let c = text(BANK_C);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            edit(
                &c,
                "kind = { type = \"ll-var\", max = 28 }",
                "kind = { type = \"ll-var\", max = 128 }",
            ),
            "iso8583.fields",
            "field 2: an LLVAR field holds at most 99 bytes",
        ),
        (
            edit(&c, "number = 49\n", "number = 48\n"),
            "iso8583.fields",
            "field 48 is declared twice",
        ),
        (
            edit(
                &c,
                "kind = { type = \"binary\", len = 8 }",
                "kind = { type = \"binary\", len = 16 }",
            ),
            "iso8583.fields",
            "MAC",
        ),
        (
            edit(
                &c,
                "fields = [2, 3, 4, 7, 11, 12, 13, 32, 37, 41,",
                "fields = [2, 3, 4, 7, 11, 12, 13, 32, 41,",
            ),
            "iso8583.messages.payout.fields",
            "field 37 (item reference)",
        ),
        (
            edit(
                &c,
                "fields = [7, 11, 32, 70]",
                "fields = [5, 7, 11, 32, 70]",
            ),
            "iso8583.messages.network.fields",
            "field 5 is not in iso8583.fields",
        ),
        (
            edit(&c, "fields = [7, 11, 32, 70]", "fields = [11, 7, 32, 70]"),
            "iso8583.messages.network.fields",
            "ascending",
        ),
        (
            edit(&c, "optional = [121]", "optional = [39]"),
            "iso8583.messages.inquiry_reply.optional",
            "field 39",
        ),
        (
            edit(&c, "inquiry = \"300000\"", "inquiry = \"400000\""),
            "iso8583.processing_codes",
            "share",
        ),
        (
            edit(
                &c,
                "{ name = \"name\", tag = \"NM\"",
                "{ name = \"name\", tag = \"N\"",
            ),
            "iso8583.recipient_data.tags[0].tag",
            "`N`",
        ),
        (
            edit(
                &c,
                "{ name = \"seq\", tag = \"SQ\"",
                "{ name = \"seq\", tag = \"NM\"",
            ),
            "iso8583.recipient_data.tags[7].tag",
            "used twice",
        ),
        (
            edit(
                &c,
                "{ name = \"phone\", tag = \"PH\", sensitive = true },\n",
                "",
            ),
            "iso8583.recipient_data.tags",
            "has no `phone`",
        ),
        (
            edit(&c, "field = 121", "field = 4"),
            "iso8583.result_data.field",
            "cannot hold a tag list",
        ),
        (
            edit(
                &c,
                "id_type = { person = \"1\", unit = \"2\" }",
                "id_type = { person = \"1\" }",
            ),
            "iso8583.values.id_type",
            "has no `unit`",
        ),
        (
            edit(&c, "\"09\" = \"processing\"", "\"09\" = \"final\""),
            "codes.status.09",
            "codes.item",
        ),
        (
            edit(
                &c,
                "\"94\" = \"duplicate\"",
                "\"94\" = \"duplicate\"\n\"A7\" = \"busy\"",
            ),
            "codes.session.A7",
            "never apply",
        ),
        (
            edit(&c, "\"14\" = \"final\"", "\"14\" = \"processing\""),
            "codes.",
            "not final",
        ),
        (
            edit(
                &c,
                "\"96\" = \"busy\"        # busy",
                "\"096\" = \"busy\"        # busy",
            ),
            "codes.submit",
            "`096`",
        ),
        (
            edit(
                &c,
                "{ method = \"u16-length\", max_body = 4096 }",
                "{ method = \"http\", max_body = 4096 }",
            ),
            "transport.framing",
            "u16-length",
        ),
        (
            edit(&c, "max_body = 4096", "max_body = 70000"),
            "transport.framing.max_body",
            "65535",
        ),
        (
            edit(&c, "echo_interval = \"30s\"", "echo_interval = \"120s\""),
            "timers.echo_interval",
            "idle_timeout",
        ),
        (edit(&c, "mac = \"x919\"", "mac = \"des\""), "mac", "des"),
        (
            edit(&c, "currency = \"156\"", "currency = \"156\"\nsurprise = 1"),
            "surprise",
            "",
        ),
        (
            edit(&c, "mti = \"0810\"", "mti = \"0800\""),
            "iso8583.messages.network_reply.mti",
            "cannot be told apart",
        ),
    ];
    for (text, key, problem) in cases {
        let msg = refused(&text);
        assert!(msg.contains("broken.toml"), "names the file: {msg}");
        assert!(msg.contains(key), "names `{key}`: {msg}");
        assert!(msg.contains(problem), "says `{problem}`: {msg}");
    }
}
