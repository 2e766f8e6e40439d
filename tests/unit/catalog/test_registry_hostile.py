"""Users' registry files are untrusted: URLs, paths and YAML that medcat refuses, and how it says so.

A registry file named in ``MEDCAT_REGISTRY`` may come from anyone. These tests pin the policy:
only http(s) URLs, only relative paths that stay inside the dataset folder, YAML within size,
depth and alias limits, and a one-line ``RegistryError`` naming the file (entry id and field path
where there is one) instead of a traceback. Parsed files are cached by path, mtime and size.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from medcat_data.catalog import registry
from medcat_data.catalog.registry import MAX_REGISTRY_BYTES, load_registry, load_registry_file, parse_registry_text
from medcat_data.cli import main
from medcat_data.errors import RegistryError
from tests.unit.catalog.entries import registry_yaml, valid_entry

ID = "my-hospital-cxr"


def _problems(entry: dict[str, Any]) -> list[str]:
    with pytest.raises(RegistryError) as info:
        parse_registry_text(registry_yaml(entry), "user.yaml")
    return info.value.problems


def _with_source(source: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return valid_entry(sources=[{"name": "main", **source}], configs=[], **changes)


def _urls(**file_changes: Any) -> dict[str, Any]:
    pinned = {"url": "https://data.example.org/a.zip", "path": "a.zip", **file_changes}
    return {"kind": "urls", "files": [pinned]}


# (field path in the message, entry with `value` planted in that field)
URL_FIELDS: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
    ("homepage", lambda v: valid_entry(homepage=v)),
    ("license.url", lambda v: valid_entry(license={"name": "Internal", "url": v})),
    ("access_info.dua_url", lambda v: valid_entry(access_info={"steps": ["Sign the DUA."], "dua_url": v})),
    ("sources[0].files[0].url", lambda v: _with_source(_urls(url=v))),
    (
        "sources[0].checksum_files[0].url",
        lambda v: _with_source({**_urls(), "checksum_files": [{"url": v, "algorithm": "md5"}]}),
    ),
    (
        "sources[0].checksum_files[0].base",
        lambda v: _with_source(
            {**_urls(), "checksum_files": [{"url": "https://data.example.org/MD5", "algorithm": "md5", "base": v}]}
        ),
    ),
    ("sources[0].base_url", lambda v: _with_source({"kind": "physionet", "slug": "x", "base_url": v})),
    ("sources[0].base_url", lambda v: _with_source({"kind": "kaggle", "owner": "o", "slug": "s", "base_url": v})),
    (
        "sources[0].base_url",
        lambda v: _with_source({"kind": "gdrive", "file_id": "abc", "filename": "a.zip", "base_url": v}),
    ),
    ("sources[0].base_url", lambda v: _with_source({"kind": "osf", "project": "abc12", "base_url": v})),
    ("sources[0].bucket_url", lambda v: _with_source({"kind": "pmc", "bucket_url": v})),
    ("sources[0].legacy_url", lambda v: _with_source({"kind": "pmc", "legacy_url": v})),
    ("sources[0].api_url", lambda v: _with_source({"kind": "tcia", "collection": "C", "api_url": v})),
    ("sources[0].manifest_url", lambda v: _with_source({"kind": "tcia", "collection": "C", "manifest_url": v})),
    (
        "sources[0].files[0].url",
        lambda v: _with_source({"kind": "tcia", "collection": "C", "files": [{"url": v, "path": "a.csv"}]}),
    ),
]


@pytest.mark.parametrize(("field", "make"), URL_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(URL_FIELDS)])
def test_a_file_url_in_any_url_field_is_refused_naming_entry_and_field(
    field: str, make: Callable[[str], dict[str, Any]]
) -> None:
    (problem,) = _problems(make("file:///etc/passwd"))
    assert problem.startswith(f"{ID}.{field}: expected an http(s) URL; scheme 'file' is refused")
    assert "--mirror file://" in problem and problem.endswith("got 'file:///etc/passwd'")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://ftp.ncbi.nlm.nih.gov/giab/x.vcf.gz", "scheme 'ftp'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("data:text/plain;base64,aGk=", "scheme 'data'"),
        ("gopher://example.org/1", "scheme 'gopher'"),
        ("s3://bucket/key", "scheme 's3'"),
        ("//data.example.org/a.zip", "a URL without a scheme"),
        ("a.zip", "a URL without a scheme"),
        ("https:///etc/passwd", "with a host name"),
        ("https://data.example.org\\@evil.org/a", "backslashes"),
        ("https://data.example.org/a\x00.zip", "control characters"),
    ],
)
def test_only_http_and_https_urls_are_valid(url: str, why: str) -> None:
    (problem,) = _problems(_with_source(_urls(url=url)))
    assert problem.startswith(f"{ID}.sources[0].files[0].url: expected an http(s) URL")
    assert why in problem


def test_http_and_https_in_any_case_are_valid_urls() -> None:
    entry = _with_source(_urls(url="http://data.example.org/a.zip"), homepage="HTTPS://Data.Example.org/")
    (parsed,) = parse_registry_text(registry_yaml(entry), "user.yaml")
    assert parsed.homepage == "HTTPS://Data.Example.org/"


# (field path in the message, entry with `value` planted in that field)
PATH_FIELDS: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
    ("sources[0].files[0].path", lambda v: _with_source(_urls(path=v))),
    ("sources[0].subdir", lambda v: _with_source({**_urls(), "subdir": v})),
    ("sources[0].include[0]", lambda v: _with_source({**_urls(), "include": [v]})),
    ("sources[0].checksum_file", lambda v: _with_source({"kind": "physionet", "slug": "x", "checksum_file": v})),
    (
        "sources[0].file_index.path",
        lambda v: _with_source({"kind": "physionet", "slug": "x", "file_index": {"path": v}}),
    ),
    ("sources[0].version", lambda v: _with_source({"kind": "physionet", "slug": "x", "version": v})),
    (
        "sources[0].allow_patterns[0]",
        lambda v: _with_source({"kind": "hf", "repo_id": "o/r", "revision": "abc", "allow_patterns": [v]}),
    ),
    ("sources[0].archive", lambda v: _with_source({"kind": "kaggle", "owner": "o", "slug": "s", "archive": v})),
    ("sources[0].filename", lambda v: _with_source({"kind": "gdrive", "file_id": "abc", "filename": v})),
    (
        "sources[0].files[0].path",
        lambda v: _with_source({"kind": "tcia", "collection": "C", "files": [{"url": "https://x.org/a", "path": v}]}),
    ),
    ("versions[0].version", lambda v: valid_entry(versions=[{"version": v}], default_version=v)),
]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("../outside.zip", "'..' segments are not allowed"),
        ("images/../../outside.zip", "'..' segments are not allowed"),
        ("..", "'..' segments are not allowed"),
        ("/etc/cron.d/x", "not an absolute path"),
        ("C:/Windows/x.dll", "not an absolute path"),
        ("c:x.dll", "not an absolute path"),
        ("\\\\server\\share\\x", "backslashes are not allowed"),
        ("images\\..\\x", "backslashes are not allowed"),
        ("a\x00.zip", "control characters"),
    ],
)
@pytest.mark.parametrize(("field", "make"), PATH_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(PATH_FIELDS)])
def test_a_path_leaving_the_dataset_folder_is_refused_naming_entry_and_field(
    field: str, make: Callable[[str], dict[str, Any]], value: str, why: str
) -> None:
    problems = _problems(make(value))
    assert any(p.startswith(f"{ID}.{field}: ") and why in p for p in problems), problems


@pytest.mark.parametrize(
    ("field", "make"),
    [
        ("sources[0].file_id", lambda v: _with_source({"kind": "gdrive", "file_id": v, "filename": "a.zip"})),
        ("sources[0].project", lambda v: _with_source({"kind": "osf", "project": v})),
        ("sources[0].storage", lambda v: _with_source({"kind": "osf", "project": "abc12", "storage": v})),
    ],
)
@pytest.mark.parametrize("value", ["..", ".", "a/b", "/x"])
def test_ids_that_become_path_segments_must_be_single_names(
    field: str, make: Callable[[str], dict[str, Any]], value: str
) -> None:
    (problem,) = _problems(make(value))
    assert problem.startswith(f"{ID}.{field}: ")


def test_dots_inside_names_are_valid_but_a_dot_dot_segment_is_not() -> None:
    source = {**_urls(path="v1..2/a..b.tar.gz"), "subdir": "./raw", "include": ["*.csv", "images/**/*.png"]}
    (parsed,) = parse_registry_text(registry_yaml(_with_source(source)), "user.yaml")
    assert parsed.sources[0].subdir == "./raw"
    (problem,) = _problems(_with_source({**source, "subdir": "./raw/.."}))
    assert problem.startswith(f"{ID}.sources[0].subdir: '..' segments are not allowed")


def _deep_nesting() -> bytes:
    return b"datasets: " + b"[" * 100_000


def _alias_bomb() -> bytes:
    # "billion laughs": ten levels of ten aliases each, planted in a list field pydantic walks.
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return ("\n".join(lines) + "\n" + registry_yaml(valid_entry()) + "  tags: *l9\n").encode()


def _too_large() -> bytes:
    # A valid registry padded with a comment to one byte over the cap.
    text = registry_yaml(valid_entry()).encode() + b"#"
    return text + b"x" * (MAX_REGISTRY_BYTES + 1 - len(text))


HOSTILE_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "deep-nesting": (_deep_nesting, "YAML nested deeper than 64 levels at line 1"),
    "deep-mappings": (lambda: b"datasets: " + b"{a: " * 50_000, "YAML nested deeper than 64 levels"),
    "alias-bomb": (_alias_bomb, "YAML expands to more than 2,000,000 nodes through aliases"),
    "recursive-alias": (lambda: b"datasets: &d [*d]\n", "recursive YAML alias at line 1"),
    "too-large": (_too_large, "file is 16,777,217 bytes; registry files are limited to 16 MiB"),
    "not-utf8": (lambda: b"datasets:\n  - id: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 21)"),
    "nul-character": (lambda: b"datasets: [\x00]\n", "character #x0000 at offset 11 is not allowed"),
    "syntax-error": (lambda: b"datasets: [\n  {id: x,\n", "not valid YAML at line 3, column 1:"),
    "bad-tagged-value": (lambda: b"datasets: !!int abc\n", "not valid YAML: invalid literal for int()"),
}


@pytest.fixture(params=sorted(HOSTILE_FILES))
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    make, reason = HOSTILE_FILES[request.param]
    path = tmp_path / f"{request.param}.yaml"
    path.write_bytes(make())
    return path, reason


def test_pathological_yaml_is_one_registry_error_naming_the_file(hostile: tuple[Path, str]) -> None:
    path, reason = hostile
    with pytest.raises(RegistryError) as info:
        load_registry_file(path)
    (problem,) = info.value.problems
    assert reason in problem and "\n" not in problem
    assert str(info.value).startswith(f"{path}: invalid registry: {problem}")


def test_pathological_yaml_through_medcat_list_is_one_error_line_without_traceback(
    hostile: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, reason = hostile
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    result = CliRunner().invoke(main, ["list"])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1
    error_line, *rest = result.stderr.splitlines()
    assert error_line.startswith(f"error: {path}: invalid registry: ") and reason in error_line
    assert rest == ["Fix the entry, then check it with `medcat registry validate FILE`."]
    assert "Traceback" not in result.output


def test_deep_nesting_in_a_real_process_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    """A real ``medcat list`` process: a RecursionError would print a traceback to stderr."""
    path = tmp_path / "deep.yaml"
    path.write_bytes(_deep_nesting())
    env = {**os.environ, "MEDCAT_REGISTRY": str(path)}
    proc = subprocess.run(
        [sys.executable, "-m", "medcat_data", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[0].startswith(f"error: {path}: invalid registry: YAML nested deeper than 64")


def test_a_folder_named_as_registry_is_refused_as_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry_file(tmp_path)
    assert info.value.problems == ["not a regular file"]


def test_many_invalid_entries_are_summarized_not_all_printed() -> None:
    entries = [valid_entry(id=f"entry-{i:03d}", access="members-only") for i in range(200)]
    with pytest.raises(RegistryError) as info:
        parse_registry_text(registry_yaml(*entries), "user.yaml")
    problems = info.value.problems
    assert len(problems) == 51 and problems[-1] == "... and 150 more problems"


def test_a_huge_invalid_value_is_shortened_in_the_message() -> None:
    (problem,) = _problems(valid_entry(access="x" * 100_000))
    assert len(problem) < 400 and problem.endswith("...")


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Wrap the parse function so a test can see which files were parsed (origins, in order)."""
    parsed: list[str] = []
    real = registry.parse_registry_text

    def counting(text: str, origin: str) -> list[Any]:
        parsed.append(origin)
        return real(text, origin)

    monkeypatch.setattr(registry, "parse_registry_text", counting)
    return parsed


