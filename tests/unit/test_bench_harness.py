"""The benchmark's own arithmetic: item sizes and request units, events, import times, cost."""

import base64

from bench import cost
from bench.coldstart import parse_importtime
from bench.dynamo_meter import (
    Index,
    TableInfo,
    index_write_units,
    item_size,
    read_units,
    tables_from_schema,
    write_units,
)
from bench.lambda_http import Request, api_gateway_event


def test_item_size_counts_names_and_values_by_dynamodb_rules():
    assert item_size({"id": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "123"}}) == 1 + 2 + 1          # 1 byte per 2 digits, plus 1
    assert item_size({"ok": {"BOOL": True}}) == 2 + 1
    assert item_size({"s": {"SS": ["ab", "cde"]}}) == 1 + 5
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)
    assert item_size(None) == 0


def test_reads_round_up_to_4_kb_and_eventual_reads_cost_half():
    assert read_units(0, consistent=True) == 1
    assert read_units(0, consistent=False) == 0.5
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2


def test_writes_round_up_to_1_kb():
    assert write_units(0) == 1
    assert write_units(1024) == 1
    assert write_units(1025) == 2


def test_a_changed_index_key_costs_a_delete_and_a_put():
    info = TableInfo(("id",), (Index("by_idle", ("shard", "deadline"), "KEYS_ONLY"),))
    before = {"id": {"S": "a"}, "shard": {"N": "1"}, "deadline": {"N": "10"}}
    after = {**before, "deadline": {"N": "20"}}
    assert index_write_units(info, before, after) == 2
    assert index_write_units(info, before, before) == 0
    assert index_write_units(info, before, None) == 1            # removed from the index
    assert index_write_units(info, None, before) == 1            # added to it


def test_a_projected_attribute_change_updates_the_index_entry_in_place():
    info = TableInfo(("id",), (Index("by_user", ("user",), "INCLUDE", ("seen",)),))
    before = {"id": {"S": "a"}, "user": {"S": "u"}, "seen": {"N": "1"}, "other": {"S": "x"}}
    assert index_write_units(info, before, {**before, "seen": {"N": "2"}}) == 1
    assert index_write_units(info, before, {**before, "other": {"S": "y"}}) == 0


def test_tables_come_from_the_schema_with_their_indexes():
    tables = tables_from_schema("t-")
    sessions = tables["t-sessions"]
    assert sessions.keys == ("id",)
    assert {i.name for i in sessions.indexes} == {"by_idle", "by_user"}


def test_the_event_names_the_matched_route_and_encodes_form_bodies():
    routes = {"/v1/sessions/{session_id}": None, "/oauth/token": None}
    event = api_gateway_event(Request("DELETE", "/v1/sessions/abc"), routes, [])
    assert event["requestContext"]["resourcePath"] == "/v1/sessions/{session_id}"
    assert event["pathParameters"] == {"session_id": "abc"}
    form = "application/x-www-form-urlencoded"
    event = api_gateway_event(Request("POST", "/oauth/token", {"Content-Type": form}, b"a=1"),
                              routes, [form])
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"a=1"


def test_import_times_are_ranked_by_own_time_and_summed_by_package():
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |   botocore.a",
        "import time:       300 |        400 | botocore",
        "import time:       200 |        200 | jwt",
    ])
    parsed = parse_importtime(stderr, top=2)
    assert [m["module"] for m in parsed["modules"]] == ["botocore", "jwt"]
    assert parsed["packages"][0] == {"package": "botocore", "self_ms": 0.4}


def test_duration_scales_cpu_to_the_functions_share_of_a_vcpu():
    assert cost.duration_ms(1.0, 0, cost.FULL_VCPU_MB) == 1
    assert cost.duration_ms(1.0, 0, cost.FULL_VCPU_MB // 2) == 3         # 2.0..., billed per ms
    assert cost.duration_ms(0.0, 2, 1769) == 2 * cost.DYNAMODB_ROUND_TRIP_MS
