"""Typed model of a registry entry: the trust boundary between YAML and the rest of medcat.

Holds data only. Loading, merging and error wording live in ``registry.py``; what a source kind
*does* lives in ``loaders/transports/``. Every source is described by kind + coordinates so the
fetch engine needs no per-dataset code.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from medcat_data.errors import UnknownSourceError

ID_PATTERN = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"


class Access(str, Enum):
    """How a user obtains the files, from least to most effort.

    The tiers follow the hosts' own: PhysioNet's "Open Access" is ``open``, its "Restricted Access"
    (an account and a signed data use agreement) is ``restricted``, and its "Credentialed Access"
    (credentialing review, human-subjects training and a data use agreement) is ``credentialed``.
    """

    OPEN = "open"
    REGISTRATION = "registration"
    GATED = "gated"
    RESTRICTED = "restricted"
    CREDENTIALED = "credentialed"


class Task(str, Enum):
    """The unified task schemas of DESIGN.md; every normalized config uses exactly one."""

    IMAGE_CLASSIFICATION = "image-classification"
    OBJECT_DETECTION = "object-detection"
    REPORT_GENERATION = "report-generation"
    VQA = "vqa"
    TEXT_QA = "text-qa"
    IMAGE_TEXT = "image-text"
    VARIANT_CALLING = "variant-calling"
    TABULAR = "tabular"


Modality = Literal[
    "chest-x-ray",
    "mammography",
    "dermoscopy",
    "clinical-photography",
    "radiology",
    "ct",
    "mri",
    "ultrasound",
    "histopathology",
    "microscopy",
    "biomedical-figures",
    "text",
    "ehr",
    "ecg",
    "physiological-signals",
    "genomics",
]
"""Closed vocabulary of modalities; extend here (and in the docs) when a dataset needs a new one."""

Split = Literal["train", "validation", "test"]
HashAlgorithm = Literal["sha256", "md5", "sha1"]

URL_SCHEMES = ("http", "https")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_http_url(value: str) -> str:
    """Accept an absolute ``http``/``https`` URL with a host; refuse every other scheme.

    A registry names upstream servers only: ``file:`` would let an entry read local files, and other
    schemes are not transports medcat has. Local copies are read with ``--mirror file://DIR``.
    """
    if _CONTROL.search(value) or "\\" in value or " " in value:
        raise ValueError("expected an http(s) URL without spaces, control characters or backslashes")
    scheme = urlsplit(value).scheme.lower()
    if scheme not in URL_SCHEMES:
        what = f"scheme {scheme!r}" if scheme else "a URL without a scheme"
        raise ValueError(
            f"expected an http(s) URL; {what} is refused in registry files "
            "(read local copies with --mirror file://DIR)"
        )
    if not urlsplit(value).hostname:
        raise ValueError("expected an http(s) URL with a host name")
    return value


def check_relative_path(value: str) -> str:
    """Accept a relative POSIX path that stays inside the dataset folder (``*`` globs allowed).

    Refused: absolute paths (``/x``, ``C:...``), backslashes, ``..`` segments and control characters
    (NUL included). The fetch engine checks every path again where it writes; this check names the
    entry and field before anything runs.
    """
    if _CONTROL.search(value):
        raise ValueError("control characters (NUL, newline...) are not allowed in a path")
    if "\\" in value:
        raise ValueError("backslashes are not allowed in a path; separate folders with '/'")
    if value.startswith("/") or _DRIVE.match(value):
        raise ValueError("expected a path relative to the dataset folder, not an absolute path")
    if ".." in value.split("/"):
        raise ValueError("'..' segments are not allowed; the path must stay inside the dataset folder")
    return value


def check_name(value: str) -> str:
    """Accept one path segment (an id medcat puts in a URL path or a local mirror path)."""
    check_relative_path(value)
    if not value or "/" in value or value == ".":
        raise ValueError("expected a single name, without '/'")
    return value


def _check_url_base(value: str) -> str:
    return check_http_url(value) if value else value


HttpUrl = Annotated[
    str,
    AfterValidator(check_http_url),
    WithJsonSchema({"type": "string", "format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}),
]
"""An absolute http(s) URL; the only kind of URL a registry may hold."""

RelativePath = Annotated[str, AfterValidator(check_relative_path)]
"""A path (or glob) inside the dataset folder: no absolute paths, backslashes, ``..`` or NUL."""

Name = Annotated[str, AfterValidator(check_name)]
"""A single path segment: no ``/``, backslash, ``.`` or ``..``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Size(_Model):
    """Approximate size of the upstream data; ``approximate`` names the figures that are estimates."""

    bytes: int | None = Field(default=None, ge=0, description="Total bytes of the upstream files.")
    files: int | None = Field(default=None, ge=0, description="Number of upstream files.")
    samples: int | None = Field(default=None, ge=0, description="Number of samples (images, QA pairs, records).")
    approximate: list[Literal["bytes", "files", "samples"]] = Field(
        default_factory=list,
        description="Which of bytes/files/samples are estimates or unconfirmed.",
    )
    note: str | None = None


