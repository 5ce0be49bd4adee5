"""The REST gateway (DESIGN §10): how people reach PinCompute over HTTP.

Theory of operation
-------------------
The gateway is a FastAPI application (:func:`.app.create_app`) over an
:class:`~.context.ApiContext` the assembly hands in (``pincompute.gateway``): the host
cluster's client, the member clusters (a directory of clients and informers), and the
informer caches reads are served from.  It imports no controller and no assembly module;
it speaks the Kubernetes API (``pincompute.kube``) and knows the kinds
(``pincompute.model``).

- Writes go to the **host** cluster, where the federation admits, places and propagates
  them; they are validated first by the kind's model, so a bad object is a 422 naming the
  field on every backend.
- Reads come from informer caches (host kinds; member pods and nodes), never from a store
  listing per request, and answer *simplified* objects (:mod:`.simplify`), pre-encoded.
- Every request is authenticated by a bearer token (:mod:`.tokens`, :mod:`.auth`),
  authorized by role (platform admin; viewer / editor / admin per project), rate limited
  (:mod:`.ratelimit`) and, when it mutates or is denied, audited (:mod:`.audit`).
- Errors are Kubernetes ``Status`` bodies (:mod:`.errors`).
"""
