//! Tests of the application machine: a scripted harness plays the driver and the edge by hand
//! (proxy off, so that the proxy client talks to the edge directly and every byte is the
//! application's).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;
use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::client::{ConnId, MediaPath, StateReason};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn sdrtn() -> SdRtnEndpoints {
    SdRtnEndpoints {
        signalling: "198.51.100.1:5000".parse().unwrap(),
        media_udp: "198.51.100.1:5001".parse().unwrap(),
        media_tcp: "198.51.100.1:5002".parse().unwrap(),
    }
}

/// Alice, uid 7, proxy off, joining 100 ms after the start.
fn alice() -> AppConfig {
    AppConfig::new("alice", 7, "room", &[], ms(100))
}

/// The application, a virtual clock, its outputs not looked at yet, and its report.
struct Harness {
    app: App,
    now: Instant,
    out: VecDeque<AppOutput>,
    report: ClientReport,
}

impl Harness {
    fn new(config: AppConfig) -> Self {
        let now = Instant::from_millis(5_000);
        Harness {
            app: App::new(config, sdrtn(), now),
            now,
            out: VecDeque::new(),
            report: ClientReport::default(),
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.app.poll_output() {
            if let AppOutput::Event(event) = &out {
                self.report.record(event);
            }
            self.out.push_back(out);
        }
    }

    fn input(&mut self, input: ClientInput<'_>) {
        self.app.handle_input(input, self.now).unwrap();
        self.drain();
    }

    /// Moves the clock to `t` after the start, firing every timer on the way, in order.
    fn run_to(&mut self, t: Duration) {
        let until = Instant::from_millis(5_000) + t;
        while let Some(at) = self.app.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.app.handle_timeout(self.now);
            self.drain();
            let next = self.app.poll_timeout();
            assert!(
                next.is_none_or(|n| n > self.now),
                "timer {next:?} not after now"
            );
        }
        self.now = until;
    }

    fn events(&mut self) -> Vec<AppEvent> {
        let (events, rest): (Vec<_>, Vec<_>) = self
            .out
            .drain(..)
            .partition(|o| matches!(o, AppOutput::Event(_)));
        self.out = rest.into();
        events
            .into_iter()
            .map(|o| o.into_client().unwrap_err())
            .collect()
    }

    fn take_connect(&mut self, to: SocketAddr) -> ConnId {
        let i = self
            .out
            .iter()
            .position(
                |o| matches!(o, AppOutput::Net(ClientOutput::TcpConnect { to: t, .. }) if *t == to),
            )
            .unwrap_or_else(|| panic!("no connect to {to} in {:?}", self.out));
        match self.out.remove(i) {
            Some(AppOutput::Net(ClientOutput::TcpConnect { conn, .. })) => conn,
            _ => unreachable!(),
        }
    }

    /// Every line written on `conn`, taken.
    fn take_lines(&mut self, conn: ConnId) -> Vec<Signal> {
        let mut bytes = Vec::new();
        self.out.retain(|o| match o {
            AppOutput::Net(ClientOutput::TcpSend { conn: c, data }) if *c == conn => {
                bytes.extend_from_slice(data);
                false
            }
            _ => true,
        });
        LineReader::default().push(&bytes).unwrap()
    }

    /// Every media packet sent, taken.
    fn take_media(&mut self) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        self.out.retain(|o| match o {
            AppOutput::Net(ClientOutput::UdpSend { data, .. }) => {
                packets.push(data.clone());
                false
            }
            _ => true,
        });
        packets
    }

    /// Fires timers until the proxy client reconnects to the edge's signalling address.
    fn reconnect(&mut self) -> ConnId {
        for _ in 0..100 {
            let at = self.app.poll_timeout().unwrap();
            self.run_to(at.saturating_duration_since(Instant::from_millis(5_000)));
            let signalling = sdrtn().signalling;
            if self
                .out
                .iter()
                .any(|o| matches!(o, AppOutput::Net(ClientOutput::TcpConnect { to, .. }) if *to == signalling))
            {
                return self.take_connect(signalling);
            }
        }
        panic!("no reconnect: {:?}", self.out);
    }

    fn ack(&mut self, conn: ConnId, seq: u64) {
        let line = Signal::Ack { seq }.to_line();
        self.input(ClientInput::TcpData { conn, data: &line });
    }

    /// Joins at 100 ms and connects: returns the signalling connection, the join's seq taken.
    fn join_and_connect(&mut self) -> ConnId {
        self.run_to(ms(100));
        let conn = self.take_connect(sdrtn().signalling);
        self.input(ClientInput::TcpConnected { conn });
        let lines = self.take_lines(conn);
        assert!(
            matches!(lines[..], [Signal::Join { uid: 7, .. }]),
            "{lines:?}"
        );
        conn
    }
}

