//! What the domain process builds, taken from the toolstack's
//! `config.json` (xl-config's `DomainConfig`, libxl's JSON shape), and
//! where it keeps its files (`docs/domain-process.md`, "Paths").
//!
//! [`DomainSpec`] is the input of the domain builder: only what rxen acts
//! on, validated once. Keys of `DomainConfig` that the domain process does
//! not implement are left to the toolstack to refuse or warn about.

use std::path::{Path, PathBuf};

use backends::blk::xenbus::vdev_to_devid;
use backends::blk::{DiskConfig, DiskFormat};
use xl_config::{DomainConfig, DomainType};

use crate::layout::{MAX_MEMORY, MIN_MEMORY, PAGE_SIZE};

/// Grant frames when the config does not say (Xen's default).
pub const DEFAULT_MAX_GRANT_FRAMES: u32 = 64;
/// The most vCPUs a domain may have (the MADT's limit).
pub const MAX_VCPUS: u32 = crate::boot::acpi::MAX_VCPUS;

/// A configuration rxen cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading `config.json` failed.
    #[error("reading {0} failed")]
    Read(PathBuf, #[source] std::io::Error),
    /// `config.json` is not a `DomainConfig`.
    #[error("{0} is not a domain configuration")]
    Parse(PathBuf, #[source] serde_json::Error),
    /// An HVM guest needs a device model and firmware.
    #[error("type \"hvm\" guests are not supported: rxen boots PVH (and PV configs as PVH)")]
    Hvm,
    /// No kernel to boot.
    #[error("the configuration has no kernel= to boot")]
    NoKernel,
    /// No or unusable memory size.
    #[error("memory of {0} KiB is outside what rxen supports ({min} to {max} MiB, 4 KiB pages)", min = MIN_MEMORY >> 20, max = MAX_MEMORY >> 20)]
    Memory(u64),
    /// vCPU count out of range.
    #[error("{0} vCPUs is outside 1..={MAX_VCPUS}")]
    Vcpus(u32),
    /// A disk's `vdev` is not a name libxl numbers (`xvda`, `hdc`, `d0p1`, ...).
    #[error("disk {0:?}: not a virtual device name (xvdX, hdX, sdX, dNpM)")]
    DiskVdev(String),
    /// Two disks with one device number.
    #[error("disk {0}: another disk has the same device number")]
    DiskDuplicate(String),
    /// Two network interfaces with one device number.
    #[error("vif {0}: another vif has the same device number")]
    NicDuplicate(u32),
    /// A disk the block backend cannot serve.
    #[error("disk {vdev}: {why}")]
    Disk {
        /// The disk.
        vdev: String,
        /// What is wrong.
        why: String,
    },
}

/// A virtual disk the domain process serves (`disk=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// The name the guest sees (`xvda`).
    pub vdev: String,
    /// Its device number (the XenStore directory name).
    pub devid: u32,
    /// What backs it.
    pub config: DiskConfig,
}

impl DiskSpec {
    /// From one of `DomainConfig`'s disks.
    pub fn from_config(d: &xl_config::DiskConfig) -> Result<Self, ConfigError> {
        let vdev = d.vdev.clone().unwrap_or_default();
        let devid = vdev_to_devid(&vdev).ok_or_else(|| ConfigError::DiskVdev(vdev.clone()))?;
        let bad = |why: String| ConfigError::Disk {
            vdev: vdev.clone(),
            why,
        };
        let format = match d.format {
            xl_config::DiskFormat::Raw | xl_config::DiskFormat::Unknown => DiskFormat::Raw,
            xl_config::DiskFormat::Qcow2 => DiskFormat::Qcow2,
            xl_config::DiskFormat::Empty => DiskFormat::Raw,
            other => {
                return Err(bad(format!(
                    "format {} cannot be served (raw and qcow2 can)",
                    other.libxl_name()
                )));
            }
        };
        if let Some(s) = &d.script {
            return Err(bad(format!(
                "script={s}: rxen runs no block hotplug scripts"
            )));
        }
        let path = d
            .pdev_path
            .clone()
            .filter(|p| !p.is_empty() && d.format != xl_config::DiskFormat::Empty);
        let cdrom = d.is_cdrom != 0;
        if path.is_none() && !cdrom {
            return Err(bad("no target: only a cdrom drive may be empty".to_owned()));
        }
        Ok(Self {
            devid,
            config: DiskConfig {
                path: path.map(PathBuf::from),
                format,
                readonly: d.readwrite == 0,
                cdrom,
            },
            vdev,
        })
    }
}

