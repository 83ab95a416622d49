//! Where a delivery may connect. A hook's URL was checked when it was
//! registered, but a name can resolve elsewhere by the time we deliver (DNS
//! rebinding), so every attempt checks again: the client resolves names
//! through [`CheckedResolver`], which refuses the whole answer when any
//! address is not allowed and hands the connector only the addresses it
//! checked, so what is checked is what is connected to.

use foxflow_config::WebhookNetworks;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};

/// The networks deliveries may reach: every address, literal or resolved,
/// is checked against them.
#[derive(Debug, Clone)]
pub struct Targets {
    networks: WebhookNetworks,
}

impl Targets {
    /// Every address checked against `networks` (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
    pub fn new(networks: WebhookNetworks) -> Self {
        Targets { networks }
    }

    /// Refuses an IP-literal URL whose address is not allowed; a name is
    /// checked when it is resolved.
    pub(crate) fn check_url(&self, url: &str) -> Result<(), NotAllowed> {
        let Some(ip) = literal_ip(url) else {
            return Ok(());
        };
        if self.networks.permits(ip) {
            Ok(())
        } else {
            Err(NotAllowed { address: ip })
        }
    }

    pub(crate) fn resolver(&self) -> CheckedResolver {
        CheckedResolver {
            networks: self.networks.clone(),
        }
    }
}

/// The address of an IP-literal URL (`http://10.0.0.1/`, `http://[::1]:80/`).
fn literal_ip(url: &str) -> Option<IpAddr> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?;
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// The target resolves to (or is) an address outside the allowed networks.
#[derive(Debug, thiserror::Error)]
#[error("the target address {address} is not allowed (WEBHOOK_ALLOW_PRIVATE_NETWORKS)")]
pub struct NotAllowed {
    /// For the worker's log only: it may name an internal host, so it is not
    /// stored with the delivery, which admins read over the API.
    pub address: IpAddr,
}

/// The system resolver, then the check of every address it returned.
pub(crate) struct CheckedResolver {
    networks: WebhookNetworks,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let networks = self.networks.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // One bad address refuses all: a client that tried the others
            // first would still reach the bad one when they fail.
            if let Some(bad) = addrs.iter().find(|a| !networks.permits(a.ip())) {
                return Err(Box::new(NotAllowed { address: bad.ip() }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The refusal behind a failed request, if that is what it was.
pub(crate) fn refusal(e: &reqwest::Error) -> Option<&NotAllowed> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(n) = s.downcast_ref::<NotAllowed>() {
            return Some(n);
        }
        source = s.source();
    }
    None
}
