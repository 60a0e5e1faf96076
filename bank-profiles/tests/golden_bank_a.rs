//! Golden frames of bank A (`fixtures/402241000015`, built by `make_fixtures.py` from the interface
//! spec, independently of the codec): every frame decodes to its `.json`, re-encodes to the same bytes,
//! and survives being read in chunks of any size.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use bytes::BytesMut;
use codecs::format::fixed_width::messages::{Layouts, QueryReply, Request, SubmitReply};
use codecs::framing::AsciiLenCodec;
use serde::Deserialize;
use serde_json::Value as Json;
use tokio_util::codec::Decoder;

const BANK: &str = "402241000015";
const HEADER_LEN: usize = 8;

/// One line of `cases.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    case: String,
    decoder: String,
    about: String,
    input: bool,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(BANK)
}

fn read(name: &str) -> Result<Vec<u8>> {
    let path = dir().join(name);
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

fn read_json(name: &str) -> Result<Json> {
    serde_json::from_slice(&read(name)?).with_context(|| format!("{name} is not JSON"))
}

fn cases() -> Result<Vec<Case>> {
    let cases: Vec<Case> = serde_json::from_value(read_json("cases.json")?)?;
    ensure!(!cases.is_empty(), "cases.json lists no case");
    Ok(cases)
}

struct Profile {
    layouts: Layouts,
    final_state: String,
}

fn profile() -> Result<Profile> {
    let profiles = bank_profiles::builtin()?;
    let p = profiles
        .get(BANK)
        .with_context(|| format!("no builtin profile {BANK}"))?;
    let fw = p
        .fixed_width
        .as_ref()
        .context("bank A has no fixed_width table")?;
    let layouts = fw.messages().map_err(anyhow::Error::msg)?;
    let final_state = fw
        .value("state", "final")
        .context("no state.final")?
        .to_owned();
    Ok(Profile {
        layouts,
        final_state,
    })
}

/// The body of a frame, after checking its 8-digit header.
fn body_of(case: &str, frame: &[u8]) -> Result<Vec<u8>> {
    ensure!(
        frame.len() >= HEADER_LEN,
        "{case}: frame shorter than its header"
    );
    let (header, body) = frame.split_at(HEADER_LEN);
    ensure!(
        header.iter().all(u8::is_ascii_digit),
        "{case}: header is not 8 ASCII digits"
    );
    let announced: usize = std::str::from_utf8(header)?.parse()?;
    ensure!(
        announced == body.len(),
        "{case}: header says {announced}, body has {}",
        body.len()
    );
    Ok(body.to_vec())
}

/// Decodes `body` with the case's decoder: the message as JSON, and its encoding again.
fn decode_and_reencode(p: &Profile, decoder: &str, body: &[u8]) -> Result<(Json, Vec<u8>)> {
    let l = &p.layouts;
    Ok(match decoder {
        "request" => {
            let r = l.decode_request(body)?;
            (serde_json::to_value(&r)?, encode_request(l, &r)?)
        }
        "submit_reply" => {
            let r = l.decode_submit_reply(body)?;
            (serde_json::to_value(&r)?, l.encode_submit_reply(&r)?)
        }
        "query_reply" => {
            let r = l.decode_query_reply(body, &p.final_state)?;
            (serde_json::to_value(&r)?, l.encode_query_reply(&r)?)
        }
        "echo" => {
            let code = l.decode_echo(body)?;
            (serde_json::to_value(&code)?, l.encode_echo(&code)?)
        }
        other => bail!("unknown decoder `{other}` in cases.json"),
    })
}

fn encode_request(l: &Layouts, r: &Request) -> Result<Vec<u8>> {
    Ok(match r {
        Request::Submit(s) => l.encode_submit(s)?,
        Request::Query(q) => l.encode_query(q)?,
        Request::Echo(code) => l.encode_echo(code)?,
    })
}

/// Encodes a message given as JSON (a `.json` or `.input.json`) with the case's encoder.
fn encode_json(p: &Profile, decoder: &str, json: Json) -> Result<Vec<u8>> {
    let l = &p.layouts;
    Ok(match decoder {
        "request" => encode_request(l, &serde_json::from_value::<Request>(json)?)?,
        "submit_reply" => l.encode_submit_reply(&serde_json::from_value::<SubmitReply>(json)?)?,
        "query_reply" => l.encode_query_reply(&serde_json::from_value::<QueryReply>(json)?)?,
        "echo" => l.encode_echo(&serde_json::from_value::<String>(json)?)?,
        other => bail!("unknown decoder `{other}` in cases.json"),
    })
}

/// Where two byte strings first differ, for a readable failure.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> Result<()> {
    if let Some(at) = first_difference(got, want) {
        let unit = 202;
        bail!(
            "{what}: bytes differ at body offset {at} (record {}, byte {} of it); got {} bytes, want {}",
            at / unit,
            at % unit,
            got.len(),
            want.len()
        );
    }
    Ok(())
}

