"""What a call costs: its count of base-model predictions, a progress bar, a warning.

Certification costs ``n_inputs * (n_samples_selection + n_samples)`` base-model
predictions and the covariance search adds its own; everything else is small
beside that. A :class:`Progress` is created for one public call (``certify``,
``predict``, ...) with the number of predictions it will make at most; the engine
adds every block's predictions to it, so that one bar, with tqdm's estimate of
the remaining time, covers the covariance search and the certification alike.
Sequential procedures and the search's early stops make fewer predictions than
that bound: the total is revised as the real counts become known (chunk by chunk
with workers, :meth:`Progress.revise_total`) and set to the count made when the
call ends, so that the bar always ends at 100 %.

With workers, the bar's rate is not tqdm's own (predictions counted over the
time since the bar started): chunks finish in bursts, one per worker at about
the same time, and the first one arrives after the workers' start-up, so that
rate, and the remaining time tqdm derives from it, were several times too
slow at the first updates. Each chunk reports the seconds its worker spent on
it; the rate shown is the workers' measured throughput together
(:meth:`Progress.set_throughput`), so the remaining time is the predictions
still to make at the speed the workers actually run at, start-up excluded.

Before any draw, a call whose projected time -- its predictions at the base
model's measured speed (:func:`prediction_seconds`), shared among the workers,
plus at least :data:`SECONDS_PER_PASS` per iteration of the covariance search --
exceeds :data:`COST_WARNING_SECONDS` warns
(:class:`~smoothcert.exceptions.CostWarning`).
"""

import time
import warnings

import numpy as np

from ..exceptions import CostWarning

__all__ = [
    "Progress",
    "COST_WARNING_SECONDS",
    "MEASURE_ABOVE_PREDICTIONS",
    "SECONDS_PER_PASS",
    "prediction_seconds",
    "warn_if_costly",
]

#: Projected seconds above which a call warns before it starts (10 minutes).
COST_WARNING_SECONDS = 600.0

#: Calls with fewer predictions are not timed: at one prediction per millisecond
#: (a large network on a CPU) they still take well under the warning time.
MEASURE_ABOVE_PREDICTIONS = 100_000

#: Rows of the timed batch of base-model predictions.
MEASURE_ROWS = 2048

#: Seconds of one iteration of the covariance search beside its predictions, at
#: least (its Python, linear algebra and sampling; a few milliseconds measured on
#: small problems): a search of a million iterations is long whatever the model.
SECONDS_PER_PASS = 1e-3


def prediction_seconds(predict, X, rows=MEASURE_ROWS):
    """Seconds per base-model prediction, timed on copies of the rows of ``X``.

    Parameters
    ----------
    predict : callable
        The base model's prediction path as the engine calls it (an adapter's
        ``labels`` or ``scores``), on an ``(m, d)`` array.
    X : ndarray of shape (n, d)
        Inputs of the call; their rows are repeated to ``rows`` points (no
        noise is drawn).
    rows : int, default=2048
        Points in the timed batch, after a small warm-up call.

    Returns
    -------
    seconds : float
        Wall-clock seconds per prediction (at least 1e-12).
    """
    points = np.resize(np.asarray(X, dtype=np.float64), (rows, X.shape[1]))
    predict(points[: min(rows, 64)])  # warm-up: lazy initialisation, caches
    start = time.perf_counter()
    predict(points)
    return max(time.perf_counter() - start, 1e-12) / rows


def _duration(seconds):
    if seconds < 3600:
        return f"{seconds / 60:.3g} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.3g} hours"
    return f"{seconds / 86400:.3g} days"


