"""A container's own PID and mount namespaces: private ``/proc``, ``/tmp`` and ``/dev/shm``.

Theory of operation
-------------------
Without namespaces every pod sees every process of the machine in ``/proc`` —
including arguments expanded from another tenant's Secrets — and shares
``/tmp`` and ``/dev/shm`` with every other pod.  When the agent runs as root,
the process runtime starts each container through this module run as a program
(the *pod init*; stdlib only, started with ``python -I -S``, so nothing of the
container's environment steers it), which builds::

    agent ── init (host pid ns; what the runtime watches)
               └── init, pid 1 of a new pid + mount namespace
                      └── the container's command (pid 2), as the pod's uid

1. The outer init calls ``unshare(CLONE_NEWNS | CLONE_NEWPID)`` and forks: the
   child is pid 1 of the new namespaces.
2. Pid 1 makes every mount private (nothing propagates back to the host),
   mounts a fresh ``proc`` (only the pod's processes), a private ``tmpfs`` on
   ``/tmp`` and ``/dev/shm``, and binds back the host directories the pod needs
   that lived under them (its sandbox, the cluster storage — ``--keep``).  It
   drops to the pod's uid, gid and groups, and forks the command, with every
   signal disposition back to the default.
3. Pid 1 reaps whatever is reparented to it; when the command ends it reports
   the raw wait status to the outer init and exits, and the kernel kills what
   is left in the namespace.  The outer init ends the same way the command
   did: with its exit code, or killed by the same signal — so exit codes,
   ``128 + signal`` and ``OOMKilled`` read exactly as without namespaces.

Signals: the runtime signals every process of the container's cgroup (or its
process group).  Both inits ignore every catchable signal (a pid 1 gets none it
has no handler for anyway), so the command receives a ``SIGTERM`` exactly once
and can shut down gracefully while the outer init waits; ``SIGKILL`` ends all
three (pid 1 also has ``PR_SET_PDEATHSIG``).  The inits start inside the
container's cgroup, so its accounting covers them (~2-4 MiB, two pids).

``exec`` (and exec probes) enter the running container's namespaces with
``nsenter`` and drop to the pod's identity with ``setpriv`` (util-linux), so a
probe sees the container's ``/tmp``: :func:`enter_argv`.

:func:`probe` tells whether the machine allows all this (root, the system
calls, the tools); the node reports the result in its ``IsolationDegraded``
condition.
"""

from __future__ import annotations

# The pod init imports only what it needs itself: every module here is paid for at
# each container start (the agent's helpers import theirs where they use them).
import ctypes
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Sequence
    from pathlib import Path
else:
    import _signal as signal  # the C module: ``signal`` would import enum (3 ms a start)

INIT = os.path.realpath(__file__)
"""This file: run as a program, it is the pod init."""
SHM_SIZE = "64m"
"""Size of a container's ``/dev/shm`` (Docker's default)."""

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_PDEATHSIG = 1
O_PATH = getattr(os, "O_PATH", 0o10000000)


# --- the agent's side ------------------------------------------------------------------------

def init_argv(argv: Sequence[str], *, uid: int, gid: int, groups: Sequence[int],
              keep: Sequence[Path], env_has_lc_ctype: bool,
              workdir: Path | None = None) -> list[str]:
    """The command line that runs ``argv`` as pid 2 of its own namespaces.

    ``workdir`` is made (if missing) and entered by pid 1 after it dropped to the
    pod's identity, so a link the tenant planted on the way leads only where the
    pod itself may go.
    """
    out = [sys.executable, "-I", "-S", INIT, "--uid", str(uid), "--gid", str(gid),
           "--groups", ",".join(map(str, groups)) or "-"]
    if workdir is not None:
        out += ["--workdir", str(workdir)]
    for path in keep:
        out += ["--keep", str(path)]
    if not env_has_lc_ctype:
        # Python's PEP 538 locale coercion adds LC_CTYPE to the init's environment;
        # the container must get exactly the environment it was given.
        out.append("--drop-lc-ctype")
    return [*out, "--", *argv]


def enter_argv(argv: Sequence[str], *, target: int, uid: int, gid: int,
               groups: Sequence[int], tty: bool = False) -> list[str]:
    """The command line that runs ``argv`` inside the namespaces of pid ``target``.

    The working directory is the target's (pid 1 keeps the container's): a
    directory opened outside the mount namespace would not be reachable inside.
    With ``tty`` (stdin is a terminal) the command gets a session of its own
    *inside* the pid namespace, with the terminal as its controlling terminal
    (``setsid --ctty --wait``, still as root): a shell's job control saves and restores
    the terminal's foreground process group, which must be one it can see.
    """
    import shutil
    nsenter, setpriv = shutil.which("nsenter"), shutil.which("setpriv")
    assert nsenter and setpriv, "probe() checks the tools"
    ids = [f"--reuid={uid}", f"--regid={gid}",
           f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"]
    session: list[str] = []
    if tty:
        setsid = shutil.which("setsid")
        assert setsid, "probe() checks the tools"
        session = [setsid, "--ctty", "--wait", "--"]
    return [nsenter, f"--target={target}", "--mount", "--pid", "--wd", "--",
            *session, setpriv, *ids, "--", *argv]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def namespace_init_pid(outer_pid: int) -> int | None:
    """Pid 1 of the namespaces the outer init at ``outer_pid`` made, once they are set up.

    ``None`` until pid 1 has mounted everything and started the command (its first
    child), so whoever enters finds the container's ``/tmp``, not the host's.
    """
    for pid1 in _children(outer_pid):
        if _children(pid1):
            return pid1
    return None


_probed: list[str | None] = []


def probe_once() -> str | None:
    """:func:`probe`, run once per process (agents of one region share the answer)."""
    if not _probed:
        _probed.append(probe())
    return _probed[0]


def probe() -> str | None:
    """``None`` if containers can get their own namespaces here, else why not."""
    import shutil
    import subprocess
    if os.geteuid() != 0:
        return "not running as root"
    for tool in ("nsenter", "setpriv", "setsid"):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux) is not installed"
    try:
        done = subprocess.run(
            init_argv(["/bin/sh", "-c", "test -r /proc/1/cmdline && test $$ = 2"], uid=65534,
                      gid=65534, groups=(), keep=(), env_has_lc_ctype=True),
            capture_output=True, timeout=10, check=False, env={"PATH": os.defpath}, cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot start the pod init: {exc}"
    if done.returncode != 0:
        return (done.stderr.decode(errors="replace").strip().splitlines() or
                [f"the pod init exited with {done.returncode}"])[-1]
    return None


# --- the pod init (runs as its own program) ----------------------------------------------------

def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    return libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None,
           flags: int, data: str | None = None) -> None:
    enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {target}")


