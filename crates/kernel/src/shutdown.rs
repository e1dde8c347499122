//! A cloneable shutdown signal: the binary triggers it on Ctrl-C/SIGTERM and every server,
//! relay and consumer loop awaits it to stop cleanly.

use tokio::sync::watch;

/// Fires the signal; dropping it fires it too, so a crashed owner never strands its workers.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Resolves once the trigger fires. Clone one per task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger(sender), Shutdown(receiver))
}

impl ShutdownTrigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Waits for the signal (or for the trigger to be dropped).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn every_clone_sees_the_signal() {
        let (trigger, shutdown) = super::channel();
        let other = shutdown.clone();
        trigger.fire();
        shutdown.wait().await;
        other.wait().await;
    }

    #[tokio::test]
    async fn dropping_the_trigger_fires_it() {
        let (trigger, shutdown) = super::channel();
        drop(trigger);
        shutdown.wait().await;
    }
}
