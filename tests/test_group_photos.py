"""Everyone in a group photo (issue #50): the person detector over tiles and scales with
person-level suppression (`detect.TiledDetector`, `--detect-scales`), the detector table
(`--detector`), and the group benchmark's scoring."""

import numpy as np
import pytest
from conftest import benchmark_module
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_hourglass as kh
from keras_hourglass.poses import detect
from keras_hourglass.poses.boxes import Box


@pytest.mark.parametrize("height, width", [(480, 640), (101, 37), (960, 960)])
@pytest.mark.parametrize("grid", [1, 2, 3])
def test_tiles_cover_the_photo_and_overlap(height, width, grid):
    found = detect.tiles(height, width, grid)
    assert len(found) == grid * grid
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in found:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    if grid == 1:
        assert found == [(0, 0, width, height)]
    elif width >= 2 * grid:  # neighbours share a band: a person on the seam is whole in one
        a1, b0 = found[0][2], found[1][0]
        assert b0 < a1 and a1 - b0 >= 0.2 * (width / grid)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_detect_scales_parse_or_say_why(text):
    try:
        scales = detect.parse_scales(text)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert scales and all(1 <= s <= 8 for s in scales) and len(set(scales)) == len(scales)


def test_detect_scales_examples():
    assert detect.parse_scales("1") == (1,)
    assert detect.parse_scales("1,2,3") == (1, 2, 3)
    for bad in ("", "0", "1,1", "9", "a", "1.5"):
        with pytest.raises(ValueError):
            detect.parse_scales(bad)


