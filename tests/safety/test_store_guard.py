"""The store as an input: one daemon per store, and every unusable store refused in one line.

Each refusal ends with exit 2, one line on stderr, no traceback, and the file untouched.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.unit.test_loop import world
from tuner.cli.main import main
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.ports import CycleRecord
from tuner.store.audit import SCHEMA_VERSION, SqliteStore
from tuner.store.claiming import StoreError, lock_path


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """``tuner once`` points the logs at this test's captured stderr: undo that after."""
    yield
    structlog.reset_defaults()


def config(tmp_path: Path, store: Path) -> Path:
    """A configuration whose provider runs nothing: a local host without functions."""
    functions = tmp_path / "host"
    (functions / "functions").mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "tuner.yaml"
    cfg.write_text(
        f"store: {store}\n"
        "providers:\n"
        f"  - {{type: local, functions_dir: {functions}, state_dir: {tmp_path / 'state'},"
        " traffic: false, http_port: null, cgroups: false}\n"
    )
    return cfg


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(
    capsys: pytest.CaptureFixture[str], cfg: Path, store: Path, command: str = "once"
) -> str:
    """Run a command against a bad store: exit 2, one line on stderr, the store unchanged."""
    before = digest(store) if store.is_file() else None
    assert main([command, "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    if before is not None:
        assert digest(store) == before
    return err.strip()


def holder_process(store: Path) -> subprocess.Popen[str]:
    """Another process holding the store as a daemon does, until killed."""
    code = (
        "import sys, time\n"
        "from tuner.store.audit import SqliteStore\n"
        f"store = SqliteStore({str(store)!r}, hold=True)\n"
        "print('holding', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_second_daemon_refuses_to_start_naming_the_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "tuner.db"
    cfg = config(tmp_path, store)
    other = holder_process(store)
    try:
        err = refused(capsys, cfg, store)
        assert err.startswith(f"{store}: in use by another tuner (pid {other.pid} on ")
        assert f" on {socket.gethostname()} since 20" in err
        assert err.endswith("Z); stop it or use another store")
        # reading the history needs no claim
        assert main(["explain", "-c", str(cfg)]) == 0
    finally:
        other.send_signal(signal.SIGKILL)  # gone without a word: no cleanup ran
        other.wait()
    assert main(["once", "-c", str(cfg)]) == 0
    assert "no findings" in capsys.readouterr().out


def test_the_claim_is_released_on_close_and_names_no_one_after(tmp_path: Path) -> None:
    store = tmp_path / "tuner.db"
    first = SqliteStore(store, hold=True)
    with pytest.raises(StoreError, match="in use by another tuner"):
        SqliteStore(store, hold=True)
    reader = SqliteStore(store)  # explain, reports: no claim
    reader.close()
    first.close()
    second = SqliteStore(store, hold=True)
    second.close()
    assert lock_path(store).exists()


def test_a_store_of_random_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "tuner.db"
    store.write_bytes(os.urandom(65536))
    cfg = config(tmp_path, store)
    expected = f"{store}: is not a tuner store (not a SQLite database); nothing was changed"
    assert refused(capsys, cfg, store) == expected
    assert refused(capsys, cfg, store, "explain") == expected
    assert not Path(f"{store}-wal").exists()


def test_a_store_with_damaged_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "tuner.db"
    db = SqliteStore(store)
    for i in range(200):
        db.put_state(f"key-{i}", "x" * 500)
    db.close()
    data = bytearray(store.read_bytes())
    page = 4096
    data[5 * page : 7 * page] = os.urandom(2 * page)  # the header page stays intact
    store.write_bytes(bytes(data))
    err = refused(capsys, config(tmp_path, store), store)
    assert err.startswith(f"{store}: is damaged (")
    assert err.endswith("nothing was changed")


def test_a_store_from_a_newer_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "tuner.db"
    db = sqlite3.connect(store)
    db.execute("CREATE TABLE decisions (id TEXT PRIMARY KEY, shape TEXT)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    assert refused(capsys, config(tmp_path, store), store) == (
        f"{store}: was written by a newer tuner (store schema {SCHEMA_VERSION + 1}, this tuner "
        f"reads up to {SCHEMA_VERSION}); upgrade tuner, nothing was changed"
    )
    columns = [r[1] for r in sqlite3.connect(store).execute("PRAGMA table_info(decisions)")]
    assert columns == ["id", "shape"]


def test_a_store_path_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "tuner.db"
    store.mkdir()
    assert refused(capsys, config(tmp_path, store), store) == (
        f"{store}: is a folder, not a store file; name a file, e.g. .tuner/tuner.db"
    )
    assert list(store.iterdir()) == []


def test_a_store_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain").write_text("a file")
    store = tmp_path / "plain" / "tuner.db"
    assert refused(capsys, config(tmp_path, store), store) == (
        f"{store}: cannot create its folder: {tmp_path / 'plain'} is a file"
    )


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB tmpfs (needs root, as CI and the development machines have)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_store_that_cannot_be_written(
    tmp_path: Path, small_mount: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = small_mount / "tuner.db"
    SqliteStore(store).close()
    before = digest(store)
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    assert refused(capsys, config(tmp_path, store), store) == (
        f"{store}: cannot be written (read-only file system or no permission)"
    )
    assert digest(store) == before


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` until it has no byte left."""
    filler = folder / "filler"
    try:
        with filler.open("wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError:
        pass
    return filler


class FillingStore(SqliteStore):
    """A store on a small file system that fills up right before the loop saves its state."""

    full = False

    def record_cycle(self, record: CycleRecord) -> list[Decision]:
        if not self.full:
            self.full = True
            fill(Path(self.path).parent)
        return super().record_cycle(record)


def test_disk_full_an_applied_change_is_announced_and_the_daemon_recovers(
    small_mount: Path,
) -> None:
    store = FillingStore(small_mount / "tuner.db")
    daemon, provider, notifier, clock = world(store=store)
    try:
        report = daemon.run_cycle()  # the change is applied, then the disk is full
    except sqlite3.OperationalError as exc:
        assert "full" in str(exc)
        report = None
    assert [name for name, _ in provider.applied] == ["oomer"]
    announced = [d for d in notifier.sent if d.state is State.APPLIED]
    assert [d.ref.name for d in announced] == ["oomer"]
    assert report is not None  # the cycle ended and the daemon goes on
    clock.advance(60)
    daemon.run_cycle()  # still full: cycles go on
    (small_mount / "filler").unlink()
    clock.advance(60)
    daemon.run_cycle()
    assert store.get_state("streaks") is not None


def test_fresh_never_deletes_the_store_of_a_running_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    store = tmp_path / ".tuner" / "tuner.db"
    other = holder_process(store)
    try:
        assert main(["run", "--fresh", "--for", "1s"]) == 2
        assert "in use by another tuner" in capsys.readouterr().err
        assert store.exists()
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
