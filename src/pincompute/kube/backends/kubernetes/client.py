"""The ``kubernetes`` backend: the protocol over a real API server.

Theory of operation
-------------------
lightkube does what a client library should never be rewritten for — reading
kubeconfig files and in-cluster service accounts, TLS, bearer tokens, client
certificates and exec credential plugins — and hands us a configured async HTTP
client (httpx2, lightkube's HTTP library, so its exceptions are httpx2's).  A
kubeconfig that comes from an object (a MemberCluster, a Secret) is not trusted
like the user's own file: :func:`config_from_text` refuses credential plugins and
references to local files unless told otherwise.

Requests go out and come back as raw JSON parsed with orjson: typed model
conversion is the known bottleneck of Python Kubernetes clients, and the
protocol speaks plain dicts anyway.

Semantics are mapped, not reinvented:

* every response status becomes the same typed error the embedded store raises
  (``Status`` bodies carry reason and causes); writes ask for strict field
  validation, and the server's "unknown field" answer becomes an ``Invalid``
  naming the field, as the embedded store's is;
* list items get their ``apiVersion``/``kind`` back (the API server omits them
  inside lists) so objects look the same from either backend;
* watches stream newline-delimited events; an ERROR event with code 410 is
  :class:`~pincompute.kube.errors.Gone`;
* a client-side token bucket (``qps``/``burst``) paces requests, and reads are
  retried with back-off (stamina) on transport failures and 429/5xx answers;
  writes are retried only when the server cannot have acted (connection refused,
  429).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal

import httpx2 as httpx
import orjson
import stamina
import yaml
from lightkube.config.client_adapter import AsyncClient as _adapter
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError

from pincompute.kube.errors import (
    ApiError,
    BadRequest,
    Cause,
    Gone,
    Invalid,
    RequestEntityTooLarge,
    Unavailable,
    from_status,
    invalid,
)
from pincompute.kube.patch import check_depth
from pincompute.kube.protocol import (
    ERROR,
    ClientInfo,
    KubeClient,
    ObjectList,
    Preconditions,
    PropagationPolicy,
    WatchEvent,
)
from pincompute.kube.resource import Resource

from .ratelimit import TokenBucket

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_UNKNOWN_FIELD = re.compile(r'unknown field "([^"]+)"')
UNKNOWN_FIELD_REASON = "FieldValueUnknown"
_DUPLICATE_FIELD = re.compile(r'duplicate field "([^"]+)"')
_TOO_LARGE = re.compile(r"request is too large|trying to send message larger than max")


class KubeConfigError(Exception):
    """The configuration cannot be used; the message says what and how to fix it."""


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"missing {text}" if isinstance(error, KeyError) else text


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a kubeconfig has no use for them, and aliases
    nested in aliases expand exponentially in whatever walks the result."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not allowed in a kubeconfig")
        return super().compose_node(parent, index)


def config_from_text(text: str, *, context: str | None = None,
                     source: str = "inline kubeconfig", allow_exec: bool = False,
                     allow_files: bool = False) -> SingleConfig:
    """A kubeconfig document given as text (e.g. from a Secret or a MemberCluster).

    Text comes from objects, which whoever may write them controls, so by default
    the kubeconfig may neither run a command on this host (an ``exec`` credential
    plugin or an ``auth-provider``: ``allow_exec``) nor make us read a file here
    (``tokenFile``, ``client-certificate``, ``client-key``, ``certificate-authority``:
    ``allow_files``; a token file read here would be sent to the kubeconfig's server).
    Credentials must be embedded (``token``, ``client-certificate-data``, ...).
    """
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader
        if not isinstance(data, dict):
            raise KubeConfigError(f"{source} is not a kubeconfig document")
        single = KubeConfig.from_dict(data).get(context_name=context)
    except KubeConfigError:
        raise
    except ConfigError as e:
        raise KubeConfigError(f"{source}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as e:
        raise KubeConfigError(f"{source} is not a valid kubeconfig ({_one_line(e)})") from None
    if single is None or single.user is None:
        raise KubeConfigError(f"{source} has no user for its current context")
    _check_trust(single, source=source, allow_exec=allow_exec, allow_files=allow_files)
    return single


def _check_trust(config: SingleConfig, *, source: str, allow_exec: bool,
                 allow_files: bool) -> None:
    user = config.user
    if user is None:
        return
    if not allow_exec:
        if user.exec is not None:
            raise KubeConfigError(
                f"{source}: its user runs a credential plugin (exec: {user.exec.command!r}), "
                "and a kubeconfig from an object may not run commands on this host; embed a "
                "token or a client certificate instead")
        if user.auth_provider is not None:
            raise KubeConfigError(
                f"{source}: its user has an auth-provider, and a kubeconfig from an object may "
                "not run commands on this host; embed a token or a client certificate instead")
    if not allow_files:
        files = [name for name, value in (
            ("tokenFile", user.token_file), ("client-certificate", user.client_cert),
            ("client-key", user.client_key),
            ("certificate-authority", config.cluster.certificate_auth)) if value]
        if files:
            raise KubeConfigError(
                f"{source}: refers to files on this host ({', '.join(files)}), which a "
                "kubeconfig from an object may not do; embed the data instead (token, "
                "client-certificate-data, client-key-data, certificate-authority-data)")


def load_config(kubeconfig: str | Path | None = None, *,
                context: str | None = None, allow_exec: bool = True) -> SingleConfig:
    """A kubeconfig file; with ``None``: in-cluster, ``$KUBECONFIG`` or ~/.kube/config.

    The user's own file may run credential plugins; pass ``allow_exec=False`` for a
    file someone else chose (see :func:`config_from_text`).
    """
    try:
        if kubeconfig is not None:
            path = Path(kubeconfig).expanduser()
            if not path.is_file():
                raise KubeConfigError(f"kubeconfig {path} does not exist; pass --kubeconfig "
                                      "with the path of a readable kubeconfig file")
            config = KubeConfig.from_file(path)
        else:
            config = KubeConfig.from_env()
        single = config.get(context_name=context)
    except KubeConfigError:
        raise
    except ConfigError as e:
        raise KubeConfigError(f"kubeconfig {kubeconfig or '(default)'}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as e:
        raise KubeConfigError(f"kubeconfig {kubeconfig or '(default)'} is not a valid "
                              f"kubeconfig ({_one_line(e)}); check it with "
                              "`kubectl config view`") from None
    if single is None or single.user is None:
        raise KubeConfigError(f"kubeconfig {kubeconfig or '(default)'} has no user for its "
                              "current context")
    _check_trust(single, source=f"kubeconfig {kubeconfig or '(default)'}",
                 allow_exec=allow_exec, allow_files=True)
    return single


def _retry_read(exc: Exception) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ApiError) and exc.code in (429, 500, 502, 503, 504)


def _retry_write(exc: Exception) -> bool:
    # Only where the server cannot have applied the write.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return True
    return isinstance(exc, ApiError) and exc.code == 429


class KubernetesClient(KubeClient):
    def __init__(self, config: SingleConfig, *, qps: float = 50.0, burst: int = 100,
                 timeout: float = 30.0, field_manager: str = "pincompute",
                 retries: int = 5) -> None:
        self.config = config
        self.field_manager = field_manager
        self._retries = retries
        try:
            self._http = _adapter(config, ConnectionParams(timeout=httpx.Timeout(timeout)))
        except (ConfigError, OSError, ValueError) as e:
            raise KubeConfigError(f"kubeconfig context {config.context_name!r}: {e}") from None
        self._bucket = TokenBucket(qps=qps, burst=burst)
        self.server = config.cluster.server
        self.info = ClientInfo(backend="kubernetes", server=self.server,
                               details={"context": config.context_name})

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | Path | None = None, *,
                        context: str | None = None, allow_exec: bool = True,
                        **options: Any) -> KubernetesClient:
        return cls(load_config(kubeconfig, context=context, allow_exec=allow_exec), **options)

    # --- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _path(resource: Resource, namespace: str | None, name: str | None = None,
              subresource: str | None = None) -> str:
        base = (f"/apis/{resource.group}/{resource.version}" if resource.group
                else f"/api/{resource.version}")
        if resource.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{resource.plural}"
        if name is not None:
            if not name:
                raise BadRequest("a name is required",
                                 causes=[Cause("metadata.name", "Required value",
                                               "FieldValueRequired")])
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base

    @staticmethod
    def _namespace_for(resource: Resource, obj: Mapping[str, Any] | None,
                       namespace: str | None) -> str | None:
        if not resource.namespaced:
            return None
        ns = namespace or ((obj or {}).get("metadata") or {}).get("namespace")
        if not ns:
            raise BadRequest(f"a namespace is required for {resource}",
                             causes=[Cause("metadata.namespace", "Required value",
                                           "FieldValueRequired")])
        return ns

    async def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                    body: Any = None, content_type: str = JSON, write: bool = False) -> Any:
        retry_on = _retry_write if write else _retry_read
        try:
            content = orjson.dumps(body) if body is not None else None
        except TypeError as e:  # not JSON, or nested deeper than JSON encoders go
            raise BadRequest(f"the body is not valid JSON: {e}") from None
        headers = {"Accept": JSON}
        if content is not None:
            headers["Content-Type"] = content_type
        try:
            async for attempt in stamina.retry_context(on=retry_on, attempts=self._retries,
                                                       wait_initial=0.1, wait_max=5.0):
                with attempt:
                    await self._bucket.acquire()
                    response = await self._http.request(method, path, params=params,
                                                        content=content, headers=headers)
                    if response.status_code >= 400:
                        raise self._error(response)
                    return orjson.loads(response.content) if response.content else None
        except httpx.TransportError as e:
            raise Unavailable(f"cannot reach the API server at {self.server}: "
                              f"{e.__class__.__name__}: {e}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, response: httpx.Response) -> ApiError:
        try:
            status = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            status = None
        if not isinstance(status, dict) or status.get("kind") != "Status":
            text = response.text.strip()[:500] or response.reason_phrase
            return from_status({"message": f"{response.status_code}: {text}"},
                               code=response.status_code)
        error = from_status(status, code=response.status_code)
        if response.status_code == 500 and _TOO_LARGE.search(error.message):
            # etcd refused the object (over its --max-request-bytes): the request's
            # fault, not the server's; the embedded store says the same.
            return RequestEntityTooLarge(error.message, kind=error.kind, name=error.name)
        if response.status_code in (400, 422):
            # Strict field validation reports unknown fields as a decoding failure
            # (400 on create/update, 422 "patch" on patch); the protocol — and the
            # embedded store — call that Invalid, naming each field.
            fields = _UNKNOWN_FIELD.findall(error.message) + _DUPLICATE_FIELD.findall(
                error.message)
            if fields:
                causes = [Cause(f, "unknown field: not declared in the schema",
                                UNKNOWN_FIELD_REASON) for f in dict.fromkeys(fields)]
                causes += [c for c in error.causes if c.field != "patch"
                           and c.field not in fields]
                return Invalid(error.message, kind=error.kind, name=error.name, causes=causes)
        return error

    async def _write(self, method: str, path: str, body: Any, *, kind: str, name: str,
                     content_type: str = JSON, params: dict[str, str] | None = None) -> Any:
        params = {**self._write_params(), **(params or {})}
        try:
            return await self._send(method, path, params=params, body=body,
                                    content_type=content_type, write=True)
        except Invalid as e:
            unknown = [c for c in e.causes if c.reason == UNKNOWN_FIELD_REASON]
            if not unknown:
                if not e.name and name:
                    raise invalid(kind, name, e.causes) from None
                raise
            # The server stops at the first unknown field; ask it (dry run, unknown
            # fields ignored) what else is wrong, so the user sees every bad field
            # at once, as the embedded store reports them.
            causes = list(unknown)
            try:
                await self._send(method, path, body=body, content_type=content_type,
                                 params={**params, "fieldValidation": "Ignore",
                                         "dryRun": "All"}, write=True)
            except Invalid as more:
                named = {c.field for c in causes}
                causes += [c for c in more.causes if c.field not in named]
            except ApiError:
                pass  # the dry run is a courtesy: the unknown fields are the answer
            raise invalid(kind, name, causes) from None

    @staticmethod
    def _typed(resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        return obj

    def _write_params(self) -> dict[str, str]:
        return {"fieldValidation": "Strict", "fieldManager": self.field_manager}

    # --- the protocol -----------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, *,
                  namespace: str | None = None) -> dict[str, Any]:
        ns = self._namespace_for(resource, None, namespace)
        return self._typed(resource, await self._send("GET", self._path(resource, ns, name)))

    async def list(self, resource: Resource, *, namespace: str | None = None,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_token: str | None = None) -> ObjectList:
        params: dict[str, Any] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit:
            params["limit"] = limit
        if continue_token:
            params["continue"] = continue_token
        ns = namespace if resource.namespaced else None
        data = await self._send("GET", self._path(resource, ns), params=params)
        meta = data.get("metadata") or {}
        items = data.get("items") or []
        api_version, kind = resource.api_version, resource.kind
        for item in items:
            item["apiVersion"] = api_version
            item["kind"] = kind
        return ObjectList(items=items, resource_version=meta.get("resourceVersion", ""),
                          continue_token=meta.get("continue") or None,
                          remaining_item_count=meta.get("remainingItemCount"))

    async def watch(self, resource: Resource, *, namespace: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    resource_version: str | None = None, allow_bookmarks: bool = True,
                    timeout_seconds: float | None = None) -> AsyncIterator[WatchEvent]:
        params: dict[str, Any] = {"watch": "1", "allowWatchBookmarks": str(allow_bookmarks)
                                  .lower()}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = max(1, int(timeout_seconds))
        ns = namespace if resource.namespaced else None
        path = self._path(resource, ns)
        await self._bucket.acquire()
        timeout = httpx.Timeout(10.0, read=(timeout_seconds + 30) if timeout_seconds else None)
        try:
            # No compression on streams: the API server gzips each flush as its own
            # gzip member, and a streaming decoder that stops after the first member
            # silently drops every later event.
            async with self._http.stream("GET", path, params=params, timeout=timeout,
                                         headers={"Accept": JSON,
                                                  "Accept-Encoding": "identity"}) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._error(response)
                api_version, kind = resource.api_version, resource.kind
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    event = orjson.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == ERROR:
                        code = obj.get("code")
                        if code == 410:
                            raise Gone(obj.get("message", "too old resource version"))
                        raise from_status(obj, code=code)
                    obj.setdefault("apiVersion", api_version)
                    obj.setdefault("kind", kind)
                    yield WatchEvent(event["type"], obj)
        except httpx.TransportError as e:
            if isinstance(e, httpx.ReadError | httpx.RemoteProtocolError):
                return  # the server closed the stream: the caller re-watches
            raise Unavailable(f"cannot reach the API server at {self.server}: "
                              f"{e.__class__.__name__}: {e}") from None

    async def create(self, resource: Resource, obj: Mapping[str, Any], *,
                     namespace: str | None = None) -> dict[str, Any]:
        ns = self._namespace_for(resource, obj, namespace)
        body = self._typed(resource, dict(obj))
        md = obj.get("metadata") or {}
        return self._typed(resource, await self._write(
            "POST", self._path(resource, ns), body, kind=resource.kind,
            name=md.get("name") or md.get("generateName") or ""))

    async def update(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self._put(resource, obj, None)

    async def update_status(self, resource: Resource,
                            obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self._put(resource, obj, "status")

    async def _put(self, resource: Resource, obj: Mapping[str, Any],
                   subresource: str | None) -> dict[str, Any]:
        ns = self._namespace_for(resource, obj, None)
        name = (obj.get("metadata") or {}).get("name") or ""
        body = self._typed(resource, dict(obj))
        return self._typed(resource, await self._write(
            "PUT", self._path(resource, ns, name, subresource), body, kind=resource.kind,
            name=name))

    async def patch(self, resource: Resource, name: str, patch: Mapping[str, Any], *,
                    namespace: str | None = None,
                    subresource: Literal["status"] | None = None) -> dict[str, Any]:
        if not isinstance(patch, Mapping):
            raise BadRequest("a merge patch must be a JSON object",
                             causes=[Cause("body", "must be an object", "FieldValueTypeInvalid")])
        check_depth(patch)
        ns = self._namespace_for(resource, None, namespace)
        return self._typed(resource, await self._write(
            "PATCH", self._path(resource, ns, name, subresource), dict(patch),
            kind=resource.kind, name=name, content_type=MERGE_PATCH))

    async def apply(self, resource: Resource, obj: Mapping[str, Any], *,
                    namespace: str | None = None, force: bool = False,
                    subresource: Literal["status"] | None = None) -> dict[str, Any]:
        """Server-side apply: the fields in ``obj`` become owned by our field manager."""
        ns = self._namespace_for(resource, obj, namespace)
        name = (obj.get("metadata") or {}).get("name") or ""
        # JSON is YAML: the apply content type takes it as it is.
        return self._typed(resource, await self._write(
            "PATCH", self._path(resource, ns, name, subresource),
            self._typed(resource, dict(obj)), kind=resource.kind, name=name,
            content_type=APPLY_PATCH, params={"force": "true"} if force else None))

    async def create_subresource(self, resource: Resource, name: str, subresource: str,
                                 body: Mapping[str, Any], *,
                                 namespace: str | None = None) -> dict[str, Any]:
        ns = self._namespace_for(resource, None, namespace)
        return await self._write("POST", self._path(resource, ns, name, subresource),
                                 dict(body), kind=resource.kind, name=name) or {}

    async def read_subresource(self, resource: Resource, name: str, subresource: str, *,
                               namespace: str | None = None,
                               params: Mapping[str, str] | None = None,
                               stream: bool = False) -> AsyncGenerator[bytes, None]:
        ns = self._namespace_for(resource, None, namespace)
        path = self._path(resource, ns, name, subresource)
        await self._bucket.acquire()
        timeout = httpx.Timeout(10.0, read=None if stream else 60.0)
        opened = contextlib.AsyncExitStack()
        try:
            # Uncompressed, as watches: a streamed log is flushed in pieces.
            response = await opened.enter_async_context(self._http.stream(
                "GET", path, params=dict(params or {}), timeout=timeout,
                headers={"Accept": "*/*", "Accept-Encoding": "identity"}))
            if response.status_code >= 400:
                await response.aread()
                raise self._error(response)
        except httpx.TransportError as e:
            await opened.aclose()
            raise Unavailable(f"cannot reach the API server at {self.server}: "
                              f"{e.__class__.__name__}: {e}") from None
        except BaseException:
            await opened.aclose()
            raise
        return self._chunks(response, opened)

    @staticmethod
    async def _chunks(response: httpx.Response,
                      opened: contextlib.AsyncExitStack) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in response.aiter_bytes():
                if chunk:
                    yield chunk
        except (httpx.ReadError, httpx.RemoteProtocolError):
            return  # the server closed the stream
        except httpx.TransportError as e:
            raise Unavailable(f"reading from the API server failed: "
                              f"{e.__class__.__name__}: {e}") from None
        finally:
            await opened.aclose()

    async def delete(self, resource: Resource, name: str, *, namespace: str | None = None,
                     preconditions: Preconditions | None = None,
                     grace_period_seconds: int | None = None,
                     propagation_policy: PropagationPolicy | None = None) -> dict[str, Any]:
        ns = self._namespace_for(resource, None, namespace)
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions is not None:
            pre: dict[str, str] = {}
            if preconditions.uid:
                pre["uid"] = preconditions.uid
            if preconditions.resource_version:
                pre["resourceVersion"] = str(preconditions.resource_version)
            options["preconditions"] = pre
        result = await self._send("DELETE", self._path(resource, ns, name), body=options,
                                  write=True)
        if isinstance(result, dict) and result.get("kind") == "Status":
            # Some built-in resources (ConfigMaps, Secrets, ...) answer a completed
            # deletion with a Status naming the object instead of the object itself.
            details = result.get("details") or {}
            md = {"name": details.get("name", name), "uid": details.get("uid", "")}
            if ns:
                md["namespace"] = ns
            return self._typed(resource, {"metadata": md})
        return self._typed(resource, result or {})

    async def close(self) -> None:
        await self._http.aclose()
