"""Shared pieces of rxen's nested lab: host preparation, caches, kernels.

The lab is a QEMU/TCG machine (`-cpu max`, which emulates AMD SVM with nested
paging) booting Debian's 6.12 kernel, whose KVM has Xen support, with the
host's root filesystem shared read-only by virtme-ng.  Everything here is
idempotent and cached: a second run touches neither the network nor apt.

Nothing in this module boots anything; `lab/run` does.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAB_DIR.parent

BACKPORTS_SOURCES = Path("/etc/apt/sources.list.d/rxen-bookworm-backports.sources")
BACKPORTS_TEXT = """\
# Added by rxen's lab (lab/lablib.py): QEMU 10 and the 6.12 lab kernel come from here.
Types: deb
URIs: {uri}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

# QEMU 10 has the Xen emulation devices (xen-disk, xen-net-device, xen-console).
QEMU_MIN_MAJOR = 10
QEMU_BIN = "qemu-system-x86_64"


class LabError(Exception):
    """A preparation or boot step that cannot be done; the message says which and why."""


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Where downloads and built assets live.

    Not under /var/cache: inside the lab /var/cache is an empty tmpfs, and the
    lab must read what the host prepared.
    """
    env = os.environ.get("RXEN_LAB_CACHE")
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "rxen-lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(cmd: list[str], what: str, *, capture: bool = True, env=None, cwd=None) -> str:
    """Run `cmd`; on failure raise LabError naming `what` with the tail of its output."""
    try:
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None,
            text=True,
            env=env,
            cwd=cwd,
        )
    except FileNotFoundError as e:
        raise LabError(f"{what}: {cmd[0]} is not installed ({e})") from e
    if proc.returncode != 0:
        tail = ""
        if capture and proc.stdout:
            tail = "\n  " + "\n  ".join(proc.stdout.strip().splitlines()[-15:])
        raise LabError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}{tail}")
    return proc.stdout or ""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# apt


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"{what} needs root (apt and /lib/modules); run lab/run as root")


def _apt_env() -> dict:
    env = dict(os.environ)
    env["DEBIAN_FRONTEND"] = "noninteractive"
    return env


APT_OPTS = [
    "-o", "DPkg::Lock::Timeout=600",
    "-o", "APT::Sandbox::User=root",
    "-o", "Acquire::Retries=3",
]


def _debian_uri() -> str:
    """The Debian archive URI the host already uses, so backports comes from the same mirror."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        m = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.M)
        if m and "security" not in m.group(1):
            return m.group(1)
    return "http://deb.debian.org/debian"


_apt_updated = False


def apt_update() -> None:
    """`apt-get update`, once per run, failing (not warning) when the archive is unreachable."""
    global _apt_updated
    if _apt_updated:
        return
    _require_root("apt-get update")
    log("apt-get update")
    run(
        ["apt-get", *APT_OPTS, "-o", "APT::Update::Error-Mode=any", "-q", "update"],
        "apt-get update (is the Debian archive reachable?)",
        env=_apt_env(),
    )
    _apt_updated = True


def ensure_backports() -> None:
    """Add bookworm-backports to apt's sources (deb822 file) if no source has it yet."""
    text = ""
    for f in list(Path("/etc/apt/sources.list.d").glob("*")) + [Path("/etc/apt/sources.list")]:
        if f.is_file() and not f.name.endswith(".disabled-by-farm"):
            text += f.read_text(errors="replace")
    if re.search(r"bookworm-backports", text):
        return
    _require_root("adding bookworm-backports")
    log(f"adding bookworm-backports to apt's sources ({BACKPORTS_SOURCES})")
    BACKPORTS_SOURCES.write_text(BACKPORTS_TEXT.format(uri=_debian_uri()))
    apt_update()


def apt_install(packages: list[str], *, target: str | None = None) -> None:
    _require_root("installing " + " ".join(packages))
    ensure_backports()
    cmd = ["apt-get", *APT_OPTS, "-q", "-y", "install", "--no-install-recommends"]
    if target:
        cmd += ["-t", target]
    cmd += packages
    log("installing " + " ".join(packages) + (f" from {target}" if target else ""))
    try:
        run(cmd, "apt-get install " + " ".join(packages), env=_apt_env())
    except LabError:
        # Stale package lists are the usual cause; refresh once and retry.
        apt_update()
        run(cmd, "apt-get install " + " ".join(packages), env=_apt_env())


