#!/usr/bin/env python3
"""An encoder fine-tuned on each tenant's agents, for the out-of-scope question in docs/routing.md.

For each set that `switchyard-bench routing-eval --lab-out DIR` wrote to DIR, fine-tunes the
sentence encoder Switchyard uses (all of its weights, mean pooling, a cosine classifier head
started at the agents' centroids, cross-entropy, AdamW with a linear decay) on the agents'
examples, then scores the test messages in six ways that may tell a message no agent fits:
the head's largest probability (`maxprob`), its log-sum-exp (`energy`), the largest cosine to
a head row (`maxcos`), to the nearest example (`nn1`), the mean of the five nearest (`knn5`)
and to the nearest agent centroid of the tuned vectors (`centroid`). Prints per set:

    finetune set=... epochs=... top1=... maxprob=... energy=... ... train_s=...

`top1` as in `routing_baselines.py`; each score's figure is its out-of-scope messages caught
at 3% false fallback (`oos_at_ff3`, the same definition as `routing-eval`'s).

    cargo build --release -p switchyard-bench
    target/release/switchyard-bench routing-eval --variants lexical --lab-out /tmp/lab
    python3 bench/routing_finetune.py /tmp/lab --only=intents-10 \\
        --encoder "$(scripts/fetch-encoder)"

Needs what `routing_baselines.py` needs, and torch and transformers
(`pip install torch transformers`). Exploratory: it runs on the CPU and takes minutes per
set (BANKING77 with every example, about twelve on two cores).
"""

import argparse
import math
import pathlib
import time

import numpy as np
import torch
from routing_baselines import lab_sets, oos_at_ff3
from transformers import AutoModel, AutoTokenizer


def pooled(model, batch):
    """Mean of the token vectors under the attention mask, to unit length."""
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def embed(model, tokenizer, texts, batch=128):
    model.eval()
    with torch.no_grad():
        return torch.cat(
            [
                pooled(model, tokenizer(texts[i : i + batch], padding=True, return_tensors="pt"))
                for i in range(0, len(texts), batch)
            ]
        )


def centroids(vectors, labels, agents):
    rows = [vectors[labels == c].mean(0) for c in range(agents)]
    return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lab", type=pathlib.Path, help="routing-eval's --lab-out directory")
    parser.add_argument("--encoder", required=True, help="the model's directory")
    parser.add_argument("--only", default="", help="sets whose name contains this")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--scale", type=float, default=20.0, help="the head's cosine scale")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.encoder)
    for name, x_train, y_train, x_test, y_test in lab_sets(args.lab, args.only):
        torch.manual_seed(0)
        started = time.time()
        y_train = torch.from_numpy(y_train)
        agents = int(y_train.max()) + 1
        model = AutoModel.from_pretrained(args.encoder)
        head = torch.nn.Parameter(centroids(embed(model, tokenizer, x_train), y_train, agents))
        optimiser = torch.optim.AdamW(
            [*model.parameters(), head], lr=args.learning_rate, weight_decay=0.01
        )
        batch = 32
        steps = args.epochs * math.ceil(len(x_train) / batch)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1 - s / steps))
        for _ in range(args.epochs):
            model.train()
            order = torch.randperm(len(x_train))
            for i in range(0, len(x_train), batch):
                rows = order[i : i + batch]
                tokens = tokenizer([x_train[j] for j in rows], padding=True, return_tensors="pt")
                rows_of_head = torch.nn.functional.normalize(head, dim=-1)
                logits = args.scale * pooled(model, tokens) @ rows_of_head.T
                loss = torch.nn.functional.cross_entropy(logits, y_train[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
        trained = time.time() - started
        e_train = embed(model, tokenizer, x_train)
        e_test = embed(model, tokenizer, x_test)
        rows = torch.nn.functional.normalize(head.detach(), dim=-1)
        cosines = e_test @ rows.T
        logits = args.scale * cosines
        probability = torch.softmax(logits, 1)
        near = e_test @ e_train.T
        scores = {
            "maxprob": probability.max(1).values,
            "energy": torch.logsumexp(logits, 1),
            "maxcos": cosines.max(1).values,
            "nn1": near.max(1).values,
            "knn5": near.topk(5, dim=1).values.mean(1),
            "centroid": (e_test @ centroids(e_train, y_train, agents).T).max(1).values,
        }
        answerable = y_test >= 0
        top1 = (probability.argmax(1).numpy()[answerable] == y_test[answerable]).mean()
        caught = " ".join(
            f"{score}={100 * oos_at_ff3(v.numpy()[answerable], v.numpy()[~answerable]):.1f}"
            for score, v in scores.items()
        )
        print(
            f"finetune set={name} epochs={args.epochs} top1={100 * top1:.1f} {caught} "
            f"train_s={trained:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
