"""Hostile handlers against the local host: it stays bounded, isolated and measures for itself.

Each test runs a handler of ``hostile.py`` on a real host, with the kernel's cgroups
where this machine allows them (``confined``) and with the portable limits alone
(``plain``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import write_hostile
from local_world import WallClock

from tuner.domain.errors import ConfigError
from tuner.providers.local.caching import TtlCache
from tuner.providers.local.cgroups import memory_limits
from tuner.providers.local.dependency_calls import checked_path
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.identities import DEFAULT_UIDS
from tuner.providers.local.output import OutputSink
from tuner.providers.local.sandboxing import Sandbox, SandboxPolicy, remove_stale_runtimes
from tuner_handler.settings import FAN_OUT_ENV, HANDOVER_ENV, MAX_LINKS_ENV, SPLIT_ABOVE_ENV

PIDS_MAX = 16
OUTPUT_BYTES = 64 * 1024
POLICY = SandboxPolicy(
    pids_max=PIDS_MAX, output_bytes=OUTPUT_BYTES, frame_bytes=1 << 20, file_bytes=4 << 20
)
CGROUPS = memory_limits(pids_max=PIDS_MAX)
ROOT = os.geteuid() == 0
needs_cgroups = pytest.mark.skipif(CGROUPS is None, reason="no writable cgroup v1 controllers")


def _host(tmp_path: Path, cgroups: bool) -> Iterator[FunctionHost]:
    host = FunctionHost(
        write_hostile(tmp_path / "hostile"),
        tmp_path / "state",
        WallClock(),
        max_workers_per_function=2,
        memory_limits=CGROUPS if cgroups else None,
        sandbox=POLICY,
    )
    host.start()
    yield host
    host.close()


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[FunctionHost]:
    """A host with the portable limits only: address-space cap, process group, /proc."""
    yield from _host(tmp_path, cgroups=False)


@pytest.fixture
def confined(tmp_path: Path) -> Iterator[FunctionHost]:
    """A host whose workers also run in memory and pids cgroups."""
    if CGROUPS is None:
        pytest.skip("no writable cgroup v1 controllers")
    yield from _host(tmp_path, cgroups=True)


@pytest.fixture(params=["plain", "confined"])
def any_host(request: pytest.FixtureRequest) -> FunctionHost:
    """Each kind of host in turn."""
    host: FunctionHost = request.getfixturevalue(request.param)
    return host


def gone(pid: int, within_s: float = 3.0) -> bool:
    """True when the process ends (or is only a zombie) within the time."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def log_of(host: FunctionHost, name: str) -> str:
    return (host.state_dir / "logs" / f"{name}.log").read_text(errors="replace")


def test_a_timeout_kills_the_children_of_the_invocation(any_host: FunctionHost) -> None:
    result = any_host.invoke("orphaner", {})

    assert result.outcome == "timeout"
    grouped, detached = (
        int(p) for p in log_of(any_host, "orphaner").split("CHILDREN")[1].split()[:2]
    )
    try:
        assert gone(grouped)
        if any_host._memory_limits is not None:  # a cgroup also holds a child in a new session
            assert gone(detached)
    finally:
        for pid in (grouped, detached):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


def test_a_thread_left_running_after_ok_recycles_the_worker(any_host: FunctionHost) -> None:
    first = any_host.invoke("spinner", {})

    assert first.outcome == "ok"
    assert gone(first.result)
    assert any_host.warm_workers("spinner") == []
    assert "left running after the invocation" in log_of(any_host, "spinner")
    second = any_host.invoke("spinner", {})
    assert second.result != first.result  # a new worker


def test_a_child_left_running_after_ok_dies_with_the_worker(confined: FunctionHost) -> None:
    before = set(int(p) for p in os.listdir("/proc") if p.isdigit())
    result = confined.invoke("spinner", {"child": True})

    assert result.outcome == "ok" and gone(result.result)
    sleepers = [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and int(p) not in before and _command(int(p)) == "sleep 120"
    ]
    assert all(gone(pid) for pid in sleepers)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@needs_cgroups
def test_forks_stop_at_the_pids_limit(confined: FunctionHost) -> None:
    result = confined.invoke("forker", {"n": 40})

    assert result.outcome == "ok"
    assert 0 < result.result < PIDS_MAX


def test_output_is_cut_at_the_cap_with_a_marker(any_host: FunctionHost) -> None:
    started = time.monotonic()
    result = any_host.invoke("shouter", {"mb": 20})

    assert result.outcome == "ok" and result.result == "done"
    log = log_of(any_host, "shouter")
    assert f"[tuner: output cut after {OUTPUT_BYTES} bytes in this invocation]" in log
    assert len(log) < OUTPUT_BYTES + 1024
    assert time.monotonic() - started < 8


