"""``[run] keep_cpus_awake``: one SCHED_IDLE spinner per CPU, refused where it would harm."""

import dataclasses
import os
import threading

import pytest
from support.waiting import wait_for

from mmbot.awake import AwakeCpus, KeepAwakeError, cpu_quota
from mmbot.config import ConfigError, load_config
from mmbot.live import LiveSession, summary_text
from mmbot.sim.server import SimSymbol

SYM = "BTCUSDT"


def _spinners() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mmbot-awake-")]


def test_each_cpu_gets_one_pinned_idle_priority_spinner_until_stop():
    cpus = sorted(os.sched_getaffinity(0))
    with AwakeCpus() as awake:
        assert awake.cpus == cpus
        threads = _spinners()
        assert len(threads) == awake.running == len(cpus)
        for thread, cpu in zip(sorted(threads, key=lambda t: t.name), cpus, strict=True):
            assert thread.name == f"mmbot-awake-{cpu}"
            assert os.sched_getaffinity(thread.native_id) == {cpu}
            assert os.sched_getscheduler(thread.native_id) == os.SCHED_IDLE
        # the caller's own thread is untouched
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
        assert os.sched_getaffinity(0) == set(cpus)
    assert _spinners() == [] and awake.running == 0


def test_a_cpu_the_process_cannot_use_is_refused_with_no_spinner_left():
    usable = min(os.sched_getaffinity(0))
    awake = AwakeCpus([usable, 4096])
    with pytest.raises(KeepAwakeError, match=r"run\.keep_cpus_awake: CPU 4096"):
        awake.start()
    assert wait_for(lambda: _spinners() == [])
    assert isinstance(KeepAwakeError("x"), ConfigError)  # mmbot prints it as one line


def test_no_cpu_to_keep_awake_is_refused():
    with pytest.raises(KeepAwakeError, match="no CPU to keep awake"):
        AwakeCpus([]).start()


def _cgroup_tree(root, proc_cgroup: str, files: dict[str, str]) -> str:
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(proc_cgroup)
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return str(root)


@pytest.mark.parametrize(
    "proc_cgroup, files, quota",
    [
        # cgroup v2, as Docker writes `--cpus 1.5` and no limit
        (
            "0::/docker/abc\n",
            {"sys/fs/cgroup/docker/abc/cpu.max": "150000 100000\n"},
            "cpu.max 150000 100000",
        ),
        ("0::/user.slice\n", {"sys/fs/cgroup/user.slice/cpu.max": "max 100000\n"}, None),
        # cgroup v1, the cpu controller mounted with cpuacct, and alone
        (
            "5:cpuacct,cpu:/x\n4:memory:/x\n",
            {"sys/fs/cgroup/cpuacct,cpu/x/cpu.cfs_quota_us": "50000\n"},
            "cpu.cfs_quota_us 50000",
        ),
        ("1:cpu:/\n", {"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n"}, None),
        # a quota on a parent throttles the cgroups under it
        (
            "0::/kubepods/pod1/c1\n",
            {
                "sys/fs/cgroup/kubepods/pod1/c1/cpu.max": "max 100000\n",
                "sys/fs/cgroup/kubepods/pod1/cpu.max": "200000 100000\n",
                "sys/fs/cgroup/kubepods/cpu.max": "max 100000\n",
            },
            "cpu.max 200000 100000",
        ),
        # no file to read: nothing known, no quota assumed
        ("0::/gone\n", {}, None),
    ],
    ids=["v2-quota", "v2-none", "v1-quota", "v1-none", "v2-parent-quota", "unreadable"],
)
def test_cpu_quota_reads_the_cgroup_files(tmp_path, proc_cgroup, files, quota):
    assert cpu_quota(_cgroup_tree(tmp_path, proc_cgroup, files)) == quota


def test_under_a_cpu_quota_no_spinner_starts(tmp_path):
    root = _cgroup_tree(tmp_path, "0::/c\n", {"sys/fs/cgroup/c/cpu.max": "100000 100000\n"})
    with pytest.raises(KeepAwakeError, match=r"CPU quota \(cpu.max 100000 100000\)"):
        AwakeCpus(fs_root=root).start()
    assert _spinners() == []


def test_config_key_must_be_a_boolean(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[run]\nkeep_cpus_awake = "yes"\n')
    with pytest.raises(ConfigError, match=r"run\.keep_cpus_awake: expected bool"):
        load_config(str(path))


@pytest.mark.slow
def test_a_live_session_keeps_its_cpus_awake_while_it_runs_and_no_longer(start_sim):
    sim = start_sim(symbols=[SimSymbol(SYM)], speed=2.0)
    base = load_config(None)
    cfg = dataclasses.replace(base, run=dataclasses.replace(base.run, keep_cpus_awake=True))
    session = LiveSession(cfg, SYM, "sim", sim=sim).open()
    t = threading.Thread(target=session.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: sim.open_orders(SYM))  # quoting, with the spinners on
        assert len(_spinners()) == len(os.sched_getaffinity(0))
    finally:
        session.request_stop()
        t.join(20)
    assert not t.is_alive()
    session.close()
    assert _spinners() == []
    assert sim.open_orders(SYM) == []
    timing = session.timing()
    assert timing["awake_cpus"] == sorted(os.sched_getaffinity(0))
    text = summary_text(session.summary(), timing, {})
    assert f"(CPUs kept awake: {timing['awake_cpus']})" in text
