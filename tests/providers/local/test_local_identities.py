"""Each function's own user id: distinct, kept across restarts, never shared by two hosts."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tuner.domain.errors import ConfigError
from tuner.providers.local.identities import DEFAULT_UIDS, Identities

FIRST = DEFAULT_UIDS[0]


def identities(
    tmp_path: Path, record: str = "a.json", uids: tuple[int, int] = DEFAULT_UIDS
) -> Identities:
    leases = tmp_path / "leases"
    return Identities(uids, tmp_path / record, leases)


def test_each_function_gets_a_user_of_its_own(tmp_path: Path) -> None:
    host = identities(tmp_path)
    try:
        taken = host.take(["a", "b", "c"])
    finally:
        host.close()

    assert len({i.uid for i in taken.values()}) == 3
    assert all(
        DEFAULT_UIDS[0] <= i.uid <= DEFAULT_UIDS[1] and i.gid == i.uid for i in taken.values()
    )
    assert json.loads((tmp_path / "a.json").read_text()) == {n: i.uid for n, i in taken.items()}
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o600


def test_a_function_keeps_its_user_across_restarts(tmp_path: Path) -> None:
    first = identities(tmp_path)
    before = first.take(["a", "b"])
    first.close()
    again = identities(tmp_path)
    try:
        after = again.take(["b", "c", "a"])  # another order, one more function
    finally:
        again.close()

    assert after["a"] == before["a"] and after["b"] == before["b"]
    assert after["c"].uid not in {before["a"].uid, before["b"].uid}


def test_two_hosts_never_share_a_user(tmp_path: Path) -> None:
    one, two = identities(tmp_path, "one.json"), identities(tmp_path, "two.json")
    try:
        mine = one.take(["f", "g"])
        theirs = two.take(["f", "g"])  # same names, another host: other users
        assert {i.uid for i in mine.values()}.isdisjoint(i.uid for i in theirs.values())
        one.close()
        again = identities(tmp_path, "one.json")
        assert again.take(["f"])["f"] == mine["f"]  # released when its host ended
        again.close()
    finally:
        one.close()
        two.close()


def test_a_user_with_a_name_is_never_taken(tmp_path: Path) -> None:
    host = identities(tmp_path, uids=(65534, 65535))  # 65534 is nobody
    try:
        assert host.take(["a"])["a"].uid == 65535
        with pytest.raises(ConfigError, match="no free user id left"):
            host.take(["b"])
    finally:
        host.close()


def test_a_lease_folder_others_could_write_is_refused(tmp_path: Path) -> None:
    leases = tmp_path / "leases"
    leases.mkdir(mode=0o777)
    os.chmod(leases, 0o777)

    with pytest.raises(ConfigError) as refused:
        Identities(DEFAULT_UIDS, tmp_path / "a.json", leases)
    assert refused.value.problems[0].field == "worker_uids" and str(leases) in str(refused.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a process as another user")
def test_a_user_a_running_process_holds_is_never_taken(tmp_path: Path) -> None:
    # Changes user itself, as a worker does: no longer dumpable, its /proc folder is root's.
    code = (
        f"import os, time; os.setgroups([]); os.setgid({FIRST}); os.setuid({FIRST}); time.sleep(30)"
    )
    holder = subprocess.Popen(["/usr/bin/python3", "-c", code])
    time.sleep(0.3)
    host = identities(tmp_path)
    try:
        assert host.take(["a"])["a"].uid == FIRST + 1
    finally:
        host.close()
        holder.kill()
        holder.wait()
