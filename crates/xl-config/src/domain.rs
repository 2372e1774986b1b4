//! From settings to a [`DomainConfig`]: what each xl.cfg key means.
//!
//! Follows `parse_config_data` in Xen's `tools/xl/xl_parse.c`: the same keys, defaults,
//! guest-type dependent handling and messages. Where xl only warns about a value it cannot
//! use and carries on without it (`memory = "lots"`, a list where a single value is
//! expected, a bad `mac=`), this is an error: a configuration either means exactly what it
//! says or is refused. Also stricter than xl: `vcpus`/`maxvcpus` must be at least 1,
//! `maxmem` at least `memory`, and a CPU list must select some CPU.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cpus::{CpuListError, CpuTopology, parse_cpu_list};
use crate::disk::{DiskSpecError, parse_disk_spec};
use crate::keys::{self, KeyKind};
use crate::location::Location;
use crate::syntax::{AssignOp, Atom, List, Setting, Settings, Value};
use crate::types::{
    Altp2mMode, BiosType, Bitmap, DeviceModelVersion, DomainConfig, DomainType, GfxPassthruKind,
    HdType, HvmInfo, Passthrough, SdlInfo, ShutdownAction, SmbiosConfig, SmbiosType, TimerMode,
    TscMode, TypeInfo, Uuid, UuidError, VendorDevice, VfbConfig, VgaKind, ViridianGroup, VkbConfig,
    VncInfo,
};
use crate::vif::{VifSpecError, parse_vif_spec};

/// The most vCPUs a domain may be given.
pub const MAX_VCPUS: i64 = 4096;

/// Where Xen installs PV firmware such as pvgrub (`XENFIRMWAREDIR`).
pub const XEN_FIRMWARE_DIR: &str = "/usr/lib/xen/boot";

/// A configuration that is well-formed but wrong.
#[derive(Debug, Error)]
pub enum DomainConfigError {
    /// A list where one value is expected.
    #[error("{at}: parameter `{key}' is a list but should be a single value")]
    ReadSingleValue { at: Location, key: String },
    /// A single value where a list is expected.
    #[error(
        "{at}: parameter `{key}' is a single value but should be a list (write {key} = [ ... ])"
    )]
    ReadList { at: Location, key: String },
    /// A list element that is itself a list.
    #[error("{at}: element {index} of parameter `{key}' is a list but should be a string")]
    ReadListItem {
        at: Location,
        key: String,
        index: usize,
    },
    /// Something that is not a number.
    #[error(
        "{at}: parameter `{key}' is not a valid number: expected {expected}, found \"{found}\""
    )]
    ReadNumber {
        at: Location,
        key: String,
        expected: String,
        found: String,
    },
    /// A number out of the key's range.
    #[error("{at}: parameter `{key}' is out of range: expected {expected}, found {found}")]
    CheckRange {
        at: Location,
        key: String,
        expected: String,
        found: String,
    },
    /// `KEY += NUMBER`.
    #[error("{at}: can't use += with numbers for parameter `{key}'")]
    AppendNumber { at: Location, key: String },
    /// A value the key does not accept.
    #[error("{at}: invalid value for parameter `{key}': {detail}")]
    CheckValue {
        at: Location,
        key: String,
        detail: String,
    },
    /// `builder=` and `type=` disagree.
    #[error("{at}: Contradicting \"builder\" and \"type\" options specified")]
    CheckBuilder { at: Location },
    /// No `name=`.
    #[error("{source_name}: Domain name must be specified (add name=\"NAME\")")]
    MissingName { source_name: String },
    /// A PV or PVH guest with nothing to boot.
    #[error("{source_name}: Neither kernel nor bootloader specified")]
    MissingKernel { source_name: String },
    /// `maxvcpus` below `vcpus`.
    #[error("{at}: maxvcpus < vcpus ({maxvcpus} < {vcpus})")]
    CheckMaxvcpus {
        at: Location,
        maxvcpus: i64,
        vcpus: i64,
    },
    /// `maxmem` below `memory`.
    #[error("{at}: maxmem < memory ({maxmem} MiB < {memory} MiB)")]
    CheckMaxmem {
        at: Location,
        maxmem: u64,
        memory: u64,
    },
    /// A `uuid=` that does not parse.
    #[error("{at}: Failed to parse UUID: {found}")]
    ParseUuid {
        at: Location,
        found: String,
        #[source]
        source: UuidError,
    },
    /// A bad `cpus=` or `cpus_soft=` list.
    #[error("{at}: invalid CPU list in parameter `{key}'")]
    ParseCpus {
        at: Location,
        key: String,
        #[source]
        source: CpuListError,
    },
    /// A bad disk spec.
    #[error("{at}: config parsing error in disk specification `{spec}'")]
    ParseDisk {
        at: Location,
        spec: String,
        #[source]
        source: Box<DiskSpecError>,
    },
    /// A bad vif spec.
    #[error("{at}: config parsing error in vif specification `{spec}'")]
    ParseVif {
        at: Location,
        spec: String,
        #[source]
        source: Box<VifSpecError>,
    },
}

/// A warning: something accepted, but probably not what was meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Where.
    pub at: Location,
    /// What.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: warning: {}", self.at, self.message)
    }
}

/// A valid xl.cfg key whose feature rxen does not model; its value is not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredKey {
    /// The key.
    pub key: String,
    /// Where it is set.
    pub at: Location,
    /// The feature it belongs to, e.g. "device passthrough".
    pub feature: String,
}

/// Where the pieces of a configuration came from, for messages about them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMap {
    /// The file (or first source) the configuration was read from.
    pub source_name: String,
    /// For every key that is set: the line of its effective setting.
    pub keys: BTreeMap<String, Location>,
    /// Where each `disk=` entry is, by index in [`DomainConfig::disks`].
    pub disks: Vec<Location>,
    /// Where each `vif=` entry is, by index in [`DomainConfig::nics`].
    pub nics: Vec<Location>,
    /// Where each framebuffer came from, by index in [`DomainConfig::vfbs`].
    pub vfbs: Vec<Location>,
}

/// The result of reading a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedConfig {
    /// The configuration.
    pub config: DomainConfig,
    /// Where things were written.
    pub sources: SourceMap,
    /// Keys for features rxen does not model.
    pub ignored: Vec<IgnoredKey>,
}

