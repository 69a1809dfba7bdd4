"""The embedded default dataset: procedural stick figures with exact keypoints.

Each sample is a frontal articulated figure (torso, head with a face, two arms, two legs) drawn
with random pose, limb lengths and thickness, clothing colours, on a cluttered background with
distractor limbs and, sometimes, an occluding block. Keypoints are exact and in the MPII 16-joint
order, so everything that works on MPII works on it. The figure faces the camera, so the
person's right side is on the image's left and left/right stay learnable (and flip-consistent).

It is what the demo trains on and what tests learn from, deterministic per (seed, index), and
needs no download. It is not a substitute for the real dataset readers.

The renderer is pure NumPy. The `synthetic` dataset (`keras_hourglass.datasets.synthetic`)
renders its figures into an ordinary data folder that every command reads like any dataset.
"""

import numpy as np

# Joint indices (MPII order).
_R_ANKLE, _R_KNEE, _R_HIP, _L_HIP, _L_KNEE, _L_ANKLE = 0, 1, 2, 3, 4, 5
_PELVIS, _THORAX, _NECK, _HEAD = 6, 7, 8, 9
_R_WRIST, _R_ELBOW, _R_SHOULDER, _L_SHOULDER, _L_ELBOW, _L_WRIST = 10, 11, 12, 13, 14, 15


def _rotate(vector, degrees):
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])


def _random_pose(rng, size):
    """Returns (16, 2) float64 joint positions in pixel-index coordinates."""
    height = rng.uniform(0.5, 0.85) * size  # head top to ankles when standing
    pelvis = np.array([size / 2, size / 2]) + rng.uniform(-0.1, 0.1, 2) * size
    pelvis[1] += 0.05 * size
    torso_angle = np.clip(rng.normal(0.0, 15.0), -40.0, 40.0)
    up = _rotate(np.array([0.0, -1.0]), torso_angle)
    across = _rotate(np.array([1.0, 0.0]), torso_angle)  # towards the person's left
    jitter = lambda: rng.uniform(0.85, 1.15)  # noqa: E731

    joints = np.zeros((16, 2))
    joints[_PELVIS] = pelvis
    joints[_THORAX] = pelvis + up * 0.30 * height * jitter()
    joints[_NECK] = joints[_THORAX] + up * 0.07 * height * jitter()
    joints[_HEAD] = joints[_NECK] + _rotate(up, rng.normal(0, 12)) * 0.13 * height * jitter()
    hip_half = 0.07 * height * jitter()
    shoulder_half = 0.11 * height * jitter()
    joints[_R_HIP] = pelvis - across * hip_half
    joints[_L_HIP] = pelvis + across * hip_half
    joints[_R_SHOULDER] = joints[_THORAX] - across * shoulder_half
    joints[_L_SHOULDER] = joints[_THORAX] + across * shoulder_half

    down = -up
    for side, hip, knee, ankle in ((-1, _R_HIP, _R_KNEE, _R_ANKLE), (1, _L_HIP, _L_KNEE, _L_ANKLE)):
        # Legs swing mostly outwards; knees bend either way.
        thigh = _rotate(down, -side * rng.normal(12, 25))
        shin = _rotate(thigh, rng.normal(0, 35))
        joints[knee] = joints[hip] + thigh * 0.25 * height * jitter()
        joints[ankle] = joints[knee] + shin * 0.25 * height * jitter()
    for side, shoulder, elbow, wrist in (
        (-1, _R_SHOULDER, _R_ELBOW, _R_WRIST),
        (1, _L_SHOULDER, _L_ELBOW, _L_WRIST),
    ):
        upper = _rotate(down, -side * rng.uniform(-30, 170))
        fore = _rotate(upper, rng.uniform(-150, 150))
        joints[elbow] = joints[shoulder] + upper * 0.17 * height * jitter()
        joints[wrist] = joints[elbow] + fore * 0.15 * height * jitter()
    return joints


