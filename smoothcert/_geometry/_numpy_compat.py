"""numpy names that geomstats still imports, restored where numpy removed them.

geomstats 2.8 imports ``numpy.trapz``, which numpy 2.4 removed in favour of
``numpy.trapezoid`` (the same function under its new name, added in numpy 2.0).
:func:`restore_trapz` aliases the old name before geomstats is imported, and only
where it is missing, so that ``method="riemannian"`` works with any numpy this
package supports, without pinning numpy below 2.4.
"""

import numpy as np

__all__ = ["restore_trapz"]


def restore_trapz(module=np):
    """Alias ``module.trapz`` to ``module.trapezoid`` where only the new name exists.

    Parameters
    ----------
    module : module, default=numpy
        The numpy namespace (a stand-in in tests).

    Returns
    -------
    aliased : bool
        True when the alias was added; False when ``trapz`` already exists (numpy
        before 2.4, left untouched) or ``trapezoid`` does not.

    Examples
    --------
    >>> import types
    >>> from smoothcert._geometry._numpy_compat import restore_trapz
    >>> new_numpy = types.SimpleNamespace(trapezoid=sum)
    >>> restore_trapz(new_numpy), new_numpy.trapz is sum
    (True, True)
    >>> restore_trapz(new_numpy)  # already there: untouched
    False
    """
    if hasattr(module, "trapz") or not hasattr(module, "trapezoid"):
        return False
    module.trapz = module.trapezoid
    return True