/// A network interface the domain process serves (`vif=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicSpec {
    /// Its device number (the XenStore directory name, `vif<domid>.<devid>`).
    pub devid: u32,
    /// The guest's address: `mac=`, else the stable generated one.
    pub mac: backends::net::mac::Mac,
    /// The entry as configured (what its XenStore nodes are made of).
    pub config: xl_config::NicConfig,
}

/// The domain to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSpec {
    /// `name=`.
    pub name: String,
    /// `uuid=` (zero when absent).
    pub uuid: [u8; 16],
    /// Guest RAM in bytes (`memory=`).
    pub memory: u64,
    /// vCPUs (`vcpus=`).
    pub vcpus: u32,
    /// Host CPUs each vCPU may run on (`cpus=`); empty means any.
    pub affinity: Vec<Vec<u32>>,
    /// `kernel=`.
    pub kernel: PathBuf,
    /// `ramdisk=`.
    pub ramdisk: Option<PathBuf>,
    /// The kernel command line (`cmdline=`, or `root=` and `extra=`).
    pub cmdline: String,
    /// `max_grant_frames=`.
    pub max_grant_frames: u32,
    /// `disk=`: the virtual disks, served by blkback in this process.
    pub disks: Vec<DiskSpec>,
    /// `vif=`: the network interfaces, served by netback in this process.
    pub nics: Vec<NicSpec>,
}

impl DomainSpec {
    /// Read and check `config.json`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        let c =
            DomainConfig::from_json(&text).map_err(|e| ConfigError::Parse(path.to_owned(), e))?;
        Self::from_config(&c)
    }

    /// Check a parsed `DomainConfig`.
    pub fn from_config(c: &DomainConfig) -> Result<Self, ConfigError> {
        if c.c_info.kind == DomainType::Hvm {
            return Err(ConfigError::Hvm);
        }
        let b = &c.b_info;
        let kernel = b.kernel.clone().ok_or(ConfigError::NoKernel)?;
        let memkb = b.target_memkb.or(b.max_memkb).unwrap_or(0);
        let memory = memkb.saturating_mul(1024);
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&memory) || memory % PAGE_SIZE != 0 {
            return Err(ConfigError::Memory(memkb));
        }
        let avail = b.avail_vcpus.iter().count() as u32;
        let vcpus = if avail > 0 { avail } else { b.max_vcpus.max(1) };
        if vcpus == 0 || vcpus > MAX_VCPUS {
            return Err(ConfigError::Vcpus(vcpus));
        }
        if b.max_vcpus > vcpus {
            tracing::warn!(
                max_vcpus = b.max_vcpus,
                vcpus,
                "vCPU hot-plug is not supported: the domain has its online vCPUs only"
            );
        }
        let affinity = (0..vcpus as usize)
            .map(|i| {
                b.vcpu_hard_affinity
                    .get(i)
                    .map(|m| m.iter().collect())
                    .unwrap_or_default()
            })
            .collect();
        let mut disks: Vec<DiskSpec> = Vec::new();
        for d in &c.disks {
            let d = DiskSpec::from_config(d)?;
            if disks.iter().any(|o| o.devid == d.devid) {
                return Err(ConfigError::DiskDuplicate(d.vdev));
            }
            disks.push(d);
        }
        let uuid = c.c_info.uuid.map(|u| u.0).unwrap_or_default();
        // Unnumbered vifs (a config.json not written by xl create) are
        // numbered as libxl does: after the highest number given.
        let mut last = c.nics.iter().map(|n| n.devid).max().unwrap_or(-1);
        let mut nics: Vec<NicSpec> = Vec::new();
        for n in &c.nics {
            let devid = if n.devid < 0 {
                last += 1;
                last
            } else {
                n.devid
            }
            .unsigned_abs();
            if nics.iter().any(|o| o.devid == devid) {
                return Err(ConfigError::NicDuplicate(devid));
            }
            nics.push(NicSpec {
                devid,
                mac: n
                    .mac
                    .unwrap_or_else(|| backends::net::mac::generated(&uuid, devid)),
                config: n.clone(),
            });
        }
        Ok(Self {
            name: c
                .c_info
                .name
                .clone()
                .unwrap_or_else(|| "rxen-guest".to_owned()),
            uuid,
            memory,
            vcpus,
            affinity,
            kernel: PathBuf::from(kernel),
            ramdisk: b.ramdisk.clone().map(PathBuf::from),
            cmdline: b.cmdline.clone().unwrap_or_default(),
            max_grant_frames: b.max_grant_frames.unwrap_or(DEFAULT_MAX_GRANT_FRAMES),
            disks,
            nics,
        })
    }
}