def test_files_a_worker_writes_are_capped_in_size(plain: FunctionHost) -> None:
    assert plain.invoke("filler", {"mb": 2}).result == 2 << 20
    capped = plain.invoke("filler", {"mb": 10})

    assert capped.outcome == "ok" and capped.result == os.strerror(errno.EFBIG)


def test_a_forged_result_on_any_descriptor_never_becomes_an_oom(any_host: FunctionHost) -> None:
    result = any_host.invoke("forger", {})

    assert result.outcome == "error"
    assert "protocol violation" in result.error and "oom" in result.error
    recorded = any_host.records.invocations(["forger"], 0, time.time() + 1)
    assert [r.outcome for r in recorded] == ["error"]


def test_a_handler_cannot_report_dependency_calls_it_did_not_make(plain: FunctionHost) -> None:
    result = plain.invoke("blamer", {})

    assert result.outcome == "error" and "protocol violation" in result.error
    assert plain.records.dependency_calls(["blamer"], 0, time.time() + 1) == []


@pytest.mark.parametrize("path", ["@evil.example/", "//evil.example/", "a/b", "/a b", "/a\\b", 7])
def test_dependency_paths_cannot_change_the_host(path: object) -> None:
    with pytest.raises(ValueError):
        checked_path(path)
    assert checked_path("/items/p-100?x=1") == "/items/p-100?x=1"


def test_a_flood_on_the_protocol_pipe_is_cut_at_the_frame_cap(any_host: FunctionHost) -> None:
    peak_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    result = any_host.invoke("flooder", {})

    assert result.outcome == "error"
    assert "a message over 1048576 bytes" in result.error
    assert time.monotonic() - started < 5
    peak_after_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_after_mb - peak_before_mb < 64


def test_a_worker_that_stops_reading_still_times_out_on_time(plain: FunctionHost) -> None:
    finished: list[str] = []
    started = time.monotonic()
    caller = threading.Thread(
        target=lambda: finished.append(plain.invoke("jammer", {}).outcome),
        daemon=True,
    )
    caller.start()
    caller.join(timeout=6)

    assert finished == ["timeout"]
    assert time.monotonic() - started < 4


