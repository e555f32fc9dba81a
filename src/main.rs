//! The `factord` binary: parse the command line, run it, map the outcome to an exit code.
//! Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use factord::cli::{Cli, execute};

fn main() -> ExitCode {
    // One TLS provider for every crate (see CRATES.md): installed before anything connects.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        match execute(cli, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprint!("error: {error}");
                if !error.to_string().ends_with('\n') {
                    eprintln!();
                }
                ExitCode::from(error.exit_code())
            }
        }
    })
}

/// Cancels `shutdown` on SIGTERM (systemd stop) or SIGINT (Ctrl-C). SIGHUP (what
/// `systemctl reload` sends) must not kill the daemon: live reload is not built yet, so it
/// only says so.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("cannot listen for SIGTERM/SIGINT/SIGHUP");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::warn!("SIGHUP: live reload is not supported yet; restart factord to apply configuration changes");
            }
        }
    }
    shutdown.cancel();
}
