"""Amazon S3 sources (``kind: s3``) through s3fs: PhysioNet's open copies, IDC's buckets.

Open PhysioNet projects are in the AWS Open Data bucket ``s3://physionet-open/<slug>/<version>/``,
read anonymously (``anonymous: true``, no request signing, no account). Other buckets use the
AWS credential chain (environment, ``~/.aws``; ``--option profile=NAME`` picks a profile); medcat
never stores credentials. See ``buckets`` for listing, verification and resume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from medcat_data.catalog.schema import S3Source
from medcat_data.loaders.transports import TransportContext
from medcat_data.loaders.transports.buckets import BucketTransport, Store, endpoint, require, s3_md5

log = logging.getLogger(__name__)

CREDENTIALS_HINT = (
    "medcat reads AWS credentials from the usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws; "
    "--option profile=NAME); public buckets need none."
)


@dataclass(frozen=True)
class S3Options:
    """Options of ``s3`` sources (``medcat fetch ID --option KEY=VALUE``)."""

    profile: str | None = field(
        default=None, metadata={"help": "s3 sources: the AWS profile to sign requests with (not for anonymous buckets)."}
    )


OPTIONS = S3Options


def _validator(info: Any) -> str | None:
    etag = str(info.get("ETag") or "").strip('"')
    return f"etag:{etag}" if etag else None


def make_transport(source: S3Source, ctx: TransportContext) -> BucketTransport:
    """Build the transport of an S3 source.

    Raises:
        UsageError: s3fs is missing (before any request).
    """
    s3fs = require("s3fs", "s3")
    options = ctx.kind_options if isinstance(ctx.kind_options, S3Options) else S3Options()
    url = endpoint(source, ctx)
    kwargs: dict[str, Any] = {"anon": source.anonymous, "skip_instance_cache": True}
    client: dict[str, Any] = {}
    if source.region:
        client["region_name"] = source.region
    if url:
        kwargs["endpoint_url"] = url
    if options.profile and not source.anonymous:
        kwargs["profile"] = options.profile
    if client:
        kwargs["client_kwargs"] = client
    fs = s3fs.S3FileSystem(**kwargs)
    store = Store("s3", fs, s3_md5, _validator, CREDENTIALS_HINT)
    return BucketTransport(source, ctx, store)
