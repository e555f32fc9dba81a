//! A PostgreSQL cluster of the test's own, so that the test may restart the server under a
//! running daemon: `initdb` into a temp folder owned by the `postgres` user (when the tests run
//! as root, which initdb refuses; else by the user running them), `pg_ctl start` on a
//! free port of 127.0.0.1 (trust authentication, loopback only), `pg_ctl restart` on demand, and
//! `pg_ctl stop` when the guard is dropped, also when the test panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    pub port: u16,
    /// Dropped after the server is stopped (fields drop after `Drop::drop`).
    _dir: tempfile::TempDir,
}

/// The newest installed PostgreSQL's `bin` folder (`/usr/lib/postgresql/<major>/bin`).
fn postgres_bin() -> PathBuf {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (initdb, pg_ctl)")
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    majors.sort();
    majors.pop().expect("an initdb under /usr/lib/postgresql/*/bin").1
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program`, run as the `postgres` user when the tests run as root (initdb refuses root).
fn server_command(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn as_postgres(program: &Path, args: &[&str]) -> Output {
    let output = server_command(program).args(args).output().expect("run a PostgreSQL program");
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl Cluster {
    /// A new cluster, started and accepting connections.
    pub fn start() -> Cluster {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        if running_as_root() {
            let status = Command::new("chown").arg("postgres").arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown postgres {}", dir.path().display());
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        as_postgres(&bin.join("initdb"), &["-A", "trust", "-U", "postgres", "-D", &*data.to_string_lossy()]);
        let cluster = Cluster { bin, data, log, port, _dir: dir };
        let options = format!(
            "-p {port} -k {socket} -c listen_addresses=127.0.0.1 -c fsync=off",
            socket = cluster._dir.path().display()
        );
        cluster.pg_ctl(&["-o", &options, "-w", "start"]);
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl restart -m fast`: every connection is closed, the server comes back on the same
    /// port with the same options.
    pub fn restart(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "restart"]);
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let (data, log) = (self.data.to_string_lossy(), self.log.to_string_lossy());
        let mut all: Vec<&str> = vec!["-D", &*data, "-l", &*log];
        all.extend_from_slice(args);
        as_postgres(&self.bin.join("pg_ctl"), &all)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // No assert here: a panic while panicking aborts the test binary.
        let _ = server_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