def qemu_major() -> int | None:
    exe = shutil.which(QEMU_BIN)
    if not exe:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\d+)\.", out)
    return int(m.group(1)) if m else None


def ensure_host_tools() -> None:
    """QEMU 10 (backports), kmod, busybox-static, virtme-ng; installs only what is missing."""
    major = qemu_major()
    if major is None or major < QEMU_MIN_MAJOR:
        apt_install(["qemu-system-x86"], target="bookworm-backports")
        major = qemu_major()
        if major is None or major < QEMU_MIN_MAJOR:
            raise LabError(f"{QEMU_BIN} {QEMU_MIN_MAJOR}+ is needed, found {major}")
    missing = []
    if not shutil.which("depmod") and not Path("/sbin/depmod").exists():
        missing.append("kmod")
    if not busybox_path():
        missing.append("busybox-static")
    if missing:
        apt_install(missing)
    if not shutil.which("vng"):
        log("installing virtme-ng with pip")
        run([sys.executable, "-m", "pip", "install", "-q", "virtme-ng==1.42"], "pip install virtme-ng")
        if not shutil.which("vng"):
            raise LabError("pip installed virtme-ng but `vng` is not on PATH")


def busybox_path() -> Path | None:
    """A statically linked busybox (from busybox-static), usable in any initramfs."""
    for p in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if p.exists():
            out = subprocess.run(["file", "-L", str(p)], capture_output=True, text=True).stdout \
                if shutil.which("file") else ""
            if not out or "statically linked" in out or "static-pie" in out:
                return p
    return None


# ---------------------------------------------------------------------------
# Debian kernel packages


def _resolve_kernel_package(target: str | None) -> str:
    """Name of the linux-image-*-amd64 package that linux-image-amd64 points at in `target`."""
    cmd = ["apt-cache"]
    if target:
        cmd += ["-t", target]
    cmd += ["depends", "--no-recommends", "--no-suggests", "linux-image-amd64"]
    for attempt in range(2):
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        m = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*-amd64)\b", out)
        if m:
            return m.group(1)
        if attempt == 0:
            ensure_backports()
            apt_update()
    raise LabError(f"cannot resolve linux-image-amd64 in {target or 'the default suite'}: {out.strip()}")


def kernel_package(kind: str) -> Path:
    """Download (once) and extract a Debian kernel package; return its extracted root.

    kind "lab": Debian's 6.12 from bookworm-backports (KVM with Xen support).
    kind "guest": Debian 12's own 6.1 kernel, which the guests run.
    The first resolved package is remembered in the cache, so later runs do
    not consult apt at all (set RXEN_LAB_REFRESH=1 to look for a newer one).
    """
    target = {"lab": "bookworm-backports", "guest": None}[kind]
    cache = cache_dir()
    pin = cache / f"{kind}-kernel-package"
    pkg = pin.read_text().strip() if pin.exists() and not os.environ.get("RXEN_LAB_REFRESH") else ""
    if not pkg:
        ensure_backports()
        pkg = _resolve_kernel_package(target)
    root = cache / "kernels" / pkg
    if not (root / ".extracted").exists():
        debs = cache / "debs"
        debs.mkdir(exist_ok=True)
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if not found:
            log(f"downloading {pkg}")
            cmd = ["apt-get", *APT_OPTS, "-q", "download", pkg]
            try:
                run(cmd, f"apt-get download {pkg}", cwd=debs)
            except LabError:
                apt_update()
                run(cmd, f"apt-get download {pkg}", cwd=debs)
            found = sorted(debs.glob(f"{pkg}_*.deb"))
            if not found:
                raise LabError(f"apt-get download {pkg} produced no .deb in {debs}")
        log(f"extracting {found[-1].name}")
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root.parent if root.parent.exists() else None))
        root.parent.mkdir(parents=True, exist_ok=True)
        run(["dpkg-deb", "-x", str(found[-1]), str(tmp)], f"dpkg-deb -x {found[-1].name}")
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
        (root / ".extracted").write_text(found[-1].name + "\n")
    pin.write_text(pkg + "\n")
    return root


def kernel_release(root: Path) -> str:
    """The kernel release (`uname -r`) of an extracted kernel package."""
    mods = [p for p in (root / "usr/lib/modules").glob("*") if p.is_dir()] if (root / "usr/lib/modules").exists() \
        else [p for p in (root / "lib/modules").glob("*") if p.is_dir()]
    if len(mods) != 1:
        raise LabError(f"expected one modules directory in {root}, found {[m.name for m in mods]}")
    return mods[0].name


