"""The node runtime API: logs and exec served by the node itself, over HTTP on loopback.

Theory of operation
-------------------
Debugging must not load the control path (DESIGN §8): reading a log or opening a
shell talks to the node agent directly, as ``kubectl logs``/``exec`` reach the
kubelet, never through the store.  Each agent serves a small HTTP/1.1 API on its
own loopback address (the node's InternalIP, ``127.x.y.1`` in the process
runtime), advertised in the Node's ``pincompute.io/runtime-api`` annotation and
``status.daemonEndpoints``.  Every request but ``/healthz`` must carry
``Authorization: Bearer <token>`` (compared in constant time); the token is the
agent's (configured, or generated and written to ``<node dir>/api-token``, mode
0600), so only whoever was given it — the gateway, the CLI of the operator who
started the region — can use the API.

Endpoints::

    GET  /healthz
    GET  /pods                                      pods on the node, container states
    GET  /stats                                     CPU/memory use per pod and container
    GET  /logs/{namespace}/{pod}/{container}        ?follow=1&tail=N&since=RFC3339
                                                    &sinceSeconds=N&previous=1&timestamps=1
                                                    or ?file=NAME[&volume=V]&follow=1&tail=N:
                                                    a file of a logging volume
    GET  /logfiles/{namespace}/{pod}/{container}    the files of its logging volumes
    POST /exec/{namespace}/{pod}/{container}        ?command=ARG&command=ARG...&stdin=1&tty=1
         (Connection: Upgrade, Upgrade: pincompute-exec.v1)

Logs stream as chunked ``text/plain`` until the log ends (without ``follow``:
at once; with it: when the container instance exits, or the client goes away).
Exec switches protocols (101) and then multiplexes the process's streams over
the connection in frames, like Kubernetes' ``channel.k8s.io``; with ``tty=1`` the
command runs on a terminal of its own and the client may resize it.

Four modules: :mod:`.protocol` (what both ends agree on: paths, the token
header, log options, exec frames), :mod:`.server` (the agent's side) with
:mod:`.execsession` (one exec's frames both ways), and :mod:`.client`
(:class:`NodeClient`).  This package exports the client and the
protocol only: importing it loads nothing of the node agent, so the API gateway
and the CLI use it without the node's machinery.
"""

from .client import ExecResult, ExecSession, NodeAPIError, NodeClient
from .protocol import EXEC_PROTOCOL, RESIZE, STATUS, STDERR, STDIN, STDOUT, LogOptions

__all__ = ["EXEC_PROTOCOL", "RESIZE", "STATUS", "STDERR", "STDIN", "STDOUT", "ExecResult",
           "ExecSession", "LogOptions", "NodeAPIError", "NodeClient"]