@pytest.mark.skipif(not ROOT, reason="privileges are only dropped when the host runs as root")
def test_workers_run_unprivileged_with_only_their_declared_environment(
    plain: FunctionHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNER_HOST_SECRET", "do-not-leak")
    result = plain.invoke("snoop", {})

    assert result.outcome == "ok"
    seen = result.result
    identity = plain.worker_identity("snoop")
    assert identity is not None and DEFAULT_UIDS[0] <= identity.uid <= DEFAULT_UIDS[1]
    assert (seen["uid"], seen["gid"], seen["groups"]) == (identity.uid, identity.gid, [])
    assert seen["shadow"] == "PermissionError"
    assert seen["environment"]["GREETING"] == "hello"
    assert set(seen["environment"]) <= {
        "GREETING",
        "PATH",
        "LANG",
        "HOME",
        "TMPDIR",
        "MALLOC_ARENA_MAX",
        "LC_CTYPE",
        HANDOVER_ENV,  # the settings tuner_handler reads, from the live configuration
        MAX_LINKS_ENV,
        FAN_OUT_ENV,
        SPLIT_ABOVE_ENV,
    }
    assert seen["tmp"] != "/tmp" and seen["tmp_mode"] == 0o700 and seen["tmp_uid"] == identity.uid
    assert not Path(seen["tmp"]).exists() or plain.warm_workers("snoop")


def test_each_child_process_has_the_address_space_cap(any_host: FunctionHost) -> None:
    result = any_host.invoke("child-hog", {"mb": 458, "children": 1})

    assert result.outcome == "ok" and result.result == [1]  # the child's MemoryError


@pytest.mark.skipif(not ROOT, reason="privileges are only dropped when the host runs as root")
def test_a_worker_cannot_look_into_another_functions_worker(plain: FunctionHost) -> None:
    assert plain.invoke("snoop", {}).outcome == "ok"
    [victim] = plain.warm_workers("snoop")

    seen = plain.invoke("peeker", {"pid": victim}).result
    assert seen == {"environ": "FileNotFoundError", "maps": "FileNotFoundError"}  # not even seen


@pytest.mark.skipif(not ROOT, reason="privileges are only dropped when the host runs as root")
def test_a_link_in_the_function_folder_is_followed_with_the_workers_rights(
    plain: FunctionHost,
) -> None:
    mode = os.stat("/etc/shadow").st_mode

    assert plain.invoke("linker", {}).result == "PermissionError"
    assert os.stat("/etc/shadow").st_mode == mode


@needs_cgroups
def test_memory_spread_over_children_is_bounded_by_the_cgroup(confined: FunctionHost) -> None:
    result = confined.invoke("child-hog", {"mb": 100, "children": 3})

    assert result.outcome == "oom"
    assert confined.warm_workers("child-hog") == []


def test_without_cgroups_the_host_watches_the_whole_group(plain: FunctionHost) -> None:
    result = plain.invoke("child-hog", {"mb": 100, "children": 3})

    assert result.outcome == "oom"
    assert result.error == "killed at its memory limit"


def test_the_shared_cache_a_handler_fills_stays_within_its_bound() -> None:
    cache = TtlCache(WallClock(), ttl_s=60, max_bytes=10_000)
    for index in range(100):
        cache.set(f"k{index}", "x" * 1000)

    assert cache.size_bytes <= 10_000
    assert cache.get("k99") == "x" * 1000 and cache.get("k0") is None  # oldest went first
    cache.set("huge", "x" * 20_000)
    assert cache.get("huge") is None


@pytest.mark.skipif(not ROOT, reason="privileges are only dropped when the host runs as root")
def test_workers_use_an_interpreter_their_user_can_run(tmp_path: Path) -> None:
    sandbox = Sandbox(SandboxPolicy(), ["f"], tmp_path)
    try:
        identity = sandbox.identity("f")
        assert identity is not None
        probe = subprocess.run(
            [sandbox.python, "-I", str(sandbox.script), "--probe"],
            user=identity.uid,
            group=identity.gid,
            capture_output=True,
            cwd="/",
        )
        assert probe.returncode == 0, probe.stderr
        user = ["--user", f"{identity.uid}:{identity.gid}"]
        assert sandbox.command("f")[3:5] == user
    finally:
        sandbox.close()


@pytest.mark.skipif(not ROOT, reason="privileges are only dropped when the host runs as root")
@pytest.mark.parametrize(
    ("uids", "why"),
    [((0, 10), "not a range of user ids above 0"), ((65534, 65534), "no free user id left")],
)
def test_a_range_without_free_user_ids_is_a_configuration_error(
    tmp_path: Path, uids: tuple[int, int], why: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Sandbox(SandboxPolicy(uids=uids), ["f"], tmp_path)  # 65534 is nobody: a named user
    assert refused.value.problems[0].field == "worker_uids" and why in str(refused.value)


@pytest.mark.skipif(not ROOT, reason="privileges are only dropped when the host runs as root")
def test_no_runnable_interpreter_is_a_configuration_error_naming_those_tried(
    tmp_path: Path,
) -> None:
    try:
        subprocess.run([sys.executable, "-c", "pass"], user=65534, group=65534, check=True, cwd="/")
        pytest.skip("tuner's own interpreter is readable by every user here")
    except (OSError, subprocess.CalledProcessError):
        pass  # as expected: a venv below root's home
    with pytest.raises(ConfigError) as refused:
        Sandbox(SandboxPolicy(python="/nonexistent/python3"), ["f"], tmp_path)
    assert refused.value.problems[0].field == "worker_python"
    assert sys.executable in str(refused.value) and "/nonexistent/python3" in str(refused.value)


def test_without_worker_uids_workers_keep_the_hosts_user(tmp_path: Path) -> None:
    host = FunctionHost(
        write_hostile(tmp_path / "hostile"),
        tmp_path / "state",
        WallClock(),
        sandbox=SandboxPolicy(uids=None),
    )
    host.start()
    try:
        seen = host.invoke("snoop", {}).result
    finally:
        host.close()
    assert seen["uid"] == os.geteuid()
    assert seen["environment"]["TMPDIR"] == seen["tmp"] != "/tmp"


def test_a_full_log_is_rotated_and_each_invocation_gets_its_budget(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    log = tmp_path / "logs" / "f.log"
    sink = OutputSink(read_end, log, output_bytes=300, log_bytes=1000)
    try:
        for _ in range(4):
            sink.begin_invocation()
            os.write(write_end, b"y" * 400)
            sink.pump()
    finally:
        os.close(write_end)
        sink.close()

    rotated = log.with_name("f.log.1")
    assert rotated.exists() and rotated.stat().st_size <= 1000
    assert log.read_bytes().count(b"[tuner: output cut after 300 bytes") >= 1
    assert log.stat().st_size <= 1000


def test_runtime_folders_of_hosts_that_are_gone_are_removed(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = tmp_path / f"tuner-runtime-{gone}-abc"
    mine = tmp_path / f"tuner-runtime-{os.getpid()}-abc"
    for folder in (stale, mine):
        (folder / "tmp" / "f-1").mkdir(parents=True)

    assert remove_stale_runtimes(tmp_path) == 1
    assert not stale.exists() and mine.exists()


def test_a_host_leaves_no_folder_behind(tmp_path: Path) -> None:
    sandbox = Sandbox(POLICY)
    worker_tmp = sandbox.private_tmp("f")
    sandbox.close()

    assert not worker_tmp.exists() and not worker_tmp.parent.parent.exists()
