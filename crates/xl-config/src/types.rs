//! The typed domain configuration, shaped like libxl's `libxl_domain_config`.
//!
//! Field names, nesting and enum spellings follow Xen's `tools/libs/light/libxl_types.idl`,
//! and the serde form is the JSON that libxl generates for it (what `xl create -n` prints):
//! a field still at its default value is left out, aggregates (`c_info`, `b_info`,
//! `sched_params`, `vnc`, ...) are always present, booleans that may be left to a default
//! ("defbools") are the strings `"True"`/`"False"`, bitmaps are arrays of the set bit
//! numbers, and the guest-type specific part of `b_info` is keyed `"type.pv"`,
//! `"type.pvh"` or `"type.hvm"`. Only the fields rxen reads from xl.cfg are modelled.
//!
//! The shape is libxl's, the bytes are not always Xen's: aggregates rxen does not model
//! (`arch_arm`, `rdm`, ...) are absent, empty maps print as `{}`, and the values xl takes
//! from `xl.conf` or generates while parsing (`run_hotplug_scripts`, `claim_mode`, a
//! random `uuid` when the file has none) are left out: a UUID, like a MAC address left
//! unset in `vif=`, is chosen when the domain is created.
//!
//! The same JSON is how the toolstack hands a domain's configuration to the process that
//! runs it, so everything here deserializes too.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A domain's complete configuration (`libxl_domain_config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainConfig {
    /// What is fixed at domain creation (`libxl_domain_create_info`).
    #[serde(default)]
    pub c_info: CreateInfo,
    /// How the domain is built (`libxl_domain_build_info`).
    #[serde(default)]
    pub b_info: BuildInfo,
    /// Virtual block devices, from `disk=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskConfig>,
    /// Virtual network interfaces, from `vif=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nics: Vec<NicConfig>,
    /// Virtual framebuffers, from `vfb=` (or the top-level VNC keys of a PV guest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vfbs: Vec<VfbConfig>,
    /// Virtual keyboards: one goes with every framebuffer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vkbs: Vec<VkbConfig>,
    /// What to do when the guest powers off.
    #[serde(default, skip_serializing_if = "ShutdownAction::is_default")]
    pub on_poweroff: ShutdownAction,
    /// What to do when the guest reboots.
    #[serde(default, skip_serializing_if = "ShutdownAction::is_default")]
    pub on_reboot: ShutdownAction,
    /// What to do when the guest's watchdog fires.
    #[serde(default, skip_serializing_if = "ShutdownAction::is_default")]
    pub on_watchdog: ShutdownAction,
    /// What to do when the guest crashes.
    #[serde(default, skip_serializing_if = "ShutdownAction::is_default")]
    pub on_crash: ShutdownAction,
    /// What to do when the guest asks for a soft reset.
    #[serde(default, skip_serializing_if = "ShutdownAction::is_default")]
    pub on_soft_reset: ShutdownAction,
}

impl DomainConfig {
    /// The libxl-style JSON text: 4-space indentation and a final newline.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serializing plain data into memory cannot fail: no maps with non-string keys.
        self.serialize(&mut ser)
            .expect("DomainConfig serializes to JSON");
        let mut s = String::from_utf8(out).expect("serde_json writes UTF-8");
        s.push('\n');
        s
    }

    /// Reads the JSON form back.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// `libxl_domain_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainType {
    /// Not decided yet.
    #[default]
    Invalid,
    /// Fully virtualised, with a device model.
    Hvm,
    /// Paravirtualised.
    Pv,
    /// Paravirtualised in an HVM container, no device model.
    Pvh,
}

impl DomainType {
    fn is_invalid(&self) -> bool {
        *self == DomainType::Invalid
    }

    /// The name used in xl.cfg's `type=`.
    pub fn name(self) -> &'static str {
        match self {
            DomainType::Invalid => "invalid",
            DomainType::Hvm => "hvm",
            DomainType::Pv => "pv",
            DomainType::Pvh => "pvh",
        }
    }
}

impl fmt::Display for DomainType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `libxl_domain_create_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateInfo {
    /// The guest type.
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "DomainType::is_invalid"
    )]
    pub kind: DomainType,
    /// `hap=`: hardware assisted paging.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub hap: Option<bool>,
    /// `oos=`: out-of-sync shadow page tables.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub oos: Option<bool>,
    /// `init_seclabel=` or `seclabel=`: the XSM label to create the domain with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssid_label: Option<String>,
    /// `name=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `uuid=`; when absent, one is generated when the domain is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Uuid>,
    /// `pool=`: the CPU pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_name: Option<String>,
    /// `driver_domain=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub driver_domain: Option<bool>,
    /// `passthrough=`.
    #[serde(default, skip_serializing_if = "Passthrough::is_default")]
    pub passthrough: Passthrough,
    /// `xend_suspend_evtchn_compat=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub xend_suspend_evtchn_compat: Option<bool>,
}

