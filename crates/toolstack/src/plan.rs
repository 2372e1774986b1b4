//! The domain model: what rxen will build for a configuration, and every way that differs
//! from what the configuration asks.
//!
//! A [`DomainPlan`] holds the effective [`DomainConfig`] (the one handed to the domain
//! process) and a list of [`Notice`]s, each tied to the `file:line` of the key it is
//! about:
//!
//! - [`NoticeKind::Adapted`]: rxen does it differently but to the same end. The one case
//!   today: rxen implements no PV guests, so `type="pv"` (also xl's default when no type
//!   is given) runs as PVH; the effective configuration says `pvh`.
//! - [`NoticeKind::NotHonoured`]: the setting is kept in the configuration but rxen will
//!   not act on it (no VNC server, no Xen scheduler parameters, ...).
//! - [`NoticeKind::Blocking`]: rxen cannot create this domain at all (an HVM guest,
//!   nothing to boot, a disk format it cannot serve, ...). `xl create -n` still prints
//!   the configuration; a real `xl create` refuses.
//!
//! What rxen honours is decided here, key by key, in one place.

use serde::{Deserialize, Serialize};
use xl_config::{
    Bitmap, CpuTopology, DiskFormat, DomainConfig, DomainType, Location, ParsedConfig,
    ShutdownAction, TscMode, TypeInfo,
};

/// How a notice affects the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NoticeKind {
    /// Done differently, to the same end.
    Adapted,
    /// Kept in the configuration, not acted on.
    NotHonoured,
    /// The domain cannot be created.
    Blocking,
}

/// One difference between what the configuration asks and what rxen will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Where the key is set.
    pub at: Location,
    /// The key (`vnc`, `disk`, ...).
    pub key: String,
    /// How it matters.
    pub kind: NoticeKind,
    /// What rxen does instead, and why.
    pub message: String,
}

/// What rxen will build for a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainPlan {
    /// The configuration the domain will be built from.
    pub config: DomainConfig,
    /// The guest type the configuration asked for.
    pub requested_type: DomainType,
    /// The differences, in the order of the configuration.
    pub notices: Vec<Notice>,
}

impl DomainPlan {
    /// Whether rxen can create the domain.
    pub fn can_create(&self) -> bool {
        !self.notices.iter().any(|n| n.kind == NoticeKind::Blocking)
    }

