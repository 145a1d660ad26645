"""Which users a canary release serves: a deterministic share of users, by a hash of the user id.

The same user always gets the same arm for a given canary (`salt`: the challenger's version), on
every worker and machine, so a shopper never sees both versions of one release.
"""

import hashlib

CHAMPION, CHALLENGER = "champion", "challenger"


def user_bucket(user_id: int, salt: str = "") -> float:
    """A number in [0, 1) fixed by the user id and `salt`, uniform over users."""
    digest = hashlib.blake2b(f"{salt}:{int(user_id)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def in_canary(user_id: int, fraction: float, salt: str = "") -> bool:
    """Whether `user_id` belongs to the canary's `fraction` of users (0 <= fraction <= 1)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"canary fraction {fraction!r}; expected 0 to 1")
    return user_bucket(user_id, salt) < fraction
