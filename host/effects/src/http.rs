//! The `http` effect's adapter: a real HTTP client (ureq over rustls).
//!
//! The adapter sends the URL the grant was checked against, exactly (the guest's headers were
//! checked too: none that choose the target or frame the request), follows no redirects (a
//! redirect target may lie outside the grant; the guest gets the 3xx response), uses no proxy,
//! and enforces the grant's timeout and maximum body size. A grant with
//! `deny_private_addresses` resolves names through [`PublicOnly`], which refuses loopback,
//! private, link-local and other non-public addresses: the check is on the addresses the
//! connection uses, so a name that resolves differently later cannot slip past it.

use super::{EffectFailure, EffectOutcome, EffectResponse};
use crate::receipts::Usage;
use agentos_air::HttpCap;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Largest request body a guest may send.
pub const REQUEST_BODY_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The HTTP client for a time limit: no redirects followed (the 3xx goes back to the caller, as
/// its target may lie outside the grant), no proxy, statuses as responses; with `public_only`,
/// names resolve through [`PublicOnly`]. One per setting per process, so connections are pooled
/// across calls and steps.
pub fn client(timeout_ms: u64, public_only: bool) -> ureq::Agent {
    static CLIENTS: OnceLock<Mutex<HashMap<(u64, bool), ureq::Agent>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .expect("http client cache lock");
    clients
        .entry((timeout_ms, public_only))
        .or_insert_with(|| {
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .max_redirects_will_error(false)
                .proxy(None)
                .timeout_global(Some(Duration::from_millis(timeout_ms)))
                .build();
            match public_only {
                true => ureq::Agent::with_parts(
                    config,
                    ureq::unversioned::transport::DefaultConnector::default(),
                    PublicOnly::default(),
                ),
                false => config.new_agent(),
            }
        })
        .clone()
}

/// A resolver that refuses any name resolving to an address that is not public.
#[derive(Debug, Default)]
pub struct PublicOnly(ureq::unversioned::resolver::DefaultResolver);

/// A name resolved to an address a `deny_private_addresses` grant refuses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {address}, a {kind} address, which the grant refuses (deny_private_addresses)")]
pub struct PrivateAddress {
    host: String,
    address: std::net::IpAddr,
    kind: &'static str,
}

impl ureq::unversioned::resolver::Resolver for PublicOnly {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let addresses = self.0.resolve(uri, config, timeout)?;
        if let Some((address, kind)) = addresses
            .iter()
            .find_map(|a| not_public(a.ip()).map(|kind| (a.ip(), kind)))
        {
            return Err(ureq::Error::Other(Box::new(PrivateAddress {
                host: uri.host().unwrap_or_default().to_string(),
                address,
                kind,
            })));
        }
        Ok(addresses)
    }
}

/// What kind of non-public address `ip` is, if it is one.
pub fn not_public(ip: std::net::IpAddr) -> Option<&'static str> {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if v4.is_broadcast() || v4.is_multicast() {
                Some("broadcast or multicast")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if a == 192 && b == 0 && v4.octets()[2] == 0 {
                Some("IETF protocol assignments")
            } else if a == 198 && (18..20).contains(&b) {
                Some("benchmarking")
            } else if a >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            // Addresses that carry an IPv4 address and reach it: mapped, compatible (::/96),
            // translated (::ffff:0:0/96), NAT64 (64:ff9b::/96; 64:ff9b:1::/48 is refused whole),
            // 6to4 (2002::/16).
            let [w, x] = [segments[6].to_be_bytes(), segments[7].to_be_bytes()];
            let embedded = std::net::Ipv4Addr::new(w[0], w[1], x[0], x[1]);
            if let Some(v4) = v6.to_ipv4_mapped() {
                not_public(IpAddr::V4(v4))
            } else if segments[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                not_public(IpAddr::V4(embedded)).or(Some("IPv4-compatible (deprecated)"))
            } else if segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
                // IPv4-translated (::ffff:0:0/96).
                not_public(IpAddr::V4(embedded))
            } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                not_public(IpAddr::V4(embedded))
            } else if segments[..3] == [0x64, 0xff9b, 1] {
                // Local-use NAT64, whose IPv4 address may sit anywhere in the suffix.
                Some("local-use NAT64")
            } else if segments[0] == 0x2002 {
                let [p, q] = [segments[1].to_be_bytes(), segments[2].to_be_bytes()];
                not_public(IpAddr::V4(std::net::Ipv4Addr::new(p[0], p[1], q[0], q[1])))
            } else if segments[0] & 0xffc0 == 0xfec0 {
                Some("site-local (deprecated)")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_unique_local() {
                Some("private (unique local)")
            } else if v6.is_unicast_link_local() {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

/// Perform the request under `cap`, to `url` as the grant check normalised it.
pub fn execute(
    cap: &HttpCap,
    method: &str,
    url: &url::Url,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> (EffectOutcome, Usage) {
    let agent = client(cap.timeout_ms, cap.deny_private_addresses);
    let mut builder = ureq::http::Request::builder().method(method).uri(url.as_str());
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let sent = body.map_or(0, <[u8]>::len) as u64;
    let request = match builder.body(body.map(<[u8]>::to_vec).unwrap_or_default()) {
        Ok(request) => request,
        Err(e) => {
            return (
                Err(EffectFailure::Failed(format!("malformed request: {e}"))),
                Usage::default(),
            );
        }
    };
    let mut response = match agent.run(request) {
        Ok(response) => response,
        Err(error) => {
            return (
                Err(failure(error, cap)),
                Usage {
                    bytes_sent: sent,
                    ..Usage::default()
                },
            );
        }
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    match response
        .body_mut()
        .with_config()
        .limit(cap.max_body_bytes)
        .read_to_vec()
    {
        Ok(body) => {
            let usage = Usage {
                bytes_sent: sent,
                bytes_received: body.len() as u64,
                ..Usage::default()
            };
            (Ok(EffectResponse::Http { status, headers, body }), usage)
        }
        Err(error) => (
            Err(failure(error, cap)),
            Usage {
                bytes_sent: sent,
                ..Usage::default()
            },
        ),
    }
}

fn failure(error: ureq::Error, cap: &HttpCap) -> EffectFailure {
    match error {
        ureq::Error::Other(refused) if refused.is::<PrivateAddress>() => EffectFailure::Denied(refused.to_string()),
        ureq::Error::Timeout(_) => EffectFailure::Timeout(format!("no complete response within {} ms", cap.timeout_ms)),
        ureq::Error::BodyExceedsLimit(limit) => {
            EffectFailure::Failed(format!("response body exceeds the grant's max_body_bytes of {limit}"))
        }
        other => EffectFailure::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::not_public;

    #[test]
    fn addresses_that_reach_a_private_network_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "::ffff:10.0.0.1",
            "::ffff:0:10.0.0.1",
            "::10.0.0.1",
            "::8.8.8.8",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:a00:1::",
            "2002:0a00:0001::1",
        ] {
            assert!(
                not_public(private.parse().unwrap()).is_some(),
                "{private} passed as public"
            );
        }
        for public in [
            "8.8.8.8",
            "2001:4860:4860::8888",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert_eq!(not_public(public.parse().unwrap()), None, "{public}");
        }
    }
}
