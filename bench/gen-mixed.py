#!/usr/bin/env python3
"""bench/gen-mixed.py OUT SIZE - a deterministic layer-like input for bench/gzip.sh.

Alternating 4 MiB pieces: incompressible bytes (a seeded PRNG: model
weights stored as compressed or random-looking data, wheels, .so sections
that do not compress) and text-like lines drawn from a skewed 5000-word
vocabulary (Python and config files). Half of each. The same SIZE gives the
same bytes on every machine."""
import random
import sys

out, size = sys.argv[1], int(sys.argv[2])
r = random.Random(13)
vocab = ["".join(r.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(r.randint(2, 12)))
         for _ in range(5000)]
weights = [1.0 / (i + 1) for i in range(len(vocab))]
lines, n = [], 0
while n < 8 << 20:
    ws = r.choices(vocab, weights, k=r.randint(3, 14))
    if r.random() < 0.5:
        line = "%s = %s(%d, %s)\n" % (ws[0], ws[1], r.randint(0, 99999), ", ".join(ws[2:]))
    else:
        line = " ".join(ws) + ".\n"
    lines.append(line)
    n += len(line)
text = "".join(lines).encode()[: 8 << 20]
piece = 4 << 20
with open(out, "wb") as f:
    done = i = 0
    while done < size:
        m = min(piece, size - done)
        if i % 2 == 0:
            f.write(r.randbytes(m))
        else:
            off = (i // 2 * piece) % (len(text) - piece + 1)
            f.write(text[off:off + m])
        done += m
        i += 1
