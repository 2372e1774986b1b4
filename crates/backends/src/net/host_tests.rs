//! Netback, the TAP and the hotplug built-ins against the real kernel.
//!
//! Each test that needs the kernel's networking moves its own thread into
//! a fresh network namespace first (`unshare(CLONE_NEWNET)`; commands it
//! runs inherit it), so nothing touches the host's interfaces; the
//! namespace has no uplink and only link-local addresses
//! (169.254.0.0/16). Without the privilege for that (root with
//! CAP_NET_ADMIN) they print that they are skipped and pass.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::csum::{self, fold, sum};
use super::device::{Offloads, PacketDevice};
use super::hotplug::{Action, HotplugError, SystemHost, VifParams, hotplug, status_nodes};
use super::mac::{HOST_SIDE_MAC, Mac};
use super::tap::Tap;
use super::tests::{Front, Received, all_features};
use super::*;
use crate::ring::mock::MockNotify;

/// Move this thread into a new network namespace; false (and a message)
/// if not permitted.
fn enter_netns(test: &str) -> bool {
    // SAFETY: unshare(CLONE_NEWNET) takes no pointers; it moves only the
    // calling thread into a new network namespace.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if r != 0 {
        eprintln!(
            "SKIPPED {test}: cannot create a network namespace ({}); needs root with CAP_NET_ADMIN",
            std::io::Error::last_os_error()
        );
        return false;
    }
    true
}

