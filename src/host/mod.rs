//! The host layer: how the exporter sees the node it runs on, wherever it
//! runs (on the host, in a DaemonSet container with the host root mounted
//! read-only, under a hardened systemd unit). Collectors reach the host only
//! through this module.

pub mod mounts;
pub mod offload;
pub mod paths;
pub mod statfs;

pub use paths::Paths;
