#!/usr/bin/env python3
"""Turns bench/compare.sh's run.py JSON into the comparison tables."""
import glob
import json
import os
import sys

d = sys.argv[1]
MB = 1e6


def load(path):
    with open(path) as f:
        rs = json.load(f)["results"]
    return {r["command"]: r["median"] for r in rs}, {r["command"]: r.get("max_rss_kib") or 0 for r in rs}


def ratio(peer, ours):
    return f"{peer / ours:.2f}×" if peer and ours else "–"


rows = []
for p in sorted(glob.glob(os.path.join(d, "*-encode.json")), key=os.path.getmtime):
    name = os.path.basename(p)[: -len("-encode.json")]
    enc, enc_rss = load(p)
    dec, dec_rss = load(os.path.join(d, f"{name}-decode.json"))
    x = json.load(open(os.path.join(d, f"{name}-extra.json")))
    rows.append((name, enc, enc_rss, dec, dec_rss, x))

print("**process** (sluice's default: durable; ratios are peer time / sluice time, above 1 means sluice is faster)\n")
print("| corpus | sluice MB/s | vs zstd -T0 -3 (not synced) | vs zstd -T0 -3 && sync | vs zstd \\| age && sync | --no-sync vs zstd | size vs zstd | RSS sluice / zstd (MiB) |")
print("|---|---|---|---|---|---|---|---|")
for name, enc, enc_rss, dec, dec_rss, x in rows:
    size = x["size"]
    print(
        f"| {name} ({size >> 20} MiB) | {size / enc['sluice'] / MB:.0f} "
        f"| {ratio(enc['zstd'], enc['sluice'])} | {ratio(enc['zstd+sync'], enc['sluice'])} "
        f"| {ratio(enc['zstd|age+sync'], enc['sluice'])} | {ratio(enc['zstd'], enc['sluice-nosync'])} "
        f"| {x['out_sluice'] / x['out_zstd']:.4f} (ratio {x['out_sluice'] / size:.3f}) "
        f"| {enc_rss['sluice'] / 1024:.0f} / {enc_rss['zstd'] / 1024:.0f} |"
    )

print("\n**restore** (sluice's default: not synced, like zstd -d)\n")
print("| corpus | sluice MB/s | vs zstd -d | --sync vs zstd -d && sync | vs age -d \\| zstd -d | to /dev/null vs zstd -d | RSS sluice / zstd (MiB) |")
print("|---|---|---|---|---|---|---|")
for name, enc, enc_rss, dec, dec_rss, x in rows:
    size = x["size"]
    print(
        f"| {name} | {size / dec['sluice'] / MB:.0f} | {ratio(dec['zstd'], dec['sluice'])} "
        f"| {ratio(dec['zstd+sync'], dec['sluice+sync'])} | {ratio(dec['age|zstd'], dec['sluice'])} "
        f"| {ratio(dec['zstd>null'], dec['sluice>null'])} "
        f"| {dec_rss['sluice'] / 1024:.0f} / {dec_rss['zstd'] / 1024:.0f} |"
    )

if any("sluice-j1" in enc for _, enc, *_ in rows):
    print("\n**variants** (sluice process/restore)\n")
    print("| corpus | -j1→-j2 process | -j1→-j2 restore | lz4 MB/s | --encrypt none MB/s | adaptive gain |")
    print("|---|---|---|---|---|---|")
    for name, enc, enc_rss, dec, dec_rss, x in rows:
        size = x["size"]
        print(
            f"| {name} | {ratio(enc['sluice-j1'], enc['sluice'])} | {ratio(dec['sluice-j1'], dec['sluice'])} "
            f"| {size / enc['sluice-lz4'] / MB:.0f} | {size / enc['sluice-noenc'] / MB:.0f} "
            f"| {ratio(enc['sluice-noadaptive'], enc['sluice'])} |"
        )

p = os.path.join(d, "rss-scaling.json")
if os.path.exists(p):
    r = json.load(open(p))
    print(f"\nPeak RSS, `sluice process` at defaults: {r['rss_small'] / 1024:.0f} MiB for a {r['small_mib']} MiB file, "
          f"{r['rss_big'] / 1024:.0f} MiB for {r['big_mib']} MiB streamed through a pipe "
          f"({r['rss_big'] / r['rss_small']:.2f}×).")
print("\nMedians of alternating runs in one session (bench/run.py); inputs read from the page cache, outputs on disk.")