/// `libxl_domain_build_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// `maxvcpus=`, else `vcpus=`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub max_vcpus: u32,
    /// The vCPUs online at boot: `0 .. vcpus`.
    #[serde(default, skip_serializing_if = "Bitmap::is_empty")]
    pub avail_vcpus: Bitmap,
    /// `cpus=`: for each vCPU, the host CPUs it may run on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vcpu_hard_affinity: Vec<Bitmap>,
    /// `cpus_soft=`: for each vCPU, the host CPUs it prefers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vcpu_soft_affinity: Vec<Bitmap>,
    /// Automatic NUMA placement; turned off by explicit affinities.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub numa_placement: Option<bool>,
    /// `tsc_mode=`.
    #[serde(default, skip_serializing_if = "TscMode::is_default")]
    pub tsc_mode: TscMode,
    /// `maxmem=` (MiB, stored in KiB), else the same as `memory=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memkb: Option<u64>,
    /// `memory=` (MiB, stored in KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_memkb: Option<u64>,
    /// `videoram=` (MiB, stored in KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_memkb: Option<u64>,
    /// `shadow_memory=` (MiB, stored in KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_memkb: Option<u64>,
    /// `rtc_timeoffset=` (seconds).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub rtc_timeoffset: u32,
    /// `seclabel=` when `init_seclabel=` is also given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_ssid_label: Option<String>,
    /// `localtime=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub localtime: Option<bool>,
    /// `nomigrate=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub disable_migrate: Option<bool>,
    /// `max_grant_frames=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_grant_frames: Option<u32>,
    /// `max_maptrack_frames=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_maptrack_frames: Option<u32>,
    /// `max_grant_version=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_grant_version: Option<u32>,
    /// `device_model_version=`.
    #[serde(default, skip_serializing_if = "DeviceModelVersion::is_default")]
    pub device_model_version: DeviceModelVersion,
    /// `device_model_stubdomain_override=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub device_model_stubdomain: Option<bool>,
    /// `stubdomain_memory=` (MiB, stored in KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stubdomain_memkb: Option<u64>,
    /// `stubdomain_kernel=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stubdomain_kernel: Option<String>,
    /// `stubdomain_cmdline=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stubdomain_cmdline: Option<String>,
    /// `stubdomain_ramdisk=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stubdomain_ramdisk: Option<String>,
    /// `device_model_override=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
    /// `device_model_stubdomain_seclabel=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model_ssid_label: Option<String>,
    /// `device_model_user=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model_user: Option<String>,
    /// `device_model_args=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
    /// `device_model_args_pv=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_pv: Vec<String>,
    /// `device_model_args_hvm=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hvm: Vec<String>,
    /// Scheduler parameters.
    #[serde(default)]
    pub sched_params: SchedParams,
    /// `max_event_channels=`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub event_channels: u32,
    /// `kernel=` (or the firmware that `firmware=` names for PV guests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// `cmdline=`, else built from `root=` and `extra=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// `ramdisk=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramdisk: Option<String>,
    /// `device_tree=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_tree: Option<String>,
    /// `acpi=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub acpi: Option<bool>,
    /// `bootloader=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootloader: Option<String>,
    /// `bootloader_args=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootloader_args: Vec<String>,
    /// `bootloader_restrict=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub bootloader_restrict: Option<bool>,
    /// `bootloader_user=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootloader_user: Option<String>,
    /// `timer_mode=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_mode: Option<TimerMode>,
    /// `nestedhvm=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub nested_hvm: Option<bool>,
    /// `apic=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub apic: Option<bool>,
    /// `dm_restrict=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub dm_restrict: Option<bool>,
    /// The guest-type specific part.
    #[serde(flatten)]
    pub u: TypeInfo,
    /// `altp2m=`.
    #[serde(default, skip_serializing_if = "Altp2mMode::is_default")]
    pub altp2m: Altp2mMode,
    /// `altp2m_count=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altp2m_count: Option<u32>,
    /// `vmtrace_buf_kb=`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub vmtrace_buf_kb: u32,
    /// `vpmu=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub vpmu: Option<bool>,
}

impl BuildInfo {
    /// The guest type the type-specific part is for.
    pub fn kind(&self) -> DomainType {
        match self.u {
            TypeInfo::Invalid {} => DomainType::Invalid,
            TypeInfo::Hvm(_) => DomainType::Hvm,
            TypeInfo::Pv(_) => DomainType::Pv,
            TypeInfo::Pvh(_) => DomainType::Pvh,
        }
    }
}

