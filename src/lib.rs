//! node-sentinel: a Prometheus exporter that sees Kubernetes/Docker node
//! outages coming. See README.md for the why; `collector` for the shape.

pub mod allocator;
pub mod build_info;
pub mod collector;
pub mod collectors;
pub mod config;
pub mod diagnose;
pub mod findings;
pub mod host;
pub mod http;
pub mod metrics;
pub mod panics;
pub mod scheduler;
pub mod store;
pub mod trend;
pub mod values;
pub mod web_config;
