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
    /// `{"op":"disk-attach","disk":{…}}`: serve a new virtual disk (the
    /// disk in libxl's JSON form, as in `config.json`'s `disks`).
    DiskAttach {
        /// The disk.
        disk: xl_config::DiskConfig,
    },
    /// `{"op":"disk-detach","devid":N,"mode":"safe"|"auto"|"force"}`: stop
    /// serving a virtual disk.
    DiskDetach {
        /// Its device number.
        devid: u32,
        /// How to treat a guest that does not let go.
        #[serde(default)]
        mode: DetachMode,
    },
    /// `{"op":"nic-attach","nic":{…}}`: serve a new network interface (the
    /// NIC in libxl's JSON form, its `devid` and `mac` chosen).
    NicAttach {
        /// The interface.
        nic: xl_config::NicConfig,
    },
    /// `{"op":"nic-detach","devid":N,"mode":…}`: remove a network interface.
    NicDetach {
        /// Its device number.
        devid: u32,
        /// How to treat a guest that does not let go.
        #[serde(default)]
        mode: DetachMode,
    },
    /// `{"op":"cd-insert","disk":{…}}`: put a medium in the removable drive
    /// `disk.vdev` (`pdev_path`, `format` say which).
    CdInsert {
        /// The drive and its new medium.
        disk: xl_config::DiskConfig,
    },
    /// `{"op":"cd-eject","devid":N}`: empty a removable drive.
    CdEject {
        /// The drive's device number.
        devid: u32,
    },
}

/// How a detach treats a guest that does not close its side of the device
/// within [`crate::devices::DETACH_TIMEOUT`] (libxl's `force` flag).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DetachMode {
    /// Fail, leaving the device as it was (`xl block-detach`,
    /// `libxl_device_disk_safe_remove`).
    Safe,
    /// Remove it anyway once the time is up (`xl network-detach`,
    /// libxl's `*_remove`).
    #[default]
    Auto,
    /// Remove it at once, without waiting for the guest
    /// (`xl block-detach --force`, libxl's `*_destroy`).
    Force,
}

impl Request {
    /// Whether the request adds, removes or changes a device: those may
    /// wait on the guest, so they are carried out away from the I/O thread.
    pub fn is_device_op(&self) -> bool {
        matches!(
            self,
            Request::DiskAttach { .. }
                | Request::DiskDetach { .. }
                | Request::NicAttach { .. }
                | Request::NicDetach { .. }
                | Request::CdInsert { .. }
                | Request::CdEject { .. }
        )
    }
}

/// The ops [`parse`] knows.
const OPS: &[&str] = &[
    "info",
    "pause",
    "unpause",
    "vcpu-pin",
    "destroy",
    "disk-attach",
    "disk-detach",
    "nic-attach",
    "nic-detach",
    "cd-insert",
    "cd-eject",
];

/// Parse one request line.
pub fn parse(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim()).map_err(|e| {
        // Name the op when it is the op that is unknown.
        match serde_json::from_str::<serde_json::Value>(line.trim())
            .ok()
            .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_owned))
        {
            Some(op) if !OPS.contains(&op.as_str()) => {
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

/// The reply to a detach: `{"ok":true,"forced":…}`, `forced` when the
/// guest had not closed its side and the device was removed anyway.
pub fn detached(forced: bool) -> String {
    let mut s = serde_json::json!({ "ok": true, "forced": forced }).to_string();
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
    fn device_requests() {
        let r = parse(
            r#"{"op":"disk-attach","disk":{"pdev_path":"/i/b.img","vdev":"xvdb","format":"raw","readwrite":1}}"#,
        )
        .unwrap();
        let Request::DiskAttach { disk } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(disk.vdev.as_deref(), Some("xvdb"));
        assert_eq!(disk.pdev_path.as_deref(), Some("/i/b.img"));
        assert_eq!(disk.format, xl_config::DiskFormat::Raw);
        assert_eq!(disk.readwrite, 1);
        assert!(r.is_device_op());
        assert_eq!(
            parse(r#"{"op":"disk-detach","devid":51728}"#),
            Ok(Request::DiskDetach {
                devid: 51728,
                mode: DetachMode::Auto
            })
        );
        assert_eq!(
            parse(r#"{"op":"disk-detach","devid":51728,"mode":"safe"}"#),
            Ok(Request::DiskDetach {
                devid: 51728,
                mode: DetachMode::Safe
            })
        );
        assert_eq!(
            parse(r#"{"op":"nic-detach","devid":2,"mode":"force"}"#),
            Ok(Request::NicDetach {
                devid: 2,
                mode: DetachMode::Force
            })
        );
        let r = parse(
            r#"{"op":"nic-attach","nic":{"devid":1,"mac":"00:16:3e:01:02:03","bridge":"br0"}}"#,
        )
        .unwrap();
        let Request::NicAttach { nic } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(nic.devid, 1);
        assert_eq!(nic.mac.unwrap().to_string(), "00:16:3e:01:02:03");
        assert_eq!(
            parse(r#"{"op":"cd-eject","devid":5632}"#),
            Ok(Request::CdEject { devid: 5632 })
        );
        assert!(matches!(
            parse(r#"{"op":"cd-insert","disk":{"vdev":"hdc","pdev_path":"/x.iso"}}"#),
            Ok(Request::CdInsert { .. })
        ));
        assert!(!Request::Info.is_device_op());
        // Bad shapes are refused with a reason, unknown modes too.
        for bad in [
            r#"{"op":"disk-detach"}"#,
            r#"{"op":"disk-detach","devid":-1}"#,
            r#"{"op":"disk-detach","devid":1,"mode":"gentle"}"#,
            r#"{"op":"disk-attach"}"#,
            r#"{"op":"nic-attach","nic":{"mac":"zz"}}"#,
            r#"{"op":"cd-eject","devid":"hdc"}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with("bad request"), "{bad}: {e}");
        }
        let d = detached(true);
        assert!(d.ends_with('\n') && d.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v, serde_json::json!({"ok": true, "forced": true}));
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
