//! Spliced tunnels: once the relay hands a tunnel over (`RelayOutput::Splice`), the world plays
//! the relay's driver and moves the tunnel's bytes between its two connections itself,
//! reporting each move to the machine at once (`RelayInput::TunnelActivity`), as the real
//! driver reports them at most once per interval.

use cloudproxy_core::relay::{ClientConn, RelayInput, UpstreamConn};

use super::net::{End, EndEvent};
use super::World;

impl World {
    /// Whether a relay's client connection `id` is a spliced tunnel's.
    pub(super) fn is_spliced_client(&self, r: usize, id: u64) -> bool {
        self.relays[r].spliced.contains_key(&id)
    }

    /// Whether a relay's upstream connection `id` is a spliced tunnel's.
    pub(super) fn is_spliced_upstream(&self, r: usize, id: u64) -> bool {
        self.relays[r].spliced_up.contains_key(&id)
    }

    /// Records a tunnel the relay handed over.
    pub(super) fn splice(&mut self, r: usize, client: u64, upstream: u64) {
        self.relays[r].spliced.insert(client, upstream);
        self.relays[r].spliced_up.insert(upstream, client);
    }

    /// Forgets a spliced tunnel (one of its sides closed).
    pub(super) fn unsplice(&mut self, r: usize, client: u64) {
        if let Some(up) = self.relays[r].spliced.remove(&client) {
            self.relays[r].spliced_up.remove(&up);
        }
    }

    /// What happened on the client side of a spliced tunnel.
    pub(super) fn on_spliced_client(&mut self, r: usize, id: u64, event: EndEvent) {
        let (now, conn) = (self.now, ClientConn(id));
        let Some(up) = self.relays[r].spliced.get(&id).copied() else {
            return;
        };
        let input = match event {
            EndEvent::Data(data) => {
                let bytes_up = data.len() as u64;
                self.tcp_send(End::RelayUp(r, up), data);
                RelayInput::TunnelActivity {
                    client: conn,
                    bytes_up,
                    bytes_down: 0,
                }
            }
            EndEvent::Closed => {
                self.unsplice(r, id);
                RelayInput::TcpClosed { conn }
            }
            EndEvent::Connected | EndEvent::Failed => return,
        };
        self.relays[r].machine.handle_input(input, now);
        self.drain_relay(r);
    }

    /// What happened on the upstream side of a spliced tunnel.
    pub(super) fn on_spliced_upstream(&mut self, r: usize, id: u64, event: EndEvent) {
        let now = self.now;
        let Some(client) = self.relays[r].spliced_up.get(&id).copied() else {
            return;
        };
        let input = match event {
            EndEvent::Data(data) => {
                let bytes_down = data.len() as u64;
                self.tcp_send(End::RelayIn(r, client), data);
                RelayInput::TunnelActivity {
                    client: ClientConn(client),
                    bytes_up: 0,
                    bytes_down,
                }
            }
            EndEvent::Closed | EndEvent::Failed => {
                self.unsplice(r, client);
                RelayInput::UpstreamClosed {
                    conn: UpstreamConn(id),
                }
            }
            EndEvent::Connected => return,
        };
        self.relays[r].machine.handle_input(input, now);
        self.drain_relay(r);
    }
}
