"""The SegmentMeIfYouCan submission helpers of ``anomaly_results_writer``: the HDF5 file as the docstring specifies it
(dataset ``value``, float16, gzip level 4), the frame id's error text, and ``float16_loss`` on maps holding an
infinity on one side only and on array-likes that are not float arrays."""
import re

import numpy as np
import pytest

from anomseg_plugins.evaluation.metrics.anomaly_results_writer import float16_loss, submission_fid, write_submission_map


def test_submission_file_is_gzip_level_4_float16(tmp_path):
    h5py = pytest.importorskip('h5py')
    score = np.random.default_rng(0).normal(size=(12, 17)).astype(np.float32)
    path = write_submission_map(str(tmp_path), 'MaxLogit', 'frame_3', score)
    assert path == str(tmp_path / 'MaxLogit' / 'frame_3.hdf5')
    with h5py.File(path, 'r') as f:
        assert list(f) == ['value']
        value = f['value']
        assert (value.dtype, value.shape, value.compression, value.compression_opts) == \
            (np.float16, (12, 17), 'gzip', 4)
        np.testing.assert_array_equal(value[:], score.astype(np.float16))


def test_missing_img_path_says_how_to_keep_it():
    text = ('AnomalyMetric(submission_dir=...): a data sample has no `img_path`; the submission files are named after '
            'it (keep `img_path` in the meta keys of the packing transform)')
    for missing in (None, ''):
        with pytest.raises(ValueError, match=f'^{re.escape(text)}$'):
            submission_fid(missing)


@pytest.mark.parametrize('values', [[0.0, 0.5, np.inf], [-np.inf, 0.25, 1.0], [np.nan, 0.5, 1.0]])
def test_non_finite_values_are_named_as_such(values):
    """One infinite end is enough (not reported as a value beyond the float16 maximum)."""
    assert float16_loss(np.array(values, np.float32)) == 'the map holds NaN or infinite values'


def test_values_are_read_as_float64_numbers():
    """Array-likes of numbers in any form (lists, ints, numeric text as read from a text file) are compared as
    float64 numbers: 2 .. 10 is stored in float16 steps of 2^-7 ~ 7.8e-4 of the range 8 (below 1e-3: no loss), and
    '10' < '2' as text must not turn the range around."""
    assert (np.spacing(np.float16(10)), 1e-3 * 8) == (2.0**-7, 0.008)
    for values in ([2.0, 10.0], [2, 10], np.array([10, 2], np.int16), np.array(['2', '10']), ['10', '2']):
        assert float16_loss(values) is None, values
    # 2 .. 3: float16 steps of 2^-9 ~ 2e-3 of the range
    assert float16_loss(np.array(['3', '2'])) == ('its values span [2, 3]; float16 steps of 0.00195 there are 2.0e-03 '
                                                  'of the range (> 0.001), so close scores merge')