/// The runtime root (`RXEN_RUN_DIR`, default `/run/rxen`).
pub fn run_root() -> PathBuf {
    std::env::var_os("RXEN_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/rxen"))
}

/// One domain's runtime dir: `<runtime root>/domain/<domid>/`.
pub fn runtime_dir(domid: u16) -> PathBuf {
    run_root().join("domain").join(domid.to_string())
}

/// The console log of domain `name`: `guest-<name>.log` in `RXEN_LOG_DIR`
/// (default `/var/log/xen/console`).
pub fn console_log(name: &str) -> PathBuf {
    let dir = std::env::var_os("RXEN_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/log/xen/console"));
    // A name is one path component.
    let safe: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    dir.join(format!("guest-{safe}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xl_config::{Bitmap, ConfigSource, CpuTopology, parse_domain_config};

    fn parse(text: &str) -> DomainConfig {
        let mut w = Vec::new();
        parse_domain_config(
            &[ConfigSource {
                name: "t.cfg",
                text,
            }],
            &CpuTopology::default(),
            &mut w,
        )
        .unwrap()
        .config
    }

    #[test]
    fn pvh_config() {
        let c = parse(
            "name=\"g1\"\ntype=\"pvh\"\nkernel=\"/k\"\nramdisk=\"/r\"\nmemory=256\nvcpus=2\nextra=\"console=hvc0\"\n",
        );
        let s = DomainSpec::from_config(&c).unwrap();
        assert_eq!(s.name, "g1");
        assert_eq!(s.memory, 256 << 20);
        assert_eq!(s.vcpus, 2);
        assert_eq!(s.kernel, PathBuf::from("/k"));
        assert_eq!(s.ramdisk, Some(PathBuf::from("/r")));
        assert!(s.cmdline.contains("console=hvc0"), "{}", s.cmdline);
        assert_eq!(s.affinity, vec![Vec::<u32>::new(); 2]);
        assert_eq!(s.max_grant_frames, DEFAULT_MAX_GRANT_FRAMES);
        // The JSON round trip the toolstack uses.
        let back = DomainConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(DomainSpec::from_config(&back).unwrap(), s);
    }

    #[test]
    fn refusals() {
        let mut c = parse("name=\"g\"\nkernel=\"/k\"\nmemory=64\n");
        assert!(
            DomainSpec::from_config(&c).is_ok(),
            "PV configs boot as PVH"
        );
        c.c_info.kind = DomainType::Hvm;
        assert!(matches!(DomainSpec::from_config(&c), Err(ConfigError::Hvm)));
        let mut c = parse("name=\"g\"\nkernel=\"/k\"\nmemory=64\n");
        c.b_info.kernel = None;
        assert!(matches!(
            DomainSpec::from_config(&c),
            Err(ConfigError::NoKernel)
        ));
        let mut c = parse("name=\"g\"\nkernel=\"/k\"\nmemory=8\n");
        assert!(matches!(
            DomainSpec::from_config(&c),
            Err(ConfigError::Memory(8192))
        ));
        c.b_info.target_memkb = Some(65537);
        assert!(matches!(
            DomainSpec::from_config(&c),
            Err(ConfigError::Memory(_))
        ));
        c.b_info.target_memkb = Some(65536);
        c.b_info.avail_vcpus = Bitmap::first(200);
        assert!(matches!(
            DomainSpec::from_config(&c),
            Err(ConfigError::Vcpus(200))
        ));
    }

    #[test]
    fn affinity_from_cpus() {
        let mut c = parse("name=\"g\"\nkernel=\"/k\"\nmemory=64\nvcpus=2\n");
        let mut m = Bitmap::new();
        m.set(1);
        c.b_info.vcpu_hard_affinity = vec![m.clone(), m];
        let s = DomainSpec::from_config(&c).unwrap();
        assert_eq!(s.affinity, vec![vec![1], vec![1]]);
    }

    #[test]
    fn disks_from_xl_specs() {
        let c = parse(
            "name=\"g\"\nkernel=\"/k\"\nmemory=64\ndisk=['/i/a.img,raw,xvda,w', 'format=qcow2,vdev=xvdb,access=r,target=/i/b.qcow2', ',,hdc:cdrom,r', 'phy:/dev/vg/lv,xvdc,w']\n",
        );
        let s = DomainSpec::from_config(&c).unwrap();
        let d: Vec<_> = s
            .disks
            .iter()
            .map(|d| (d.vdev.as_str(), d.devid, d.config.clone()))
            .collect();
        assert_eq!(
            d,
            vec![
                (
                    "xvda",
                    51712,
                    DiskConfig {
                        path: Some("/i/a.img".into()),
                        format: DiskFormat::Raw,
                        readonly: false,
                        cdrom: false
                    }
                ),
                (
                    "xvdb",
                    51728,
                    DiskConfig {
                        path: Some("/i/b.qcow2".into()),
                        format: DiskFormat::Qcow2,
                        readonly: true,
                        cdrom: false
                    }
                ),
                (
                    "hdc",
                    5632,
                    DiskConfig {
                        path: None,
                        format: DiskFormat::Raw,
                        readonly: true,
                        cdrom: true
                    }
                ),
                (
                    "xvdc",
                    51744,
                    DiskConfig {
                        path: Some("/dev/vg/lv".into()),
                        format: DiskFormat::Raw,
                        readonly: false,
                        cdrom: false
                    }
                ),
            ]
        );
        let back = DomainConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(DomainSpec::from_config(&back).unwrap(), s);

        for (spec, want) in [
            ("'/a,vhd,xvda,w'", "format vhd cannot be served"),
            ("'/a,raw,xvda,w', '/b,raw,d0p0,w'", "same device number"),
            ("'/a,raw,vda,w'", "not a virtual device name"),
            ("'/a,raw,xvda,w,script=block-iscsi'", "hotplug scripts"),
        ] {
            let c = parse(&format!(
                "name=\"g\"\nkernel=\"/k\"\nmemory=64\ndisk=[{spec}]\n"
            ));
            let e = DomainSpec::from_config(&c).unwrap_err().to_string();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn nics_numbered_and_addressed() {
        let c = parse(
            "name=\"g\"\nkernel=\"/k\"\nmemory=64\nuuid=\"5b0e3a2c-7a1f-4c61-9d4e-0123456789ab\"\nvif=['', 'mac=00:16:3e:0a:0b:0c,script=vif-route,ip=169.254.1.2', 'devid=7']\n",
        );
        let s = DomainSpec::from_config(&c).unwrap();
        let got: Vec<_> = s
            .nics
            .iter()
            .map(|n| (n.devid, n.mac.to_string(), n.config.script.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "00:16:3e:59:02:56".to_owned(), None),
                (
                    1,
                    "00:16:3e:0a:0b:0c".to_owned(),
                    Some("vif-route".to_owned())
                ),
                (
                    7,
                    backends::net::mac::generated(&s.uuid, 7).to_string(),
                    None
                ),
            ]
        );
        let c = parse("name=\"g\"\nkernel=\"/k\"\nmemory=64\nvif=['devid=1', 'devid=1']\n");
        assert_eq!(
            DomainSpec::from_config(&c).unwrap_err().to_string(),
            "vif 1: another vif has the same device number"
        );
    }

    #[test]
    fn log_names_stay_in_their_dir() {
        let p = console_log("a/b");
        assert_eq!(p.file_name().unwrap(), "guest-a_b.log");
    }
}
