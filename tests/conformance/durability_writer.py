"""Write burst for test_durability: print each write only after it is acknowledged.

Usage: python durability_writer.py DB_PATH WRITERS PREFIX [SYNCHRONOUS]

Opens the persisted embedded store at DB_PATH (``synchronous`` as given, FULL by
default), makes sure Namespace "durability" exists, prints ``READY``, then runs
WRITERS concurrent tasks forever.  Writer ``w``'s step ``n`` creates ConfigMap
``{PREFIX}-{w}-{n}``; every third step also updates the ConfigMap of the step before
(``data.n`` becomes ``updated``), and every fifth deletes the one of two steps before.
Each write prints, flushed, once it returned: ``ACK name resourceVersion`` for a
create, ``UPD name resourceVersion`` for an update, ``DEL name resourceVersion`` for a
delete.  The test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pincompute.kube import AlreadyExists
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES

NAMESPACE = "durability"


async def main(path: Path, writers: int, prefix: str, synchronous: str) -> None:
    store = await EmbeddedStore.open(path=path, synchronous=synchronous)
    client = store.client()
    try:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": NAMESPACE}})
    except AlreadyExists:
        pass
    out = sys.stdout
    out.write("READY\n")
    out.flush()

    def ack(what: str, name: str, obj: dict) -> None:
        out.write(f"{what} {name} {obj['metadata']['resourceVersion']}\n")
        out.flush()

    async def writer(w: int) -> None:
        n = 0
        while True:
            name = f"{prefix}-{w}-{n}"
            ack("ACK", name, await client.create(CONFIGMAPS, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": NAMESPACE,
                             "labels": {"writer": str(w)}},
                "data": {"n": str(n), "payload": "x" * 200},
            }))
            if n % 3 == 2:
                older = f"{prefix}-{w}-{n - 1}"
                ack("UPD", older, await client.patch(
                    CONFIGMAPS, older, {"data": {"n": "updated"}}, namespace=NAMESPACE))
            if n % 5 == 4:
                gone = f"{prefix}-{w}-{n - 2}"
                ack("DEL", gone, await client.delete(CONFIGMAPS, gone, namespace=NAMESPACE))
            n += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                     sys.argv[4] if len(sys.argv) > 4 else "FULL"))