    /// Plans the domain for a parsed configuration on a host with `topology`.
    pub fn new(parsed: ParsedConfig, topology: &CpuTopology) -> Self {
        let ParsedConfig {
            mut config,
            sources,
            ignored,
        } = parsed;
        let requested_type = config.c_info.kind;
        let mut n = Notes {
            notices: Vec::new(),
            keys: &sources.keys,
            fallback: sources
                .keys
                .get("name")
                .cloned()
                .unwrap_or_else(|| Location::new(&sources.source_name, 1, 1).line_only()),
        };

        // The guest type.
        let type_key = ["type", "builder"]
            .into_iter()
            .find(|k| sources.keys.contains_key(*k));
        match requested_type {
            DomainType::Pv => {
                let msg = match type_key {
                    Some(k) => format!(
                        "{k}=\"{}\" will run as PVH: rxen implements no PV guests, so the kernel must support PVH boot",
                        if k == "type" { "pv" } else { "generic" }
                    ),
                    None => "no type= given, which xl takes as type=\"pv\"; rxen will run this guest as PVH (it implements no PV guests), so the kernel must support PVH boot".to_owned(),
                };
                n.add(type_key.unwrap_or("type"), NoticeKind::Adapted, msg);
                if let TypeInfo::Pv(pv) = &config.b_info.u {
                    if pv.e820_host == Some(true) {
                        n.add_each(&["e820_host"], NoticeKind::NotHonoured, "PVH guests get rxen's memory map, not the host's");
                    }
                }
                config.c_info.kind = DomainType::Pvh;
                config.b_info.u = TypeInfo::for_type(DomainType::Pvh);
            }
            DomainType::Hvm => n.add(
                type_key.unwrap_or("type"),
                NoticeKind::Blocking,
                "rxen cannot create HVM guests: they need a device model and firmware, and rxen runs PVH guests only".to_owned(),
            ),
            DomainType::Pvh | DomainType::Invalid => {}
        }

        // Something to boot.
        let b = &config.b_info;
        if b.bootloader.is_some() {
            n.add_each(
                &[
                    "bootloader",
                    "bootloader_args",
                    "bootloader_restrict",
                    "bootloader_user",
                ],
                NoticeKind::NotHonoured,
                "rxen runs no bootloader (pygrub); it boots the kernel= image directly",
            );
        }
        if sources.keys.contains_key("firmware") && requested_type != DomainType::Hvm {
            n.add("firmware", NoticeKind::Blocking, "pvgrub is a PV boot image and rxen runs PVH guests; give a PVH kernel with kernel=".to_owned());
        } else if b.kernel.is_none() && requested_type != DomainType::Hvm {
            let key = if sources.keys.contains_key("bootloader") {
                "bootloader"
            } else {
                "name"
            };
            n.add(
                key,
                NoticeKind::Blocking,
                "nothing to boot: rxen needs kernel= (it runs no bootloader)".to_owned(),
            );
        }

        n.cpus(&config, topology);
        n.actions(&config);
        n.per_key(&config, requested_type);
        n.devices(&config, &sources);

        for i in &ignored {
            n.notices.push(Notice {
                at: i.at.clone(),
                key: i.key.clone(),
                kind: NoticeKind::NotHonoured,
                message: format!(
                    "parameter `{}' will not be honoured: rxen does not support {}",
                    i.key, i.feature
                ),
            });
        }

        let main = sources.source_name.clone();
        let mut notices = n.notices;
        notices.sort_by(|a, b| {
            let key = |x: &Notice| (x.at.source != main, x.at.line, x.at.column.unwrap_or(0));
            key(a).cmp(&key(b))
        });
        DomainPlan {
            config,
            requested_type,
            notices,
        }
    }
}

struct Notes<'a> {
    notices: Vec<Notice>,
    keys: &'a std::collections::BTreeMap<String, Location>,
    fallback: Location,
}

const SCHEDULER: &str =
    "rxen's vCPUs are Linux threads scheduled by Linux; Xen scheduler parameters do not apply";
const DISPLAY: &str = "rxen has no graphical console (VNC, SDL or SPICE); use xl console";
const DEVICE_MODEL: &str = "rxen has no device model (QEMU)";

