//! Helpers shared by the unit tests of this crate.

/// Insta settings that keep every snapshot of this crate in the workspace's `snapshots/core/`.
pub(crate) fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/core"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// The wall clock at which the machines of this crate's tests start (2026-01-01T00:00:00Z):
/// years away from their monotonic clocks, which start near zero, so that a test that read
/// one clock for the other would fail.
pub(crate) const TEST_UNIX_EPOCH: crate::time::UnixTime =
    crate::time::UnixTime::from_millis(1_767_225_600_000);
