//! A hostile client inside an enterprise: it tries to use the cloud proxy as an open relay.
//! It asks the access point for a real ticket, then tries internal and forbidden destinations,
//! forged, replayed and expired tickets, and UDP media to places outside SD-RTN. Every attempt
//! and the answer it got is recorded, so a scenario can check each was refused.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::wire::{ErrorCode, Message, Ticket, FLAG_UDP_MEDIA};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::{Net, Udp};

/// One attempt and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// What was tried.
    pub what: String,
    /// The answer: an error code, "accepted", or "no answer".
    pub answer: String,
}

/// What the attacker did.
#[derive(Clone, Debug, Default)]
pub struct AttackReport {
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Whether it got a ticket from the access point at all.
    pub got_ticket: bool,
}

/// The forbidden destinations it asks for.
pub const FORBIDDEN: [&str; 6] = [
    "10.0.0.1:22",
    "127.0.0.1:80",
    "192.168.1.1:443",
    "169.254.169.254:80",
    "[::ffff:10.0.0.1]:22",
    "8.8.8.8:53",
];

/// Runs the attack against the access point at `ap` and the relay at `relay`, with `edge` as
/// the legitimate SD-RTN destination. `wait_for_expiry` is how long a ticket takes to expire.
pub async fn run_attacker<N: Net>(
    net: N,
    ap: SocketAddr,
    relay: SocketAddr,
    edge: SocketAddr,
    wait_for_expiry: Duration,
    report: Rc<RefCell<AttackReport>>,
) -> io::Result<()> {
    let record =
        |what: String, answer: String| report.borrow_mut().attempts.push(Attempt { what, answer });
    let Some((ticket, udp_port)) = get_ticket(&net, ap).await? else {
        record(
            "ask the access point for a ticket".into(),
            "no answer".into(),
        );
        return Ok(());
    };
    report.borrow_mut().got_ticket = true;

    // Forbidden destinations with a valid ticket (each on a fresh connection).
    for dest in FORBIDDEN {
        let destination: SocketAddr = dest.parse().expect("a valid address");
        let answer = open_tunnel(&net, relay, &ticket, destination).await;
        record(format!("tunnel to {dest} with a valid ticket"), answer);
    }
    // A forged ticket (one bit of its MAC flipped).
    let mut forged = ticket.clone();
    forged.mac[0] ^= 1;
    record(
        "tunnel with a forged ticket".into(),
        open_tunnel(&net, relay, &forged, edge).await,
    );
    // A ticket whose fields were changed (its MAC no longer matches).
    let mut extended = ticket.clone();
    extended.expires_at_ms += 3_600_000;
    record(
        "tunnel with a ticket whose expiry was extended".into(),
        open_tunnel(&net, relay, &extended, edge).await,
    );
    // The real ticket to the real edge works once...
    let first = open_tunnel_keep(&net, relay, &ticket, edge).await;
    let session = first.as_ref().ok().map(|(_, session)| *session);
    record(
        "tunnel to SD-RTN with the valid ticket".into(),
        first
            .as_ref()
            .map_or_else(Clone::clone, |_| "accepted".into()),
    );
    // ...and never twice.
    record(
        "the same ticket again (replay)".into(),
        open_tunnel(&net, relay, &ticket, edge).await,
    );
    // UDP media to a forbidden destination on its own session, and to an unknown session.
    if let Some(session) = session {
        let relay_udp = SocketAddr::new(relay.ip(), udp_port);
        for (what, answer) in udp_attempts(&net, relay_udp, session).await? {
            record(what.into(), answer);
        }
    }
    drop(first);
    // An expired ticket: ask for a fresh one, wait until it expires, then use it.
    if let Some((old, _)) = get_ticket(&net, ap).await? {
        tokio::time::sleep(wait_for_expiry).await;
        record(
            "tunnel with an expired ticket".into(),
            open_tunnel(&net, relay, &old, edge).await,
        );
    }
    Ok(())
}