fn join_line(ch: &str, seq: u64) -> Signal {
    Signal::Join {
        ch: ch.into(),
        uid: 7,
        seq,
    }
}

#[test]
fn joins_the_channel_and_sends_media_only_once_the_join_is_acknowledged() {
    let mut h = Harness::new(alice());
    h.run_to(ms(99));
    assert!(h.out.is_empty(), "nothing before the script's join");
    let conn = h.join_and_connect();
    let events = h.events();
    assert!(matches!(events[0], AppEvent::Joined { at, .. } if at == ms(100)));
    assert!(events.contains(&AppEvent::SignallingSent {
        seq: 1,
        at: ms(100)
    }));

    // Signalling ticks, but no media before the edge has acknowledged the join.
    h.run_to(ms(1_100));
    assert!(h.take_media().is_empty());
    assert_eq!(
        h.take_lines(conn),
        [Signal::Msg {
            seq: 2,
            body: "hello from alice".into()
        }]
    );

    h.ack(conn, 1);
    h.run_to(ms(1_200));
    let media = h.take_media();
    // 50 packets a second from the ack on: at +0, +20 ... +100 ms.
    assert_eq!(media.len(), 6);
    for (i, packet) in media.iter().enumerate() {
        let header = read_media(packet).unwrap();
        assert_eq!((header.uid, header.seq, header.intact), (7, i as u32, true));
        assert!((MEDIA_MIN_LEN..=MEDIA_MAX_LEN).contains(&packet.len()));
    }
    assert_eq!(h.report.media_sent, 6);
    assert_eq!(h.report.join_time, Some(Duration::ZERO));
    assert_eq!(h.report.signalling_acked, BTreeSet::from([1]));
}

#[test]
fn a_reconnect_rejoins_resends_what_is_unacknowledged_and_keeps_media_going() {
    let mut h = Harness::new(alice());
    let first = h.join_and_connect();
    h.ack(first, 1);
    h.run_to(ms(2_100)); // messages 2 and 3
    h.take_lines(first);
    h.ack(first, 2);
    h.input(ClientInput::TcpClosed { conn: first });
    assert!(h.events().iter().any(|e| matches!(
        e,
        AppEvent::StateChanged {
            state: ConnectionState::Reconnecting,
            ..
        }
    )));
    assert_eq!(h.report.reconnects, 1);

    // The proxy client backs off and reconnects; the application rejoins and re-sends 3.
    let conn = h.reconnect();
    h.take_media();
    h.input(ClientInput::TcpConnected { conn });
    let lines = h.take_lines(conn);
    assert_eq!(lines[0], join_line("room", 4));
    assert_eq!(lines[1].seq(), 3, "the unacknowledged message again");
    assert_eq!(lines.len(), 2);
    // Media did not wait for the new join's ack.
    let now = h.now.saturating_duration_since(Instant::from_millis(5_000));
    h.run_to(now + ms(40));
    assert!(!h.take_media().is_empty());
    assert!(h.report.outages[0].1.is_some(), "the outage ended");
}

