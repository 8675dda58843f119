"""The ``tessera`` command line (SPEC §10): a client of Tessera's HTTP API only.

Start-up time matters (a CLI people run in loops): modules imported by every
command (``main``, ``errors``, ``config``, ``store``, ``output``) import the
standard library and click only; httpx, pydantic and keyring are imported inside
the functions that need them.
"""

__version__ = "0.1.0"