/// One golden case: decode, compare, re-encode; encode the `.json` and the `.input.json`.
fn check_case(p: &Profile, c: &Case) -> Result<()> {
    let ctx = || format!("case {} ({})", c.case, c.about);
    let body = body_of(&c.case, &read(&format!("{}.bin", c.case))?)?;
    let want = read_json(&format!("{}.json", c.case))?;

    let (got, again) = decode_and_reencode(p, &c.decoder, &body).with_context(ctx)?;
    ensure!(
        got == want,
        "{}: decoded\n{}\nexpected\n{}",
        ctx(),
        serde_json::to_string_pretty(&got)?,
        serde_json::to_string_pretty(&want)?
    );
    same_bytes(&format!("{}: re-encoded", c.case), &again, &body)?;

    // The expected message itself (not only what we decoded) encodes to the frame.
    let from_json = encode_json(p, &c.decoder, want).with_context(ctx)?;
    same_bytes(&format!("{}: .json encoded", c.case), &from_json, &body)?;

    let input = dir().join(format!("{}.input.json", c.case));
    ensure!(
        c.input == input.exists(),
        "{}: cases.json says input = {}, the file disagrees",
        c.case,
        c.input
    );
    if c.input {
        let given = read_json(&format!("{}.input.json", c.case))?;
        let bytes = encode_json(p, &c.decoder, given).with_context(ctx)?;
        same_bytes(&format!("{}: .input.json encoded", c.case), &bytes, &body)?;
    }
    Ok(())
}

#[test]
fn every_golden_frame_decodes_and_reencodes_byte_for_byte() -> Result<()> {
    let p = profile()?;
    // Every case is checked and every failure reported, not only the first.
    let failures: Vec<String> = cases()?
        .iter()
        .filter_map(|c| check_case(&p, c).err().map(|e| format!("{e:#}")))
        .collect();
    ensure!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}

#[test]
fn every_fixture_file_belongs_to_a_case() -> Result<()> {
    let cases = cases()?;
    let known = |name: &str| {
        cases.iter().any(|c| {
            name == format!("{}.bin", c.case)
                || name == format!("{}.json", c.case)
                || (c.input && name == format!("{}.input.json", c.case))
        })
    };
    let fixed = ["cases.json", "make_fixtures.py", "README.md"];
    for entry in std::fs::read_dir(dir())? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "__pycache__" {
            continue;
        }
        ensure!(
            fixed.contains(&name.as_str()) || known(&name),
            "{name} is not part of any case in cases.json"
        );
    }
    Ok(())
}

#[test]
fn golden_cases_cover_every_message_of_the_spec() -> Result<()> {
    let cases = cases()?;
    let p = profile()?;
    let mut seen = Vec::new();
    for c in &cases {
        let body = body_of(&c.case, &read(&format!("{}.bin", c.case))?)?;
        let (json, _) = decode_and_reencode(&p, &c.decoder, &body)?;
        let what = match c.decoder.as_str() {
            "request" => format!("request {}", json["kind"].as_str().unwrap_or("?")),
            "submit_reply" => format!("submit reply {}", json["ret_code"].as_str().unwrap_or("?")),
            "query_reply" => format!(
                "query reply {} {}",
                json["header"]["ret_code"].as_str().unwrap_or("?"),
                json["header"]["state"].as_str().unwrap_or("?")
            ),
            _ => format!("echo {}", json.as_str().unwrap_or("?")),
        };
        seen.push(what);
    }
    for want in [
        "request submit",
        "request query",
        "request echo",
        "submit reply 0000",
        "submit reply 1003",
        "submit reply 9999",
        "query reply 0000 P",
        "query reply 0000 F",
        "query reply 2001 ",
        "echo 9002",
    ] {
        ensure!(
            seen.iter().any(|s| s == want),
            "no golden case for {want:?}; have {seen:?}"
        );
    }
    Ok(())
}

#[test]
fn frames_split_across_reads_come_out_whole() -> Result<()> {
    let cases = cases()?;
    let mut wire = Vec::new();
    let mut bodies = Vec::new();
    for c in &cases {
        let frame = read(&format!("{}.bin", c.case))?;
        bodies.push(body_of(&c.case, &frame)?);
        wire.extend_from_slice(&frame);
    }
    for chunk in 1..=37 {
        let mut codec = AsciiLenCodec::new(HEADER_LEN, 16 * 1024 * 1024);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(frame) = codec.decode(&mut buf)? {
                frames.push(frame.to_vec());
            }
        }
        ensure!(
            codec.decode_eof(&mut buf)?.is_none(),
            "chunk {chunk}: a frame left at end of stream"
        );
        ensure!(
            buf.is_empty(),
            "chunk {chunk}: {} bytes left over",
            buf.len()
        );
        ensure!(
            frames.len() == bodies.len(),
            "chunk {chunk}: {} frames, want {}",
            frames.len(),
            bodies.len()
        );
        for (i, (got, want)) in frames.iter().zip(&bodies).enumerate() {
            same_bytes(
                &format!("chunk {chunk}, frame {i} ({})", cases[i].case),
                got,
                want,
            )?;
        }
    }
    Ok(())
}