class _Canvas:
    """A float32 RGB image with anti-aliased primitives drawn by alpha blending."""

    def __init__(self, size, background):
        self.size = size
        self.image = np.empty((size, size, 3), np.float32)
        self.image[:] = background
        self.yy, self.xx = np.mgrid[0:size, 0:size].astype(np.float32)

    def _blend(self, y0, y1, x0, x1, alpha, colour):
        if alpha is None:
            return
        region = self.image[y0:y1, x0:x1]
        region += alpha[..., None] * (np.asarray(colour, np.float32) - region)

    def _window(self, points, margin):
        lo = np.floor(points.min(axis=0) - margin).astype(int)
        hi = np.ceil(points.max(axis=0) + margin).astype(int) + 1
        x0, y0 = np.clip(lo, 0, self.size)
        x1, y1 = np.clip(hi, 0, self.size)
        return y0, y1, x0, x1

    def segment(self, p0, p1, radius, colour):
        p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
        y0, y1, x0, x1 = self._window(np.stack([p0, p1]), radius + 1)
        if y0 >= y1 or x0 >= x1:
            return
        xx, yy = self.xx[y0:y1, x0:x1], self.yy[y0:y1, x0:x1]
        d = p1 - p0
        length2 = max(float(d @ d), 1e-6)
        t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / length2, 0.0, 1.0)
        dist = np.hypot(xx - (p0[0] + t * d[0]), yy - (p0[1] + t * d[1]))
        self._blend(y0, y1, x0, x1, np.clip(radius + 0.5 - dist, 0.0, 1.0), colour)

    def disc(self, centre, radius, colour):
        self.segment(centre, centre, radius, colour)

    def rectangle(self, corner, extent, angle, colour):
        centre = np.asarray(corner, np.float32) + np.asarray(extent, np.float32) / 2
        half = np.abs(np.asarray(extent, np.float32)) / 2
        y0, y1, x0, x1 = self._window(np.stack([centre]), float(np.hypot(*half)) + 1)
        if y0 >= y1 or x0 >= x1:
            return
        c, s = np.cos(angle), np.sin(angle)
        dx = self.xx[y0:y1, x0:x1] - centre[0]
        dy = self.yy[y0:y1, x0:x1] - centre[1]
        u, v = c * dx + s * dy, -s * dx + c * dy
        inside = np.minimum(half[0] + 0.5 - np.abs(u), half[1] + 0.5 - np.abs(v))
        self._blend(y0, y1, x0, x1, np.clip(inside, 0.0, 1.0), colour)


def render_stick_figure(seed, index, size=256):
    """Renders one synthetic person.

    Args:
        seed: dataset seed; (seed, index) fixes the sample.
        index: sample index.
        size: side of the square image in pixels.

    Returns:
        image: (size, size, 3) uint8 RGB.
        keypoints: (16, 2) float32 (x, y) in pixel-index coordinates, MPII joint order.
        visible: (16,) float32, 1 where the joint is annotated: inside the image and not randomly
            left unannotated (about 3% of joints, to exercise all-zero targets).
    """
    rng = np.random.default_rng([int(seed), int(index), 0x5EED])
    joints = _random_pose(rng, size)
    image = _draw_figure(joints, rng, size)
    inside = np.all((joints >= -0.5) & (joints < size - 0.5), axis=1)
    annotated = rng.uniform(size=16) >= 0.03
    visible = (inside & annotated).astype(np.float32)
    return image, joints.astype(np.float32), visible


def moving_figure(num_frames, seed=0, size=256):
    """A figure that moves: frames of one scene (the same background, clothes and clutter)
    whose figure goes smoothly from one random pose to another, drifting sideways; for videos
    with known joints (the labelling page's tests).

    Returns:
        frames (N, size, size, 3) uint8 RGB, keypoints (N, 16, 2) float32 (MPII order).
    """
    poses = np.random.default_rng([int(seed), 0xF16]).integers(1 << 30, size=2)
    start, end = (_random_pose(np.random.default_rng([int(seed), int(p)]), size) for p in poses)
    frames, keypoints = [], []
    for i in range(num_frames):
        t = i / max(num_frames - 1, 1)
        joints = (1 - t) * start + t * end + np.array([(t - 0.5) * 0.2 * size, 0.0])
        scene = np.random.default_rng([int(seed), 0x5CE])  # the same scene in every frame
        frames.append(_draw_figure(joints, scene, size))
        keypoints.append(joints.astype(np.float32))
    return np.stack(frames), np.stack(keypoints)


