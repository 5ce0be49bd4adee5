"""Write burst for test_durability: print each create only after it is acknowledged.

Usage: python durability_writer.py DB_PATH WRITERS PREFIX

Opens the persisted embedded store at DB_PATH, makes sure Namespace "durability"
exists, prints ``READY``, then runs WRITERS concurrent tasks creating ConfigMaps
``{PREFIX}-{writer}-{n}`` forever, printing ``ACK name resourceVersion`` (flushed)
after each create returns.  The test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pincompute.kube import AlreadyExists
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES

NAMESPACE = "durability"


async def main(path: Path, writers: int, prefix: str) -> None:
    store = await EmbeddedStore.open(path=path)
    client = store.client()
    try:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": NAMESPACE}})
    except AlreadyExists:
        pass
    out = sys.stdout
    out.write("READY\n")
    out.flush()

    async def writer(w: int) -> None:
        n = 0
        while True:
            name = f"{prefix}-{w}-{n}"
            created = await client.create(CONFIGMAPS, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": NAMESPACE,
                             "labels": {"writer": str(w)}},
                "data": {"n": str(n), "payload": "x" * 200},
            })
            out.write(f"ACK {name} {created['metadata']['resourceVersion']}\n")
            out.flush()
            n += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
