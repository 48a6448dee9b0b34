//! Start-up: malloc arenas limited (`allocator`) → flags → logging → the
//! soft open-files limit raised to the hard one → collectors → HTTP server,
//! and a clean exit.
//!
//! Two runtimes: the collectors' (two workers) and the server's (the main
//! thread alone, `serving_runtime`). A collector round that computes for a
//! few milliseconds (300 units, 1,000 processes, encoding a snapshot) then
//! never sits in front of a scrape; bcrypt runs on the server's blocking
//! pool.
//!
//! Exit codes: 0 after SIGTERM/SIGINT, 2 for bad flags (clap prints the flag
//! and the problem) or a bad `--web.config.file` (checked before anything
//! starts), 1 for anything else fatal (e.g. the port is taken). `diagnose`
//! exits 0 when it found nothing critical or warning, 3 when it did.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use node_sentinel::config::{Cli, Command, LogFormat};
use node_sentinel::scheduler::Scheduler;
use node_sentinel::web_config::WebConfig;
use node_sentinel::{collectors, diagnose, http, panics};

fn main() -> ExitCode {
    node_sentinel::allocator::limit_arenas();
    let cli = Cli::parse();
    init_logging(&cli);
    panics::install_hook();
    raise_fd_limit();
    let web = match cli.web.config_file.as_deref().map(WebConfig::load) {
        None => WebConfig::default(),
        Some(Ok(web)) => web,
        Some(Err(e)) => {
            eprintln!("node-sentinel: {e}");
            return ExitCode::from(2);
        }
    };
    let collecting = match collecting_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    if let Some(Command::Diagnose { watch }) = cli.command {
        let (report, serious) = collecting.block_on(diagnose::run(&cli, watch));
        collecting.shutdown_timeout(Duration::from_secs(1));
        print!("{report}");
        return ExitCode::from(if serious { 3 } else { 0 });
    }
    let serving = match serving_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = serving.block_on(run(cli, web, &collecting));
    // A blocking task stuck in the kernel (a hung mount) must not hold up exit.
    collecting.shutdown_timeout(Duration::from_secs(1));
    serving.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("node-sentinel: {message}");
            ExitCode::from(1)
        }
    }
}

/// The collectors' runtime: two workers, so one collector computing never
/// holds up the others' timers.
fn collecting_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).thread_name("sentinel");
    build(builder)
}

/// The server's runtime: the main thread alone accepts, reads, and writes
/// every connection. A scrape then costs no wake-up of another thread
/// (each one a futex call and, on a VM, an inter-processor interrupt);
/// bcrypt still runs on this runtime's blocking pool.
fn serving_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.thread_name("sentinel-http");
    build(builder)
}

fn build(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("node-sentinel: cannot start the async runtime: {e}");
        ExitCode::from(1)
    })
}

fn init_logging(cli: &Cli) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(cli.log.level)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colours only for a person at a terminal, never into journald or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Raise the soft open-files limit to the hard one. systemd gives services a
/// soft 1024; every connection, Docker call and `/proc` read needs an fd, and
/// the connection caps in `http` assume a limit well above theirs.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!(soft = ?limit.maximum, "raised the open-files limit"),
        Err(e) => tracing::warn!(
            soft = ?limit.current,
            error = %e,
            "cannot raise the open-files limit; connection floods may exhaust it"
        ),
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        // ":PORT" asks for every interface; on a host without IPv6 that is 0.0.0.0.
        Err(_) if addr.ip().is_unspecified() && addr.is_ipv6() => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            tokio::net::TcpListener::bind(v4)
                .await
                .map_err(|e| listen_error(v4, e))
        }
        Err(e) => Err(listen_error(addr, e)),
    }
}

fn listen_error(addr: SocketAddr, e: std::io::Error) -> String {
    format!("cannot listen on {addr} (--web.listen-address): {e}")
}

async fn run(cli: Cli, web: WebConfig, collecting: &tokio::runtime::Runtime) -> Result<(), String> {
    let listener = bind(cli.web.listen_address).await?;
    let mut scheduler = {
        // Collector tasks are spawned onto their own runtime; the guard ends
        // here, before the server spawns its connections.
        let _collecting = collecting.enter();
        tokio::spawn(node_sentinel::allocator::trim_periodically());
        let mut scheduler = Scheduler::new();
        collectors::start(&cli.collectors, &cli.paths, &mut scheduler);
        scheduler
    };
    let store = scheduler.store();
    let app = http::router(http::AppState::new(
        store,
        &cli.web.telemetry_path,
        cli.web.max_requests,
    ));
    let app = http::with_web_config(app, &web);
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        address = %local,
        path = %cli.web.telemetry_path,
        tls = web.tls.is_some(),
        basic_auth = web.basic_auth.is_some(),
        version = node_sentinel::build_info::VERSION,
        "listening"
    );
    http::serve(listener, app, web.tls.clone(), shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    tracing::info!("shut down");
    drop(scheduler);
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}
