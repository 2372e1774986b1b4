//! The control channel's protocol (`docs/domain-process.md`, "The control
//! channel"): one JSON request per line, one JSON reply per line. This
//! module parses requests and formats replies; [`crate::io`] serves the
//! socket and carries requests out.

use serde::{Deserialize, Serialize};

/// The longest request line accepted; a longer one closes the connection.
pub const MAX_REQUEST: usize = 64 * 1024;

/// A request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// `{"op":"info"}`.
    Info,
    /// `{"op":"pause"}`.
    Pause,
    /// `{"op":"unpause"}`.
    Unpause,
    /// `{"op":"vcpu-pin","vcpu":V,"cpus":[…]}`.
    VcpuPin {
        /// The vCPU.
        vcpu: u32,
        /// Host CPUs it may run on (empty: all).
        cpus: Vec<u32>,
    },
    /// `{"op":"destroy"}`.
    Destroy,
}

/// Parse one request line.
pub fn parse(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim()).map_err(|e| {
        // Name the op when it is the op that is unknown.
        match serde_json::from_str::<serde_json::Value>(line.trim())
            .ok()
            .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_owned))
        {
            Some(op)
                if !matches!(
                    op.as_str(),
                    "info" | "pause" | "unpause" | "vcpu-pin" | "destroy"
                ) =>
            {
                format!("unknown op {op:?}")
            }
            _ => format!("bad request: {e}"),
        }
    })
}

/// One vCPU in an `info` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VcpuInfo {
    /// Its index.
    pub id: u32,
    /// Whether the guest has started it.
    pub online: bool,
    /// CPU time its thread has used.
    pub cpu_time_ns: u64,
    /// Host CPUs it may run on.
    pub affinity: Vec<u32>,
    /// The thread running it (rxen's addition: the toolstack reads the
    /// vCPU's current CPU from /proc).
    pub tid: i32,
}

/// The `info` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Info {
    /// Always true.
    pub ok: bool,
    /// `running`, `paused` or `shutdown`.
    pub state: &'static str,
    /// The shutdown reason once shut down.
    pub reason: Option<&'static str>,
    /// The vCPUs.
    pub vcpus: Vec<VcpuInfo>,
    /// Guest memory in KiB.
    pub memory_kib: u64,
    /// Process start, seconds since the epoch.
    pub start_time: u64,
}

/// `{"ok":true}`.
pub fn ok() -> String {
    "{\"ok\":true}\n".to_owned()
}

/// `{"ok":false,"error":…}`.
pub fn error(msg: &str) -> String {
    let mut s = serde_json::json!({ "ok": false, "error": msg }).to_string();
    s.push('\n');
    s
}

/// The `info` reply line.
pub fn info(i: &Info) -> String {
    let mut s = serde_json::to_string(i).expect("plain data serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse("{\"op\":\"info\"}\n"), Ok(Request::Info));
        assert_eq!(parse(" {\"op\":\"pause\"} "), Ok(Request::Pause));
        assert_eq!(parse("{\"op\":\"unpause\"}"), Ok(Request::Unpause));
        assert_eq!(parse("{\"op\":\"destroy\"}"), Ok(Request::Destroy));
        assert_eq!(
            parse("{\"op\":\"vcpu-pin\",\"vcpu\":1,\"cpus\":[0,3]}"),
            Ok(Request::VcpuPin {
                vcpu: 1,
                cpus: vec![0, 3]
            })
        );
        assert_eq!(
            parse("{\"op\":\"reboot\"}"),
            Err("unknown op \"reboot\"".into())
        );
        assert!(parse("{\"op\":\"vcpu-pin\",\"vcpu\":-1,\"cpus\":[]}").is_err());
        assert!(parse("{\"op\":\"vcpu-pin\"}").is_err());
        assert!(parse("not json").unwrap_err().starts_with("bad request"));
        assert!(parse("").is_err());
    }

    #[test]
    fn replies_are_one_json_line() {
        assert_eq!(ok(), "{\"ok\":true}\n");
        let e = error("no \"such\" thing");
        assert!(e.ends_with('\n') && e.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"], "no \"such\" thing");
        let i = info(&Info {
            ok: true,
            state: "shutdown",
            reason: Some("poweroff"),
            vcpus: vec![VcpuInfo {
                id: 0,
                online: true,
                cpu_time_ns: 5,
                affinity: vec![0, 1],
                tid: 42,
            }],
            memory_kib: 262144,
            start_time: 1,
        });
        let v: serde_json::Value = serde_json::from_str(&i).unwrap();
        assert_eq!(v["state"], "shutdown");
        assert_eq!(v["reason"], "poweroff");
        assert_eq!(v["vcpus"][0]["affinity"][1], 1);
        assert_eq!(v["memory_kib"], 262144);
        let running = info(&Info {
            ok: true,
            state: "running",
            reason: None,
            vcpus: vec![],
            memory_kib: 1,
            start_time: 1,
        });
        assert!(running.contains("\"reason\":null"));
    }
}
