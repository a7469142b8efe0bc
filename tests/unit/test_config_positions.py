"""The TOML key-position scanner: every way of writing a key maps to the right line/column."""

from __future__ import annotations

import tomllib

from rollkeeper.config.positions import duplicate_key_positions, key_positions, locate


def test_tables_and_keys() -> None:
    """Table headers and keys, indented or not, map to their line and column."""
    text = (
        '# comment\n[archive]\npath = "/a"\n  layout = "{name}"\n\n[schedule]\ndebounce_seconds=2\n'
    )

    positions = key_positions(text)

    assert positions[("archive",)] == (2, 2)
    assert positions[("archive", "path")] == (3, 1)
    assert positions[("archive", "layout")] == (4, 3)
    assert positions[("schedule",)] == (6, 2)
    assert positions[("schedule", "debounce_seconds")] == (7, 1)


def test_dotted_keys_and_dotted_table_headers() -> None:
    """Dotted keys and dotted table headers, spaced and quoted parts included, map each part to its
    own column."""
    text = 'archive.path = "/a"\n[a.b]\nc.d = 1\n[ a . "quoted.key" ]\nx = 1\n'

    positions = key_positions(text)

    assert positions[("archive",)] == (1, 1)
    assert positions[("archive", "path")] == (1, 9)
    assert positions[("a",)] == (2, 2)
    assert positions[("a", "b")] == (2, 4)
    assert positions[("a", "b", "c", "d")] == (3, 3)
    assert positions[("a", "quoted.key", "x")] == (5, 1)


def test_quoted_keys_with_escapes() -> None:
    """Basic and literal quoted keys map under their unescaped names."""
    text = '[s]\n"key \\"one\\"" = 1\n\'literal\' = 2\n"\\u00e9t\\u00e9" = 3\n'

    positions = key_positions(text)

    assert positions[("s", 'key "one"')] == (2, 1)
    assert positions[("s", "literal")] == (3, 1)
    assert positions[("s", "été")] == (4, 1)


def test_inline_tables_nested() -> None:
    """Keys inside nested inline tables map to their columns on the one line."""
    text = 'archive = { path = "/a", inner = { deep = true } }\nnext = 1\n'

    positions = key_positions(text)

    assert positions[("archive", "path")] == (1, 13)
    assert positions[("archive", "inner", "deep")] == (1, 36)
    assert positions[("next",)] == (2, 1)


def test_array_items_over_several_lines_with_comments() -> None:
    """Array items map by index to their own line and column, across line breaks and comments
    that hold "]" and ","."""
    text = (
        "[filters]\n"
        "media_kinds = [ # the kinds\n"
        '  "photo",\n'
        "  # a comment with ] and , inside\n"
        '  "video", "sidecar",\n'
        "]\n"
        "screenshots = false\n"
    )

    positions = key_positions(text)

    assert positions[("filters", "media_kinds", 0)] == (3, 3)
    assert positions[("filters", "media_kinds", 1)] == (5, 3)
    assert positions[("filters", "media_kinds", 2)] == (5, 12)
    assert positions[("filters", "screenshots")] == (7, 1)


def test_strings_that_look_like_syntax_do_not_confuse_it() -> None:
    """Brackets, # and quotes inside strings (multi-line and literal ones too) are taken for text,
    not for tables, comments or keys."""
    text = (
        "[notifications]\n"
        "on_success = \"notify-send 'done' # not a comment [x]\"\n"
        'on_failure = """\n'
        "[not_a_table]\n"
        'fake = "key"\n'
        '"""\n'
        "on_stale = '''C:\\path\\[x]'''\n"
        'healthcheck_url = "https://hc.example/\\"q\\""\n'
        "desktop = false\n"
    )
    assert tomllib.loads(text)  # the scanner only sees valid TOML

    positions = key_positions(text)

    assert ("not_a_table",) not in positions
    assert ("notifications", "fake") not in positions
    assert positions[("notifications", "on_stale")] == (7, 1)
    assert positions[("notifications", "healthcheck_url")] == (8, 1)
    assert positions[("notifications", "desktop")] == (9, 1)


def test_arrays_of_tables_are_indexed() -> None:
    """Each [[table]] of an array of tables maps its keys under its own index."""
    text = '[[hooks]]\nrun = "a"\n[[hooks]]\nrun = "b"\n'

    positions = key_positions(text)

    assert positions[("hooks", 0, "run")] == (2, 1)
    assert positions[("hooks", 1, "run")] == (4, 1)


def test_dates_times_and_numbers_as_values() -> None:
    """Dates, date-times and numbers as values do not shift the positions of the keys after them."""
    text = "[f]\nsince = 2024-01-31\nwhen = 1979-05-27 07:32:00Z\nn = -1_000.5e3\nlast = inf\n"

    positions = key_positions(text)

    assert positions[("f", "when")] == (3, 1)
    assert positions[("f", "n")] == (4, 1)
    assert positions[("f", "last")] == (5, 1)


def test_windows_line_endings() -> None:
    """Windows line endings count as one line break each."""
    text = '[archive]\r\npath = "/a"\r\n\r\nlayout = "{name}"\r\n'

    positions = key_positions(text)

    assert positions[("archive", "layout")] == (4, 1)


def test_locate_falls_back_to_the_longest_written_prefix() -> None:
    """locate gives a key's own position, else that of its longest prefix written in the file, else
    None."""
    positions = key_positions('[filters]\nmedia_kinds = ["photo"]\n')

    assert locate(positions, ("filters", "media_kinds", 0)) == (2, 16)
    assert locate(positions, ("filters", "media_kinds", 5)) == (2, 1)
    assert locate(positions, ("filters", "since")) == (1, 2)
    assert locate(positions, ("logging", "level")) is None


def test_duplicates_are_found_where_they_are_repeated() -> None:
    """A key or table defined twice is reported at the position of its repetition."""
    assert duplicate_key_positions("[a]\nx = 1\ny = 2\nx = 3\n") == [(("a", "x"), (4, 1))]
    assert duplicate_key_positions("[a]\n[b]\n[a]\n") == [(("a",), (3, 2))]


def test_it_stops_quietly_on_text_it_does_not_understand() -> None:
    """At text it cannot parse the scanner stops and keeps the positions found before it, without
    raising."""
    positions = key_positions('[archive]\npath = "/a"\n= broken\nlayout = "x"\n')

    assert positions == {("archive",): (1, 2), ("archive", "path"): (2, 1)}