def modules_dir(root: Path) -> Path:
    rel = kernel_release(root)
    for base in ("usr/lib/modules", "lib/modules"):
        if (root / base / rel).is_dir():
            return root / base / rel
    raise LabError(f"no modules directory in {root}")


def vmlinuz(root: Path) -> Path:
    rel = kernel_release(root)
    path = root / "boot" / f"vmlinuz-{rel}"
    if not path.exists():
        raise LabError(f"{path} is missing from the kernel package")
    return path


def ensure_lab_kernel() -> tuple[str, Path]:
    """The lab kernel, with a module index virtme-ng can use.

    virtme-ng looks for modules next to the kernel image (`../lib/modules/<release>`
    relative to boot/vmlinuz-*) and mounts them inside the lab, so running depmod
    on the extracted package is enough: the host's own /lib/modules is untouched.
    """
    root = kernel_package("lab")
    rel = kernel_release(root)
    indexed_modules(root)
    return rel, vmlinuz(root)


def prepare() -> tuple[str, Path]:
    """Everything the lab needs on the host; returns the lab kernel's release and image."""
    ensure_host_tools()
    return ensure_lab_kernel()


# ---------------------------------------------------------------------------
# Guest assets: Debian 12's kernel and busybox initramfs images


def indexed_modules(root: Path) -> Path:
    """The modules directory of an extracted kernel package, with modules.dep built."""
    rel = kernel_release(root)
    mods = root / "lib" / "modules" / rel
    if not mods.is_dir():
        (root / "lib").mkdir(exist_ok=True)
        mods.symlink_to(modules_dir(root).resolve())
    if not (mods / "modules.dep").exists():
        log(f"indexing kernel modules (depmod {rel})")
        depmod = shutil.which("depmod") or "/sbin/depmod"
        run([depmod, "-b", str(root), "-a", rel], f"depmod -b {root} -a {rel}")
    return mods


def guest_kernel() -> Path:
    """Debian 12's 6.1 kernel (bzImage as shipped), downloaded once."""
    ensure_host_tools()
    return vmlinuz(kernel_package("guest"))


def _module_order(mods: Path, names: list[str]) -> list[str]:
    """Module files (relative to `mods`) for `names` and their dependencies, dependencies first."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (mods / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        base = Path(path).name.split(".ko")[0]
        by_name[base] = path
        by_name[base.replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for d in deps.get(path, []):
            visit(d)
        order.append(path)

    builtin = (mods / "modules.builtin").read_text() if (mods / "modules.builtin").exists() else ""
    for name in names:
        path = by_name.get(name) or by_name.get(name.replace("-", "_"))
        if path is None:
            if re.search(rf"/{re.escape(name)}\.ko$", builtin, re.M) or \
               re.search(rf"/{re.escape(name.replace('-', '_'))}\.ko$", builtin, re.M):
                continue  # built into the kernel: nothing to load
            raise LabError(f"module {name} is not in {mods}")
        visit(path)
    return order


def _module_bytes(path: Path) -> bytes:
    """A module's ELF bytes; Debian 6.12 ships .ko.xz, which busybox's insmod cannot read."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        import lzma
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    if path.name.endswith(".gz"):
        import gzip
        return gzip.decompress(data)
    return data


class Cpio:
    """A newc ("070701") cpio archive, as the kernel's initramfs unpacker reads it."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}" for v in (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0)
        )
        self.ino += 1
        self.out += hdr.encode() + name_b
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def mkdir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        if "/" in name:
            self.mkdir(name.rsplit("/", 1)[0])
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        if "/" in name:
            self.mkdir(name.rsplit("/", 1)[0])
        self._entry(name, 0o120777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return bytes(self.out)


INIT_PRELUDE = """\
#!/bin/sh
# rxen lab guest init (lab/lablib.py): mounts, module loading, then the scenario.
mkdir -p /proc /sys /dev /tmp /run /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r m; do
    [ -n "$m" ] && { insmod "/lib/modules/$m" || echo "init: insmod $m failed"; }
