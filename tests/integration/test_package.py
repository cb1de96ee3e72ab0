"""Packaging: `cmake --install` layout, and the .deb from scripts/package
checked with dpkg-deb -I/-c, unpacked with dpkg -x into a throwaway root (never
dpkg -i), its maintainer scripts run with their paths moved into that root, the
links resolved there, and the packaged binary run against agent-sim. Builds the
package in a temporary directory."""
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
INSTALLED_TEXT = ("\nThe Session Manager plugin was installed successfully. "
                  "Use the AWS CLI to start a session.\n\n")

_work = tempfile.mkdtemp(prefix="ssm-package-")
_deb = []


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=280, **kw)
    check(r.returncode == 0, f"{argv[0]} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def plugin_version():
    return run([ssmtest.plugin_path(), "--version"]).strip()


def build_package(build_dir, *args):
    """Runs scripts/package; returns the .deb path it prints last."""
    out = run([os.path.join(SRC, "scripts", "package"), *args, "--build-dir", build_dir])
    path = out.strip().splitlines()[-1]
    check(path.endswith(".deb") and os.path.isfile(path), f"last line is not a .deb: {path!r}")
    return path


def deb():
    if not _deb:
        _deb.append(build_package(os.path.join(_work, "build")))
    return _deb[0]


def unpacked():
    """The package's data unpacked with dpkg -x into a fresh root."""
    root = os.path.join(_work, "root")
    if not os.path.isdir(root):
        run(["dpkg", "-x", deb(), root])
    return root


def maint(script, action, root):
    """Runs a maintainer script with every /usr/local/ path moved under root."""
    ctl = os.path.join(_work, "control")
    if not os.path.isdir(ctl):
        run(["dpkg-deb", "-e", deb(), ctl])
    with open(os.path.join(ctl, script)) as f:
        text = f.read()
    check("'/usr/local/" in text, f"{script} names no /usr/local path:\n{text}")
    run(["sh", "-c", text.replace("'/usr/local/", "'" + root + "/usr/local/"), script, action])


def installed():
    """unpacked() after postinst configure: the tree dpkg -i would leave."""
    root = unpacked()
    if not os.path.lexists(root + PATH_LINK):
        maint("postinst", "configure", root)
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


def listing(path):
    """dpkg-deb -c as {path: (mode, owner)}."""
    entries = {}
    for line in run(["dpkg-deb", "-c", path]).splitlines():
        parts = line.split(None, 5)
        name = parts[5].split(" -> ")[0].lstrip(".").rstrip("/") or "/"
        entries[name] = (parts[0], parts[1])
    return entries


def test_cmake_install_layout():
    # The ctest build dir is two levels above the plugin binary.
    bdir = os.path.dirname(os.path.dirname(os.path.abspath(ssmtest.plugin_path())))
    dest = os.path.join(_work, "destdir")
    run(["cmake", "--install", bdir, "--prefix", "/opt/smp"], env=dict(os.environ, DESTDIR=dest))
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
    r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-rHY=0", "-P-cbou",
                        os.path.join(SRC, "docs", "session-manager-plugin.1")],
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
    for script in ("postinst", "prerm"):
        check(re.search(r"^\s+\d+ bytes,\s+\d+ lines\s+\*\s+%s" % script, info, re.M),
              f"executable {script}: {info}")


def test_deb_contents_listing():
    entries = listing(deb())
    for path in (BIN, MAN, COPYRIGHT):
        check(path in entries, f"{path} not in package: {sorted(entries)}")
    check(entries[BIN][0] == "-rwxr-xr-x", entries[BIN])
    check(all(owner == "root/root" for _, owner in entries.values()), "every file owned by root/root")
    # The links are made by postinst; shipping them would make dpkg own (and on
    # removal delete) /usr/local/bin.
    for path in (PATH_LINK, MAN_LINK, "/usr/local/bin", "/usr/local/share"):
        check(path not in entries, f"{path} must not be shipped")
    stray = [p for p in entries if not (p.startswith(PREFIX) or p.startswith("/usr/share/doc/")
                                        or p in ("/", "/usr", "/usr/local", "/usr/share", "/usr/share/doc"))]
    check(not stray, f"unexpected paths: {stray}")