/// Builds the domain configuration from parsed settings. `source_name` names the main
/// source (for errors about missing keys); `topology` resolves `all` and NUMA nodes in CPU
/// lists. Warnings are appended to `warnings` as they are found, even if an error follows.
pub fn build_domain_config(
    settings: &Settings,
    source_name: &str,
    topology: &CpuTopology,
    warnings: &mut Vec<Warning>,
) -> Result<ParsedConfig, DomainConfigError> {
    let first_new = warnings.len();
    let result = build(settings, source_name, topology, warnings);
    // In the order of the configuration, the main source first.
    warnings[first_new..].sort_by_key(|w| {
        (
            w.at.source != source_name,
            w.at.line,
            w.at.column.unwrap_or(0),
        )
    });
    result
}

fn build(
    settings: &Settings,
    source_name: &str,
    topology: &CpuTopology,
    warnings: &mut Vec<Warning>,
) -> Result<ParsedConfig, DomainConfigError> {
    let mut b = Builder {
        r: Reader {
            settings,
            used: BTreeSet::new(),
        },
        c: DomainConfig::default(),
        src: SourceMap {
            source_name: source_name.to_owned(),
            ..SourceMap::default()
        },
        warnings,
        topology,
    };
    b.create_info()?;
    b.build_info()?;
    b.devices()?;
    b.device_model()?;
    b.display()?;
    b.hvm_devices()?;
    b.tail()?;
    let ignored = b.unread_keys();
    for name in settings.names() {
        if let Some(s) = settings.get(name) {
            b.src.keys.insert(name.to_owned(), s.name_at.line_only());
        }
    }
    Ok(ParsedConfig {
        config: b.c,
        sources: b.src,
        ignored,
    })
}

// ---------------------------------------------------------------------------------------
// Typed access to settings (libxlu_cfg.c's getters).

struct Reader<'a> {
    settings: &'a Settings,
    used: BTreeSet<String>,
}

const BOOLEAN: &str = "a boolean (0 or 1)";

impl<'a> Reader<'a> {
    fn get(&mut self, key: &str) -> Option<&'a Setting> {
        let s = self.settings.get(key)?;
        self.used.insert(key.to_owned());
        Some(s)
    }

    fn atom(&mut self, key: &str) -> Result<Option<&'a Atom>, DomainConfigError> {
        match self.get(key).map(|s| &s.value) {
            None => Ok(None),
            Some(Value::Atom(a)) => Ok(Some(a)),
            Some(Value::List(l)) => Err(DomainConfigError::ReadSingleValue {
                at: l.at.clone(),
                key: key.to_owned(),
            }),
        }
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, DomainConfigError> {
        Ok(self.atom(key)?.map(|a| a.text.clone()))
    }

    /// A number in `min ..= max` (`xlu_cfg_get_bounded_long`, C `strtol` syntax).
    fn long(
        &mut self,
        key: &str,
        min: i64,
        max: i64,
        expected: &str,
    ) -> Result<Option<i64>, DomainConfigError> {
        let Some(s) = self.get(key) else {
            return Ok(None);
        };
        let a = match &s.value {
            Value::Atom(a) => a,
            Value::List(l) => {
                return Err(DomainConfigError::ReadSingleValue {
                    at: l.at.clone(),
                    key: key.to_owned(),
                });
            }
        };
        if s.op == AssignOp::Append {
            return Err(DomainConfigError::AppendNumber {
                at: s.name_at.clone(),
                key: key.to_owned(),
            });
        }
        let n = c_long(&a.text).ok_or_else(|| DomainConfigError::ReadNumber {
            at: a.at.clone(),
            key: key.to_owned(),
            expected: expected.to_owned(),
            found: a.text.clone(),
        })?;
        if n < min || n > max {
            return Err(DomainConfigError::CheckRange {
                at: a.at.clone(),
                key: key.to_owned(),
                expected: expected.to_owned(),
                found: n.to_string(),
            });
        }
        Ok(Some(n))
    }

    /// A number that xl stores in a C `int`.
    fn int(&mut self, key: &str, expected: &str) -> Result<Option<i32>, DomainConfigError> {
        Ok(self
            .long(key, i32::MIN.into(), i32::MAX.into(), expected)?
            .map(|n| n as i32))
    }

    /// A non-negative number that fits in 32 bits.
    fn u32(&mut self, key: &str, expected: &str) -> Result<Option<u32>, DomainConfigError> {
        Ok(self
            .long(key, 0, u32::MAX.into(), expected)?
            .map(|n| n as u32))
    }

    /// A size in MiB, returned in KiB.
    fn mib_as_kib(&mut self, key: &str, min: i64) -> Result<Option<u64>, DomainConfigError> {
        let expected = format!("a whole number of megabytes (MiB), at least {min}");
        Ok(self
            .long(key, min, i64::MAX / 1024, &expected)?
            .map(|n| n as u64 * 1024))
    }

    /// `xlu_cfg_get_defbool`: any number, non-zero meaning true.
    fn defbool(&mut self, key: &str) -> Result<Option<bool>, DomainConfigError> {
        Ok(self.long(key, i64::MIN, i64::MAX, BOOLEAN)?.map(|n| n != 0))
    }

    fn list(&mut self, key: &str) -> Result<Option<&'a List>, DomainConfigError> {
        match self.get(key).map(|s| &s.value) {
            None => Ok(None),
            Some(Value::List(l)) => Ok(Some(l)),
            Some(Value::Atom(a)) => Err(DomainConfigError::ReadList {
                at: a.at.clone(),
                key: key.to_owned(),
            }),
        }
    }

    fn string_list(&mut self, key: &str) -> Result<Option<Vec<&'a Atom>>, DomainConfigError> {
        match self.list(key)? {
            None => Ok(None),
            Some(l) => list_atoms(l, key).map(Some),
        }
    }

    /// Whether `key` is set to a list (without marking it read).
    fn is_list(&self, key: &str) -> bool {
        matches!(
            self.settings.get(key).map(|s| &s.value),
            Some(Value::List(_))
        )
    }

    /// Whether `key` is set and reads as a number (without marking it read).
    fn is_number(&self, key: &str) -> bool {
        matches!(
            self.settings.get(key).map(|s| &s.value),
            Some(Value::Atom(a)) if c_long(&a.text).is_some()
        )
    }

    fn location(&self, key: &str) -> Option<Location> {
        self.settings.get(key).map(|s| s.value.location().clone())
    }
}

fn list_atoms<'a>(l: &'a List, key: &str) -> Result<Vec<&'a Atom>, DomainConfigError> {
    l.items
        .iter()
        .enumerate()
        .map(|(index, v)| match v {
            Value::Atom(a) => Ok(a),
            Value::List(inner) => Err(DomainConfigError::ReadListItem {
                at: inner.at.clone(),
                key: key.to_owned(),
                index,
            }),
        })
        .collect()
}

