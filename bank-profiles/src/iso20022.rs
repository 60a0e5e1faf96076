//! The ISO 20022 family's table (bank B): which documents, where to send them, how the bank is named in
//! them. The documents themselves are `codecs::format::iso20022` (pain.001 writer, pain.002 reader);
//! the element mapping is the one of bank B's interface spec and lives in that codec, so another bank of
//! the family is a profile as long as it takes the same message versions.
//!
//! ```text
//! POST {submit_path}                         body: pain.001.001.09  -> 202/200/400/413/503 + pain.002
//! GET  {status_path} (msg_id, query_id)      -> 200 + pain.002 (GrpSts PDNG | ACCC | PART | RJCT) / 404
//! ```
use serde::{Deserialize, Serialize};

use crate::schema::{Framing, Invalid, Profile, TransportKind, bad};

/// The initiation message this build writes.
pub const INITIATION: &str = "pain.001.001.09";
/// The status report this build reads.
pub const STATUS_REPORT: &str = "pain.002.001.10";
/// Placeholders a status path may hold.
pub const STATUS_PATH_PLACEHOLDERS: &[&str] = &["{msg_id}", "{query_id}"];

/// The ISO 20022 family's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iso20022 {
    /// Message definition of a submit body (`pain.001.001.09`).
    pub initiation: String,
    /// Message definition of the bank's answers (`pain.002.001.10`).
    pub status_report: String,
    /// Path of the submit `POST`.
    pub submit_path: String,
    /// Path of the status `GET`: `{msg_id}` (required) and `{query_id}` are filled in.
    pub status_path: String,
    /// `PmtInf/DbtrAgt/FinInstnId/ClrSysMmbId/MmbId`: the payout bank's clearing member id (12 digits).
    pub clearing_member_id: String,
    /// `Content-Type` of the bodies sent.
    pub content_type: String,
}

impl Iso20022 {
    /// The status path of `msg_id` and `query_id` (both already URL-safe: bank references are letters,
    /// digits and `-`).
    pub fn status_path_for(&self, msg_id: &str, query_id: &str) -> String {
        self.status_path
            .replace("{msg_id}", msg_id)
            .replace("{query_id}", query_id)
    }

    pub(crate) fn validate(&self, p: &Profile) -> Result<(), Invalid> {
        if self.initiation != INITIATION {
            return bad(
                "iso20022.initiation",
                format!(
                    "`{}`: this build writes {INITIATION} only (another version is a new codec, see docs/adding-a-bank.md)",
                    self.initiation
                ),
            );
        }
        if self.status_report != STATUS_REPORT {
            return bad(
                "iso20022.status_report",
                format!(
                    "`{}`: this build reads {STATUS_REPORT} only (another version is a new codec, see docs/adding-a-bank.md)",
                    self.status_report
                ),
            );
        }
        check_path("iso20022.submit_path", &self.submit_path, &[])?;
        check_path(
            "iso20022.status_path",
            &self.status_path,
            STATUS_PATH_PLACEHOLDERS,
        )?;
        if !self.status_path.contains("{msg_id}") {
            return bad("iso20022.status_path", "has no `{msg_id}`");
        }
        if self.clearing_member_id.len() != 12
            || !self.clearing_member_id.bytes().all(|b| b.is_ascii_digit())
        {
            return bad("iso20022.clearing_member_id", "is not 12 digits");
        }
        if self.content_type.trim().is_empty() {
            return bad("iso20022.content_type", "empty");
        }
        if p.transport.kind != TransportKind::Https {
            return bad(
                "transport.kind",
                "the iso20022 family is spoken over `https` (mutual TLS)",
            );
        }
        match p.transport.framing {
            Framing::Http { max_body } if max_body > codecs::format::iso20022::MAX_BODY_BYTES => {
                return bad(
                    "transport.framing.max_body",
                    format!(
                        "the pain.002 reader refuses bodies over {} bytes",
                        codecs::format::iso20022::MAX_BODY_BYTES
                    ),
                );
            }
            Framing::Http { .. } => {}
            Framing::AsciiLength { .. } | Framing::U16Length { .. } => {
                return bad(
                    "transport.framing",
                    "the iso20022 family needs `method = \"http\"`",
                );
            }
        }
        if p.limits.max_in_flight != 1 {
            return bad(
                "limits.max_in_flight",
                "HTTP/1.1 carries one request at a time on a connection: set 1, and the requests at once as transport.max_connections",
            );
        }
        if u64::from(p.limits.items_per_part) > codecs::format::iso20022::pain001::MAX_NB_OF_TXS {
            return bad("limits.items_per_part", "more than NbOfTxs can carry");
        }
        self.validate_codes(p)
    }

