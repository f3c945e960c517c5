#!/usr/bin/env python3
"""Plain classifiers on the tenants of `routing-eval`, for the comparison in docs/routing.md.

For each set that `switchyard-bench routing-eval --lab-out DIR` wrote to DIR (the agents and
their examples, the test messages with `fallback` for the left-out agents' ones), trains three
logistic regressions on the agents' examples -- TF-IDF (word 1-2-grams and character 2-4-grams),
the whole sentence encoder's embeddings (from `switchyard-bench embed`, the same model and
vectors Switchyard uses), and both concatenated -- and prints, per set and model:

    baseline set=... model=... top1=... oos_at_ff3=...

`top1`: answerable test messages whose most probable agent is right. `oos_at_ff3`: the
left-out agents' messages whose top probability is below the threshold that lets exactly 3%
of the answerable ones fall back (the same definition as `routing-eval`'s).

    cargo build --release -p switchyard-bench
    target/release/switchyard-bench routing-eval --variants lexical --lab-out /tmp/lab
    SWITCHYARD_ENCODER_DIR=$(scripts/fetch-encoder) python3 bench/routing_baselines.py /tmp/lab

Needs numpy, scipy and scikit-learn (`pip install numpy scipy scikit-learn`).
"""

import argparse
import csv
import json
import pathlib
import subprocess

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def embed(bench, texts):
    """The whole encoder's embeddings of `texts`, one row each."""
    lines = "".join(t.replace("\n", " ") + "\n" for t in texts)
    out = subprocess.run(
        [bench, "embed"], input=lines.encode(), capture_output=True, check=True
    ).stdout
    return np.frombuffer(out, dtype="<f4").reshape(len(texts), -1)


def oos_at_ff3(p_in, p_out):
    """Out-of-scope messages below the 3% quantile of the answerable ones' scores."""
    return float((p_out < np.quantile(p_in, 0.03)).mean())


def tfidf(train, test):
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    a = hstack([word.fit_transform(train), char.fit_transform(train)]).tocsr()
    b = hstack([word.transform(test), char.transform(test)]).tocsr()
    return a, b


def both(train, test, e_train, e_test):
    """TF-IDF of `train` and `test` with their encoder embeddings appended."""
    t_train, t_test = tfidf(train, test)
    return (
        hstack([t_train, csr_matrix(e_train)]).tocsr(),
        hstack([t_test, csr_matrix(e_test)]).tocsr(),
    )


def lab_sets(lab, only=""):
    """Each set `routing-eval --lab-out` wrote to `lab` (whose name contains `only`):
    (name, training texts, their agent numbers, test texts, their agent numbers), where a
    left-out agent's test message has the number -1."""
    for agents_file in sorted(lab.glob("*.agents.json")):
        name = agents_file.name.removesuffix(".agents.json")
        if only not in name:
            continue
        agents = [a for a in json.loads(agents_file.read_text()) if not a["is_fallback"]]
        names = {a["name"]: i for i, a in enumerate(agents)}
        train = [(e, names[a["name"]]) for a in agents for e in a["examples"]]
        with open(lab / f"{name}.examples.csv", newline="") as f:
            test = [(r["message"], names.get(r["agent"], -1)) for r in csv.DictReader(f)]
        yield (
            name,
            [t for t, _ in train],
            np.array([y for _, y in train]),
            [t for t, _ in test],
            np.array([y for _, y in test]),
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lab", type=pathlib.Path, help="routing-eval's --lab-out directory")
    parser.add_argument("--bench", default="target/release/switchyard-bench")
    parser.add_argument("--only", default="", help="sets whose name contains this")
    args = parser.parse_args()
    for name, x_train, y_train, x_test, y_test in lab_sets(args.lab, args.only):
        vectors = embed(args.bench, x_train + x_test)
        e_train, e_test = vectors[: len(x_train)], vectors[len(x_train) :]
        features = {
            "tfidf": tfidf(x_train, x_test),
            "encoder": (e_train, e_test),
            "both": both(x_train, x_test, e_train, e_test),
        }
        answerable = y_test >= 0
        for model, (a, b) in features.items():
            lr = LogisticRegression(C=10, max_iter=3000).fit(a, y_train)
            p = lr.predict_proba(b)
            top1 = (p.argmax(1)[answerable] == y_test[answerable]).mean()
            oos = oos_at_ff3(p.max(1)[answerable], p.max(1)[~answerable])
            print(
                f"baseline set={name} model={model} top1={100 * top1:.1f} "
                f"oos_at_ff3={100 * oos:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
