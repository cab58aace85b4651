"""Exchange formats: NIR export and import (:mod:`nsnn_jax.interop.nir`, needs the ``interop`` extra).

Importing this package does not import ``nir``; its functions do, and raise an
``ImportError`` naming the extra when it is missing.
"""

from nsnn_jax.interop import fold, nir
from nsnn_jax.interop.fold import to_sequential
from nsnn_jax.interop.nir import export, import_graph, read, write

__all__ = ["fold", "nir", "to_sequential", "export", "import_graph", "read", "write"]
