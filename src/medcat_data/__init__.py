"""medcat: find, fetch, verify and normalize medical datasets into Hugging Face datasets."""

from __future__ import annotations

from medcat_data.catalog.refs import DatasetRef, ResolvedDataset, parse_ref, resolve
from medcat_data.catalog.registry import Registry, load_registry
from medcat_data.catalog.schema import Entry
from medcat_data.errors import MedcatError

__version__ = "0.1.0"

__all__ = [
    "DatasetRef",
    "Entry",
    "MedcatError",
    "Registry",
    "ResolvedDataset",
    "__version__",
    "load_registry",
    "parse_ref",
    "resolve",
]
