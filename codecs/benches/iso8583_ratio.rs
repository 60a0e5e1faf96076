//! Our ISO 8583 codec side by side with pyiso8583 (PyPI) on the same messages, in one run (issue 9:
//! encode + decode at least 100x pyiso8583's throughput, without the MAC, which pyiso8583 does not do;
//! the MAC is measured apart in `benches/codecs.rs`, group `mac`).
//!
//! ```text
//! cargo bench -p gw-codecs --bench iso8583_ratio                          # 5 rounds of 2 s per side
//! cargo bench -p gw-codecs --bench iso8583_ratio -- --rounds 9 --seconds 3
//! ```
//! The messages: 1,000 distinct bank C payouts (`0200`, `MessageSpec::bank_c()`, GBK names in F48,
//! F128 as 8 fixed bytes). They are handed to `tools/bench/pyiso8583_peer.py` as pyiso8583 dicts, and
//! before any timing the peer's encoding of every message must equal ours byte for byte: both sides do
//! the same work. Each round times ours, then pyiso8583 (a fresh process; its start-up is not timed),
//! for `encode`, `decode` and `encode_decode`; a side's figure is the median of its rounds, and the
//! rounds interleave so that a burst of load on this shared machine hits both sides alike. Each side
//! is also timed by its own on-CPU time (this thread's `/proc/thread-self/schedstat`, Python's
//! `time.thread_time()`), which leaves out the time spent waiting for a core; the load average is
//! printed before and after.
//!
//! Not a criterion benchmark: criterion cannot time another process, and the ratio needs both figures
//! in one program. Under `cargo test --all-targets` (no `--bench` argument) it runs one short round,
//! as a smoke test that the peer still agrees with us. Needs `python3` with pyiso8583 (`GW_PYTHON`
//! names another interpreter), like the interop test: missing either is a failure.
mod common;

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use codecs::format::iso8583::{
    self, Enc, FieldKind, FieldValue, Message, MessageSpec, MessageView,
};
use serde_json::{Map, Value, json};

const PEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tools/bench/pyiso8583_peer.py"
);
const NAME: &str = "iso8583/ratio_pyiso8583";
const MODES: [&str; 3] = ["encode", "decode", "encode_decode"];
/// Our rows: each mode, and our owned decode (`iso8583::decode`) beside pyiso8583's same mode.
const ROWS: [(&str, &str); 5] = [
    ("encode", "encode"),
    ("decode", "decode"),
    ("decode_owned", "decode"),
    ("encode_decode", "encode_decode"),
    ("encode_decode_owned", "encode_decode"),
];
/// Issue 9's target for `encode_decode`.
const TARGET_RATIO: f64 = 100.0;

struct Options {
    rounds: usize,
    seconds: f64,
    bench: bool,
}

fn options() -> Option<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<f64>()
                    .unwrap_or_else(|_| panic!("{name} takes a number, got `{v}`"))
            })
    };
    // Positional arguments are criterion-style filters (`cargo bench -p gw-codecs -- smpp` must not
    // start this one).
    let mut filters = Vec::new();
    let mut skip_next = false;
    for a in &args {
        if skip_next {
            skip_next = false;
        } else if a == "--rounds" || a == "--seconds" {
            skip_next = true;
        } else if !a.starts_with('-') {
            filters.push(a.as_str());
        }
    }
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f)) {
        return None;
    }
    Some(if bench {
        Options {
            rounds: value("--rounds").map_or(5, |r| r.max(1.0) as usize),
            seconds: value("--seconds").unwrap_or(2.0),
            bench,
        }
    } else {
        Options {
            rounds: 1,
            seconds: 0.05,
            bench,
        }
    })
}

