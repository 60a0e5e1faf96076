//! Every file of the fuzz corpus (`fuzz/corpus/<target>/`: the seeds cut from the golden fixtures and
//! any input a fuzz run found) through the very functions the fuzz targets run (`fuzz/src/lib.rs` is
//! included here), so that the decoders stay total without libFuzzer and an input that once crashed
//! stays a test. See docs/fuzzing.md.
use std::path::Path;

#[path = "../../fuzz/src/lib.rs"]
mod targets;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("fixed_width_request", targets::fixed_width_request),
    ("fixed_width_replies", targets::fixed_width_replies),
    ("iso8583_decode", targets::iso8583_decode),
    ("iso8583_tlv", targets::iso8583_tlv),
    ("pain002_read", targets::pain002_read),
    ("framing_ascii_len", targets::framing_ascii_len),
    ("framing_u16_len", targets::framing_u16_len),
    ("smpp_frame", targets::smpp_frame),
    ("smpp_receipt", targets::smpp_receipt),
];

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn every_corpus_file_goes_through_its_decoder_without_panicking() {
    let mut total = 0;
    for (name, run) in TARGETS {
        let dir = corpus().join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: no seed in {}", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            // A panic here names the file through the test output's backtrace; say it up front too.
            eprintln!("{name}: {}", f.display());
            run(&data);
            // Truncations and extensions of each input too: cheap, and where decoders slip.
            for cut in [1, 2, 7, data.len() / 2] {
                run(&data[..data.len().saturating_sub(cut)]);
            }
            let mut longer = data.clone();
            longer.extend_from_slice(b"\r\n0");
            run(&longer);
            total += 1;
        }
    }
    assert!(total >= TARGETS.len());
}

#[test]
fn every_corpus_folder_is_a_target() {
    for e in std::fs::read_dir(corpus()).expect("fuzz/corpus") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} belongs to no target"
        );
    }
}
