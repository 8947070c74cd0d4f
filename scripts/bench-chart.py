#!/usr/bin/env python3
"""Draws throughput against message size from `securechat bench --json`: an SVG with one line per
backend × cipher (seal, solid; open, dashed), log scales. Usage: bench-chart.py BENCH.json OUT.svg"""
import json
import math
import sys

results = json.load(open(sys.argv[1]))["results"]
series = {}
for r in results:
    if r["measure"] in ("seal", "open"):
        series.setdefault((r["backend"], r["cipher"], r["measure"]), []).append((r["size"], r["value"]))

width, height, left, right, top, bottom = 760, 420, 70, 190, 30, 50
sizes = sorted({size for points in series.values() for size, _ in points})
values = [value for points in series.values() for _, value in points]
x0, x1 = math.log10(sizes[0]), math.log10(sizes[-1])
y0, y1 = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
x = lambda size: left + (math.log10(size) - x0) / (x1 - x0) * (width - left - right)
y = lambda value: height - bottom - (math.log10(value) - y0) / (y1 - y0) * (height - top - bottom)
colours = {("openssl", "chachapoly"): "#1f77b4", ("openssl", "aesgcm"): "#2ca02c",
           ("gcrypt", "chachapoly"): "#d62728", ("gcrypt", "aesgcm"): "#9467bd"}

svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
       f'<rect width="{width}" height="{height}" fill="white"/>',
       f'<text x="{left}" y="18" font-size="14">securechat seal/open throughput (MB/s) by message size</text>']
for exponent in range(y0, y1 + 1):
    svg.append(f'<line x1="{left}" x2="{width - right}" y1="{y(10 ** exponent):.1f}" y2="{y(10 ** exponent):.1f}" stroke="#ddd"/>')
    svg.append(f'<text x="{left - 8}" y="{y(10 ** exponent) + 4:.1f}" text-anchor="end">{10 ** exponent:g}</text>')
for size in sizes:
    label = f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"
    svg.append(f'<line x1="{x(size):.1f}" x2="{x(size):.1f}" y1="{top}" y2="{height - bottom}" stroke="#eee"/>')
    svg.append(f'<text x="{x(size):.1f}" y="{height - bottom + 18}" text-anchor="middle">{label}</text>')
legend_y = top + 10
for (backend, cipher, measure), points in sorted(series.items()):
    colour = colours.get((backend, cipher), "black")
    dash = ' stroke-dasharray="5,4"' if measure == "open" else ""
    path = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in sorted(points))
    svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
    svg.append(f'<line x1="{width - right + 12}" x2="{width - right + 40}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="2"{dash}/>')
    svg.append(f'<text x="{width - right + 46}" y="{legend_y + 4}">{backend} {cipher} {measure}</text>')
    legend_y += 20
svg.append("</svg>")
open(sys.argv[2], "w").write("\n".join(svg) + "\n")
