"""Instruction counts per message under ``valgrind --tool=callgrind``.

Wall-clock time on a shared 2-core machine moves by 10-30% between runs; instruction
counts move by well under 1%, so they are the way to compare two builds or two variants.

Method: the same target process runs three times under callgrind on the same recording
(written once to a temporary file). Each loads the frames, decodes them, builds the peer
and applies the snapshot with collection off, then calls the replay through
``sys.call_tracing``, and callgrind collects only inside that C function
(``--collect-atstart=no --toggle-collect=sys_call_tracing``). The baseline replays
nothing; the others replay every delta from raw frames (``frames``) or from
orjson-decoded messages (``levels``). Instructions per message are
``(Ir(replay) - Ir(baseline)) / deltas``: start-up, imports and loading never count, and
garbage collections triggered by the replay do.

The target is ``python -m benchmarks.callgrind --target FILE --peer NAME --mode MODE``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

__all__ = ["count_instructions", "CallgrindError"]

_MODES = ("none", "frames", "levels")


class CallgrindError(RuntimeError):
    """valgrind is missing or a run under it failed."""


def _target(path: str, peer_name: str, mode: str, tick: str, lot: str) -> None:
    import orjson  # noqa: PLC0415

    from obcore.bench.peers import make_peer  # noqa: PLC0415
    from obcore.recording import read_frames  # noqa: PLC0415

    frames = list(read_frames(path))
    msgs = [orjson.loads(f) for f in frames]
    peer = make_peer(peer_name, tick, lot, msgs[0]["topic"])
    peer.apply_frame(frames[0])

    def replay():
        if mode == "frames":
            apply = peer.apply_frame
            for f in frames[1:]:
                apply(f)
        elif mode == "levels":
            apply = peer.apply_levels
            for m in msgs[1:]:
                apply(m)

    # Collection is switched on only inside sys.call_tracing (see _COLLECT): the counts
    # cover the replay and nothing else.
    sys.call_tracing(replay, ())


def _ir(out_file: str) -> int:
    with open(out_file) as f:
        text = f.read()
    m = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.M)
    if not m:
        raise CallgrindError(f"no instruction total in {out_file}")
    return int(m.group(1))


def count_instructions(
    peer_name: str,
    frames: list[str],
    tick_size: str,
    lot_size: str,
    modes=("frames", "levels"),
    timeout_s: float = 1800,
) -> dict:
    """Return instructions per message for ``peer_name`` replaying ``frames``.

    Parameters
    ----------
    peer_name : str
        A peer from :func:`obcore.bench.peers.peer_names` (``obcore-ladder``, ``order-book``...).
    frames : list of str
        Raw frames, the first a snapshot.
    modes : tuple of str
        ``"frames"`` (raw text in) and/or ``"levels"`` (orjson-decoded messages in).

    Returns
    -------
    dict
        ``{"peer", "deltas", "level_updates", "baseline_ir", "<mode>_ir_per_message",
        "<mode>_ir_per_level"}``.

    Raises
    ------
    CallgrindError
        If valgrind is not installed or a run fails.
    """
    if shutil.which("valgrind") is None:
        raise CallgrindError("valgrind is not installed (apt-get install valgrind)")
    import orjson  # noqa: PLC0415

    from obcore.recording import write_frames  # noqa: PLC0415

    deltas = len(frames) - 1
    if deltas < 1:
        raise CallgrindError("need a snapshot and at least one delta")
    levels = sum(len(m["data"]["b"]) + len(m["data"]["a"]) for m in map(orjson.loads, frames[1:]))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = {"peer": peer_name, "deltas": deltas, "level_updates": levels}
    with tempfile.TemporaryDirectory(prefix="obcore-callgrind-") as tmp:
        rec = os.path.join(tmp, "frames.txt")
        write_frames(rec, frames)
        irs = {}
        for mode in ("none",) + tuple(modes):
            out = os.path.join(tmp, f"callgrind.{mode}.out")
            cmd = [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--collect-atstart=no",
                "--toggle-collect=sys_call_tracing",
                sys.executable,
                "-m",
                "benchmarks.callgrind",
                "--target",
                rec,
                "--peer",
                peer_name,
                "--mode",
                mode,
                "--tick-size",
                tick_size,
                "--lot-size",
                lot_size,
            ]
            env = dict(os.environ, PYTHONHASHSEED="0")
            proc = subprocess.run(
                cmd, capture_output=True, text=True, cwd=root, env=env, timeout=timeout_s
            )
            if proc.returncode != 0:
                raise CallgrindError(f"callgrind run ({mode}) failed:\n{proc.stderr[-3000:]}")
            irs[mode] = _ir(out)
        result["baseline_ir"] = irs["none"]
        for mode in modes:
            diff = irs[mode] - irs["none"]
            result[f"{mode}_ir_per_message"] = diff / deltas
            result[f"{mode}_ir_per_level"] = diff / levels
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.callgrind",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--target", required=True, help="recording to replay (internal use)")
    ap.add_argument("--peer", required=True)
    ap.add_argument("--mode", choices=_MODES, required=True)
    ap.add_argument("--tick-size", required=True)
    ap.add_argument("--lot-size", required=True)
    a = ap.parse_args(argv)
    _target(a.target, a.peer, a.mode, a.tick_size, a.lot_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