#[test]
fn the_config_in_force_is_reported_with_the_proxy_password_redacted() {
    let params = r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128,"alice","hunter2-planted"]}"#;
    let mut h = Harness::new(AppConfig::new("alice", 7, "room", &[params], ms(100)));
    h.run_to(ms(100));
    let joined = h.events().into_iter().find_map(|e| match e {
        AppEvent::Joined { config, .. } => Some(config),
        _ => None,
    });
    assert_eq!(
        joined.map(|c| c.enabled),
        Some(true),
        "the join took the config"
    );
    let in_force = h.report.config_in_force.clone().unwrap();
    assert!(!in_force.contains("hunter2-planted"), "{in_force}");
    assert!(in_force.contains(r#""alice","<redacted>""#), "{in_force}");
    assert!(in_force.contains(r#"[3,"proxy.corp",3128"#), "{in_force}");
    assert!(!format!("{:?}", h.report).contains("hunter2-planted"));
}

#[test]
fn signalling_round_trips_are_timed_from_send_to_ack_on_one_connection() {
    let mut h = Harness::new(alice());
    let first = h.join_and_connect(); // join 1 sent at 100 ms
    h.run_to(ms(130));
    h.ack(first, 1); // 30 ms
    h.run_to(ms(1_100)); // message 2 sent at 1,100 ms
    h.run_to(ms(1_105));
    h.ack(first, 2); // 5 ms
    h.ack(first, 2); // a duplicate ack: no second sample
    assert_eq!(h.report.rtt_us.count(), 2);
    let p = h.report.rtt_us.summary().unwrap();
    assert_eq!((p.p50, p.max), (5_000, 30_000));
    // Message 3 goes out at 2,100 ms and the connection breaks before its ack: re-sent on the
    // next connection, its ack measures the outage, so it is not timed; the new join is.
    h.run_to(ms(2_100));
    h.input(ClientInput::TcpClosed { conn: first });
    let conn = h.reconnect();
    h.input(ClientInput::TcpConnected { conn });
    let rejoin = h.take_lines(conn)[0].seq();
    h.ack(conn, 3);
    assert_eq!(
        h.report.rtt_us.count(),
        2,
        "the re-sent message is not timed"
    );
    let now = h.now;
    h.now = now + ms(7);
    h.ack(conn, rejoin);
    assert_eq!(h.report.rtt_us.count(), 3);
    assert_eq!(h.report.rtt_us.summary().unwrap().p50, 7_000);
}

#[test]
fn media_jitter_follows_rfc_3550_on_the_senders_stamps() {
    let mut h = Harness::new(alice());
    h.join_and_connect();
    let edge = sdrtn().media_udp;
    // Bob's clock is years ahead of ours: only differences of transit count. Received at
    // 200, 220, 240, 260 ms after alice's start, sent 20 ms apart but the third 1.6 ms late:
    // relative transits T, T, T - 1.6 ms, T: |D| = 0, 1,600, 1,600.
    let bob_epoch_us = 9_000_000_000_000u64;
    let sends_us = [0, 20_000, 41_600, 60_000];
    for (seq, (sent_us, arrive_ms)) in sends_us.into_iter().zip([200, 220, 240, 260]).enumerate() {
        h.now = Instant::from_millis(5_000 + arrive_ms);
        let payload = stamped_payload(bob_epoch_us + sent_us, 188, 0);
        let packet = media_packet(9, seq as u32, &payload);
        h.input(ClientInput::UdpData {
            from: edge,
            data: &packet,
        });
    }
    // J: 0, 0, 1600/16 = 100, then scaled 1,600 + 1,600 - (1,600 + 8) / 16 = 3,100 → 193.
    let bob = &h.report.media_from[&9];
    assert_eq!(bob.jitter_us(), 193);
    assert_eq!(h.report.jitter_us.count(), 4);
    let p = h.report.jitter_us.summary().unwrap();
    assert_eq!((p.p50, p.p90, p.p99, p.max), (0, 193, 193, 193));
    // A duplicate, a corrupt packet and an unstamped one leave the jitter alone.
    let dup = media_packet(9, 3, &stamped_payload(bob_epoch_us, 188, 0));
    let mut corrupt = media_packet(9, 4, &stamped_payload(bob_epoch_us, 188, 0));
    corrupt[20] ^= 1;
    for data in [&dup[..], &corrupt[..], &media_packet(9, 5, b"short")[..]] {
        h.input(ClientInput::UdpData { from: edge, data });
    }
    assert_eq!(h.report.jitter_us.count(), 4);
    assert_eq!(h.report.media_from[&9].jitter_us(), 193);
}

#[test]
fn sent_media_carries_the_send_instant() {
    let mut h = Harness::new(alice());
    let conn = h.join_and_connect();
    h.ack(conn, 1);
    h.run_to(ms(140));
    let stamps: Vec<u64> = h
        .take_media()
        .iter()
        .filter_map(|p| media_sent_us(p))
        .collect();
    // From the ack at 100 ms, every 20 ms, on the application's clock (5 s at its start).
    assert_eq!(stamps, [5_100_000, 5_120_000, 5_140_000]);
}

#[test]
fn a_join_lost_with_its_tunnel_does_not_hold_media_back() {
    // crowd, seed 44: the join went out on a tunnel that died at once and was never
    // acknowledged; the ack of the re-join on the next one must start media.
    let mut h = Harness::new(alice());
    let first = h.join_and_connect();
    h.input(ClientInput::TcpClosed { conn: first });
    let conn = h.reconnect();
    h.input(ClientInput::TcpConnected { conn });
    assert_eq!(h.take_lines(conn), [join_line("room", 2)]);
    h.ack(conn, 2);
    h.run_to(h.now.saturating_duration_since(Instant::from_millis(5_000)));
    assert_eq!(h.take_media().len(), 1, "media starts at the ack");
}

#[test]
fn the_quiet_period_stops_media_and_signalling() {
    let mut config = alice();
    config.talk_until = Some(ms(1_000));
    let mut h = Harness::new(config);
    let conn = h.join_and_connect();
    h.ack(conn, 1);
    h.run_to(ms(999));
    let before = h.take_media().len();
    assert!(before > 40, "{before}");
    h.run_to(ms(5_000));
    assert!(h.take_media().is_empty());
    assert!(h.take_lines(conn).is_empty());
    assert!(matches!(h.app.talk, Talk::Silent), "{:?}", h.app.talk);
}

#[test]
fn codes_follow_the_engine_rules() {
    let mut config = AppConfig::new(
        "alice",
        7,
        "room",
        &[r#"{"rtc.enable_proxy":false}"#],
        ms(0),
    );
    config.script.extend([
        (ms(10), Op::Set(r#"{"rtc.enable_proxy":true}"#.into())),
        (ms(10), Op::Join),
        (ms(20), Op::Leave),
        (ms(20), Op::Leave),
        (ms(30), Op::Set("{not json".into())),
    ]);
    let mut h = Harness::new(config);
    h.run_to(ms(30));
    let codes: Vec<(&str, i32)> = h
        .report
        .codes
        .iter()
        .map(|(n, c)| (n.as_str(), *c))
        .collect();
    assert_eq!(
        codes,
        [
            ("set", 0),
            ("join", 0),
            ("set", -4),
            ("join", -17),
            ("leave", 0),
            ("leave", -18),
            ("set", -2)
        ]
    );
    let refused = h.events().into_iter().find_map(|e| match e {
        AppEvent::ParametersSet {
            code: -4, error, ..
        } => error,
        _ => None,
    });
    assert!(refused.unwrap().contains("rtc.enable_proxy"));
    assert!(h.app.is_done());
}

#[test]
fn set_cloud_proxy_follows_the_engine_rules_and_decides_the_join() {
    use crate::engine::CloudProxyType::{Automatic, ForceTcp, ForceUdp};
    let mut config = AppConfig::new("alice", 7, "room", &[], ms(0));
    config.script = vec![
        (ms(0), Op::SetCloudProxy(ForceUdp)),
        // From one forced type to another: automatic first (-5), a refused call changes nothing.
        (ms(0), Op::SetCloudProxy(ForceTcp)),
        (ms(10), Op::Join),
        // In a channel: -4.
        (ms(20), Op::SetCloudProxy(Automatic)),
        (ms(30), Op::Leave),
    ];
    let mut h = Harness::new(config);
    h.run_to(ms(10));
    // Force UDP is in force: the proxy client asks the cloud proxy's name, not the edge.
    assert!(
        h.out
            .iter()
            .any(|o| matches!(o, AppOutput::Net(ClientOutput::Resolve { name }) if name == "ap-proxy.agora.io")),
        "{:?}",
        h.out
    );
    h.run_to(ms(30));
    let codes: Vec<(&str, i32)> = h
        .report
        .codes
        .iter()
        .map(|(n, c)| (n.as_str(), *c))
        .collect();
    assert_eq!(
        codes,
        [
            ("cloud", 0),
            ("cloud", -5),
            ("join", 0),
            ("cloud", -4),
            ("leave", 0)
        ]
    );
    let refused: Vec<(&str, String)> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            AppEvent::CloudProxySet {
                proxy_type,
                error: Some(error),
                ..
            } => Some((proxy_type.name(), error)),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0].0, "force-tcp");
    assert_eq!(refused[1].0, "automatic");
}

#[test]
fn leaving_drops_the_client_and_the_report_keeps_the_call() {
    let mut config = alice();
    config.script.push((ms(1_000), Op::Leave));
    let mut h = Harness::new(config);
    let conn = h.join_and_connect();
    h.ack(conn, 1);
    h.run_to(ms(500));
    h.events();
    h.run_to(ms(999));
    h.out.clear();
    h.run_to(ms(1_000));
    assert!(h.app.is_done());
    assert!(h.app.client().is_none());
    // The leave's own outputs are carried out: the call first, then the proxy client's close
    // of its connection and its state change.
    assert_eq!(h.out.pop_front(), Some(AppOutput::Event(AppEvent::Left)));
    assert_eq!(
        h.out.pop_front(),
        Some(AppOutput::Net(ClientOutput::TcpClose { conn }))
    );
    assert!(h.events().iter().any(|e| matches!(
        e,
        AppEvent::StateChanged {
            state: ConnectionState::Disconnected,
            reason: StateReason::Left,
            ..
        }
    )));
    // The report describes the call.
    assert_eq!(h.report.state, Some(ConnectionState::Connected));
    assert_eq!(h.report.codes.last(), Some(&("leave".to_owned(), 0)));
    // Nothing is sent after the leave, and inputs for the old connection are ignored.
    h.take_media();
    h.ack(conn, 1);
    h.run_to(ms(3_000));
    assert!(h.out.is_empty(), "{:?}", h.out);
}

#[test]
fn the_report_counts_what_arrived_and_what_was_wrong() {
    let mut h = Harness::new(alice());
    let conn = h.join_and_connect();
    let edge = sdrtn().media_udp;
    for (uid, seq) in [(9, 0), (9, 1), (9, 1), (9, 4), (9, 3), (11, 0)] {
        let packet = media_packet(uid, seq, b"payload");
        h.input(ClientInput::UdpData {
            from: edge,
            data: &packet,
        });
    }
    let mut corrupt = media_packet(9, 5, b"payload");
    corrupt[13] ^= 0xff;
    h.input(ClientInput::UdpData {
        from: edge,
        data: &corrupt,
    });
    h.input(ClientInput::UdpData {
        from: edge,
        data: b"short",
    });
    let bob = &h.report.media_from[&9];
    assert_eq!(
        (
            bob.received,
            bob.lost,
            bob.duplicated,
            bob.reordered,
            bob.corrupt
        ),
        (4, 1, 1, 1, 1)
    );
    assert_eq!(h.report.media_received(), 5);
    assert_eq!(h.report.media_lost(), 1);
    assert_eq!(h.report.media_path, Some(MediaPath::Udp));

    h.ack(conn, 99);
    assert_eq!(
        h.report.signalling_bad_acks, 1,
        "an ack of a message never sent"
    );
    h.input(ClientInput::TcpData {
        conn,
        data: b"garbage\n",
    });
    assert_eq!(h.report.signalling_bad_acks, 2);
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, AppEvent::SignallingBroken { .. })));
    // The reader started afresh: the next ack counts.
    h.ack(conn, 1);
    assert!(h.report.signalling_acked.contains(&1));
}

#[test]
fn the_applications_own_commands_are_refused_as_inputs() {
    let mut h = Harness::new(alice());
    let conn = h.join_and_connect();
    let before = h.app.poll_timeout();
    let refused = [
        ClientInput::SendSignalling { data: b"x" },
        ClientInput::SendMedia { payload: b"x" },
        ClientInput::Leave,
    ];
    for input in refused {
        let err = h.app.handle_input(input, h.now + ms(5)).unwrap_err();
        assert!(
            err.to_string().contains("the application's own command"),
            "{err}"
        );
    }
    assert_eq!(h.app.poll_output(), None, "a refused input changes nothing");
    assert_eq!(h.app.poll_timeout(), before);
    assert_eq!(
        h.app.client().map(ProxyClient::state),
        Some(ConnectionState::Connected)
    );
    assert_eq!(
        AppOutput::Net(ClientOutput::TcpClose { conn }).into_client(),
        Ok(ClientOutput::TcpClose { conn })
    );
    let reason = StateReason::Joined;
    let state = ConnectionState::Connected;
    let at = Duration::ZERO;
    let event = AppEvent::StateChanged { state, reason, at };
    assert_eq!(AppOutput::Event(event.clone()).into_client(), Err(event));
}

/// One thing the network or the edge may do.
#[derive(Clone, Debug)]
enum Step {
    Wait(u16),
    Connected,
    Closed,
    Ack(u8),
    Bytes(Vec<u8>),
    Media(u32, u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u16..3_000).prop_map(Step::Wait),
        Just(Step::Connected),
        Just(Step::Closed),
        any::<u8>().prop_map(Step::Ack),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Step::Bytes),
        (0u32..4, 0u32..100).prop_map(|(u, s)| Step::Media(u, s)),
    ]
}