class _SquareFinder:
    """A stand-in detector that, like BlazePose, misses small people: it finds each white square
    only when the square is at least a quarter of the image's longer side."""

    def __init__(self):
        self.calls = 0

    def __call__(self, pixels):
        self.calls += 1
        mask = pixels[..., 0] > 200
        found = []
        rows, cols = np.nonzero(mask)
        if not len(rows):
            return []
        # the squares are 40 px apart at least: label them by a coarse grid of 100 px
        for key in sorted(set(zip(rows // 100, cols // 100))):
            inside = (rows // 100 == key[0]) & (cols // 100 == key[1])
            y0, y1 = rows[inside].min(), rows[inside].max() + 1
            x0, x1 = cols[inside].min(), cols[inside].max() + 1
            whole = y0 > 0 and x0 > 0 and y1 < pixels.shape[0] and x1 < pixels.shape[1]
            if max(y1 - y0, x1 - x0) >= 0.25 * max(pixels.shape[:2]) and whole:
                found.append(Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0), 0.9))
        return found


def _squares(grid=3, cell=100, side=40):
    pixels = np.zeros((grid * cell, grid * cell, 3), np.uint8)
    truth = []
    for r in range(grid):
        for c in range(grid):
            x, y = c * cell + 30, r * cell + 30
            pixels[y : y + side, x : x + side] = 255
            truth.append((x, y))
    return pixels, truth


def test_tiles_find_the_small_people_once_each_in_photo_pixels():
    pixels, truth = _squares()
    finder = _SquareFinder()
    assert finder(pixels) == []  # each square is a tenth of the photo: too small
    tiled = detect.TiledDetector(finder, scales=(1, 2, 3))
    finder.calls = 0
    boxes = tiled(pixels)
    assert finder.calls == 1 + 4 + 4 + 9  # the 2x2 tiles find no one: each turned too
    assert sorted((round(b.x), round(b.y)) for b in boxes) == sorted(truth)  # once each


def test_make_detector_reads_the_table():
    assert "blazepose" in detect.DETECTORS
    with pytest.raises(detect.DetectorError, match="unknown person detector"):
        detect.make_detector("yolo")


def test_the_command_refuses_bad_detect_scales(capsys):
    from keras_hourglass.commands.predict import parse_args

    with pytest.raises(SystemExit) as stop:
        parse_args(["photo.jpg", "--detect-scales", "0,2"])
    assert stop.value.code == 2
    assert "--detect-scales" in capsys.readouterr().err


def _benchmark():
    return benchmark_module("group_accuracy")


def test_the_group_benchmark_pairs_people_one_to_one():
    """Two annotated people: the same reported person twice counts once; a person not reported
    scores 0; a reported person far from everyone pairs with no one."""
    bench = _benchmark()
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 100, (14, 2))
    a[bench.TORSO[0]], a[bench.TORSO[1]] = [50, 0], [50, 100]
    b = a + [300.0, 0.0]
    visible = np.ones(14, bool)
    groups = [("g.jpg", [(a, visible), (b, visible)])]
    conf = np.ones(14)
    pck, recall, per, scored = bench.score_groups(groups, {"g.jpg": [(a, conf), (b, conf)]})
    assert (pck, recall, per, scored) == (100.0, 1.0, 1.0, 2)
    pck, recall, per, _ = bench.score_groups(groups, {"g.jpg": [(a, conf), (a + 1, conf)]})
    assert (pck, recall, per) == (50.0, 0.5, 1.0)
    pck, recall, per, _ = bench.score_groups(groups, {"g.jpg": [(a + 1000, conf)]})
    assert (pck, recall, per) == (0.0, 0.0, 0.5)


def test_a_held_out_group_photo_is_found_person_by_person(shared_data, tmp_path):
    """Nine held-out LSPET photos tiled 3x3: the detector on the whole photo finds few of them;
    over tiles (--detect-scales 1,2,3) most are found and their poses match the annotation."""
    from keras_hourglass.poses.estimator import PoseEstimator
    from keras_hourglass.poses.media import read_image

    bench = _benchmark()
    people = bench.lspet_people(str(shared_data / "lspet"), 9001, 9009)
    groups = bench.build_groups(people, str(shared_data / "lspet"), 3, 320, str(tmp_path))
    pixels = read_image(str(tmp_path / groups[0][0]))[1]
    figures = {}
    for scales in [(1,), (1, 2, 3)]:
        estimator = PoseEstimator(kh.pretrained_path(), detect_scales=scales)
        poses = estimator.image(None, pixels)
        found = [(kp, sc) for kp, sc in zip(poses.keypoints, poses.scores)]
        figures[scales] = bench.score_groups(groups, {groups[0][0]: found})
    assert figures[(1,)][1] <= 0.4, figures  # recall: the single-scale detector misses most
    assert figures[(1, 2, 3)][1] >= 0.5 and figures[(1, 2, 3)][0] >= 30, figures
    assert figures[(1, 2, 3)][2] <= 1.25, figures  # no phantom people


def test_a_neighbours_limb_does_not_pull_the_crop_over():
    """Among several people a person is re-framed from its own joints: two unconfident joints
    on the neighbour (far outside the first crop) are left out of the framing, a confident
    one is kept; alone (no `within`), every joint frames the person."""
    from keras_hourglass.poses import framing

    rng = np.random.default_rng(0)
    keypoints = rng.uniform(80, 120, (14, 2))
    scores = np.full(14, 0.6)
    keypoints[[0, 1]] = [[400, 100], [410, 110]]  # on the neighbour, 300 px away
    scores[[0, 1]] = 0.1
    first = framing.Framing(100.0, 100.0, 60.0)
    own = framing.pose_framing(keypoints, scores, kh.LSP, first, within=first)
    alone = framing.pose_framing(keypoints, scores, kh.LSP, first)
    assert own.side < 60 and abs(own.cx - 100) < 20
    assert alone.side > 300 * 1.25 - 50
    scores[0] = 0.9  # confident: it is this person's
    assert framing.pose_framing(keypoints, scores, kh.LSP, first, within=first).side > 300


def test_tiles_under_people_already_followed_are_not_looked_at():
    """A video's tiled detection skips the tiles (grids above 1) that the people followed cover
    (`covered`): fewer detector calls, the whole photo and the uncovered tiles still seen."""
    seen = []

    def detector(pixels):
        seen.append(pixels.shape[:2])
        return []

    tiled = detect.TiledDetector(detector, (1, 2, 3), turned=False)
    pixels = np.zeros((300, 600, 3), np.uint8)
    tiled(pixels)
    assert len(seen) == 1 + 4 + 9
    seen.clear()
    tiled(pixels, covered=[[0, 0, 330, 300]])  # the left half and a bit is followed
    assert (300, 600) in seen  # the whole photo
    open_tiles = [  # tiles less than half inside x < 330
        t
        for grid in (2, 3)
        for t in detect.tiles(300, 600, grid)
        if (min(t[2], 330) - t[0]) / (t[2] - t[0]) < detect.COVERED
    ]
    assert len(open_tiles) == 2 + 3 and len(seen) == 1 + len(open_tiles)
    seen.clear()
    tiled(pixels, covered=[[290, 140, 20, 20]])  # a small person covers no tile
    assert len(seen) == 1 + 4 + 9
