"""API tokens: opaque bearer tokens, stored hashed in the host cluster.

Theory of operation
-------------------
A token is ``pct_<id>_<secret>``: ``id`` (12 hex digits) names the Secret that records it,
``secret`` (43 url-safe characters, 256 random bits) is what proves possession.  The Secret
``api-token-<id>`` in the system namespace holds only the token's SHA-256 (key ``sha256``)
and, in annotations, whom it stands for: the user, whether they are a platform admin, an
optional project scope with its role, who created it, when, and when it expires.  The token
itself is shown once, at creation, and never stored.

Looking a token up is one dictionary read: the Secret by name from the gateway's informer of
token Secrets, then a constant-time comparison of hashes — no store access per request.
Revoking deletes the Secret; this gateway forgets the token at once (it also remembers the
id as revoked until its informer has seen the deletion), other gateways as soon as their
informers do.

A token with a project scope stands for its user *in that project only*: a project admin may
mint tokens for their project, and such a token must not reach the user's other projects.
Unscoped tokens are created by platform admins; their user's roles are the Project objects'
``members``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import SECRETS
from pincompute.model.wellknown import PREFIX, SYSTEM_NAMESPACE
from pincompute.runtime.informer import SharedInformer

TOKEN_LABEL = PREFIX + "api-token"
"""On a token's Secret (value ``"true"``): the gateway's informer selects on it."""
TOKEN_SELECTOR = f"{TOKEN_LABEL}=true"
USER_ANNOTATION = PREFIX + "token-user"
ADMIN_ANNOTATION = PREFIX + "token-admin"
PROJECT_ANNOTATION = PREFIX + "token-project"
ROLE_ANNOTATION = PREFIX + "token-role"
CREATED_BY_ANNOTATION = PREFIX + "token-created-by"
EXPIRES_ANNOTATION = PREFIX + "token-expires"
DESCRIPTION_ANNOTATION = PREFIX + "token-description"
HASH_KEY = "sha256"
SECRET_PREFIX = "api-token-"

_TOKEN_RE = re.compile(r"^pct_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a token stands for (never the token itself)."""

    id: str
    user: str
    admin: bool
    project: str | None
    role: str | None
    created_by: str
    created: str
    expires: str | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "user": self.user, "admin": self.admin,
                "project": self.project, "role": self.role, "createdBy": self.created_by,
                "created": self.created, "expires": self.expires,
                "description": self.description}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def info_of(secret: dict[str, Any]) -> TokenInfo:
    md = secret.get("metadata") or {}
    ann = md.get("annotations") or {}
    return TokenInfo(
        id=str(md.get("name", ""))[len(SECRET_PREFIX):],
        user=ann.get(USER_ANNOTATION, ""),
        admin=ann.get(ADMIN_ANNOTATION) == "true",
        project=ann.get(PROJECT_ANNOTATION) or None,
        role=ann.get(ROLE_ANNOTATION) or None,
        created_by=ann.get(CREATED_BY_ANNOTATION, ""),
        created=md.get("creationTimestamp", ""),
        expires=ann.get(EXPIRES_ANNOTATION) or None,
        description=ann.get(DESCRIPTION_ANNOTATION, ""))


class TokenStore:
    """Create, look up, list and revoke tokens (Secrets in the host's system namespace)."""

    def __init__(self, host: KubeClient, informer: SharedInformer) -> None:
        self.host = host
        self.informer = informer
        self._revoked: set[str] = set()
        # Once the informer has seen a deletion the cache itself refuses the token.
        informer.add_event_handler(on_delete=self._forget)

    async def create(self, *, user: str, admin: bool = False, project: str | None = None,
                     role: str | None = None, created_by: str, description: str = "",
                     expires_in: int | None = None) -> tuple[str, TokenInfo]:
        """A new token; returns ``(token, info)`` — the only time the token is seen."""
        token_id = secrets.token_hex(6)
        token = f"pct_{token_id}_{secrets.token_urlsafe(32)}"
        annotations = {USER_ANNOTATION: user, ADMIN_ANNOTATION: "true" if admin else "false",
                       CREATED_BY_ANNOTATION: created_by}
        if project:
            annotations[PROJECT_ANNOTATION] = project
            annotations[ROLE_ANNOTATION] = role or "viewer"
        if description:
            annotations[DESCRIPTION_ANNOTATION] = description
        if expires_in is not None:
            expires = _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=expires_in)
            annotations[EXPIRES_ANNOTATION] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        secret = {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": SECRET_PREFIX + token_id, "namespace": SYSTEM_NAMESPACE,
                         "labels": {TOKEN_LABEL: "true"}, "annotations": annotations},
            "type": "Opaque",
            "data": {HASH_KEY: base64.b64encode(hash_token(token).encode()).decode()},
        }
        created = await self.host.create(SECRETS, secret, namespace=SYSTEM_NAMESPACE)
        return token, info_of(created)

    def lookup(self, token: str) -> TokenInfo | None:
        """The token's info if it is valid now (known, not revoked, not expired)."""
        m = _TOKEN_RE.match(token)
        if m is None:
            return None
        token_id = m.group(1)
        if token_id in self._revoked:
            return None
        secret = self.informer.get(SECRET_PREFIX + token_id, namespace=SYSTEM_NAMESPACE)
        if secret is None:
            return None
        try:
            stored = base64.b64decode((secret.get("data") or {}).get(HASH_KEY, "")).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(stored, hash_token(token)):
            return None
        info = info_of(secret)
        if info.expires is not None and info.expires <= objects.now():
            return None
        return info

    def get(self, token_id: str) -> TokenInfo | None:
        if token_id in self._revoked:
            return None
        secret = self.informer.get(SECRET_PREFIX + token_id, namespace=SYSTEM_NAMESPACE)
        return info_of(secret) if secret is not None else None

    def list(self) -> list[TokenInfo]:
        out = [info_of(s) for s in self.informer.list(namespace=SYSTEM_NAMESPACE)]
        return sorted((t for t in out if t.id not in self._revoked), key=lambda t: t.id)

    async def revoke(self, token_id: str) -> None:
        """Delete the token's Secret; this gateway refuses the token from now on."""
        self._revoked.add(token_id)
        try:
            await self.host.delete(SECRETS, SECRET_PREFIX + token_id,
                                   namespace=SYSTEM_NAMESPACE)
        except NotFound:
            pass

    def _forget(self, secret: dict[str, Any]) -> None:
        self._revoked.discard(objects.name_of(secret)[len(SECRET_PREFIX):])
