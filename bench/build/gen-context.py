#!/usr/bin/env python3
"""bench/build/gen-context.py DIR [FILES] [BIG_MIB] - write the build context
of bench/build.sh into DIR (created; must not exist).

Deterministic: same arguments, same bytes, modes and mtimes. DIR gets the
Dockerfile next to this script, requirements.txt (40 lines), src/ with FILES
(default 3000) small text files (100 B - 1.5 KiB) in nested directories,
src/app/main.txt (the file bench/build.sh edits for the incremental case)
and assets/big.bin: BIG_MIB (default 32) MiB of incompressible bytes.
"""
import os
import random
import shutil
import sys

MTIME = 1600000000
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu "
         "nu xi omicron pi rho sigma tau upsilon phi chi psi omega").split()


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def main():
    if len(sys.argv) < 2 or len(sys.argv) > 4:
        sys.exit("usage: gen-context.py DIR [FILES] [BIG_MIB]")
    out = sys.argv[1]
    nfiles = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    big_mib = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    if os.path.exists(out):
        sys.exit("gen-context.py: '%s' exists; remove it first" % out)
    rnd = random.Random(20240601)
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out)
    shutil.copyfile(os.path.join(here, "Dockerfile"), os.path.join(out, "Dockerfile"))
    os.chmod(os.path.join(out, "Dockerfile"), 0o644)
    write(os.path.join(out, "requirements.txt"),
          "".join("pkg%02d==1.%d.%d\n" % (i, i % 7, i % 3) for i in range(40)).encode())
    # 10 top-level modules x 6 packages x N files: three levels of nesting.
    for i in range(nfiles):
        mod, pkg = i % 10, (i // 10) % 6
        n = rnd.randint(15, 250)
        text = " ".join(rnd.choice(WORDS) for _ in range(n))
        body = "// file %d\n%s\n" % (i, text)
        write(os.path.join(out, "src", "mod%02d" % mod, "pkg%d" % pkg,
                           "file%04d.txt" % i), body.encode())
    write(os.path.join(out, "src", "app", "main.txt"), b"// the entry point\nversion 0\n")
    # Mersenne Twister output does not compress: a realistic 32 MiB blob.
    write(os.path.join(out, "assets", "big.bin"), rnd.randbytes(big_mib << 20))
    for dirpath, dirs, files in os.walk(out):
        for n in dirs:
            os.chmod(os.path.join(dirpath, n), 0o755)
        for n in dirs + files:
            os.utime(os.path.join(dirpath, n), (MTIME, MTIME))
    os.utime(out, (MTIME, MTIME))


main()
