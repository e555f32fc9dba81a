//! The `factord` binary: parse the command line, run it, map the outcome to an exit code.
//! Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use factord::cli::{Cli, execute};
use factord::daemon::Reloads;

fn main() -> ExitCode {
    // One TLS provider for every crate (see docs/crates.md): installed before anything connects.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            factord::cli::err_line(format_args!("error: cannot start the runtime: {error}"));
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let reloads = Reloads::default();
        tokio::spawn(on_signals(shutdown.clone(), reloads.clone()));
        match execute(cli, shutdown, reloads).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                // A closed stderr (`factord … 2>&1 | head`) loses the message, not the exit code.
                let text = error.to_string();
                factord::cli::err_line(format_args!("error: {}", text.strip_suffix('\n').unwrap_or(&text)));
                ExitCode::from(error.exit_code())
            }
        }
    })
}

/// Cancels `shutdown` on SIGTERM (systemd stop) or SIGINT (Ctrl-C); asks `factord run` to
/// reload its configuration on SIGHUP (what `systemctl reload` sends after `check-config`
/// passed). Other commands ignore SIGHUP.
async fn on_signals(shutdown: CancellationToken, reloads: Reloads) {
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
            _ = hup.recv() => reloads.signal.notify_one(),
        }
    }
    shutdown.cancel();
}
