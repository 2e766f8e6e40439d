"""Synthetic LLaVA-Med: the JSON host ``root/med_llava/`` over pmc-oa's replica bucket at the mirror root.

Host layout (fact sheet §5, the README's tables): ``med_llava/instruct/llava_med_instruct_10k.json``,
``..._60k.json``, ``..._60k_inline_mention.json`` and ``llava_med_instruct_fig_captions.json`` (an
object keyed by domain), ``med_llava/alignment/llava_med_alignment_500k.json``,
``med_llava/eval/llava_med_eval_qa50_qa.jsonl`` and ``med_llava/llava_med_image_urls.jsonl``
(``pmc_tar_url``, ``image_file_path``, ``pair_id``). Conversation records are
``{"id", "image": "<id>.jpg", "conversations"}`` with ``<image>`` in the first human turn (before or
after the text). Eval records name images absent from the URL list, as upstream's do.

Bucket: pmc-oa's replica bucket, built by pmc-oa's own builder with the same seed (byte for byte
what pmc-oa's replica writes), because pmc-oa lists its bucket whole and both replicas share the
mirror root in the demo: this replica adds no article to it. The URL list points at its figures:
CC BY, CC0 and CC BY-NC articles and the one in two versions (the newer is read). Planted bad
items: ``PMC9099999`` is in the URL list but not in the bucket (it left the subset; named by
instruct-10k) and a ``.jpg`` whose article lists only its ``.gif`` (a missing figure; named by
alignment). All record text is generated here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from medcat_data.datasets.pmc_oa import replica as pmc_oa_replica
from medcat_data.mirror.replicas.base import Replica

DATASET_ID = "llava-med"
HOST = "med_llava"
URL_LIST = "llava_med_image_urls.jsonl"
FILES = {
    "instruct-10k": "instruct/llava_med_instruct_10k.json",
    "instruct-60k": "instruct/llava_med_instruct_60k.json",
    "instruct-60k-inline-mention": "instruct/llava_med_instruct_60k_inline_mention.json",
    "instruct-fig-captions": "instruct/llava_med_instruct_fig_captions.json",
    "alignment": "alignment/llava_med_alignment_500k.json",
    "eval-qa50": "eval/llava_med_eval_qa50_qa.jsonl",
}

# Pair ids of the records; build() maps them onto figures of pmc-oa's replica bucket (see the docstring).
GONE, MISSING = "31000004_F1", "31000008_F9"
USES = {
    "instruct-10k": ["31000001_F1", "31000002_F1", GONE],
    "instruct-60k": ["31000001_F1", "31000002_F1", "31000002_F2", "31000003_F1"],
    "instruct-60k-inline-mention": ["31000001_F1", "31000002_F1", "31000002_F2", "31000003_F1"],
    "alignment": ["31000003_F1", "31000001_F1", MISSING, "31000005_F1", "31000002_F2"],
}
CAPTION_DOMAINS = {"chest_xray": ["31000001_F1"], "ct_scan": ["31000002_F1", "31000003_F1"], "histology": ["31000005_F1"]}
EVAL_PAIRS = ["18000001_F3", "18000001_F3", "18000002_F1"]  # <PMID>_<label>, not in the URL list

_FINDINGS = ("a hypodense lesion", "\"ground-glass\" opacities", "a 4 µm granule [arrow]", "diffuse enhancement {see inset}",
             "a 2.5 × 3 cm mass", "normal tissue; no change at 90°")
_DOMAINS = ("chest_xray", "mri", "histology", "gross", "ct_scan")


def _turns(rng: random.Random, pair: str, rounds: int, mention: bool) -> list[dict[str, str]]:
    turns = []
    for k in range(rounds):
        finding = rng.choice(_FINDINGS)
        question = f"What does the figure show near {finding}?"
        if mention:
            question += f" The article says: \"Figure {pair[-1]} shows {finding}.\""
        if k == 0:
            question = f"<image>\n{question}" if rng.random() < 0.5 else f"{question}\n<image>"
        turns += [{"from": "human", "value": question}, {"from": "gpt", "value": f"It shows {finding}; see the caption."}]
    return turns


def _conversation_records(rng: random.Random, config: str) -> list[dict[str, Any]]:
    rounds = 1 if config == "alignment" else 2
    return [{"id": p, "image": f"{p}.jpg", "conversations": _turns(rng, p, rounds, "inline" in config)} for p in USES[config]]


def _caption_sample(rng: random.Random, pair: str) -> dict[str, Any]:
    finding = rng.choice(_FINDINGS)
    return {"pair_id": pair, "fig_label": f"F{pair[-1]}", "fig_caption": f"Axial image with {finding}.",
            "in_text_mention": [{"tokens": f"As Fig. {pair[-1]} shows, {finding} was seen.", "entities": []}]}


def _eval_records(rng: random.Random) -> list[dict[str, Any]]:
    records = []
    for n, pair in enumerate(EVAL_PAIRS):
        domain = rng.choice(_DOMAINS)
        records.append({
            "question_id": n, "image": f"{pair}.jpg", "pair_id": pair, "text": f"What is seen in panel {n}?",
            "gpt4_answer": f"Panel {n} shows {rng.choice(_FINDINGS)}.", "fig_caption": "A synthetic caption.",
            "fig_label": pair.split("_")[1], "in_text_mention": [{"tokens": "The figure shows it.", "entities": []}],
            "type": "conversation" if n % 2 == 0 else "detailed_description",
            "domain": {d: d == domain for d in _DOMAINS},
        })
    return records


def _pairs(root: Path, articles: list[str]) -> dict[str, tuple[str, str]]:
    """Map the pair ids onto figures of pmc-oa's bucket articles (read back from their metadata records).

    Articles (pmc-oa's plan order): 0 CC BY, 1 CC0, 2 CC BY-NC with three figures, 3 CC BY-NC-ND in
    two versions (the newer is read), 8 with a figure whose .jpg is absent (only its .gif is listed).
    """
    def jpgs(k: int) -> list[str]:
        meta = json.loads((root / "metadata" / f"{articles[k]}.json").read_text(encoding="utf-8"))
        return sorted(u.split("?")[0].rsplit("/", 1)[-1] for u in meta["media_urls"] if ".jpg?" in u)

    def pmcid(k: int) -> str:
        return articles[k].split(".")[0]

    meta8 = json.loads((root / "metadata" / f"{articles[8]}.json").read_text(encoding="utf-8"))
    gif_only = next(n for n in (u.split("?")[0].rsplit("/", 1)[-1] for u in meta8["media_urls"])
                    if n.endswith(".gif") and n[:-4] + ".jpg" not in jpgs(8))
    return {
        "31000001_F1": (pmcid(3), jpgs(3)[0]),
        "31000002_F1": (pmcid(2), jpgs(2)[0]),
        "31000002_F2": (pmcid(2), jpgs(2)[1]),
        "31000003_F1": (pmcid(1), jpgs(1)[0]),
        "31000005_F1": (pmcid(0), jpgs(0)[0]),
        GONE: ("PMC9099999", "gone-f1.jpg"),  # no metadata record: the article left the subset
        MISSING: (pmcid(8), gif_only[:-4] + ".jpg"),  # not listed by its article
    }


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write the host and the bucket articles under ``root``; return the replica of the ``json`` source."""
    rng = random.Random(f"llava-med-{seed}")
    # pmc-oa's own bucket, byte for byte (same builder, same seed): no article is added to the
    # bucket that pmc-oa lists whole, so both replicas can share one mirror.
    bucket = pmc_oa_replica.build(root, seed=seed)[0].expected
    pairs = _pairs(root, list(bucket["articles"]))
    host = root / HOST
    for config in USES:
        path = host / FILES[config]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_conversation_records(rng, config), indent=None if config == "alignment" else 2), encoding="utf-8")
    captions = {d: [_caption_sample(rng, p) for p in pairs] for d, pairs in CAPTION_DOMAINS.items()}
    (host / FILES["instruct-fig-captions"]).write_text(json.dumps(captions), encoding="utf-8")
    (host / "eval").mkdir(exist_ok=True)
    (host / FILES["eval-qa50"]).write_text("".join(json.dumps(r) + "\n" for r in _eval_records(rng)), encoding="utf-8")
    lines = [{"pmc_tar_url": f"https://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_package/{pmcid[-2:]}/{pmcid[-4:-2]}/{pmcid}.tar.gz",
              "image_file_path": f"{pmcid}/{name}", "pair_id": pair} for pair, (pmcid, name) in pairs.items()]
    (host / URL_LIST).write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    configs = {c: {"train": sum(p not in (GONE, MISSING) for p in used)} for c, used in USES.items()}
    configs["instruct-fig-captions"] = {"train": sum(map(len, CAPTION_DOMAINS.values()))}
    configs["eval-qa50"] = {"test": len(EVAL_PAIRS)}
    return [
        Replica(
            dataset_id=DATASET_ID,
            source="json",
            expected={
                "configs": configs,
                "errors": [{"path": "/".join(pairs[GONE]), "stage": "read"}, {"path": "/".join(pairs[MISSING]), "stage": "read"}],
                "figures": {pair: "/".join(where) for pair, where in pairs.items()},
            },
            group_columns=("id",),
        )
    ]