done < /etc/rxen-modules
exec /bin/sh /scenario
"""

# Bump when the initramfs layout changes, so cached images are rebuilt.
INITRAMFS_FORMAT = "1"


# Debian packages of the host executables guest scripts ask for (`# binaries:`).
BINARY_PACKAGES = {"mkfs.ext4": "e2fsprogs", "mke2fs": "e2fsprogs", "e2fsck": "e2fsprogs",
                   "fio": "fio", "iperf3": "iperf3"}


def binary_with_libraries(name: str) -> list[tuple[Path, str]]:
    """A host executable and the shared libraries `ldd` says it loads, as
    (host path, path in image) pairs at the same paths, for build_initramfs."""
    def find():
        return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")

    path = find()
    if path is None and name in BINARY_PACKAGES:
        apt_install([BINARY_PACKAGES[name]])
        path = find()
    if path is None:
        raise LabError(f"{name}: not found on this host")
    out = [(Path(path), path)]
    for line in run(["ldd", path], f"ldd {path}").splitlines():
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        words = line.split()
        lib = words[2] if "=>" in words and len(words) > 2 else words[0] if words else ""
        if lib.startswith("/"):
            out.append((Path(lib), lib))
    return out


def build_initramfs(init_script: Path, modules: list[str], files: list[tuple[Path, str]] = ()) -> Path:
    """A busybox initramfs for the guest kernel, cached by the hash of all its inputs.

    The image's /init mounts proc, sysfs and devtmpfs, loads `modules` (with
    their dependencies, in order) and runs `init_script` as /scenario.
    `files` are (host path, path in image) pairs copied in as well.
    """
    root = kernel_package("guest")
    mods = indexed_modules(root)
    busybox = busybox_path()
    if busybox is None:
        raise LabError("busybox-static is not installed")
    order = _module_order(mods, modules)
    h = hashlib.sha256()
    for part in (INITRAMFS_FORMAT, INIT_PRELUDE, (root / ".extracted").read_text(),
                 sha256_file(busybox), init_script.read_text(), "\n".join(order)):
        h.update(part.encode() + b"\0")
    for src, dst in files:
        h.update(dst.encode() + b"\0" + sha256_file(src).encode() + b"\0")
    out_dir = cache_dir() / "initramfs"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"{init_script.stem}-{h.hexdigest()[:16]}.cpio.gz"
    if out.exists():
        return out

    cpio = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "run", "mnt", "root"):
        cpio.mkdir(d)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    applets = run([str(busybox), "--list-full"], "busybox --list-full").split()
    for applet in applets:
        if applet != "bin/busybox":
            cpio.symlink(applet, "/bin/busybox")
    cpio.file("init", INIT_PRELUDE.encode(), 0o755)
    cpio.file("scenario", init_script.read_bytes(), 0o755)
    loaded = []
    for rel in order:
        dst = rel.split(".ko")[0] + ".ko"
        cpio.file(f"lib/modules/{dst}", _module_bytes(mods / rel))
        loaded.append(dst)
    cpio.file("etc/rxen-modules", ("\n".join(loaded) + "\n").encode())
    for src, dst in files:
        cpio.file(dst, src.read_bytes(), 0o755 if os.access(src, os.X_OK) else 0o644)
    import gzip
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(cpio.finish(), compresslevel=6, mtime=0))
    tmp.rename(out)
    log(f"built {out.name} ({len(order)} modules)")
    return out


def extract_vmlinux(bzimage: Path) -> Path:
    """The ELF vmlinux inside a bzImage (what QEMU's -kernel boots as PVH), cached."""
    out = cache_dir() / "vmlinux" / f"{bzimage.name}-{sha256_file(bzimage)[:16]}.elf"
    if out.exists():
        return out
    data = bzimage.read_bytes()
    if data[0x202:0x206] != b"HdrS":
        raise LabError(f"{bzimage} is not a bzImage (no HdrS header)")
    setup_sects = data[0x1F1] or 4
    payload_offset = int.from_bytes(data[0x248:0x24C], "little")
    payload_length = int.from_bytes(data[0x24C:0x250], "little")
    start = (setup_sects + 1) * 512 + payload_offset
    payload = data[start:start + payload_length]
    if payload[:6] == b"\xfd7zXZ\x00":
        import lzma
        elf = lzma.LZMADecompressor().decompress(payload)
    elif payload[:4] == b"\x28\xb5\x2f\xfd":
        elf = subprocess.run(["zstd", "-dc"], input=payload, capture_output=True, check=True).stdout
    elif payload[:2] == b"\x1f\x8b":
        import gzip
        elf = gzip.decompress(payload)
    else:
        raise LabError(f"{bzimage}: unknown payload compression {payload[:6].hex()}")
    if elf[:4] != b"\x7fELF":
        raise LabError(f"{bzimage}: payload is not an ELF file")
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(elf)
    return out
