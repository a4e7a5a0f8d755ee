//! The demo's child processes: `veil board`, `veil relay` and `veil sidecar`, each a process of
//! this same binary, killed if the demo ends early, with their logs in the demo's directory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DemoError;

/// A child process, killed when dropped unless it was stopped.
#[derive(Debug)]
pub(crate) struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    /// Starts `veil ARGS...` (this same binary) with stderr to `dir/NAME.log`; stdout is piped
    /// when `read_stdout`.
    pub(crate) fn spawn(
        dir: &Path,
        name: &str,
        args: &[String],
        read_stdout: bool,
    ) -> Result<Self, DemoError> {
        let exe = std::env::current_exe().map_err(|e| DemoError::Spawn(name.to_owned(), e))?;
        Self::spawn_program(&exe, dir, name, args, read_stdout)
    }

    /// As [`Proc::spawn`], running `program` (the soak runs the `veil` binary beside it). The
    /// log is appended to, so a restarted process keeps its predecessor's log.
    pub(crate) fn spawn_program(
        program: &Path,
        dir: &Path,
        name: &str,
        args: &[String],
        read_stdout: bool,
    ) -> Result<Self, DemoError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))
            .map_err(|e| DemoError::Spawn(name.to_owned(), e))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(if read_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| DemoError::Spawn(name.to_owned(), e))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    /// The first stdout line that contains `marker`, read from the child's piped stdout; the
    /// word after the marker parsed as an address.
    pub(crate) fn address_after(&mut self, marker: &str) -> Result<SocketAddr, DemoError> {
        let stdout = self
            .child
            .stdout
            .take()
            .ok_or_else(|| DemoError::Startup(self.name.clone()))?;
        let mut lines = BufReader::new(stdout).lines();
        let found = lines.by_ref().map_while(Result::ok).find_map(|line| {
            let (_, after) = line.split_once(marker)?;
            after.split_whitespace().next()?.parse().ok()
        });
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        found.ok_or_else(|| DemoError::Startup(self.name.clone()))
    }

    /// The child's process ID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (up to `limit`) for the exit; true if it exited 0.
    pub(crate) fn stop(mut self, limit: Duration) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and released; nothing else on loopback takes it soon).
pub(crate) fn free_udp() -> Result<SocketAddr, DemoError> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(DemoError::Io)
}

/// A free loopback TCP port.
pub(crate) fn free_tcp() -> Result<SocketAddr, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(DemoError::Io)
}

/// `GET /status` of a sidecar's admin endpoint, as JSON.
pub(crate) fn status(admin: SocketAddr) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET /status HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

/// A fresh directory for the children's logs.
pub(crate) fn log_dir() -> Result<PathBuf, DemoError> {
    named_log_dir("veil-demo")
}

/// A fresh directory `PREFIX-PID` in the temporary directory.
pub(crate) fn named_log_dir(prefix: &str) -> Result<PathBuf, DemoError> {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(DemoError::Io)?;
    Ok(dir)
}
