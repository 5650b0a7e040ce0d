//! Network changes of an enterprise mid-call (**beyond the seed**), as a [`Net`] decorator
//! switched by the fault schedule:
//!
//! - **NAT rebinding** ([`NetSwitch::rebind_nat`]): from the next datagram on, every UDP socket
//!   behind the switch sends from a new source port and the old one hears nothing more; the
//!   clients are not told (a NAT is invisible). One late datagram from the old mapping follows
//!   once the destination has answered on the new mapping (so the relay has surely moved to the
//!   new port, whatever the links' jitter did to the order): the last datagram the socket sent
//!   to that destination before the rebinding, sent again from the old port (a packet that was
//!   queued in the NAT, or a replay): the relay must refuse it (docs/protocol.md §2.3).
//! - **A VPN that blocks UDP** ([`NetSwitch::set_udp_blocked`]): UDP vanishes both ways, TCP
//!   goes on (the VPN carries only TCP).
//!
//! TCP passes untouched. turmoil pins a host's address, so the client *address* change is not
//! here: it is the client driver's ([`run_client_watching`](cloudproxy_node::nodes::client::run_client_watching)).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use cloudproxy_node::net::{Net, Udp};
use tokio::sync::Notify;

/// What the switch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeCounters {
    /// Sockets that moved to a new source port.
    pub rebinds: u64,
    /// Late datagrams sent from an old mapping after a rebinding.
    pub late_from_old_mapping: u64,
    /// Datagrams the VPN dropped (both ways).
    pub udp_dropped_by_vpn: u64,
}

/// The switch of one enterprise's network changes, shared by the fault schedule and the
/// enterprise's sockets.
#[derive(Debug, Default)]
pub struct NetSwitch {
    nat_generation: Cell<u32>,
    udp_blocked: Cell<bool>,
    notify: Notify,
    counters: RefCell<ChangeCounters>,
}

impl NetSwitch {
    /// The NAT rebinds every mapping: each socket moves to a new source port.
    pub fn rebind_nat(&self) {
        self.nat_generation
            .set(self.nat_generation.get().wrapping_add(1));
        self.notify.notify_waiters();
    }

    /// A VPN comes up that blocks UDP (`true`), or goes down (`false`).
    pub fn set_udp_blocked(&self, blocked: bool) {
        self.udp_blocked.set(blocked);
    }

    /// What it did so far.
    pub fn counters(&self) -> ChangeCounters {
        self.counters.borrow().clone()
    }
}

/// `inner`, changed by a [`NetSwitch`].
#[derive(Clone)]
pub struct Changing<N> {
    inner: N,
    switch: Rc<NetSwitch>,
}

impl<N: Net> Changing<N> {
    /// `inner` as `switch` changes it.
    pub fn new(inner: N, switch: Rc<NetSwitch>) -> Self {
        Changing { inner, switch }
    }
}

impl<N: Net> Net for Changing<N> {
    type Stream = N::Stream;
    type Listener = N::Listener;
    type Udp = ChangingUdp<N>;

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        self.inner.connect(to).await
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<Self::Listener> {
        self.inner.listen(at).await
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<Self::Udp> {
        Ok(ChangingUdp {
            socket: RefCell::new(Rc::new(self.inner.bind_udp(at).await?)),
            generation: Cell::new(self.switch.nat_generation.get()),
            net: self.inner.clone(),
            at,
            switch: self.switch.clone(),
            last_sent: RefCell::new(None),
            old: RefCell::new(None),
        })
    }

    async fn resolve(&self, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        self.inner.resolve(name).await
    }

    fn now(&self) -> cloudproxy_core::time::Instant {
        self.inner.now()
    }

    fn unix_now(&self) -> cloudproxy_core::time::UnixTime {
        self.inner.unix_now()
    }
}

/// The old mapping after a rebinding: its socket and the datagram it sends late.
type OldMapping<U> = (Rc<U>, SocketAddr, Vec<u8>);

/// A UDP socket behind the switch.
pub struct ChangingUdp<N: Net> {
    socket: RefCell<Rc<N::Udp>>,
    /// The NAT generation `socket` belongs to.
    generation: Cell<u32>,
    net: N,
    at: SocketAddr,
    switch: Rc<NetSwitch>,
    /// The last datagram sent, and where to.
    last_sent: RefCell<Option<(SocketAddr, Vec<u8>)>>,
    /// The mapping before the latest rebinding, until its late datagram is sent.
    old: RefCell<Option<OldMapping<N::Udp>>>,
}

impl<N: Net> ChangingUdp<N> {
    /// The socket of the current NAT generation (a new one after a rebinding).
    async fn current(&self) -> io::Result<Rc<N::Udp>> {
        let generation = self.switch.nat_generation.get();
        if self.generation.get() != generation {
            // Set first: a concurrent caller uses the socket bound below, never binds twice.
            self.generation.set(generation);
            let fresh = Rc::new(self.net.bind_udp(self.at).await?);
            let old = self.socket.replace(fresh);
            if let Some((to, data)) = self.last_sent.borrow_mut().take() {
                *self.old.borrow_mut() = Some((old, to, data));
            }
            self.switch.counters.borrow_mut().rebinds += 1;
        }
        Ok(self.socket.borrow().clone())
    }
}

impl<N: Net> ChangingUdp<N> {
    /// `from` answered on the new mapping: it has moved to the new port, so the old mapping's
    /// late datagram to it (if one is pending) is sent now, from the old port.
    async fn send_late_from_old_mapping(&self, from: SocketAddr) {
        let late = {
            let mut old = self.old.borrow_mut();
            match old.as_ref() {
                Some((_, dest, _)) if *dest == from => old.take(),
                _ => None,
            }
        };
        if let Some((old, dest, data)) = late {
            self.switch.counters.borrow_mut().late_from_old_mapping += 1;
            let _ = old.send_to(&data, dest).await;
        }
    }
}

impl<N: Net> Udp for ChangingUdp<N> {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        if self.switch.udp_blocked.get() {
            self.switch.counters.borrow_mut().udp_dropped_by_vpn += 1;
            return Ok(()); // UDP gives no sign of loss
        }
        let socket = self.current().await?;
        socket.send_to(data, to).await?;
        *self.last_sent.borrow_mut() = Some((to, data.to_vec()));
        Ok(())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let socket = self.current().await?;
            let rebound = self.switch.notify.notified();
            tokio::select! {
                biased;
                () = rebound => continue,
                got = socket.recv_from(buf) => {
                    let got = got?;
                    if self.switch.udp_blocked.get() {
                        self.switch.counters.borrow_mut().udp_dropped_by_vpn += 1;
                        continue;
                    }
                    self.send_late_from_old_mapping(got.1).await;
                    return Ok(got);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.borrow().local_addr()
    }
}
