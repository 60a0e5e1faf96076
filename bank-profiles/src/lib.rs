//! Declarative payout-bank profiles.
//!
//! A bank is data: its profile picks a codec family, the family's layout, framing, transport, limits,
//! timers and the mapping of the bank's codes to our outcomes. Profiles load with validation and
//! readable errors (file, key, problem) and survive load -> serialize -> load unchanged. The profiles
//! of the shortlisted banks are compiled in ([`builtin`]); more can be loaded from a folder.
#![forbid(unsafe_code)]

mod duration;
pub mod iso20022;
pub mod iso8583;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use duration::DurationText;
pub use iso8583::Iso8583;
pub use iso20022::Iso20022;
pub use schema::*;

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The TOML does not match the schema (unknown key, wrong type, missing key).
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// The profile parses but is not usable.
    #[error("{file}: `{key}`: {problem}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted key path.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// Two profiles declare the same bank code.
    #[error("{file}: bank {code} is already declared by {other}")]
    DuplicateCode {
        /// The second file.
        file: PathBuf,
        /// The code.
        code: String,
        /// The first file.
        other: PathBuf,
    },
}

const BUILTIN: &[(&str, &str)] = &[
    (
        "402241000015.toml",
        include_str!("../profiles/402241000015.toml"),
    ),
    (
        "103241000018.toml",
        include_str!("../profiles/103241000018.toml"),
    ),
    (
        "403241000011.toml",
        include_str!("../profiles/403241000011.toml"),
    ),
];

/// Parses and validates one profile from TOML text; `file` is only used in error messages.
pub fn parse(file: &Path, text: &str) -> Result<Profile, ProfileError> {
    let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    profile
        .validate()
        .map_err(|(key, problem)| ProfileError::Invalid {
            file: file.to_owned(),
            key,
            problem,
        })?;
    Ok(profile)
}

/// Serializes a profile back to TOML.
pub fn to_toml(profile: &Profile) -> String {
    // Serializing plain data into TOML cannot fail for this schema (no maps with non-string keys).
    toml::to_string_pretty(profile).unwrap_or_else(|e| format!("# not serializable: {e}\n"))
}

/// The profiles compiled into the gateway (the shortlisted banks of the sample deployment).
pub fn builtin() -> Result<BTreeMap<String, Profile>, ProfileError> {
    let mut out = BTreeMap::new();
    for (name, text) in BUILTIN {
        let p = parse(&Path::new("builtin").join(name), text)?;
        out.insert(p.code.clone(), p);
    }
    Ok(out)
}

/// Loads every `*.toml` of `dir` (sorted by name), refusing two files for one bank code.
pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, Profile>, ProfileError> {
    let io = |source| ProfileError::Io {
        file: dir.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out: BTreeMap<String, (PathBuf, Profile)> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ProfileError::Io {
            file: file.clone(),
            source,
        })?;
        let p = parse(&file, &text)?;
        if let Some((other, _)) = out.get(&p.code) {
            return Err(ProfileError::DuplicateCode {
                file,
                code: p.code.clone(),
                other: other.clone(),
            });
        }
        out.insert(p.code.clone(), (file, p));
    }
    Ok(out.into_iter().map(|(k, (_, p))| (k, p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_load_and_round_trip() {
        let all = builtin().expect("builtin profiles");
        assert!(all.contains_key("402241000015"));
        for p in all.values() {
            let again = parse(Path::new("again"), &to_toml(p)).expect("reload");
            assert_eq!(&again, p);
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let text = format!("{}\nsurprise = 1\n", BUILTIN[0].1);
        let err = parse(Path::new("x.toml"), &text).expect_err("unknown key");
        assert!(err.to_string().contains("surprise"), "{err}");
    }

    #[test]
    fn bad_layout_names_the_key() {
        let text = BUILTIN[0]
            .1
            .replacen("at = 5, width = 20", "at = 6, width = 20", 1);
        let err = parse(Path::new("x.toml"), &text).expect_err("bad layout");
        let msg = err.to_string();
        assert!(
            msg.contains("x.toml") && msg.contains("fixed_width.layouts.submit_header"),
            "{msg}"
        );
    }

    #[test]
    fn missing_required_field_is_refused() {
        let text = BUILTIN[0]
            .1
            .replacen("name = \"account_no\"", "name = \"acct\"", 1);
        let err = parse(Path::new("x.toml"), &text).expect_err("missing field");
        assert!(err.to_string().contains("account_no"), "{err}");
    }
}
