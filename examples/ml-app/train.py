#!/usr/bin/env python3
"""Train a logistic-regression classifier on a generated data set.

The data set is made from a fixed seed, so every run on every platform sees the
same samples: 4 features drawn from a standard normal, the label is whether a
fixed linear function of them (plus a little noise) is positive. Training is
full-batch gradient descent on the log loss over standardised features; 20% of
the samples are held out for the reported accuracy.

Writes the model (weights, bias and the standardisation) as JSON and prints one
JSON line: {"accuracy": ..., "loss": ..., "samples": ..., ...}.
"""
import argparse
import json
import os
import sys

import numpy as np

TRUE_W = np.array([2.0, -3.0, 1.5, 0.5])
TRUE_B = 0.25


def make_dataset(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, TRUE_W.size))
    noise = rng.normal(scale=0.5, size=n)
    y = (x @ TRUE_W + TRUE_B + noise > 0).astype(np.float64)
    return x, y


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def log_loss(p, y):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def train(x, y, epochs, lr):
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(epochs):
        p = sigmoid(x @ w + b)
        grad = p - y
        w -= lr * (x.T @ grad) / len(y)
        b -= lr * float(np.mean(grad))
    return w, b


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="model.json", help="where to write the model (JSON)")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    if a.samples < 10 or a.epochs < 1 or a.lr <= 0:
        ap.error("--samples must be at least 10, --epochs at least 1 and --lr positive")

    x, y = make_dataset(a.samples, a.seed)
    split = int(0.8 * len(y))
    mean, std = x[:split].mean(axis=0), x[:split].std(axis=0)
    xs = (x - mean) / std
    w, b = train(xs[:split], y[:split], a.epochs, a.lr)

    p_test = sigmoid(xs[split:] @ w + b)
    result = {
        "accuracy": round(float(np.mean((p_test > 0.5) == (y[split:] == 1))), 4),
        "loss": round(log_loss(p_test, y[split:]), 4),
        "samples": int(a.samples),
        "epochs": int(a.epochs),
        "variant": os.environ.get("ML_VARIANT", "local"),
        "cuda_version": os.environ.get("ML_CUDA_VERSION", "none"),
        "numpy": np.__version__,
    }
    model = {
        "kind": "logistic-regression",
        "weights": w.tolist(),
        "bias": b,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "trained": result,
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(model, f, indent=1)
    os.replace(tmp, a.out)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
