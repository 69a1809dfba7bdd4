"""Ships a trained run's model with the package: the file, its index entry and its card's figures.

    python tools/ship_model.py --run runs/lspet-hg2-128 --name lspet-hg2-128 \
        --data-dir ../shared/data/lspet [--default]

1. Saves the run's last model (`--checkpoint last.keras`: with a schedule that ends at rate 0 it
   is the run's result, and no held-out figure chose it) without its optimizer state (the reference RMSprop keeps one mean
   square per weight, which would double the file) as keras_hourglass/weights/<name>.keras.
2. Scores it with eval/evaluate.py on the run's held-out people (LSPET: the last 1,000 present,
   `--held-out 1000 --skip-bad`), with and without the flip test, and on the last 50 with the
   flip test (the figure tests/test_pretrained.py reproduces), into results/<name>/.
3. Writes its entry in keras_hourglass/weights/index.json (file, SHA-256, size, skeleton, input,
   architecture, the train.py command that made it, the figures) and copies the held-out sheet
   to docs/images/<name>_sheet.png; prints the card's tables (docs/models.md).

The index is rewritten atomically; other models' entries are kept.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def train_command(config):
    """The train.py command line of a run's config.json (the flags that differ from the
    defaults)."""
    from keras_hourglass.training.loop import TrainConfig

    defaults = {f.name: f.default for f in TrainConfig.__dataclass_fields__.values()}
    parts = ["python train/train.py"]
    for key, value in config.items():
        if key in ("runs_dir",) or key not in defaults or value == defaults[key]:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag)
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def evaluate(model, data_dir, out, held_out, flip):
    command = [
        sys.executable,
        os.path.join(ROOT, "eval/evaluate.py"),
        "--model",
        model,
        "--dataset",
        "lspet",
        "--data-dir",
        data_dir,
        "--skip-bad",
        "--held-out",
        str(held_out),
        "--out",
        out,
    ] + ([] if flip else ["--no-flip"])
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    import pandas as pd

    summary = pd.read_csv(os.path.join(out, "summary.csv")).set_index("group")
    joints = pd.read_csv(os.path.join(out, "per_joint.csv")).set_index("joint")
    return summary, joints


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="a train.py run folder")
    parser.add_argument("--name", required=True, help="the shipped model's name")
    parser.add_argument("--data-dir", required=True, help="the LSPET folder the run trained on")
    parser.add_argument("--default", action="store_true", help="make it the default model")
    parser.add_argument(
        "--checkpoint", default="last.keras", help="the run's file to ship (default: last.keras)"
    )
    parser.add_argument("--description", default="", help="one line for the index")
    args = parser.parse_args(argv)

    import keras

    import keras_hourglass  # noqa: F401
    from keras_hourglass import files
    from keras_hourglass.pretrained import INDEX, WEIGHTS_DIR, file_sha256

    with open(os.path.join(args.run, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    model = keras.saving.load_model(os.path.join(args.run, args.checkpoint), compile=False)
    target = os.path.join(WEIGHTS_DIR, f"{args.name}.keras")
    with files.atomic_path(target) as tmp:
        model.save(tmp)
    results = os.path.join(ROOT, "results", args.name)
    figures = {}
    tables = {}
    for key, held_out, flip in (
        ("flip", 1000, True),
        ("no_flip", 1000, False),
        ("flip50", 50, True),
    ):
        summary, joints = evaluate(
            target, args.data_dir, os.path.join(results, key), held_out, flip
        )
        tables[key] = (summary, joints)
        figures[key] = {
            "people": held_out,
            "PCK@0.2": float(summary.loc["Mean", "PCK@0.2"]),
            "PCK@0.1": float(summary.loc["Mean", "PCK@0.1"]),
        }
    os.makedirs(os.path.join(ROOT, "docs/images"), exist_ok=True)
    shutil.copyfile(
        os.path.join(results, "flip/sheet.png"),
        os.path.join(ROOT, "docs/images", f"{args.name}_sheet.png"),
    )
    try:
        with open(INDEX, encoding="utf-8") as f:
            index = json.load(f)
    except FileNotFoundError:
        index = {"default": None, "models": {}}
    codec = model.codec
    index["models"][args.name] = {
        "file": os.path.basename(target),
        "sha256": file_sha256(target),
        "bytes": os.path.getsize(target),
        "description": args.description,
        "skeleton": model.skeleton.name,
        "joints": list(model.skeleton.joint_names),
        "input_size": int(codec.input_size[0]),
        "stacks": int(config["stacks"]),
        "filters": int(config["filters"]),
        "parameters": int(model.count_params()),
        "trained_on": "LSPET (Johnson & Everingham, CVPR 2011): the 7,999 usable people of "
        "im00001-im04000 and im05001-im09000; held out: the last 1,000 present (im09001-im10000)",
        "train_command": train_command(config),
        "checkpoint": args.checkpoint,
        "heldout": figures,
        "shipped": datetime.date.today().isoformat(),
    }
    if args.default or not index.get("default"):
        index["default"] = args.name
    files.write_json(INDEX, index)
    print(json.dumps(index["models"][args.name], indent=2))
    # The card's tables.
    flip_s, flip_j = tables["flip"]
    plain_s, plain_j = tables["no_flip"]
    print("\n| group | PCK@0.2 flip | PCK@0.2 | PCK@0.1 flip | PCK@0.1 |\n|---|---|---|---|---|")
    for group in flip_s.index:
        print(
            f"| {group} | {flip_s.loc[group, 'PCK@0.2']:.2f} | {plain_s.loc[group, 'PCK@0.2']:.2f}"
            f" | {flip_s.loc[group, 'PCK@0.1']:.2f} | {plain_s.loc[group, 'PCK@0.1']:.2f} |"
        )
    print("\n| joint | people | PCK@0.2 flip | PCK@0.2 | PCK@0.1 flip | PCK@0.1 |")
    print("|---|---|---|---|---|---|")
    for joint in flip_j.index:
        print(
            f"| {joint} | {int(flip_j.loc[joint, 'count'])} | {flip_j.loc[joint, 'PCK@0.2']:.2f}"
            f" | {plain_j.loc[joint, 'PCK@0.2']:.2f} | {flip_j.loc[joint, 'PCK@0.1']:.2f}"
            f" | {plain_j.loc[joint, 'PCK@0.1']:.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
