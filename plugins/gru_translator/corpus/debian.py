"""Moved to :mod:`rnnserve_plugins.debian_packages` (shared with ``rnnserve data english``); re-exported here."""

from rnnserve_plugins.debian_packages import (
    RESERVED,
    DataError,
    DebPackage,
    ReservedSourceError,
    check_allowed,
    fetch,
    sha256_file,
    subprocess,
)

__all__ = ["RESERVED", "DataError", "DebPackage", "ReservedSourceError", "check_allowed", "fetch", "sha256_file",
           "subprocess"]