def _draw_figure(joints, rng, size):
    """The (size, size, 3) uint8 image of a figure with `joints` on a cluttered background,
    colours and clutter drawn from `rng`."""
    canvas = _Canvas(size, rng.uniform(0, 1, 3))
    # Background: a colour gradient and clutter, including limb-like distractors.
    gradient = rng.uniform(-0.3, 0.3, 3).astype(np.float32)
    canvas.image += gradient * (canvas.yy[..., None] / size - 0.5)
    for _ in range(rng.integers(3, 9)):
        kind = rng.integers(3)
        colour = rng.uniform(0, 1, 3)
        if kind == 0:
            canvas.rectangle(
                rng.uniform(-0.2, 1.0, 2) * size,
                rng.uniform(0.05, 0.4, 2) * size,
                rng.uniform(0, np.pi),
                colour,
            )
        elif kind == 1:
            canvas.disc(rng.uniform(0, 1, 2) * size, rng.uniform(0.02, 0.12) * size, colour)
        else:
            start = rng.uniform(0, 1, 2) * size
            end = (
                start
                + _rotate(np.array([1.0, 0.0]), rng.uniform(0, 360)) * rng.uniform(0.1, 0.3) * size
            )
            canvas.segment(start, end, rng.uniform(0.01, 0.03) * size, colour)

    # The figure: legs, torso, arms, head; clothes and skin colours per figure.
    limb_radius = rng.uniform(0.018, 0.035) * size
    trousers, shirt, skin = rng.uniform(0, 1, (3, 3))
    for a, b in ((_R_HIP, _R_KNEE), (_R_KNEE, _R_ANKLE), (_L_HIP, _L_KNEE), (_L_KNEE, _L_ANKLE)):
        canvas.segment(joints[a], joints[b], limb_radius * 1.2, trousers)
    canvas.segment(joints[_R_HIP], joints[_L_HIP], limb_radius * 1.3, trousers)
    torso_radius = 0.5 * np.linalg.norm(joints[_R_HIP] - joints[_L_HIP]) + limb_radius
    canvas.segment(joints[_PELVIS], joints[_THORAX], torso_radius, shirt)
    canvas.segment(joints[_R_SHOULDER], joints[_L_SHOULDER], limb_radius * 1.2, shirt)
    for a, b in ((_R_SHOULDER, _R_ELBOW), (_L_SHOULDER, _L_ELBOW)):
        canvas.segment(joints[a], joints[b], limb_radius, shirt)
    for a, b in ((_R_ELBOW, _R_WRIST), (_L_ELBOW, _L_WRIST)):
        canvas.segment(joints[a], joints[b], limb_radius * 0.85, skin)
    canvas.segment(joints[_THORAX], joints[_NECK], limb_radius * 0.8, skin)
    head_centre = 0.5 * (joints[_NECK] + joints[_HEAD])
    head_radius = 0.5 * np.linalg.norm(joints[_HEAD] - joints[_NECK])
    canvas.disc(head_centre, head_radius, skin)
    # A face marks the front of the head.
    axis = (joints[_HEAD] - joints[_NECK]) / max(2 * head_radius, 1e-6)
    across = np.array([-axis[1], axis[0]])
    for side in (-1, 1):
        eye = head_centre + axis * 0.2 * head_radius + across * side * 0.35 * head_radius
        canvas.disc(eye, max(0.12 * head_radius, 0.6), (0.05, 0.05, 0.05))

    # Sometimes an occluder in front of the figure; occluded joints stay annotated (as in MPII).
    if rng.uniform() < 0.3:
        target = joints[rng.integers(16)]
        canvas.rectangle(
            target - rng.uniform(0.05, 0.15, 2) * size,
            rng.uniform(0.1, 0.3, 2) * size,
            rng.uniform(0, np.pi),
            rng.uniform(0, 1, 3),
        )

    image = canvas.image + rng.normal(0, rng.uniform(0, 0.04), canvas.image.shape)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def synthetic_arrays(num_samples, seed=0, size=256, start=0):
    """Renders samples [start, start + num_samples) into NumPy arrays.

    Returns:
        images (N, size, size, 3) uint8, keypoints (N, 16, 2) float32, visible (N, 16) float32.
    """
    samples = [render_stick_figure(seed, start + i, size) for i in range(num_samples)]
    images, keypoints, visible = (np.stack(parts) for parts in zip(*samples))
    return images, keypoints, visible
