//! Every key xl.cfg(5) defines, so that a key rxen does not read can be told apart from a
//! misspelt one.
//!
//! Keys rxen reads into [`crate::DomainConfig`] say which guests they apply to (a key set
//! for another guest type is ignored, as xl ignores it, with a warning). Keys rxen does not
//! model at all name the feature they belong to; the toolstack reports those as not
//! honoured.

/// What a known key is to rxen's parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Read into the domain configuration for the guests described.
    Read { applies_to: &'static str },
    /// A valid xl.cfg key for a feature rxen does not model.
    NotModelled { feature: &'static str },
}

use KeyKind::{NotModelled, Read};

const ALL: KeyKind = Read {
    applies_to: "all guests",
};
const HVM: KeyKind = Read {
    applies_to: "HVM guests",
};
const PV: KeyKind = Read {
    applies_to: "PV guests",
};
const PVH: KeyKind = Read {
    applies_to: "PVH guests",
};
const NOT_PV: KeyKind = Read {
    applies_to: "HVM and PVH guests",
};
const DISPLAY: KeyKind = Read {
    applies_to: "HVM guests, and PV guests with vnc=1 and no vfb=",
};
const PASSTHROUGH: KeyKind = NotModelled {
    feature: "device passthrough",
};
const ARM: KeyKind = NotModelled {
    feature: "Arm guests",
};
const USB: KeyKind = NotModelled {
    feature: "USB devices",
};

/// The registry, from xl.cfg(5) and xl's `parse_config_data`.
const KEYS: &[(&str, KeyKind)] = &[
    ("name", ALL),
    ("uuid", ALL),
    ("type", ALL),
    ("builder", ALL),
    ("pool", ALL),
    ("vcpus", ALL),
    ("maxvcpus", ALL),
    ("cpus", ALL),
    ("cpus_soft", ALL),
    ("cpu_weight", ALL),
    ("cap", ALL),
    ("period", ALL),
    ("slice", ALL),
    ("latency", ALL),
    ("extratime", ALL),
    ("memory", ALL),
    ("maxmem", ALL),
    ("on_poweroff", ALL),
    ("on_reboot", ALL),
    ("on_watchdog", ALL),
    ("on_crash", ALL),
    ("on_soft_reset", ALL),
    ("kernel", ALL),
    ("ramdisk", ALL),
    ("cmdline", ALL),
    ("root", ALL),
    ("extra", ALL),
    ("firmware", ALL),
    ("seclabel", ALL),
    ("init_seclabel", ALL),
    ("max_grant_frames", ALL),
    ("max_maptrack_frames", ALL),
    ("max_grant_version", ALL),
    ("nomigrate", ALL),
    ("driver_domain", ALL),
    ("device_tree", ALL),
    ("passthrough", ALL),
    ("xend_suspend_evtchn_compat", ALL),
    ("vmtrace_buf_kb", ALL),
    ("vpmu", ALL),
    ("disk", ALL),
    ("vif", ALL),
    ("vif2", ALL),
    ("vfb", ALL),
    ("hap", ALL),
    ("oos", ALL),
    ("shadow_memory", ALL),
    ("tsc_mode", ALL),
    ("localtime", ALL),
    ("rtc_timeoffset", ALL),
    ("videoram", ALL),
    ("max_event_channels", ALL),
    ("acpi", ALL),
    ("bootloader", ALL),
    ("bootloader_args", ALL),
    ("bootloader_restrict", ALL),
    ("bootloader_user", ALL),
    ("timer_mode", NOT_PV),
    ("nestedhvm", ALL),
    ("altp2m", ALL),
    ("altp2m_count", ALL),
    ("vncviewer", ALL),
    ("device_model", ALL),
    ("device_model_override", ALL),
    ("device_model_version", ALL),
    ("device_model_stubdomain_override", ALL),
    ("device_model_stubdomain_seclabel", ALL),
    ("device_model_user", ALL),
    ("device_model_args", ALL),
    ("device_model_args_pv", ALL),
    ("device_model_args_hvm", ALL),
    ("stubdomain_kernel", ALL),
    ("stubdomain_cmdline", ALL),
    ("stubdomain_ramdisk", ALL),
    ("stubdomain_memory", ALL),
    ("dm_restrict", ALL),
    ("e820_host", PV),
    ("pvshim", PVH),
    ("pvshim_path", PVH),
    ("pvshim_cmdline", PVH),
    ("pvshim_extra", PVH),
    ("vnc", DISPLAY),
    ("vnclisten", DISPLAY),
    ("vncdisplay", DISPLAY),
    ("vncpasswd", DISPLAY),
    ("vncunused", DISPLAY),
    ("sdl", DISPLAY),
    ("opengl", DISPLAY),
    ("display", DISPLAY),
    ("xauthority", DISPLAY),
    ("keymap", DISPLAY),
    ("firmware_override", HVM),
    ("bios_path_override", HVM),
    ("bios", HVM),
    ("pae", HVM),
    ("acpi_s3", HVM),
    ("acpi_s4", HVM),
    ("acpi_laptop_slate", HVM),
    ("apic", HVM),
    ("nx", HVM),
    ("hpet", HVM),
    ("vpt_align", HVM),
    ("hvm_pirq", HVM),
    ("viridian", HVM),
    ("mmio_hole", HVM),
    ("altp2mhvm", HVM),
    ("smbios_firmware", HVM),
    ("acpi_firmware", HVM),
    ("smbios", HVM),
    ("rdm_mem_boundary", HVM),
    ("mca_caps", HVM),
    ("boot", HVM),
    ("hdtype", HVM),
    ("vga", HVM),
    ("stdvga", HVM),
    ("nographic", HVM),
    ("spice", HVM),
    ("spicehost", HVM),
    ("spiceport", HVM),
    ("spicetls_port", HVM),
    ("spicedisable_ticketing", HVM),
    ("spicepasswd", HVM),
    ("spiceagent_mouse", HVM),
    ("spicevdagent", HVM),
    ("spice_clipboard_sharing", HVM),
    ("spiceusbredirection", HVM),
    ("spice_image_compression", HVM),
    ("spice_streaming_video", HVM),
    ("gfx_passthru", HVM),
    ("serial", HVM),
    ("soundhw", HVM),
    ("vkb_device", HVM),
    ("usb", HVM),
    ("usbversion", HVM),
    ("usbdevice", HVM),
    ("vendor_device", HVM),
    ("xen_platform_pci", HVM),
    ("xen_platform_pci_bar_uc", HVM),
    (
        "ms_vm_genid",
        NotModelled {
            feature: "VM generation IDs",
        },
    ),
    (
        "vnuma",
        NotModelled {
            feature: "virtual NUMA topologies",
        },
    ),
    ("pci", PASSTHROUGH),
    ("pci_permissive", PASSTHROUGH),
    ("pci_msitranslate", PASSTHROUGH),
    ("pci_seize", PASSTHROUGH),
    ("pci_power_mgmt", PASSTHROUGH),
    ("rdm", PASSTHROUGH),
    ("dtdev", PASSTHROUGH),
    ("ioports", PASSTHROUGH),
    ("iomem", PASSTHROUGH),
    ("irqs", PASSTHROUGH),
    (
        "vtpm",
        NotModelled {
            feature: "virtual TPMs",
        },
    ),
    (
        "p9",
        NotModelled {
            feature: "9pfs shares",
        },
    ),
    (
        "pvcalls",
        NotModelled {
            feature: "PV calls",
        },
    ),
    (
        "vdispl",
        NotModelled {
            feature: "virtual displays",
        },
    ),
    (
        "vsnd",
        NotModelled {
            feature: "virtual sound cards",
        },
    ),
    (
        "vkb",
        NotModelled {
            feature: "extra virtual keyboards",
        },
    ),
    (
        "virtio",
        NotModelled {
            feature: "virtio devices",
        },
    ),
    (
        "channel",
        NotModelled {
            feature: "PV channels",
        },
    ),
    ("usbctrl", USB),
    ("usbdev", USB),
    (
        "cpuid",
        NotModelled {
            feature: "CPUID policies",
        },
    ),
    (
        "msr_relaxed",
        NotModelled {
            feature: "relaxed MSR access",
        },
    ),
    (
        "xenstore_feature_mask",
        NotModelled {
            feature: "XenStore feature masks",
        },
    ),
    (
        "xenstore_quota",
        NotModelled {
            feature: "per-domain XenStore quotas",
        },
    ),
    ("llc_colors", ARM),
    ("gic_version", ARM),
    ("vuart", ARM),
    ("sve", ARM),
    ("tee", ARM),
    ("nr_spis", ARM),
    ("arm_sci", ARM),
    ("trap_unmapped_accesses", ARM),
];

/// What `key` is, or `None` for a key xl.cfg does not define.
pub fn lookup(key: &str) -> Option<KeyKind> {
    KEYS.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind)
}

/// Every key xl.cfg defines.
pub fn all() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_duplicates() {
        let mut names: Vec<_> = all().collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn lookup_works() {
        assert_eq!(lookup("serial"), Some(HVM));
        assert!(matches!(lookup("pci"), Some(NotModelled { .. })));
        assert_eq!(lookup("memroy"), None);
    }
}
