"""Parse and resolve dataset references, the one grammar every command accepts.

``ID[@VERSION]`` names a registry entry; ``physionet:SLUG[@VERSION]`` any PhysioNet project;
``hf:OWNER/NAME[@REVISION]`` any Hugging Face dataset repository; ``kaggle:OWNER/SLUG`` any Kaggle
dataset. Resolution never touches the network: what cannot be known offline is left open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from medcat_data.catalog.registry import Registry
from medcat_data.catalog.schema import (
    Access,
    AccessInfo,
    Entry,
    HuggingFaceSource,
    KaggleSource,
    License,
    PhysioNetSource,
    Size,
    Version,
)
from medcat_data.errors import InvalidReferenceError, UsageError

Scheme = Literal["registry", "physionet", "hf", "kaggle"]

_ID = r"[a-z0-9][a-z0-9-]*[a-z0-9]"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "registry": re.compile(rf"^(?P<name>{_ID})(?:@(?P<version>[\w.+-]+))?$"),
    "physionet": re.compile(r"^(?P<name>[\w-]+)(?:@(?P<version>[\d.]+))?$"),
    "hf": re.compile(r"^(?P<name>[\w.-]+/[\w.-]+)(?:@(?P<version>[\w./-]+))?$"),
    "kaggle": re.compile(r"^(?P<name>[\w.-]+/[\w.-]+)(?:@(?P<version>\d+))?$"),
}
_GRAMMAR = (
    "use ID[@VERSION] for a registry entry, physionet:SLUG[@VERSION], "
    "hf:OWNER/NAME[@REVISION] or kaggle:OWNER/SLUG"
)
LATEST = "latest"
HF_DEFAULT_REVISION = "main"


@dataclass(frozen=True)
class DatasetRef:
    """A parsed reference; ``version`` is None when the user gave none."""

    scheme: Scheme
    name: str
    version: str | None
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ResolvedDataset:
    """A reference bound to an entry and a concrete version (``latest`` when unknowable offline)."""

    ref: DatasetRef
    entry: Entry
    version: str

    @property
    def dataset_id(self) -> str:
        return self.entry.id


def parse_ref(text: str) -> DatasetRef:
    """Parse a reference string.

    Raises:
        InvalidReferenceError: the text follows none of the forms.
    """
    raw = text.strip()
    scheme: Scheme = "registry"
    body = raw
    if ":" in raw:
        prefix, _, body = raw.partition(":")
        if prefix not in {"physionet", "hf", "kaggle"}:
            raise InvalidReferenceError(f"unknown reference scheme {prefix!r} in {raw!r}: {_GRAMMAR}.")
        scheme = prefix  # type: ignore[assignment]
    match = _PATTERNS[scheme].match(body)
    if not match:
        raise InvalidReferenceError(f"cannot read dataset reference {raw!r}: {_GRAMMAR}.")
    # Names and versions become cache folders (raw/<id>/<version>): '.' and '..' would leave them.
    if any(part in {".", ".."} for part in f"{match['name']}/{match['version'] or ''}".split("/")):
        raise InvalidReferenceError(f"cannot read dataset reference {raw!r}: '.' and '..' are not names. {_GRAMMAR}.")
    return DatasetRef(scheme, match["name"], match["version"], raw)


def resolve(ref: DatasetRef | str, registry: Registry) -> ResolvedDataset:
    """Bind a reference to a registry entry (or a synthesized one for physionet:/hf:/kaggle:).

    Raises:
        UnknownDatasetError: a registry id that does not exist.
        UsageError: a version the entry does not have.
    """
    if isinstance(ref, str):
        ref = parse_ref(ref)
    if ref.scheme == "registry":
        entry = registry.get(ref.name)
        if entry.template:
            raise UsageError(
                f"{entry.id!r} is a template for any project; name one, e.g. "
                f"`{entry.id}:ptb-xl@1.0.3`."
            )
        return ResolvedDataset(ref, entry, _pick_version(entry, ref.version))
    if ref.scheme == "physionet":
        known = _registry_entry_for_physionet(ref.name, registry)
        if known is not None:
            return ResolvedDataset(ref, known, _pick_version(known, ref.version))
        entry = physionet_entry(ref.name, ref.version, registry)
        return ResolvedDataset(ref, entry, ref.version or LATEST)
    if ref.scheme == "hf":
        return ResolvedDataset(ref, hf_entry(ref.name, ref.version), ref.version or HF_DEFAULT_REVISION)
    return ResolvedDataset(ref, kaggle_entry(ref.name, ref.version), ref.version or LATEST)


def _pick_version(entry: Entry, version: str | None) -> str:
    if version is None:
        return entry.default_version
    known = [v.version for v in entry.versions]
    if version not in known:
        raise UsageError(
            f"{entry.id} has no version {version!r}; known versions: {', '.join(known)}."
        )
    return version


def _registry_entry_for_physionet(slug: str, registry: Registry) -> Entry | None:
    for entry in registry:
        if entry.template:
            continue
        main = entry.main_sources[0]
        if isinstance(main, PhysioNetSource) and main.slug == slug:
            return entry
    return None


def physionet_entry(slug: str, version: str | None, registry: Registry) -> Entry:
    """Build the entry for any PhysioNet project from the registry's ``physionet`` template."""
    template = registry.get("physionet")
    src = template.main_sources[0]
    assert isinstance(src, PhysioNetSource), "the physionet template must have a physionet source"
    ver = version or LATEST
    return template.model_copy(
        update={
            "id": f"physionet-{slug}",
            "name": f"PhysioNet project {slug}",
            "homepage": f"https://physionet.org/content/{slug}/" + (f"{version}/" if version else ""),
            "versions": [Version(version=ver)],
            "default_version": ver,
            "sources": [src.model_copy(update={"slug": slug, "version": version})],
            "template": False,
            "template_of": template.id,
        }
    )


