"""Security review (docs/security.md): the unix socket of a port session
(localConnectionType=unix). Whatever already sits at the path (a file, a
link to someone's file) is refused, never deleted or followed; the socket we
create is owner-only (0700) whatever the umask, even 0, and removed on
exit."""
import os
import signal
import socket
import stat
import tempfile

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, PortPlugin


def start(sim, echo, path):
    return PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)], "localConnectionType": ["unix"],
                                    "localUnixSocket": [path]})


def refused(path, what):
    echo = EchoServer()
    with T.Sim() as sim:
        pp = start(sim, echo, path)
        status = pp.finish()
        T.check(status == 0, f"exit {status}")
        T.check(f"listen unix {path}: bind: address already in use".encode() in pp.out,
                f"{what}: stdout {pp.out!r}")
    echo.close()


def test_existing_file_is_refused_not_deleted():
    d = tempfile.mkdtemp(prefix="sec-unix-")
    path = os.path.join(d, "fwd.sock")
    with open(path, "w") as f:
        f.write("keep me\n")
    refused(path, "regular file")
    with open(path) as f:
        T.check(f.read() == "keep me\n", "the file at the socket path changed")


def test_link_at_path_is_refused_not_followed():
    d = tempfile.mkdtemp(prefix="sec-unix-")
    victim = os.path.join(d, "victim")
    with open(victim, "w") as f:
        f.write("keep me\n")
    path = os.path.join(d, "fwd.sock")
    os.symlink(victim, path)
    refused(path, "symlink to a file")
    T.check(os.path.islink(path) and os.readlink(path) == victim, "the link was removed or changed")
    with open(victim) as f:
        T.check(f.read() == "keep me\n", "the link's target changed")
    # A dangling link: bind() would create its target if it followed it.
    target = os.path.join(d, "created-through-link")
    dangling = os.path.join(d, "dangling.sock")
    os.symlink(target, dangling)
    refused(dangling, "dangling symlink")
    T.check(not os.path.lexists(target), "a socket was created through the link")


def test_socket_mode_under_umask_0_and_removal():
    # The plugin inherits the umask; even 0 must not open the socket to
    # other local users (the forwarded service is behind it).
    old = os.umask(0)
    try:
        echo = EchoServer()
        d = tempfile.mkdtemp(prefix="sec-unix-")
        path = os.path.join(d, "fwd.sock")
        with T.Sim() as sim:
            pp = start(sim, echo, path)
            pp.read_until(b"Waiting for connections...\n")
            st = os.lstat(path)
            T.check(stat.S_ISSOCK(st.st_mode), "a socket")
            T.check(st.st_uid == os.getuid(), "ours")
            T.check(st.st_mode & 0o777 == 0o700, f"mode {oct(st.st_mode & 0o777)}")
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            c.close()
            pp.p.send_signal(signal.SIGINT)
            T.check(pp.finish() == 0, "exit status")
            T.check(not os.path.lexists(path), "socket left behind")
        echo.close()
    finally:
        os.umask(old)


if __name__ == "__main__":
    T.main([test_existing_file_is_refused_not_deleted, test_link_at_path_is_refused_not_followed,
            test_socket_mode_under_umask_0_and_removal])