def test_dpkg_x_layout_and_links():
    root = unpacked()
    st = os.stat(root + BIN)
    check(stat.S_ISREG(st.st_mode) and st.st_mode & 0o111, "binary is an executable file")
    with open(root + BIN, "rb") as f:
        check(f.read(4) == b"\x7fELF", "binary is ELF")
    check(".symtab" not in run(["readelf", "-S", root + BIN]), "packaged binary is stripped")
    with gzip.open(root + MAN, "rt") as f:
        check(f.read().startswith('.\\"'), "man page decompresses")
    with open(root + COPYRIGHT) as f, open(os.path.join(SRC, "LICENSE")) as g:
        check(f.read() == g.read(), "copyright is the project's license")
    root = installed()
    check(resolve_in(root, PATH_LINK) == BIN, f"{PATH_LINK} -> {resolve_in(root, PATH_LINK)}")
    check(resolve_in(root, MAN_LINK) == MAN, f"{MAN_LINK} -> {resolve_in(root, MAN_LINK)}")
    # Through the PATH link, as the AWS CLI runs it.
    link = root + PATH_LINK
    check(run([link, "--version"]).strip() == plugin_version(), "--version through the PATH link")
    out = run([link])
    check(out == INSTALLED_TEXT, repr(out))


def test_maintainer_scripts():
    root = os.path.join(_work, "scripts-root")  # no /usr/local/bin yet: postinst makes it
    os.makedirs(root)
    link, man = root + PATH_LINK, root + MAN_LINK
    want = os.readlink(installed() + PATH_LINK)
    maint("postinst", "configure", root)
    check(os.readlink(link) == want and os.path.islink(man), "postinst made both links")
    maint("postinst", "configure", root)
    check(os.readlink(link) == want, "postinst is idempotent")
    # Upgrading from the official package: its old postrm deletes the link after unpack.
    os.unlink(link)
    maint("postinst", "configure", root)
    check(os.readlink(link) == want, "postinst restores a deleted link")
    # A stale link or a copy installed by hand is replaced (the official package does so).
    for stale in ("symlink", "file"):
        os.unlink(link)
        if stale == "symlink":
            os.symlink("/nowhere", link)
        else:
            with open(link, "w") as f:
                f.write("#!/bin/sh\n")
        maint("postinst", "configure", root)
        check(os.readlink(link) == want, f"postinst replaces a {stale}")
    maint("prerm", "upgrade", root)
    check(os.path.islink(link) and os.path.islink(man), "an upgrade keeps the links")
    maint("prerm", "remove", root)
    check(not os.path.lexists(link) and not os.path.lexists(man), "remove deletes both links")
    check(os.path.isdir(root + "/usr/local/bin"), "remove leaves /usr/local/bin")
    os.symlink("/somebody/elses", link)
    maint("prerm", "remove", root)
    check(os.path.islink(link) and os.readlink(link) == "/somebody/elses",
          "remove leaves a link it did not make")


def test_packaged_binary_runs_a_session():
    exe = installed() + PATH_LINK
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
    path = build_package(os.path.join(_work, "build-static"), "--static")
    f = control_fields(path)
    check(f.get("Version") == plugin_version(), f)
    check("Depends" not in f, f"a static package depends on nothing: {f.get('Depends')}")
    root = os.path.join(_work, "root-static")
    run(["dpkg", "-x", path, root])
    hdrs = run(["readelf", "-l", "-d", root + BIN])
    check("INTERP" not in hdrs and "(NEEDED)" not in hdrs, f"not static:\n{hdrs}")
    check(run([root + BIN]) == INSTALLED_TEXT, "static binary runs")
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        # A host name, not an address: resolving it is the part static glibc can get wrong.
        check("://127.0.0.1:" in r["StreamUrl"], r["StreamUrl"])
        r["StreamUrl"] = r["StreamUrl"].replace("://127.0.0.1:", "://localhost:")
        argv, env = ssmtest.plugin_invocation(r, sim)
        argv[0] = root + BIN
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
        test_maintainer_scripts,
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
