"""Constant-velocity Kalman filter over (cx, cy, aspect, height), batched over every track at once.

The state and noise model are ByteTrack's / DeepSORT's (Wojke et al. 2017, Zhang et al. 2022):
state ``[x, y, a, h, vx, vy, va, vh]``, process and measurement noise proportional to the box
height. All tracks are predicted and updated with one batched ``einsum`` / ``solve`` instead of
one 8x8 product per track, which keeps 50 tracks well under a millisecond in numpy.

Example:
    >>> import numpy as np
    >>> kf = BatchKalman()
    >>> mean, cov = kf.initiate(np.array([[10., 20., 0.5, 40.]]))
    >>> mean, cov = kf.predict(mean, cov)
    >>> mean, cov = kf.update(mean, cov, np.array([[12., 20., 0.5, 40.]]))
    >>> round(float(mean[0, 0]), 1), bool(mean[0, 4] > 0)        # moved right, velocity picked up
    (11.7, True)
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

_W_POS = 1.0 / 20
_W_VEL = 1.0 / 160
_PRED_W = np.array([_W_POS, _W_POS, 0.0, _W_POS, _W_VEL, _W_VEL, 0.0, _W_VEL])
_ONES4 = np.ones(4)
_I8, _I4 = np.arange(8), np.arange(4)


class BatchKalman:
    def __init__(self) -> None:
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)  # dt = 1 frame
        self.H = np.eye(4, 8)

    def initiate(self, z: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(n, 4) xyah measurements -> (n, 8) means, (n, 8, 8) covariances."""
        z = np.asarray(z, np.float64).reshape(-1, 4)
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        h = z[:, 3]
        std = np.stack([2 * _W_POS * h, 2 * _W_POS * h, np.full_like(h, 1e-2), 2 * _W_POS * h,
                        10 * _W_VEL * h, 10 * _W_VEL * h, np.full_like(h, 1e-5), 10 * _W_VEL * h], axis=1)
        cov = np.zeros((len(z), 8, 8))
        idx = np.arange(8)
        cov[:, idx, idx] = std ** 2
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if len(mean) == 0:
            return mean, cov
        var = (mean[:, 3:4] * _PRED_W) ** 2  # (n, 8): noise std proportional to the height
        var[:, 2], var[:, 6] = 1e-4, 1e-10
        mean = mean @ self.F.T
        # F P F^T with F = [[I, I], [0, I]] (4x4 blocks), written out: block adds instead of two 8x8 products
        a, b, c, d = cov[:, :4, :4], cov[:, :4, 4:], cov[:, 4:, :4], cov[:, 4:, 4:]
        out = np.empty_like(cov)
        out[:, :4, :4] = a + b + c + d
        out[:, :4, 4:] = b + d
        out[:, 4:, :4] = c + d
        out[:, 4:, 4:] = d
        cov = out
        cov[:, _I8, _I8] += var
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Correct (n, 8) states with (n, 4) xyah measurements (row i with row i)."""
        if len(mean) == 0:
            return mean, cov
        var = (mean[:, 3:4] * _W_POS) ** 2 * _ONES4
        var[:, 2] = 1e-2
        proj_mean = mean[:, :4]
        proj_cov = cov[:, :4, :4].copy()
        proj_cov[:, _I4, _I4] += var
        pht = cov[:, :, :4]  # cov @ H^T
        # gain K = P H^T S^-1, solved as S^T K^T = (P H^T)^T (S is symmetric)
        gain = np.linalg.solve(proj_cov, np.transpose(pht, (0, 2, 1))).transpose(0, 2, 1)
        innov = np.asarray(z, np.float64) - proj_mean
        mean = mean + np.matmul(gain, innov[:, :, None])[:, :, 0]
        cov = cov - np.matmul(np.matmul(gain, proj_cov), np.transpose(gain, (0, 2, 1)))
        return mean, cov


def xyxy_to_xyah(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w / np.maximum(h, 1e-6), h], axis=1)


def xyah_to_xyxy(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, np.float64).reshape(-1, s.shape[-1])
    w = s[:, 2] * s[:, 3]
    return np.stack([s[:, 0] - w / 2, s[:, 1] - s[:, 3] / 2, s[:, 0] + w / 2, s[:, 1] + s[:, 3] / 2], axis=1)
