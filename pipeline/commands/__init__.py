"""One module per ``hipstride`` sub-command; each exposes ``register(subparsers)``."""