/// The guest-type specific part of [`BuildInfo`] (libxl's keyed union `u`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypeInfo {
    /// Type not decided.
    #[serde(rename = "type.invalid")]
    Invalid {},
    /// HVM guests.
    #[serde(rename = "type.hvm")]
    Hvm(Box<HvmInfo>),
    /// PV guests.
    #[serde(rename = "type.pv")]
    Pv(PvInfo),
    /// PVH guests.
    #[serde(rename = "type.pvh")]
    Pvh(PvhInfo),
}

impl Default for TypeInfo {
    fn default() -> Self {
        TypeInfo::Invalid {}
    }
}

impl TypeInfo {
    /// The default type-specific part for `kind`.
    pub fn for_type(kind: DomainType) -> Self {
        match kind {
            DomainType::Invalid => TypeInfo::Invalid {},
            DomainType::Hvm => TypeInfo::Hvm(Box::default()),
            DomainType::Pv => TypeInfo::Pv(PvInfo::default()),
            DomainType::Pvh => TypeInfo::Pvh(PvhInfo::default()),
        }
    }
}

/// `b_info.u.hvm`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HvmInfo {
    /// `firmware=PATH` or `firmware_override=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// `bios=` (or `firmware=` naming one).
    #[serde(default, skip_serializing_if = "BiosType::is_default")]
    pub bios: BiosType,
    /// `pae=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub pae: Option<bool>,
    /// `acpi_s3=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub acpi_s3: Option<bool>,
    /// `acpi_s4=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub acpi_s4: Option<bool>,
    /// `acpi_laptop_slate=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub acpi_laptop_slate: Option<bool>,
    /// `nx=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub nx: Option<bool>,
    /// `viridian=BOOLEAN`, or `"defaults"` in the list form.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub viridian: Option<bool>,
    /// Viridian enlightenment groups enabled by the list form (`libxl_viridian_enlightenment`
    /// numbers).
    #[serde(default, skip_serializing_if = "Bitmap::is_empty")]
    pub viridian_enable: Bitmap,
    /// Groups disabled by `!GROUP` in the list form.
    #[serde(default, skip_serializing_if = "Bitmap::is_empty")]
    pub viridian_disable: Bitmap,
    /// `hpet=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub hpet: Option<bool>,
    /// `vpt_align=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub vpt_align: Option<bool>,
    /// `mmio_hole=` (MiB, stored in KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmio_hole_memkb: Option<u64>,
    /// `altp2mhvm=` (deprecated).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub altp2m: Option<bool>,
    /// `bios_path_override=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_firmware: Option<String>,
    /// `smbios_firmware=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smbios_firmware: Option<String>,
    /// `smbios=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smbios: Vec<SmbiosConfig>,
    /// `acpi_firmware=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acpi_firmware: Option<String>,
    /// `hdtype=`.
    #[serde(default, skip_serializing_if = "HdType::is_default")]
    pub hdtype: HdType,
    /// `nographic=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub nographic: Option<bool>,
    /// `vga=` or `stdvga=`.
    #[serde(default)]
    pub vga: VgaInfo,
    /// The top-level VNC keys.
    #[serde(default)]
    pub vnc: VncInfo,
    /// `keymap=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keymap: Option<String>,
    /// The top-level SDL keys.
    #[serde(default)]
    pub sdl: SdlInfo,
    /// The SPICE keys.
    #[serde(default)]
    pub spice: SpiceInfo,
    /// `gfx_passthru=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub gfx_passthru: Option<bool>,
    /// `gfx_passthru="KIND"`.
    #[serde(default, skip_serializing_if = "GfxPassthruKind::is_default")]
    pub gfx_passthru_kind: GfxPassthruKind,
    /// `serial="DEVICE"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// `boot=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// `usb=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub usb: Option<bool>,
    /// `usbversion=`.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub usbversion: i32,
    /// `usbdevice="DEVICE"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usbdevice: Option<String>,
    /// `vkb_device=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub vkb_device: Option<bool>,
    /// `soundhw=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soundhw: Option<String>,
    /// `xen_platform_pci=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub xen_platform_pci: Option<bool>,
    /// `xen_platform_pci_bar_uc=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub xen_platform_pci_bar_uc: Option<bool>,
    /// `usbdevice=[ ... ]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usbdevice_list: Vec<String>,
    /// `vendor_device=`.
    #[serde(default, skip_serializing_if = "VendorDevice::is_default")]
    pub vendor_device: VendorDevice,
    /// `serial=[ ... ]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serial_list: Vec<String>,
    /// `rdm_mem_boundary=` (MiB, stored in KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdm_mem_boundary_memkb: Option<u64>,
    /// `mca_caps=`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub mca_caps: u64,
    /// `hvm_pirq=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub pirq: Option<bool>,
}

