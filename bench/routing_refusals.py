#!/usr/bin/env python3
"""What examples of messages to refuse would do for out-of-scope messages (docs/routing.md).

A tenant could tell the router, besides its agents' examples, examples of messages no agent
should take. This measures what that would be worth before anything is built. For each set
that `switchyard-bench routing-eval --lab-out DIR` wrote to DIR, the left-out labels are split
in two: for the first half (every other one) ten training rows per intent become "refuse"
examples, the second half gets none. Two logistic regressions on TF-IDF and the whole
encoder's embeddings concatenated (`both` in `routing_baselines.py`) are trained, one without
and one with a refuse class, and the out-of-scope test messages caught at 3% false fallback
(the largest probability of a real agent as the score) are counted separately for the
anticipated half and the unanticipated half:

    refusals set=... examples=... top1=... without=ANTICIPATED/UNANTICIPATED with=.../...

    cargo build --release -p switchyard-bench
    target/release/switchyard-bench routing-eval --variants lexical --lab-out /tmp/lab
    SWITCHYARD_ENCODER_DIR=$(scripts/fetch-encoder) python3 bench/routing_refusals.py /tmp/lab

Needs what `routing_baselines.py` needs. Reads the sets' labels from `data/`.
"""

import argparse
import csv
import json
import pathlib

import numpy as np
from routing_baselines import both, embed, lab_sets, oos_at_ff3
from sklearn.linear_model import LogisticRegression

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"


def labelled(name, split):
    """(text, agent label, intent) of a set's `split` file, labelled as the set's agents are."""
    if name.startswith("banking77"):
        with open(DATA / "banking77" / f"{split}.csv", newline="") as f:
            return [(r["text"], r["category"], r["category"]) for r in csv.DictReader(f)]
    column = "scenario" if name.startswith("hwu64-scenarios") else "intent"
    with open(DATA / "hwu64" / f"{split}.csv", newline="") as f:
        return [(r["text"], r[column], r["intent"]) for r in csv.DictReader(f)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lab", type=pathlib.Path, help="routing-eval's --lab-out directory")
    parser.add_argument("--bench", default="target/release/switchyard-bench")
    parser.add_argument("--only", default="", help="sets whose name contains this")
    parser.add_argument("--per-intent", type=int, default=10, help="refuse examples per intent")
    args = parser.parse_args()
    for name, x_train, y_train, x_test, y_test in lab_sets(args.lab, args.only):
        agents = json.loads((args.lab / f"{name}.agents.json").read_text())
        kept = {a["name"] for a in agents if not a["is_fallback"]}
        rows = labelled(name, "train")
        left_out = sorted({label for _, label, _ in rows} - kept)
        anticipated = set(left_out[::2])
        by_intent = {}
        for text, label, intent in rows:
            if label in anticipated:
                by_intent.setdefault(intent, []).append(text)
        refuse = [t for texts in by_intent.values() for t in texts[: args.per_intent]]
        test_label = {text: label for text, label, _ in labelled(name, "test")}
        answerable = y_test >= 0
        foreseen = np.array([test_label.get(t) in anticipated for t in x_test])
        kinds = {
            "anticipated": ~answerable & foreseen,
            "unanticipated": ~answerable & ~foreseen,
        }
        agents_count = int(y_train.max()) + 1
        vectors = embed(args.bench, x_train + refuse + x_test)
        seen = len(x_train) + len(refuse)
        e_train, e_test = vectors[:seen], vectors[seen:]
        figures = {}
        for model, train, labels, e in (
            ("without", x_train, y_train, e_train[: len(x_train)]),
            (
                "with",
                x_train + refuse,
                np.concatenate([y_train, np.full(len(refuse), agents_count)]),
                e_train,
            ),
        ):
            a, b = both(train, x_test, e, e_test)
            p = LogisticRegression(C=10, max_iter=3000).fit(a, labels).predict_proba(b)
            p = p[:, :agents_count]
            score = p.max(1)
            top1 = (p.argmax(1)[answerable] == y_test[answerable]).mean()
            caught = "/".join(
                f"{100 * oos_at_ff3(score[answerable], score[kind]):.1f}" for kind in kinds.values()
            )
            figures[model] = (top1, caught)
        print(
            f"refusals set={name} examples={len(refuse)} "
            f"top1={100 * figures['without'][0]:.1f}/{100 * figures['with'][0]:.1f} "
            f"without={figures['without'][1]} with={figures['with'][1]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
