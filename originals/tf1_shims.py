"""Replacements for TF1 APIs that TF 2.21's compat.v1 no longer has.

``contrib_variance_scaling_initializer`` follows the documented semantics of
``tf.contrib.layers.variance_scaling_initializer(factor=2.0, mode='FAN_IN',
uniform=False, seed=None, dtype=tf.float32)``: fan_in = shape[-2] (times the
receptive field for conv kernels), and without ``uniform`` a truncated normal
with mean 0 and stddev sqrt(1.3 * factor / n).  (TF2's
``variance_scaling_initializer(scale=2.0, mode='fan_in',
distribution='truncated_normal')`` uses stddev sqrt(scale / n) / 0.8796, i.e.
1.2924 instead of 1.3: close, not identical, hence this shim.)
"""
import math

import tensorflow.compat.v1 as tf


def contrib_variance_scaling_initializer(factor=2.0, mode='FAN_IN', uniform=False,
                                         seed=None, dtype=tf.float32):
    if mode not in ('FAN_IN', 'FAN_OUT', 'FAN_AVG'):
        raise TypeError('Unknown mode %s' % mode)

    def _initializer(shape, dtype=dtype, partition_info=None):
        shape = list(shape)
        if shape:
            fan_in = float(shape[-2]) if len(shape) > 1 else float(shape[-1])
            fan_out = float(shape[-1])
        else:
            fan_in = fan_out = 1.0
        for dim in shape[:-2]:
            fan_in *= float(dim)
            fan_out *= float(dim)
        n = {'FAN_IN': fan_in, 'FAN_OUT': fan_out,
             'FAN_AVG': (fan_in + fan_out) / 2.0}[mode]
        if uniform:
            limit = math.sqrt(3.0 * factor / n)
            return tf.random_uniform(shape, -limit, limit, dtype, seed=seed)
        stddev = math.sqrt(1.3 * factor / n)
        return tf.truncated_normal(shape, 0.0, stddev, dtype, seed=seed)

    return _initializer
