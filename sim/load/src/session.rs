//! Opening a session the way the SDK does (`docs/protocol.md` §2): an `ApRequest` to an
//! access point over UDP (retransmitted with the same id), a ticket, a TCP connection to the
//! first relay with `TunnelOpen`, then `TunnelAccept`; from there on the connection carries
//! raw tunnel bytes and the session's media goes to the relay's UDP port as `MediaData`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cloudproxy_core::wire::{
    FrameReader, Message, RelayInfo, Ticket, FLAG_UDP_MEDIA, MAX_FRAME_LEN,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::LoadError;

/// How long one AP attempt waits for its answer.
const AP_ATTEMPT: Duration = Duration::from_millis(500);
/// AP attempts (per access point) before giving up on it.
const AP_ATTEMPTS: u32 = 4;
/// How long a relay may take to accept a tunnel.
const TUNNEL_TIMEOUT: Duration = Duration::from_secs(10);

/// An access point's answer.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The ticket.
    pub ticket: Ticket,
    /// The relays, in order of preference.
    pub relays: Vec<RelayInfo>,
}

/// Asks the access points in order (UDP, retransmitting) until one grants a ticket. `bind` is
/// the client's address (the ticket is bound to it).
pub async fn request_ticket(
    aps: &[SocketAddr],
    bind: IpAddr,
    app_id: &str,
    request_id: u32,
) -> Result<Grant, LoadError> {
    let request = Message::padded_ap_request(request_id, app_id, FLAG_UDP_MEDIA)
        .to_bytes()
        .map_err(|e| LoadError::Usage(format!("app id `{app_id}`: {e}")))?;
    let socket = UdpSocket::bind(SocketAddr::new(bind, 0))
        .await
        .map_err(|e| LoadError::Io(format!("cannot bind udp on {bind}: {e}")))?;
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let mut last = String::from("no access point given");
    for ap in aps {
        for _ in 0..AP_ATTEMPTS {
            if let Err(e) = socket.send_to(&request, ap).await {
                last = format!("{ap}: {e}");
                break;
            }
            let deadline = tokio::time::Instant::now() + AP_ATTEMPT;
            loop {
                let Ok(got) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
                else {
                    last = format!("{ap}: no answer within {AP_ATTEMPT:?}");
                    break;
                };
                let Ok((n, from)) = got else { break };
                if from != *ap {
                    continue;
                }
                match Message::decode_datagram(&buf[..n]) {
                    Ok(Message::ApResponse {
                        request_id: id,
                        ticket,
                        relays,
                        ..
                    }) if id == request_id => return Ok(Grant { ticket, relays }),
                    Ok(Message::Error { code, reason }) => {
                        return Err(LoadError::Refused(format!(
                            "access point {ap} refused: {code} ({reason})"
                        )))
                    }
                    _ => continue,
                }
            }
        }
    }
    Err(LoadError::Unreachable(format!(
        "no access point answered: {last}"
    )))
}

/// An open session: the raw tunnel and what the relay announced.
#[derive(Debug)]
pub struct Session {
    /// The session's id.
    pub session_id: u64,
    /// The relay's address (TCP).
    pub relay: SocketAddr,
    /// Where its media goes (the relay's address, the session's UDP port); `None` when the
    /// relay offers no UDP.
    pub media: Option<SocketAddr>,
    /// The tunnel, raw after `TunnelAccept`.
    pub tunnel: TcpStream,
    /// Tunnel bytes that arrived with the `TunnelAccept`.
    pub early: Vec<u8>,
    /// The relay's keepalive interval.
    pub keepalive: Duration,
    /// The relay's idle timeout.
    pub idle_timeout: Duration,
}

/// Connects from `bind` to `relay` and opens a tunnel to `destination` with `ticket`.
pub async fn open_tunnel(
    relay: SocketAddr,
    bind: IpAddr,
    ticket: &Ticket,
    destination: SocketAddr,
) -> Result<Session, LoadError> {
    tokio::time::timeout(
        TUNNEL_TIMEOUT,
        open_tunnel_now(relay, bind, ticket, destination),
    )
    .await
    .map_err(|_| {
        LoadError::Unreachable(format!(
            "relay {relay} did not accept the tunnel within {TUNNEL_TIMEOUT:?}"
        ))
    })?
}

async fn open_tunnel_now(
    relay: SocketAddr,
    bind: IpAddr,
    ticket: &Ticket,
    destination: SocketAddr,
) -> Result<Session, LoadError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: io::Error| LoadError::Io(format!("relay {relay}: {what}: {e}"))
    };
    let socket = if relay.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io("socket"))?;
    socket.bind(SocketAddr::new(bind, 0)).map_err(io("bind"))?;
    let mut tunnel = socket.connect(relay).await.map_err(io("connect"))?;
    tunnel.set_nodelay(true).map_err(io("nodelay"))?;
    let open = Message::TunnelOpen {
        ticket: ticket.clone(),
        destination,
    }
    .to_bytes()
    .map_err(|e| LoadError::Usage(format!("TunnelOpen: {e}")))?;
    tunnel
        .write_all(&open)
        .await
        .map_err(io("send TunnelOpen"))?;
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    loop {
        let n = tunnel
            .read(&mut buf[..reader.space().max(1)])
            .await
            .map_err(io("read"))?;
        if n == 0 {
            return Err(LoadError::Refused(format!(
                "relay {relay} closed the tunnel before accepting it"
            )));
        }
        reader.push(&buf[..n]);
        match reader.pop() {
            Ok(None) => continue,
            Ok(Some(Message::TunnelAccept {
                session_id,
                udp_port,
                keepalive_interval_ms,
                idle_timeout_ms,
            })) => {
                let early = reader.take_rest();
                return Ok(Session {
                    session_id,
                    relay,
                    media: (udp_port != 0).then(|| SocketAddr::new(relay.ip(), udp_port)),
                    tunnel,
                    early,
                    keepalive: Duration::from_millis(u64::from(keepalive_interval_ms)),
                    idle_timeout: Duration::from_millis(u64::from(idle_timeout_ms)),
                });
            }
            Ok(Some(Message::Error { code, reason })) => {
                return Err(LoadError::Refused(format!(
                    "relay {relay} refused the tunnel: {code} ({reason})"
                )))
            }
            Ok(Some(other)) => {
                return Err(LoadError::Protocol(format!(
                    "relay {relay} answered TunnelOpen with {:?}",
                    other.message_type()
                )))
            }
            Err(e) => {
                return Err(LoadError::Protocol(format!(
                    "relay {relay} sent an invalid frame: {e}"
                )))
            }
        }
    }
}

/// Asks for a ticket and opens a tunnel on the first relay that accepts it.
pub async fn open_session(
    aps: &[SocketAddr],
    bind: IpAddr,
    app_id: &str,
    request_id: u32,
    destination: SocketAddr,
) -> Result<Session, LoadError> {
    let grant = request_ticket(aps, bind, app_id, request_id).await?;
    let mut last = LoadError::Unreachable("the access point listed no relay".into());
    for relay in &grant.relays {
        let at = SocketAddr::new(relay.addr, relay.tcp_port);
        match open_tunnel(at, bind, &grant.ticket, destination).await {
            Ok(session) => return Ok(session),
            Err(e) => last = e,
        }
    }
    Err(last)
}