impl Notes<'_> {
    fn at(&self, key: &str) -> Location {
        self.keys
            .get(key)
            .cloned()
            .unwrap_or_else(|| self.fallback.clone())
    }

    fn add(&mut self, key: &str, kind: NoticeKind, message: String) {
        let at = self.at(key);
        self.notices.push(Notice {
            at,
            key: key.to_owned(),
            kind,
            message,
        });
    }

    /// "parameter `KEY' will not be honoured: REASON" for each of `keys` that is set.
    fn add_each(&mut self, keys: &[&str], kind: NoticeKind, reason: &str) {
        for key in keys {
            if self.keys.contains_key(*key) {
                let verb = if kind == NoticeKind::Blocking {
                    "cannot be honoured"
                } else {
                    "will not be honoured"
                };
                self.add(key, kind, format!("parameter `{key}' {verb}: {reason}"));
            }
        }
    }

    fn set(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    fn cpus(&mut self, c: &DomainConfig, topology: &CpuTopology) {
        for (key, maps) in [
            ("cpus", &c.b_info.vcpu_hard_affinity),
            ("cpus_soft", &c.b_info.vcpu_soft_affinity),
        ] {
            if maps.is_empty() {
                continue;
            }
            if key == "cpus_soft" {
                self.add_each(
                    &["cpus_soft"],
                    NoticeKind::NotHonoured,
                    "Linux has no soft CPU affinity; use cpus= to pin vCPUs",
                );
                continue;
            }
            let missing: Bitmap = Bitmap(
                maps.iter()
                    .flat_map(|m| m.iter())
                    .filter(|c| *c >= topology.nr_cpus)
                    .collect(),
            );
            if missing.is_empty() {
                continue;
            }
            let host = Bitmap::first(topology.nr_cpus);
            if maps.iter().any(|m| m.iter().all(|c| c >= topology.nr_cpus)) {
                self.add(key, NoticeKind::Blocking, format!(
                    "CPUs {missing} do not exist on this host (it has CPUs {host}), which leaves a vCPU no CPU to run on"
                ));
            } else {
                self.add(key, NoticeKind::NotHonoured, format!(
                    "CPUs {missing} do not exist on this host (it has CPUs {host}) and will be left out"
                ));
            }
        }
    }

    fn actions(&mut self, c: &DomainConfig) {
        for (key, action) in [
            ("on_poweroff", c.on_poweroff),
            ("on_reboot", c.on_reboot),
            ("on_watchdog", c.on_watchdog),
            ("on_crash", c.on_crash),
            ("on_soft_reset", c.on_soft_reset),
        ] {
            if !self.set(key) {
                continue;
            }
            let reason = match action {
                ShutdownAction::CoredumpDestroy => {
                    "rxen cannot write core dumps; the domain will be destroyed without one"
                }
                ShutdownAction::CoredumpRestart => {
                    "rxen cannot write core dumps; the domain will be restarted without one"
                }
                ShutdownAction::SoftReset => "rxen does not support soft reset",
                _ => continue,
            };
            self.add(
                key,
                NoticeKind::NotHonoured,
                format!(
                    "{key}=\"{}\" will not be honoured: {reason}",
                    action.xl_name()
                ),
            );
        }
    }

    /// Keys that rxen does not act on, or only for some values.
    fn per_key(&mut self, c: &DomainConfig, requested: DomainType) {
        use NoticeKind::NotHonoured as NH;
        let b = &c.b_info;
        let hvm = requested == DomainType::Hvm;

        self.add_each(
            &[
                "cpu_weight",
                "cap",
                "period",
                "slice",
                "latency",
                "extratime",
            ],
            NH,
            SCHEDULER,
        );
        self.add_each(&["pool"], NH, "rxen has no CPU pools");
        self.add_each(
            &[
                "seclabel",
                "init_seclabel",
                "device_model_stubdomain_seclabel",
            ],
            NH,
            "rxen has no XSM/FLASK security labels",
        );
        self.add_each(
            &["oos", "shadow_memory"],
            NH,
            "rxen uses KVM's hardware-assisted paging; shadow paging settings do not apply",
        );
        if c.c_info.hap == Some(false) {
            self.add_each(&["hap"], NH, "KVM always uses hardware-assisted paging");
        }
        if c.c_info.driver_domain == Some(true) {
            self.add_each(
                &["driver_domain"],
                NH,
                "rxen's backends all run in dom0, the host",
            );
        }
        if !matches!(
            c.c_info.passthrough,
            xl_config::Passthrough::Default | xl_config::Passthrough::Disabled
        ) {
            self.add_each(
                &["passthrough"],
                NH,
                "rxen does not support device passthrough",
            );
        }
        if matches!(b.tsc_mode, TscMode::AlwaysEmulate | TscMode::NativeParavirt) {
            self.add_each(&["tsc_mode"], NH, "KVM runs the guest's TSC natively");
        }
        if b.localtime == Some(true) {
            self.add_each(
                &["localtime"],
                NH,
                "rxen keeps the guest's wallclock in UTC",
            );
        }
        self.add_each(&["rtc_timeoffset"], NH, "rxen emulates no RTC");
        if !hvm {
            self.add_each(&["timer_mode"], NH, "rxen emulates no platform timers");
        }
        self.add_each(&["acpi"], NH, "rxen does not make ACPI configurable");
        self.add_each(&["device_tree"], NH, "device trees are for Arm guests");
        if b.nested_hvm == Some(true) {
            self.add_each(
                &["nestedhvm"],
                NH,
                "rxen does not offer nested virtualisation",
            );
        }
        if b.altp2m != xl_config::Altp2mMode::Disabled {
            self.add_each(&["altp2m"], NH, "rxen has no alternate p2m");
        }
        self.add_each(&["altp2m_count"], NH, "rxen has no alternate p2m");
        self.add_each(
            &["vmtrace_buf_kb"],
            NH,
            "rxen has no processor trace buffers",
        );
        if b.vpmu == Some(true) {
            self.add_each(&["vpmu"], NH, "rxen does not virtualise the PMU");
        }
        if c.c_info.xend_suspend_evtchn_compat == Some(true) {
            self.add_each(
                &["xend_suspend_evtchn_compat"],
                NH,
                "rxen does not suspend domains",
            );
        }
        if let TypeInfo::Pvh(p) = &b.u {
            if p.pvshim == Some(true) {
                self.add_each(
                    &["pvshim", "pvshim_path", "pvshim_cmdline", "pvshim_extra"],
                    NH,
                    "rxen runs PVH guests directly, without a PV shim",
                );
            }
        }
        self.add_each(
            &[
                "device_model_override",
                "device_model_version",
                "device_model_stubdomain_override",
                "device_model_user",
                "device_model_args",
                "device_model_args_pv",
                "device_model_args_hvm",
                "stubdomain_kernel",
                "stubdomain_cmdline",
                "stubdomain_ramdisk",
                "stubdomain_memory",
                "dm_restrict",
            ],
            NH,
            DEVICE_MODEL,
        );

        // Displays. HVM guests are refused as a whole, so their display keys (like the rest
        // of their emulated platform) are not listed one by one.
        if !c.vfbs.is_empty() {
            self.add_each(&["vfb"], NH, DISPLAY);
            if self.set("vnc") && !self.set("vfb") {
                self.add_each(&["vnc"], NH, DISPLAY);
            }
        }
        if !hvm {
            self.add_each(&["videoram"], NH, DISPLAY);
        }
    }

    fn devices(&mut self, c: &DomainConfig, sources: &xl_config::SourceMap) {
        let mut vdevs = std::collections::BTreeSet::new();
        for (i, d) in c.disks.iter().enumerate() {
            let at = sources
                .disks
                .get(i)
                .cloned()
                .unwrap_or_else(|| self.at("disk"));
            let vdev = d.vdev.as_deref().unwrap_or("?");
            let mut notes = Vec::new();
            if !vdevs.insert(vdev) {
                notes.push((
                    NoticeKind::Blocking,
                    "another disk has the same vdev".to_owned(),
                ));
            }
            notes.extend(disk_notices(d));
            for (kind, msg) in notes {
                self.notices.push(Notice {
                    at: at.clone(),
                    key: "disk".to_owned(),
                    kind,
                    message: format!("disk {vdev}: {msg}"),
                });
            }
        }
        let mut devids = std::collections::BTreeSet::new();
        let mut ifnames = std::collections::BTreeSet::new();
        for (i, nic) in c.nics.iter().enumerate() {
            let at = sources
                .nics
                .get(i)
                .cloned()
                .unwrap_or_else(|| self.at("vif"));
            let mut notes = Vec::new();
            if !devids.insert(nic.devid) {
                notes.push((
                    NoticeKind::Blocking,
                    "another vif has the same devid".to_owned(),
                ));
            }
            if let Some(name) = nic.ifname.as_deref().filter(|n| !n.is_empty()) {
                if !ifnames.insert(name) {
                    notes.push((
                        NoticeKind::Blocking,
                        format!("another vif has the same vifname ({name})"),
                    ));
                }
            }
            notes.extend(nic_notices(nic));
            for (kind, msg) in notes {
                self.notices.push(Notice {
                    at: at.clone(),
                    key: "vif".to_owned(),
                    kind,
                    message: format!("vif {}: {msg}", nic.devid),
                });
            }
        }
    }
}

