#!/usr/bin/env bash
# Checks deploy/: the Prometheus alert rules (promtool check + unit tests),
# that every dashboard query parses as PromQL, and that every sluice_* metric
# the rules and the dashboard use is one the server exports. Installs
# Debian's prometheus package (for promtool) if missing, without starting it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null 2>&1 || scripts/apt_install.sh prometheus
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/dashboard_rules.yml" <<'PY'
import json, re, sys
dash = json.load(open("deploy/grafana/sluice.json"))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
rules = []
for i, e in enumerate(exprs):
    e = e.replace("$__rate_interval", "5m").replace("$instance", ".*")
    rules.append({"record": f"dashboard:panel_{i}", "expr": e})
# JSON is valid YAML: promtool parses every query as a recording rule.
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"))
used = set()
for text in [open("deploy/prometheus/alerts.yml").read()] + exprs:
    used |= set(re.findall(r"\bsluice_[a-z0-9_]+", text))
import glob
# Where metrics are exported: the service core, the native face, the store.
sources = "".join(open(f).read() for f in sorted(glob.glob("crates/sluice-*/src/**/*.rs", recursive=True)))
missing = sorted(n for n in used if f'"{re.sub(r"_(bucket|sum|count)$", "", n)}"' not in sources)
if missing:
    sys.exit(f"metrics used by deploy/ but not exported: {missing}")
print(f"dashboard: {len(exprs)} queries; {len(used)} sluice metric names, all exported")
PY
promtool check rules "$tmp/dashboard_rules.yml" >/dev/null
echo "deploy/: alert rules, their tests and the dashboard's queries are valid"