/// `b_info.u.pv`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvInfo {
    /// `e820_host=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub e820_host: Option<bool>,
}

/// `b_info.u.pvh`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvhInfo {
    /// `pvshim=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub pvshim: Option<bool>,
    /// `pvshim_path=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvshim_path: Option<String>,
    /// `pvshim_cmdline=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvshim_cmdline: Option<String>,
    /// `pvshim_extra=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvshim_extra: Option<String>,
}

/// `libxl_domain_sched_params`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedParams {
    /// `cpu_weight=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// `cap=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<i32>,
    /// `period=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i32>,
    /// `extratime=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extratime: Option<i32>,
    /// `slice=` (no effect since SEDF was removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<i32>,
    /// `latency=` (no effect since SEDF was removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<i32>,
}

/// `libxl_vnc_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncInfo {
    /// `vnc=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub enable: Option<bool>,
    /// `vnclisten=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// `vncpasswd=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwd: Option<String>,
    /// `vncdisplay=`.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub display: i32,
    /// `vncunused=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub findunused: Option<bool>,
}

/// `libxl_sdl_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdlInfo {
    /// `sdl=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub enable: Option<bool>,
    /// `opengl=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub opengl: Option<bool>,
    /// `display=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// `xauthority=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xauthority: Option<String>,
}

/// `libxl_spice_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceInfo {
    /// `spice=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub enable: Option<bool>,
    /// `spiceport=`.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub port: i32,
    /// `spicetls_port=`.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub tls_port: i32,
    /// `spicehost=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `spicedisable_ticketing=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub disable_ticketing: Option<bool>,
    /// `spicepasswd=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwd: Option<String>,
    /// `spiceagent_mouse=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub agent_mouse: Option<bool>,
    /// `spicevdagent=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub vdagent: Option<bool>,
    /// `spice_clipboard_sharing=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub clipboard_sharing: Option<bool>,
    /// `spiceusbredirection=`.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub usbredirection: i32,
    /// `spice_image_compression=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_compression: Option<String>,
    /// `spice_streaming_video=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_video: Option<String>,
}

/// `libxl_vga_interface_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VgaInfo {
    /// The emulated graphics card.
    #[serde(default, skip_serializing_if = "VgaKind::is_default")]
    pub kind: VgaKind,
}

/// `libxl_smbios`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmbiosConfig {
    /// Which string.
    pub key: SmbiosType,
    /// Its value.
    pub value: String,
}

/// `libxl_device_disk`: one `disk=` entry (see xl-disk-configuration(5)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskConfig {
    /// `backend=`: the domain serving the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_domname: Option<String>,
    /// The target: a path, or what `script=` understands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdev_path: Option<String>,
    /// The device name the guest sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vdev: Option<String>,
    /// `backendtype=`.
    #[serde(default, skip_serializing_if = "DiskBackend::is_default")]
    pub backend: DiskBackend,
    /// The image format.
    #[serde(default, skip_serializing_if = "DiskFormat::is_default")]
    pub format: DiskFormat,
    /// `script=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// 1 for CD-ROMs.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub removable: i32,
    /// 1 for read-write access.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub readwrite: i32,
    /// 1 for `devtype=cdrom`.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub is_cdrom: i32,
    /// `direct-io-safe`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub direct_io_safe: bool,
    /// `discard` / `no-discard`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub discard_enable: Option<bool>,
    /// `specification=`.
    #[serde(default, skip_serializing_if = "DiskSpecification::is_default")]
    pub specification: DiskSpecification,
    /// `colo` / `no-colo`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub colo_enable: Option<bool>,
    /// `colo-host=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colo_host: Option<String>,
    /// `colo-port=`.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub colo_port: i32,
    /// `colo-export=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colo_export: Option<String>,
    /// `active-disk=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_disk: Option<String>,
    /// `hidden-disk=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_disk: Option<String>,
    /// `trusted` / `untrusted`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub trusted: Option<bool>,
    /// `grant_usage=`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub grant_usage: Option<bool>,
}

