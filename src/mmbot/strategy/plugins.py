"""Load a user's quote model named by ``[strategy] model`` (no fork needed).

``model`` is either ``"package.module:ClassName"`` (imported from ``sys.path``, so a file
next to the config works with ``PYTHONPATH=.``) or the name of an entry point in the
``mmbot.models`` group of an installed package. The class is called as
``cls(strategy, params=..., maker_fee_bps=...)`` and must validate ``params`` itself,
refusing unknown keys with :class:`~mmbot.config.ConfigError` (see docs/quote-models.md).

Every failure here (missing module, missing class, a module that raises on import) is a
:class:`~mmbot.config.ConfigError` naming ``strategy.model``, so a command stops with one
line and exit status 2 before the first order.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from mmbot.config import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "load_model_class"]

#: entry point group a package uses to offer quote models by name
ENTRY_POINT_GROUP = "mmbot.models"


def _entry_point(name: str) -> Any:
    matches = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    return matches[0] if matches else None


def load_model_class(spec: str, builtin: tuple[str, ...] = ()) -> type:
    """Return the class named by ``spec`` (``module:Class`` or an entry point name).

    Raises
    ------
    ConfigError
        Naming ``strategy.model`` and why the class could not be loaded.
    """
    where = f"strategy.model: {spec!r}"
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ConfigError(f"{where}: expected package.module:ClassName")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"{where}: cannot import {module_name}: {exc}") from exc
        except Exception as exc:
            # the user's module raised while importing: say which and why, chained
            raise ConfigError(
                f"{where}: importing {module_name} raised {type(exc).__name__}: {exc}"
            ) from exc
        obj: Any = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ConfigError(f"{where}: {module_name} has no {attr}") from None
    else:
        ep = _entry_point(spec)
        if ep is None:
            known = ", ".join(builtin) if builtin else ""
            raise ConfigError(
                f"{where}: unknown model (one of {known}, package.module:ClassName, or an "
                f"installed {ENTRY_POINT_GROUP} entry point)"
            )
        try:
            obj = ep.load()
        except Exception as exc:
            raise ConfigError(
                f"{where}: loading entry point {ep.value} raised {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(obj, type):
        raise ConfigError(f"{where}: is a {type(obj).__name__}, not a class")
    return obj
