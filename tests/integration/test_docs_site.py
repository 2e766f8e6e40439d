"""The catalog site and its Markdown mirror: built from the registry, linked, current, and usable in a real browser.

The browser is Debian's Chromium driven headless through Playwright (its own browser download is not
reachable here). Pages are opened from ``file://``; every request the browser makes is recorded and
any non-file request is aborted and fails the test, so "no network at view time" is checked, not
assumed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import mlcroissant as mlc
import pytest
from click.testing import CliRunner

from medcat_data.catalog.croissant import croissant_metadata, croissant_text
from medcat_data.catalog.registry import load_registry, merge, parse_registry_text, shipped_registry_path
from medcat_data.catalog.site import build
from medcat_data.catalog.site.model import index_rows
from medcat_data.cli import main
from tests.unit.catalog.entries import registry_yaml, valid_entry

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NO_EXTRA_REGISTRY = {"MEDCAT_REGISTRY": ""}


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env or NO_EXTRA_REGISTRY)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = _invoke("docs", "build", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def _html_files(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


class _Links(HTMLParser):
    """Collect link targets (href/src) and element ids of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()
        self.ld_json: list[str] = []
        self._in_ld = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        for attr in ("href", "src"):
            if values.get(attr):
                self.targets.append(str(values[attr]))
        self._in_ld = tag == "script" and values.get("type") == "application/ld+json"
        if self._in_ld:
            self.ld_json.append("")

    def handle_data(self, data: str) -> None:
        if self._in_ld:
            self.ld_json[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_ld = False


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_site_has_a_page_and_a_croissant_file_for_every_entry(site: Path) -> None:
    for entry in load_registry():
        assert (site / "datasets" / f"{entry.id}.html").is_file(), entry.id
        assert (site / "croissant" / f"{entry.id}.json").is_file(), entry.id
    assert {p.name for p in site.iterdir()} >= {"index.html", "schemas.html", "labels.html", "static", "datasets", "croissant"}


def test_every_internal_link_and_anchor_resolves(site: Path) -> None:
    ids = {path: _parse(path).ids for path in _html_files(site)}
    broken = []
    for page in _html_files(site):
        for target in _parse(page).targets:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc:
                assert parts.scheme in ("http", "https"), f"{page.name}: unexpected link {target}"
                continue
            dest = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not dest.is_file():
                broken.append(f"{page.relative_to(site)} -> {target}")
            elif parts.fragment and dest.suffix == ".html" and parts.fragment not in ids[dest]:
                broken.append(f"{page.relative_to(site)} -> {target} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_pages_reference_nothing_outside_the_site_folder(site: Path) -> None:
    for page in _html_files(site):
        for target in _parse(page).targets:
            parts = urlsplit(target)
            if not (parts.scheme or parts.netloc) and parts.path:
                assert (page.parent / parts.path).resolve().is_relative_to(site.resolve()), target
        text = page.read_text(encoding="utf-8")
        assert "<link rel=\"stylesheet\" href=\"http" not in text and "<script src=\"http" not in text


def test_index_holds_the_full_table_without_javascript(site: Path) -> None:
    text = (site / "index.html").read_text(encoding="utf-8")
    ids = [line.split('data-id="')[1].split('"')[0] for line in text.splitlines() if line.startswith("<tr data-id=")]
    assert ids == load_registry().ids
    assert '<form id="filters" class="filters" hidden>' in text
    template_row = next(line for line in text.split("<tr ") if 'data-id="physionet"' in line)
    assert "template" in template_row


def test_dataset_page_embeds_its_croissant_file_and_shows_commands(site: Path) -> None:
    page = _parse(site / "datasets" / "vindr-mammo.html")
    (embedded,) = page.ld_json
    file_text = (site / "croissant" / "vindr-mammo.json").read_text(encoding="utf-8")
    assert json.loads(embedded) == json.loads(file_text)
    assert file_text == croissant_text(croissant_metadata(load_registry().get("vindr-mammo")))
    html = (site / "datasets" / "vindr-mammo.html").read_text(encoding="utf-8")
    for command in ("medcat fetch vindr-mammo --accept-license", "medcat verify vindr-mammo", "medcat normalize vindr-mammo --out data/ --config findings"):
        assert command in html
    assert "physionet:SLUG@VERSION" in (site / "datasets" / "physionet.html").read_text(encoding="utf-8")


def test_every_generated_croissant_file_validates_with_mlcroissant(site: Path) -> None:
    files = sorted((site / "croissant").glob("*.json"))
    assert len(files) == len(load_registry())
    for path in files:
        dataset = mlc.Dataset(jsonld=path)
        assert not dataset.metadata.ctx.issues.errors, path.name


def test_build_is_deterministic_and_cleans_its_own_folder(site: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert _invoke("docs", "build", "--out", str(again)).exit_code == 0
    first = {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    second = {p.relative_to(again).as_posix(): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first == second
    (again / "datasets" / "retired.html").write_text("old", encoding="utf-8")
    assert _invoke("docs", "build", "--out", str(again)).exit_code == 0
    assert not (again / "datasets" / "retired.html").exists()


def test_build_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    result = _invoke("docs", "build", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "not made by `medcat docs build`" in result.output
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


# --- the Markdown mirror --------------------------------------------------------------------------


def test_committed_markdown_mirror_is_current() -> None:
    result = _invoke("docs", "build", "--check")
    assert result.exit_code == 0, result.output


def test_check_fails_after_a_registry_edit_adds_an_entry(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(registry_yaml(valid_entry(id="new-hospital-set")), encoding="utf-8")
    result = _invoke("docs", "build", "--check", env={"MEDCAT_REGISTRY": str(extra)})
    assert result.exit_code == 1
    assert "missing: datasets/new-hospital-set.md" in result.output
    assert "missing: croissant/new-hospital-set.json" in result.output
    assert "stale: README.md" in result.output
    assert "Regenerate them with `medcat docs build`" in result.output


def test_check_fails_after_a_shipped_entry_changes() -> None:
    text = shipped_registry_path().read_text(encoding="utf-8")
    edited = text.replace("name: VinDr-Mammo\n", "name: VinDr-Mammo (edited)\n", 1)
    assert edited != text, "the shipped registry names VinDr-Mammo on one line"
    registry = merge([("<edited copy>", parse_registry_text(edited, "<edited copy>"))])
    diff = build.check_mirror(build.default_markdown_dir(), build.collect(registry))
    assert not diff.ok
    assert "datasets/vindr-mammo.md" in diff.stale and "README.md" in diff.stale


def test_markdown_dir_is_written_then_current_and_extra_pages_removed(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    assert _invoke("docs", "build", "--markdown-dir", str(folder)).exit_code == 0
    assert (folder / "README.md").is_file() and (folder / "schemas.md").is_file()
    (folder / "datasets" / "retired.md").write_text("old", encoding="utf-8")
    (folder / "notes.txt").write_text("kept", encoding="utf-8")
    result = _invoke("docs", "build", "--check", "--markdown-dir", str(folder))
    assert result.exit_code == 1 and "extra: datasets/retired.md" in result.output
    assert _invoke("docs", "build", "--markdown-dir", str(folder)).exit_code == 0
    assert not (folder / "datasets" / "retired.md").exists() and (folder / "notes.txt").exists()
    assert _invoke("docs", "build", "--check", "--markdown-dir", str(folder)).exit_code == 0


def test_markdown_mirror_and_site_say_the_same_commands(site: Path) -> None:
    mirror = build.mirror_files(build.collect())
    for entry in load_registry():
        page = mirror[f"datasets/{entry.id}.md"]
        html = (site / "datasets" / f"{entry.id}.html").read_text(encoding="utf-8")
        for line in page.splitlines():
            if line.startswith("| ") and "`medcat " in line:
                command = line.split("`")[1]
                assert command.replace("<", "&lt;").replace(">", "&gt;") in html, (entry.id, command)
        assert mirror[f"croissant/{entry.id}.json"] == (site / "croissant" / f"{entry.id}.json").read_text(encoding="utf-8")


# --- a real browser -------------------------------------------------------------------------------


def _chromium() -> str:
    """Return the Chromium executable; fail (never skip) when it is missing, saying how CI gets it."""
    found = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if found is None:
        pytest.fail(
            "Chromium is not installed: the catalog site tests drive Debian's `chromium` headless. "
            "`.ci/run` installs it (apt-get install chromium); install it the same way to run these tests."
        )
    return found


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """One Playwright driver for the module (the sync API allows one at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


def _launch(playwright: Any, profile: Path, **options: Any) -> Any:
    """Launch Debian's Chromium headless with a fresh profile and the no-phoning-home flags."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS, **options
    )


@pytest.fixture(scope="module")
def browser(playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium context that records every request and aborts any that is not a file:// one."""
    context = _launch(playwright, tmp_path_factory.mktemp("chromium-profile"), viewport={"width": 1200, "height": 900})
    context.requests = []

    def _route(route: Any) -> None:
        context.requests.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", _route)
    try:
        yield context
    finally:
        context.close()


def _visible_ids(page: Any) -> list[str]:
    return page.locator("#datasets tbody tr:visible").evaluate_all("rows => rows.map(r => r.dataset.id)")


def _expected_search(term: str) -> list[str]:
    words = term.lower().split()
    return [r.summary["id"] for r in index_rows(load_registry()) if all(w in r.search_text for w in words)]


def test_index_filters_search_and_dataset_page_work_in_chromium_without_network(site: Path, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((site / "index.html").as_uri())
    assert page.locator("#filters").is_visible()
    assert _visible_ids(page) == load_registry().ids

    page.select_option("#filter-modality", "mammography")
    assert sorted(_visible_ids(page)) == ["cbis-ddsm", "vindr-mammo"]
    assert page.locator("#shown").inner_text() == f"2 of {len(load_registry())} shown"

    page.select_option("#filter-access", "restricted")  # PhysioNet lists VinDr-Mammo as Restricted Access
    assert _visible_ids(page) == ["vindr-mammo"]
    page.click("#clear")
    # Playwright's expect polls through its own engine; wait_for_function would eval a string,
    # which the page's CSP (script-src 'self') refuses whenever the first check is not yet true.
    expect(page.locator("#datasets tbody tr:not([hidden])")).to_have_count(len(load_registry()))

    page.fill("#search", "chest x-ray")
    expected = _expected_search("chest x-ray")
    assert expected and _visible_ids(page) == expected
    page.fill("#search", "no-such-dataset-anywhere")
    assert _visible_ids(page) == [] and page.locator("#no-match").is_visible()
    page.fill("#search", "mammo")
    page.click("#datasets a[href='datasets/vindr-mammo.html']")
    page.wait_for_load_state("load")
    assert page.title().startswith("VinDr-Mammo")
    assert page.locator("h1").inner_text() == "VinDr-Mammo"
    page.click("button[data-copy='bibtex']")
    expect(page.locator("#copy-status")).not_to_have_text("")

    shot = tmp_path / "vindr-mammo.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    page.close()

    assert not errors, errors
    assert browser.requests, "the request recorder saw nothing"
    off_disk = [url for url in browser.requests if not url.startswith("file://")]
    assert not off_disk, f"the site reached the network: {off_disk}"


def test_filter_state_in_the_address_restores_the_selection(site: Path, browser: Any) -> None:
    page = browser.new_page()
    page.goto((site / "index.html").as_uri() + "#modality=mammography&q=cbis")
    assert _visible_ids(page) == ["cbis-ddsm"]
    assert page.locator("#search").input_value() == "cbis"
    page.close()


def test_the_request_recorder_catches_network_requests(browser: Any) -> None:
    """Guard the guard: a page that does fetch off-disk is seen and aborted (port 9 on loopback, discard)."""
    before = len(browser.requests)
    page = browser.new_page()
    page.goto("about:blank")
    page.evaluate("fetch('http://127.0.0.1:9/probe').catch(() => null)")
    page.wait_for_timeout(200)
    page.close()
    assert "http://127.0.0.1:9/probe" in browser.requests[before:]


def test_site_is_complete_with_javascript_disabled(site: Path, playwright: Any, tmp_path: Path) -> None:
    context = _launch(playwright, tmp_path / "profile", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto((site / "index.html").as_uri())
        assert _visible_ids(page) == load_registry().ids
        assert not page.locator("#filters").is_visible()
        page.goto((site / "datasets" / "cbis-ddsm.html").as_uri())
        assert "medcat fetch cbis-ddsm --source kaggle" in page.locator("#commands + table").inner_text()
        assert page.locator("button.copy").count() > 1 and not page.locator("button.copy:visible").count()
    finally:
        context.close()


# --- choosing a dataset: load snippets, the real files, narrow screens --------------------------


def _snippet(folder: str, config: str) -> str:
    return f'import datasets\nds = datasets.load_dataset("{folder}", "{config}")'


def test_every_config_shows_the_normalize_command_and_its_load_snippet(site: Path) -> None:
    for entry in load_registry():
        if entry.template:
            continue
        html = (site / "datasets" / f"{entry.id}.html").read_text(encoding="utf-8")
        for cfg in entry.configs:
            section = html.split(f'id="config-{cfg.name}"')[1].split("</section>")[0]
            assert f'id="load-{cfg.name}"' in section and 'data-copy="load-' + cfg.name + '"' in section
            if cfg.task.value == "tabular":
                assert f'datasets.get_dataset_config_names(&#34;data/{entry.id}&#34;)' in section
            else:
                assert _snippet(f"data/{entry.id}", cfg.name).replace('"', "&#34;") in section, (entry.id, cfg.name)
                assert f"medcat normalize {entry.id} --out data/ --config {cfg.name}" in section


def test_real_upstream_files_come_before_the_replica_tree(site: Path) -> None:
    html = (site / "datasets" / "precisionfda-truth-v2.html").read_text(encoding="utf-8")
    assert html.index('id="upstream-tree"') < html.index('id="replica-tree"')
    real = html.split('id="upstream-tree"')[1].split('id="replica-tree"')[0]
    entry = load_registry().get("precisionfda-truth-v2")
    for source in entry.sources:
        assert f"<code>{source.name}</code>" in real
        for pinned in getattr(source, "files", []):
            assert pinned.path.rsplit("/", 1)[-1] in real, pinned.path
    physionet = (site / "datasets" / "vindr-mammo.html").read_text(encoding="utf-8").split('id="upstream-tree"')[1]
    assert "https://physionet.org/files/vindr-mammo/1.0.0/" in physionet.split('id="replica-tree"')[0]


def test_load_snippet_is_copied_from_the_page_in_chromium(site: Path, playwright: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = _launch(playwright, tmp_path / "profile", viewport={"width": 420, "height": 900})
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto((site / "datasets" / "vqa-rad.html").as_uri())
        assert page.locator("#load-vqa").inner_text() == _snippet("data/vqa-rad", "vqa")
        page.click("button[data-copy='load-vqa']")
        expect(page.locator("#copy-status-vqa")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == _snippet("data/vqa-rad", "vqa")
        assert page.locator("#copy-status").inner_text() == ""
    finally:
        context.close()


def test_every_page_fits_a_420_px_screen_without_sideways_scrolling(site: Path, playwright: Any, tmp_path: Path) -> None:
    """A phone-sized viewport: the page never scrolls sideways and no table runs past its edge."""
    context = _launch(playwright, tmp_path / "profile", viewport={"width": 420, "height": 900})
    overflowing = []
    try:
        page = context.new_page()
        for path in _html_files(site):
            page.goto(path.as_uri())
            width, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            tables = page.locator("table").evaluate_all(
                "ts => ts.filter(t => t.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5"
                " || t.scrollWidth > t.clientWidth + 1).length"
            )
            if width > client or tables:
                overflowing.append(f"{path.relative_to(site)}: page {width}px in {client}px, {tables} table(s) overflow")
        assert page.locator("table").count() > 0
    finally:
        context.close()
    assert not overflowing, "\n".join(overflowing)


def test_config_sections_show_the_real_split_counts_where_the_registry_has_them() -> None:
    """VinDr-Mammo's page gives its 16,000 / 4,000 images; a config without published counts says nothing."""
    from medcat_data.catalog.site.model import dataset_page

    registry = load_registry()
    vindr = {c.name: c for c in dataset_page(registry.get("vindr-mammo"), registry).configs}
    assert "the real data: train 16,000, test 4,000, counting images" in vindr["birads"].splits
    vqa_rad = dataset_page(registry.get("vqa-rad"), registry).configs[0]
    assert "the real data" not in vqa_rad.splits