/// `libxl_device_nic`: one `vif=` entry (see xl-network-configuration(5)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicConfig {
    /// `backend=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_domname: Option<String>,
    /// The device number: its index in `vif=`, unless `devid=` says otherwise.
    #[serde(default = "minus_one", skip_serializing_if = "is_minus_one")]
    pub devid: i32,
    /// `mtu=`.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub mtu: i32,
    /// `vlan=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<String>,
    /// `model=`: the emulated NIC of an HVM guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `mac=`; when absent one is generated when the device is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// `ip=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// `bridge=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// `vifname=`: the backend interface name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    /// `script=`: the hotplug script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// `type=`.
    #[serde(default, skip_serializing_if = "NicType::is_default")]
    pub nictype: NicType,
    /// `rate=`: bytes allowed per interval.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub rate_bytes_per_interval: u64,
    /// `rate=`: the interval in microseconds.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub rate_interval_usecs: u32,
    /// `gatewaydev=` (or the deprecated `netdev=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gatewaydev: Option<String>,
    /// `trusted` / `untrusted`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "defbool")]
    pub trusted: Option<bool>,
}

impl Default for NicConfig {
    fn default() -> Self {
        NicConfig {
            backend_domname: None,
            devid: -1,
            mtu: 0,
            vlan: None,
            model: None,
            mac: None,
            ip: None,
            bridge: None,
            ifname: None,
            script: None,
            nictype: NicType::Unknown,
            rate_bytes_per_interval: 0,
            rate_interval_usecs: 0,
            gatewaydev: None,
            trusted: None,
        }
    }
}

/// `libxl_device_vfb`: one `vfb=` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfbConfig {
    /// `backend=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_domname: Option<String>,
    /// The device number.
    #[serde(default = "minus_one", skip_serializing_if = "is_minus_one")]
    pub devid: i32,
    /// VNC settings.
    #[serde(default)]
    pub vnc: VncInfo,
    /// SDL settings.
    #[serde(default)]
    pub sdl: SdlInfo,
    /// `keymap=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keymap: Option<String>,
}

impl Default for VfbConfig {
    fn default() -> Self {
        VfbConfig {
            backend_domname: None,
            devid: -1,
            vnc: VncInfo::default(),
            sdl: SdlInfo::default(),
            keymap: None,
        }
    }
}

/// `libxl_device_vkb`: the keyboard that goes with a framebuffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VkbConfig {
    /// The device number.
    #[serde(default = "minus_one", skip_serializing_if = "is_minus_one")]
    pub devid: i32,
}

impl Default for VkbConfig {
    fn default() -> Self {
        VkbConfig { devid: -1 }
    }
}

// ---------------------------------------------------------------------------------------
// Enumerations. The serde spelling is libxl's `*_to_string` (the lowercased C name); the
// xl.cfg spelling, where it differs, is `from_xl`.

macro_rules! xl_enum {
    ($(#[$doc:meta])* $name:ident default $default:ident { $($(#[$vdoc:meta])* $variant:ident = $json:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(
                $(#[$vdoc])*
                #[serde(rename = $json)]
                $variant,
            )+
        }

        #[allow(dead_code)]
        impl $name {
            fn is_default(&self) -> bool {
                *self == $name::$default
            }

            /// Every value, in libxl's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// libxl's name for the value (`libxl_*_to_string`).
            pub fn libxl_name(self) -> &'static str {
                match self { $($name::$variant => $json),+ }
            }

            /// Looks a value up by libxl's name, ignoring case (`libxl_*_from_string`).
            pub fn from_libxl_name(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.libxl_name().eq_ignore_ascii_case(s))
            }
        }
    };
}

xl_enum! {
    /// `libxl_action_on_shutdown`.
    ShutdownAction default Destroy {
        #[default]
        /// Destroy the domain.
        Destroy = "destroy",
        /// Destroy it and create it again.
        Restart = "restart",
        /// Rename it and create it again.
        RestartRename = "restart_rename",
        /// Keep it, shut down, until `xl destroy`.
        Preserve = "preserve",
        /// Dump its core, then destroy it.
        CoredumpDestroy = "coredump_destroy",
        /// Dump its core, then restart it.
        CoredumpRestart = "coredump_restart",
        /// Reset its Xen interfaces and let it continue.
        SoftReset = "soft_reset",
    }
}

impl ShutdownAction {
    /// The action as written in xl.cfg (`destroy`, `rename-restart`, ...).
    pub fn xl_name(self) -> &'static str {
        match self {
            ShutdownAction::Destroy => "destroy",
            ShutdownAction::Restart => "restart",
            ShutdownAction::RestartRename => "rename-restart",
            ShutdownAction::Preserve => "preserve",
            ShutdownAction::CoredumpDestroy => "coredump-destroy",
            ShutdownAction::CoredumpRestart => "coredump-restart",
            ShutdownAction::SoftReset => "soft-reset",
        }
    }

    /// Looks up an xl.cfg action name (exact match, as xl does).
    pub fn from_xl(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.xl_name() == s)
    }
}