def hf_entry(repo_id: str, revision: str | None) -> Entry:
    """Describe an arbitrary Hugging Face dataset repository from its id alone."""
    rev = revision or HF_DEFAULT_REVISION
    return Entry(
        id="hf-" + _slugify(repo_id),
        name=repo_id,
        description=(
            f"The Hugging Face dataset repository {repo_id}, fetched through huggingface_hub at "
            f"revision {rev}. Its card, licence and gating are on the Hub page; medcat knows "
            "nothing more about it offline."
        ),
        homepage=f"https://huggingface.co/datasets/{repo_id}",
        modalities=["text"],
        tasks=["tabular"],  # type: ignore[list-item]
        access=Access.OPEN,
        access_info=AccessInfo(
            steps=[
                "Public repositories need nothing.",
                "Gated repositories: accept the terms on the Hub page, then provide a token "
                "(HF_TOKEN or `hf auth login`).",
            ],
            credentials=["HF_TOKEN", "~/.cache/huggingface/token"],
        ),
        license=License(name="see the dataset card", url=f"https://huggingface.co/datasets/{repo_id}", confirmed=False),
        citation=f"@misc{{{_slugify(repo_id)},\n  title = {{{repo_id}}},\n  howpublished = {{\\url{{https://huggingface.co/datasets/{repo_id}}}}}\n}}",
        versions=[Version(version=rev)],
        default_version=rev,
        size=Size(),
        sources=[HuggingFaceSource(kind="hf", name="hf", repo_id=repo_id, revision=rev)],
    )


def kaggle_entry(owner_slug: str, version: str | None) -> Entry:
    """Describe an arbitrary Kaggle dataset from its owner/slug alone."""
    owner, slug = owner_slug.split("/", 1)
    ver = version or LATEST
    return Entry(
        id="kaggle-" + _slugify(owner_slug),
        name=owner_slug,
        description=(
            f"The Kaggle dataset {owner_slug}, downloaded as one zip through the Kaggle API and "
            "extracted safely. Its licence and description are on the Kaggle page."
        ),
        homepage=f"https://www.kaggle.com/datasets/{owner_slug}",
        modalities=["text"],
        tasks=["tabular"],  # type: ignore[list-item]
        access=Access.REGISTRATION,
        access_info=AccessInfo(
            steps=[
                "Create a Kaggle account and an API token (Settings > API > Create New Token).",
                "Save it as ~/.kaggle/kaggle.json or set KAGGLE_USERNAME and KAGGLE_KEY.",
            ],
            credentials=["KAGGLE_USERNAME", "KAGGLE_KEY", "~/.kaggle/kaggle.json"],
        ),
        license=License(name="see the Kaggle page", url=f"https://www.kaggle.com/datasets/{owner_slug}", confirmed=False),
        citation=f"@misc{{{_slugify(owner_slug)},\n  title = {{{owner_slug}}},\n  howpublished = {{\\url{{https://www.kaggle.com/datasets/{owner_slug}}}}}\n}}",
        versions=[Version(version=ver)],
        default_version=ver,
        size=Size(),
        sources=[
            KaggleSource(
                kind="kaggle",
                name="kaggle",
                owner=owner,
                slug=slug,
                dataset_version=int(version) if version else None,
            )
        ],
    )


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
