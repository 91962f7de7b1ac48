//! The operator's controls over who may write and what is served (PROTOCOL 8, issue 17):
//! the whole-SU read-only mode, the IP allow-list and the per-IP rate limit (called by the
//! preamble), the process allow-list (preamble for reads, admit for writes) and the
//! per-owner rate limit (admit, once the signature is verified). Each is off unless set.

mod rate_limit;

use super::Body;
use super::error::ApiError;
use crate::ans104::b64;
use crate::config::{ControlsConfig, ReadOnlyConfig};
use crate::domain::Id;
use crate::upstream::AllowLists;
use crate::upstream::allowlist::{IpAllowList, IpVerdict, ProcessAllowList};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use rate_limit::RateLimiter;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The header the IP allow-list and the per-IP rate limit read (set by the reverse proxy).
const CLIENT_IP_HEADER: &str = "x-real-ip";

/// The address of the connection a request came on; `http::serve` puts it in the
/// request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// What the controls hold while the server runs; `Controls::default()` is all off.
#[derive(Default)]
pub struct Controls {
    read_only: Option<ReadOnlyConfig>,
    ip_allow_list: Option<Arc<IpAllowList>>,
    process_allow_list: Option<Arc<ProcessAllowList>>,
    ip_rate: Option<Mutex<RateLimiter<IpAddr>>>,
    owner_rate: Option<Mutex<RateLimiter<Id>>>,
}

impl Controls {
    /// The controls `config` turns on, reading the lists the daemon keeps refreshed.
    pub fn new(config: &ControlsConfig, lists: &AllowLists) -> Self {
        Self {
            read_only: config.read_only.clone(),
            ip_allow_list: lists.ip.clone(),
            process_allow_list: lists.process.clone(),
            ip_rate: config
                .ip_rate
                .map(|limit| Mutex::new(RateLimiter::new(limit, config.max_clients))),
            owner_rate: config
                .owner_rate
                .map(|limit| Mutex::new(RateLimiter::new(limit, config.max_clients))),
        }
    }

    /// `SU_READ_ONLY`: a 307 to `SU_WRITE_URL` with the request's path and query, or a 503.
    pub(super) fn read_only_answer<B>(
        &self,
        request: &Request<B>,
    ) -> Option<Result<Response<Body>, ApiError>> {
        let read_only = self.read_only.as_ref()?;
        let Some(write_url) = &read_only.write_url else {
            return Some(Err(ApiError::WritesDisabled));
        };
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str());
        let Ok(location) = HeaderValue::from_str(&format!("{write_url}{path}")) else {
            return Some(Err(ApiError::WritesDisabled));
        };
        let mut response = Response::new(Body::full(Bytes::new()));
        *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        response.headers_mut().insert(header::LOCATION, location);
        Some(Ok(response))
    }

    /// The IP allow-list (PROTOCOL 8.1), then the per-IP rate limit, for one write.
    pub(super) fn admit_client<B>(&self, request: &Request<B>) -> Result<(), ApiError> {
        let header = request
            .headers()
            .get(CLIENT_IP_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::trim);
        if let Some(list) = &self.ip_allow_list {
            let ip = header.ok_or(ApiError::NoClientIp)?;
            match list.check(ip) {
                IpVerdict::Allowed => {}
                IpVerdict::NotListed => return Err(ApiError::IpNotAllowed),
                IpVerdict::NotLoaded => {
                    return Err(ApiError::Unavailable(
                        "the IP allow-list has not been fetched yet; writes wait for it",
                    ));
                }
            }
        }
        if let Some(limiter) = &self.ip_rate {
            // The proxy's `X-Real-IP`, else the connection's own address.
            let client = header
                .and_then(|text| text.parse::<IpAddr>().ok())
                .or_else(|| {
                    request
                        .extensions()
                        .get::<PeerAddr>()
                        .map(|peer| peer.0.ip())
                });
            if let Some(client) = client {
                take(limiter, client, "client IP")?;
            }
        }
        Ok(())
    }

    /// Reads of a process the process allow-list does not give this SU answer 403.
    pub(super) fn check_process_read(&self, process: &str) -> Result<(), ApiError> {
        match &self.process_allow_list {
            Some(list)
                if b64::decode_id(process)
                    .and_then(|id| list.access(&id))
                    .is_none() =>
            {
                Err(ApiError::ProcessNotAllowed(process.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Whether reads of `process` are refused; for the handler that learns from the store
    /// that a path names a process.
    pub(super) fn refuses_read(&self, process: &Id) -> bool {
        self.process_allow_list
            .as_ref()
            .is_some_and(|list| list.access(process).is_none())
    }

    /// `check_process_write_text` for the process an item names.
    pub(crate) fn check_process_write(&self, process: &Id) -> Result<(), ApiError> {
        match self.process_allow_list {
            Some(_) => self.check_process_write_text(&b64::encode(process)),
            None => Ok(()),
        }
    }

    /// Writes to a process that is not allowed, or is read-only, answer 400 (PROTOCOL 4.1
    /// step 3); `process` is the text the client sent (an assignment's `process-id`).
    pub(crate) fn check_process_write_text(&self, process: &str) -> Result<(), ApiError> {
        let Some(list) = &self.process_allow_list else {
            return Ok(());
        };
        match b64::decode_id(process).and_then(|id| list.access(&id)) {
            None => Err(ApiError::BadRequest(format!(
                "Process {process} is not allowed on this SU"
            ))),
            Some(access) if access.read_only => Err(ApiError::BadRequest(format!(
                "Process {process} is read_only on this SU"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// No new processes while a process allow-list decides what this SU serves (4.3).
    pub(crate) fn check_spawn(&self) -> Result<(), ApiError> {
        match self.process_allow_list {
            Some(_) => Err(ApiError::BadRequest(
                "Process spawning is not supported".into(),
            )),
            None => Ok(()),
        }
    }

    /// The per-owner rate limit; `owner_address` is the verified signer's address.
    pub(crate) fn admit_owner(&self, owner_address: &str) -> Result<(), ApiError> {
        let (Some(limiter), Some(owner)) = (&self.owner_rate, b64::decode_id(owner_address)) else {
            return Ok(());
        };
        take(limiter, owner, "signer")
    }
}

fn take<K: std::hash::Hash + Eq>(
    limiter: &Mutex<RateLimiter<K>>,
    client: K,
    who: &'static str,
) -> Result<(), ApiError> {
    let mut limiter = limiter
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    limiter
        .take(client, Instant::now())
        .map_err(|wait| ApiError::RateLimited {
            who,
            retry_after_secs: rate_limit::retry_after_secs(wait),
        })
}
