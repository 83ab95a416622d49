//! `CLAMD_ADDR` and its companions: the virus scanning of uploads (docs/security.md).

use crate::{ConfigError, Env};
use std::time::Duration;

/// Where clamd answers and how long to wait for it. Present only when `CLAMD_ADDR` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirusScan {
    /// `CLAMD_ADDR`: `host:port` of clamd's TCP socket. Kept as text and resolved at each scan,
    /// so a Service name follows clamd's pod and a DNS hiccup at start-up is not fatal.
    pub addr: String,
    /// `CLAMD_CONNECT_TIMEOUT` (default 5 s): a clamd behind a dropping firewall costs this, not
    /// the whole scan timeout.
    pub connect_timeout: Duration,
    /// `CLAMD_TIMEOUT` (default 30 s): one whole scan, from connecting to clamd's verdict.
    pub timeout: Duration,
    /// `CLAMD_FAIL_OPEN` (default `false`): when clamd cannot give a verdict, store the upload
    /// unscanned (logged and counted) instead of answering 503.
    pub fail_open: bool,
}

pub(crate) fn parse(env: &Env<'_>) -> Result<Option<VirusScan>, ConfigError> {
    // Read even without CLAMD_ADDR, so a typo in them is reported before scanning is turned on.
    let connect_timeout = env.duration("CLAMD_CONNECT_TIMEOUT", "5s")?;
    let timeout = env.duration("CLAMD_TIMEOUT", "30s")?;
    let fail_open: bool = env.parse("CLAMD_FAIL_OPEN", "false")?;
    if connect_timeout.is_zero() || timeout.is_zero() {
        return Err(ConfigError {
            var: "CLAMD_TIMEOUT/CLAMD_CONNECT_TIMEOUT",
            reason: "must be more than 0s".into(),
        });
    }
    let Some(addr) = env.get("CLAMD_ADDR") else {
        return Ok(None);
    };
    let addr = host_port(addr.trim()).map_err(|reason| ConfigError {
        var: "CLAMD_ADDR",
        reason,
    })?;
    Ok(Some(VirusScan {
        addr,
        connect_timeout,
        timeout,
        fail_open,
    }))
}

/// `host:port` or `[v6]:port`, with a port from 1 to 65535. No scheme: clamd speaks raw TCP.
fn host_port(v: &str) -> Result<String, String> {
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("`{v}` is not host:port (e.g. clamav.clamav.svc:3310)"))?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = !host.is_empty() && !host.contains('/') && !host.contains(char::is_whitespace);
    if port_ok && host_ok {
        Ok(v.to_owned())
    } else {
        Err(format!("`{v}` is not host:port (e.g. clamav.clamav.svc:3310)"))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Process};
    use std::collections::HashMap;
    use std::time::Duration;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, crate::ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(Process::ApiGateway, &map)
    }

    #[test]
    fn off_unless_an_address_is_given() {
        assert_eq!(cfg(&[]).unwrap().virus_scan, None);
        assert_eq!(cfg(&[("CLAMD_ADDR", " ")]).unwrap().virus_scan, None);
        let scan = cfg(&[("CLAMD_ADDR", "clamav.clamav.svc:3310")])
            .unwrap()
            .virus_scan
            .unwrap();
        assert_eq!(scan.addr, "clamav.clamav.svc:3310");
        assert_eq!(scan.connect_timeout, Duration::from_secs(5));
        assert_eq!(scan.timeout, Duration::from_secs(30));
        assert!(!scan.fail_open, "fails closed by default");
        let scan = cfg(&[
            ("CLAMD_ADDR", "[::1]:3310"),
            ("CLAMD_TIMEOUT", "2m"),
            ("CLAMD_FAIL_OPEN", "true"),
        ])
        .unwrap()
        .virus_scan
        .unwrap();
        assert_eq!(scan.timeout, Duration::from_secs(120));
        assert!(scan.fail_open);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for addr in ["clamd", "tcp://clamd:3310", "clamd:0", "clamd:port", ":3310"] {
            let e = cfg(&[("CLAMD_ADDR", addr)]).err().unwrap();
            assert_eq!(e.var, "CLAMD_ADDR", "{addr}");
        }
        let e = cfg(&[("CLAMD_FAIL_OPEN", "perhaps")]).err().unwrap();
        assert_eq!(e.var, "CLAMD_FAIL_OPEN");
        let e = cfg(&[("CLAMD_TIMEOUT", "0s")]).err().unwrap();
        assert_eq!(e.var, "CLAMD_TIMEOUT/CLAMD_CONNECT_TIMEOUT");
    }
}
