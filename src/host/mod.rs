//! The host layer: how the exporter sees the node it runs on, wherever it
//! runs (on the host, in a DaemonSet container with the host root mounted
//! read-only and a /run of its own, under a hardened systemd unit).
//! Collectors reach the host only through this module:
//! - [`paths`]: where procfs and the host root are, and how a host path
//!   becomes one we can open ([`Paths::host`] for mountpoints,
//!   [`Paths::resolve`] for every other host path);
//! - [`mounts`]: the host's mount table, read-only-ness from the host's
//!   options, and which mount holds a device's space;
//! - [`procfs`]: the one reader of `/proc/PID/stat`, `comm` and `btime`.

pub mod mounts;
pub mod paths;
pub mod procfs;

pub use paths::Paths;
