"""Readers on real data from ../shared (skipped when absent) and on fixtures the tests write."""

import json
import os

import numpy as np
import pytest
from conftest import MPII_VALID_ANNOTATED

import keras_hourglass as kh
from keras_hourglass import datasets as D


def test_mpii_h5_reader_on_the_validation_split(shared_data):
    records = D.read_mpii_h5(
        str(shared_data / "mpii_annot/valid.h5"),
        str(shared_data / "mpii_samples"),
        check_images=False,
    )
    assert len(records) == 2958
    first = records[0]
    assert os.path.basename(first.image_path) == "005808361.jpg"
    # 0-based: the file's 1-based (966, 410.78) centre and (804, 711) right ankle minus 1.
    np.testing.assert_allclose(first.center, [965.0, 409.7773184])
    np.testing.assert_allclose(first.keypoints[0], [803.0, 710.0])
    assert first.scale == pytest.approx(5.898109866728492)
    assert first.normalizer == pytest.approx(117.96219733456985)
    annotated = np.stack([r.annotated for r in records])
    visible = np.stack([r.visible for r in records])
    # 'visible' is occlusion, not annotation (SOURCE.md: 10,243 annotated-but-occluded joints).
    assert (annotated & ~visible).sum() == 10_243
    # Annotated counts match the official ground truth to within the 13 known differences.
    assert np.abs(annotated.sum(axis=0) - MPII_VALID_ANNOTATED).sum() <= 13


def test_mpii_json_and_h5_readers_agree_on_the_five_samples(shared_data):
    from_json = D.read_mpii_json(
        str(shared_data / "mpii_samples/test_mpii.json"), str(shared_data / "mpii_samples")
    )
    from_h5 = D.read_mpii_h5(
        str(shared_data / "mpii_annot/valid.h5"),
        str(shared_data / "mpii_samples"),
        check_images=False,
    )[:5]
    assert len(from_json) == 5
    for a, b in zip(from_json, from_h5):
        assert os.path.basename(a.image_path) == os.path.basename(b.image_path)
        np.testing.assert_array_equal(a.annotated, b.annotated)
        # valid.h5 truncates neck and head top to integers: below 1 px apart.
        assert np.abs(a.keypoints - b.keypoints)[a.annotated].max() < 1.0
        np.testing.assert_allclose(a.center, b.center, atol=1e-4)
        assert a.scale == pytest.approx(b.scale, rel=1e-6)
        assert np.isnan(a.normalizer)  # no head boxes in the JSON


def test_lspet_reader_on_the_shared_subset(shared_data):
    # ../shared holds 9,000 of LSPET's 10,000 images: im04001-im05000 are kept outside on purpose.
    with pytest.raises(D.DatasetError, match=r"record 4000: image .*im04001.jpg.* does not exist"):
        D.read_lsp(str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"))
    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )
    assert len(records) == 9000
    assert records.skipped == {"image does not exist": list(range(4000, 5000))}
    assert "skipped 1000" in records.summary()
    from scipy.io import loadmat

    joints = loadmat(str(shared_data / "lspet/joints.mat"))["joints"]
    r = records[0]
    assert r.image_path.endswith("im00001.jpg")
    np.testing.assert_array_equal(r.annotated, joints[:, 2, 0] > 0)
    np.testing.assert_allclose(r.keypoints[r.annotated], joints[r.annotated, :2, 0] - 1.0)
    s = kh.LSP
    np.testing.assert_allclose(
        r.normalizer,
        np.linalg.norm(r.keypoints[s.index("left_shoulder")] - r.keypoints[s.index("right_hip")]),
    )
    # The box holds every annotated joint.
    for r in records[:200]:
        half = 100 * r.scale
        assert np.all(np.abs(r.keypoints[r.annotated] - r.center) <= half + 1e-6)


