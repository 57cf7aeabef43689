"""What a call costs: its count of base-model predictions, a progress bar, a warning.

Certification costs ``n_inputs * (n_samples_selection + n_samples)`` base-model
predictions and the covariance search adds its own; everything else is small
beside that. A :class:`Progress` is created for one public call (``certify``,
``predict``, ...) with the number of predictions it will make at most; the engine
adds every block's predictions to it, so that one bar, with tqdm's estimate of
the remaining time, covers the covariance search and the certification alike.
Before any draw, a call that will make more than :data:`COST_WARNING_PREDICTIONS`
predictions warns (:class:`~smoothcert.exceptions.CostWarning`).
"""

import warnings

from ..exceptions import CostWarning

__all__ = ["Progress", "COST_WARNING_PREDICTIONS", "warn_if_costly"]

#: Base-model predictions above which a call warns before it starts.
COST_WARNING_PREDICTIONS = 10**10


def warn_if_costly(n_predictions, what, advice, stacklevel=3):
    """Warn (:class:`CostWarning`) when ``n_predictions`` exceeds the threshold."""
    if n_predictions > COST_WARNING_PREDICTIONS:
        warnings.warn(
            f"{what} will make up to {n_predictions:.3g} base-model predictions "
            f"(more than {COST_WARNING_PREDICTIONS:.0e}): at a million predictions per "
            f"second that is {n_predictions / 1e6 / 3600:.3g} hours. {advice}",
            CostWarning,
            stacklevel=stacklevel,
        )


class Progress:
    """Counts the base-model predictions of one call and shows them as a bar.

    Parameters
    ----------
    total : int
        Predictions the call will make at most (sequential procedures may stop
        earlier; the bar then ends short of it).
    desc : str
        Label of the bar.
    verbose : bool
        Show a tqdm bar (when tqdm is installed); the count is kept either way.

    Attributes
    ----------
    done : int
        Predictions counted so far.
    """

    def __init__(self, total, desc, verbose):
        self.total = int(total)
        self.done = 0
        self._bar = None
        if verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is optional
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(
                    total=self.total, desc=desc, unit="pred", unit_scale=True, leave=False,
                    smoothing=0.1,
                )

    def update(self, n):
        """Add ``n`` predictions."""
        self.done += int(n)
        if self._bar is not None:
            self._bar.update(int(n))

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        # a bar cannot travel to a worker: workers count nothing, the parent does
        state = dict(self.__dict__)
        state["_bar"] = None
        return state
