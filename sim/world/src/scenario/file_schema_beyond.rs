//! The reading of the checks beyond the seed (issue 18) in a scenario file: join bounds,
//! automatic mode's fallback, TCP 443, the HTTP proxy and the network changes
//! ([`super::vocabulary_beyond`] has what each checks).

use std::time::Duration;

use toml::Spanned;

use super::file::{Cx, FileError};
use super::file_schema::CheckDoc;
use super::vocabulary::CheckDef;
use crate::policy::Proto;
use crate::world::WorldSpec;

/// The longest bound in milliseconds a check may state (an hour, as for times).
const MAX_BOUND_MS: u64 = 3_600_000;

impl Cx<'_> {
    /// Milliseconds within `0..=MAX_BOUND_MS`, as a duration; `span` is the check's.
    fn bound_ms(
        &self,
        ms: Option<u64>,
        span: std::ops::Range<usize>,
        field: &str,
        what: &str,
        need: &dyn Fn(&str) -> FileError,
    ) -> Result<Duration, FileError> {
        let ms = ms.ok_or_else(|| need(what))?;
        if ms > MAX_BOUND_MS {
            return Err(self.err(
                span,
                &format!("{field}.{what}"),
                format!("{ms} ms is out of range: at most {MAX_BOUND_MS} ms"),
            ));
        }
        Ok(Duration::from_millis(ms))
    }

    /// The `after_s` argument, required.
    fn after(
        &self,
        c: &CheckDoc,
        field: &str,
        need: &dyn Fn(&str) -> FileError,
    ) -> Result<Duration, FileError> {
        let after = c.after_s.as_ref().ok_or_else(|| need("after_s"))?;
        self.secs(after, &format!("{field}.after_s"))
    }

    /// The words beyond the seed (`None`: another word, read elsewhere).
    pub(super) fn beyond_word(
        &self,
        doc: &Spanned<CheckDoc>,
        field: &str,
        world: &WorldSpec,
        need: &dyn Fn(&str) -> FileError,
        client: &dyn Fn(&Spanned<String>) -> Result<String, FileError>,
    ) -> Result<Option<CheckDef>, FileError> {
        use CheckDef as D;
        let c = doc.get_ref();
        let span = doc.span();
        let ent = |v: &Spanned<String>, word: &str| {
            self.enterprise_name(v, &format!("{field}.{word}"), world)
        };
        Ok(Some(if let Some(n) = &c.joined_within {
            let bound = self.bound_ms(c.within_ms, span, field, "within_ms", need)?;
            D::JoinedWithin(client(n)?, bound)
        } else if let Some(names) = &c.stay_direct {
            if names.is_empty() {
                return Err(self.err(
                    span,
                    &format!("{field}.stay_direct"),
                    "name at least one client",
                ));
            }
            D::StayDirect(names.iter().map(client).collect::<Result<_, _>>()?)
        } else if c.no_access_point_answered {
            D::NoAccessPointAnswered
        } else if let Some(n) = &c.falls_back {
            let probe = self.bound_ms(c.probe_ms, span, field, "probe_ms", need)?;
            D::FallsBack(client(n)?, probe)
        } else if let Some(n) = &c.relay_port {
            let port = c.port.ok_or_else(|| need("port"))?;
            D::RelayPort(client(n)?, port)
        } else if let Some(e) = &c.no_udp_left {
            D::NoUdpLeft(ent(e, "no_udp_left")?)
        } else if let Some(e) = &c.nothing_denied_to {
            let p = c.proto.as_ref().ok_or_else(|| need("proto"))?;
            let proto = match p.get_ref().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                other => {
                    return Err(self.err(
                        p.span(),
                        &format!("{field}.proto"),
                        format!("{other:?}: expected \"tcp\" or \"udp\""),
                    ))
                }
            };
            let port = c.port.ok_or_else(|| need("port"))?;
            D::NothingDeniedTo(ent(e, "nothing_denied_to")?, proto, port)
        } else if let Some(e) = &c.http_proxy_tunnels {
            let name = ent(e, "http_proxy_tunnels")?;
            if world
                .enterprises
                .iter()
                .any(|x| x.name == name && x.http_proxy.is_none())
            {
                return Err(self.err(
                    e.span(),
                    &format!("{field}.http_proxy_tunnels"),
                    format!("{name:?} has no [enterprise.http_proxy]"),
                ));
            }
            let tunnels = c.tunnels.ok_or_else(|| need("tunnels"))?;
            let challenges = c.challenges.ok_or_else(|| need("challenges"))?;
            D::HttpProxyTunnels(name, tunnels, challenges)
        } else if let Some(e) = &c.nat_rebound {
            D::NatRebound(ent(e, "nat_rebound")?)
        } else if c.relay_followed_rebinding {
            D::RelayFollowedRebinding
        } else if let Some(n) = &c.no_reconnect {
            D::NoReconnect(client(n)?)
        } else if let Some(e) = &c.no_ticket_after {
            D::NoTicketAfter(ent(e, "no_ticket_after")?, self.after(c, field, need)?)
        } else if let Some(n) = &c.media_after {
            let seconds = c.seconds.ok_or_else(|| need("seconds"))?;
            if seconds == 0 {
                return Err(self.err(span, &format!("{field}.seconds"), "at least 1 second"));
            }
            D::MediaAfter(client(n)?, self.after(c, field, need)?, seconds)
        } else if let Some(n) = &c.reason_mentions {
            let text = c.contains.clone().ok_or_else(|| need("contains"))?;
            D::ReasonMentions(client(n)?, text)
        } else if let Some(n) = &c.media_path_within {
            let p = c.path.as_ref().ok_or_else(|| need("path"))?;
            let path = self.media_path(p, field)?;
            let bound = self.bound_ms(c.within_ms, span, field, "within_ms", need)?;
            D::MediaPathWithin(client(n)?, path, self.after(c, field, need)?, bound)
        } else if let Some(e) = &c.vpn_dropped_udp {
            D::VpnDroppedUdp(ent(e, "vpn_dropped_udp")?)
        } else {
            return Ok(None);
        }))
    }
}
