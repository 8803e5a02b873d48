"""`cascade --version`: the version of the installed distribution, whatever it is named.

The distribution is looked up by the package this code is in (`ops`), not by a name written here: it is
being renamed, and a hard-coded name would report "unknown" after the rename.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from typing import Any

FALLBACK_NAMES = ("cascade",)


def installed_version(package: str = "ops") -> str:
    names = [*packages_distributions().get(package, []), *FALLBACK_NAMES]
    for name in dict.fromkeys(names):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "unknown (not installed as a distribution)"


class VersionAction(argparse.Action):
    """Like argparse's "version" action, but reads the metadata only when --version is given: scanning the
    installed distributions costs every other command startup time for nothing."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the version and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"cascade {installed_version()}")  # stdout, as argparse's own "version" action does
        parser.exit()
