"""Installs the ``anomseg_plugins`` package (mmseg/mmengine plugins for road-scene anomaly segmentation)."""
from setuptools import find_packages, setup

setup(
    name='anomseg_plugins',
    version='0.1.0',
    description='Anomaly segmentation of road scenes as mmsegmentation plugins',
    packages=find_packages(include=['anomseg_plugins', 'anomseg_plugins.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch',
        'torchvision',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmengine>=0.10,<0.11',
        'mmsegmentation==1.2.2',
        'numpy',
        'scikit-learn',
        'opencv-python',
        'matplotlib',
        'prettytable',
    ],
)