fn ip(args: &str) -> String {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip -o link show dev` (not /sys/class/net, which shows the namespace
/// /sys was mounted in).
fn link(dev: &str) -> String {
    ip(&format!("-o link show dev {dev}"))
}

fn link_mac(dev: &str) -> Mac {
    let l = link(dev);
    let mut w = l.split_whitespace();
    w.position(|t| t == "link/ether").expect("an Ethernet link");
    w.next().unwrap().parse().unwrap()
}

fn sys(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_owned()
}

/// A scratch directory (no hotplug scripts in it unless a test adds them).
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rxen-net-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const UUID: [u8; 16] = *b"rxen-netback-tst";

/// Ethernet + IPv4 header (checksummed) around `l4` of protocol `proto`.
fn ipv4_frame(dst: Mac, src: Mac, s: [u8; 4], d: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut iph = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    iph[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    iph.extend_from_slice(&s);
    iph.extend_from_slice(&d);
    let c = !fold(sum(&iph, 0));
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(l4);
    f
}

fn icmp_echo(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    let c = !fold(sum(&m, 0));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// Let the host's frames reach the guest until one satisfies `want`
/// (bounded: about three seconds), re-posting the buffers it used.
fn pump<D: PacketDevice>(
    nb: &mut Netback<
        crate::grant::Grants<crate::grant::mock::MockGuest>,
        D,
        crate::ring::mock::MockRing,
        MockNotify,
    >,
    f: &mut Front,
    want: impl Fn(&Received) -> bool,
) -> Option<Received> {
    for _ in 0..300 {
        nb.process_rx().unwrap();
        let got = f.receive();
        let used: usize = got
            .iter()
            .map(|r| r.3.len() + usize::from(r.1.is_some()))
            .sum();
        f.post_rx(used as u32);
        if let Some(r) = got.into_iter().find(|r| want(r)) {
            return Some(r);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn is_icmp_reply(r: &Received, id: u16) -> bool {
    let d = &r.2;
    d.len() >= 42
        && d[12..14] == [8, 0]
        && d[23] == 1
        && d[34] == 0
        && d[38..40] == id.to_be_bytes()
}

fn is_udp_to(r: &Received, port: u16) -> bool {
    let d = &r.2;
    d.len() >= 42 && d[12..14] == [8, 0] && d[23] == 17 && d[36..38] == port.to_be_bytes()
}

#[test]
fn bridged_vif_carries_ping_and_udp_both_ways() {
    if !enter_netns("bridged_vif_carries_ping_and_udp_both_ways") {
        return;
    }
    ip("link add xenbr0 type bridge");
    ip("link set xenbr0 up");
    ip("addr add 169.254.10.1/16 dev xenbr0");
    let mut tap = Tap::create("vif1.0").unwrap();
    assert_eq!(link_mac("vif1.0"), HOST_SIDE_MAC);
    let p = VifParams {
        domid: 1,
        devid: 0,
        dev: "vif1.0".into(),
        ..Default::default()
    };
    let dir = scratch("bridge");
    let report = hotplug(&mut SystemHost, &p, Action::Online, &dir).unwrap();
    assert_eq!(report.ran_script, None, "no script there: built-in");
    assert_eq!(report.mtu, Some(1500), "the bridge's MTU");
    let l = link("vif1.0");
    assert!(l.contains(" master xenbr0 ") && l.contains(",UP"), "{l}");

    let gmac = super::mac::generated(&UUID, 0);
    ip(&format!(
        "neigh add 169.254.10.2 lladdr {gmac} dev xenbr0 nud permanent"
    ));
    let bmac = link_mac("xenbr0");
    let (g, h) = ([169, 254, 10, 2], [169, 254, 10, 1]);

    let mut f = Front::new();
    f.post_rx(64);
    let sock = UdpSocket::bind("169.254.10.1:5555").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    {
        let mut nb = Netback::new(
            f.tx.clone(),
            f.rx.clone(),
            MockNotify::default(),
            f.g.clone(),
            &mut tap,
            all_features(),
            NetbackConfig::default(),
            Instant::now(),
        );

        // Guest → host ping; the host's reply comes back through RX.
        let ping = ipv4_frame(bmac, gmac, g, h, 1, &icmp_echo(0x4242, 1, b"rxen ping"));
        f.send(&ping, 0, 1, ping.len(), 0, None);
        assert_eq!(nb.process_tx(Instant::now()).unwrap().packets, 1);
        assert_eq!(f.tx_responses(), [(1, NETIF_RSP_OKAY)]);
        let reply = pump(&mut nb, &mut f, |r| is_icmp_reply(r, 0x4242)).expect("echo reply");
        assert_eq!(&reply.2[..6], &gmac.0);
        assert_eq!(&reply.2[42..], b"rxen ping");

        // Guest → host UDP with the checksum left blank, offloaded to the
        // host as NEEDS_CSUM.
        let dgram = ipv4_frame(bmac, gmac, g, h, 17, &udp(4444, 5555, b"blank checksum"));
        f.send(&dgram, NETTXF_csum_blank, 2, dgram.len(), 0, None);
        nb.process_tx(Instant::now()).unwrap();
        assert_eq!(f.tx_responses(), [(2, NETIF_RSP_OKAY)]);
        let mut buf = [0u8; 64];
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"blank checksum");
        assert_eq!(from.to_string(), "169.254.10.2:4444");

        // Host → guest UDP: the host hands it over with a partial checksum
        // (the guest accepts that), the guest gets csum_blank.
        sock.send_to(b"to the guest", "169.254.10.2:4444").unwrap();
        let r = pump(&mut nb, &mut f, |r| is_udp_to(r, 4444)).expect("datagram");
        assert_eq!(
            r.0 & NETRXF_csum_blank,
            NETRXF_csum_blank,
            "flags {:#x}",
            r.0
        );
        let mut frame = r.2.clone();
        assert_eq!(&frame[42..], b"to the guest");
        let l4 = csum::locate_l4(&frame).unwrap();
        csum::complete_partial(&mut frame, l4.start, l4.csum_offset).unwrap();
        assert!(csum::verify(&frame).unwrap());
    }
    {
        // The same vif with software checksums and a guest that takes no
        // partial checksums.
        let features = FrontendFeatures {
            csum: false,
            ..FrontendFeatures::default()
        };
        let cfg = NetbackConfig {
            software_tx_csum: true,
            ..Default::default()
        };
        let mut nb = Netback::new(
            f.tx.clone(),
            f.rx.clone(),
            MockNotify::default(),
            f.g.clone(),
            &mut tap,
            features,
            cfg,
            Instant::now(),
        );
        // A frame with a wrong checksum (not blank): the host drops it;
        // then a blank one completed here: the host takes it. Receiving
        // the second first shows the first was checked and dropped.
        let mut bad = ipv4_frame(bmac, gmac, g, h, 17, &udp(4444, 5555, b"wrong"));
        bad[40..42].copy_from_slice(&[0x12, 0x34]);
        f.send(&bad, 0, 3, bad.len(), 0, None);
        let good = ipv4_frame(bmac, gmac, g, h, 17, &udp(4444, 5555, b"software"));
        f.send(&good, NETTXF_csum_blank, 4, good.len(), 0, None);
        nb.process_tx(Instant::now()).unwrap();
        assert_eq!(f.tx_responses(), [(3, NETIF_RSP_OKAY), (4, NETIF_RSP_OKAY)]);
        let mut buf = [0u8; 64];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"software");
        // Host → guest: now complete on arrival.
        sock.send_to(b"complete", "169.254.10.2:4444").unwrap();
        let r = pump(&mut nb, &mut f, |r| is_udp_to(r, 4444)).expect("datagram");
        assert_eq!(r.0 & NETRXF_csum_blank, 0);
        assert!(csum::verify(&r.2).unwrap());
        assert_eq!(&r.2[42..], b"complete");
    }
    hotplug(&mut SystemHost, &p, Action::Offline, &dir).unwrap();
    assert!(!link("vif1.0").contains(" master "));
    drop(tap);
    let gone = Command::new("ip")
        .args(["link", "show", "dev", "vif1.0"])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the TAP goes with its fd");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bridged_vif_without_its_bridge_reports_an_error() {
    if !enter_netns("bridged_vif_without_its_bridge_reports_an_error") {
        return;
    }
    let _tap = Tap::create("vif4.2").unwrap();
    let p = VifParams {
        domid: 4,
        devid: 2,
        dev: "vif4.2".into(),
        bridge: Some("br-none".into()),
        ..Default::default()
    };
    let dir = scratch("nobridge");
    let r = hotplug(&mut SystemHost, &p, Action::Online, &dir);
    assert!(matches!(r, Err(HotplugError::NoBridge(ref b)) if b == "br-none"));
    assert_eq!(status_nodes(&r)[1], ("hotplug-status", "error".to_owned()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn routed_vif_gets_host_routes_and_carries_a_ping() {
    if !enter_netns("routed_vif_gets_host_routes_and_carries_a_ping") {
        return;
    }
    ip("link add gw0 type bridge");
    ip("link set gw0 up");
    ip("addr add 169.254.20.1/24 dev gw0");
    let mut tap = Tap::create("vif2.0").unwrap();
    let p = VifParams {
        domid: 2,
        devid: 0,
        dev: "vif2.0".into(),
        script: Some("vif-route".into()),
        ip: Some("169.254.21.7".into()),
        gatewaydev: Some("gw0".into()),
        ..Default::default()
    };
    let dir = scratch("route");
    hotplug(&mut SystemHost, &p, Action::Online, &dir).unwrap();
    let routes = ip("-4 route show dev vif2.0");
    let line = routes
        .lines()
        .find(|l| l.starts_with("169.254.21.7 "))
        .unwrap_or_else(|| panic!("no host route in {routes:?}"));
    assert!(
        line.contains("src 169.254.20.1") && line.contains("metric 2"),
        "{line}"
    );
    assert!(ip("-4 -o addr show dev vif2.0").contains("169.254.20.1/32"));
    assert_eq!(sys("/proc/sys/net/ipv4/conf/vif2.0/proxy_arp"), "1");
    assert_eq!(sys("/proc/sys/net/ipv4/conf/vif2.0/forwarding"), "1");

    // The guest pings the host's address through the TAP (its gateway's
    // MAC is the TAP's, as proxy ARP would answer).
    let gmac = super::mac::generated(&UUID, 2);
    ip(&format!(
        "neigh add 169.254.21.7 lladdr {gmac} dev vif2.0 nud permanent"
    ));
    let mut f = Front::new();
    f.post_rx(64);
    let mut nb = Netback::new(
        f.tx.clone(),
        f.rx.clone(),
        MockNotify::default(),
        f.g.clone(),
        &mut tap,
        all_features(),
        NetbackConfig::default(),
        Instant::now(),
    );
    let ping = ipv4_frame(
        HOST_SIDE_MAC,
        gmac,
        [169, 254, 21, 7],
        [169, 254, 20, 1],
        1,
        &icmp_echo(7, 1, b"routed"),
    );
    f.send(&ping, 0, 1, ping.len(), 0, None);
    nb.process_tx(Instant::now()).unwrap();
    let reply = pump(&mut nb, &mut f, |r| is_icmp_reply(r, 7)).expect("echo reply");
    assert_eq!(&reply.2[6..12], &HOST_SIDE_MAC.0, "from the TAP");
    assert_eq!(&reply.2[42..], b"routed");
    drop(nb);

    hotplug(&mut SystemHost, &p, Action::Offline, &dir).unwrap();
    assert!(!ip("-4 route show dev vif2.0").contains("169.254.21.7"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nat_vif_gets_its_router_address() {
    if !enter_netns("nat_vif_gets_its_router_address") {
        return;
    }
    let _tap = Tap::create("vif3.0").unwrap();
    let p = VifParams {
        domid: 3,
        devid: 0,
        dev: "vif3.0".into(),
        script: Some("/etc/xen/scripts/vif-nat".into()),
        ip: Some("169.254.30.5".into()),
        ..Default::default()
    };
    if Path::new("/etc/xen/scripts/vif-nat").exists() {
        eprintln!("SKIPPED nat_vif_gets_its_router_address: Xen's vif-nat is installed");
        return;
    }
    let dir = scratch("nat");
    let report = hotplug(&mut SystemHost, &p, Action::Online, &dir).unwrap();
    assert!(ip("-4 -o addr show dev vif3.0").contains("169.254.30.132/32"));
    let routes = ip("-4 route show dev vif3.0");
    assert!(
        routes
            .lines()
            .any(|l| l.starts_with("169.254.30.5 ") && l.contains("src 169.254.30.132")),
        "{routes:?}"
    );
    assert_eq!(sys("/proc/sys/net/ipv4/ip_forward"), "1");
    let has_iptables = Command::new("iptables").arg("--version").output().is_ok();
    assert_eq!(
        report.warnings.is_empty(),
        has_iptables,
        "{:?}",
        report.warnings
    );
    hotplug(&mut SystemHost, &p, Action::Offline, &dir).unwrap();
    assert!(!ip("-4 route show dev vif3.0").contains("169.254.30.5"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_users_script_runs_with_xens_interface() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("script");
    let out = dir.join("out");
    let script = dir.join("vif-bridge");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 $2 $XENBUS_PATH $XENBUS_TYPE $XENBUS_BASE_PATH vif=$vif netdev=$netdev\" > {}\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = VifParams {
        domid: 9,
        devid: 3,
        dev: "vif9.3".into(),
        gatewaydev: Some("eth7".into()),
        ..Default::default()
    };
    let r = hotplug(&mut SystemHost, &p, Action::Online, &dir).unwrap();
    assert_eq!(r.ran_script.as_deref(), Some(script.as_path()));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "online type_if=vif backend/vif/9/3 vif backend vif=vif9.3 netdev=eth7\n"
    );
    // A failing script: its status and the end of its stderr.
    std::fs::write(&script, "#!/bin/sh\necho 'no such bridge' >&2\nexit 3\n").unwrap();
    let e = hotplug(&mut SystemHost, &p, Action::Online, &dir).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("exit status: 3") && msg.contains("no such bridge"),
        "{msg}"
    );
    // A script that hangs is killed at the timeout.
    std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
    let err = super::hotplug::HostOps::run_script(
        &mut SystemHost,
        &script,
        &[],
        &[],
        Duration::from_millis(200),
    )
    .unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn guest_tso_frame_is_segmented_by_the_host_for_a_port_without_tso() {
    if !enter_netns("guest_tso_frame_is_segmented_by_the_host_for_a_port_without_tso") {
        return;
    }
    ip("link add xenbr0 type bridge");
    ip("link set xenbr0 up");
    let mut a = Tap::create("vif5.0").unwrap();
    // Another vif on the bridge, read directly: no offloads at all, so the
    // host must segment and checksum what it forwards there.
    let mut b = Tap::create("vif6.0").unwrap();
    b.set_offloads(Offloads::default()).unwrap();
    let dir = scratch("tso");
    for (domid, dev) in [(5, "vif5.0"), (6, "vif6.0")] {
        let p = VifParams {
            domid,
            devid: 0,
            dev: dev.into(),
            ..Default::default()
        };
        hotplug(&mut SystemHost, &p, Action::Online, &dir).unwrap();
    }
    let mut f = Front::new();
    let mut nb = Netback::new(
        f.tx.clone(),
        f.rx.clone(),
        MockNotify::default(),
        f.g.clone(),
        &mut a,
        all_features(),
        NetbackConfig::default(),
        Instant::now(),
    );
    let payload: Vec<u8> = (0..8000u32).map(|i| (i % 251) as u8).collect();
    // A TCP/IPv4 segment of 8000 bytes to an unknown MAC: flooded to vif6.0.
    let frame = csum::testframes::ipv4(csum::IPPROTO_TCP, &payload);
    let gso = netif_extra_info::gso(1448, XEN_NETIF_GSO_TYPE_TCPV4, 0, 0);
    f.send(
        &frame,
        NETTXF_csum_blank | NETTXF_data_validated,
        1,
        66,
        0,
        Some(gso),
    );
    nb.process_tx(Instant::now()).unwrap();
    assert_eq!(f.tx_responses()[0], (1, NETIF_RSP_OKAY));

    let mut got = Vec::new();
    let mut segments = Vec::new();
    let mut buf = vec![0u8; MAX_HOST_FRAME];
    for _ in 0..300 {
        match b.recv(&mut buf).unwrap() {
            Some((h, n)) => {
                let s = &buf[..n];
                if s[12..14] == [8, 0] && s[23] == csum::IPPROTO_TCP {
                    assert_eq!(h.gso_type, device::VIRTIO_NET_HDR_GSO_NONE);
                    segments.push(s.to_vec());
                    got.extend_from_slice(&s[54..]);
                }
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
        if got.len() >= payload.len() {
            break;
        }
    }
    assert_eq!(segments.len(), payload.len().div_ceil(1448));
    assert_eq!(got, payload);
    let mut seq = 0x0102_0304u32;
    for s in &segments {
        assert!(
            csum::verify(s).unwrap(),
            "every segment's checksum is right"
        );
        assert!(s.len() <= 54 + 1448);
        assert_eq!(s[38..42], seq.to_be_bytes());
        seq += (s.len() - 54) as u32;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Not a test: figures for netback's own cost over a real TAP and bridge
/// (`cargo test -p backends --release -- --ignored netback_throughput
/// --nocapture`). The guest side is the mocks (a mutex per ring access).
#[test]
#[ignore = "a measurement; run by hand"]
fn netback_throughput() {
    if !enter_netns("netback_throughput") {
        return;
    }
    ip("link add xenbr0 type bridge");
    ip("link set xenbr0 up");
    ip("addr add 169.254.10.1/16 dev xenbr0");
    let mut tap = Tap::create("vif1.0").unwrap();
    let dir = scratch("bench");
    let p = VifParams {
        domid: 1,
        devid: 0,
        dev: "vif1.0".into(),
        ..Default::default()
    };
    hotplug(&mut SystemHost, &p, Action::Online, &dir).unwrap();
    let gmac = super::mac::generated(&UUID, 0);
    ip(&format!(
        "neigh add 169.254.10.2 lladdr {gmac} dev xenbr0 nud permanent"
    ));
    let bmac = link_mac("xenbr0");
    let (g, h) = ([169, 254, 10, 2], [169, 254, 10, 1]);
    let sock = UdpSocket::bind("169.254.10.1:5555").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut f = Front::new();
    f.post_rx(256);
    let mut nb = Netback::new(
        f.tx.clone(),
        f.rx.clone(),
        MockNotify::default(),
        f.g.clone(),
        &mut tap,
        all_features(),
        NetbackConfig::default(),
        Instant::now(),
    );
    // Guest → host: 1472-byte UDP payloads, checksum blank.
    let dgram = ipv4_frame(bmac, gmac, g, h, 17, &udp(4444, 5555, &[0x5a; 1472]));
    let reader = {
        let sock = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut n = 0u64;
            while sock.recv(&mut buf).is_ok() {
                n += 1;
            }
            n
        })
    };
    let total = 200_000u32;
    let t = Instant::now();
    for i in 0..total {
        f.send(
            &dgram,
            NETTXF_csum_blank,
            (i % 256) as u16,
            dgram.len(),
            0,
            None,
        );
        if i % 64 == 63 {
            nb.process_tx(Instant::now()).unwrap();
            f.tx_responses();
        }
    }
    nb.process_tx(Instant::now()).unwrap();
    let el = t.elapsed();
    let got = reader.join().unwrap();
    let s = el.as_secs_f64();
    eprintln!(
        "TX: {total} frames of {} bytes in {s:.2} s: {:.0} kpps, {:.2} Gbit/s offered; {got} reached the socket",
        dgram.len(),
        f64::from(total) / s / 1e3,
        f64::from(total) * dgram.len() as f64 * 8.0 / s / 1e9
    );

    // Host → guest: a sender thread, netback draining the TAP.
    let sender = {
        let sock = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let payload = [0xa5u8; 1472];
            for _ in 0..total {
                let _ = sock.send_to(&payload, "169.254.10.2:4444");
            }
        })
    };
    let t = Instant::now();
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let mut idle = 0;
    while idle < 200 {
        nb.process_rx().unwrap();
        let got = f.receive();
        if got.is_empty() {
            idle += 1;
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        idle = 0;
        let used: usize = got
            .iter()
            .map(|r| r.3.len() + usize::from(r.1.is_some()))
            .sum();
        frames += got.len() as u64;
        bytes += got.iter().map(|r| r.2.len() as u64).sum::<u64>();
        f.post_rx(used as u32);
    }
    sender.join().unwrap();
    let s = (t.elapsed() - Duration::from_millis(200)).as_secs_f64();
    eprintln!(
        "RX: {frames} frames ({} MB) in {s:.2} s: {:.0} kpps, {:.2} Gbit/s (the kernel drops what the TAP queue cannot hold)",
        bytes / 1_000_000,
        frames as f64 / s / 1e3,
        bytes as f64 * 8.0 / s / 1e9
    );
    let _ = std::fs::remove_dir_all(dir);
}