    fn validate_codes(&self, p: &Profile) -> Result<(), Invalid> {
        let c = &p.codes;
        for code in c.submit.keys().chain(c.query.keys()) {
            if !is_http_status(code) {
                return bad(
                    format!(
                        "codes.{}",
                        if c.submit.contains_key(code) {
                            "submit"
                        } else {
                            "query"
                        }
                    ),
                    format!(
                        "`{code}` is not an HTTP status (the iso20022 family maps HTTP answers)"
                    ),
                );
            }
        }
        if c.status.is_empty() {
            return bad(
                "codes.status",
                "the iso20022 family maps the GrpSts codes here",
            );
        }
        for code in c.status.keys().chain(c.item.keys()) {
            if !is_iso_code(code) {
                return bad(
                    format!(
                        "codes.{}",
                        if c.status.contains_key(code) {
                            "status"
                        } else {
                            "item"
                        }
                    ),
                    format!("`{code}` is not an ISO 20022 code (1 to 4 capital letters or digits)"),
                );
            }
        }
        if !c.session.is_empty() {
            return bad("codes.session", "not used by the iso20022 family");
        }
        Ok(())
    }
}

fn is_http_status(code: &str) -> bool {
    code.len() == 3
        && code.bytes().all(|b| b.is_ascii_digit())
        && matches!(code.as_bytes()[0], b'1'..=b'5')
}

fn is_iso_code(code: &str) -> bool {
    (1..=4).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// An absolute path of printable ASCII without spaces, whose `{...}` are all in `allowed`.
fn check_path(key: &str, path: &str, allowed: &[&str]) -> Result<(), Invalid> {
    if !path.starts_with('/') {
        return bad(key, "must start with `/`");
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return bad(
            key,
            format!("holds {c:?}: printable ASCII without spaces only"),
        );
    }
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            return bad(key, "a `{` is not closed");
        };
        let placeholder = &rest[open..open + len + 1];
        if !allowed.contains(&placeholder) {
            return bad(
                key,
                format!(
                    "unknown placeholder `{placeholder}` (allowed: {})",
                    if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            );
        }
        rest = &rest[open + len + 1..];
    }
    if rest.contains('}') {
        return bad(key, "a `}` without its `{`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        let ok = |p: &str| check_path("k", p, STATUS_PATH_PLACEHOLDERS);
        assert!(ok("/cbp/v1/payments/{msg_id}/status?query_id={query_id}").is_ok());
        assert!(ok("cbp").is_err());
        assert!(ok("/a b").is_err());
        assert!(ok("/{id}").is_err());
        assert!(ok("/{msg_id").is_err());
        assert!(ok("/msg_id}").is_err());
        assert!(check_path("k", "/{msg_id}", &[]).is_err());
    }

    #[test]
    fn codes_are_recognised() {
        assert!(is_http_status("202") && is_http_status("503"));
        assert!(!is_http_status("600") && !is_http_status("20") && !is_http_status("2x2"));
        assert!(is_iso_code("AC01") && is_iso_code("ACCC"));
        assert!(!is_iso_code("ac01") && !is_iso_code("ACCCC") && !is_iso_code(""));
    }

    #[test]
    fn versions_match_the_codec() {
        assert!(codecs::format::iso20022::PAIN002_NS.ends_with(STATUS_REPORT));
        assert_eq!(codecs::format::iso20022::PAIN001_NAME, INITIATION);
    }
}