class License(_Model):
    """Licence of the data: an SPDX id where one exists, else a name and URL."""

    spdx: str | None = Field(default=None, description="SPDX identifier, e.g. CC-BY-4.0.")
    name: str = Field(description="Human-readable licence name.")
    url: HttpUrl | None = None
    confirmed: bool = Field(default=True, description="False when the licence is not confirmed upstream.")
    note: str | None = None

    @property
    def short(self) -> str:
        """Return the SPDX id, or the name when no SPDX id exists."""
        return self.spdx or self.name


class AccessInfo(_Model):
    """Human steps to obtain access, shown by ``medcat info`` and on the catalog page."""

    steps: list[str] = Field(min_length=1)
    dua_url: HttpUrl | None = None
    credentials: list[str] = Field(
        default_factory=list,
        description="Where medcat reads credentials for this dataset (env vars, files).",
    )


class Version(_Model):
    version: RelativePath = Field(min_length=1, description="Also the cache folder name: $MEDCAT_HOME/raw/<id>/<version>.")
    date: str | None = Field(default=None, description="Release date, YYYY-MM-DD.")
    doi: str | None = None
    notes: str | None = None


class PinnedFile(_Model):
    """One file of a URL list, with the hash upstream publishes (absent when it publishes none)."""

    url: HttpUrl
    path: RelativePath = Field(min_length=1, description="Relative destination path inside the dataset cache.")
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = None
    md5: str | None = None
    extract: bool = Field(default=False, description="Extract the archive after verification.")

    @field_validator("sha256")
    @classmethod
    def _sha256_hex(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("expected 64 lowercase hex characters")
        return v

    @field_validator("md5")
    @classmethod
    def _md5_hex(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9a-f]{32}", v):
            raise ValueError("expected 32 lowercase hex characters")
        return v


class ChecksumFile(_Model):
    """A checksum list published beside the files (``*.md5``, GIAB md5 lists, ``SHA256SUMS.txt``), or
    a Zenodo record's JSON (``https://zenodo.org/api/records/<id>``), whose ``files[]`` carry each
    file's key, size and ``md5:<hex>`` checksum."""

    url: HttpUrl
    algorithm: HashAlgorithm
    format: Literal["sha256sums", "md5sum", "giab-md5s", "zenodo-record"] = Field(
        default="md5sum", description="zenodo-record: the url is a Zenodo record API URL (algorithm md5)."
    )
    base: Annotated[str, AfterValidator(_check_url_base)] = Field(
        default="",
        description=(
            "URL prefix joined to the paths listed in the file (http(s)); empty = the list's own URL, "
            "or for zenodo-record the record's https://<host>/records/<id>/files/."
        ),
    )

    @model_validator(mode="after")
    def _zenodo_is_md5(self) -> ChecksumFile:
        if self.format == "zenodo-record" and self.algorithm != "md5":
            raise ValueError(f"format zenodo-record publishes md5 checksums: expected algorithm md5, got {self.algorithm}")
        return self


class FileIndex(_Model):
    """A file listing the upstream files when the checksum file does not cover them."""

    path: RelativePath = Field(min_length=1, description="Relative path of the index file (fetched first).")
    column: str | None = Field(default=None, description="CSV column holding relative paths; None = one path per line.")
    magic: str | None = Field(default=None, description="Expected leading bytes, hex, checked on trust-on-first-use files.")
    magic_offset: int = 0


class _SourceBase(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Unique within the entry; `--source NAME`.")
    description: str | None = None
    subdir: RelativePath = Field(default="", description="Sub-folder of the dataset cache this source writes to.")
    companion: bool = Field(
        default=False,
        description="Fetched together with whichever main source is chosen (e.g. label files from a sibling project).",
    )
    include: list[RelativePath] = Field(default_factory=list, description="Glob patterns limiting the files of this source.")
    default_fetch: bool = Field(default=True, description="False: declared but only fetched with --source or --only.")


class PhysioNetSource(_SourceBase):
    """A PhysioNet project: ``https://physionet.org/files/<slug>/<version>/``."""

    kind: Literal["physionet"]
    slug: str = Field(pattern=r"^([\w-]+|\{slug\})$")
    version: RelativePath | None = Field(default=None, description="Pinned version; None follows the entry version.")
    base_url: HttpUrl = "https://physionet.org"
    checksum_file: RelativePath | None = Field(default="SHA256SUMS.txt", description="File index and hash source.")
    file_index: FileIndex | None = Field(
        default=None, description="Used when the checksum file does not list the bulk files."
    )


class HuggingFaceSource(_SourceBase):
    """A Hugging Face Hub repository, fetched through ``huggingface_hub`` at a pinned revision."""

    kind: Literal["hf"]
    repo_id: str = Field(pattern=r"^([\w.-]+/[\w.-]+|\{repo_id\})$")
    repo_type: Literal["dataset", "model"] = "dataset"
    revision: str = Field(description="Commit sha or tag; a branch name is not reproducible.")
    allow_patterns: list[RelativePath] = Field(default_factory=list)


class KaggleSource(_SourceBase):
    """A Kaggle dataset: ``kaggle.com/api/v1/datasets/download/<owner>/<slug>``."""

    kind: Literal["kaggle"]
    owner: str
    slug: str
    dataset_version: int | None = None
    archive: RelativePath | None = Field(default=None, min_length=1, description="Name of the downloaded zip.")
    base_url: HttpUrl = "https://www.kaggle.com"


class UrlListSource(_SourceBase):
    """Plain HTTPS files (Mendeley Data, NCBI, Zenodo, GitHub releases) with hashes where published."""

    kind: Literal["urls"]
    files: list[PinnedFile] = Field(min_length=1)
    checksum_files: list[ChecksumFile] = Field(default_factory=list)


class GoogleDriveSource(_SourceBase):
    """A file that lives only on Google Drive (quota pages and the large-file interstitial handled)."""

    kind: Literal["gdrive"]
    file_id: Name
    filename: RelativePath = Field(min_length=1)
    magic: str | None = Field(default=None, description="Expected leading bytes as hex, e.g. 504b for zip.")
    extract: bool = True
    base_url: HttpUrl = "https://drive.google.com"


class OsfSource(_SourceBase):
    """An OSF project storage (files listed through the OSF API)."""

    kind: Literal["osf"]
    project: Name
    storage: Name = "osfstorage"
    base_url: HttpUrl = "https://api.osf.io"


class PmcFigureList(_Model):
    """The figures that records of a sibling source name (LLaVA-Med's image URL list): fetched alone, never whole articles."""

    source: str = Field(description="The sibling urls source whose files hold the list and the records.")
    url_list: RelativePath = Field(min_length=1, description="JSON Lines file of that source, one figure a line.")
    path_key: str = Field(default="image_file_path", description="Key of a list line holding PMC<id>/<figure file name>.")
    id_key: str = Field(default="pair_id", description="Key of a list line naming the record the figure serves.")
    records: list[RelativePath] = Field(
        default_factory=list,
        description="Record files of that source (JSON or JSON Lines) whose ids pick lines of the list; --only picks "
        "among them, --limit N keeps the first N records of each. Empty: every line of the list.",
    )
    record_keys: list[str] = Field(
        default_factory=lambda: ["id", "pair_id"],
        description="Keys naming a record's id; the first one a file uses is read.",
    )


class PmcSource(_SourceBase):
    """The PMC Open Access subset: per-article prefixes in the cloud bucket (legacy packages if served)."""

    kind: Literal["pmc"]
    bucket_url: HttpUrl = "https://pmc-oa-opendata.s3.amazonaws.com"
    legacy_url: HttpUrl | None = "https://ftp.ncbi.nlm.nih.gov/pub/pmc/deprecated"
    figures: PmcFigureList | None = Field(
        default=None, description="Fetch only the figures that another source's records name (and their metadata records)."
    )


class TciaSource(_SourceBase):
    """A TCIA collection: series through the NBIA REST API, plus direct-download CSVs."""

    kind: Literal["tcia"]
    collection: str
    api_url: HttpUrl = "https://services.cancerimagingarchive.net/nbia-api/services/v1"
    files: list[PinnedFile] = Field(default_factory=list)
    manifest_url: HttpUrl | None = None


_BUCKET_NAME = r"^(?:[a-z0-9._-]|\{version\}){3,222}$"


class _BucketSource(_SourceBase):
    """Objects under one prefix of a cloud bucket; paths in the cache are relative to the prefix."""

    bucket: str = Field(
        pattern=_BUCKET_NAME, description="Bucket name, without gs:// or s3://; {version} becomes the fetched version."
    )
    prefix: RelativePath = Field(
        default="", description="Key prefix (a folder), e.g. mimic-iv-demo/{version}/; {version} as in bucket."
    )
    anonymous: bool = Field(default=False, description="Read without credentials (public buckets).")
    checksum_file: RelativePath | None = Field(
        default=None,
        description="Checksum list under the prefix (PhysioNet SHA256SUMS.txt); else the store's md5 verifies.",
    )
    endpoint_url: HttpUrl | None = Field(
        default=None, description="Another endpoint speaking the same API (a mirror, a test server)."
    )


class GcsSource(_BucketSource):
    """A Google Cloud Storage bucket, read through gcsfs (``medcat-data[cloud]``)."""

    kind: Literal["gcs"]
    requester_pays: bool = Field(
        default=False,
        description="The downloader pays egress: fetch needs --option billing_project=PROJECT (never defaulted).",
    )


class S3Source(_BucketSource):
    """An S3 bucket, read through s3fs (``medcat-data[cloud]``)."""

    kind: Literal["s3"]
    region: str | None = Field(default=None, description="The bucket's region, e.g. us-east-1.")


Source = Annotated[
    Union[
        PhysioNetSource,
        HuggingFaceSource,
        KaggleSource,
        UrlListSource,
        GoogleDriveSource,
        OsfSource,
        PmcSource,
        TciaSource,
        GcsSource,
        S3Source,
    ],
    Field(discriminator="kind"),
]

SOURCE_KINDS = ("physionet", "hf", "kaggle", "urls", "gdrive", "osf", "pmc", "tcia", "gcs", "s3")


class NormalizedConfig(_Model):
    """One Hugging Face config that ``medcat normalize`` produces."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    task: Task
    splits: list[Split] = Field(min_length=1)
    description: str
    split_method: Literal["official", "grouped", "none"] = Field(
        default="official",
        description="official = upstream's split; grouped = seeded, patient-grouped; none = one train split.",
    )
    upstream_splits: dict[str, Split] = Field(
        default_factory=dict, description="Upstream split names mapped to ours, e.g. training -> train."
    )
    sources: list[str] = Field(default_factory=list, description="Sources this config is built from; empty = all.")
    split_counts: dict[Split, int] = Field(
        default_factory=dict,
        description="Rows per split of the real data (a full normalize), where upstream publishes them; never estimated.",
    )
    split_counts_note: str | None = Field(
        default=None, description="What one row is and where the counts come from (e.g. 'images; the authors' statistics')."
    )


class Entry(_Model):
    """One dataset of the catalog."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    description: str = Field(min_length=40)
    homepage: HttpUrl
    modalities: list[Modality] = Field(min_length=1)
    tasks: list[Task] = Field(min_length=1)
    access: Access
    access_info: AccessInfo
    license: License
    citation: str = Field(description="BibTeX, one or more entries.")
    versions: list[Version] = Field(min_length=1)
    default_version: str
    size: Size
    sources: list[Source] = Field(min_length=1)
    configs: list[NormalizedConfig] = Field(default_factory=list)
    template: bool = Field(
        default=False,
        description="A parametric entry (e.g. any PhysioNet project) resolved from a reference.",
    )
    template_of: str | None = Field(
        default=None,
        description="Set on an entry resolved from a template: the template's id, whose recipe normalizes it.",
    )
    tags: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Pitfalls and caveats users should know.")

    @field_validator("citation")
    @classmethod
    def _bibtex(cls, v: str) -> str:
        if not re.search(r"@\w+\s*\{", v):
            raise ValueError("expected BibTeX (e.g. '@article{key, ...}')")
        return v.strip() + "\n"

    @model_validator(mode="after")
    def _consistent(self) -> Entry:
        known = {v.version for v in self.versions}
        if self.default_version not in known:
            raise ValueError(
                f"default_version {self.default_version!r} is not one of the versions {sorted(known)}"
            )
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source names must be unique, repeated: {dup}")
        if all(s.companion for s in self.sources):
            raise ValueError("at least one source must not be a companion")
        cfg_names = [c.name for c in self.configs]
        dup = sorted({n for n in cfg_names if cfg_names.count(n) > 1})
        if dup:
            raise ValueError(f"config names must be unique, repeated: {dup}")
        for cfg in self.configs:
            unknown = sorted(set(cfg.sources) - set(names))
            if unknown:
                raise ValueError(f"config {cfg.name!r} names unknown sources {unknown}")
            if cfg.task not in self.tasks:
                raise ValueError(f"config {cfg.name!r} has task {cfg.task.value!r} missing from tasks")
        return self

    @property
    def main_sources(self) -> list[Source]:
        """Return the alternative main sources, the default first."""
        return [s for s in self.sources if not s.companion]

    @property
    def companion_sources(self) -> list[Source]:
        return [s for s in self.sources if s.companion]

    def source(self, name: str | None = None) -> Source:
        """Return the named source, or the default (first main) source when ``name`` is None.

        Raises:
            UnknownSourceError: no source of that name; the message lists the names there are.
        """
        if name is None:
            return self.main_sources[0]
        for s in self.sources:
            if s.name == name:
                return s
        raise UnknownSourceError(self.id, name, [s.name for s in self.sources])

    def config(self, name: str) -> NormalizedConfig:
        for c in self.configs:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def module_name(self) -> str:
        """Return the snake_case module stem of this entry (recipe, replica, test)."""
        return module_name(self.id)


class RegistryFile(_Model):
    """A registry file: a mapping with a top-level ``datasets`` list."""

    datasets: list[Entry]


def module_name(dataset_id: str) -> str:
    """Convert a kebab-case dataset id to the snake_case stem of its modules."""
    return dataset_id.replace("-", "_")
