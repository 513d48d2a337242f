"""InputPlan: the identity of every input row, including inputs with no tag columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from orcapod.functions.engine.identify import InputPlan, take_columns
from orcapod.sources import DictSource
from orcapod.types import Schema

ROWS = [{"x": 1.0}, {"x": 2.0}, {"x": 2.0}]


def tagless_plan() -> InputPlan:
    return InputPlan(DictSource(ROWS, source_id="src"))


def test_user_tags_of_a_tagless_input_have_one_row_per_index():
    plan = tagless_plan()
    assert plan.tag_columns == ()
    tags = plan.tags(np.array([2, 0, 2]), user_only=True)
    assert tags.num_rows == 3 and tags.column_names == []
    # the form a caller adds a column to (the logs table adds the input packet hash)
    with_hash = tags.append_column("h", plan.input_hashes(np.array([2, 0, 2])))
    assert with_hash.num_rows == 3


def test_tags_with_system_tags_of_a_tagless_input_keep_the_system_tags():
    plan = tagless_plan()
    tags = plan.tags(np.array([1, 0]))
    assert tags.num_rows == 2
    assert tags.column_names == list(plan.system_tag_columns) and plan.system_tag_columns


def test_take_columns_with_no_names_keeps_the_row_count():
    table = pa.table({"a": [1, 2, 3]})
    assert take_columns(table, [], pa.array([0, 0, 1, 2])).num_rows == 4
    assert take_columns(table, ["a"], pa.array([2, 0])).column("a").to_pylist() == [3, 1]


def test_a_function_reading_no_column_gets_one_packet_per_row():
    plan = tagless_plan()
    rows = np.array([0, 1, 2])
    assert len(list(plan.packets(rows, Schema({})))) == 3
    assert [n for _, n in plan.column_slices(rows, Schema({}))] == [3]


def test_entry_ids_of_a_tagless_input_tell_rows_of_equal_packets_apart():
    plan = tagless_plan()
    # rows 1 and 2 hold the same packet: one input hash, two entries (their record ids differ)
    assert plan.num_entries == 3
    hashes = plan.input_hashes(np.array([1, 2])).to_pylist()
    assert hashes[0] == hashes[1]
