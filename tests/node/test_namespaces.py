"""The pod init: a command in its own pid and mount namespaces, as the pod's uid.

Each test runs the real init (root needed, as for the agent's isolation).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pincompute.node import namespaces

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or namespaces.probe() is not None,
                                reason="pod namespaces need root and util-linux")

NOBODY = 65534


def run(argv: list[str], *, keep: tuple[Path, ...] = (), env: dict[str, str] | None = None,
        groups: tuple[int, ...] = (), **kw: object) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.defpath} if env is None else env
    return subprocess.run(
        namespaces.init_argv(argv, uid=NOBODY, gid=NOBODY, groups=groups, keep=keep,
                             env_has_lc_ctype="LC_CTYPE" in env),
        capture_output=True, env=env, timeout=20, check=False, **kw)  # type: ignore[call-overload]


def test_the_command_is_pid_2_and_sees_only_its_namespace() -> None:
    out = run(["/bin/sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'; id -u; id -G"])
    pid, count, uid, groups = out.stdout.decode().split("\n")[:4]
    assert (pid, uid, groups) == ("2", str(NOBODY), str(NOBODY))
    assert int(count) <= 5  # the two inits, sh, ls, grep — no process of the host


def test_a_bare_command_is_found_on_the_path_as_the_pods_uid() -> None:
    """The init's own modules may be unreadable to the pod's uid once it has dropped to it."""
    assert run(["sh", "-c", "echo found"]).stdout == b"found\n"
    missing = run(["no-such-command-here"])
    assert missing.returncode == 127 and b"No such file" in missing.stderr


def test_supplementary_groups_are_the_pods() -> None:
    out = run(["/bin/sh", "-c", "id -G"], groups=(300_123,))
    assert out.stdout.decode().split() == [str(NOBODY), "300123"]


def test_tmp_and_dev_shm_are_private_and_kept_paths_stay_reachable(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "file").write_text("mine\n")
    (tmp_path / "other").mkdir()
    host_file = Path("/dev/shm") / f"host-{os.getpid()}"
    host_file.write_text("host")
    try:
        script = (f"cat {tmp_path}/sandbox/file; ls {tmp_path}; ls /dev/shm | wc -l; "
                  "echo x > /tmp/private && echo x > /dev/shm/private && echo written")
        out = run(["/bin/sh", "-c", script], keep=(tmp_path / "sandbox",))
        assert out.stdout.decode().split() == ["mine", "sandbox", "0", "written"], out.stderr
        assert not Path("/tmp/private").exists() and not Path("/dev/shm/private").exists()
        assert host_file.read_text() == "host"
    finally:
        host_file.unlink()


def test_exit_codes_and_signals_come_through_unchanged() -> None:
    assert run(["/bin/sh", "-c", "exit 3"]).returncode == 3
    assert run(["/bin/sh", "-c", "exit 143"]).returncode == 143
    assert run(["/bin/sh", "-c", "kill -TERM $$"]).returncode == -signal.SIGTERM
    assert run(["/bin/sh", "-c", "kill -SEGV $$"]).returncode == -signal.SIGSEGV
    assert run(["/bin/sh", "-c", "kill -KILL $$"]).returncode == -signal.SIGKILL


def test_the_environment_arrives_exactly() -> None:
    env = {"PATH": os.defpath, "SECRET": "s3cr3t"}
    out = run(["/usr/bin/env"], env=env)
    assert sorted(out.stdout.decode().split()) == sorted(f"{k}={v}" for k, v in env.items())


def test_a_sigterm_to_every_process_reaches_the_command_once() -> None:
    """The runtime signals the whole cgroup: the inits must neither die nor forward it."""
    code = ("import os, signal, sys, time\n"
            "def bye(*_):\n    os.write(1, b'term\\n'); time.sleep(0.3); sys.exit(7)\n"
            "signal.signal(signal.SIGTERM, bye)\nprint('up', flush=True)\ntime.sleep(30)\n")
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    proc = subprocess.Popen(
        namespaces.init_argv([python, "-c", code], uid=NOBODY, gid=NOBODY, groups=(),
                             keep=(), env_has_lc_ctype=True),
        stdout=subprocess.PIPE, env={"PATH": os.defpath}, start_new_session=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 7
    assert proc.stdout.read() == b"term\n"


def test_exec_enters_the_running_containers_namespaces() -> None:
    proc = subprocess.Popen(
        namespaces.init_argv(["/bin/sh", "-c", "echo inside > /tmp/mark; exec sleep 30"],
                             uid=NOBODY, gid=NOBODY, groups=(), keep=(),
                             env_has_lc_ctype=True),
        env={"PATH": os.defpath}, start_new_session=True, cwd="/usr")
    try:
        for _ in range(100):
            pid1 = namespaces.namespace_init_pid(proc.pid)
            if pid1 is not None and subprocess.run(
                    namespaces.enter_argv(["cat", "/tmp/mark"], target=pid1, uid=NOBODY,
                                          gid=NOBODY, groups=()),
                    capture_output=True, check=False).stdout == b"inside\n":
                break
            time.sleep(0.05)
        else:
            pytest.fail("exec never saw the container's /tmp")
        out = subprocess.run(
            namespaces.enter_argv(
                ["/bin/sh", "-c", "echo $(id -u) $(pwd) $(ls /proc | grep -c '^[0-9]')"],
                target=pid1, uid=NOBODY, gid=NOBODY, groups=()),
            capture_output=True, check=False)
        uid, cwd, count = out.stdout.decode().split()
        assert (uid, cwd) == (str(NOBODY), "/usr") and int(count) <= 6
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_nested_and_missing_kept_paths(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    inner = tmp_path / "tree" / "inner"
    inner.mkdir(parents=True)
    (inner / "f").write_text("deep\n")
    out = run(["/bin/sh", "-c", f"cat {inner}/f"],
              keep=(inner, tmp_path / "tree", tmp_path / "missing"))
    assert out.stdout == b"deep\n", out.stderr
