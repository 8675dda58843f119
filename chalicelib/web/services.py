"""What the pages may use, as a protocol: the route hands in the composition
root typed as this, so nothing in ``web/`` imports it (STYLE: only ``app.py``
and ``routes/`` do) and mypy checks that the root provides all of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from chalicelib.services.authn import ClientDirectory
    from chalicelib.services.device_flow import DeviceFlow
    from chalicelib.services.web_signin import WebSignIn
    from chalicelib.storage.devices import DevicesRepo
    from chalicelib.storage.dynamo import Item
    from chalicelib.storage.tables import Key


class PageServices(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def web_signin(self) -> WebSignIn: ...

    @property
    def device_flow(self) -> DeviceFlow: ...

    @property
    def client_directory(self) -> ClientDirectory: ...

    @property
    def devices_repo(self) -> DevicesRepo: ...

    def batch_get(self, requests: dict[str, list[Key]]) -> dict[str, list[Item]]: ...
