"""The ``mmbot run`` command line the subprocess tests start against a local simulator."""

import sys


def mmbot_run(sim_url: str, *args: str) -> list[str]:
    """Return the argv of ``mmbot run --sim-url SIM_URL ARGS...`` in this interpreter."""
    return [sys.executable, "-m", "mmbot", "run", "--sim-url", sim_url, *args]
