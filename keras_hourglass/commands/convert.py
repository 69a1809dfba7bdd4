"""Convert a published PyTorch stacked hourglass checkpoint into a self-describing Keras model.

    python train/convert.py checkpoint.pt --out psh-8stack.keras            # princeton-vl
    python train/convert.py model_best.pth.tar --out bearpaw-hg8.keras      # bearpaw/pytorch-pose

The source is told by the tensor names (--source to force it); stacks, features, depth and
joints come from the tensors' shapes. PyTorch is not needed: both of its file formats (the zip
format of PyTorch >= 1.6 and the legacy one, Python 2 pickles included) are read directly, and
nothing in the file that could run code is run. The `.keras` file carries the MPII skeleton, the
source's stem, input mean and decoding convention, and the crop convention, so

    python eval/predict.py photo.jpg --model psh-8stack.keras --out poses/
    python eval/evaluate.py --model psh-8stack.keras --dataset mpii --data-dir ~/data/mpii
    python train/export.py --model psh-8stack.keras

need no other flag. Where to download the checkpoints and what they reach: docs/pretrained.md.
"""

import argparse
import os

from keras_hourglass.cli import add_logging, configure_logging, ready, say
from keras_hourglass.skeletons import SKELETONS


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", help="the PyTorch checkpoint (.pt, .pth, .pth.tar)")
    parser.add_argument("--out", required=True, help="the .keras file to write")
    parser.add_argument(
        "--source",
        choices=["psh", "bearpaw"],
        default=None,
        help="psh (princeton-vl/pytorch_stacked_hourglass) or bearpaw (bearpaw/pytorch-pose); "
        "default: told by the tensor names",
    )
    parser.add_argument(
        "--skeleton",
        default="mpii",
        choices=sorted(SKELETONS),
        help="the joints the checkpoint predicts, in its order (default: mpii, both sources')",
    )
    parser.add_argument(
        "--input-size", type=int, default=256, help="input crop side (default: 256)"
    )
    add_logging(parser)
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    ready()
    if not args.out.endswith(".keras"):
        parser.error(f"--out {args.out!r}: the file name must end in .keras")
    if os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a folder; name the .keras file to write")
    if not os.path.isfile(args.checkpoint):
        parser.error(f"{args.checkpoint}: no such file")

    from keras_hourglass import files
    from keras_hourglass.convert import ConversionError, convert_checkpoint

    try:
        model, report = convert_checkpoint(
            args.checkpoint, args.source, args.skeleton, args.input_size
        )
    except ConversionError as error:
        raise SystemExit(f"error: {error}") from None
    for line in report.lines():
        say(line)
    with files.atomic_path(args.out) as tmp:
        model.save(tmp)
    codec = model.codec
    say(
        f"wrote {args.out}: {args.skeleton} skeleton, {args.input_size} px crops -> "
        f"{codec.heatmap_size[0]} px heatmaps, decoding offset {codec.offset:g} heatmap px"
        + (f", input mean {tuple(model.input_mean)} subtracted inside" if model.input_mean else "")
    )
    return 0