/// C `strtol(s, &end, 0)` requiring the whole string to be consumed: optional blanks and
/// sign, then `0x` hexadecimal, `0` octal or decimal digits.
pub fn c_long(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

// ---------------------------------------------------------------------------------------
// The mapping, section by section in xl's order.

struct Builder<'a, 'w> {
    r: Reader<'a>,
    c: DomainConfig,
    src: SourceMap,
    warnings: &'w mut Vec<Warning>,
    topology: &'w CpuTopology,
}

fn check(at: &Location, key: &str, detail: impl Into<String>) -> DomainConfigError {
    DomainConfigError::CheckValue {
        at: at.clone(),
        key: key.to_owned(),
        detail: detail.into(),
    }
}

/// xl's `strncmp(buf, name, strlen(buf))`: `buf` is a non-empty prefix of `name`.
fn abbreviates(buf: &str, name: &str) -> bool {
    !buf.is_empty() && name.starts_with(buf)
}

impl Builder<'_, '_> {
    fn warn(&mut self, at: &Location, message: impl Into<String>) {
        self.warnings.push(Warning {
            at: at.clone(),
            message: message.into(),
        });
    }

    fn kind(&self) -> DomainType {
        self.c.c_info.kind
    }

    fn hvm(&mut self) -> Option<&mut HvmInfo> {
        match &mut self.c.b_info.u {
            TypeInfo::Hvm(h) => Some(h),
            _ => None,
        }
    }

    fn create_info(&mut self) -> Result<(), DomainConfigError> {
        let r = &mut self.r;
        if let Some(label) = r.string("init_seclabel")? {
            self.c.c_info.ssid_label = Some(label);
        }
        if let Some(label) = r.string("seclabel")? {
            if self.c.c_info.ssid_label.is_some() {
                self.c.b_info.exec_ssid_label = Some(label);
            } else {
                self.c.c_info.ssid_label = Some(label);
            }
        }

        let mut kind = DomainType::Invalid;
        if let Some(a) = r.atom("type")? {
            kind = [DomainType::Hvm, DomainType::Pv, DomainType::Pvh]
                .into_iter()
                .find(|t| abbreviates(&a.text, t.name()))
                .ok_or_else(|| {
                    check(
                        &a.at,
                        "type",
                        format!(
                            "Invalid domain type {}: expected \"pv\", \"pvh\" or \"hvm\"",
                            a.text
                        ),
                    )
                })?;
        }
        if let Some(a) = r.atom("builder")? {
            let builder = if abbreviates(&a.text, "hvm") {
                DomainType::Hvm
            } else if abbreviates(&a.text, "generic") {
                DomainType::Pv
            } else {
                return Err(check(
                    &a.at,
                    "builder",
                    format!(
                        "Invalid domain type {}: expected \"generic\" or \"hvm\"",
                        a.text
                    ),
                ));
            };
            if kind != DomainType::Invalid && kind != builder {
                return Err(DomainConfigError::CheckBuilder { at: a.at.clone() });
            }
            kind = builder;
        }
        if kind == DomainType::Invalid {
            // xl's default on x86.
            kind = DomainType::Pv;
        }
        self.c.c_info.kind = kind;
        self.c.b_info.u = TypeInfo::for_type(kind);

        self.c.c_info.hap = self.r.defbool("hap")?;
        match self.r.atom("name")? {
            None => {
                return Err(DomainConfigError::MissingName {
                    source_name: self.src.source_name.clone(),
                });
            }
            Some(a) if a.text.is_empty() => {
                return Err(check(&a.at, "name", "the domain name must not be empty"));
            }
            Some(a) => self.c.c_info.name = Some(a.text.clone()),
        }
        if let Some(a) = self.r.atom("uuid")? {
            let uuid: Uuid = a
                .text
                .parse()
                .map_err(|source| DomainConfigError::ParseUuid {
                    at: a.at.clone(),
                    found: a.text.clone(),
                    source,
                })?;
            self.c.c_info.uuid = Some(uuid);
        }
        self.c.c_info.oos = self.r.defbool("oos")?;
        self.c.c_info.pool_name = self.r.string("pool")?;
        Ok(())
    }

    fn build_info(&mut self) -> Result<(), DomainConfigError> {
        if let TypeInfo::Pvh(pvh) = &mut self.c.b_info.u {
            pvh.pvshim = self.r.defbool("pvshim")?;
            pvh.pvshim_path = self.r.string("pvshim_path")?;
            pvh.pvshim_cmdline = self.r.string("pvshim_cmdline")?;
            pvh.pvshim_extra = self.r.string("pvshim_extra")?;
        }

        let sp = &mut self.c.b_info.sched_params;
        sp.weight = self
            .r
            .int("cpu_weight", "a scheduler weight (1 to 65535)")?;
        sp.cap = self.r.int("cap", "a CPU cap in percent of one CPU")?;
        sp.period = self.r.int("period", "a period in microseconds")?;
        sp.slice = self.r.int("slice", "a slice in microseconds")?;
        sp.latency = self.r.int("latency", "a latency in microseconds")?;
        sp.extratime = self.r.int("extratime", BOOLEAN)?;

        let memory = self.r.mib_as_kib("memory", 1)?;
        let maxmem = self.r.mib_as_kib("maxmem", 1)?;
        self.c.b_info.target_memkb = memory;

        let vcpus_expected = format!("a number of vCPUs from 1 to {MAX_VCPUS}");
        let vcpus = self
            .r
            .long("vcpus", 1, MAX_VCPUS, &vcpus_expected)?
            .unwrap_or(1);
        self.c.b_info.avail_vcpus = Bitmap::first(vcpus as u32);
        let maxvcpus = self.r.long("maxvcpus", 1, MAX_VCPUS, &vcpus_expected)?;

        self.c.b_info.max_memkb = maxmem.or(memory);
        if let (Some(max), Some(target)) = (maxmem, memory) {
            if max < target {
                return Err(DomainConfigError::CheckMaxmem {
                    at: self.r.location("maxmem").expect("maxmem is set"),
                    maxmem: max / 1024,
                    memory: target / 1024,
                });
            }
        }
        if let Some(m) = maxvcpus {
            if m < vcpus {
                return Err(DomainConfigError::CheckMaxvcpus {
                    at: self.r.location("maxvcpus").expect("maxvcpus is set"),
                    maxvcpus: m,
                    vcpus,
                });
            }
        }
        self.c.b_info.max_vcpus = maxvcpus.unwrap_or(vcpus) as u32;

        self.affinity("cpus", true)?;
        self.affinity("cpus_soft", false)?;

        let frames = "a number of frames from 0 to 2147483647";
        let b = &mut self.c.b_info;
        b.max_grant_frames = self
            .r
            .long("max_grant_frames", 0, i32::MAX.into(), frames)?
            .map(|n| n as u32);
        b.max_maptrack_frames = self
            .r
            .long("max_maptrack_frames", 0, i32::MAX.into(), frames)?
            .map(|n| n as u32);
        b.max_grant_version = self
            .r
            .long(
                "max_grant_version",
                0,
                i32::MAX.into(),
                "a grant table version (1 or 2)",
            )?
            .map(|n| n as u32);

        self.c.on_poweroff = self.action("on_poweroff", ShutdownAction::Destroy)?;
        self.c.on_reboot = self.action("on_reboot", ShutdownAction::Restart)?;
        self.c.on_watchdog = self.action("on_watchdog", ShutdownAction::Destroy)?;
        self.c.on_crash = self.action("on_crash", ShutdownAction::Destroy)?;
        self.c.on_soft_reset = self.action("on_soft_reset", ShutdownAction::SoftReset)?;

        if let TypeInfo::Pv(pv) = &mut self.c.b_info.u {
            pv.e820_host = self.r.defbool("e820_host")?;
        }

        if let Some(a) = self.r.atom("passthrough")? {
            self.c.c_info.passthrough = Passthrough::from_libxl_name(&a.text).ok_or_else(|| {
                check(
                    &a.at,
                    "passthrough",
                    format!(
                        "unknown passthrough option '{}': expected default, disabled, enabled, sync_pt or share_pt",
                        a.text
                    ),
                )
            })?;
        }

        self.c.b_info.shadow_memkb = self.r.mib_as_kib("shadow_memory", 0)?;
        self.c.b_info.disable_migrate = self.r.defbool("nomigrate")?;

        self.tsc_mode()?;

        if let Some(n) = self.r.long(
            "rtc_timeoffset",
            i32::MIN.into(),
            u32::MAX.into(),
            "an offset in seconds",
        )? {
            // A C long stored into uint32_t, as libxl does.
            self.c.b_info.rtc_timeoffset = n as u32;
        }
        if let Some(a) = self.r.atom("vncviewer")? {
            let at = a.at.clone();
            self.warn(
                &at,
                "ignoring \"vncviewer\" option. Use \"-V\" option of \"xl create\" to automatically spawn vncviewer.",
            );
        }
        self.c.b_info.localtime = self.r.defbool("localtime")?;
        self.c.b_info.video_memkb = self.r.mib_as_kib("videoram", 0)?;
        self.c.b_info.event_channels = self
            .r
            .u32("max_event_channels", "a number of event channels")?
            .unwrap_or(0);

        self.c.b_info.kernel = self.r.string("kernel")?;
        self.c.b_info.ramdisk = self.r.string("ramdisk")?;
        self.c.b_info.device_tree = self.r.string("device_tree")?;
        self.cmdline()?;

        self.c.c_info.driver_domain = self.r.defbool("driver_domain")?;
        self.c.b_info.acpi = self.r.defbool("acpi")?;

        self.c.b_info.bootloader = self.r.string("bootloader")?;
        self.c.b_info.bootloader_restrict = self.r.defbool("bootloader_restrict")?;
        self.c.b_info.bootloader_user = self.r.string("bootloader_user")?;
        if self.r.is_list("bootloader_args") {
            let args = self.r.string_list("bootloader_args")?.unwrap_or_default();
            self.c.b_info.bootloader_args = args.iter().map(|a| a.text.clone()).collect();
        } else if let Some(a) = self.r.atom("bootloader_args")? {
            let at = a.at.clone();
            self.c.b_info.bootloader_args = a
                .text
                .split([' ', '\t', '\n'])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            self.warn(
                &at,
                "Specifying \"bootloader_args\" as a string is deprecated. Please use a list of arguments.",
            );
        }

        self.timer_mode()?;
        self.c.b_info.nested_hvm = self.r.defbool("nestedhvm")?;

        match self.kind() {
            DomainType::Hvm => self.hvm_build()?,
            _ => self.pv_boot()?,
        }

        self.altp2m()?;
        if let Some(n) = self.r.u32("vmtrace_buf_kb", "a buffer size in KiB")? {
            self.c.b_info.vmtrace_buf_kb = n;
        }
        Ok(())
    }

    fn affinity(&mut self, key: &str, hard: bool) -> Result<(), DomainConfigError> {
        let max = self.c.b_info.max_vcpus as usize;
        let maps: Vec<Bitmap> = if self.r.is_list(key) {
            let items = self.r.string_list(key)?.unwrap_or_default();
            let maps = items
                .iter()
                .take(max)
                .map(|a| self.cpu_list(key, a))
                .collect::<Result<_, _>>()?;
            self.c.b_info.numa_placement = Some(false);
            maps
        } else if let Some(a) = self.r.atom(key)? {
            let map = self.cpu_list(key, a)?;
            if !hard {
                self.c.b_info.numa_placement = Some(false);
            }
            vec![map; max]
        } else {
            return Ok(());
        };
        if hard {
            self.c.b_info.vcpu_hard_affinity = maps;
        } else {
            self.c.b_info.vcpu_soft_affinity = maps;
        }
        Ok(())
    }

    fn cpu_list(&self, key: &str, a: &Atom) -> Result<Bitmap, DomainConfigError> {
        parse_cpu_list(&a.text, self.topology).map_err(|source| DomainConfigError::ParseCpus {
            at: a.at.clone(),
            key: key.to_owned(),
            source,
        })
    }

    fn action(
        &mut self,
        key: &str,
        default: ShutdownAction,
    ) -> Result<ShutdownAction, DomainConfigError> {
        let Some(a) = self.r.atom(key)? else {
            return Ok(default);
        };
        ShutdownAction::from_xl(&a.text).ok_or_else(|| {
            let names: Vec<_> = ShutdownAction::ALL.iter().map(|a| a.xl_name()).collect();
            check(
                &a.at,
                key,
                format!(
                    "Unknown {key} action \"{}\" specified: expected one of {}",
                    a.text,
                    names.join(", ")
                ),
            )
        })
    }

    fn tsc_mode(&mut self) -> Result<(), DomainConfigError> {
        if self.r.is_number("tsc_mode") {
            let n = self
                .r
                .long("tsc_mode", 0, 3, "a tsc_mode from 0 to 3")?
                .expect("set");
            let mode = TscMode::ALL[n as usize];
            let at = self.r.location("tsc_mode").expect("set");
            self.warn(
                &at,
                format!(
                    "specifying \"tsc_mode\" as an integer is deprecated. Please use the named parameter variant. e.g. tsc_mode=\"{}\"",
                    mode.libxl_name()
                ),
            );
            self.c.b_info.tsc_mode = mode;
        } else if let Some(a) = self.r.atom("tsc_mode")? {
            self.c.b_info.tsc_mode = TscMode::from_libxl_name(&a.text).ok_or_else(|| {
                check(
                    &a.at,
                    "tsc_mode",
                    format!(
                        "invalid value \"{}\": expected default, always_emulate, native or native_paravirt",
                        a.text
                    ),
                )
            })?;
        }
        Ok(())
    }

    fn timer_mode(&mut self) -> Result<(), DomainConfigError> {
        let Some(at) = self.r.location("timer_mode") else {
            return Ok(());
        };
        if self.kind() == DomainType::Pv {
            return Err(check(
                &at,
                "timer_mode",
                "\"timer_mode\" option is not supported for PV guests",
            ));
        }
        let mode = if self.r.is_number("timer_mode") {
            let n = self
                .r
                .long("timer_mode", 0, 3, "a timer_mode from 0 to 3")?
                .expect("set");
            let mode = TimerMode::ALL[n as usize];
            self.warn(
                &at,
                format!(
                    "specifying \"timer_mode\" as an integer is deprecated. Please use the named parameter variant. e.g. timer_mode=\"{}\"",
                    mode.libxl_name()
                ),
            );
            mode
        } else {
            let a = self.r.atom("timer_mode")?.expect("set");
            TimerMode::from_libxl_name(&a.text).ok_or_else(|| {
                check(
                    &a.at,
                    "timer_mode",
                    format!(
                        "invalid value \"{}\": expected delay_for_missed_ticks, no_delay_for_missed_ticks, no_missed_ticks_pending or one_missed_tick_pending",
                        a.text
                    ),
                )
            })?
        };
        self.c.b_info.timer_mode = Some(mode);
        Ok(())
    }

    /// `cmdline=`, else `root=` and `extra=` (xl's `parse_cmdline`).
    fn cmdline(&mut self) -> Result<(), DomainConfigError> {
        let cmdline = self.r.string("cmdline")?;
        let root = self.r.string("root")?;
        let extra = self.r.string("extra")?;
        self.c.b_info.cmdline = match (cmdline, root, extra) {
            (Some(c), root, extra) => {
                if root.is_some() || extra.is_some() {
                    let at = self.r.location("cmdline").expect("set");
                    self.warn(&at, "ignoring root= and extra= in favour of cmdline=");
                }
                Some(c)
            }
            (None, Some(r), Some(e)) => Some(format!("root={r} {e}")),
            (None, Some(r), None) => Some(format!("root={r}")),
            (None, None, Some(e)) => Some(e),
            (None, None, None) => None,
        };
        Ok(())
    }

    fn hvm_build(&mut self) -> Result<(), DomainConfigError> {
        let kernel_is_hvmloader = self
            .c
            .b_info
            .kernel
            .as_deref()
            .is_some_and(|k| k.rsplit('/').next() == Some("hvmloader"));
        if kernel_is_hvmloader {
            let at = self.r.location("kernel").expect("set");
            self.warn(
                &at,
                "you seem to be using \"kernel\" directive to override HVM guest firmware. Ignore that. Use \"firmware_override\" instead if you really want a non-default firmware",
            );
            self.c.b_info.kernel = None;
        }
        let firmware = self.r.string("firmware_override")?;
        let system_firmware = self.r.string("bios_path_override")?;
        let bios = match self.r.atom("bios")? {
            Some(a) => Some(
                BiosType::from_libxl_name(&a.text)
                    .filter(|b| *b != BiosType::Unknown)
                    .ok_or_else(|| {
                        check(
                            &a.at,
                            "bios",
                            format!(
                                "invalid value \"{}\": expected rombios, seabios or ovmf",
                                a.text
                            ),
                        )
                    })?,
            ),
            None => None,
        };
        if bios.is_none() && system_firmware.is_some() {
            let at = self.r.location("bios_path_override").expect("set");
            self.warn(&at, "bios_path_override given without specific bios name");
        }
        let mut h = HvmInfo {
            firmware,
            system_firmware,
            bios: bios.unwrap_or_default(),
            ..HvmInfo::default()
        };
        h.pae = self.r.defbool("pae")?;
        h.acpi_s3 = self.r.defbool("acpi_s3")?;
        h.acpi_s4 = self.r.defbool("acpi_s4")?;
        h.acpi_laptop_slate = self.r.defbool("acpi_laptop_slate")?;
        h.nx = self.r.defbool("nx")?;
        h.hpet = self.r.defbool("hpet")?;
        h.vpt_align = self.r.defbool("vpt_align")?;
        self.c.b_info.apic = self.r.defbool("apic")?;
        h.pirq = self.r.defbool("hvm_pirq")?;

        if self.r.is_list("viridian") {
            for a in self.r.string_list("viridian")?.unwrap_or_default() {
                match a.text.as_str() {
                    "all" => {
                        h.viridian_enable =
                            Bitmap(ViridianGroup::ALL.iter().map(|g| g.bit()).collect())
                    }
                    "defaults" => h.viridian = Some(true),
                    name => {
                        let (disable, name) = match name.strip_prefix('!') {
                            Some(n) => (true, n),
                            None => (false, name),
                        };
                        let g = ViridianGroup::from_libxl_name(name).ok_or_else(|| {
                            let names: Vec<_> =
                                ViridianGroup::ALL.iter().map(|g| g.libxl_name()).collect();
                            check(
                                &a.at,
                                "viridian",
                                format!(
                                    "unknown viridian enlightenment '{name}': expected all, defaults or one of {}, optionally preceded by !",
                                    names.join(", ")
                                ),
                            )
                        })?;
                        let (set, clear) = if disable {
                            (&mut h.viridian_disable, &mut h.viridian_enable)
                        } else {
                            (&mut h.viridian_enable, &mut h.viridian_disable)
                        };
                        set.set(g.bit());
                        clear.reset(g.bit());
                    }
                }
            }
        } else {
            h.viridian = self.r.defbool("viridian")?;
        }

        // Between HVM_BELOW_4G_MMIO_LENGTH (256 MiB) and HVM_BELOW_4G_MMIO_START (3840 MiB).
        h.mmio_hole_memkb = self
            .r
            .long("mmio_hole", 256, 3840, "a size in MiB from 256 to 3840")?
            .map(|n| n as u64 * 1024);

        if let Some(v) = self.r.defbool("altp2mhvm")? {
            h.altp2m = Some(v);
            let at = self.r.location("altp2mhvm").expect("set");
            self.warn(
                &at,
                "Specifying \"altp2mhvm\" is deprecated. Please use \"altp2m\" instead.",
            );
        }
        h.smbios_firmware = self.r.string("smbios_firmware")?;
        h.acpi_firmware = self.r.string("acpi_firmware")?;
        if let Some(items) = self.r.string_list("smbios")? {
            let mut oem = 0;
            for a in items {
                let (key, value) = a.text.split_once('=').ok_or_else(|| {
                    check(
                        &a.at,
                        "smbios",
                        format!("failed to split \"{}\" at '='", a.text),
                    )
                })?;
                if value.is_empty() {
                    return Err(check(
                        &a.at,
                        "smbios",
                        format!("empty value not allowed for smbios \"{key}=\""),
                    ));
                }
                let kind = SmbiosType::from_libxl_name(key).ok_or_else(|| {
                    check(&a.at, "smbios", format!("unknown smbios type '{key}'"))
                })?;
                if kind == SmbiosType::Oem {
                    oem += 1;
                    if oem > 99 {
                        return Err(check(&a.at, "smbios", "smbios limited to 99 oem strings"));
                    }
                }
                h.smbios.push(SmbiosConfig {
                    key: kind,
                    value: value.to_owned(),
                });
            }
        }
        h.rdm_mem_boundary_memkb = self.r.mib_as_kib("rdm_mem_boundary", 0)?;
        if let Some(items) = self.r.string_list("mca_caps")? {
            for a in items {
                if a.text != "lmce" {
                    return Err(check(
                        &a.at,
                        "mca_caps",
                        format!("unrecognized MCA capability '{}': expected lmce", a.text),
                    ));
                }
                // XEN_HVM_MCA_CAP_LMCE
                h.mca_caps |= 1;
            }
        }
        if let Some(a) = self.r.atom("firmware")? {
            match BiosType::from_libxl_name(&a.text).filter(|b| *b != BiosType::Unknown) {
                Some(b) => h.bios = b,
                None if abbreviates(&a.text, "uefi") => h.bios = BiosType::Ovmf,
                None if abbreviates(&a.text, "bios") => {}
                None => h.firmware = Some(a.text.clone()),
            }
        }
        self.c.b_info.u = TypeInfo::Hvm(Box::new(h));
        Ok(())
    }

    /// PV and PVH: `firmware=pvgrub32|pvgrub64`, and something to boot.
    fn pv_boot(&mut self) -> Result<(), DomainConfigError> {
        if let Some(a) = self.r.atom("firmware")? {
            if self.c.b_info.kernel.is_some() {
                return Err(check(
                    &a.at,
                    "firmware",
                    "both kernel and firmware specified",
                ));
            }
            if !abbreviates(&a.text, "pvgrub32") && !abbreviates(&a.text, "pvgrub64") {
                return Err(check(
                    &a.at,
                    "firmware",
                    "only pvgrub{32|64} supported as firmware options",
                ));
            }
            self.c.b_info.kernel = Some(format!("{XEN_FIRMWARE_DIR}/{}.bin", a.text));
        }
        if self.c.b_info.bootloader.is_none() && self.c.b_info.kernel.is_none() {
            return Err(DomainConfigError::MissingKernel {
                source_name: self.src.source_name.clone(),
            });
        }
        Ok(())
    }

    fn altp2m(&mut self) -> Result<(), DomainConfigError> {
        if self.r.is_number("altp2m") {
            let n = self
                .r
                .long("altp2m", 0, 3, "an altp2m mode from 0 to 3")?
                .expect("set");
            self.c.b_info.altp2m = Altp2mMode::ALL[n as usize];
        } else if let Some(a) = self.r.atom("altp2m")? {
            self.c.b_info.altp2m = Altp2mMode::from_libxl_name(&a.text).ok_or_else(|| {
                check(
                    &a.at,
                    "altp2m",
                    format!(
                        "invalid value \"{}\": expected disabled, mixed, external or limited",
                        a.text
                    ),
                )
            })?;
        }
        self.c.b_info.altp2m_count = self
            .r
            .long(
                "altp2m_count",
                0,
                u16::MAX.into(),
                "a count from 0 to 65535",
            )?
            .map(|n| n as u32);
        Ok(())
    }

    fn devices(&mut self) -> Result<(), DomainConfigError> {
        if let Some(items) = self.r.string_list("disk")? {
            for a in items {
                let disk =
                    parse_disk_spec(&a.text).map_err(|source| DomainConfigError::ParseDisk {
                        at: source
                            .offset()
                            .map_or_else(|| a.at.clone(), |o| a.location_of(o)),
                        spec: a.text.clone(),
                        source: Box::new(source),
                    })?;
                self.c.disks.push(disk);
                self.src.disks.push(a.at.clone());
            }
        }
        if let Some(items) = self.r.string_list("vif")? {
            for (i, a) in items.into_iter().enumerate() {
                let parsed = parse_vif_spec(&a.text, i as i32).map_err(|source| {
                    DomainConfigError::ParseVif {
                        at: a.location_of(source.offset()),
                        spec: a.text.clone(),
                        source: Box::new(source),
                    }
                })?;
                for (offset, message) in parsed.warnings {
                    let at = a.location_of(offset);
                    self.warn(&at, format!("vif: {message}"));
                }
                self.c.nics.push(parsed.nic);
                self.src.nics.push(a.at.clone());
            }
        }
        if self.r.get("vif2").is_some() {
            let at = self.r.location("vif2").expect("set");
            self.warn(
                &at,
                "vif2: netchannel2 is deprecated and not supported by xl",
            );
        }
        if let Some(items) = self.r.string_list("vfb")? {
            for (i, a) in items.into_iter().enumerate() {
                let vfb = self.vfb(a, i as i32)?;
                self.c.vfbs.push(vfb);
                self.c.vkbs.push(VkbConfig { devid: i as i32 });
                self.src.vfbs.push(a.at.clone());
            }
        }
        Ok(())
    }

    /// One `vfb=` entry: `key=value` pairs.
    fn vfb(&mut self, a: &Atom, devid: i32) -> Result<VfbConfig, DomainConfigError> {
        let mut vfb = VfbConfig {
            devid,
            ..VfbConfig::default()
        };
        let mut offset = 0;
        for raw in a.text.split(',') {
            let token_at = offset + raw.len() - raw.trim_start_matches(' ').len();
            offset += raw.len() + 1;
            let token = raw.trim_start_matches(' ');
            if token.is_empty() {
                continue;
            }
            let at = a.location_of(token_at);
            let Some((key, value)) = token.split_once('=') else {
                self.warn(&at, format!("vfb: ignoring `{token}': expected key=value"));
                continue;
            };
            let number = |what: &str| {
                c_long(value)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| {
                        check(
                            &at,
                            "vfb",
                            format!(
                                "`{key}' is not a valid number: expected {what}, found \"{value}\""
                            ),
                        )
                    })
            };
            match key {
                "vnc" => vfb.vnc.enable = Some(number(BOOLEAN)? != 0),
                "vnclisten" => vfb.vnc.listen = Some(value.to_owned()),
                "vncpasswd" => vfb.vnc.passwd = Some(value.to_owned()),
                "vncdisplay" => vfb.vnc.display = number("a VNC display number")?,
                "vncunused" => vfb.vnc.findunused = Some(number(BOOLEAN)? != 0),
                "keymap" => vfb.keymap = Some(value.to_owned()),
                "sdl" => vfb.sdl.enable = Some(number(BOOLEAN)? != 0),
                "opengl" => vfb.sdl.opengl = Some(number(BOOLEAN)? != 0),
                "display" => vfb.sdl.display = Some(value.to_owned()),
                "xauthority" => vfb.sdl.xauthority = Some(value.to_owned()),
                _ => self.warn(&at, format!("vfb: ignoring unknown parameter `{key}'")),
            }
        }
        Ok(vfb)
    }

    fn device_model(&mut self) -> Result<(), DomainConfigError> {
        if let Some(a) = self.r.atom("device_model")? {
            let at = a.at.clone();
            let stubdom = a.text.contains("stubdom-dm");
            self.warn(
                &at,
                "ignoring device_model directive. Use \"device_model_override\" instead if you really want a non-default device_model",
            );
            if stubdom {
                let msg = if self.kind() == DomainType::Hvm {
                    "Or use \"device_model_stubdomain_override\" if you want to enable stubdomains"
                } else {
                    "ignoring \"device_model_stubdomain_override\" directive for pv guest"
                };
                self.warn(&at, msg);
            }
        }
        let b = &mut self.c.b_info;
        b.device_model = self.r.string("device_model_override")?;
        if let Some(a) = self.r.atom("device_model_version")? {
            if a.text != "qemu-xen" {
                return Err(check(
                    &a.at,
                    "device_model_version",
                    format!(
                        "Unknown device_model_version \"{}\" specified: expected \"qemu-xen\"",
                        a.text
                    ),
                ));
            }
            self.c.b_info.device_model_version = DeviceModelVersion::QemuXen;
        } else if self.c.b_info.device_model.is_some() {
            let at = self.r.location("device_model_override").expect("set");
            self.warn(
                &at,
                "device model override given without specific DM version",
            );
        }
        let b = &mut self.c.b_info;
        b.device_model_stubdomain = self.r.defbool("device_model_stubdomain_override")?;
        b.device_model_ssid_label = self.r.string("device_model_stubdomain_seclabel")?;
        b.device_model_user = self.r.string("device_model_user")?;
        b.stubdomain_kernel = self.r.string("stubdomain_kernel")?;
        b.stubdomain_cmdline = self.r.string("stubdomain_cmdline")?;
        b.stubdomain_ramdisk = self.r.string("stubdomain_ramdisk")?;
        b.stubdomain_memkb = self.r.mib_as_kib("stubdomain_memory", 0)?;
        for (key, slot) in [
            ("device_model_args", &mut b.extra),
            ("device_model_args_pv", &mut b.extra_pv),
            ("device_model_args_hvm", &mut b.extra_hvm),
        ] {
            if let Some(items) = self.r.string_list(key)? {
                *slot = items.iter().map(|a| a.text.clone()).collect();
            }
        }
        Ok(())
    }

    /// The top-level VNC/SDL keys: a framebuffer for a PV guest without `vfb=`, the
    /// emulated display of an HVM guest.
    fn display(&mut self) -> Result<(), DomainConfigError> {
        match self.kind() {
            DomainType::Pv if self.c.vfbs.is_empty() => self.pv_vnc_framebuffer()?,
            DomainType::Hvm => {
                let vnc = self.vnc_keys()?;
                let sdl = self.sdl_keys()?;
                if let Some(h) = self.hvm() {
                    h.vnc = vnc;
                    h.sdl = sdl;
                }
            }
            _ => {}
        }
        self.c.b_info.dm_restrict = self.r.defbool("dm_restrict")?;
        Ok(())
    }

    /// A PV guest with `vnc=1` and no `vfb=` gets a framebuffer from the top-level keys.
    fn pv_vnc_framebuffer(&mut self) -> Result<(), DomainConfigError> {
        if self.r.defbool("vnc")? != Some(true) {
            return Ok(());
        }
        let vfb = VfbConfig {
            devid: 0,
            vnc: self.vnc_keys()?,
            sdl: self.sdl_keys()?,
            keymap: self.r.string("keymap")?,
            ..VfbConfig::default()
        };
        self.c.vfbs.push(vfb);
        self.c.vkbs.push(VkbConfig { devid: 0 });
        let at = self.r.location("vnc").expect("vnc is set");
        self.src.vfbs.push(at);
        Ok(())
    }

    fn vnc_keys(&mut self) -> Result<VncInfo, DomainConfigError> {
        Ok(VncInfo {
            enable: self.r.defbool("vnc")?,
            listen: self.r.string("vnclisten")?,
            passwd: self.r.string("vncpasswd")?,
            display: self
                .r
                .int("vncdisplay", "a VNC display number")?
                .unwrap_or(0),
            findunused: self.r.defbool("vncunused")?,
        })
    }

    fn sdl_keys(&mut self) -> Result<SdlInfo, DomainConfigError> {
        Ok(SdlInfo {
            enable: self.r.defbool("sdl")?,
            opengl: self.r.defbool("opengl")?,
            display: self.r.string("display")?,
            xauthority: self.r.string("xauthority")?,
        })
    }

    fn hvm_devices(&mut self) -> Result<(), DomainConfigError> {
        if !matches!(self.c.b_info.u, TypeInfo::Hvm(_)) {
            return Ok(());
        }
        let TypeInfo::Hvm(mut h) = std::mem::take(&mut self.c.b_info.u) else {
            unreachable!("checked above");
        };
        if self.r.settings.get("vga").is_some() && self.r.get("stdvga").is_some() {
            let at = self.r.location("stdvga").expect("stdvga is set");
            self.warn(&at, "ignoring stdvga= in favour of vga=");
        }
        let r = &mut self.r;
        if let Some(a) = r.atom("vga")? {
            h.vga.kind = match a.text.as_str() {
                "stdvga" => VgaKind::Std,
                "cirrus" => VgaKind::Cirrus,
                "none" => VgaKind::None,
                "qxl" => VgaKind::Qxl,
                _ => {
                    return Err(check(
                        &a.at,
                        "vga",
                        format!(
                            "Unknown vga \"{}\" specified: expected stdvga, cirrus, none or qxl",
                            a.text
                        ),
                    ));
                }
            };
        } else if let Some(std) = r.defbool("stdvga")? {
            h.vga.kind = if std { VgaKind::Std } else { VgaKind::Cirrus };
        }
        if let Some(a) = r.atom("hdtype")? {
            h.hdtype = HdType::from_libxl_name(&a.text).ok_or_else(|| {
                check(
                    &a.at,
                    "hdtype",
                    format!("invalid value \"{}\": expected ide or ahci", a.text),
                )
            })?;
        }
        h.keymap = r.string("keymap")?;
        let s = &mut h.spice;
        s.enable = r.defbool("spice")?;
        s.port = r.int("spiceport", "a port number")?.unwrap_or(0);
        s.tls_port = r.int("spicetls_port", "a port number")?.unwrap_or(0);
        s.host = r.string("spicehost")?;
        s.disable_ticketing = r.defbool("spicedisable_ticketing")?;
        s.passwd = r.string("spicepasswd")?;
        s.agent_mouse = r.defbool("spiceagent_mouse")?;
        s.vdagent = r.defbool("spicevdagent")?;
        s.clipboard_sharing = r.defbool("spice_clipboard_sharing")?;
        s.usbredirection = r
            .int("spiceusbredirection", "a number of channels")?
            .unwrap_or(0);
        s.image_compression = r.string("spice_image_compression")?;
        s.streaming_video = r.string("spice_streaming_video")?;
        h.nographic = r.defbool("nographic")?;
        if r.is_number("gfx_passthru") {
            h.gfx_passthru = r.defbool("gfx_passthru")?;
        } else if let Some(a) = r.atom("gfx_passthru")? {
            h.gfx_passthru_kind = GfxPassthruKind::from_libxl_name(&a.text).ok_or_else(|| {
                check(
                    &a.at,
                    "gfx_passthru",
                    format!(
                        "invalid value \"{}\": expected 0, 1, \"default\" or \"igd\"",
                        a.text
                    ),
                )
            })?;
            h.gfx_passthru = Some(true);
        }
        if r.is_list("serial") {
            h.serial_list = r
                .string_list("serial")?
                .unwrap_or_default()
                .iter()
                .map(|a| a.text.clone())
                .collect();
        } else {
            h.serial = r.string("serial")?;
        }
        h.boot = r.string("boot")?;
        h.usb = r.defbool("usb")?;
        h.usbversion = r
            .int("usbversion", "a USB version (1, 2 or 3)")?
            .unwrap_or(0);
        if r.is_list("usbdevice") {
            h.usbdevice_list = r
                .string_list("usbdevice")?
                .unwrap_or_default()
                .iter()
                .map(|a| a.text.clone())
                .collect();
        } else {
            h.usbdevice = r.string("usbdevice")?;
        }
        h.vkb_device = r.defbool("vkb_device")?;
        h.soundhw = r.string("soundhw")?;
        h.xen_platform_pci = r.defbool("xen_platform_pci")?;
        h.xen_platform_pci_bar_uc = r.defbool("xen_platform_pci_bar_uc")?;
        if h.vnc.display != 0 && h.vnc.listen.as_deref().is_some_and(|l| l.contains(':')) {
            let at = r.location("vnclisten").expect("set");
            return Err(check(
                &at,
                "vnclisten",
                "Display specified both in vnclisten and vncdisplay",
            ));
        }
        if let Some(a) = r.atom("vendor_device")? {
            h.vendor_device = VendorDevice::from_libxl_name(&a.text).ok_or_else(|| {
                check(
                    &a.at,
                    "vendor_device",
                    format!(
                        "unknown vendor_device '{}': expected none or xenserver",
                        a.text
                    ),
                )
            })?;
        }
        self.c.b_info.u = TypeInfo::Hvm(h);
        Ok(())
    }

    fn tail(&mut self) -> Result<(), DomainConfigError> {
        self.c.c_info.xend_suspend_evtchn_compat = self.r.defbool("xend_suspend_evtchn_compat")?;
        self.c.b_info.vpmu = self.r.defbool("vpmu")?;
        Ok(())
    }

    /// Keys that were set but not read: unknown ones and ones for another guest type are
    /// warnings; ones for features rxen does not model are returned.
    fn unread_keys(&mut self) -> Vec<IgnoredKey> {
        let mut ignored = Vec::new();
        let settings = self.r.settings;
        for name in settings.names() {
            if self.r.used.contains(name) {
                continue;
            }
            let at = settings
                .get(name)
                .expect("listed names are set")
                .name_at
                .line_only();
            match keys::lookup(name) {
                None => self.warn(&at, format!("unknown parameter `{name}' ignored")),
                Some(KeyKind::Read { applies_to }) => self.warn(
                    &at,
                    format!(
                        "parameter `{name}' ignored (it applies to {applies_to}; this is a{} {} guest)",
                        if self.kind() == DomainType::Hvm { "n" } else { "" },
                        self.kind().name().to_uppercase()
                    ),
                ),
                Some(KeyKind::NotModelled { feature }) => ignored.push(IgnoredKey {
                    key: name.to_owned(),
                    at,
                    feature: feature.to_owned(),
                }),
            }
        }
        ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_long_follows_strtol_base_0() {
        let table = [
            ("0", Some(0)),
            ("512", Some(512)),
            ("0x10", Some(16)),
            ("0X1f", Some(31)),
            ("010", Some(8)),
            (" 7", Some(7)),
            ("-3", Some(-3)),
            ("+3", Some(3)),
            ("08", None),
            ("0x", None),
            ("", None),
            ("12 ", None),
            ("1e3", None),
            ("lots", None),
            ("99999999999999999999", None),
        ];
        for (s, want) in table {
            assert_eq!(c_long(s), want, "{s:?}");
        }
    }
}
