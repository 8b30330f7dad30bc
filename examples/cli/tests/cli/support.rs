//! Test support: a platform started in this process (the `faas-platform` library on
//! 127.0.0.1:0 with the memory store, the in-process bus and local Node.js/Python processes),
//! and the built `faas` binary run against it with its own HOME and properties file.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use faas_platform::config::StandaloneConfig;
use faas_platform::standalone::{self, Adapters, Running};
use serde_json::Value;

/// OpenWhisk's well-known guest key.
pub const GUEST: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The longest any one `faas` run may take in a test.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A running platform.
pub struct Platform {
    running: Option<Running>,
    /// Where its API is served.
    pub addr: SocketAddr,
}

impl Platform {
    /// Starts a platform on a free loopback port with the guest key [`GUEST`].
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// As [`start`](Self::start), with the configuration changed by `change` first.
    pub async fn start_with(change: impl FnOnce(&mut StandaloneConfig)) -> Self {
        let mut config = StandaloneConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            guest_auth: Some(GUEST.to_string()),
            prewarm_nodejs: 0,
            ..StandaloneConfig::default()
        };
        change(&mut config);
        let running = tokio::time::timeout(
            Duration::from_secs(30),
            standalone::start(&config, &Adapters::default()),
        )
        .await
        .expect("the platform started in time")
        .expect("the platform started");
        let addr = running.addr;
        // Invokes are refused (503) until the controller has heard its invoker's first ping.
        tokio::time::timeout(Duration::from_secs(30), async {
            while !invokers_ready(addr).await {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the invoker became ready in time");
        Self {
            running: Some(running),
            addr,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn apihost(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the platform (bounded).
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), r.shutdown()).await;
        }
    }
}

/// Whether `GET /invokers/ready` answers 200 (every invoker healthy).
async fn invokers_ready(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = "GET /invokers/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    if stream.read_to_end(&mut answer).await.is_err() {
        return false;
    }
    answer.starts_with(b"HTTP/1.1 200")
}

/// What one `faas` run did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts failure with `code` and a single `error: ` line on stderr; returns that line.
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:#?}");
        assert!(
            lines[0].starts_with("error: "),
            "expected an error line: {self:#?}"
        );
        lines[0]
    }

    /// Stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// A home for `faas`: a temporary HOME, working directory and properties file.
pub struct Home {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Home {
    /// An empty home: no properties file at all.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("work")).expect("work dir");
        Self {
            dir,
            env: Vec::new(),
        }
    }

    /// A home whose `~/.wskprops` points at `platform` with the guest key.
    pub fn for_platform(platform: &Platform) -> Self {
        let home = Self::empty();
        home.write_props(&format!("APIHOST={}\nAUTH={GUEST}\n", platform.apihost()));
        home
    }

    /// The HOME directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The working directory `faas` runs in.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// `~/.wskprops`.
    pub fn wskprops(&self) -> PathBuf {
        self.dir.path().join(".wskprops")
    }

    /// Writes `~/.wskprops`.
    pub fn write_props(&self, text: &str) {
        std::fs::write(self.wskprops(), text).expect("write .wskprops");
    }

    /// Writes `name` in the working directory; returns its path.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.work().join(name);
        std::fs::write(&p, content).expect("write file");
        p
    }

    /// Sets an environment variable for every later run.
    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_faas"));
        cmd.args(args)
            .current_dir(self.work())
            .env("HOME", self.path())
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .env_remove("WSK_CONFIG_FILE")
            .env_remove("WHISK_AUTH")
            .env_remove("WHISK_APIHOST")
            .env_remove("WHISK_APIVERSION")
            .env_remove("WSK_CLI_DEBUG")
            .env_remove("XDG_CONFIG_HOME");
        for proxy in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(proxy);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `faas args...` to completion (bounded).
    pub async fn run(&self, args: &[&str]) -> Run {
        let child = self.command(args).spawn().expect("spawn faas");
        let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("faas {args:?} did not finish in {RUN_LIMIT:?}"))
            .expect("faas ran");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts `faas args...` without waiting (for `activation poll`).
    pub fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        self.command(args).spawn().expect("spawn faas")
    }
}

/// Waits for a spawned `faas` (bounded) and collects what it printed.
pub async fn finish(child: tokio::process::Child, limit: Duration) -> Run {
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("faas finished in time")
        .expect("faas ran");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The activation id in `... with id <id>`.
pub fn id_in(text: &str) -> String {
    let id = text
        .split("with id ")
        .nth(1)
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_default();
    assert_eq!(id.len(), 32, "no activation id in {text:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    id
}

/// The Node.js action of OpenWhisk's walkthrough.
pub const DEMO_JS: &str = "function main(params) {\n  var name = params.name || 'World';\n  console.log('hello ' + name);\n  return { payload: 'Hello, ' + name + '!' };\n}\n";

/// A zip archive of `files`, stored (not compressed), as actions are uploaded.
pub fn zip(files: &[(&str, &str)]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xedb8_8320 & mask);
            }
        }
        !crc
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, content) in files {
        let offset = out.len() as u32;
        let crc = crc32(content.as_bytes());
        let size = content.len() as u32;
        let name_len = name.len() as u16;
        // Local file header.
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes()); // version needed
        out.extend(0u16.to_le_bytes()); // flags
        out.extend(0u16.to_le_bytes()); // stored
        out.extend(0u32.to_le_bytes()); // time, date
        out.extend(crc.to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend(name_len.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(content.as_bytes());
        // Central directory entry.
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // made by
        central.extend(20u16.to_le_bytes()); // needed
        central.extend(0u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0u32.to_le_bytes());
        central.extend(crc.to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend(name_len.to_le_bytes());
        central.extend([0u8; 6]); // extra and comment lengths, disk number
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(0u32.to_le_bytes()); // external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    let n = files.len() as u16;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}
