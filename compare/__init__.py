"""narrative-compare: compare how sources tell the same story, with verified verbatim quotes."""

from compare.offline import quiet_environment

quiet_environment()

__version__ = "0.1.0"
