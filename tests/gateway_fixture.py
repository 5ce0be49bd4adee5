"""A small sim region behind a real gateway on loopback, for tests of its clients.

The SDK's and the CLI's tests each hold one for their whole package (fixtures of
``scope="package"`` with the event loop of the same scope), so they pay for one
region each.  The gateway serves on that event loop: a blocking client (the sync
SDK, the CLI in-process) must run in a thread (``asyncio.to_thread``).

Its nodes report their pods' usage every :data:`USAGE_INTERVAL` seconds (15 s by
default), so ``top`` shows a sim pod's declared profile within a second; a report
equal to the last one is not written, so idle pods cost the store nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from pincompute.api.context import ApiSettings
from tests.api.conftest import ApiEnv, api_env

USAGE_INTERVAL = 0.3


@contextlib.asynccontextmanager
async def shared_gateway(prefix: str) -> AsyncIterator[ApiEnv]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o711)  # node directories beside the data directory stay traversable
    try:
        async with api_env(path / "data", settings=ApiSettings(
                audit_path=path / "audit.log"),
                node_options={"usage_interval": USAGE_INTERVAL}) as env:
            yield env
    finally:
        shutil.rmtree(path, ignore_errors=True)
