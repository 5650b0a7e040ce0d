//! Helpers shared by the unit tests of this crate.

/// Insta settings that keep every snapshot of this crate in the workspace's `snapshots/core/`.
pub(crate) fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/core"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}
