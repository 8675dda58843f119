"""The permission language of SPEC §6: ``action@resource``, matching and coverage.

``action`` is ``service:verb`` and ``resource`` a URN (RFC 8141 ``urn:<NID>:<NSS>``),
both made of colon-separated segments. In a *pattern*:

- a segment that is exactly ``*`` matches any one segment;
- a ``*`` at the very end matches any remaining text (a prefix): ``alice.*``
  as the last segment matches ``alice.x`` and ``alice.x:y``; a last segment
  that is exactly ``*`` therefore matches one *or more* remaining segments;
- ``*`` alone (as the action, the resource, or the whole permission, which
  is short for ``*@*``) matches everything;
- no other wildcards: a ``*`` anywhere else is refused.

A *concrete* ``action@resource`` (what a request does) has no ``*`` at all.
Empty segments are refused everywhere. The action never contains ``@``, so a
permission splits at its first ``@`` and a resource may hold one
(``urn:tessera:data:bob@example.com.files``).

``covers(right, permission)`` decides, segment by segment, whether every
concrete value the permission matches is matched by the right too (language
inclusion, exact for the general segment language; it ignores that actions
have exactly two segments, which can only make it refuse, never wrongly
accept). No boto3, no Chalice: pure functions over frozen values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_LENGTH = 512
WILDCARD = "*"
# Literal text of a segment. Actions: service and verb names. Resources: the
# URN characters of RFC 8141 §2 that are not our separators (":" and "*").
_ACTION_TEXT = re.compile(r"[A-Za-z0-9._-]+")
_RESOURCE_TEXT = re.compile(r"[A-Za-z0-9._~!$&'()+,;=/?#@%-]+")


class InvalidPermission(ValueError):
    """A permission (or concrete action@resource) that is not well formed."""


@dataclass(frozen=True)
class Pattern:
    """A colon-separated pattern: ``fixed`` segments (None: any one segment),
    then, if ``tail`` is not None, a last segment that starts with ``tail``
    followed by any remaining text (the trailing ``*``)."""

    fixed: tuple[str | None, ...]
    tail: str | None = None

    def format(self) -> str:
        parts = [WILDCARD if seg is None else seg for seg in self.fixed]
        if self.tail is not None:
            parts.append(self.tail + WILDCARD)
        return ":".join(parts)

    def matches(self, segments: tuple[str, ...]) -> bool:
        k = len(self.fixed)
        if self.tail is None:
            if len(segments) != k:
                return False
        elif len(segments) <= k or not segments[k].startswith(self.tail):
            # The tail has no ":", so "the remaining text starts with the tail"
            # is "segment k starts with it"; any segments after it are free.
            return False
        return all(p is None or p == s for p, s in zip(self.fixed, segments[:k], strict=True))

    def covers(self, other: Pattern) -> bool:
        """Every sequence ``other`` matches, ``self`` matches too."""
        k = len(self.fixed)
        if self.tail is None:
            # An exact pattern has one length; a tail pattern matches many.
            return other.tail is None and len(other.fixed) == k and self._fixed_cover(other)
        # self: k fixed segments, then a segment starting with self.tail, then anything.
        if other.tail is None:
            if len(other.fixed) <= k:
                return False
            at_tail = other.fixed[k]
            tail_ok = (self.tail == "" if at_tail is None else at_tail.startswith(self.tail))
        else:
            if len(other.fixed) < k:
                return False
            if len(other.fixed) == k:
                tail_ok = other.tail.startswith(self.tail)
            else:
                at_tail = other.fixed[k]
                tail_ok = (self.tail == "" if at_tail is None else at_tail.startswith(self.tail))
        return tail_ok and self._fixed_cover(other)

    def _fixed_cover(self, other: Pattern) -> bool:
        """Each of my fixed segments covers the other's segment at the same place
        (the caller made sure the other has at least as many)."""
        return all(mine is None or mine == theirs
                   for mine, theirs in zip(self.fixed, other.fixed[:len(self.fixed)], strict=True))


@dataclass(frozen=True)
class Permission:
    action: Pattern
    resource: Pattern

    def format(self) -> str:
        return f"{self.action.format()}@{self.resource.format()}"

    def __str__(self) -> str:
        return self.format()


EVERYTHING = Permission(Pattern((), ""), Pattern((), ""))


def _split(text: str, what: str) -> tuple[str, str]:
    if not isinstance(text, str):
        raise InvalidPermission(f"{what} must be a string")
    if len(text) > MAX_LENGTH:
        raise InvalidPermission(f"{what} is longer than {MAX_LENGTH} characters")
    action, at, resource = text.partition("@")
    if not at:
        raise InvalidPermission(f"{what} {text!r} must be action@resource")
    return action, resource


def _pattern(text: str, literal: re.Pattern[str], what: str) -> Pattern:
    if text == WILDCARD:
        return Pattern((), "")
    segments = text.split(":")
    fixed: list[str | None] = []
    tail: str | None = None
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == WILDCARD and not last:
            fixed.append(None)
        elif last and seg.endswith(WILDCARD):
            tail = seg[:-1]
            if tail and not literal.fullmatch(tail):
                raise InvalidPermission(f"{what}: bad segment {seg!r} (a * only as a whole "
                                        "segment or at the very end)")
        elif not seg:
            raise InvalidPermission(f"{what}: empty segment")
        elif not literal.fullmatch(seg):
            raise InvalidPermission(f"{what}: bad segment {seg!r} (a * only as a whole "
                                    "segment or at the very end)")
        else:
            fixed.append(seg)
    return Pattern(tuple(fixed), tail)


# A warm instance meets the same few patterns at every request (a role's policies,
# its owner's rights): each is parsed once. Permissions are frozen values.
@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Permission:
    """Parse a permission pattern; raises InvalidPermission with the reason."""
    if text == WILDCARD:
        return EVERYTHING
    action_text, resource_text = _split(text, "permission")
    action = _pattern(action_text, _ACTION_TEXT, "action")
    # service:verb: two segments, or fewer before a trailing * (e.g. "*", "data:*").
    if (action.tail is None and len(action.fixed) != 2) or (
            action.tail is not None and len(action.fixed) > 1):
        raise InvalidPermission(f"action {action_text!r} must be service:verb")
    resource = _pattern(resource_text, _RESOURCE_TEXT, "resource")
    if resource != EVERYTHING.resource:
        # A URN (RFC 8141 §2): "urn", a namespace, then the rest.
        if not resource.fixed or resource.fixed[0] != "urn":
            raise InvalidPermission(f"resource {resource_text!r} must be a URN (urn:…) or *")
        if resource.tail is None and len(resource.fixed) < 3:
            raise InvalidPermission(f"resource {resource_text!r} must be urn:<namespace>:<name>")
    return Permission(action, resource)


def parse_concrete(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Parse a concrete ``service:verb@urn:…`` (no wildcard) into its segments."""
    action_text, resource_text = _split(text, "action@resource")
    if WILDCARD in text:
        raise InvalidPermission(f"{text!r} is a pattern, not a concrete action@resource")
    action = tuple(action_text.split(":"))
    resource = tuple(resource_text.split(":"))
    if len(action) != 2 or not all(_ACTION_TEXT.fullmatch(s) for s in action):
        raise InvalidPermission(f"action {action_text!r} must be service:verb")
    if (len(resource) < 3 or resource[0] != "urn"
            or not all(_RESOURCE_TEXT.fullmatch(s) for s in resource)):
        raise InvalidPermission(f"resource {resource_text!r} must be urn:<namespace>:<name>")
    return action, resource


