//! The host layer: how the exporter sees the node it runs on, wherever it
//! runs (on the host, in a DaemonSet container with the host root mounted
//! read-only and a /run of its own, under a hardened systemd unit).
//! Collectors reach the host only through this module:
//! - [`paths`]: where procfs and the host root are, and how a host path
//!   becomes one we can open ([`Paths::host`] for mountpoints,
//!   [`Paths::resolve`] for every other host path);
//! - [`mounts`]: the host's mount table, read-only-ness from the host's
//!   options, and which mount holds a device's space;
//! - [`procfs`]: the one reader of `/proc/PID/stat`, `comm` and `btime`;
//! - [`offload`]: the one way blocking host calls leave the async runtime
//!   (single-flight per key, at most one stuck thread per key);
//! - [`statfs`]: statvfs and the mount-table read on offload, keyed by mount
//!   identity.

pub mod mounts;
pub mod offload;
pub mod paths;
pub mod procfs;
pub mod statfs;

pub use paths::Paths;