def _cover(libc: ctypes.CDLL, mountpoint: str, options: str, keep: Sequence[str]) -> None:
    """A private tmpfs on ``mountpoint``; the ``keep`` paths under it bound back in place."""
    if not os.path.isdir(mountpoint):
        return
    # Outer paths first, so a nested one is bound on top of its parent, not under it.
    inside = sorted({p for p in keep if p.startswith(mountpoint.rstrip("/") + "/")}, key=len)
    held: list[tuple[str, int]] = []
    for path in inside:
        try:
            held.append((path, os.open(path, O_PATH | os.O_DIRECTORY)))
        except FileNotFoundError:
            continue  # nothing there to keep
    _mount(libc, "tmpfs", mountpoint, "tmpfs", MS_NOSUID | MS_NODEV, options)
    for path, fd in held:
        os.makedirs(path, mode=0o711, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)


def _quiet_stdio() -> None:
    """Let go of the container's pipes: only the command holds them, as without an init."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _ignore_signals() -> None:
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (OSError, ValueError):
                pass


def _default_signals() -> None:
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass


def _execvpe(argv: list[str], env: dict[str, str]) -> None:
    """``execvp`` as the C library does it: ``os.execvpe`` would import ``warnings``,
    which the pod's uid may not be allowed to read any more."""
    if "/" in argv[0]:
        os.execve(argv[0], argv, env)
    denied: OSError | None = None
    last: OSError = FileNotFoundError(2, "No such file or directory")
    for directory in env.get("PATH", os.defpath).split(os.pathsep):
        try:
            os.execve(os.path.join(directory or ".", argv[0]), argv, env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            last = exc
        except PermissionError as exc:
            denied = exc
    raise denied or last


def _pid1(opts: dict[str, object], argv: list[str], report: int) -> None:
    libc = _libc()
    cwd = os.getcwd()
    keep = [str(p) for p in opts["keep"]]  # type: ignore[attr-defined]
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _cover(libc, "/tmp", "mode=1777", keep)
    _cover(libc, "/dev/shm", f"mode=1777,size={SHM_SIZE}", keep)
    try:
        os.chdir(cwd)  # through the bound-back path, as the container will see it
    except OSError:
        os.chdir("/")  # a directory under the covered /tmp (not kept): nothing to go back to
    uid, gid = int(opts["uid"]), int(opts["gid"])  # type: ignore[call-overload]
    os.setgroups(list(opts["groups"]))  # type: ignore[call-overload]
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    workdir = opts.get("workdir")
    if isinstance(workdir, str):
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")  # reset by setuid
    env = dict(os.environ)
    if opts["drop_lc_ctype"]:
        env.pop("LC_CTYPE", None)
    child = os.fork()
    if child == 0:
        _default_signals()
        try:
            _execvpe(argv, env)
        except OSError as exc:
            os.write(2, f"{argv[0]}: {exc.strerror}\n".encode())
            os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
    _quiet_stdio()
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == child:
            os.write(report, str(status).encode())
            os._exit(0)


def _parse(args: list[str]) -> tuple[dict[str, object], list[str]]:
    opts: dict[str, object] = {"keep": [], "drop_lc_ctype": False, "groups": []}
    i = 0
    while i < len(args) and args[i] != "--":
        flag = args[i]
        if flag == "--drop-lc-ctype":
            opts["drop_lc_ctype"] = True
            i += 1
            continue
        value = args[i + 1]
        if flag == "--keep":
            opts["keep"].append(value)  # type: ignore[attr-defined]
        elif flag == "--groups":
            opts["groups"] = [] if value == "-" else [int(g) for g in value.split(",")]
        else:
            opts[flag.lstrip("-")] = value
        i += 2
    return opts, args[i + 1:]


def main(args: list[str]) -> None:
    opts, argv = _parse(args)
    if not argv:
        sys.exit("pod init: no command")
    _ignore_signals()
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        try:
            _pid1(opts, argv, write_end)
        except BaseException as exc:  # whatever it was: say it and fail
            os.write(2, f"pod init: {exc}\n".encode())
            os._exit(125)
    os.close(write_end)
    _quiet_stdio()
    chunks = []
    while chunk := os.read(read_end, 64):
        chunks.append(chunk)
    _, own = os.waitpid(child, 0)
    status = int(b"".join(chunks)) if chunks else own
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the command dumped already
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])


__all__ = ["INIT", "SHM_SIZE", "enter_argv", "init_argv", "namespace_init_pid", "probe",
           "probe_once"]
