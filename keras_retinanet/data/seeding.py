"""Random states that are a function of a key alone, so that parallel or resumed work draws what a serial run drew."""

import numpy as np

SEED_MASK = 0xFFFFFFFF  # seeds enter the key as 32-bit words, as keras-retinanet's RandomState seeds were


def keyed_random_state(seed: int, *keys: int) -> np.random.RandomState:
    """A ``np.random.RandomState`` determined by ``(seed, *keys)`` alone.

    Seeded with four words of ``np.random.SeedSequence([seed mod 2^32, *keys])``, which mixes
    neighbouring keys (stream positions, epoch passes) into unrelated states.
    """
    words = np.random.SeedSequence([int(seed) & SEED_MASK, *(int(key) for key in keys)]).generate_state(4)
    return np.random.RandomState(words)


def fresh_seed() -> int:
    """A random 32-bit seed from the operating system's entropy."""
    return int(np.random.SeedSequence().generate_state(1)[0])
