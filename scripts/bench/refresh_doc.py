"""Put the latest results into docs/performance.md: each section between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->` is replaced by bench-results/NAME.md, as the benchmark wrote it. Sections whose result is
missing are left as they are.

    python scripts/bench/refresh_doc.py [--results bench-results] [--doc docs/performance.md]
"""

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def refresh(doc_text, results):
    def replace(match):
        name = match.group(1)
        path = results / f"{name}.md"
        if not path.exists():
            return match.group(0)
        return f"<!-- bench:{name} -->\n{path.read_text().strip()}\n<!-- /bench:{name} -->"

    return re.sub(r"<!-- bench:([\w-]+) -->\n.*?<!-- /bench:\1 -->", replace, doc_text, flags=re.S)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(ROOT / "bench-results"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()
    doc = Path(args.doc)
    before = doc.read_text()
    after = refresh(before, Path(args.results))
    doc.write_text(after)
    names = re.findall(r"<!-- bench:([\w-]+) -->", after)
    found = [n for n in names if (Path(args.results) / f"{n}.md").exists()]
    print(f"{doc}: {len(found)} of {len(names)} sections refreshed from {args.results}"
          + (f" (missing: {', '.join(sorted(set(names) - set(found)))})" if set(names) - set(found) else ""))


if __name__ == "__main__":
    main()