def test_lsp_original_layout(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    joints = np.zeros((3, 14, 2))
    joints[:2] = rng.uniform(10, 90, (2, 14, 2))
    joints[2, 3, 1] = 1  # occluded
    savemat(tmp_path / "joints.mat", {"joints": joints})
    (tmp_path / "images").mkdir()
    for k in (1, 2):
        (tmp_path / "images" / f"im{k:04d}.jpg").write_bytes(b"x")
    records = D.read_lsp(str(tmp_path / "joints.mat"), str(tmp_path / "images"))
    assert len(records) == 2 and records[1].image_path.endswith("im0002.jpg")
    assert records[1].annotated.all() and not records[1].visible[3]
    np.testing.assert_allclose(records[0].keypoints, joints[:2, :, 0].T - 1.0)


def test_coco_reader_on_the_shared_samples(shared_data):
    records = D.read_coco(
        str(shared_data / "coco_samples/test_coco.json"), str(shared_data / "coco_samples")
    )
    data = json.loads((shared_data / "coco_samples/test_coco.json").read_text())
    people = [a for a in data["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]
    assert len(records) == len(people) == 12
    assert records.skipped == {
        "no keypoints": [a["id"] for a in data["annotations"] if a["num_keypoints"] == 0]
    }
    for record, ann in zip(records, people):
        values = np.asarray(ann["keypoints"], float).reshape(17, 3)
        np.testing.assert_array_equal(record.annotated, values[:, 2] > 0)
        np.testing.assert_array_equal(record.visible, values[:, 2] == 2)
        assert record.annotated.sum() == ann["num_keypoints"]
        x, y, w, h = ann["bbox"]
        np.testing.assert_allclose(record.center, [x + w / 2 - 0.5, y + h / 2 - 0.5])
        assert record.scale == pytest.approx(max(w, h) * 1.25 / 200)


def write_flic(tmp_path):
    """A three-person FLIC examples.mat (two train, one test; nose missing) and its images;
    returns the struct array written."""
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    dtype = [("coords", "O"), ("filepath", "O"), ("istrain", "O"), ("istest", "O")]
    examples = np.zeros((3,), dtype=dtype)
    for i in range(3):
        coords = rng.uniform(50, 300, (2, 29))
        coords[:, 16] = np.nan  # nose missing
        examples[i] = (coords, f"frame{i}.jpg", i < 2, i == 2)
    savemat(tmp_path / "examples.mat", {"examples": examples})
    for i in range(3):
        (tmp_path / f"frame{i}.jpg").write_bytes(b"x")
    return examples


def test_flic_reader_with_its_split_flags(tmp_path):
    examples = write_flic(tmp_path)
    train = D.read_flic(str(tmp_path / "examples.mat"), str(tmp_path), split="train")
    test = D.read_flic(str(tmp_path / "examples.mat"), str(tmp_path), split="test")
    assert len(train) == 2 and len(test) == 1 and test[0].image_path.endswith("frame2.jpg")
    s = kh.FLIC
    assert not test[0].annotated[s.index("nose")] and test[0].annotated.sum() == 10
    coords = examples[2]["coords"]
    np.testing.assert_allclose(test[0].keypoints[s.index("right_hip")], coords[:, 9] - 1.0)


def test_custom_json_and_csv(tmp_path):
    s = kh.LSP
    (tmp_path / "a.jpg").write_bytes(b"x")
    keypoints = [[10.0 + i, 20.0 + i, 2] for i in range(14)]
    keypoints[5] = [0, 0, 0]
    (tmp_path / "people.json").write_text(
        json.dumps(
            [
                {"image": "a.jpg", "keypoints": keypoints, "box": [0, 0, 100, 50]},
                {"image": "a.jpg", "keypoints": [k[:2] for k in keypoints]},
            ]
        )
    )
    records = D.read_custom(str(tmp_path / "people.json"), s, str(tmp_path))
    assert len(records) == 2
    assert not records[0].annotated[5] and records[1].annotated[5]
    np.testing.assert_allclose(records[0].center, [49.5, 24.5])
    assert records[0].scale == pytest.approx(1.25 * 100 / 200)
    header = ["image"] + [f"{j}_{a}" for j in s.joint_names for a in "xyv"]
    row = ["a.jpg"] + [str(v) for k in keypoints for v in k]
    row[1 + 3 * 2 : 1 + 3 * 3] = ["", "", "0"]  # right_hip empty with v = 0 -> not annotated
    (tmp_path / "people.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    csv_records = D.read_custom(str(tmp_path / "people.csv"), s, str(tmp_path))
    assert len(csv_records) == 1
    assert not csv_records[0].annotated[2] and not csv_records[0].annotated[5]
    np.testing.assert_allclose(csv_records[0].keypoints[0], [10, 20])


@pytest.mark.parametrize(
    "mutate,message",
    [
        (
            lambda rows: rows[1].update(joints=[[np.nan, 1]] + rows[1]["joints"][1:]),
            "record 1: non-finite",
        ),
        (lambda rows: rows[0].update(scale=0.0), "record 0: person scale must be positive"),
        (
            lambda rows: rows[1].update(
                joints=rows[1]["joints"][:15], joints_vis=rows[1]["joints_vis"][:15]
            ),
            "record 1: expected 16 joints",
        ),
        (
            lambda rows: rows[0]["joints"].__setitem__(3, [-5000.0, 10.0]),
            "record 0: annotated joints \\['left_hip'\\]",
        ),
        (
            lambda rows: rows[2].update(image="missing.jpg"),
            "record 2: image .*missing.jpg.* does not exist",
        ),
    ],
)
def test_bad_records_stop_with_the_file_and_record_named(tmp_path, mutate, message):
    rows = []
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(b"x")
        rows.append(
            {
                "image": f"{i}.jpg",
                "joints": [[100.0 + j, 100.0 + 2 * j] for j in range(16)],
                "joints_vis": [1] * 16,
                "center": [110.0, 120.0],
                "scale": 1.0,
            }
        )
    mutate(rows)
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(D.DatasetError, match=message) as error:
        D.read_mpii_json(str(path), str(tmp_path))
    assert str(path) in str(error.value)
    # Asked to skip, the reader leaves the bad record out and says which.
    records = D.read_mpii_json(str(path), str(tmp_path), skip_bad=True)
    assert len(records) == 2
    assert sum(len(ids) for ids in records.skipped.values()) == 1


def test_empty_dataset_and_unknown_names(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(D.DatasetError, match="no usable people"):
        D.read_mpii_json(str(tmp_path / "empty.json"), str(tmp_path))
    with pytest.raises(ValueError, match="Unknown dataset 'mpi'"):
        D.read_dataset("mpi", str(tmp_path))
    with pytest.raises(D.DatasetError, match="no annot/valid.h5"):
        D.read_dataset("mpii", str(tmp_path))


def test_image_checks_name_truncated_and_non_image_files(tmp_path, shared_data):
    good = (shared_data / "mpii_samples/052475643.jpg").read_bytes()
    (tmp_path / "ok.jpg").write_bytes(good)
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.jpg").write_bytes(b"not an image at all")
    (tmp_path / "empty.jpg").write_bytes(b"")

    def record(name):
        return D.PersonRecord(
            str(tmp_path / name),
            np.zeros((1, 2)),
            np.ones(1, bool),
            np.ones(1, bool),
            np.zeros(2),
            1.0,
            1.0,
            name,
        )

    D.check_image_files([record("ok.jpg")])
    for name, message in (
        ("cut.jpg", "truncated JPEG"),
        ("text.jpg", "neither JPEG nor PNG"),
        ("empty.jpg", "is empty"),
    ):
        with pytest.raises(D.DatasetError, match=f"record {name}: image .*{name}.* {message}"):
            D.check_image_files([record("ok.jpg"), record(name)])
    # With skip_bad each is left out and listed under its reason, as a missing image is.
    kept = D.check_image_files(
        [record("ok.jpg"), record("cut.jpg"), record("text.jpg"), record("empty.jpg")],
        skip_bad=True,
    )
    assert [r.record_id for r in kept] == ["ok.jpg"]
    assert kept.skipped == {
        "truncated image": ["cut.jpg"],
        "not a JPEG or PNG image": ["text.jpg"],
        "empty image": ["empty.jpg"],
    }
    with pytest.raises(D.DatasetError, match="no usable people"):
        D.check_image_files([record("cut.jpg")], skip_bad=True)


def test_one_image_check_says_the_same_everywhere(tmp_path, shared_data):
    """Issue #49 item 5: a training record's image, a user's photo and a serving client's
    request go through one check (`datasets.check_image_bytes`): the same file gives the same
    words after each reader's own name for it."""
    import importlib

    from keras_hourglass.poses.media import InputError, check_image

    client = importlib.import_module("keras_hourglass.commands.serving_client")
    from PIL import Image

    good = (shared_data / "mpii_samples/052475643.jpg").read_bytes()
    Image.open(shared_data / "mpii_samples/052475643.jpg").save(tmp_path / "whole.png")
    png = (tmp_path / "whole.png").read_bytes()
    cases = {"cut.jpg": good[: len(good) // 2], "cut.png": png[:-20], "empty.jpg": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        record = D.PersonRecord(
            str(tmp_path / name), np.zeros((1, 2)), np.ones(1, bool), np.ones(1, bool),
            np.zeros(2), 1.0, 1.0, name,
        )  # fmt: skip
        said = []
        for check, error in (
            (lambda: D.check_image_files([record]), D.DatasetError),
            (lambda: check_image(str(tmp_path / name)), InputError),
            (lambda: client.check_images([data]), client.RequestError),
        ):
            with pytest.raises(error) as raised:
                check()
            said.append(str(raised.value).rpartition(": ")[2])
        if data:
            assert len(set(said)) == 1, (name, said)
        else:  # the client refuses empty bytes before the file check, naming the type
            assert said[0] == said[1] and "length 0" in said[2], said


def test_duplicate_records_and_annotation_ids_are_refused_or_listed(tmp_path):
    """The same person twice (same image, same joints) and two COCO annotations with one id:
    an error naming both, or with skip_bad the copy skipped and listed."""
    from PIL import Image

    _skeleton_file(tmp_path / "skeleton.json")
    Image.new("RGB", (50, 40)).save(tmp_path / "a.png")
    row = {"image": "a.png", "keypoints": [[5, 5], [9, 5], [20, 20], [2, 3], [30, 4]]}
    other = dict(row, keypoints=[[6, 5], [9, 6], [21, 20], [2, 4], [30, 5]])
    (tmp_path / "train.json").write_text(json.dumps([row, other, dict(row, box=[0, 0, 40, 30])]))
    with pytest.raises(D.DatasetError, match=r"record 2: the same image and joints as record 0"):
        D.read_dataset("custom", tmp_path, "train")
    records = D.read_dataset("custom", tmp_path, "train", skip_bad=True)
    assert len(records) == 2 and records.skipped == {"duplicate of an earlier record": ["2"]}
    person = {"image_id": 1, "bbox": [1, 1, 20, 30], "num_keypoints": 1, "iscrowd": 0}
    keypoints = [0] * 51
    keypoints[:3] = [5, 5, 2]
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}],
        "annotations": [
            dict(person, id=7, keypoints=keypoints),
            dict(
                person, id=7, keypoints=[v + 1 if i % 3 < 2 else v for i, v in enumerate(keypoints)]
            ),
        ],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    with pytest.raises(
        D.DatasetError, match=r"record 7: annotations\[1\] has the id of annotations\[0\]"
    ):
        D.read_coco(str(tmp_path / "coco.json"), str(tmp_path))
    records = D.read_coco(str(tmp_path / "coco.json"), str(tmp_path), skip_bad=True)
    assert len(records) == 1 and records.skipped == {"duplicate annotation id": [7]}


def test_lspet_record_8074_is_skipped_and_listed_with_skip_bad(shared_data):
    """LSPET record 8074 (im08075.jpg, 241 x 161) has an annotated joint 145 px right of its image:
    an error without --skip-bad, with it a skipped record listed beside the missing images, and
    the held-out people stay the last 1,000 present."""
    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )
    with pytest.raises(D.DatasetError, match=r"record 8074: annotated joints .* far outside"):
        D.check_image_files(records)
    kept = D.check_image_files(records, skip_bad=True)
    assert len(kept) == 8999 and "8074" not in {r.record_id for r in kept}
    assert kept.skipped == {
        "image does not exist": list(range(4000, 5000)),
        "coordinates far outside the image": ["8074"],
    }
    assert "skipped 1 (coordinates far outside the image): 8074" in kept.summary()
    assert kept.source == records.source and kept.skeleton is records.skeleton
    assert [r.record_id for r in kept.subset(-1000, None)] == [str(i) for i in range(9000, 10000)]


# --- custom data: a skeleton file and a folder -------------------------------------------------


def _skeleton_file(path, **changes):
    table = {
        "name": "hand",
        "joint_names": ["wrist", "thumb", "index", "left_mark", "right_mark"],
        "flip_pairs": [["left_mark", "right_mark"]],
        "limbs": [["wrist", "thumb"]],
        "normalizer": ["joints", ["wrist", "index"]],
    }
    table.update(changes)
    table = {k: v for k, v in table.items() if v is not None}
    path.write_text(json.dumps(table))
    return path


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"flip_pairs": [["left_mark", "right_hand"]]}, "no joint 'right_hand'"),
        ({"joint_names": ["wrist", "wrist", "index", "left_mark", "right_mark"]}, "duplicate"),
        ({"normalizer": None}, "needs a normalizer"),
        ({"limbs": [["wrist"]]}, "limbs must be a list of"),
        ({"joint_names": "wrist"}, "joint_names must be a list"),
    ],
)
def test_bad_skeleton_files_are_refused_naming_the_file(tmp_path, changes, message):
    path = _skeleton_file(tmp_path / "skeleton.json", **changes)
    with pytest.raises(ValueError, match=message) as error:
        kh.read_skeleton(path)
    assert "skeleton.json" in str(error.value)