xl_enum! {
    /// `libxl_tsc_mode`.
    TscMode default Default {
        #[default]
        /// Let Xen choose.
        Default = "default",
        /// Always emulate the TSC.
        AlwaysEmulate = "always_emulate",
        /// Never emulate the TSC.
        Native = "native",
        /// Native TSC with paravirtual time information.
        NativeParavirt = "native_paravirt",
    }
}

xl_enum! {
    /// `libxl_timer_mode`.
    TimerMode default DelayForMissedTicks {
        #[default]
        /// Deliver missed ticks late.
        DelayForMissedTicks = "delay_for_missed_ticks",
        /// Deliver missed ticks at once, without delay.
        NoDelayForMissedTicks = "no_delay_for_missed_ticks",
        /// Do not deliver missed ticks.
        NoMissedTicksPending = "no_missed_ticks_pending",
        /// Deliver one missed tick.
        OneMissedTickPending = "one_missed_tick_pending",
    }
}

impl TimerMode {
    /// HVM_PARAM_TIMER_MODE's number for the mode.
    pub fn number(self) -> i64 {
        match self {
            TimerMode::DelayForMissedTicks => 0,
            TimerMode::NoDelayForMissedTicks => 1,
            TimerMode::NoMissedTicksPending => 2,
            TimerMode::OneMissedTickPending => 3,
        }
    }
}

xl_enum! {
    /// `libxl_passthrough`.
    Passthrough default Default {
        #[default]
        /// Decided by the presence of passthrough devices.
        Default = "default",
        /// No passthrough.
        Disabled = "disabled",
        /// Passthrough, mode chosen by libxl.
        Enabled = "enabled",
        /// IOMMU page tables kept in sync with the p2m.
        SyncPt = "sync_pt",
        /// IOMMU shares the p2m page tables.
        SharePt = "share_pt",
    }
}

xl_enum! {
    /// `libxl_device_model_version`.
    DeviceModelVersion default Unknown {
        #[default]
        /// Not given.
        Unknown = "unknown",
        /// The historical qemu-dm.
        QemuXenTraditional = "qemu_xen_traditional",
        /// Upstream QEMU.
        QemuXen = "qemu_xen",
    }
}

xl_enum! {
    /// `libxl_bios_type`.
    BiosType default Unknown {
        #[default]
        /// Chosen by libxl.
        Unknown = "unknown",
        /// ROMBIOS.
        Rombios = "rombios",
        /// SeaBIOS.
        Seabios = "seabios",
        /// OVMF (UEFI).
        Ovmf = "ovmf",
    }
}

xl_enum! {
    /// `libxl_hdtype`.
    HdType default Ide {
        #[default]
        /// IDE.
        Ide = "ide",
        /// AHCI.
        Ahci = "ahci",
    }
}

xl_enum! {
    /// `libxl_vga_interface_type`.
    VgaKind default Unknown {
        #[default]
        /// Not given.
        Unknown = "unknown",
        /// Cirrus Logic.
        Cirrus = "cirrus",
        /// Standard VGA.
        Std = "std",
        /// No graphics card.
        None = "none",
        /// QXL.
        Qxl = "qxl",
    }
}

xl_enum! {
    /// `libxl_gfx_passthru_kind`.
    GfxPassthruKind default Default {
        #[default]
        /// Chosen by libxl.
        Default = "default",
        /// Intel integrated graphics.
        Igd = "igd",
    }
}

xl_enum! {
    /// `libxl_vendor_device`.
    VendorDevice default None {
        #[default]
        /// None.
        None = "none",
        /// The XenServer PCI device.
        Xenserver = "xenserver",
    }
}

xl_enum! {
    /// `libxl_altp2m_mode`.
    Altp2mMode default Disabled {
        #[default]
        /// No alternate p2m.
        Disabled = "disabled",
        /// Mixed mode.
        Mixed = "mixed",
        /// External mode.
        External = "external",
        /// Limited mode.
        Limited = "limited",
    }
}

xl_enum! {
    /// `libxl_disk_format`.
    DiskFormat default Unknown {
        #[default]
        /// Not given.
        Unknown = "unknown",
        /// QEMU copy-on-write version 1.
        Qcow = "qcow",
        /// QEMU copy-on-write version 2.
        Qcow2 = "qcow2",
        /// Virtual Hard Disk.
        Vhd = "vhd",
        /// Plain bytes.
        Raw = "raw",
        /// No medium (an empty CD-ROM drive).
        Empty = "empty",
        /// QEMU enhanced disk.
        Qed = "qed",
    }
}

xl_enum! {
    /// `libxl_disk_backend`.
    DiskBackend default Unknown {
        #[default]
        /// Chosen by the toolstack.
        Unknown = "unknown",
        /// The kernel's blkback on a block device.
        Phy = "phy",
        /// blktap.
        Tap = "tap",
        /// QEMU.
        Qdisk = "qdisk",
        /// Only relying on the XenStore data.
        Standalone = "standalone",
    }
}

