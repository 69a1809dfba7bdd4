"""The augmentation's settings and its random draws, shared by both input executors."""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random augmentation of training crops.

    - scale: the person box is multiplied by clip(1 + N(0, scale_sigma), *scale_range); the
      reference code draws a Gaussian clamped at 2 sigma, the paper's range is 0.75-1.25, so
      sigma = 0.125.
    - rotation: with probability `rotation_prob` (0.4 as in pose-hg-train, which rotates 40% of
      samples) by clip(N(0, rotation_sigma), +-rotation_max) degrees: the paper's +-30 deg as the
      reference's 2-sigma clamp.
    - flip: horizontal flip with probability 0.5 and left/right joint swap (reference and paper).
    - colour: each RGB channel multiplied by U(0.6, 1.4) and clipped to [0, 1] (reference), on
      every sample, flipped or not.
    - shift (not the paper's; 0 by default): the crop's centre moved by clip(N(0, shift_sigma),
      +-2 shift_sigma) of the crop's side per axis, as a person detector's boxes are off
      centre (`draw_shift_numpy`; tf.data draws its own; not the device executor).

    The tf.data pipeline draws these with TensorFlow's stateless random ops, the TensorFlow-free
    pipeline with `draw_numpy`: the same distributions, each a function of (seed, element
    counter) only, but not the same numbers (the two generators differ).
    """

    scale_sigma: float = 0.125
    scale_range: tuple = (0.75, 1.25)
    rotation_prob: float = 0.4
    rotation_sigma: float = 15.0
    rotation_max: float = 30.0
    flip_prob: float = 0.5
    colour_range: tuple = (0.6, 1.4)
    shift_sigma: float = 0.0

    @property
    def margin(self):
        """How much larger than the person box a crop must be to hold any augmented crop."""
        a = math.radians(self.rotation_max)
        return self.scale_range[1] * (abs(math.cos(a)) + abs(math.sin(a)))

    def draw_numpy(self, seed, counter):
        """(scale factor, angle in radians, flip, colour gains (3,)) for element `counter` of a
        pipeline seeded `seed`, from NumPy's generator seeded with (seed, counter)."""
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(counter), 0x617567])
        normals = rng.standard_normal(2)
        uniforms = rng.random(2)
        gains = rng.uniform(self.colour_range[0], self.colour_range[1], 3)
        scale = float(np.clip(1.0 + self.scale_sigma * normals[0], *self.scale_range))
        angle = float(
            np.clip(self.rotation_sigma * normals[1], -self.rotation_max, self.rotation_max)
        )
        angle = angle if uniforms[0] < self.rotation_prob else 0.0
        flip = bool(uniforms[1] < self.flip_prob)
        return scale, math.radians(angle), flip, gains.astype(np.float32)

    def draw_shift_numpy(self, seed, counter):
        """The centre's shift (2,) as a fraction of the crop's side for element `counter`, from
        its own NumPy generator (so the other draws stay as they were); zeros when off."""
        if not self.shift_sigma:
            return np.zeros(2)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(counter), 0x736869])
        limit = 2.0 * self.shift_sigma
        return np.clip(self.shift_sigma * rng.standard_normal(2), -limit, limit)
