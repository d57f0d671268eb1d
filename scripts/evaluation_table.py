"""Markdown tables from ``artstyle evaluate`` reports: one row per model and movement.

Usage: python scripts/evaluation_table.py evaluation/report.json [more/report.json ...]
"""

import json
import sys


def main(*reports: str) -> None:
    print("| model | movement | called its movement | called a photo | content retrieval | most often called |"
          " style distance | content distance |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in reports:
        report = json.loads(open(path).read())
        for model in report["models"]:
            for s in model["scores"]:
                called = sorted(s.get("called", {}).items(), key=lambda kv: -kv[1])
                top = ", ".join(f"{name} {share:.0%}" for name, share in called[:2])
                print(f"| {model['model']} ({model['folder']}) | {s['movement']} | {s['called_movement']:.0%} | "
                      f"{s['called_photo']:.0%} | {s['retrieval']:.2f} | {top} | {s['style_distance']:.3f} | "
                      f"{s['content_distance']:.3f} |")
        judge = report.get("judge")
        if judge:
            print(f"\n{path}: judge classes {', '.join(judge['classes'])}; cross-validated accuracy "
                  f"{judge['cross_validated_accuracy']:.0%}\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
