"""What every package nb2prod generates stands on: training, promotion and serving machinery.

A generated package keeps what a reader must see (the notebook's code, the honesty logging,
the routes, the gate, the counters) and calls this library for the rest.
"""

__version__ = "0.10.2"
