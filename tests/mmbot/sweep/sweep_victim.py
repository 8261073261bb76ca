"""A sweep worker whose trials never finish: the kill/retry test SIGKILLs it mid-trial.

Run as ``python sweep_victim.py <mmbot sweep arguments>``. Its backtest blocks forever, so the
test can wait until the storage shows the trial RUNNING and kill the worker then, without
guessing how long a trial takes.
"""

import sys
import threading

import mmbot.sweep.study
from mmbot import cli


def _never(*_args, **_kwargs):
    threading.Event().wait()


mmbot.sweep.study.evaluate = _never
sys.exit(cli.main(["sweep", *sys.argv[1:]]))
