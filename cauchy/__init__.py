"""Cauchy: a torchcv-style framework for cls, det, seg and pose.

Importing the package is cheap (no torch): the control service imports ``cauchy.hypes`` and
``cauchy.exitcodes`` to validate jobs and read their outcome.
"""
