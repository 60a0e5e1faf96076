//! Bearer tokens and roles. Tokens are kept as SHA-256 digests and compared in constant time.
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};
use crate::config::{Role, Token};

/// The configured tokens, as digests.
#[derive(Debug, Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], Role, String)>,
}

impl Tokens {
    /// From the config's `[[tokens]]`.
    pub fn from_config(tokens: &[Token]) -> Self {
        let mut entries = Vec::new();
        for t in tokens {
            let digest: Option<[u8; 32]> = match (&t.token, &t.token_sha256) {
                (Some(plain), _) => Some(Sha256::digest(plain.as_bytes()).into()),
                (None, Some(h)) => hex::decode(h).ok().and_then(|v| v.try_into().ok()),
                (None, None) => None,
            };
            if let Some(d) = digest {
                let name = t
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("token:{}", &hex::encode(d)[..8]));
                entries.push((d, t.role, name));
            }
        }
        Self { entries }
    }

    /// The caller a presented token belongs to.
    pub fn check(&self, presented: &str) -> Option<Caller> {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        // Compare with every entry so the time taken does not tell which one matched.
        for (digest, role, name) in &self.entries {
            if bool::from(digest.ct_eq(&d)) && found.is_none() {
                found = Some(Caller {
                    role: *role,
                    actor: name.clone(),
                });
            }
        }
        found
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Role.
    pub role: Role,
    /// Name for the audit log.
    pub actor: String,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "E-AUTH",
                format!("role {} may not do this", self.role.as_str()),
            ))
        }
    }

    /// Whether full personal data may be shown.
    pub fn sees_pii(&self) -> bool {
        self.role == Role::Admin
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "E-AUTH", "missing bearer token")
            })?;
        state
            .tokens
            .check(token)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "E-AUTH", "invalid token"))
    }
}
