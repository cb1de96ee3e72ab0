"""Packaging: `cmake --install` layout, and the .deb from scripts/package
checked with dpkg-deb -I/-c, unpacked with dpkg -x into a throwaway root (never
dpkg -i), its layout and links resolved inside that root, and the packaged
binary run against agent-sim. Builds the package in a temporary directory."""
import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile

import ssmtest
from ssmtest import check

SRC = os.environ.get("SSM_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PREFIX = "/usr/local/sessionmanagerplugin"
BIN = PREFIX + "/bin/session-manager-plugin"
PATH_LINK = "/usr/local/bin/session-manager-plugin"
MAN = PREFIX + "/share/man/man1/session-manager-plugin.1.gz"
MAN_LINK = "/usr/local/share/man/man1/session-manager-plugin.1.gz"
COPYRIGHT = "/usr/share/doc/session-manager-plugin/copyright"

_work = tempfile.mkdtemp(prefix="ssm-package-")
_deb = []


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=280, **kw)
    check(r.returncode == 0, f"{argv[0]} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def plugin_version():
    return run([ssmtest.plugin_path(), "--version"]).strip()


def deb():
    """Builds the package once with scripts/package; returns its path."""
    if not _deb:
        out = run([os.path.join(SRC, "scripts", "package"), "--build-dir",
                   os.path.join(_work, "build")])
        path = out.strip().splitlines()[-1]
        check(path.endswith(".deb") and os.path.isfile(path), f"last line is not a .deb: {path!r}")
        _deb.append(path)
    return _deb[0]


def unpacked():
    """The package's data unpacked with dpkg -x into a fresh root."""
    root = os.path.join(_work, "root")
    if not os.path.isdir(root):
        run(["dpkg", "-x", deb(), root])
    return root


def resolve_in(root, path):
    """Follows symlinks of path the way the installed system would, but inside root."""
    p, hops = path, 0
    while os.path.islink(root + p):
        hops += 1
        check(hops < 10, f"symlink loop at {path}")
        target = os.readlink(root + p)
        p = os.path.normpath(target if target.startswith("/") else os.path.join(os.path.dirname(p), target))
        check(p.startswith("/"), f"{path} escapes the root: {p}")
    return p


def control_fields(path):
    text = run(["dpkg-deb", "-f", path])
    fields, key = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, val = line.split(":", 1)
            fields[key] = val.strip()
    return fields


def test_cmake_install_layout():
    # The ctest build dir is two levels above the plugin binary.
    bdir = os.path.dirname(os.path.dirname(os.path.abspath(ssmtest.plugin_path())))
    dest = os.path.join(_work, "destdir")
    env = dict(os.environ, DESTDIR=dest)
    run(["cmake", "--install", bdir, "--prefix", "/opt/smp"], env=env)
    root = dest + "/opt/smp"
    exe = root + "/bin/session-manager-plugin"
    check(os.access(exe, os.X_OK), "binary installed executable in <prefix>/bin")
    check(run([exe, "--version"]).strip() == plugin_version(), "installed binary reports the version")
    with gzip.open(root + "/share/man/man1/session-manager-plugin.1.gz", "rt") as f:
        man = f.read()
    check(re.search(r'^\.TH SESSION-MANAGER-PLUGIN 1 .*"session-manager-plugin %s"'
                    % re.escape(plugin_version()), man, re.M), "man page .TH carries the version")
    with open(root + "/share/doc/session-manager-plugin/LICENSE") as f, \
            open(os.path.join(SRC, "LICENSE")) as g:
        check(f.read() == g.read(), "LICENSE installed")
    outside = [os.path.join(d, n) for d, _, ns in os.walk(dest) for n in ns
               if not os.path.join(d, n).startswith(root + "/")]
    check(not outside, f"a plain install writes nothing outside its prefix: {outside}")


def test_man_page_renders_cleanly():
    groff = shutil.which("groff")
    check(groff is not None, "groff not found")
    r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-rHY=0", "-P-cbou", os.path.join(SRC, "docs", "session-manager-plugin.1")],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and not r.stderr.strip(), f"groff warnings: {r.stderr}")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "EXIT STATUS", "FILES", "SEE ALSO"):
        check(re.search(r"^%s$" % section, r.stdout, re.M), f"section {section} rendered")
    check("session-manager-plugin --version" in r.stdout, "synopsis has the --version form")
    # Every variable the plugin reads is documented (the source is the truth).
    names = set()
    for d in ("plugin", "protocol"):
        for n in os.listdir(os.path.join(SRC, d)):
            if n.endswith(".c"):
                with open(os.path.join(SRC, d, n)) as f:
                    names |= set(re.findall(r'getenv\("([A-Za-z_]+)"\)', f.read()))
    names -= {"HOME"}
    missing = sorted(n for n in names if n not in r.stdout)
    check(not missing, f"environment variables missing from the man page: {missing}")


def test_deb_control_fields():
    f = control_fields(deb())
    check(f.get("Package") == "session-manager-plugin", f)
    check(f.get("Version") == plugin_version(), f"Version {f.get('Version')} != {plugin_version()}")
    arch = run(["dpkg", "--print-architecture"]).strip()
    check(f.get("Architecture") == arch, f)
    check(f.get("Description", "").startswith("AWS Systems Manager Session Manager plugin"), f)
    check(f.get("Maintainer"), "Maintainer set")
    deps = [d.strip().split(" ")[0] for d in f.get("Depends", "").split(",")]
    for want in ("libc6", "libwebsockets17", "libssl3", "libcjson1"):
        check(want in deps, f"Depends lacks {want}: {f.get('Depends')}")
    info = run(["dpkg-deb", "-I", deb()])
    check(re.search(r"^\s+\d+ bytes,\s+\d+ lines\s+\*\s+postinst", info, re.M), f"executable postinst: {info}")


def test_deb_contents_listing():
    listing = run(["dpkg-deb", "-c", deb()])
    entries = {}
    for line in listing.splitlines():
        parts = line.split(None, 5)
        name = parts[5].split(" -> ")[0].lstrip(".")
        entries[name.rstrip("/") or "/"] = (parts[0], parts[1], line)
    for path in (BIN, PATH_LINK, MAN, MAN_LINK, COPYRIGHT):
        check(path in entries, f"{path} not in package:\n{listing}")
    check(entries[BIN][0] == "-rwxr-xr-x", entries[BIN])
    check(entries[PATH_LINK][0].startswith("l"), entries[PATH_LINK])
    check(all(v[1] == "root/root" for v in entries.values()), "every file owned by root/root")
    stray = [p for p in entries if not (p.startswith("/usr/local/") or p.startswith("/usr/share/doc/")
                                        or p in ("/", "/usr", "/usr/local", "/usr/share", "/usr/share/doc"))]
    check(not stray, f"unexpected paths: {stray}")


def test_dpkg_x_layout_and_links():
    root = unpacked()
    st = os.stat(root + BIN)
    check(stat.S_ISREG(st.st_mode) and st.st_mode & 0o111, "binary is an executable file")
    with open(root + BIN, "rb") as f:
        check(f.read(4) == b"\x7fELF", "binary is ELF")
    check(resolve_in(root, PATH_LINK) == BIN, f"{PATH_LINK} -> {resolve_in(root, PATH_LINK)}")
    check(resolve_in(root, MAN_LINK) == MAN, f"{MAN_LINK} -> {resolve_in(root, MAN_LINK)}")
    with gzip.open(root + MAN, "rt") as f:
        check(f.read().startswith(".\\\""), "man page decompresses")
    with open(root + COPYRIGHT) as f, open(os.path.join(SRC, "LICENSE")) as g:
        check(f.read() == g.read(), "copyright is the project's license")
    syms = run(["readelf", "-S", root + BIN])
    check(".symtab" not in syms, "packaged binary is stripped")
    # Through the PATH link, as the AWS CLI runs it.
    link = root + PATH_LINK
    check(run([link, "--version"]).strip() == plugin_version(), "--version through the PATH link")
    out = run([link])
    check(out == "\nThe Session Manager plugin was installed successfully. "
                 "Use the AWS CLI to start a session.\n\n", repr(out))


def test_postinst_restores_removed_link():
    # Run the maintainer script with its absolute paths rewritten into a scratch root:
    # it must recreate the link an old postrm deleted, and leave an existing one alone.
    ctl = os.path.join(_work, "control")
    shutil.rmtree(ctl, ignore_errors=True)
    run(["dpkg-deb", "-e", deb(), ctl])
    with open(os.path.join(ctl, "postinst")) as f:
        script = f.read()
    check("/usr/local/bin/session-manager-plugin" in script, script)
    scratch = os.path.join(_work, "postinst-root")
    os.makedirs(scratch + "/usr/local/bin", exist_ok=True)
    moved = script.replace("/usr/local/bin/", scratch + "/usr/local/bin/")
    run(["sh", "-c", moved, "postinst", "configure"])
    link = scratch + PATH_LINK
    check(os.path.islink(link), "postinst recreated the link")
    check(os.readlink(link) == os.readlink(unpacked() + PATH_LINK), "same target as the shipped link")
    os.unlink(link)
    os.symlink("/elsewhere", link)
    run(["sh", "-c", moved, "postinst", "configure"])
    check(os.readlink(link) == "/elsewhere", "an existing link is not touched")


def test_packaged_binary_runs_a_session():
    exe = unpacked() + PATH_LINK
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        argv[0] = exe
        proc = ssmtest.run_pipes(argv, env)
        out, err = proc.communicate(b"from-the-deb\n", timeout=30)
        check(proc.returncode == 0, f"exit {proc.returncode}: {err[-500:]!r}")
        check(b"Starting session with SessionId: " + r["SessionId"].encode() in out, out[:200])
        check(b"from-the-deb\n" in out, f"echo came back: {out!r}")


def test_static_package():
    """scripts/package --static: fetches cJSON's Debian source (network), so it runs
    only with SSM_TEST_STATIC_PACKAGE=1."""
    out = run([os.path.join(SRC, "scripts", "package"), "--static", "--build-dir",
               os.path.join(_work, "build-static")])
    path = out.strip().splitlines()[-1]
    f = control_fields(path)
    check(f.get("Version") == plugin_version(), f)
    check("Depends" not in f, f"a static package depends on nothing: {f.get('Depends')}")
    root = os.path.join(_work, "root-static")
    run(["dpkg", "-x", path, root])
    check(resolve_in(root, PATH_LINK) == BIN, "PATH link")
    hdrs = run(["readelf", "-l", "-d", root + BIN])
    check("INTERP" not in hdrs and "(NEEDED)" not in hdrs, f"not static:\n{hdrs}")
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        # A host name, not an address: resolving it is the part static glibc can get wrong.
        check("://127.0.0.1:" in r["StreamUrl"], r["StreamUrl"])
        r["StreamUrl"] = r["StreamUrl"].replace("://127.0.0.1:", "://localhost:")
        argv, env = ssmtest.plugin_invocation(r, sim)
        argv[0] = root + PATH_LINK
        proc = ssmtest.run_pipes(argv, env)
        out, err = proc.communicate(b"static-echo\n", timeout=30)
        check(proc.returncode == 0 and b"static-echo\n" in out, f"{proc.returncode} {out!r} {err[-300:]!r}")


if __name__ == "__main__":
    tests = [
        test_cmake_install_layout,
        test_man_page_renders_cleanly,
        test_deb_control_fields,
        test_deb_contents_listing,
        test_dpkg_x_layout_and_links,
        test_postinst_restores_removed_link,
        test_packaged_binary_runs_a_session,
    ]
    if os.environ.get("SSM_TEST_STATIC_PACKAGE") == "1":
        tests.append(test_static_package)
    else:
        print("SKIP test_static_package (set SSM_TEST_STATIC_PACKAGE=1; fetches cJSON's Debian source)")
    try:
        ssmtest.main(tests)
    finally:
        shutil.rmtree(_work, ignore_errors=True)