xl_enum! {
    /// `libxl_disk_specification`.
    DiskSpecification default Unknown {
        #[default]
        /// Not given (Xen PV).
        Unknown = "unknown",
        /// Xen PV block protocol.
        Xen = "xen",
        /// Virtio.
        Virtio = "virtio",
    }
}

xl_enum! {
    /// `libxl_nic_type`.
    NicType default Unknown {
        #[default]
        /// Not given.
        Unknown = "unknown",
        /// Emulated and PV (`type=ioemu`).
        VifIoemu = "vif_ioemu",
        /// PV only (`type=vif`).
        Vif = "vif",
    }
}

xl_enum! {
    /// `libxl_smbios_type`.
    SmbiosType default BiosVendor {
        #[default]
        /// BIOS vendor.
        BiosVendor = "bios_vendor",
        /// BIOS version.
        BiosVersion = "bios_version",
        /// System manufacturer.
        SystemManufacturer = "system_manufacturer",
        /// System product name.
        SystemProductName = "system_product_name",
        /// System version.
        SystemVersion = "system_version",
        /// System serial number.
        SystemSerialNumber = "system_serial_number",
        /// Baseboard manufacturer.
        BaseboardManufacturer = "baseboard_manufacturer",
        /// Baseboard product name.
        BaseboardProductName = "baseboard_product_name",
        /// Baseboard version.
        BaseboardVersion = "baseboard_version",
        /// Baseboard serial number.
        BaseboardSerialNumber = "baseboard_serial_number",
        /// Baseboard asset tag.
        BaseboardAssetTag = "baseboard_asset_tag",
        /// Baseboard location in chassis.
        BaseboardLocationInChassis = "baseboard_location_in_chassis",
        /// Enclosure manufacturer.
        EnclosureManufacturer = "enclosure_manufacturer",
        /// Enclosure serial number.
        EnclosureSerialNumber = "enclosure_serial_number",
        /// Enclosure asset tag.
        EnclosureAssetTag = "enclosure_asset_tag",
        /// Battery manufacturer.
        BatteryManufacturer = "battery_manufacturer",
        /// Battery device name.
        BatteryDeviceName = "battery_device_name",
        /// An OEM string.
        Oem = "oem",
    }
}

xl_enum! {
    /// `libxl_viridian_enlightenment`; the position in [`ViridianGroup::ALL`] is the bit
    /// number in the viridian bitmaps.
    ViridianGroup default Base {
        #[default]
        /// Hypercall page, APIC MSRs, ...
        Base = "base",
        /// Frequency MSRs.
        Freq = "freq",
        /// Partition reference counter MSR.
        TimeRefCount = "time_ref_count",
        /// Reference TSC page.
        ReferenceTsc = "reference_tsc",
        /// Remote TLB flush hypercalls.
        HcallRemoteTlbFlush = "hcall_remote_tlb_flush",
        /// APIC assist page.
        ApicAssist = "apic_assist",
        /// Crash control MSRs.
        CrashCtl = "crash_ctl",
        /// Synthetic interrupt controller.
        Synic = "synic",
        /// Synthetic timers.
        Stimer = "stimer",
        /// IPI hypercalls.
        HcallIpi = "hcall_ipi",
        /// Extended processor masks.
        ExProcessorMasks = "ex_processor_masks",
        /// No virtual processor limit.
        NoVpLimit = "no_vp_limit",
        /// CPU hotplug.
        CpuHotplug = "cpu_hotplug",
    }
}

impl ViridianGroup {
    /// The bit number of the group in the viridian bitmaps.
    pub fn bit(self) -> u32 {
        Self::ALL.iter().position(|g| *g == self).unwrap_or(0) as u32
    }
}

// ---------------------------------------------------------------------------------------
// Builtin types

/// A set of small numbers (CPUs, vCPUs, feature bits), serialized as the sorted array of
/// its members (`libxl_bitmap`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bitmap(pub BTreeSet<u32>);

impl Bitmap {
    /// No bits set.
    pub fn new() -> Self {
        Bitmap::default()
    }

