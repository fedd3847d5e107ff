"""hipstride sensor side: data model, recordings, simulator, (later) BLE drivers.

Nothing in this package reads the wall clock or imports bleak at module level,
so replay and tests run on any machine.
"""

from sensors.errors import DecodeError, RecordingError
from sensors.model import PLACEMENTS, Chunk

__all__ = ["PLACEMENTS", "Chunk", "DecodeError", "RecordingError"]
