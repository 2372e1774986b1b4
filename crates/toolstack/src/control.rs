//! The domain process's control channel (`docs/domain-process.md`, "The control
//! channel"): one JSON request per line on `<runtime dir>/control`, one JSON reply per
//! line.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

/// How long a reply may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A control request failed.
#[derive(Debug, Error)]
pub enum ControlError {
    /// Nothing listens on the socket (the process is not up, or gone).
    #[error("cannot connect to {}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The exchange broke off.
    #[error("talking to the domain process")]
    Io(#[source] io::Error),
    /// The reply is not the JSON the contract describes.
    #[error("the domain process sent a reply that is not valid: {text:?}")]
    Reply {
        text: String,
        #[source]
        source: serde_json::Error,
    },
    /// The domain process refused the request.
    #[error("the domain process refused {op}: {message}")]
    Refused { op: String, message: String },
}

/// One vCPU, as `info` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuInfo {
    /// The vCPU number.
    pub id: u32,
    /// Whether it is online.
    pub online: bool,
    /// CPU time it has used.
    #[serde(default)]
    pub cpu_time_ns: u64,
    /// The host CPUs it may run on.
    #[serde(default)]
    pub affinity: Vec<u32>,
    /// The thread running it, if the domain process says (rxen's addition to the
    /// contract: it lets the toolstack read the vCPU's current CPU and state in /proc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
}

/// The reply to `info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlInfo {
    /// `running`, `paused` or `shutdown`.
    pub state: String,
    /// The shutdown reason once shut down.
    #[serde(default)]
    pub reason: Option<String>,
    /// The vCPUs.
    #[serde(default)]
    pub vcpus: Vec<VcpuInfo>,
    /// Memory the domain has, in KiB.
    #[serde(default)]
    pub memory_kib: u64,
    /// When it started, in seconds since the epoch.
    #[serde(default)]
    pub start_time: u64,
}

/// How long a device request may take: a detach waits up to 10 s for the guest (libxl's
/// `LIBXL_DESTROY_TIMEOUT`), an attach runs the vif's hotplug step (40 s for a user's
/// script, libxl's `LIBXL_HOTPLUG_TIMEOUT`).
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends one request and returns the reply object (with `ok` true).
pub fn request(socket: &Path, req: &Value) -> Result<Value, ControlError> {
    request_timeout(socket, req, REPLY_TIMEOUT)
}

/// How a detach treats a guest that does not close its side in time (the contract's
/// `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetachMode {
    /// Fail and leave the device (`xl block-detach`).
    Safe,
    /// Remove it anyway (`xl network-detach`).
    Auto,
    /// Do not wait for the guest (`xl block-detach --force`).
    Force,
}

impl DetachMode {
    fn name(self) -> &'static str {
        match self {
            DetachMode::Safe => "safe",
            DetachMode::Auto => "auto",
            DetachMode::Force => "force",
        }
    }
}

/// `disk-attach`: serve a new disk (libxl's JSON form of it).
pub fn disk_attach(socket: &Path, disk: &xl_config::DiskConfig) -> Result<(), ControlError> {
    let req = json!({"op": "disk-attach", "disk": disk});
    request_timeout(socket, &req, DEVICE_TIMEOUT).map(|_| ())
}

/// `nic-attach`: serve a new network interface (devid and MAC chosen).
pub fn nic_attach(socket: &Path, nic: &xl_config::NicConfig) -> Result<(), ControlError> {
    let req = json!({"op": "nic-attach", "nic": nic});
    request_timeout(socket, &req, DEVICE_TIMEOUT).map(|_| ())
}

/// `disk-detach` (`kind` "disk") or `nic-detach` ("nic"); whether the device was removed
/// without the guest's consent.
pub fn detach(
    socket: &Path,
    kind: &str,
    devid: u32,
    mode: DetachMode,
) -> Result<bool, ControlError> {
    let req = json!({"op": format!("{kind}-detach"), "devid": devid, "mode": mode.name()});
    let v = request_timeout(socket, &req, DEVICE_TIMEOUT)?;
    Ok(v.get("forced").and_then(Value::as_bool).unwrap_or(false))
}

/// `cd-insert`: a new medium in a removable drive.
pub fn cd_insert(socket: &Path, disk: &xl_config::DiskConfig) -> Result<(), ControlError> {
    let req = json!({"op": "cd-insert", "disk": disk});
    request_timeout(socket, &req, DEVICE_TIMEOUT).map(|_| ())
}

/// `cd-eject`: empty a removable drive.
pub fn cd_eject(socket: &Path, devid: u32) -> Result<(), ControlError> {
    let req = json!({"op": "cd-eject", "devid": devid});
    request_timeout(socket, &req, DEVICE_TIMEOUT).map(|_| ())
}

/// [`request`], waiting up to `timeout` for the reply.
pub fn request_timeout(
    socket: &Path,
    req: &Value,
    timeout: Duration,
) -> Result<Value, ControlError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| ControlError::Connect {
        path: socket.to_owned(),
        source,
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(ControlError::Io)?;
    let mut line = serde_json::to_string(req).expect("JSON values serialize");
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(ControlError::Io)?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .map_err(ControlError::Io)?;
    if reply.is_empty() {
        return Err(ControlError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the domain process closed the control channel without replying",
        )));
    }
    let v: Value =
        serde_json::from_str(reply.trim_end()).map_err(|source| ControlError::Reply {
            text: reply.trim_end().to_owned(),
            source,
        })?;
    if v.get("ok") == Some(&Value::Bool(true)) {
        Ok(v)
    } else {
        let op = req
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let message = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no reason given")
            .to_owned();
        Err(ControlError::Refused { op, message })
    }
}

/// `info`.
pub fn info(socket: &Path) -> Result<ControlInfo, ControlError> {
    let v = request(socket, &json!({"op": "info"}))?;
    serde_json::from_value(v.clone()).map_err(|source| ControlError::Reply {
        text: v.to_string(),
        source,
    })
}

/// A request without arguments: `pause`, `unpause`, `destroy`.
pub fn simple(socket: &Path, op: &str) -> Result<(), ControlError> {
    request(socket, &json!({ "op": op })).map(|_| ())
}

/// `vcpu-pin`.
pub fn vcpu_pin(socket: &Path, vcpu: u32, cpus: &[u32]) -> Result<(), ControlError> {
    request(
        socket,
        &json!({"op": "vcpu-pin", "vcpu": vcpu, "cpus": cpus}),
    )
    .map(|_| ())
}