/// What rxen has to say about one disk, whether in `disk=` or given to
/// `xl block-attach`: what it cannot serve (`Blocking`) and what it will
/// not honour. Messages are to follow `disk VDEV: `.
pub fn disk_notices(d: &xl_config::DiskConfig) -> Vec<(NoticeKind, String)> {
    let vdev = d.vdev.as_deref().unwrap_or("?");
    let mut v = Vec::new();
    if !matches!(
        d.format,
        DiskFormat::Raw | DiskFormat::Empty | DiskFormat::Qcow2
    ) {
        v.push((
            NoticeKind::Blocking,
            format!(
                "format {} cannot be served: rxen's block backend serves raw and qcow2 images",
                d.format.libxl_name()
            ),
        ));
    }
    if backends::blk::xenbus::vdev_to_devid(vdev).is_none() {
        v.push((
            NoticeKind::Blocking,
            "not a virtual device name (xvdX, hdX, sdX, dNpM)".to_owned(),
        ));
    }
    if let Some(s) = &d.script {
        v.push((
            NoticeKind::Blocking,
            format!(
                "script={s} cannot be run: rxen runs no block hotplug scripts, so the target must be a file or block device"
            ),
        ));
    }
    if let Some(b) = &d.backend_domname {
        v.push((
            NoticeKind::NotHonoured,
            format!("backend={b} will not be honoured: dom0 serves every device"),
        ));
    }
    if d.specification == xl_config::DiskSpecification::Virtio {
        v.push((
            NoticeKind::NotHonoured,
            "specification=virtio will not be honoured: rxen serves Xen PV block devices"
                .to_owned(),
        ));
    }
    if d.colo_enable == Some(true) {
        v.push((
            NoticeKind::NotHonoured,
            "colo will not be honoured: rxen does not support COLO".to_owned(),
        ));
    }
    v
}

