"""rnnserve: a gRPC server for recurrent text models, with backends loaded as pluggy plugins.

Plugin authors import from :mod:`rnnserve.plugin_api` (its ``__all__`` is the whole public
surface, versioned), :mod:`rnnserve.testing` and :mod:`rnnserve.training`; the rest of the
package is the host's own.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("rnnserve")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

#: Marks a plugin's hook implementations: ``@hookimpl def register_backends(register): ...``
hookimpl = pluggy.HookimplMarker("rnnserve")

__all__ = ["__version__", "hookimpl"]
