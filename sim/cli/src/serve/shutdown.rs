//! Graceful shutdown: SIGINT or SIGTERM starts it; everyone waiting on a [`Shutdown`] hears
//! it at once.

use tokio::sync::watch;

/// A shutdown signal that many tasks can wait on.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Starts the shutdown of every [`Shutdown`] made from it.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

/// A new trigger and its signal.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    /// Starts the shutdown (again: harmless).
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// Resolves once the shutdown has started (at once if it already has). A dropped trigger
    /// counts as a shutdown.
    pub async fn wait(mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    /// Whether the shutdown has started.
    pub fn started(&self) -> bool {
        *self.rx.borrow()
    }
}

/// Resolves on the first SIGINT or SIGTERM, with the signal's name.
pub async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    })
}
