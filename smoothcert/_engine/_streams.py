"""Noise streams: seeds, row keys and stage tags.

Every row gets its own standard normal stream, seeded from the estimator's
``random_state``, a hash of the row's bytes and a *stage* tag (selection,
estimation, prediction, each optimization step). Draws are consumed from that
stream in order and turned into noise by the row's covariance square root.
Hence

* the result of a row does not depend on the batch size, the chunking, the
  other rows, their order or ``n_jobs``;
* the noise of two different rows, and of two stages of one row, is
  independent (one stream shared by all rows would also be batch-invariant,
  but it would correlate the failures of different certificates).
"""

import hashlib
import numbers

import numpy as np

__all__ = [
    "STAGE_SELECTION",
    "STAGE_ESTIMATION",
    "STAGE_PREDICTION",
    "STAGE_FAMILY",
    "STAGE_SELECTOR",
    "derived_seed",
    "optimization_stage",
    "resolve_seed",
    "row_keys",
    "generators",
]

STAGE_SELECTION = 1
STAGE_ESTIMATION = 2
STAGE_PREDICTION = 3
#: Tag of the draws that build a deployed covariance family in ``fit`` (the
#: search on training inputs and the scores that label them).
STAGE_FAMILY = 4
#: Tag of every draw of the smoothed covariance selector (its selection,
#: estimation and prediction stages).
STAGE_SELECTOR = 5
_STAGE_OPTIM_BASE = 1_000_000


def optimization_stage(phase, iteration):
    """Stage tag of one optimization step (``phase`` = 0, 1, 2, ... per search stage).

    Distinct for every ``(phase, iteration)`` with ``iteration < 2**32``.
    """
    return _STAGE_OPTIM_BASE + (int(phase) << 32) + int(iteration)


def derived_seed(seed, tag):
    """Seed of an independent family of streams, tagged ``tag``.

    ``seed`` is a tuple from :func:`resolve_seed` (2 or 4 words). The derived
    tuple is one word longer, so its streams never coincide with those of
    ``seed`` or of another tag: the draws made with it (all stages alike) are
    independent of the draws made with ``seed``.
    """
    return (*seed, int(tag))


def resolve_seed(random_state):
    """Turn ``random_state`` into a tuple of 32-bit words seeding every stream.

    * int: used as is, so results are reproducible;
    * None: fresh entropy from the operating system (no global RNG is touched);
    * :class:`numpy.random.RandomState` or :class:`numpy.random.Generator`:
      four words are drawn from it, so successive calls differ.
    """
    if random_state is None:
        entropy = np.random.SeedSequence().entropy
        return tuple(int(w) for w in np.random.SeedSequence(entropy).generate_state(4))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        value = int(random_state)
        if value < 0:
            raise ValueError(f"random_state must be non-negative, got {value}.")
        return (value & 0xFFFFFFFF, value >> 32)
    if isinstance(random_state, np.random.RandomState):
        return tuple(int(w) for w in random_state.randint(0, 2**32, size=4, dtype=np.uint64))
    if isinstance(random_state, np.random.Generator):
        return tuple(int(w) for w in random_state.integers(0, 2**32, size=4, dtype=np.uint64))
    raise TypeError(
        "random_state must be None, an int, a numpy RandomState or Generator, "
        f"got {type(random_state).__name__}."
    )


def row_keys(X):
    """Four 32-bit words per row from a BLAKE2 hash of the row's float64 bytes.

    ``-0.0`` is hashed as ``0.0``. Identical rows get identical keys, hence the
    same noise and the same certificate: they are the same input.
    """
    X = np.ascontiguousarray(X, dtype=np.float64) + 0.0
    keys = np.empty((X.shape[0], 4), dtype=np.uint64)
    for i, row in enumerate(X):
        digest = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
        keys[i] = np.frombuffer(digest, dtype=np.uint32)
    return keys


def generators(seed, keys, stage):
    """One independent PCG64 generator per row key, for one stage."""
    return [
        np.random.Generator(np.random.PCG64(np.random.SeedSequence([*seed, *map(int, k), stage])))
        for k in keys
    ]