def warn_if_costly(n_predictions, seconds_per_prediction, what, advice, *, n_workers=1,
                   overhead_seconds=0.0, stacklevel=3):
    """Warn (:class:`CostWarning`) when the projected time exceeds the threshold.

    Parameters
    ----------
    n_predictions : int
        Base-model predictions the call will make at most.
    seconds_per_prediction : float
        The base model's measured speed (:func:`prediction_seconds`).
    what, advice : str
        The call, and what makes it cheaper, for the message.
    n_workers : int, default=1
        Workers sharing the predictions.
    overhead_seconds : float, default=0.0
        Time the call spends beside the predictions (the covariance search's
        iterations, :data:`SECONDS_PER_PASS` each), added to the projection.
    stacklevel : int, default=3
        Passed to :func:`warnings.warn`.

    Returns
    -------
    seconds : float
        The projected time.
    """
    seconds = n_predictions * seconds_per_prediction / max(1, int(n_workers)) + overhead_seconds
    if seconds > COST_WARNING_SECONDS:
        workers = f" with {n_workers} workers" if n_workers > 1 else ""
        search = (
            f", and the covariance search's iterations at least {_duration(overhead_seconds)}"
            if overhead_seconds > 0.1 * seconds else ""
        )
        warnings.warn(
            f"{what} will make up to {n_predictions:.3g} base-model predictions: at the "
            f"measured speed of this model ({1.0 / seconds_per_prediction:.3g} predictions "
            f"per second){workers}{search}, that is about {_duration(seconds)} (more than "
            f"{_duration(COST_WARNING_SECONDS)}). {advice}",
            CostWarning,
            stacklevel=stacklevel,
        )
    return seconds


#: tqdm bar classes whose rate the caller can set, by the tqdm class they extend.
_BAR_CLASSES = {}


def _bar_class(tqdm):
    """A subclass of ``tqdm`` whose ``format_dict`` carries a rate set by the caller.

    ``format_dict`` is tqdm's public view of a bar, and its ``rate`` (an override
    of tqdm's average speed) sets the rate and the remaining time shown; the
    subclass replaces it by :attr:`measured_rate` once that is set.
    """
    cls = _BAR_CLASSES.get(tqdm)
    if cls is None:

        class _MeasuredRateBar(tqdm):
            measured_rate = None

            @property
            def format_dict(self):
                values = super().format_dict
                if self.measured_rate is not None:
                    values["rate"] = self.measured_rate
                return values

        cls = _BAR_CLASSES[tqdm] = _MeasuredRateBar
    return cls


class Progress:
    """Counts the base-model predictions of one call and shows them as a bar.

    Parameters
    ----------
    total : int
        Predictions the call will make at most; revised with
        :meth:`revise_total`, and set to the count made when the call ends
        without an error, so that the bar ends at 100 %.
    desc : str
        Label of the bar.
    verbose : bool
        Show a tqdm bar (when tqdm is installed); the count is kept either way.

    Attributes
    ----------
    done : int
        Predictions counted so far.
    total : int
        The current total.
    throughput : float or None
        The rate set by :meth:`set_throughput` (None: tqdm's own).
    """

    def __init__(self, total, desc, verbose):
        self.total = int(total)
        self.done = 0
        self.throughput = None
        self._bar = None
        if verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is optional
                tqdm = None
            if tqdm is not None:
                self._bar = _bar_class(tqdm)(
                    total=self.total, desc=desc, unit="pred", unit_scale=True, leave=False,
                    smoothing=0.1,
                )

    def _set_total(self, total):
        self.total = int(total)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def update(self, n):
        """Add ``n`` predictions (the total grows if they pass it)."""
        self.done += int(n)
        if self._bar is not None:
            self._bar.update(int(n))
        if self.done > self.total:
            self._set_total(self.done)

    def set_throughput(self, predictions_per_second):
        """Show this rate (predictions per second), and the remaining time at it.

        Set by the parallel runs from the seconds the workers spent on their
        chunks: tqdm's own rate, counted from the start of the bar, includes
        the workers' start-up and sees the chunks of all workers finish
        together. A rate that is not a finite positive number is ignored.
        """
        rate = float(predictions_per_second)
        if not (np.isfinite(rate) and rate > 0):
            return
        self.throughput = rate
        if self._bar is not None:
            self._bar.measured_rate = rate

    def revise_total(self, total):
        """Replace the total by a better projection (never below the count made)."""
        self._set_total(max(int(total), self.done))

    def finish(self):
        """The call is done: the total becomes the count made (the bar ends at 100 %)."""
        if self.total != self.done:
            self._set_total(self.done)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.finish()
        self.close()

    def __getstate__(self):
        # a bar cannot travel to a worker: workers count nothing, the parent does
        state = dict(self.__dict__)
        state["_bar"] = None
        return state
