"""The permission language of SPEC §6: parsing, matching, coverage, intersection."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chalicelib.security.permissions import (
    InvalidPermission,
    Pattern,
    Permission,
    covers,
    default_rights,
    intersect,
    matches,
    parse,
    parse_concrete,
)

# A tiny alphabet, so that patterns and concrete values collide often.
LITERALS = st.sampled_from(["a", "b", "ab", "ba", "a.b"])
PREFIXES = st.sampled_from(["", "a", "b", "a."])
SEGMENT = st.one_of(LITERALS, st.just(None))


def _segments_text(fixed: list[str | None], tail: str | None) -> str:
    return Pattern(tuple(fixed), tail).format()


@st.composite
def action_patterns(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["exact", "tail0", "tail1"]))
    if kind == "exact":
        return _segments_text([draw(SEGMENT), draw(SEGMENT)], None)
    if kind == "tail0":
        return _segments_text([], draw(PREFIXES))
    return _segments_text([draw(SEGMENT)], draw(PREFIXES))


@st.composite
def resource_patterns(draw: st.DrawFn) -> str:
    if draw(st.booleans()) and draw(st.booleans()):
        return "*"
    if draw(st.booleans()):
        fixed = ["urn", *draw(st.lists(SEGMENT, min_size=2, max_size=4))]
        return _segments_text(fixed, None)
    fixed = ["urn", *draw(st.lists(SEGMENT, min_size=0, max_size=3))]
    return _segments_text(fixed, draw(PREFIXES))


@st.composite
def permissions(draw: st.DrawFn) -> str:
    return f"{draw(action_patterns())}@{draw(resource_patterns())}"


@st.composite
def concretes(draw: st.DrawFn) -> str:
    action = f"{draw(LITERALS)}:{draw(LITERALS)}"
    resource = ":".join(["urn", *draw(st.lists(LITERALS, min_size=2, max_size=5))])
    return f"{action}@{resource}"


@st.composite
def narrowed(draw: st.DrawFn, pattern: Pattern) -> Pattern:
    """A pattern that matches at most what ``pattern`` matches (by construction)."""
    fixed = [draw(SEGMENT) if seg is None else seg for seg in pattern.fixed]
    if pattern.tail is None:
        return Pattern(tuple(fixed), None)
    how = draw(st.sampled_from(["longer tail", "fixed segment"]))
    if how == "longer tail":
        return Pattern(tuple(fixed), pattern.tail + draw(st.sampled_from(["", "a", "b."])))
    fixed.append(pattern.tail + draw(LITERALS))
    more = draw(st.lists(SEGMENT, max_size=2))
    return Pattern(tuple(fixed + more), draw(st.one_of(st.none(), PREFIXES)))


@st.composite
def narrower_than(draw: st.DrawFn, text: str) -> str:
    p = parse(text)
    candidate = Permission(draw(narrowed(p.action)), draw(narrowed(p.resource))).format()
    try:
        parse(candidate)
    except InvalidPermission:
        assume(False)
    return candidate


@st.composite
def chains(draw: st.DrawFn) -> tuple[str, str, str]:
    a = draw(permissions())
    b = draw(narrower_than(a))
    return a, b, draw(narrower_than(b))


@st.composite
def perturbed(draw: st.DrawFn, pattern: Pattern) -> Pattern:
    """A pattern like ``pattern``, with some segments or the tail changed at random:
    close enough that coverage is often in doubt."""
    fixed = [draw(st.sampled_from([seg, None])) if draw(st.booleans()) else draw(LITERALS)
             for seg in pattern.fixed]
    tail = draw(st.sampled_from([pattern.tail, None, "", "a", "b", "a."]))
    if pattern.tail is not None and draw(st.booleans()):
        # Where the original's tail was, a whole segment (maybe *), then maybe more.
        fixed.append(draw(SEGMENT))
        tail = draw(st.one_of(st.none(), PREFIXES))
    return Pattern(tuple(fixed), tail)


@st.composite
def near_pairs(draw: st.DrawFn) -> tuple[str, str]:
    right = parse(draw(permissions()))
    action, resource = draw(perturbed(right.action)), draw(perturbed(right.resource))
    # Fall back to the right's own parts where a change made the pattern invalid
    # (an action must stay service:verb), rather than filter the example out.
    for candidate in (Permission(action, resource), Permission(right.action, resource)):
        try:
            return right.format(), parse(candidate.format()).format()
        except InvalidPermission:
            continue
    return right.format(), right.format()


@st.composite
def instances(draw: st.DrawFn, text: str) -> str:
    """A concrete action@resource that the permission ``text`` matches."""
    def fill(pattern: Pattern, at_least: int, at_most: int) -> list[str]:
        out = [draw(LITERALS) if seg is None else seg for seg in pattern.fixed]
        if pattern.tail is not None:
            out.append(pattern.tail + draw(st.sampled_from(["", "a", "b"])) or draw(LITERALS))
            low = max(0, at_least - len(out))
            out.extend(draw(st.lists(LITERALS, min_size=low, max_size=max(low, at_most - len(out)))))
        return out

    p = parse(text)
    action = fill(p.action, 2, 2)          # service:verb
    resource = fill(p.resource, 3, 6) if p.resource.fixed else ["urn", *draw(
        st.lists(LITERALS, min_size=2, max_size=4))]
    concrete = f"{':'.join(action)}@{':'.join(resource)}"
    try:
        parse_concrete(concrete)
    except InvalidPermission:
        assume(False)
    return concrete


# -- properties ------------------------------------------------------------------

@given(permissions(), permissions(), concretes())
def test_a_covered_permission_never_matches_what_the_right_does_not(right, permission, concrete):
    if covers(right, permission) and matches(permission, concrete):
        assert matches(right, concrete)


@given(st.one_of(near_pairs(), st.tuples(permissions(), permissions())), st.data())
def test_a_covered_permission_matches_nothing_outside_the_right(pair, data):
    right, permission = pair
    concrete = data.draw(instances(permission))
    assert matches(permission, concrete)
    if covers(right, permission):
        assert matches(right, concrete)


@given(chains(), concretes())
def test_a_narrowed_permission_is_covered_and_matches_only_within_the_right(chain, concrete):
    right, permission, _ = chain
    assert covers(right, permission)
    if matches(permission, concrete):
        assert matches(right, concrete)


@given(permissions())
def test_covers_is_reflexive(permission):
    assert covers(permission, permission)


@given(chains())
def test_covers_is_transitive_along_narrowing_chains(chain):
    a, b, c = chain
    assert covers(a, b) and covers(b, c) and covers(a, c)


@given(permissions(), permissions(), permissions())
def test_covers_is_transitive_for_any_three(a, b, c):
    if covers(a, b) and covers(b, c):
        assert covers(a, c)


@given(permissions())
def test_parse_and_format_round_trip(text):
    parsed = parse(text)
    assert parsed.format() == text
    assert parse(parsed.format()) == parsed


@given(permissions(), st.data())
def test_a_star_inside_a_segment_is_refused(text, data):
    segment_starts = [i for i, ch in enumerate(text) if ch not in ":@*"]
    assume(segment_starts)
    at = data.draw(st.sampled_from(segment_starts))
    # Inserted before a character of a segment: never at the very end of a part.
    broken = text[:at] + "*" + text[at:]
    with pytest.raises(InvalidPermission):
        parse(broken)


@given(concretes())
def test_star_alone_matches_every_concrete_value(concrete):
    assert matches("*", concrete) and matches("*@*", concrete)


@given(permissions())
def test_star_alone_covers_every_permission(permission):
    assert covers("*", permission)


# -- examples ------------------------------------------------------------------

def test_the_default_right_covers_the_own_namespace_only():
    (right,) = default_rights("alice")
    assert right == "*@urn:tessera:*:alice.*"
    assert covers(right, "data:get@urn:tessera:data:alice.*")
    assert covers(right, "data:get@urn:tessera:data:alice.workspace")
    assert not covers(right, "data:get@urn:tessera:data:bob.workspace")
    assert not covers(right, "data:get@urn:tessera:data:alice")     # no "." after the name
    assert not covers(right, "data:get@urn:tessera:*")
    assert matches(right, "data:get@urn:tessera:data:alice.workspace:sub")


@pytest.mark.parametrize(("pattern", "concrete", "expected"), [
    ("data:get@urn:tessera:data:alice.ws", "data:get@urn:tessera:data:alice.ws", True),
    ("data:get@urn:tessera:data:alice.ws", "data:put@urn:tessera:data:alice.ws", False),
    ("data:*@urn:tessera:data:alice.ws", "data:put@urn:tessera:data:alice.ws", True),
    ("*:get@urn:tessera:data:alice.ws", "registry:get@urn:tessera:data:alice.ws", True),
    ("data:get@urn:tessera:*:alice.ws", "data:get@urn:tessera:registry:alice.ws", True),
    # A whole-segment * in the middle is exactly one segment.
    ("data:get@urn:tessera:*:alice.ws", "data:get@urn:tessera:a:b:alice.ws", False),
    # A * at the very end is a prefix of the remaining text, colons included.
    ("data:get@urn:tessera:data:*", "data:get@urn:tessera:data:alice:x", True),
    ("data:get@urn:tessera:data:al*", "data:get@urn:tessera:data:alice", True),
    ("data:get@urn:tessera:data:al*", "data:get@urn:tessera:data:bob", False),
    ("data:g*@urn:tessera:data:x", "data:get@urn:tessera:data:x", True),
    ("*@*", "data:get@urn:tessera:data:x", True),
])
def test_matching_examples(pattern, concrete, expected):
    assert matches(pattern, concrete) is expected


def test_a_resource_may_carry_an_at_sign_after_the_first():
    # A right written out: no username takes "@" or "." now, so no default is spelt so.
    right = "*@urn:tessera:*:bob@example.com.*"
    assert matches(right, "data:get@urn:tessera:data:bob@example.com.files")
    assert not matches(right, "data:get@urn:tessera:data:eve@example.com.files")


@pytest.mark.parametrize("text", [
    "", "data:get", "@urn:x:y", "data:get@", "data@urn:x:y", "data:get:more@urn:x:y",
    "da*ta:get@urn:x:y", "*data:get@urn:x:y", "data:get@urn:x:*y", "data:get@urn:x:y**",
    "data:get@urn:*a:y", "data:get@urn::y", "data:get@urn:x:", "data:get@urn:x",
    "data:get@arn:x:y", "data:get@*:x:y", "data:get@urn:x:y z", "data get@urn:x:y",
    "data:get@urn:x:y\n", "a" * 600 + ":get@urn:x:y", "data:*:x@urn:x:y", "**",
])
def test_malformed_permissions_are_refused(text):
    with pytest.raises(InvalidPermission):
        parse(text)


@pytest.mark.parametrize("text", [
    "data:get@urn:tessera:data:*", "data:*@urn:x:y", "data:get", "data@urn:x:y",
    "data:get@urn:x",
])
def test_malformed_concrete_values_are_refused(text):
    with pytest.raises(InvalidPermission):
        parse_concrete(text)


def test_star_alone_is_short_for_star_at_star():
    assert parse("*") == parse("*@*")
    assert parse("*").format() == "*@*"


def test_intersect_keeps_policies_covered_by_one_right_and_drops_partial_overlaps():
    rights = ["data:get@urn:tessera:data:alice.*", "registry:*@urn:tessera:registry:alice.app"]
    policies = [
        "data:get@urn:tessera:data:alice.ws",       # covered
        "data:*@urn:tessera:data:*",                # only partly: dropped, not narrowed
        "registry:pull@urn:tessera:registry:alice.app",
        "data:get@urn:tessera:data:alice.ws",       # a repeat
        "data:get@urn:tessera:data:bob.ws",         # outside
    ]
    assert intersect(policies, rights) == ("data:get@urn:tessera:data:alice.ws",
                                           "registry:pull@urn:tessera:registry:alice.app")
    assert intersect(policies, []) == ()