fn python() -> String {
    std::env::var("GW_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Our message as pyiso8583's dict: fixed fields padded as on the wire (pyiso8583 never pads), binary
/// as upper-case hex (as `codecs/tests/iso8583_interop.rs` does).
fn to_py(spec: &MessageSpec, m: &Message) -> Value {
    let mut d = Map::new();
    d.insert("t".into(), json!(m.mti));
    for (n, v) in &m.fields {
        let f = spec.field(*n).expect("field in the table");
        let v = match (v, f.kind, f.encoding) {
            (FieldValue::Bytes(b), _, _) => hex(b),
            (FieldValue::Text(t), FieldKind::Fixed { len }, Enc::Numeric) => format!("{t:0>len$}"),
            (FieldValue::Text(t), FieldKind::Fixed { len }, Enc::Gbk) => {
                let width = codecs::field::gbk::encoded_len(t).expect("gbk");
                format!("{t}{}", " ".repeat(len - width))
            }
            (FieldValue::Text(t), FieldKind::Fixed { len }, _) => format!("{t:<len$}"),
            (FieldValue::Text(t), _, _) => t.clone(),
        };
        d.insert(n.to_string(), json!(v));
    }
    Value::Object(d)
}

/// Runs the peer with `args`, the messages on stdin; its stdout.
fn peer(args: &[&str], input: &[u8]) -> String {
    let py = python();
    let mut child = Command::new(&py)
        .arg(PEER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{py}` ({e}): needs Python 3 with pyiso8583"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // From a thread: a peer that answers while still reading cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("peer output");
    let written = writer.join().expect("writer thread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`{py} {PEER} {}` failed ({}): {stderr}",
        args.join(" "),
        out.status
    );
    written.expect("write to the peer");
    String::from_utf8(out.stdout).expect("peer output is UTF-8")
}

/// Every field of a decoded view read out as its value (text as `&str`, GBK decoded when not ASCII,
/// binary as bytes): what pyiso8583's `decode` hands back, a value per field.
fn read_all(view: &MessageView<'_>) -> usize {
    let mut n = 0;
    for f in view.numbers() {
        match view.text(f) {
            Some(t) => n += black_box(t).len(),
            None => n += black_box(view.bytes(f)).map_or(0, <[u8]>::len),
        }
    }
    n
}

/// Our messages per second in `mode`, by the wall clock and by this thread's on-CPU time: whole passes
/// over the list until `seconds` have gone by. `decode` is [`iso8583::decode_view`] with every value
/// read out; `decode_owned` is [`iso8583::decode`] (a `Message` owning a copy of every value).
fn ours(
    mode: &str,
    spec: &MessageSpec,
    msgs: &[Message],
    frames: &[Vec<u8>],
    seconds: f64,
) -> Rates {
    let mut passes = 0usize;
    let cpu_start = common::thread_cpu_ns();
    let start = Instant::now();
    loop {
        match mode {
            "encode" => {
                for m in msgs {
                    black_box(iso8583::encode(spec, black_box(m)).expect("encode"));
                }
            }
            "decode" => {
                for f in frames {
                    let view = iso8583::decode_view(spec, black_box(f)).expect("decode");
                    black_box(read_all(&view));
                }
            }
            "decode_owned" => {
                for f in frames {
                    black_box(iso8583::decode(spec, black_box(f)).expect("decode"));
                }
            }
            "encode_decode" => {
                for m in msgs {
                    let f = iso8583::encode(spec, black_box(m)).expect("encode");
                    let view = iso8583::decode_view(spec, &f).expect("decode");
                    black_box(read_all(&view));
                }
            }
            "encode_decode_owned" => {
                for m in msgs {
                    let f = iso8583::encode(spec, black_box(m)).expect("encode");
                    black_box(iso8583::decode(spec, &f).expect("decode"));
                }
            }
            other => panic!("unknown mode {other}"),
        }
        passes += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds {
            let cpu = (common::thread_cpu_ns() - cpu_start) as f64 / 1e9;
            let n = (passes * msgs.len()) as f64;
            return Rates {
                wall: n / elapsed,
                cpu: n / cpu,
            };
        }
    }
}

/// Messages per second of one timed run.
#[derive(Debug, Clone, Copy)]
struct Rates {
    /// By the wall clock.
    wall: f64,
    /// By the on-CPU time of the thread that did the work (waiting for a core left out).
    cpu: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let Some(opt) = options() else { return };
    let spec = MessageSpec::bank_c();
    let msgs = common::payouts(common::BATCH);
    let frames: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| iso8583::encode(&spec, m).expect("encode"))
        .collect();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    // Both of our decoders give back the messages encoded.
    for (m, f) in msgs.iter().zip(&frames) {
        let view = iso8583::decode_view(&spec, f).expect("decode_view");
        assert_eq!(&view.to_message(), m);
        assert_eq!(&iso8583::decode(&spec, f).expect("decode"), m);
    }
    let docs = Value::Array(msgs.iter().map(|m| to_py(&spec, m)).collect());
    let input = serde_json::to_vec(&docs).expect("json");

    // The same work on both sides: pyiso8583 writes exactly our bytes for every message.
    let theirs: Vec<String> = peer(&["check"], &input)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        theirs.len(),
        frames.len(),
        "pyiso8583 encoded every message"
    );
    for (i, (t, f)) in theirs.iter().zip(&frames).enumerate() {
        assert_eq!(
            t,
            &hex(f),
            "message {i}: pyiso8583 and we write different bytes"
        );
    }

    println!(
        "{NAME}: {} bank C payouts (0200), {:.1} bytes each on average, F128 as 8 fixed bytes (no MAC)",
        msgs.len(),
        bytes as f64 / msgs.len() as f64
    );
    println!(
        "rounds {} x {} s per side and mode; load average before: {}",
        opt.rounds,
        opt.seconds,
        loadavg()
    );
    let mut our_rates: Vec<Vec<Rates>> = vec![Vec::new(); ROWS.len()];
    let mut their_rates: Vec<Vec<Rates>> = vec![Vec::new(); MODES.len()];
    let mut versions = String::new();
    let seconds = opt.seconds.to_string();
    for _ in 0..opt.rounds {
        for (i, (row, _)) in ROWS.iter().enumerate() {
            our_rates[i].push(ours(row, &spec, &msgs, &frames, opt.seconds));
        }
        for (i, mode) in MODES.iter().enumerate() {
            let line = peer(&[mode, &seconds], &input);
            let v: Value = serde_json::from_str(line.trim()).expect("peer JSON");
            their_rates[i].push(Rates {
                wall: v["msgs_per_s"].as_f64().expect("msgs_per_s"),
                cpu: v["msgs_per_cpu_s"].as_f64().expect("msgs_per_cpu_s"),
            });
            versions = format!(
                "Python {}, pyiso8583 {}",
                v["python"].as_str().unwrap_or("?"),
                v["pyiso8583"].as_str().unwrap_or("?")
            );
        }
    }
    println!("peer: {versions}; load average after: {}", loadavg());
    println!("messages per second, median of the rounds; wall: by the clock, cpu: by on-CPU time");
    println!(
        "{:<20} {:>12} {:>12} {:>12} {:>12} {:>8} {:>8}",
        "mode", "ours wall", "ours cpu", "pyiso wall", "pyiso cpu", "ratio", "(cpu)"
    );
    let mut ratios = (0.0, 0.0);
    for (i, (row, mode)) in ROWS.iter().enumerate() {
        let pick = |rates: &[Rates], f: fn(&Rates) -> f64| {
            median(&mut rates.iter().map(f).collect::<Vec<_>>())
        };
        let (ow, oc) = (
            pick(&our_rates[i], |r| r.wall),
            pick(&our_rates[i], |r| r.cpu),
        );
        let t = MODES.iter().position(|m| m == mode).expect("mode");
        let (tw, tc) = (
            pick(&their_rates[t], |r| r.wall),
            pick(&their_rates[t], |r| r.cpu),
        );
        if *row == "encode_decode" {
            ratios = (ow / tw, oc / tc);
        }
        println!(
            "{row:<20} {ow:>12.0} {oc:>12.0} {tw:>12.0} {tc:>12.0} {:>7.1}x {:>7.1}x",
            ow / tw,
            oc / tc
        );
    }
    if opt.bench {
        let verdict = |r: f64| if r >= TARGET_RATIO { "met" } else { "NOT met" };
        println!(
            "encode+decode ratio {:.1}x by the clock, {:.1}x by CPU time: target >= {TARGET_RATIO}x {}",
            ratios.0,
            ratios.1,
            verdict(ratios.0.min(ratios.1))
        );
    }
}