/// What rxen has to say about one network interface, in `vif=` or given to
/// `xl network-attach`. Messages are to follow `vif DEVID: `.
pub fn nic_notices(nic: &xl_config::NicConfig) -> Vec<(NoticeKind, String)> {
    let mut v = Vec::new();
    let not_honoured = |what: &str, reason: &str| {
        (
            NoticeKind::NotHonoured,
            format!("{what} will not be honoured: {reason}"),
        )
    };
    if nic.model.is_some() || nic.nictype == xl_config::NicType::VifIoemu {
        v.push(not_honoured(
            "model/type",
            "rxen provides PV network interfaces only, no emulated NIC",
        ));
    }
    // script=, ip=, gatewaydev=, mtu= and rate= are honoured by the domain
    // process's netback and hotplug step (docs/networking.md).
    if let Some(script) = nic.script.as_deref().filter(|s| !s.is_empty()) {
        let path = backends::net::hotplug::script_path(
            Some(script),
            std::path::Path::new(backends::net::hotplug::XEN_SCRIPT_DIR),
        );
        if backends::net::hotplug::Builtin::for_script(&path).is_none() && !path.exists() {
            v.push((
                NoticeKind::Blocking,
                format!(
                    "script={script}: {} does not exist (rxen has built-in vif-bridge, vif-route and vif-nat)",
                    path.display()
                ),
            ));
        }
    }
    if let Some(name) = nic.ifname.as_deref().filter(|n| !n.is_empty()) {
        if !backends::net::tap::valid_ifname(name) {
            v.push((
                NoticeKind::Blocking,
                format!(
                    "vifname={name}: not a network interface name (at most {} printable bytes, no '/', ':' or '%')",
                    backends::net::tap::IFNAME_MAX
                ),
            ));
        }
    }
    if nic.backend_domname.is_some() {
        v.push(not_honoured("backend", "dom0 serves every device"));
    }
    if nic.vlan.is_some() {
        v.push(not_honoured("vlan", "rxen does not configure VLANs"));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use xl_config::{ConfigSource, parse_domain_config};

    fn plan(text: &str) -> DomainPlan {
        let mut w = Vec::new();
        let parsed = parse_domain_config(
            &[ConfigSource {
                name: "t.cfg",
                text,
            }],
            &CpuTopology::uniform(2),
            &mut w,
        )
        .unwrap();
        DomainPlan::new(parsed, &CpuTopology::uniform(2))
    }

    fn lines(p: &DomainPlan) -> Vec<String> {
        p.notices
            .iter()
            .map(|n| format!("{:?} {}: {}", n.kind, n.at, n.message))
            .collect()
    }

    #[test]
    fn pvh_config_runs_as_written() {
        let p = plan("name='g'\ntype='pvh'\nkernel='/k'\nmemory=256\ncpus='0-1'\n");
        assert!(p.notices.is_empty(), "{:?}", lines(&p));
        assert!(p.can_create());
        assert_eq!(p.config.c_info.kind, DomainType::Pvh);
    }

    #[test]
    fn pv_runs_as_pvh() {
        let p = plan("name='g'\nkernel='/k'\n");
        assert_eq!(p.requested_type, DomainType::Pv);
        assert_eq!(p.config.c_info.kind, DomainType::Pvh);
        assert!(matches!(p.config.b_info.u, TypeInfo::Pvh(_)));
        assert_eq!(
            lines(&p),
            [
                "Adapted t.cfg:1: no type= given, which xl takes as type=\"pv\"; rxen will run this guest as PVH (it implements no PV guests), so the kernel must support PVH boot"
            ]
        );
        let p = plan("name='g'\nkernel='/k'\ntype='pv'\ne820_host=1\n");
        assert_eq!(
            lines(&p),
            [
                "Adapted t.cfg:3: type=\"pv\" will run as PVH: rxen implements no PV guests, so the kernel must support PVH boot",
                "NotHonoured t.cfg:4: parameter `e820_host' will not be honoured: PVH guests get rxen's memory map, not the host's",
            ]
        );
        assert!(p.can_create());
    }

    #[test]
    fn hvm_and_bootloaders_are_refused() {
        let p = plan("name='g'\nbuilder='hvm'\nvnc=1\nstdvga=1\n");
        assert!(!p.can_create());
        assert_eq!(p.config.c_info.kind, DomainType::Hvm);
        assert_eq!(
            lines(&p)[0],
            "Blocking t.cfg:2: rxen cannot create HVM guests: they need a device model and firmware, and rxen runs PVH guests only"
        );
        let p = plan("name='g'\nbootloader='pygrub'\n");
        assert!(!p.can_create());
        assert!(lines(&p).contains(&"NotHonoured t.cfg:2: parameter `bootloader' will not be honoured: rxen runs no bootloader (pygrub); it boots the kernel= image directly".to_owned()));
        assert!(
            lines(&p).contains(
                &"Blocking t.cfg:2: nothing to boot: rxen needs kernel= (it runs no bootloader)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn settings_that_match_what_rxen_does_are_quiet() {
        let p = plan(
            "name='g'\ntype='pvh'\nkernel='/k'\nhap=1\nlocaltime=0\nvpmu=0\ntsc_mode='native'\non_crash='preserve'\nnomigrate=1\n",
        );
        assert!(p.notices.is_empty(), "{:?}", lines(&p));
        let p = plan(
            "name='g'\ntype='pvh'\nkernel='/k'\nhap=0\nlocaltime=1\nvpmu=1\ntsc_mode='always_emulate'\non_crash='coredump-destroy'\ncpu_weight=512\n",
        );
        assert_eq!(p.notices.len(), 6, "{:?}", lines(&p));
    }

    #[test]
    fn cpus_beyond_the_host() {
        let p = plan("name='g'\ntype='pvh'\nkernel='/k'\nvcpus=2\ncpus=['1-3', '5']\n");
        assert_eq!(
            lines(&p),
            [
                "Blocking t.cfg:5: CPUs 2-3,5 do not exist on this host (it has CPUs 0-1), which leaves a vCPU no CPU to run on",
            ]
        );
        let p = plan("name='g'\ntype='pvh'\nkernel='/k'\ncpus='1-3'\n");
        assert_eq!(
            lines(&p),
            [
                "NotHonoured t.cfg:4: CPUs 2-3 do not exist on this host (it has CPUs 0-1) and will be left out",
            ]
        );
    }

    #[test]
    fn devices() {
        let p = plan(
            "name='g'\ntype='pvh'\nkernel='/k'\ndisk=['/a.vhd,vhd,xvda,w',\n 'iscsi:iqn.x,xvdb,w', '/c,,xvdc,backend=dd']\nvif=['mac=00:16:3e:00:00:01,bridge=br0', 'model=e1000,script=vif-nat,ip=10.0.0.1,rate=1MB/s']\n",
        );
        assert_eq!(
            lines(&p)[0],
            "Blocking t.cfg:4:7: disk xvda: format vhd cannot be served: rxen's block backend serves raw and qcow2 images"
        );
        let l = lines(&p);
        assert!(l.contains(&"Blocking t.cfg:5:2: disk xvdb: script=block-iscsi cannot be run: rxen runs no block hotplug scripts, so the target must be a file or block device".to_owned()));
        assert!(l.contains(&"NotHonoured t.cfg:5:24: disk xvdc: backend=dd will not be honoured: dom0 serves every device".to_owned()));
        assert!(l.contains(&"NotHonoured t.cfg:6:42: vif 1: model/type will not be honoured: rxen provides PV network interfaces only, no emulated NIC".to_owned()));
        assert!(
            !l.iter()
                .any(|n| n.contains(": vif ") && !n.contains("model/type")),
            "rate=, script=vif-nat and ip= are honoured: {l:#?}"
        );
        assert_eq!(l.len(), 4, "{l:#?}");
    }

    #[test]
    fn vif_scripts_must_exist_unless_built_in() {
        let p = plan(
            "name='g'\ntype='pvh'\nkernel='/k'\nvif=['script=vif-route,ip=169.254.1.2', 'script=/nonexistent/vif-custom', 'vifname=web0']\n",
        );
        assert_eq!(
            lines(&p),
            [
                "Blocking t.cfg:4:41: vif 1: script=/nonexistent/vif-custom: /nonexistent/vif-custom does not exist (rxen has built-in vif-bridge, vif-route and vif-nat)"
            ]
        );
    }

    #[test]
    fn vifnames_must_be_interface_names_and_unique() {
        let p = plan(
            "name='g'\ntype='pvh'\nkernel='/k'\nvif=['vifname=web0', 'vifname=web0', 'vifname=a/b', 'vifname=0123456789abcdef']\n",
        );
        assert_eq!(
            lines(&p),
            [
                "Blocking t.cfg:4:22: vif 1: another vif has the same vifname (web0)",
                "Blocking t.cfg:4:38: vif 2: vifname=a/b: not a network interface name (at most 15 printable bytes, no '/', ':' or '%')",
                "Blocking t.cfg:4:53: vif 3: vifname=0123456789abcdef: not a network interface name (at most 15 printable bytes, no '/', ':' or '%')",
            ]
        );
    }

    #[test]
    fn duplicate_devices_are_refused() {
        let p = plan(
            "name='g'\ntype='pvh'\nkernel='/k'\ndisk=['/a,,xvda', '/b,,xvda']\nvif=['', 'devid=0']\n",
        );
        assert_eq!(
            lines(&p),
            [
                "Blocking t.cfg:4:19: disk xvda: another disk has the same vdev",
                "Blocking t.cfg:5:10: vif 0: another vif has the same devid",
            ]
        );
    }

    #[test]
    fn unmodelled_keys_are_reported() {
        let p = plan(
            "name='g'\ntype='pvh'\nkernel='/k'\npci=['01:00.0']\nchannel=['name=x,connection=pty']\n",
        );
        assert_eq!(
            lines(&p),
            [
                "NotHonoured t.cfg:4: parameter `pci' will not be honoured: rxen does not support device passthrough",
                "NotHonoured t.cfg:5: parameter `channel' will not be honoured: rxen does not support PV channels",
            ]
        );
    }
}
