"""The gateway's identities: who signs with each access key, and what its own policy lets it do.

An identity is a name (``arn:aws:iam:::user/NAME`` is its principal in policies; the name is the owner ID
of what it creates, in listings and ACLs) and a policy: a canned one (``admin``, ``readwrite``,
``readonly``, ``writeonly``: s4.server.access.canned) or an IAM document from the config file. Several
keys may share a name: one identity with a key being rotated.

The set is replaced whole on SIGHUP (``Identities.replace``), as the keys are: a request sees the old set
or the new one. A set built without a configuration (``Identities(None)``: an app made in-process by a
test) makes every key an admin, as the gateway was before identities existed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from aiohttp import web

from s4.server.access import Policy, PolicyError, canned_identity_policy, parse_identity_policy

ADMIN = "admin"
PRINCIPAL_PREFIX = "arn:aws:iam:::user/"


class IdentityConfig(Protocol):
    """What the config file says of one key (s4.config.CredentialConfig)."""

    access_key_id: str
    policy: str | dict[str, Any]

    @property
    def identity(self) -> str: ...


class IdentityError(ValueError):
    """An identity the gateway cannot use (a policy it cannot read), with the reason in words."""


@dataclasses.dataclass(frozen=True)
class Identity:
    name: str
    policy: Policy
    policy_name: str | None
    """The canned policy's name; None for a document."""

    @property
    def principal(self) -> str:
        return PRINCIPAL_PREFIX + self.name

    @property
    def is_admin(self) -> bool:
        """Sees every bucket in ListBuckets, as AWS's account root does."""
        return self.policy_name == ADMIN


def principal_of(name: str) -> str:
    return PRINCIPAL_PREFIX + name


def identity_of(name: str, policy: str | Mapping[str, Any]) -> Identity:
    """The identity ``name`` with ``policy`` (canned name or IAM document); IdentityError when unreadable."""
    if isinstance(policy, str):
        canned = canned_identity_policy(policy)
        if canned is None:
            raise IdentityError(f"identity {name}: no canned policy is named {policy!r}")
        return Identity(name, canned, policy)
    try:
        return Identity(name, parse_identity_policy(policy), None)
    except PolicyError as exc:
        raise IdentityError(f"identity {name}: its policy cannot be used: {exc.message}") from None


class Identities:
    """Access key id to identity; see the module docstring."""

    def __init__(self, by_key: Mapping[str, Identity] | None) -> None:
        self._by_key = None if by_key is None else dict(by_key)
        self._admins: dict[str, Identity] = {}

    @property
    def legacy_owner(self) -> str:
        """The owner of a bucket without an owner record (made before identities existed): the first identity
        of the configuration (the key such a gateway had), admin for a set built without one."""
        if not self._by_key:
            return ADMIN
        return next(iter(self._by_key.values())).name

    @classmethod
    def from_config(cls, pairs: Iterable[IdentityConfig]) -> Identities:
        """Every configured key's identity; IdentityError for a policy that cannot be used."""
        return cls(cls.parse(pairs))

    @staticmethod
    def parse(pairs: Iterable[IdentityConfig]) -> dict[str, Identity]:
        return {pair.access_key_id: identity_of(pair.identity, pair.policy) for pair in pairs}

    def replace(self, by_key: Mapping[str, Identity]) -> None:
        """The new set at once (SIGHUP)."""
        self._by_key = dict(by_key)

    def of(self, access_key_id: str) -> Identity | None:
        """The identity that signs with ``access_key_id``; None for an anonymous request ("")."""
        if not access_key_id:
            return None
        if self._by_key is None:
            known = self._admins.get(access_key_id)
            if known is None:
                known = self._admins[access_key_id] = identity_of(access_key_id, ADMIN)
            return known
        return self._by_key.get(access_key_id)

    def knows(self, name: str) -> bool:
        """Whether ``name`` is one of the identities (ACL grants name them); any name for a set built without a
        configuration."""
        return self._by_key is None or any(identity.name == name for identity in self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key or {})


IDENTITIES = web.AppKey("identities", Identities)
"""The app's identities (s4.server.app.create_app), also for a handler that learns who signed from the body."""
