"""A bleak client backend running on Google's bumble Bluetooth stack (our own code).

``BleakClient(address, backend=BumbleClient, air=air)`` gives the collector the real
bleak API while the packets travel over bumble's in-process virtual radio
(:class:`bumble.link.LocalLink`) to the virtual sensors of :mod:`sensors.ble.virtual`:
connection setup, MTU exchange, service discovery, CCCD writes, notifications,
indications and link loss are bumble's real host/controller code, not mocks. Only the
radio is simulated.

This needs the optional ``bumble`` package and exists for tests and demos.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble.device import Connection, Peer
from bumble.gatt import Characteristic
from bumble.hci import Address

if TYPE_CHECKING:
    from sensors.ble.virtual import VirtualAir

#: What the central asks for; the sensor's own limit may make it smaller.
REQUESTED_MTU = 247

_PROPERTY_NAMES = (
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
)


class BumbleClient(BaseBleakClient):
    """bleak backend: one LE connection from the air's central bumble device."""

    def __init__(
        self,
        address_or_ble_device: Any,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        air: VirtualAir,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._air = air
        self._connection: Connection | None = None
        self._peer: Peer | None = None

    # ------------------------------------------------------------------ connection

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        central = await self._air.central_for(self.address)
        try:
            connection = await central.connect(Address(self.address), timeout=self._timeout)
        except Exception as err:
            raise BleakError(f"could not connect to {self.address}: {err}") from err
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = self._peer = Peer(connection)
        await peer.request_mtu(REQUESTED_MTU)
        await peer.discover_services()
        for service in peer.services:
            await service.discover_characteristics()
        self.services = self._collection(peer)

    def _collection(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, str(service.uuid).lower())
            collection.add_service(bleak_service)
            for char in service.characteristics:
                props: list[Any] = [n for flag, n in _PROPERTY_NAMES if char.properties & flag]
                collection.add_characteristic(
                    BleakGATTCharacteristic(
                        char,
                        char.handle,
                        _uuid_str(char.uuid),
                        props,
                        lambda: self.mtu_size - 3,
                        bleak_service,
                    )
                )
        return collection

    def _on_disconnection(self, _reason: int) -> None:
        self._connection = None
        self._peer = None
        self.services = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._disconnected_callback = None  # asked for: not a link loss
        await connection.disconnect()
        while self._connection is not None:
            await asyncio.sleep(0.001)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("virtual sensors need no pairing")

    async def unpair(self) -> None:
        raise NotImplementedError("virtual sensors need no pairing")

    # ------------------------------------------------------------------ GATT

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        value = await self._require_peer().read_value(characteristic.obj)
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        await self._require_peer().write_value(characteristic.obj, bytes(data), response)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        await self._require_peer().subscribe(characteristic.obj, deliver)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        await self._require_peer().unsubscribe(characteristic.obj)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        raise NotImplementedError("descriptors are handled by subscribe()")

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise NotImplementedError("descriptors are handled by subscribe()")


def _uuid_str(uuid: Any) -> str:
    """bumble UUID -> bleak's lower-case 128-bit string form."""
    text = uuid.to_hex_str("-") if hasattr(uuid, "to_hex_str") else str(uuid)
    text = text.lower()
    if len(text) == 4:  # 16-bit SIG UUID
        return f"0000{text}-0000-1000-8000-00805f9b34fb"
    return text