def _write(path: Path, hours_old: int, **changes: Any) -> None:
    """Write a registry file; ``hours_old`` > 0 backdates its mtime (judged by stat alone)."""
    path.write_text(registry_yaml(valid_entry(**changes)))
    if hours_old:
        stamp = path.stat().st_mtime_ns - hours_old * 3600 * 10**9
        os.utime(path, ns=(stamp, stamp))


@pytest.mark.parametrize("hours_old", [0, 1], ids=["just-written", "an-hour-old"])
def test_an_unchanged_registry_file_is_parsed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hours_old: int
) -> None:
    path = tmp_path / "mine.yaml"
    _write(path, hours_old)
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    parsed = _count_parses(monkeypatch)
    for _ in range(3):
        assert load_registry().get(ID).name == "My Hospital CXR"
        assert [e.id for e in load_registry_file(path)] == [ID]
    assert parsed.count(str(path)) == 1


@pytest.mark.parametrize("hours_old", [0, 1], ids=["same-size-rewrite-in-the-same-clock-tick", "an-hour-old"])
def test_a_modified_registry_file_is_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hours_old: int
) -> None:
    path = tmp_path / "mine.yaml"
    _write(path, hours_old)
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    parsed = _count_parses(monkeypatch)
    assert load_registry().get(ID).name == "My Hospital CXR"
    # Same size; rewritten at once the mtime may not move at all, backdated it moves by a second.
    _write(path, hours_old, name="My Hospital CXS")
    if hours_old:
        os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    assert load_registry().get(ID).name == "My Hospital CXS"
    assert [e.name for e in load_registry_file(path)] == ["My Hospital CXS"]
    assert parsed.count(str(path)) == 2