/// Media datagrams the relay must never pass on: to forbidden destinations on the attacker's
/// own `session`, and on a made-up session. What it attempted, and the relay's answer to each.
async fn udp_attempts<N: Net>(
    net: &N,
    relay_udp: SocketAddr,
    session: u64,
) -> io::Result<Vec<(&'static str, String)>> {
    let udp = net.bind_udp(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
    let mut answers = Vec::new();
    for (what, session_id, peer) in [
        (
            "UDP media to 10.0.0.1:53 on its own session",
            session,
            "10.0.0.1:53",
        ),
        (
            "UDP media to 8.8.8.8:53 on its own session",
            session,
            "8.8.8.8:53",
        ),
        (
            "UDP media on a made-up session",
            session ^ 0xDEAD_BEEF,
            "101.36.1.10:5001",
        ),
    ] {
        let msg = Message::MediaData {
            session_id,
            peer: peer.parse().expect("valid"),
            payload: vec![0; 64],
        };
        let _ = udp
            .send_to(&msg.to_bytes().unwrap_or_default(), relay_udp)
            .await;
        let mut buf = [0u8; 2048];
        let answer =
            match tokio::time::timeout(Duration::from_millis(500), udp.recv_from(&mut buf)).await {
                Ok(Ok((n, _))) => match Message::decode_datagram(&buf[..n]) {
                    Ok(Message::Error { code, .. }) => code.to_string(),
                    Ok(other) => format!("answered {:?}", other.message_type()),
                    Err(_) => "garbage".into(),
                },
                _ => "no answer".into(),
            };
        answers.push((what, answer));
    }
    Ok(answers)
}

async fn get_ticket<N: Net>(net: &N, ap: SocketAddr) -> io::Result<Option<(Ticket, u16)>> {
    let udp = net.bind_udp(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
    let request = Message::padded_ap_request(7, "attacker", FLAG_UDP_MEDIA);
    for _ in 0..3 {
        let _ = udp
            .send_to(&request.to_bytes().unwrap_or_default(), ap)
            .await;
        let mut buf = [0u8; 2048];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(1), udp.recv_from(&mut buf)).await
        {
            if let Ok(Message::ApResponse { ticket, relays, .. }) =
                Message::decode_datagram(&buf[..n])
            {
                return Ok(Some((ticket, relays.first().map_or(4500, |r| r.udp_port))));
            }
        }
    }
    Ok(None)
}

/// Opens a tunnel and reports the answer, closing the connection.
async fn open_tunnel<N: Net>(
    net: &N,
    relay: SocketAddr,
    ticket: &Ticket,
    destination: SocketAddr,
) -> String {
    match open_tunnel_keep(net, relay, ticket, destination).await {
        Ok(_) => "accepted".into(),
        Err(answer) => answer,
    }
}

/// Opens a tunnel; on acceptance returns the open stream and the session id.
async fn open_tunnel_keep<N: Net>(
    net: &N,
    relay: SocketAddr,
    ticket: &Ticket,
    destination: SocketAddr,
) -> Result<(N::Stream, u64), String> {
    let mut stream = match tokio::time::timeout(Duration::from_secs(5), net.connect(relay)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("connect failed: {e}")),
        Err(_) => return Err("connect timed out".into()),
    };
    let open = Message::TunnelOpen {
        ticket: ticket.clone(),
        destination,
    };
    if stream
        .write_all(&open.to_bytes().unwrap_or_default())
        .await
        .is_err()
    {
        return Err("write failed".into());
    }
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err("closed without an answer".into()),
            Err(_) => return Err("no answer".into()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
        match Message::decode(&got) {
            Ok((Message::TunnelAccept { session_id, .. }, _)) => return Ok((stream, session_id)),
            Ok((Message::Error { code, .. }, _)) => return Err(code.to_string()),
            Ok((other, _)) => return Err(format!("unexpected {:?}", other.message_type())),
            Err(e) if e.is_incomplete() => continue,
            Err(e) => return Err(format!("garbage: {e}")),
        }
    }
}

/// Whether an answer is the refusal `code`.
pub fn is_refusal(answer: &str, code: ErrorCode) -> bool {
    answer == code.to_string()
}
