"""Default layer names, Keras-style: the first Dense is 'dense', then 'dense_1', 'dense_2'.

Unique names make error messages and summaries point at one layer
("Dense 'dense_1' expected ..."), and keep checkpoint keys readable.
"""

import collections

_used = collections.Counter()


def unique_name(prefix: str) -> str:
    """Returns `prefix` the first time, then `prefix_1`, `prefix_2`, ... in this process."""
    count = _used[prefix]
    _used[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"