proptest! {
    /// Whatever the network does, the machine keeps its contract: no panic, timers after
    /// `now`, media only after an acknowledged join, bounded re-sends, done once it left.
    #[test]
    fn any_network_keeps_the_contract(steps in proptest::collection::vec(step(), 1..60)) {
        let mut config = alice();
        config.talk_until = Some(ms(60_000));
        config.script.push((ms(90_000), Op::Leave));
        let mut h = Harness::new(config);
        let mut conns: Vec<ConnId> = Vec::new();
        let mut acked_join = false;
        let mut joins = BTreeSet::new();
        for step in steps {
            let conn = conns.last().copied().unwrap_or(ConnId(0));
            match step {
                Step::Wait(n) => {
                    let t = h.now.saturating_duration_since(Instant::from_millis(5_000));
                    h.run_to(t + ms(u64::from(n)));
                }
                Step::Connected => h.input(ClientInput::TcpConnected { conn }),
                Step::Closed => h.input(ClientInput::TcpClosed { conn }),
                Step::Ack(seq) => {
                    h.ack(conn, u64::from(seq));
                }
                Step::Bytes(data) => h.input(ClientInput::TcpData { conn, data: &data }),
                Step::Media(uid, seq) => {
                    let packet = media_packet(uid, seq, b"m");
                    h.input(ClientInput::UdpData { from: sdrtn().media_udp, data: &packet });
                }
            }
            // The joins handed out in this step first: an ack in the same bytes as the
            // connection's news is taken after the join, even if its event comes out first.
            for out in &h.out {
                match out {
                    AppOutput::Net(ClientOutput::TcpConnect { conn, .. }) => conns.push(*conn),
                    AppOutput::Net(ClientOutput::TcpSend { data, .. }) => {
                        let lines = LineReader::default().push(data).unwrap_or_default();
                        joins.extend(lines.iter().filter(|l| matches!(l, Signal::Join { .. })).map(Signal::seq));
                    }
                    _ => {}
                }
            }
            for out in &h.out {
                if let AppOutput::Event(AppEvent::Acked { seq, sent: true, .. }) = out {
                    acked_join |= joins.contains(seq);
                }
            }
            let media_sent = h.take_media().iter().filter(|p| read_media(p).is_some_and(|m| m.uid == 7)).count();
            prop_assert!(media_sent == 0 || acked_join, "media before any ack");
            h.out.clear();
            prop_assert!(h.app.unacked.len() <= MAX_UNACKED);
        }
        h.run_to(ms(100_000));
        prop_assert!(h.app.is_done());
        prop_assert!(h.app.poll_timeout().is_none());
    }
}
