//! What this binary is: version, git revision, compiler.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("SENTINEL_REVISION");
pub const RUSTC: &str = env!("SENTINEL_RUSTC");
/// The `--version` line after the program name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("SENTINEL_REVISION"),
    ", rustc ",
    env!("SENTINEL_RUSTC"),
    ")"
);
