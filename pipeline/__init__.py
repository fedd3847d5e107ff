"""hipstride processing side: streaming stages, sinks and the command line."""

__version__ = "0.1.0"
