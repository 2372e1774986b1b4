//! The vCPU threads: one per vCPU, each running `KVM_RUN` in a loop and
//! handling what comes back (Xen hypercalls through
//! [`crate::xen::XenDomain::dispatch`], port and MMIO accesses to devices
//! that do not exist, triple faults), then carrying out the hypercall's
//! effects.
//!
//! vCPU ioctls must come from the thread that runs the vCPU (KVM holds the
//! vCPU's lock while it is in `KVM_RUN`), so a change for another vCPU
//! (Linux registers its secondary vCPUs' vcpu_info and timers from the
//! boot vCPU) is posted to that vCPU's [`VcpuHandle`] mailbox and the vCPU
//! is kicked out of `KVM_RUN`: the kicker sets `kvm_run.immediate_exit`
//! and sends [`kick_signal`], so the vCPU leaves the kernel whether it was
//! about to enter it, running, or waiting (halted, or for its startup
//! IPI). Pausing and stopping use the same kick.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kvm_bindings::{KVM_MP_STATE_HALTED, KVM_MP_STATE_UNINITIALIZED, kvm_mp_state};
use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::domain::{End, Shared, ShutdownReason};
use crate::xen::kvm::{apply_vcpu_op, apply_vm_op};
use crate::xen::{Effect, HypercallCtx, RateLimit, VcpuGuest, VcpuOp};

/// The real-time signal that kicks a vCPU thread out of `KVM_RUN`.
pub fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN()
}

/// Install the (empty) handler of [`kick_signal`]; its only effect is to
/// interrupt `KVM_RUN` with `EINTR`. Call once before starting vCPUs.
pub fn install_kick_handler() -> Result<(), vmm_sys_util::errno::Error> {
    extern "C" fn on_kick(_: i32, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
    vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick)
}

/// Where a running vCPU thread can be reached.
#[derive(Debug)]
struct Running {
    thread: libc::pthread_t,
    /// `kvm_run.immediate_exit` of the vCPU, in its `kvm_run` mapping.
    immediate_exit: NonNull<u8>,
}

// SAFETY: `Running` is only read under `VcpuHandle::running`'s lock; the
// pointer is valid while it is set (the vCPU thread clears it before its
// VcpuFd, and with it the kvm_run mapping, goes away), and the byte is
// only accessed atomically.
unsafe impl Send for Running {}

/// The shared side of one vCPU: its mailbox and how to kick it, plus what
/// `info` reports.
#[derive(Debug)]
pub struct VcpuHandle {
    id: u32,
    mailbox: Mutex<Vec<VcpuOp>>,
    running: Mutex<Option<Running>>,
    /// The thread's kernel tid (0 until started).
    pub tid: AtomicI32,
    /// The thread's CPU-time clock, once started.
    cpu_clock: Mutex<Option<libc::clockid_t>>,
    /// The guest has started this vCPU.
    pub online: AtomicBool,
    /// Host CPUs it may run on (empty: any).
    pub affinity: Mutex<Vec<u32>>,
}

impl VcpuHandle {
    /// The handle of vCPU `id`, to be run on `affinity` (empty: anywhere).
    pub fn new(id: u32, affinity: Vec<u32>) -> Self {
        Self {
            id,
            mailbox: Mutex::new(Vec::new()),
            running: Mutex::new(None),
            tid: AtomicI32::new(0),
            cpu_clock: Mutex::new(None),
            online: AtomicBool::new(id == 0),
            affinity: Mutex::new(affinity),
        }
    }

    /// The vCPU's index.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Queue `op` for the vCPU's own thread and kick it so it runs soon.
    pub fn post(&self, op: VcpuOp) {
        lock(&self.mailbox).push(op);
        self.kick();
    }

    /// Make the vCPU leave (or not enter) `KVM_RUN` once.
    pub fn kick(&self) {
        let r = lock(&self.running);
        if let Some(r) = r.as_ref() {
            // SAFETY: the pointer is valid while `running` is set (see
            // `Running`), we hold the lock that keeps it set, and the
            // byte is only ever accessed atomically.
            let flag = unsafe { AtomicU8::from_ptr(r.immediate_exit.as_ptr()) };
            flag.store(1, Ordering::SeqCst);
            // SAFETY: `r.thread` is a live thread of this process (it
            // clears `running` before it exits); the signal has a handler.
            unsafe { libc::pthread_kill(r.thread, kick_signal()) };
        }
    }

