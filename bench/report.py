#!/usr/bin/env python3
"""Turns bench/compare.sh's run.py JSON into the comparison table."""
import json
import os
import sys

d = sys.argv[1]
MB = 1e6


def load(path):
    with open(path) as f:
        rs = json.load(f)["results"]
    return {r["command"]: r["median"] for r in rs}, {r["command"]: r.get("max_rss_kib") or 0 for r in rs}


print("| corpus | sluice process MB/s | vs zstd -T0 -3 | vs zstd\\|age | sluice restore MB/s | vs zstd -d | vs age\\|zstd | restore to /dev/null vs zstd -d | size vs zstd | RSS enc/dec (MiB) | zstd RSS enc/dec | -j1→-j2 enc | -j1→-j2 dec | lz4 enc MB/s | noenc enc MB/s | adaptive gain |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in ["text", "random", "mixed"]:
    p = os.path.join(d, f"{name}-encode.json")
    if not os.path.exists(p):
        continue
    enc, enc_rss = load(p)
    dec, dec_rss = load(os.path.join(d, f"{name}-decode.json"))
    x = json.load(open(os.path.join(d, f"{name}-extra.json")))
    size = x["size"]
    rate = lambda t: size / t / MB
    print(
        f"| {name} ({size >> 20} MiB) "
        f"| {rate(enc['sluice']):.0f} | {enc['zstd'] / enc['sluice']:.2f}× | {enc['zstd|age'] / enc['sluice']:.2f}× "
        f"| {rate(dec['sluice']):.0f} | {dec['zstd'] / dec['sluice']:.2f}× | {dec['age|zstd'] / dec['sluice']:.2f}× "
        f"| {dec['zstd>null'] / dec['sluice>null']:.2f}× "
        f"| {x['out_sluice'] / x['out_zstd']:.4f} (ratio {x['out_sluice'] / size:.3f}) "
        f"| {enc_rss['sluice'] / 1024:.0f} / {dec_rss['sluice'] / 1024:.0f} "
        f"| {enc_rss['zstd'] / 1024:.0f} / {dec_rss['zstd'] / 1024:.0f} "
        f"| {enc['sluice-j1'] / enc['sluice']:.2f}× | {dec['sluice-j1'] / dec['sluice']:.2f}× "
        f"| {rate(enc['sluice-lz4']):.0f} | {rate(enc['sluice-noenc']):.0f} "
        f"| {enc['sluice-noadaptive'] / enc['sluice']:.2f}× |"
    )
p = os.path.join(d, "rss-scaling.json")
if os.path.exists(p):
    r = json.load(open(p))
    print(f"\nPeak RSS, `sluice process` at defaults: {r['rss_small'] / 1024:.0f} MiB for the text file, "
          f"{r['rss_big'] / 1024:.0f} MiB for {r['big_mib']} MiB streamed through a pipe "
          f"({r['rss_big'] / r['rss_small']:.2f}×).")
print("\nRatios are peer time / sluice time (above 1 means sluice is faster); medians of alternating runs in one session (bench/run.py).")
