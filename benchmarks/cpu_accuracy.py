"""What the fast CPU runtimes cost in accuracy, on real held-out people: a trained run's best
model scored on its own validation people (LSPET: the last 1,000) with the flip test, through
the float32 SavedModel (the reference), Keras, and OpenVINO in float32, bfloat16 and int8 (the
int8 file calibrated on the first --calibration training people, as train/export.py does).

    python benchmarks/cpu_accuracy.py --run runs/recipe

Lines: `cpu_accuracy runtime=<r> precision=<p> heldout_pck=<pck> delta=<points vs the
SavedModel> px_median=<m> px_p95=<q> within_half_px=<fraction>` (keypoint distances to the
SavedModel's, in original-image pixels, over every joint of every held-out person).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="a train.py run folder")
    parser.add_argument("--model", default="best.keras", help="the model file in the run")
    parser.add_argument("--calibration", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)

    import keras

    from keras_hourglass.datasets import ground_truth_from_records
    from keras_hourglass.deployment import export, runtimes
    from keras_hourglass.deployment.inference import crop_predictor, predict_people
    from keras_hourglass.deployment.saved_model import SavedModelCrops, export_for_serving
    from keras_hourglass.evaluation.protocols import evaluate
    from keras_hourglass.training import loop as training

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import write_results

    with open(os.path.join(args.run, "config.json")) as f:
        values = json.load(f)
    values = {k: v for k, v in values.items() if k in training.TrainConfig.__dataclass_fields__}
    config = training.make_config(values)
    data = training.load_data(config)
    model = keras.saving.load_model(os.path.join(args.run, args.model), compile=False)
    gt = ground_truth_from_records(data.val, normalizer=data.normalizer)
    scratch = tempfile.mkdtemp(prefix="hourglass-accuracy-")
    rows = []
    try:
        saved = export_for_serving(model, os.path.join(scratch, "sm"), None, 1, flip_test=True)
        calibration = export.calibration_crops(model, data.train, args.calibration)
        int8 = export.export_openvino(
            model, os.path.join(scratch, "int8.xml"), precision="int8", calibration=calibration
        )
        bf16 = runtimes.cpu_has_bf16()
        predictors = {
            ("savedmodel", "fp32"): SavedModelCrops(saved),
            ("keras", "fp32"): crop_predictor(model, True),
            ("openvino", "fp32"): runtimes.predictor(model, True, "openvino", "fp32"),
            ("openvino", "int8"): runtimes.OpenVINOPredictor.from_file(
                int8, "bf16" if bf16 else "fp32"
            ),
        }
        if bf16:
            predictors[("openvino", "bf16")] = runtimes.predictor(model, True, "openvino", "bf16")
        reference = None
        for (runtime, precision), predictor in predictors.items():
            preds, _ = predict_people(predictor, data.val, args.batch)
            report = evaluate(preds, gt)
            pck = float(report.summary.set_index("group").loc["Mean"].iloc[0])
            if reference is None:
                reference = (preds, pck)
            distance = np.linalg.norm(preds - reference[0], axis=-1)
            distance = distance[np.isfinite(distance)]
            row = {
                "runtime": runtime,
                "precision": precision,
                "heldout_pck": round(pck, 2),
                "delta": round(pck - reference[1], 2),
                "px_median": round(float(np.median(distance)), 3),
                "px_p95": round(float(np.percentile(distance, 95)), 3),
                "within_half_px": round(float(np.mean(distance <= 0.5)), 4),
                "people": len(data.val),
            }
            rows.append(row)
            print(
                "cpu_accuracy " + " ".join(f"{k}={v}" for k, v in row.items() if k != "people"),
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_results("cpu_accuracy", rows)


if __name__ == "__main__":
    main()
