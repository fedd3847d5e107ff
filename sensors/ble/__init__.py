"""Live collection over Bluetooth Low Energy.

``drivers`` (one per protocol: UUIDs, start commands), ``assemble`` (decoded packets to
chunks on the session time base), ``transport`` (bleak: connect, reconnect, status).
Importing this package does not import bleak; a connection does.
"""
