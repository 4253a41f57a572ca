"""Document: LSP positions <-> byte offsets, and incremental reparsing."""

from __future__ import annotations

from analysis_markers import big_source, load
from hypothesis import given, settings
from hypothesis import strategies as st
from tree_sitter import Node

from codegen_lsp.analysis.document import Document, Position, line_starts


def shape(node: Node) -> list[tuple[str, int, int, bool, bool]]:
    """Every node (named or not) with its byte range and error flags, in document order."""
    out = []
    cursor = node.walk()
    while True:
        n = cursor.node
        assert n is not None
        out.append((n.type, n.start_byte, n.end_byte, n.is_missing, n.has_error))
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return out


def test_ascii_positions_round_trip() -> None:
    doc = Document.from_text("ab\ncd\n")
    assert doc.offset_at(1, 1) == 4
    assert doc.position_at(4) == Position(1, 1)
    assert doc.offset_at(0, 99) == 2  # past the end of a line clamps to its end
    assert doc.offset_at(9, 0) == len(doc.data)  # past the last line clamps to the end
    assert doc.line_count == 3


def test_utf16_columns_count_surrogate_pairs() -> None:
    doc = Document.from_text("é😀x = 1\nz\n")
    # é: 1 UTF-16 unit / 2 bytes; 😀: 2 units / 4 bytes
    assert doc.offset_at(0, 1) == 2
    assert doc.offset_at(0, 3) == 6
    assert doc.position_at(6) == Position(0, 3)
    assert doc.position_at(doc.offset_at(1, 1)) == Position(1, 1)


def test_crlf_and_lone_cr_are_line_breaks() -> None:
    doc = Document.from_text("a\r\nbb\rc\n")
    assert doc.line_count == 4
    assert doc.line_bytes(0) == b"a" and doc.line_bytes(1) == b"bb" and doc.line_bytes(2) == b"c"
    assert doc.offset_at(2, 0) == 6
    assert doc.newline == "\r\n"


def test_apply_change_utf16_range() -> None:
    doc = Document.from_text("x = '😀'\ny = 2\n")
    doc.apply_change(0, 5, 0, 7, "ok", version=3)  # replace the emoji (2 UTF-16 units)
    assert doc.text == "x = 'ok'\ny = 2\n"
    assert doc.version == 3
    doc.apply_change(1, 0, 2, 0, "")
    assert doc.text == "x = 'ok'\n"


def test_snapshot_is_independent() -> None:
    doc = Document.from_text("a = 1\n")
    snap = doc.snapshot()
    doc.apply_change(0, 4, 0, 5, "2")
    assert snap.text == "a = 1\n" and doc.text == "a = 2\n"
    assert shape(snap.tree.root_node) == shape(Document.from_text("a = 1\n").tree.root_node)


SOURCES = [load("sites_basic.py").text, load("broken_brackets.py").text, load("sites_unicode.py").text,
           big_source(300)]
FRAGMENTS = ["\n", "\r\n", "    ", "\t", "(", ")", '"""', "'", "def f(x):\n", '    """doc"""\n', "pass\n",
             "é", "😀", "名", "#", ":", "\\\n", "class A:\n", "x = [1,\n", "  return 1\n", ""]


@st.composite
def edits(draw: st.DrawFn, text: str) -> list[tuple[int, int, int, int, str]]:
    """Random LSP edits (positions may land inside surrogate pairs or past line ends)."""
    out = []
    lines = text.count("\n") + 1
    for _ in range(draw(st.integers(1, 8))):
        l1 = draw(st.integers(0, lines))
        l2 = draw(st.integers(l1, min(l1 + 3, lines)))
        c1 = draw(st.integers(0, 40))
        c2 = draw(st.integers(0, 40))
        if l2 == l1:
            c1, c2 = min(c1, c2), max(c1, c2)
        new = draw(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=4))
        out.append((l1, c1, l2, c2, "".join(new)))
    return out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_incremental_tree_equals_fresh_parse(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(SOURCES))
    doc = Document.from_text(text)
    for edit in data.draw(edits(text)):
        doc.apply_change(*edit)
        fresh = Document.from_text(doc.text)
        assert doc.data == fresh.data
        assert doc._starts == line_starts(doc.data)  # incremental line index stays exact
        assert shape(doc.tree.root_node) == shape(fresh.tree.root_node)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab\r\n é😀\t")), max_size=30), st.data())
def test_offsets_and_positions_round_trip(text: str, data: st.DataObject) -> None:
    doc = Document.from_text(text)
    index = data.draw(st.integers(0, len(text)))
    offset = len(text[:index].encode("utf-8"))  # a character boundary
    pos = doc.position_at(offset)
    if text[index - 1:index + 1] != "\r\n":  # the middle of a CRLF pair is no LSP position
        assert doc.offset_at(*pos) == offset
    line_start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1
    assert pos.character == len(text[line_start:index].encode("utf-16-le")) // 2 or "\r\n" in text
