#!/usr/bin/env python3
"""Writes a seed for the dump_only fuzz target (fuzz/fuzz_targets/dump_only.rs) to the corpus
directory given: a little-endian kernel image at _stext holding kallsyms tables in
scripts/kallsyms.c's order since 4.20 (offsets, relative_base, num_syms, names, markers,
token_table, token_index; each 8-aligned), 300 symbols of which the first is _stext, and a
BTF blob describing `int` and `struct task_struct { int pid; }`. Built from the formats'
descriptions (docs/dump-only.md), not by the code under test."""
import struct, sys, os

def align(b, n=8):
    return b + b"\0" * (-len(b) % n)

names = [("T", "_stext")] + [("t" if i % 2 else "D", f"sym_{i:03d}") for i in range(1, 300)]
n = len(names)
# tokens: token i is the single byte i (1..255); token 0 is "x" (never used)
tokens = [b"x"] + [bytes([i]) for i in range(1, 256)]
img = b""
# offsets (base-relative: address = relative_base + offset), 16 bytes apart
img += b"".join(struct.pack("<i", 16 * i) for i in range(n))
img = align(img)
img += struct.pack("<Q", 0xFFFFFFFF81000000)       # relative_base = _stext
img += align(struct.pack("<I", n))                  # num_syms
names_start = len(img)
markers = []
for i, (t, name) in enumerate(names):
    if i % 256 == 0:
        markers.append(len(img) - names_start)
    body = (t + name).encode()
    img += bytes([len(body)]) + body                # each byte is the token of that value
img = align(img)
img += align(b"".join(struct.pack("<I", m) for m in markers))
table_start = len(img)
index, table = [], b""
for t in tokens:
    index.append(len(table))
    table += t + b"\0"
img += align(table)
img += align(b"".join(struct.pack("<H", o) for o in index))
# BTF: [1] INT "int" 4 bytes signed, [2] STRUCT "task_struct" size 4, member "pid" int at 0
strs = b"\0int\0task_struct\0pid\0"
types = struct.pack("<III", 1, 1 << 24, 4) + struct.pack("<I", (1 << 24) | 32)
types += struct.pack("<III", 5, (4 << 24) | 1, 4) + struct.pack("<III", 17, 1, 0)
btf = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs)) + types + strs
img = align(img, 4096) + btf
os.makedirs(sys.argv[1], exist_ok=True)
with open(os.path.join(sys.argv[1], "seed-kallsyms-btf"), "wb") as f:
    f.write(b"\0" + img)                            # byte 0: little-endian
print(f"{len(img) + 1} bytes")