    /// CPU time the vCPU's thread has used.
    pub fn cpu_time_ns(&self) -> u64 {
        let Some(clk) = *lock(&self.cpu_clock) else {
            return 0;
        };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clk` is the CPU clock of a thread of this process and
        // `ts` is a valid out-pointer.
        if unsafe { libc::clock_gettime(clk, &mut ts) } != 0 {
            return 0;
        }
        (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
    }

    /// Restrict the vCPU's thread to `cpus` (empty: every host CPU).
    pub fn pin(&self, cpus: &[u32]) -> std::io::Result<()> {
        let tid = self.tid.load(Ordering::SeqCst);
        if tid != 0 {
            set_affinity(tid, cpus)?;
        }
        *lock(&self.affinity) = cpus.to_vec();
        Ok(())
    }
}

/// Lock, recovering from a panicked holder (the data stays consistent:
/// every critical section here is a plain update).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `sched_setaffinity` of thread `tid`.
pub fn set_affinity(tid: i32, cpus: &[u32]) -> std::io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let n = if cpus.is_empty() {
        // SAFETY: no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
        (0..n.max(1) as u32).collect::<Vec<_>>()
    } else {
        cpus.to_vec()
    };
    for c in n {
        if (c as usize) >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: `c` is below CPU_SETSIZE (checked above), so the bit is
        // inside `set`.
        unsafe { libc::CPU_SET(c as usize, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Exit reason number of `KVM_EXIT_XEN`.
const EXIT_XEN: u32 = kvm_xen::EXIT_REASON_XEN;

/// Per-thread rate limits for what a guest can trigger at will.
struct Limits {
    io: RateLimit,
    mmio: RateLimit,
    kvm: RateLimit,
    other: RateLimit,
}

/// Run vCPU `id` until the domain ends. Runs on the vCPU's own thread.
pub fn run_vcpu(shared: Arc<Shared>, id: u32, mut fd: VcpuFd) {
    let h = &shared.vcpus[id as usize];
    // SAFETY: gettid and pthread_self have no preconditions.
    let (tid, me) = unsafe { (libc::gettid(), libc::pthread_self()) };
    h.tid.store(tid, Ordering::SeqCst);
    let mut clk: libc::clockid_t = 0;
    // SAFETY: `me` is this thread; `clk` is a valid out-pointer.
    if unsafe { libc::pthread_getcpuclockid(me, &mut clk) } == 0 {
        *lock(&h.cpu_clock) = Some(clk);
    }
    let affinity = lock(&h.affinity).clone();
    if !affinity.is_empty() {
        if let Err(e) = set_affinity(tid, &affinity) {
            tracing::warn!(vcpu = id, ?affinity, "pinning the vCPU failed: {e}");
        }
    }
    let immediate_exit = NonNull::from(&mut fd.get_kvm_run().immediate_exit);
    *lock(&h.running) = Some(Running {
        thread: me,
        immediate_exit,
    });

    let mut limits = Limits {
        io: RateLimit::new(5),
        mmio: RateLimit::new(5),
        kvm: RateLimit::new(5),
        other: RateLimit::new(5),
    };
    let end = vcpu_loop(&shared, id, &mut fd, &mut limits);
    if let Some(end) = end {
        shared.end(end);
    }
    // The kvm_run mapping goes with `fd`: nobody may touch it after this.
    *lock(&h.running) = None;
    quiesce(&fd);
    drop(fd);
    lock(&shared.run).vcpus_done += 1;
    shared.run_cv.notify_all();
}

/// Detach the vCPU's Xen state from guest memory: stop its timer and drop
/// KVM's mappings of its vcpu_info, time and runstate areas, so that
/// nothing in the kernel writes to guest pages once the domain process
/// lets go of its memory (errors are irrelevant here: the vCPU ends).
fn quiesce(fd: &VcpuFd) {
    let _ = kvm_xen::set_timer(fd, 0, 0);
    let _ = kvm_xen::set_vcpu_info_gpa(fd, kvm_xen::KVM_XEN_INVALID_GPA);
    let _ = kvm_xen::set_vcpu_time_info_gpa(fd, kvm_xen::KVM_XEN_INVALID_GPA);
    let _ = kvm_xen::set_runstate_gpa(fd, kvm_xen::KVM_XEN_INVALID_GPA);
}

/// The run loop; returns why the domain must end, if this vCPU decided it.
fn vcpu_loop(shared: &Shared, id: u32, fd: &mut VcpuFd, limits: &mut Limits) -> Option<End> {
    let h = &shared.vcpus[id as usize];
    loop {
        // Clear the kick flag before looking at what a kick may be for:
        // a kick that arrives after this check makes KVM_RUN return at once.
        // SAFETY: the pointer is this vCPU's own kvm_run field, valid while
        // `fd` lives; kickers access it atomically too.
        let flag = unsafe { AtomicU8::from_ptr(&mut fd.get_kvm_run().immediate_exit) };
        flag.store(0, Ordering::SeqCst);
        let ops = std::mem::take(&mut *lock(&h.mailbox));
        for op in ops {
            if let Err(e) = apply_vcpu_op(fd, op) {
                if let Some(n) = limits.kvm.allow(Instant::now()) {
                    tracing::warn!(
                        vcpu = id,
                        ?op,
                        suppressed = n,
                        "vCPU Xen attribute: {}",
                        crate::chain(&e)
                    );
                }
            }
        }
        if !shared.wait_runnable() {
            return None;
        }
        match fd.run() {
            Ok(VcpuExit::IoIn(port, data)) => {
                data.fill(unclaimed_port_read(port));
                log_access(limits, id, "port read", u64::from(port));
            }
            Ok(VcpuExit::IoOut(port, data)) => {
                if let Some(reason) = acpi_power_request(port, data) {
                    return Some(End::Shutdown(reason));
                }
                log_access(limits, id, "port write", u64::from(port));
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                data.fill(0xff);
                if let Some(n) = limits.mmio.allow(Instant::now()) {
                    tracing::debug!(vcpu = id, addr, suppressed = n, "MMIO read of nothing");
                }
            }
            Ok(VcpuExit::MmioWrite(addr, _)) => {
                if let Some(n) = limits.mmio.allow(Instant::now()) {
                    tracing::debug!(vcpu = id, addr, suppressed = n, "MMIO write to nothing");
                }
            }
            Ok(VcpuExit::Unsupported(EXIT_XEN)) => {
                h.online.store(true, Ordering::Relaxed);
                if let Some(end) = hypercall(shared, id, fd, limits) {
                    return Some(end);
                }
            }
            Ok(VcpuExit::Shutdown) => {
                tracing::warn!(vcpu = id, state = %cpu_state(fd), "triple fault");
                return Some(End::Shutdown(ShutdownReason::Crash));
            }
            Ok(VcpuExit::SystemEvent(kind, _)) => {
                let reason = match kind {
                    kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => ShutdownReason::Poweroff,
                    kvm_bindings::KVM_SYSTEM_EVENT_RESET => ShutdownReason::Reboot,
                    _ => ShutdownReason::Crash,
                };
                return Some(End::Shutdown(reason));
            }
            Ok(VcpuExit::InternalError) | Ok(VcpuExit::FailEntry(..)) => {
                tracing::error!(
                    vcpu = id,
                    state = %cpu_state(fd),
                    "KVM cannot run the vCPU further"
                );
                return Some(End::Shutdown(ShutdownReason::Crash));
            }
            Ok(VcpuExit::Intr) | Ok(VcpuExit::Hlt) | Ok(VcpuExit::IrqWindowOpen) => {}
            Ok(other) => {
                if let Some(n) = limits.other.allow(Instant::now()) {
                    tracing::warn!(vcpu = id, suppressed = n, "unexpected exit {other:?}");
                }
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                // Kicked: whether it has been started is worth a look now.
                if !h.online.load(Ordering::Relaxed) {
                    if let Ok(s) = fd.get_mp_state() {
                        if s.mp_state != KVM_MP_STATE_UNINITIALIZED {
                            h.online.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            Err(e) => {
                return Some(End::Failed(format!("KVM_RUN of vCPU {id} failed: {e}")));
            }
        }
    }
}

/// The vCPU's registers, for the log when the guest crashes.
fn cpu_state(fd: &VcpuFd) -> String {
    let mut out = String::new();
    if let Ok(r) = fd.get_regs() {
        out += &format!(
            "rip={:#x} rsp={:#x} rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rflags={:#x}",
            r.rip, r.rsp, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rflags
        );
    }
    if let Ok(s) = fd.get_sregs() {
        out += &format!(
            " cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x} cs={:#x} idt={:#x}+{:#x} gdt={:#x}+{:#x}",
            s.cr0,
            s.cr2,
            s.cr3,
            s.cr4,
            s.efer,
            s.cs.selector,
            s.idt.base,
            s.idt.limit,
            s.gdt.base,
            s.gdt.limit
        );
    }
    if let Ok(e) = fd.get_vcpu_events() {
        out += &format!(
            " exception={}/{}/{:#x}",
            e.exception.injected, e.exception.nr, e.exception.error_code
        );
    }
    out
}

/// I/O port of PIT channel 2's counter.
const PIT_CHANNEL2: u16 = 0x42;

/// What a read of a port no device claims returns. A PVH domain has no
/// legacy devices, and such reads float high (all ones), except PIT
/// channel 2's counter, which reads as a counter that does not run (0).
/// Linux's quick PIT calibration polls that port until its high byte
/// changes from 0xff, up to 50,000 times: with all ones it spins through
/// them all (100,000 exits, seconds when exits are slow), with 0 it gives
/// up at once, as it does on real hardware without a PIT. Port 0x61 keeps
/// all ones: its "output high" bit ends Linux's other PIT loops at once.
fn unclaimed_port_read(port: u16) -> u8 {
    if port == PIT_CHANNEL2 { 0 } else { 0xff }
}

/// A write to the ACPI sleep control or reset register (see
/// [`crate::boot::acpi`]): S5 is `poweroff`, a reset is `reboot`.
fn acpi_power_request(port: u16, data: &[u8]) -> Option<ShutdownReason> {
    use crate::boot::acpi::{RESET_PORT, RESET_VALUE, SLEEP_CONTROL_PORT, is_s5_request};
    let v = *data.first()?;
    match port {
        SLEEP_CONTROL_PORT if is_s5_request(v) => Some(ShutdownReason::Poweroff),
        RESET_PORT if v == RESET_VALUE => Some(ShutdownReason::Reboot),
        _ => None,
    }
}

fn log_access(limits: &mut Limits, vcpu: u32, what: &str, port: u64) {
    if let Some(n) = limits.io.allow(Instant::now()) {
        tracing::debug!(vcpu, port, suppressed = n, "{what} of nothing");
    }
}

/// Hypercalls that need the current Xen system time.
fn needs_time(nr: u64) -> bool {
    use xen_abi::xen::{__HYPERVISOR_hvm_op, __HYPERVISOR_vcpu_op};
    nr == __HYPERVISOR_hvm_op || nr == __HYPERVISOR_vcpu_op
}

/// Handle a `KVM_EXIT_XEN` hypercall exit and its effects.
fn hypercall(shared: &Shared, id: u32, fd: &mut VcpuFd, limits: &mut Limits) -> Option<End> {
    let Some(h) = kvm_xen::xen_hypercall(fd.get_kvm_run()) else {
        if let Some(n) = limits.other.allow(Instant::now()) {
            tracing::warn!(
                vcpu = id,
                suppressed = n,
                "Xen exit that is not a hypercall"
            );
        }
        return None;
    };
    let now_ns = if needs_time(h.input) {
        shared.vm.get_clock().map(|c| c.clock).unwrap_or(0)
    } else {
        0
    };
    let ctx = HypercallCtx::from_exit(id, &h, now_ns);
    let outcome = {
        let mut g = VcpuGuest::new(fd, shared.ram.memory());
        lock(&shared.xen).dispatch(&ctx, &mut g)
    };
    kvm_xen::complete_xen_hypercall(fd.get_kvm_run(), outcome.ret);
    for e in outcome.effects {
        if let Some(end) = apply_effect(shared, id, fd, e, limits) {
            return Some(end);
        }
    }
    None
}

/// Carry out one effect of a hypercall made by vCPU `me`.
fn apply_effect(
    shared: &Shared,
    me: u32,
    fd: &VcpuFd,
    e: Effect,
    limits: &mut Limits,
) -> Option<End> {
    let mut warn = |what: &str, err: &(dyn std::error::Error + 'static)| {
        if let Some(n) = limits.kvm.allow(Instant::now()) {
            tracing::warn!(vcpu = me, suppressed = n, "{what}: {}", crate::chain(err));
        }
    };
    match e {
        Effect::Vm(op) => {
            if let Err(err) = apply_vm_op(&shared.vm, op) {
                warn(&format!("{op:?}"), &err);
            }
        }
        Effect::Vcpu { vcpu, op } if vcpu == me => {
            if let Err(err) = apply_vcpu_op(fd, op) {
                warn(&format!("{op:?}"), &err);
            }
        }
        Effect::Vcpu { vcpu, op } => {
            if let Some(v) = shared.vcpus.get(vcpu as usize) {
                v.post(op);
            }
        }
        Effect::Kick(v) if v != me => {
            if let Some(v) = shared.vcpus.get(v as usize) {
                v.kick();
            }
        }
        Effect::Kick(_) => {}
        Effect::Yield => std::thread::yield_now(),
        Effect::Block => {
            // Halted, KVM wakes the vCPU when an event is pending for it.
            let s = kvm_mp_state {
                mp_state: KVM_MP_STATE_HALTED,
            };
            if let Err(err) = fd.set_mp_state(s) {
                warn("blocking the vCPU", &err);
            }
        }
        Effect::Shutdown(code) => {
            return Some(End::Shutdown(ShutdownReason::from_code(code)));
        }
        Effect::Console(bytes) => shared.early_console(&bytes),
        Effect::Notify { port, .. } => shared.notify_host(port.0),
        Effect::MapGrantFrame { idx, gfn, .. } => {
            // SAFETY: `shared.ram` outlives `shared.vm` (field order of
            // `Shared`: the VM is dropped first).
            if let Err(err) = unsafe { shared.ram.map_grant_frame(&shared.vm, idx, gfn) } {
                warn("mapping a grant frame", &err);
            }
        }
        Effect::UnmapGrantFrame { idx, .. } => {
            if let Err(err) = shared.ram.unmap_grant_frame(&shared.vm, idx) {
                warn("unmapping a grant frame", &err);
            }
        }
        Effect::Watchdog { id, timeout } => shared.set_watchdog(id, timeout),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclaimed_ports() {
        assert_eq!(
            unclaimed_port_read(0x42),
            0,
            "a PIT counter that does not run"
        );
        assert_eq!(
            unclaimed_port_read(0x61),
            0xff,
            "output bit high ends PIT loops"
        );
        assert_eq!(unclaimed_port_read(0x3f8), 0xff);
    }

    #[test]
    fn acpi_power_ports() {
        assert_eq!(
            acpi_power_request(0x600, &[0x34]),
            Some(ShutdownReason::Poweroff)
        );
        assert_eq!(
            acpi_power_request(0x600, &[0x14]),
            None,
            "S5 without SLP_EN"
        );
        assert_eq!(acpi_power_request(0x600, &[0x2c]), None, "S3");
        assert_eq!(
            acpi_power_request(0x604, &[1]),
            Some(ShutdownReason::Reboot)
        );
        assert_eq!(acpi_power_request(0x604, &[2]), None);
        assert_eq!(acpi_power_request(0x80, &[0x34]), None);
        assert_eq!(acpi_power_request(0x600, &[]), None);
    }
}