def _as_permission(value: Permission | str) -> Permission:
    return value if isinstance(value, Permission) else parse(value)


def matches(permission: Permission | str, concrete: str) -> bool:
    """Whether ``permission`` allows the concrete ``action@resource``."""
    p = _as_permission(permission)
    action, resource = parse_concrete(concrete)
    return p.action.matches(action) and p.resource.matches(resource)


def covers(right: Permission | str, permission: Permission | str) -> bool:
    """Whether everything ``permission`` matches, ``right`` matches too (SPEC §6)."""
    r, p = _as_permission(right), _as_permission(permission)
    return r.action.covers(p.action) and r.resource.covers(p.resource)


def intersect(policies: Iterable[Permission | str],
              rights: Iterable[Permission | str]) -> tuple[str, ...]:
    """The policies each covered by some single right, in order, without repeats.

    A policy that only partly overlaps the rights is dropped whole, never
    narrowed: ``data:*@urn:tessera:data:*`` against the right
    ``data:get@urn:tessera:data:alice.*`` yields nothing rather than a derived
    ``data:get@urn:tessera:data:alice.*`` the role's owner never wrote. Likewise a
    policy covered only by the union of several rights is dropped. Dropping
    is the safe direction (a role can only ever do less than its policies say),
    and the owner sees exactly which policies are in force.
    """
    held = [_as_permission(r) for r in rights]
    out: list[str] = []
    for policy in policies:
        p = _as_permission(policy)
        text = p.format()
        if text not in out and any(covers(r, p) for r in held):
            out.append(text)
    return tuple(out)


# Ends a user's name in a resource segment: ``alice``'s namespace is every segment
# that starts with ``alice.``.
NAMESPACE_SEPARATOR = "."


def default_rights(username: str) -> tuple[str, ...]:
    """What a user holds when nothing else was granted: every action on their
    own namespace (SPEC §6), ``*@urn:tessera:*:<username>.*``.

    Two names without the separator have disjoint namespaces (a segment starting
    with ``u.`` names ``u`` before its first dot). A name with it (a user stored
    before usernames lost the dot, ``alice.x``) lies inside another's namespace
    (``alice.*``), and its own would hold every ``alice.x.y``: it has none.
    """
    if NAMESPACE_SEPARATOR in username or not _RESOURCE_TEXT.fullmatch(username):
        return ()
    return (f"*@urn:tessera:*:{username}{NAMESPACE_SEPARATOR}*",)