def test_a_skeleton_file_in_yaml_with_defaults(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "joint_names: [a, b, c]\nnormalizer: {joints: [a, c]}\ngroups: {AB: [a, b]}\n"
    )
    skeleton = kh.read_skeleton(tmp_path / "s.yaml")
    assert skeleton.name == "s" and skeleton.flip_index == (0, 1, 2)
    assert skeleton.groups == (("AB", ("a", "b")),) and skeleton.normalizer == (
        "joints",
        ("a", "c"),
    )


def test_custom_folder_reads_with_its_skeleton_and_refuses_a_disagreeing_file(tmp_path):
    _skeleton_file(tmp_path / "skeleton.json")
    from PIL import Image

    Image.new("RGB", (50, 40)).save(tmp_path / "a.png")
    row = {"image": "a.png", "keypoints": [[5, 5], [9, 5], [20, 20], [2, 3], [30, 4]]}
    other = [[6, 5], [9, 6], [21, 20], [2, 4], [30, 5]]  # another person (a copy is refused)
    (tmp_path / "train.json").write_text(
        json.dumps([row, dict(row, keypoints=other, box=[0, 0, 40, 30])])
    )
    records = D.read_dataset("custom", tmp_path, "train")
    assert len(records) == 2 and records.skeleton.name == "hand"
    # 4 joints against a 5-joint skeleton: refused, naming the file, record and skeleton.
    (tmp_path / "test.json").write_text(json.dumps([dict(row, keypoints=row["keypoints"][:4])]))
    with pytest.raises(D.DatasetError, match=r"test.json, record 0: .*5 rows .*hand"):
        D.read_dataset("custom", tmp_path, "test")
    # Without a skeleton file beside the annotations, a clear error.
    (tmp_path / "skeleton.json").unlink()
    with pytest.raises(D.DatasetError, match="needs its skeleton"):
        D.read_dataset("custom", tmp_path, "train")
    # center/scale and normalizer are read; box and center together are refused.
    _skeleton_file(tmp_path / "skeleton.json")
    (tmp_path / "valid.json").write_text(
        json.dumps([dict(row, center=[25, 20], scale=0.2, normalizer=7.5)])
    )
    (valid,) = D.read_dataset("custom", tmp_path, "valid")
    assert valid.scale == 0.2 and valid.normalizer == 7.5 and list(valid.center) == [25, 20]
    (tmp_path / "valid.json").write_text(json.dumps([dict(row, center=[25, 20], box=[0, 0, 9, 9])]))
    with pytest.raises(D.DatasetError, match="either 'box' or 'center'"):
        D.read_dataset("custom", tmp_path, "valid")
