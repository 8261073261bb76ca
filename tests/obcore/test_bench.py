"""obcore-bench: the variant comparison that ships in the wheel (``obcore.bench``).

Runs are tiny (a few dozen frames, one repetition): these check what the command does and
how it fails, never how fast anything is.
"""

import importlib.util
import json
import os
import subprocess
import sys
import venv

import pytest
from obcore.bench._floor import FloorBook

import obcore
from obcore.bench import peers as bench_peers
from obcore.bench import runner as bench_runner
from obcore.bench.runner import main
from obcore.bench.workloads import synthetic
from obcore.recording import write_frames
from obcore.synthetic import generate_frames

TINY = ["--messages", "40", "--repeat", "1", "--budget", "0.01", "--depth", "50"]
VARIANTS = [f"obcore-{k}" for k in obcore.kinds()]


def table_rows(out: str) -> dict[str, str]:
    """The table's rows by peer name (the lines between the rule and the blank line)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line) == {"-"}) + 1
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        rows[line.split()[0]] = line
    return rows


@pytest.fixture
def recording(tmp_path):
    """A gzip recording with a pong and a trade frame among the orderbook frames."""
    frames = list(generate_frames(depth=30, messages=40, seed=3))
    frames.insert(0, '{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}')
    frames.insert(5, '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[]}')
    path = tmp_path / "btc.jsonl.gz"
    write_frames(path, frames)
    return path


def test_default_run_compares_every_variant_and_installed_peers(capsys):
    # the wheel matrix runs these tests with the wheel alone: order-book is a [bench] peer
    pytest.importorskip("order_book", reason="needs the obcore[bench] peer order-book")
    pytest.importorskip("orjson", reason="needs the obcore[bench] peer order-book")
    assert main([*TINY, "--peers", ",".join(VARIANTS + ["order-book"])]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert list(rows) == VARIANTS + ["order-book"]
    assert "x order-book (level/msg)" in out
    assert rows["order-book"].rstrip().endswith("1.0x / 1.0x")
    assert "checked against an exact reference" in out


def test_without_peers_it_compares_the_variants_and_says_what_was_skipped(capsys, monkeypatch):
    real = importlib.util.find_spec
    absent = {"order_book", "sortedcontainers", "pybit", "orjson"}
    monkeypatch.setattr(
        bench_peers.importlib.util,
        "find_spec",
        lambda name, *a: None if name in absent else real(name, *a),
    )
    assert main(TINY) == 0
    out, err = capsys.readouterr()
    rows = table_rows(out)
    assert list(rows) == VARIANTS  # no reference unless --quick/--full
    baseline = VARIANTS[0]  # the default variant
    assert f"x {baseline} (level/msg)" in out
    assert rows[baseline].rstrip().endswith("1.0x / 1.0x")
    note = next(line for line in out.splitlines() if "peers skipped" in line)
    for name in (
        "order-book (needs order-book + orjson)",
        "sorteddict",
        "pybit (needs pybit)",
        "obcore[bench]",
    ):
        assert name in note
    assert "skipping peers that are not installed" in err


def test_recording_with_inferred_steps_warns_in_one_line_each(recording, capsys):
    assert main([*TINY, "--recording", str(recording), "--peers", "obcore-ladder"]) == 0
    out, err = capsys.readouterr()
    assert "obcore-ladder" in table_rows(out)
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "tick size inferred as 0.1" in warnings[0] and "--tick-size" in warnings[0]
    assert "lot size inferred as 0.001" in warnings[1]
    assert "orderbook.30.BTCUSDT" in err


def test_recording_with_given_steps_and_json_and_baseline(recording, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    assert (
        main(
            [
                *TINY,
                "--recording",
                str(recording),
                "--tick-size",
                "0.1",
                "--lot-size",
                "0.001",
                "--peers",
                "obcore-ladder,obcore-heap",
                "--baseline",
                "obcore-heap",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "warning" not in err
    assert table_rows(out)["obcore-heap"].rstrip().endswith("1.0x / 1.0x")
    results = json.loads(out_json.read_text())
    assert results["baseline"] == "obcore-heap"
    assert results["workload"]["tick_size"] == "0.1"
    assert results["workload"]["deltas"] == 39
    assert set(results["main"]) == {"obcore-ladder", "obcore-heap"}
    assert results["main"]["obcore-ladder"]["frame_us"] > 0


def test_chart(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "chart.png"
    assert main([*TINY, "--peers", "obcore-ladder", "--chart", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart: {png}" in capsys.readouterr().out


def test_chart_without_matplotlib_fails_before_measuring(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        bench_runner.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    assert main([*TINY, "--chart", str(tmp_path / "c.png")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "pip install matplotlib" in err
    assert not (tmp_path / "c.png").exists()


def _bad_files(tmp_path):
    not_json = tmp_path / "bad.txt"
    not_json.write_text('{"topic":"orderbook.50.X","type":"snapshot",\n')
    no_snapshot = tmp_path / "nosnap.txt"
    frames = list(generate_frames(depth=10, messages=5, seed=1))[1:]
    write_frames(no_snapshot, frames)
    shapeless = tmp_path / "shapeless.txt"
    shapeless.write_text('{"topic":"orderbook.50.X","type":"snapshot","data":{"b":1}}\n')
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b'{"topic":"orderbook.50.X"\xff\xfe}\n')
    return {
        "not JSON": not_json,
        "no snapshot": no_snapshot,
        "without data.b": shapeless,
        "not UTF-8": binary,
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "not JSON",
        "no snapshot",
        "without data.b",
        "not UTF-8",
        "bad tick",
        "off tick",
        "unknown peer",
        "bad baseline",
        "empty",
    ],
)
def test_errors_are_one_line_and_exit_2(case, tmp_path, recording, capsys):
    files = _bad_files(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    argv = {
        "missing file": ["--recording", str(tmp_path / "nope.gz")],
        "bad tick": ["--recording", str(recording), "--tick-size", "0.1x"],
        "off tick": ["--recording", str(recording), "--tick-size", "0.3", "--lot-size", "0.001"],
        "unknown peer": ["--peers", "obcore-ladder,btree"],
        "bad baseline": ["--peers", "obcore-ladder", "--baseline", "order-book"],
        "empty": ["--recording", str(empty)],
    }.get(case) or ["--recording", str(files[case])]
    assert main([*TINY, *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("obcore-bench: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    expect = {
        "missing file": "No such file",
        "bad tick": "--tick-size",
        "off tick": "tick",
        "unknown peer": "btree",
        "bad baseline": "order-book",
        "empty": "no orderbook frames",
    }.get(case, case)
    assert expect in err


def test_a_requested_peer_that_is_not_installed_names_the_extra(capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        bench_peers.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "order_book" else real(name, *a),
    )
    assert main([*TINY, "--peers", "order-book"]) == 2
    assert "obcore[bench]" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_obcore_bench_runs(tmp_path):
    # From a directory with no repository files: the command needs only the package.
    proc = subprocess.run(
        [sys.executable, "-m", "obcore.bench", *TINY, "--peers", "obcore-ladder"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "obcore-ladder" in table_rows(proc.stdout)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("OBCORE_TEST_WHEEL"),
    reason="set OBCORE_TEST_WHEEL to a built wheel (pip wheel . -w DIR "
    "--no-deps) to test it in a fresh venv",
)
def test_wheel_alone_in_a_fresh_venv(tmp_path):
    """The wheel plus numpy (its one dependency) and nothing else: obcore-bench runs and
    says which peers it skipped."""
    wheel = os.path.abspath(os.environ["OBCORE_TEST_WHEEL"])
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", wheel], check=True, timeout=300)
    proc = subprocess.run(
        [str(env_dir / "bin" / "obcore-bench"), *TINY],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(table_rows(proc.stdout)) == VARIANTS
    assert "peers skipped, not installed" in proc.stdout


def test_short_run_replays_at_most_the_first_2000_frames_of_a_recording(tmp_path, capsys):
    path = tmp_path / "long.txt"
    write_frames(path, generate_frames(depth=10, messages=2100, seed=2))
    out_json = tmp_path / "r.json"
    assert (
        main(
            [
                "--repeat",
                "1",
                "--budget",
                "0.01",
                "--recording",
                str(path),
                "--tick-size",
                "0.1",
                "--lot-size",
                "0.001",
                "--peers",
                "obcore-ladder",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    assert "replaying the first 2,000 frames" in capsys.readouterr().err
    assert json.loads(out_json.read_text())["workload"]["deltas"] == 1999


def test_repository_runner_is_obcore_bench_with_the_full_method_as_default():
    runner = pytest.importorskip("benchmarks.runner", reason="needs the repository checkout")
    args = runner.build_parser().parse_args([])
    assert (args.profile, args.json, args.chart) == (
        "full",
        "out/benchmarks.json",
        "docs/img/benchmarks.png",
    )
    assert runner.build_parser().parse_args(["--quick", "--callgrind", "ladder"]).profile == "quick"
    assert runner.execute is bench_runner.execute


def test_the_floor_is_checked_against_the_reference_like_every_peer(capsys):
    """The speed floor is a peer like the others: its book after a replay must match the
    exact reference, or the run reports it WRONG and gives it no numbers."""
    pytest.importorskip("orjson", reason="the floor's raw-frame path is orjson + the array")
    wl = synthetic(depth=50, messages=60, seed=4)
    oracle = bench_peers.ExactBook(wl.tick_size, wl.lot_size)
    floor = bench_peers.make_peer("floor", wl.tick_size, wl.lot_size)
    for msg, frame in zip(wl.msgs, wl.frames, strict=True):
        oracle.apply_levels(msg)
        floor.apply_frame(frame)
    bench_peers.check_peer(floor, oracle, 10, wl.vwap_lots)
    # One level the reference does not have: the same check must refuse the floor.
    above = oracle.levels(1)[0][0][0] + 1  # ticks of 0.1
    floor.book.apply_levels([[f"{above // 10}.{above % 10}", "1.000"]], [])
    with pytest.raises(bench_peers.PeerMismatch, match="floor: top 10 bids differ"):
        bench_peers.check_peer(floor, oracle, 10, wl.vwap_lots)

    assert main([*TINY, "--peers", "obcore-ladder,floor"]) == 0
    out = capsys.readouterr().out
    assert "WRONG" not in table_rows(out)["floor"]
    assert "time relative to the floor" in out and "obcore-ladder " in out


def test_the_floor_refuses_what_it_cannot_hold():
    """A fixed window and no staging: a price outside it raises (never a silent drop)."""
    book = FloorBook("0.1", "0.001")
    book.apply_levels([["100.0", "1.000"]], [["100.1", "2.000"]])
    assert (book.best_bid(), book.best_ask(), len(book)) == (1000, 1001, 2)
    with pytest.raises(ValueError, match="floor"):
        book.apply_levels([["1000000.0", "1.000"]], [])
    with pytest.raises(ValueError, match="floor"):
        book.apply_levels([["100.05", "1.000"]], [])