    /// Bits `0 .. n`.
    pub fn first(n: u32) -> Self {
        Bitmap((0..n).collect())
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets a bit.
    pub fn set(&mut self, bit: u32) {
        self.0.insert(bit);
    }

    /// Clears a bit.
    pub fn reset(&mut self, bit: u32) {
        self.0.remove(&bit);
    }

    /// Whether a bit is set.
    pub fn test(&self, bit: u32) -> bool {
        self.0.contains(&bit)
    }

    /// The set bits, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Bitmap {
    /// As a CPU list: `0-3,5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut bits = self.0.iter().copied().peekable();
        while let Some(start) = bits.next() {
            let mut end = start;
            while bits.peek() == Some(&(end + 1)) {
                end += 1;
                bits.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// A domain UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

/// Why a UUID did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 8-4-4-4-12 hexadecimal digits, like 5b0e3a2c-7a1f-4c61-9d4e-0123456789ab")]
pub struct UuidError;

impl FromStr for Uuid {
    type Err = UuidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lens != [8, 4, 4, 4, 12] {
            return Err(UuidError);
        }
        let hex: String = groups.concat();
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(UuidError);
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| UuidError)?;
        }
        Ok(Uuid(out))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

/// Why a MAC address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected six hexadecimal bytes separated by colons, like 00:16:3e:29:00:00")]
pub struct MacError;

impl FromStr for Mac {
    type Err = MacError;

    /// Six groups of one or two hex digits, separated by `:` (or `-`), as xl accepts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let groups: Vec<&str> = s.split([':', '-']).collect();
        if groups.len() != 6 {
            return Err(MacError);
        }
        let mut out = [0u8; 6];
        for (byte, g) in out.iter_mut().zip(groups) {
            if g.is_empty() || g.len() > 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(MacError);
            }
            *byte = u8::from_str_radix(g, 16).map_err(|_| MacError)?;
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// libxl's "defbool": true, false or left to the default, written `"True"`/`"False"`.
mod defbool {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(true) => s.serialize_str("True"),
            Some(false) => s.serialize_str("False"),
            None => s.serialize_str("<default>"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match String::deserialize(d)?.as_str() {
            "True" => Ok(Some(true)),
            "False" => Ok(Some(false)),
            "<default>" => Ok(None),
            other => Err(serde::de::Error::custom(format!(
                "expected \"True\", \"False\" or \"<default>\", found {other:?}"
            ))),
        }
    }
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn minus_one() -> i32 {
    -1
}

fn is_minus_one(v: &i32) -> bool {
    *v == -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trip() {
        let u: Uuid = "5B0E3A2C-7a1f-4c61-9d4e-0123456789ab".parse().unwrap();
        assert_eq!(u.to_string(), "5b0e3a2c-7a1f-4c61-9d4e-0123456789ab");
        for bad in [
            "",
            "5b0e3a2c7a1f4c619d4e0123456789ab",
            "5b0e3a2c-7a1f-4c61-9d4e-0123456789ag",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            "00:16:3E:29:0:1".parse::<Mac>().unwrap().to_string(),
            "00:16:3e:29:00:01"
        );
        assert_eq!(
            "00-16-3e-29-00-01".parse::<Mac>().unwrap().to_string(),
            "00:16:3e:29:00:01"
        );
        for bad in [
            "00:16:3e:29:00",
            "00:16:3e:29:00:01:02",
            "00:16:3e:29:00:100",
            "zz:16:3e:29:00:01",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bitmap_display_as_cpu_list() {
        let b = Bitmap([0, 1, 2, 3, 5, 7, 8].into_iter().collect());
        assert_eq!(b.to_string(), "0-3,5,7-8");
        assert_eq!(Bitmap::new().to_string(), "");
    }

    #[test]
    fn enum_names() {
        assert_eq!(
            ShutdownAction::from_xl("rename-restart"),
            Some(ShutdownAction::RestartRename)
        );
        assert_eq!(ShutdownAction::RestartRename.libxl_name(), "restart_rename");
        assert_eq!(ShutdownAction::from_xl("Restart"), None);
        assert_eq!(TscMode::from_libxl_name("NATIVE"), Some(TscMode::Native));
        assert_eq!(ViridianGroup::HcallIpi.bit(), 9);
    }

    #[test]
    fn json_shape_and_round_trip() {
        let mut c = DomainConfig::default();
        c.c_info.kind = DomainType::Pvh;
        c.c_info.name = Some("g".into());
        c.b_info.u = TypeInfo::for_type(DomainType::Pvh);
        c.b_info.max_vcpus = 2;
        c.b_info.avail_vcpus = Bitmap::first(2);
        c.b_info.localtime = Some(false);
        c.on_reboot = ShutdownAction::Restart;
        let json = c.to_json();
        assert_eq!(
            json,
            r#"{
    "c_info": {
        "type": "pvh",
        "name": "g"
    },
    "b_info": {
        "max_vcpus": 2,
        "avail_vcpus": [
            0,
            1
        ],
        "localtime": "False",
        "sched_params": {},
        "type.pvh": {}
    },
    "on_reboot": "restart"
}
"#
        );
        assert_eq!(DomainConfig::from_json(&json).unwrap(), c);
    }
}
