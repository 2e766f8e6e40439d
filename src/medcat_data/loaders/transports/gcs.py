"""Google Cloud Storage sources (``kind: gcs``) through gcsfs: PhysioNet's cloud copies, IDC's buckets.

PhysioNet's credentialed projects are in requester-pays buckets (``gs://<slug>-<version>.physionet.org``):
the downloader's Google Cloud project pays the egress, so fetch needs ``--option
billing_project=PROJECT`` and never picks a project itself. Credentials come from Google's usual
chain (``gcloud auth application-default login``, ``GOOGLE_APPLICATION_CREDENTIALS``); medcat never
stores them. Public buckets (``anonymous: true``) are read without credentials. See ``buckets``
for listing, verification and resume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from medcat_data.catalog.schema import GcsSource
from medcat_data.errors import UsageError
from medcat_data.loaders.transports import TransportContext
from medcat_data.loaders.transports.buckets import BucketTransport, Store, endpoint, gcs_md5, require

log = logging.getLogger(__name__)

CREDENTIALS_HINT = (
    "medcat reads Google credentials from the usual chain (`gcloud auth application-default login`, or "
    "GOOGLE_APPLICATION_CREDENTIALS); for PhysioNet, link that Google account in your PhysioNet profile "
    "(Cloud) and request Google Cloud Storage access on the project page."
)


@dataclass(frozen=True)
class GcsOptions:
    """Options of ``gcs`` sources (``medcat fetch ID --option KEY=VALUE``)."""

    billing_project: str | None = field(
        default=None,
        metadata={
            "help": "gcs sources: the Google Cloud project billed for requester-pays egress (required for them; "
            "never defaulted)."
        },
    )


OPTIONS = GcsOptions


def _validator(info: Any) -> str | None:
    generation = info.get("generation")
    return f"generation:{generation}" if generation else None


def make_transport(source: GcsSource, ctx: TransportContext) -> BucketTransport:
    """Build the transport of a GCS source; refuse a requester-pays bucket without a billing project.

    Raises:
        UsageError: requester pays without ``billing_project``, or gcsfs missing (both before any request).
    """
    options = ctx.kind_options if isinstance(ctx.kind_options, GcsOptions) else GcsOptions()
    billing = options.billing_project
    if source.requester_pays and not billing:
        raise UsageError(
            f"{ctx.entry.id}: gs://{source.bucket.replace('{version}', ctx.version)} is a requester-pays bucket: the egress (about $0.12/GB to the "
            "internet; free inside the bucket's region) is billed to a Google Cloud project of yours. Name it with "
            "--option billing_project=PROJECT; medcat never picks one."
        )
    core = require("gcsfs.core", "gcs")
    url = endpoint(source, ctx)
    kwargs: dict[str, Any] = {"token": "anon" if source.anonymous else None}
    if billing:
        kwargs["requester_pays"] = billing
        kwargs["project"] = billing
    if url:
        kwargs["endpoint_url"] = url
    # gcsfs.core's class, not the package alias: the alias (experimental zonal/HNS support) asks a
    # gRPC control plane about the bucket's layout before reads, a request outside the JSON API.
    fs = core.GCSFileSystem(**kwargs, skip_instance_cache=True)
    store = Store("gs", fs, gcs_md5, _validator, CREDENTIALS_HINT)
    return BucketTransport(source, ctx, store)
