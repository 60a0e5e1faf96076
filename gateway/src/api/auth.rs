//! Bearer tokens and roles. Tokens are kept as SHA-256 digests and compared in constant time.
//!
//! Each configured token has its own rate limit, a token bucket: it holds up to `burst` requests and
//! refills at `per_second`; a request takes one, and a caller whose bucket is empty gets 429
//! `E-RATE-LIMITED` with `Retry-After` (docs/spec-readings.md). The buckets are counted per token, so
//! one caller's flood does not slow another; requests without a known token are not counted (they
//! cost one SHA-256 and get 401), so health checks and metrics scrapes are never limited.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};
use crate::config::{Role, Token};

/// The code of a 429 answer (an addition to the codes of rules.md, see docs/spec-readings.md).
pub const RATE_LIMITED: &str = "E-RATE-LIMITED";

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    /// Requests left (fractions refill over time).
    level: f64,
    /// When `level` was computed.
    at: Instant,
}

/// The rate limit of every token.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Refill, requests per second.
    pub per_second: u32,
    /// Bucket size.
    pub burst: u32,
}

impl RateLimit {
    /// From `[server]` (`None` when `rate_limit_per_second` is 0).
    pub fn from_config(server: &crate::config::Server) -> Option<Self> {
        (server.rate_limit_per_second > 0).then_some(Self {
            per_second: server.rate_limit_per_second,
            burst: server.rate_limit_burst.max(1),
        })
    }
}

/// The configured tokens, as digests, with their buckets.
#[derive(Debug, Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], Role, String)>,
    limit: Option<RateLimit>,
    buckets: Vec<Mutex<Bucket>>,
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
        Self {
            entries,
            limit: None,
            buckets: Vec::new(),
        }
    }

    /// The same tokens, each limited to `limit` (none: unlimited).
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        let now = Instant::now();
        self.buckets = self
            .entries
            .iter()
            .map(|_| {
                Mutex::new(Bucket {
                    level: f64::from(limit.map_or(0, |l| l.burst)),
                    at: now,
                })
            })
            .collect();
        self.limit = limit;
        self
    }

    /// The index of the entry a presented token matches.
    fn find(&self, presented: &str) -> Option<usize> {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        // Compare with every entry so the time taken does not tell which one matched.
        for (i, (digest, _, _)) in self.entries.iter().enumerate() {
            if bool::from(digest.ct_eq(&d)) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    fn caller(&self, i: usize) -> Option<Caller> {
        self.entries.get(i).map(|(_, role, name)| Caller {
            role: *role,
            actor: name.clone(),
        })
    }

    /// The caller a presented token belongs to.
    pub fn check(&self, presented: &str) -> Option<Caller> {
        self.find(presented).and_then(|i| self.caller(i))
    }

    /// Takes one request from entry `i`'s bucket; when it is empty, how long until one is there.
    fn take(&self, i: usize, now: Instant) -> Result<(), Duration> {
        let (Some(limit), Some(bucket)) = (self.limit, self.buckets.get(i)) else {
            return Ok(());
        };
        let mut b = bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rate = f64::from(limit.per_second);
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.level = (b.level + elapsed * rate).min(f64::from(limit.burst));
        b.at = now;
        if b.level >= 1.0 {
            b.level -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.level) / rate))
        }
    }
}

/// The bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    h.strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Middleware: identifies the caller once (the [`Caller`] extractor takes it from the request) and
/// charges its bucket; 429 when the bucket is empty. Requests without a known token go on unchanged
/// (the handlers refuse those that need one).
pub async fn rate_limit(State(st): State<ApiState>, mut req: Request, next: Next) -> Response {
    let found = bearer(req.headers()).and_then(|t| st.tokens.find(t));
    if let Some(i) = found {
        if let Err(wait) = st.tokens.take(i, Instant::now()) {
            // Counted in gateway_errors_total{code="E-RATE-LIMITED"} like every error answer.
            tracing::debug!(actor = %st.tokens.caller(i).map(|c| c.actor).unwrap_or_default(), "rate limited");
            return too_many(&st.tokens, wait);
        }
        if let Some(caller) = st.tokens.caller(i) {
            req.extensions_mut().insert(caller);
        }
    }
    next.run(req).await
}

/// The 429 answer: the API's error body and `Retry-After` in whole seconds (at least 1).
fn too_many(tokens: &Tokens, wait: Duration) -> Response {
    let limit = tokens.limit.map_or((0, 0), |l| (l.per_second, l.burst));
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        RATE_LIMITED,
        format!(
            "too many requests with this token: at most {} per second (bursts of {}); retry after {secs} s",
            limit.0, limit.1
        ),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
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
        // Already identified (and charged) by the rate-limit middleware.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "E-AUTH", "missing bearer token")
        })?;
        state
            .tokens
            .check(token)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "E-AUTH", "invalid token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(per_second: u32, burst: u32) -> Tokens {
        let t = |tok: &str| Token {
            token: Some(tok.into()),
            token_sha256: None,
            role: Role::Submitter,
            name: None,
        };
        Tokens::from_config(&[t("token-one-1"), t("token-two-2")])
            .with_rate_limit(Some(RateLimit { per_second, burst }))
    }

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_the_rate() {
        let t = tokens(10, 3);
        let i = t.find("token-one-1").expect("known");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.take(i, t0), Ok(()));
        }
        let wait = t.take(i, t0).expect_err("empty");
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // 100 ms later one request is back, not two.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(t.take(i, t1), Ok(()));
        assert!(t.take(i, t1).is_err());
        // A long pause refills to the burst, no more.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(t.take(i, t2), Ok(()));
        }
        assert!(t.take(i, t2).is_err());
    }

    #[test]
    fn tokens_have_their_own_buckets() {
        let t = tokens(1, 1);
        let (a, b) = (
            t.find("token-one-1").expect("a"),
            t.find("token-two-2").expect("b"),
        );
        let now = Instant::now();
        assert_eq!(t.take(a, now), Ok(()));
        assert!(t.take(a, now).is_err());
        assert_eq!(t.take(b, now), Ok(()));
        assert!(t.find("token-three").is_none());
    }

    #[test]
    fn no_limit_means_no_limit() {
        let t = Tokens::from_config(&[]).with_rate_limit(None);
        assert_eq!(t.take(0, Instant::now()), Ok(()));
    }

    #[test]
    fn the_429_answer_has_the_error_shape_and_retry_after() {
        let t = tokens(2, 5);
        let resp = too_many(&t, Duration::from_millis(1_200));
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            resp.headers()
                .get(axum::http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("2")
        );
    }
}
