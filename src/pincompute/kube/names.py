"""Name, label and annotation validation, by the rules Kubernetes applies.

Each check returns a list of messages (empty when valid) instead of raising, so a
validator can collect every problem of an object into one Invalid error.
"""

from __future__ import annotations

import re
import secrets

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kubernetes leaves out vowels and look-alike digits so generated names spell no words.
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LEN = 5


def dns1123_label(value: str) -> list[str]:
    errors = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _LABEL_RE.match(value):
        errors.append("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character")
    return errors


def dns1123_subdomain(value: str) -> list[str]:
    errors = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _SUBDOMAIN_RE.match(value):
        errors.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                      "characters, '-' or '.', and must start and end with an alphanumeric "
                      "character")
    return errors


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: ``[prefix/]name``."""
    prefix, slash, name = value.rpartition("/")
    errors: list[str] = []
    if slash:
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend(f"prefix part {m}" for m in dns1123_subdomain(prefix))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_RE.match(name):
        errors.append("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                      "must start and end with an alphanumeric character")
    return errors


def label_value(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        errors.append("a valid label must be an empty string or consist of alphanumeric "
                      "characters, '-', '_' or '.', and must start and end with an "
                      "alphanumeric character")
    return errors


def generate_name(prefix: str) -> str:
    """``generateName`` semantics: the prefix (cut to fit) plus five random characters."""
    room = DNS1123_SUBDOMAIN_MAX - GENERATED_SUFFIX_LEN
    suffix = "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(GENERATED_SUFFIX_LEN))
    return prefix[:room] + suffix
